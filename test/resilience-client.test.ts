// What the client shows for resilience tests: the mesh attempt a server saw, per call and in the summary, and
// -connections against a connection balancer (a TCP round robin standing in for kube-proxy, which balances
// connections, not calls).
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { client } from './helpers/client.ts';
import { perTest } from './helpers/server.ts';

const { server } = perTest();

/** A TCP proxy that sends each new connection to the next backend in turn (L4, as kube-proxy). */
async function connectionRoundRobin(ports: number[]): Promise<{ port: number; close(): void }> {
  let next = 0;
  const sockets = new Set<Socket>();
  const proxy: Server = createServer((downstream) => {
    const upstream = createConnection({ host: '127.0.0.1', port: ports[next++ % ports.length]! });
    for (const s of [downstream, upstream]) {
      sockets.add(s);
      s.on('error', () => {}).on('close', () => sockets.delete(s));
    }
    downstream.pipe(upstream).pipe(downstream);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    port: (proxy.address() as { port: number }).port,
    close: () => {
      proxy.close();
      for (const s of sockets) s.destroy();
    },
  };
}

let balancer: { close(): void } | undefined;
afterEach(() => balancer?.close());

describe('-connections against a connection balancer', () => {
  it('one connection pins every call to one replica; four spread them over both, two connections each', async () => {
    const a = await server({ hostname: 'pod-a' });
    const b = await server({ hostname: 'pod-b' });
    const lb = await connectionRoundRobin([a.port, b.port]);
    balancer = lb;
    const addr = `127.0.0.1:${lb.port}`;
    const one = await client(['-server_addr', addr, '-count', '20', '-concurrency', '4', '-json']);
    expect(one.code).toBe(0);
    expect(Object.values(one.json().summary.by_hostname)).toEqual([20]);
    expect(one.json().connections).toBe(1);

    const four = await client(['-server_addr', addr, '-count', '20', '-concurrency', '4', '-connections', '4', '-json']);
    expect(four.code).toBe(0);
    expect(four.json().connections).toBe(4);
    // request i on connection i mod 4; the balancer alternates connections between the replicas
    expect(four.json().summary.by_hostname).toEqual({ 'pod-a': 10, 'pod-b': 10 });
    const text = await client(['-server_addr', addr, '-count', '8', '-connections', '2']);
    expect(text.stdout).toMatch(/: 8 requests over 2 connections, 8 OK, 0 failed ---/);
    expect(text.stdout).toMatch(/^replicas: pod-a 4, pod-b 4$/m);
  });

  it('-connections is a positive count', async () => {
    for (const bad of ['0', 'x', '1001']) {
      const r = await client(['-connections', bad]);
      expect(r.code, bad).toBe(2);
      expect(r.stderr).toMatch(/-connections/);
    }
  });
});

describe('the mesh attempt the server saw', () => {
  it('per call ("attempt 2"), in -json (mesh_attempt, by_mesh_attempt) and in the summary; null without one', async () => {
    const s = await server({ hostname: 'pod-a' });
    const withAttempt = await client(['-server_addr', s.address, '-H', 'x-envoy-attempt-count: 2']);
    expect(withAttempt.stdout).toMatch(/^Greeting: Hello world \(from pod-a, attempt 2, [\d.]+ ms\)$/m);
    const failed = await client(['-server_addr', s.address, '-count', '3', '-H', 'x-envoy-attempt-count: 3', '-H', 'x-helloworld-fail-code: UNAVAILABLE', '-json']);
    const doc = failed.json();
    expect(doc.requests.map((r) => r.mesh_attempt)).toEqual([3, 3, 3]);
    expect(doc.summary.by_mesh_attempt).toEqual({ '3': 3 });
    expect(doc.summary.by_status).toEqual({ UNAVAILABLE: 3 });
    const text = await client(['-server_addr', s.address, '-count', '2', '-H', 'x-envoy-attempt-count: 1']);
    expect(text.stdout).toMatch(/^mesh attempt seen by the server: 1: 2$/m);
    const plain = await client(['-server_addr', s.address, '-count', '2', '-json']);
    expect(plain.json().requests.map((r) => r.mesh_attempt)).toEqual([null, null]);
    expect(plain.json().summary.by_mesh_attempt).toEqual({});
    expect((await client(['-server_addr', s.address, '-count', '2'])).stdout).not.toMatch(/mesh attempt/);
  });
});
