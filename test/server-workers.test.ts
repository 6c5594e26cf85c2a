// -workers N: N processes serve the port (node:cluster), the primary supervises. Spawned as users run it.
import { credentials, loadPackageDefinition, makeGenericClientConstructor, type Client, type GrpcObject, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { readFileSync } from 'node:fs';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { afterEach, describe, expect, it } from 'vitest';
import { autoWorkers, MAX_AUTO_WORKERS } from '../src/server/cluster.ts';
import { greeterService } from '../src/proto.ts';
import { sayHello } from './helpers/grpc-js-client.ts';
import { socketCount } from './helpers/process-stats.ts';
import { runServer, spawnServer, type SpawnedServer } from './helpers/spawn.ts';

let spawned: SpawnedServer[] = [];
let clients: Client[] = [];
const workerPids: number[] = [];
afterEach(() => {
  for (const c of clients) c.close();
  for (const s of spawned) s.child.kill('SIGKILL');
  for (const pid of workerPids.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  clients = [];
  spawned = [];
});

async function start(args: string[]) {
  const s = await spawnServer(args);
  spawned.push(s);
  workerPids.push(...childrenOf(s.child.pid!));
  return s;
}

// grpc-js shares one connection between clients of the same target unless told otherwise: each client here
// is its own connection, so that the primary can hand them to different workers.
const OWN_CONNECTION = { 'grpc.use_local_subchannel_pool': 1 };
const Greeter = makeGenericClientConstructor(greeterService, 'Greeter');
function client(address: string) {
  const c = new Greeter(address, credentials.createInsecure(), OWN_CONNECTION);
  clients.push(c);
  return c;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const healthPackage = loadPackageDefinition(loadSync(healthProtoPath, { keepCase: true, enums: String })) as GrpcObject;
const Health = (((healthPackage.grpc as GrpcObject).health as GrpcObject).v1 as GrpcObject).Health as ServiceClientConstructor;

/** Watches health "" on its own connection and records the statuses. */
function watchHealth(address: string): string[] {
  const c = new Health(address, credentials.createInsecure(), OWN_CONNECTION) as Client & Record<string, Function>;
  clients.push(c);
  const seen: string[] = [];
  const stream = c.Watch({ service: '' });
  stream.on('data', (m: { status: string }) => seen.push(m.status));
  stream.on('error', () => {});
  return seen;
}

describe('signals in quick succession (Ctrl-C twice)', () => {
  // A second signal forces workers that may be exiting already (drained): sending to one whose IPC channel
  // had closed crashed the primary with a stack trace (ERR_IPC_CHANNEL_CLOSED, EPIPE), also exit 1. And a
  // signal right after the Listening line killed the server outright: its handlers came after the line.
  const expected = [/^Listening /, /^SIGTERM: NOT_SERVING, draining 0 RPCs in flight/, /^drained, exiting$/, /^SIGTERM again: forcing exit with \d+ RPCs in flight$/];

  it.each(['2', '1'])('-workers %s: 10 rounds of 4 SIGTERMs 0-45 ms apart, each exit 0 (drained) or 1 (forced), nothing else said', async (workers) => {
    const outcomes: number[] = [];
    for (let round = 0; round < 10; round++) {
      const s = await start(['-workers', workers]);
      const signal = () => s.child.kill('SIGTERM'); // false, no throw, once it has exited
      signal();
      for (const gap of [round * 5, 5, 5]) {
        await sleep(gap);
        signal();
      }
      const code = await s.exited;
      const lines = s.stderr().trim().split('\n');
      expect({ round, code, unexpected: lines.filter((l) => !expected.some((e) => e.test(l))) }).toEqual({ round, code: expect.any(Number), unexpected: [] });
      expect({ round, code }).toEqual({ round, code: lines.some((l) => /again: forcing/.test(l)) ? 1 : 0 });
      outcomes.push(code!);
    }
    process.stdout.write(`server-workers: -workers ${workers}, 4 quick SIGTERMs, exit codes ${outcomes.join(' ')}\n`);
  });
});

describe('-workers 0 (the default)', () => {
  const MiB = 1024 * 1024;
  it('is one worker per CPU available, at most 4, and as many as a memory limit holds', () => {
    const noLimit = [Number.MAX_SAFE_INTEGER, 64 * 1024 * MiB] as const;
    expect(autoWorkers(1, ...noLimit)).toBe(1);
    expect(autoWorkers(2, ...noLimit)).toBe(2);
    expect(autoWorkers(64, ...noLimit)).toBe(MAX_AUTO_WORKERS);
    expect(autoWorkers(2, 0, 64 * 1024 * MiB)).toBe(2); // 0: no limit known
    expect(autoWorkers(8, 256 * MiB, 64 * 1024 * MiB)).toBe(1); // the manifests' limit: one process
    expect(autoWorkers(8, 512 * MiB, 64 * 1024 * MiB)).toBe(2);
  });
});

describe('-workers 2', () => {
  it('serves from two worker processes; connections are spread over both', async () => {
    const s = await start(['-workers', '2']);
    expect(s.stderr()).toMatch(/Listening 127\.0\.0\.1:\d+ \(plaintext\), 2 workers/);
    const workers = childrenOf(s.child.pid!);
    expect(workers).toHaveLength(2);
    const before = workers.map(socketCount);
    const answers = await Promise.all(Array.from({ length: 4 }, (_, i) => sayHello(client(s.address), `w${i}`)));
    expect(answers.map((a) => a.reply?.message)).toEqual(['Hello w0', 'Hello w1', 'Hello w2', 'Hello w3']);
    // each worker holds some of the 4 connections (the primary hands them out in turn)
    workers.forEach((pid, i) => expect(socketCount(pid), `worker ${pid}`).toBeGreaterThan(before[i]!));
    // one access-log line per call, whichever worker served it
    await expect.poll(() => s.stdout().trim().split('\n').length).toBe(4);
  });

  it('SIGTERM drains every worker: health NOT_SERVING in each, all calls in flight complete, exit 0', async () => {
    const s = await start(['-workers', '2', '-sleep', '0.5', '-grace', '5']);
    const health = [watchHealth(s.address), watchHealth(s.address), watchHealth(s.address), watchHealth(s.address)];
    await expect.poll(() => health.map((h) => h.at(-1))).toEqual(['SERVING', 'SERVING', 'SERVING', 'SERVING']);
    const conns = Array.from({ length: 4 }, () => client(s.address));
    await Promise.all(conns.map((c) => sayHello(c, 'warm-up', { metadata: { 'x-helloworld-delay-ms': '0' } })));
    const calls = Array.from({ length: 40 }, (_, i) => sayHello(conns[i % 4]!, `call-${i}`, { deadlineMs: 10_000 }));
    await sleep(200);
    s.child.kill('SIGTERM');
    const answers = await Promise.all(calls);
    expect(answers.filter((a) => a.err === null).length).toBe(40);
    expect(await s.exited).toBe(0);
    expect(s.stderr()).toMatch(/SIGTERM: NOT_SERVING, draining 40 RPCs in flight \(grace 5s\)/);
    expect(s.stderr()).toMatch(/drained, exiting/);
    // the watches are spread over both workers: every one of them saw NOT_SERVING
    expect(health.map((h) => h.includes('NOT_SERVING'))).toEqual([true, true, true, true]);
    for (const pid of workerPids) expect(() => process.kill(pid, 0), `worker ${pid} still running`).toThrow();
  });

  it('a second SIGTERM forces every worker out at once: exit 1, no call left hanging', async () => {
    const s = await start(['-workers', '2', '-sleep', '10', '-grace', '30']);
    const conns = Array.from({ length: 4 }, () => client(s.address));
    const calls = Array.from({ length: 8 }, (_, i) => sayHello(conns[i % 4]!, 'x', { deadlineMs: 20_000 }));
    await sleep(300);
    s.child.kill('SIGTERM');
    await expect.poll(() => s.stderr()).toMatch(/SIGTERM: NOT_SERVING, draining 8 RPCs in flight/);
    const forced = performance.now();
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(1);
    expect(s.stderr()).toMatch(/SIGTERM again: forcing exit with 8 RPCs in flight/);
    const answers = await Promise.all(calls);
    expect(answers.every((a) => a.err !== null && a.err.code !== 4)).toBe(true);
    expect(performance.now() - forced).toBeLessThan(2000);
  });

  it('a worker that dies takes the server down (exit 1, one line saying so)', async () => {
    const s = await start(['-workers', '2']);
    const [victim] = childrenOf(s.child.pid!);
    process.kill(victim!, 'SIGKILL');
    expect(await s.exited).toBe(1);
    expect(s.stderr()).toMatch(/server: worker \d+ \(pid \d+\) exited on SIGKILL: stopping/);
  });

  it('a port in use: one line, exit 1', async () => {
    const s = await start(['-workers', '1']);
    const r = await runServer(['-port', String(s.port), '-workers', '2']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^server: cannot listen on :\d+: address already in use\n$/);
  });

  it('-workers 1 serves in the one process', async () => {
    const s = await start(['-workers', '1']);
    expect(s.stderr()).toMatch(/Listening 127\.0\.0\.1:\d+ \(plaintext\)\n/);
    expect(childrenOf(s.child.pid!)).toEqual([]);
    expect((await sayHello(client(s.address), 'one')).reply?.message).toBe('Hello one');
  });
});
