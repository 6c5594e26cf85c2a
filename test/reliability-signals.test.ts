// Issue 7, signals: dist/server.js drains 200 RPCs in flight on SIGTERM (health NOT_SERVING first, then the
// listener closes, exit 0 within -grace), a second SIGTERM forces the exit without leaving calls hanging,
// and a client killed mid-call leaves nothing in flight on the server.
import { credentials, loadPackageDefinition, type Client, type GrpcObject, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect as netConnect, createServer as createNetServer } from 'node:net';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { afterEach, describe, expect, it } from 'vitest';
import { greeterClient, sayHello, type Answer } from './helpers/grpc-js-client.ts';
import { splitAddress } from './helpers/raw-grpc.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { bundle, cleanEnv, root, runClient, spawnServer, type SpawnedServer } from './helpers/spawn.ts';

let spawned: SpawnedServer[] = [];
let servers: TestServer[] = [];
let clients: Client[] = [];
afterEach(() => {
  for (const c of clients) c.close();
  for (const s of spawned) s.child.kill('SIGKILL');
  for (const s of servers) s.forceShutdown();
  clients = [];
  spawned = [];
  servers = [];
});
async function start(args: string[]) {
  const s = await spawnServer(args);
  spawned.push(s);
  return s;
}
function client(address: string) {
  const c = greeterClient(address);
  clients.push(c);
  return c;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const healthPackage = loadPackageDefinition(loadSync(healthProtoPath, { keepCase: true, enums: String })) as GrpcObject;
const Health = (((healthPackage.grpc as GrpcObject).health as GrpcObject).v1 as GrpcObject).Health as ServiceClientConstructor;

/** Watches health "" and records when each status arrived. */
function watchHealth(address: string): { seen: { status: string; at: number }[] } {
  const c = new Health(address, credentials.createInsecure()) as Client & Record<string, Function>;
  clients.push(c);
  const seen: { status: string; at: number }[] = [];
  const stream = c.Watch({ service: '' });
  stream.on('data', (m: { status: string }) => seen.push({ status: m.status, at: performance.now() }));
  stream.on('error', () => {});
  return { seen };
}

/** Polls the port with new TCP connections until one is refused; resolves with that moment. */
async function listenerClosedAt(address: string, limitMs: number): Promise<number> {
  const [host, port] = splitAddress(address);
  const until = performance.now() + limitMs;
  while (performance.now() < until) {
    const refused = await new Promise<boolean>((resolve) => {
      const socket = netConnect({ host, port });
      socket.on('connect', () => {
        socket.destroy();
        resolve(false);
      });
      socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
    });
    if (refused) return performance.now();
    await sleep(2);
  }
  throw new Error(`the listener on ${address} was still open after ${limitMs} ms`);
}

/** `n` SayHello calls spread over `k` connections (each warmed up first, so every call is on an open connection). */
async function callsInFlight(address: string, n: number, k: number, deadlineMs: number) {
  const conns = Array.from({ length: k }, () => client(address));
  await Promise.all(conns.map((c) => sayHello(c, 'warm-up', { deadlineMs: 10_000, metadata: { 'x-helloworld-delay-ms': '0' } })));
  const calls: Promise<Answer & { at: number }>[] = [];
  for (let i = 0; i < n; i++) calls.push(sayHello(conns[i % k]!, `call-${i}`, { deadlineMs }).then((a) => ({ ...a, at: performance.now() })));
  return calls;
}

describe('SIGTERM with 200 RPCs in flight (-sleep 0.5)', () => {
  it('health goes NOT_SERVING, then the listener closes; all 200 complete OK; exit 0 within -grace', async () => {
    const s = await start(['-sleep', '0.5', '-grace', '5']);
    const health = watchHealth(s.address);
    const calls = await callsInFlight(s.address, 200, 4, 10_000);
    await expect.poll(() => health.seen.map((e) => e.status)).toEqual(['SERVING']);
    await sleep(150); // all 200 reach the server's handler (they wait 500 ms there)

    const signalled = performance.now();
    s.child.kill('SIGTERM');
    const closed = listenerClosedAt(s.address, 3000);
    const answers = await Promise.all(calls);
    const exitCode = await s.exited;
    const exitedAt = performance.now();

    expect(s.stderr()).toMatch(/SIGTERM: NOT_SERVING, draining 200 RPCs in flight \(grace 5s\)/);
    expect(answers.filter((a) => a.err === null && a.reply?.message.startsWith('Hello call-')).length).toBe(200);
    const notServing = health.seen.find((e) => e.status === 'NOT_SERVING');
    expect(notServing, 'the health Watch saw NOT_SERVING').toBeDefined();
    const closedAt = await closed;
    expect(notServing!.at).toBeLessThanOrEqual(closedAt);
    // the calls were answered after the listener closed: draining, not cutting
    expect(Math.max(...answers.map((a) => a.at))).toBeGreaterThan(closedAt);
    expect(exitCode).toBe(0);
    expect(exitedAt - signalled).toBeLessThan(5000);
    expect(s.stderr()).toMatch(/drained, exiting/);
  });

  it('a new call after SIGTERM is refused while the 200 drain', async () => {
    const s = await start(['-sleep', '0.5', '-grace', '5']);
    const calls = await callsInFlight(s.address, 200, 4, 10_000);
    await sleep(150);
    s.child.kill('SIGTERM');
    await sleep(50);
    const late = await sayHello(client(s.address), 'late', { deadlineMs: 1000 });
    expect(late.err?.code).toBe(14); // UNAVAILABLE: nobody listens
    expect((await Promise.all(calls)).every((a) => a.err === null)).toBe(true);
    expect(await s.exited).toBe(0);
  });

  it('a second SIGTERM forces the exit (1) at once, and no call is left hanging', async () => {
    const s = await start(['-sleep', '5', '-grace', '30']);
    const stuck = await callsInFlight(s.address, 200, 4, 20_000);
    await sleep(150);
    s.child.kill('SIGTERM');
    await expect.poll(() => s.stderr()).toMatch(/SIGTERM: NOT_SERVING, draining \d+ RPCs in flight/);
    const forced = performance.now();
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(1);
    expect(performance.now() - forced).toBeLessThan(2000);
    expect(s.stderr()).toMatch(/SIGTERM again: forcing exit with \d+ RPCs in flight/);
    const answers = await Promise.all(stuck);
    expect(answers.every((a) => a.err !== null && a.err.code !== 4)).toBe(true); // an error at once, not a deadline
    expect(Math.max(...answers.map((a) => a.at)) - forced).toBeLessThan(2000);
  }, 40_000);

  it('when -grace runs out, the calls still running are cut with a status and the exit is 0', async () => {
    const s = await start(['-sleep', '10', '-grace', '1']);
    const running = await callsInFlight(s.address, 50, 2, 20_000);
    await sleep(150);
    const signalled = performance.now();
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);
    const took = performance.now() - signalled;
    expect(took).toBeGreaterThan(900);
    expect(took).toBeLessThan(3000);
    expect(s.stderr()).toMatch(/grace period over/);
    const answers = await Promise.all(running);
    expect(answers.every((a) => a.err !== null && a.err.code !== 4)).toBe(true);
  });
});

