// Crash and hang modes, and the retry attempt Envoy counts, on both SayHello paths (the fast path and
// grpc-js): in-process servers over loopback, and the built server for what a crash does to the process.
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { planRequest, planStream, BadOverride } from '../src/server/faults.ts';
import { greeterClient, sayHello } from './helpers/grpc-js-client.ts';
import { perTest } from './helpers/server.ts';
import { spawnServer } from './helpers/spawn.ts';

const { server, keep } = perTest();
const client = (address: string) => keep(greeterClient(address));
const CRASH = { 'x-helloworld-fault': 'crash' };

describe('planRequest: crash and hang', () => {
  const noHeaders = () => undefined;
  const options = { sleepMs: 0, failRate: 0, failCode: 14 };
  it('x-helloworld-fault picks crash or hang, none cancels -crash_rate, anything else is a bad override', () => {
    const header = (value: string) => (name: string) => (name === 'x-helloworld-fault' ? value : undefined);
    expect(planRequest(options, header('crash'))).toMatchObject({ end: 'crash', endWhy: 'x-helloworld-fault: crash' });
    expect(planRequest(options, header(' Hang '))).toMatchObject({ end: 'hang' });
    expect(planRequest({ ...options, crashRate: 1 }, header('none')).end).toBeUndefined();
    expect(() => planRequest(options, header('boom'))).toThrow(BadOverride);
  });

  it('-crash_rate draws a crash for that fraction, before -fail_rate', () => {
    expect(planRequest({ ...options, crashRate: 0.5, failRate: 1 }, noHeaders, () => 0.4)).toMatchObject({ end: 'crash', endWhy: '-crash_rate 0.5' });
    expect(planRequest({ ...options, crashRate: 0.5 }, noHeaders, () => 0.6).end).toBeUndefined();
  });

  it('streams never crash: the header is refused, -crash_rate does not apply', () => {
    expect(() => planStream(options, (n) => (n === 'x-helloworld-fault' ? 'crash' : undefined))).toThrow(/SayHello only/);
    expect(planStream({ ...options, crashRate: 1 }, noHeaders)).toEqual({ delayMs: 0 });
  });
});

describe.each([
  ['fast path', true],
  ['grpc-js', false],
])('SayHello on the %s', (_path, fastPath) => {
  it('x-helloworld-fault: crash ends every connection unanswered (the call, and one in flight beside it), logged UNAVAILABLE', async () => {
    const whys: string[] = [];
    const s = await server({ fastPath });
    // the default crash in-process is s.forceShutdown(); record why first
    const crashing = await server({ fastPath, crash: (why) => (whys.push(why), crashing.forceShutdown()) });
    const c = client(crashing.address);
    const waiting = sayHello(c, 'beside', { metadata: { 'x-helloworld-delay-ms': '3000' } });
    await expect.poll(() => crashing.inFlight()).toBe(1);
    const crashed = await sayHello(c, 'crash', { metadata: CRASH });
    expect(crashed.err?.code).toBe(status.UNAVAILABLE);
    expect(crashed.err?.details).not.toMatch(/crash \(/); // the status that was logged never went out
    expect((await waiting).err?.code).toBe(status.UNAVAILABLE);
    expect(whys).toEqual(['x-helloworld-fault: crash']);
    const line = crashing.log.find((e) => e.details?.startsWith('crash'));
    expect(line).toMatchObject({ code: 14, status: 'UNAVAILABLE', details: 'crash (x-helloworld-fault: crash): the server ends without answering' });
    expect(s.inFlight()).toBe(0); // another server is untouched
    expect((await sayHello(client(s.address), 'x')).err).toBeNull();
  });

  it('x-helloworld-fault: hang answers nothing until the deadline: DEADLINE_EXCEEDED', async () => {
    const s = await server({ fastPath });
    const started = performance.now();
    const answer = await sayHello(client(s.address), 'x', { deadlineMs: 400, metadata: { 'x-helloworld-fault': 'hang' } });
    expect(answer.err?.code).toBe(status.DEADLINE_EXCEEDED);
    expect(performance.now() - started).toBeGreaterThanOrEqual(380);
    await expect.poll(() => s.log.length).toBe(1);
    expect(s.log[0]).toMatchObject({ code: 4 });
    expect(s.inFlight()).toBe(0);
  });

  it('echoes x-envoy-attempt-count as `attempt` metadata (OK and failed) and logs it; none or a bad one: nothing', async () => {
    const s = await server({ fastPath });
    const c = client(s.address);
    const ok = await sayHello(c, 'x', { metadata: { 'x-envoy-attempt-count': '2' } });
    expect(ok.err).toBeNull();
    expect(ok.headers?.get('attempt')).toEqual(['2']);
    const failed = await sayHello(c, 'x', { metadata: { 'x-envoy-attempt-count': '3', 'x-helloworld-fail-code': 'UNAVAILABLE' } });
    expect(failed.err?.code).toBe(status.UNAVAILABLE);
    expect(failed.trailers?.get('attempt')).toEqual(['3']);
    const plain = await sayHello(c, 'x');
    expect(plain.headers?.get('attempt')).toEqual([]);
    const bad = await sayHello(c, 'x', { metadata: { 'x-envoy-attempt-count': 'two' } });
    expect(bad.headers?.get('attempt')).toEqual([]);
    await expect.poll(() => s.log.length).toBe(4);
    expect(s.log.map((e) => e.attempt)).toEqual([2, 3, undefined, undefined]);
    expect(Object.keys(s.log[0]!)).toEqual(['time', 'method', 'peer', 'authority', 'user_agent', 'attempt', 'code', 'status', 'duration_ms']);
  });
});

describe('the built server in crash mode', () => {
  it.each([
    ['one process', [] as string[]],
    ['-workers 2', ['-workers', '2']],
  ])('%s: -crash_rate 1 says so loudly at start, and the first SayHello ends it with exit code 3', async (_name, extra) => {
    const s = await spawnServer(['-crash_rate', '1', ...extra]);
    try {
      expect(s.stderr()).toMatch(/WARNING -crash_rate 1: .*ENDS THIS SERVER \(exit 3\)/);
      const answer = await sayHello(client(s.address), 'x', { deadlineMs: 5000 });
      expect(answer.err?.code).toBe(status.UNAVAILABLE);
      expect(await s.exited).toBe(3);
      expect(s.stderr()).toMatch(/CRASH on purpose \(-crash_rate 1\): exiting with code 3/);
      const lines = s.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { details?: string });
      expect(lines.map((l) => l.details)).toEqual(['crash (-crash_rate 1): the server ends without answering']);
    } finally {
      await s.stop();
    }
  }, 30_000);
});