describe('a client killed mid-call', () => {
  // A stand-in client process: raw node:http2, one SayHello (or many), never ends by itself.
  const script = `
    const h2 = require('node:http2');
    const session = h2.connect(process.env.TARGET);
    const n = Number(process.env.CALLS);
    for (let i = 0; i < n; i++) {
      const stream = session.request({ ':method': 'POST', ':path': '/helloworld.Greeter/SayHello', 'content-type': 'application/grpc', te: 'trailers' });
      stream.on('response', () => {});
      stream.on('data', () => {});
      stream.end(Buffer.from('00000000070a05776f726c64', 'hex'));
    }
  `;

  /** Kills `child` once its `calls` are in flight on `s`: each is counted out and logged CANCELLED. */
  async function killMidCalls(child: ChildProcess, s: TestServer, calls: number): Promise<void> {
    const exited = once(child, 'exit');
    await expect.poll(() => s.inFlight(), { timeout: 10_000 }).toBe(calls);
    child.kill('SIGKILL');
    await exited;
    await expect.poll(() => s.inFlight(), { timeout: 3000 }).toBe(0);
    expect(s.log.map((e) => e.status)).toEqual(Array(calls).fill('CANCELLED'));
  }

  it.each([1, 20])('dist/client.cjs SIGKILLed during a -sleep call (%i in flight): the in-flight count returns to 0', async (calls) => {
    const s = await startTestServer({ sleepMs: 30_000 });
    servers.push(s);
    const args = ['-server_addr', s.address, '-timeout', '60', '-count', String(calls), '-concurrency', String(calls)];
    const child = spawn(process.execPath, [bundle('client'), ...args], { env: cleanEnv(), cwd: root, stdio: 'ignore' });
    await killMidCalls(child, s, calls);
  });

  it.each([1, 50])('a raw HTTP/2 client SIGKILLed during a -sleep call (%i in flight): the in-flight count returns to 0', async (calls) => {
    const s = await startTestServer({ sleepMs: 30_000 });
    servers.push(s);
    const child = spawn(process.execPath, ['-e', script], { env: { TARGET: `http://${s.address}`, CALLS: String(calls) }, stdio: 'ignore' });
    await killMidCalls(child, s, calls);
    // and the server serves the next call at once
    expect((await sayHello(client(s.address), 'after', { metadata: { 'x-helloworld-delay-ms': '0' } })).reply?.message).toBe('Hello after');
  });
});

describe('the server restarted while the client runs -count 50 -interval 0.1 -timeout 5 -json', () => {
  it('the client reconnects; every request is accounted for, OK or with its real status; none hangs', async () => {
    // a port that is free now, for both lives of the server
    const probe = createNetServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const port = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    const serverArgs = ['-port', String(port), '-host', '127.0.0.1', '-grace', '2'];

    const okLines = (s: SpawnedServer) => s.stdout().split('\n').filter((l) => l.includes('"status":"OK"')).length;
    const first = await start(serverArgs);
    const started = performance.now();
    const running = runClient(['-server_addr', `127.0.0.1:${port}`, '-count', '50', '-interval', '0.1', '-timeout', '5', '-json'], { timeoutMs: 60_000 });
    // stopped once the client is under way (its 5th OK), so that most of its 4.9 s of requests are still to come
    await expect.poll(() => okLines(first), { timeout: 20_000, interval: 20 }).toBeGreaterThanOrEqual(5);
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    await sleep(700); // down: connections refused
    const second = await start(serverArgs);
    const restartedAt = Date.now(); // wall clock, as the requests' start: the second server listens from here on
    const r = await running;
    const took = performance.now() - started;

    expect(r.signal, 'the client was killed: it hung').toBeNull();
    expect(r.stderr).toBe('');
    const doc = JSON.parse(r.stdout) as {
      requests: { index: number; start: string; latency_ms: number; attempts: number; code: number; status: string; details: string; message: string | null; ok: boolean }[];
      summary: { count: number; ok: number; failed: number; by_status: Record<string, number> };
      exit_code: number;
    };
    const requests = doc.requests;
    const retried = requests.filter((q) => q.attempts > 1);
    process.stdout.write(
      `reliability-restart: ${doc.summary.count} requests ${JSON.stringify(doc.summary.by_status)}, ${retried.length} needed more than one attempt ` +
        `(max ${Math.max(...requests.map((q) => q.attempts))}), slowest ${Math.max(...requests.map((q) => q.latency_ms))} ms, exit ${r.code}\n`,
    );
    expect(requests.map((q) => q.index)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(doc.summary.count).toBe(50);
    expect(doc.summary.ok + doc.summary.failed).toBe(50);
    expect(Object.values(doc.summary.by_status).reduce((a, b) => a + b, 0)).toBe(50);
    for (const q of requests) {
      expect(q.latency_ms, `request ${q.index} ran past its deadline`).toBeLessThan(5000 + 250);
      if (q.ok) expect(q.message).toBe('Hello world');
      else expect(q.details, `request ${q.index} failed without saying why`).not.toBe('');
    }
    // the exit code is the first failure's, or 0
    const firstFailure = requests.find((q) => !q.ok);
    expect(r.code).toBe(firstFailure ? 64 + firstFailure.code : 0);
    expect(doc.exit_code).toBe(r.code);
    // the outage was felt (some request needed more than one attempt) and survived: the reconnect worked.
    // By order, not timing: a request that started once the second server listened finds it (at once, or on
    // the retry 1 s later if it joined a refused attempt), well within its 5 s; so every failure started
    // before. And the second server answered calls: the requests that met the outage retry until 5 s after
    // they started, long past the restart.
    expect(requests.some((q) => q.attempts > 1)).toBe(true);
    const failedAfterRestart = requests.filter((q) => !q.ok && Date.parse(q.start) >= restartedAt);
    expect(failedAfterRestart, 'requests started after the restart failed').toEqual([]);
    expect(okLines(second)).toBeGreaterThan(0);
    // nothing silently dropped: every OK the client counted is one OK line in the two servers' access logs
    expect(okLines(first) + okLines(second)).toBe(doc.summary.ok);
    expect(took).toBeLessThan(50 * 100 + 5000 + 5000);
  }, 60_000);
});
