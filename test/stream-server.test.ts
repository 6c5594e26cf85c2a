// The GreeterStream service (src/server/greeter-stream.ts) in-process, called by grpc-js clients over loopback:
// replies, pacing, faults, the access log, reflection, and what a shutdown does to a stream.
import { status } from '@grpc/grpc-js';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { SHUTTING_DOWN } from '../src/server/server.ts';
import { greeterClient, greeterStreamClient, reflect, reflectionClient, sayHello, sayHelloBidi, sayHelloStream } from './helpers/grpc-js-client.ts';
import { perTest, type TestServer } from './helpers/server.ts';

const { server, keep } = perTest();
const client = (s: TestServer) => keep(greeterStreamClient(s.address));

const texts = (a: { replies: Array<{ message: string }> }) => a.replies.map((r) => r.message);

describe('SayHelloStream', () => {
  it('sends count replies "Hello <name> <i>", one every interval_ms, with the hostname in the headers', async () => {
    const s = await server();
    const a = await sayHelloStream(client(s), { name: 'world', count: 4, interval_ms: 100 });
    expect(a.code).toBe(status.OK);
    expect(texts(a)).toEqual(['Hello world 1', 'Hello world 2', 'Hello world 3', 'Hello world 4']);
    expect(a.headers?.get('hostname')).toEqual([hostname()]);
    // reply i is sent no sooner than i intervals after the first, which goes out after the call started: bounds from
    // the start hold however late a busy machine delivers any one reply (timers may round a ms or two early)
    a.replies.forEach((r, i) => expect(r.at).toBeGreaterThanOrEqual(i * 100 - 3));
  });

  it('count 0 (unset) sends 10; a count or interval out of range is INVALID_ARGUMENT, with the hostname', async () => {
    const s = await server();
    const c = client(s);
    expect(texts(await sayHelloStream(c, { name: 'x', count: 0, interval_ms: 0 }))).toHaveLength(10);
    const negative = await sayHelloStream(c, { name: 'x', count: -1, interval_ms: 0 });
    expect({ code: negative.code, details: negative.details }).toEqual({ code: status.INVALID_ARGUMENT, details: 'count: want 0 (for 10) to 1000000, got -1' });
    const interval = await sayHelloStream(c, { name: 'x', count: 1, interval_ms: 400_000 });
    expect(interval.details).toBe('interval_ms: want 0 to 300000, got 400000');
  });

  it('many replies at once go out as fast as the client reads them, all of them, in order', async () => {
    const s = await server();
    const a = await sayHelloStream(client(s), { name: 'n', count: 20_000, interval_ms: 0 }, { deadlineMs: 20_000 });
    expect(a.code).toBe(status.OK);
    expect(a.replies).toHaveLength(20_000);
    expect(texts(a).every((t, i) => t === `Hello n ${i + 1}`)).toBe(true);
  });

  it('-sleep comes before every reply', async () => {
    const s = await server({ sleepMs: 100 });
    const a = await sayHelloStream(client(s), { name: 's', count: 3, interval_ms: 0 });
    expect(texts(a)).toHaveLength(3);
    a.replies.forEach((r, i) => expect(r.at).toBeGreaterThanOrEqual((i + 1) * 100 - 3));
  });
});

describe('SayHelloBidi', () => {
  it('answers each request in order, "Hello <name> <i>", and ends OK after the client half-closes', async () => {
    const s = await server();
    const a = await sayHelloBidi(client(s), ['a', 'b', 'c'], { intervalMs: 20 });
    expect(a.code).toBe(status.OK);
    expect(texts(a)).toEqual(['Hello a 1', 'Hello b 2', 'Hello c 3']);
    expect(a.headers?.get('hostname')).toEqual([hostname()]);
  });

  it('x-helloworld-delay-ms delays each reply after its request; requests sent at once are answered in order', async () => {
    const s = await server();
    const names = Array.from({ length: 40 }, (_, i) => `n${i}`);
    const a = await sayHelloBidi(client(s), names, { metadata: { 'x-helloworld-delay-ms': '150' } });
    expect(texts(a)).toEqual(names.map((n, i) => `Hello ${n} ${i + 1}`));
    expect(a.replies[0]!.at).toBeGreaterThanOrEqual(145);
  });

  it('a client that never half-closes: the stream stays open, answering, until its deadline', async () => {
    const s = await server();
    const a = await sayHelloBidi(client(s), ['a', 'b'], { keepOpen: true, deadlineMs: 400 });
    expect(texts(a)).toEqual(['Hello a 1', 'Hello b 2']);
    expect(a.code).toBe(status.DEADLINE_EXCEEDED);
    // (its status in the log may be OK: at its deadline grpc-js' client half-closes, then resets the stream)
    await expect.poll(() => s.log.at(-1)).toMatchObject({ method: '/helloworld.GreeterStream/SayHelloBidi', messages_received: 2, messages_sent: 2 });
  });
});

describe('faults on streams', () => {
  it('x-helloworld-fail-after: k replies, then the failure in place of reply k+1', async () => {
    const s = await server();
    const metadata = { 'x-helloworld-fail-code': 'UNAVAILABLE', 'x-helloworld-fail-after': '2' };
    const stream = await sayHelloStream(client(s), { name: 'x', count: 5, interval_ms: 10 }, { metadata });
    expect(texts(stream)).toEqual(['Hello x 1', 'Hello x 2']);
    expect({ code: stream.code, details: stream.details }).toEqual({ code: status.UNAVAILABLE, details: 'failure requested by x-helloworld-fail-code' });
    const bidi = await sayHelloBidi(client(s), ['a', 'b', 'c', 'd'], { metadata });
    expect(texts(bidi)).toEqual(['Hello a 1', 'Hello b 2']);
    expect(bidi.code).toBe(status.UNAVAILABLE);
  });

  it('without fail-after the failure comes at once (no reply); past the last reply it never comes', async () => {
    const s = await server();
    const c = client(s);
    const atOnce = await sayHelloStream(c, { name: 'x', count: 3, interval_ms: 0 }, { metadata: { 'x-helloworld-fail-code': 'ABORTED' } });
    expect({ replies: atOnce.replies.length, code: atOnce.code }).toEqual({ replies: 0, code: status.ABORTED });
    expect(atOnce.headers?.get('hostname')).toEqual([hostname()]);
    const late = await sayHelloStream(c, { name: 'x', count: 3, interval_ms: 0 }, { metadata: { 'x-helloworld-fail-code': 'ABORTED', 'x-helloworld-fail-after': '3' } });
    expect({ replies: late.replies.length, code: late.code }).toEqual({ replies: 3, code: status.OK });
    // a bidi stream whose client half-closes before request k+1 ends OK
    const short = await sayHelloBidi(c, ['a'], { metadata: { 'x-helloworld-fail-code': 'ABORTED', 'x-helloworld-fail-after': '1' } });
    expect({ replies: short.replies.length, code: short.code }).toEqual({ replies: 1, code: status.OK });
  });

  it('-fail_rate and -fail_code fail whole streams; fail-code OK overrides them; a bad fail-after is INVALID_ARGUMENT', async () => {
    const s = await server({ failRate: 1, failCode: status.RESOURCE_EXHAUSTED });
    const c = client(s);
    const failed = await sayHelloStream(c, { name: 'x', count: 3, interval_ms: 0 }, { metadata: { 'x-helloworld-fail-after': '1' } });
    expect({ replies: failed.replies.length, code: failed.code, details: failed.details }).toEqual({ replies: 1, code: status.RESOURCE_EXHAUSTED, details: 'injected failure (-fail_rate 1)' });
    const forced = await sayHelloBidi(c, ['a'], { metadata: { 'x-helloworld-fail-code': 'OK' } });
    expect({ replies: forced.replies.length, code: forced.code }).toEqual({ replies: 1, code: status.OK });
    const bad = await sayHelloStream(c, { name: 'x', count: 3, interval_ms: 0 }, { metadata: { 'x-helloworld-fail-after': 'soon' } });
    expect({ code: bad.code, details: bad.details }).toEqual({ code: status.INVALID_ARGUMENT, details: 'x-helloworld-fail-after: want a number of replies, got "soon"' });
    expect(bad.headers?.get('hostname') ?? []).toEqual([]); // trailers-only: the hostname is in the trailers
  });

  it('SayHello ignores x-helloworld-fail-after', async () => {
    const s = await server();
    const a = await sayHello(keep(greeterClient(s.address)), 'u', { metadata: { 'x-helloworld-fail-after': 'soon' } });
    expect(a.err).toBeNull();
  });
});

describe('access log', () => {
  it('one line per stream with its message counts; unary lines keep their fields', async () => {
    const s = await server();
    await sayHelloStream(client(s), { name: 'x', count: 3, interval_ms: 0 });
    await sayHelloBidi(client(s), ['a', 'b'], { metadata: { 'x-helloworld-fail-code': 'UNAVAILABLE', 'x-helloworld-fail-after': '1' } });
    await sayHello(keep(greeterClient(s.address)), 'u');
    await expect.poll(() => s.log.length).toBe(3);
    const [stream, bidi, unary] = s.log;
    expect(Object.keys(stream!)).toEqual(['time', 'method', 'peer', 'authority', 'user_agent', 'code', 'status', 'messages_received', 'messages_sent', 'duration_ms']);
    expect(stream).toMatchObject({ method: '/helloworld.GreeterStream/SayHelloStream', status: 'OK', messages_received: 1, messages_sent: 3 });
    expect(Object.keys(bidi!)).toEqual(['time', 'method', 'peer', 'authority', 'user_agent', 'code', 'status', 'details', 'messages_received', 'messages_sent', 'duration_ms']);
    expect(bidi).toMatchObject({ method: '/helloworld.GreeterStream/SayHelloBidi', status: 'UNAVAILABLE', messages_sent: 1 });
    expect(bidi!.messages_received).toBeGreaterThanOrEqual(2); // the second request came before the failure
    expect(Object.keys(unary!)).toEqual(['time', 'method', 'peer', 'authority', 'user_agent', 'code', 'status', 'duration_ms']);
  });

  it('a stream the client cancels is logged CANCELLED with what it had sent, and is counted in flight until then', async () => {
    const s = await server();
    const a = sayHelloStream(client(s), { name: 'x', count: 100, interval_ms: 50 }, { cancelAfter: 2 });
    await expect.poll(() => s.inFlight()).toBe(1);
    expect((await a).code).toBe(status.CANCELLED);
    await expect.poll(() => s.log.at(-1)?.status).toBe('CANCELLED');
    expect(s.log.at(-1)!.messages_sent).toBeGreaterThanOrEqual(2);
    expect(s.inFlight()).toBe(0);
  });
});

describe('reflection', () => {
  it('lists helloworld.GreeterStream, and describes its methods and HelloStreamRequest with the field names of the .proto', async () => {
    const s = await server();
    const c = keep(reflectionClient(s.address));
    const list = await reflect(c, { list_services: '' });
    expect(list.list_services_response!.service.map((x) => x.name)).toEqual(expect.arrayContaining(['helloworld.Greeter', 'helloworld.GreeterStream']));
    const files = (await reflect(c, { file_containing_symbol: 'helloworld.GreeterStream' })).file_descriptor_response!.file_descriptor_proto;
    const text = Buffer.concat(files).toString('latin1');
    for (const word of ['SayHelloStream', 'SayHelloBidi', 'HelloStreamRequest', 'interval_ms']) expect(text).toContain(word);
  });
});

describe('shutdown', () => {
  it('a stream gets the grace period, then ends UNAVAILABLE "the server is shutting down"; health Watch does not hold the drain', async () => {
    const s = await server();
    const a = sayHelloStream(client(s), { name: 'x', count: 1000, interval_ms: 50 }, { deadlineMs: 20_000 });
    await expect.poll(() => s.inFlight()).toBe(1);
    const started = performance.now();
    expect(await s.shutdown(600)).toBe(false);
    const answer = await a;
    expect({ code: answer.code, details: answer.details }).toEqual({ code: status.UNAVAILABLE, details: SHUTTING_DOWN });
    expect(performance.now() - started).toBeGreaterThanOrEqual(590);
    expect(answer.replies.length).toBeGreaterThan(1);
    await expect.poll(() => s.log.at(-1)).toMatchObject({ status: 'UNAVAILABLE', details: SHUTTING_DOWN, messages_received: 1, messages_sent: answer.replies.length });
  });

  it('a stream that ends within the grace period ends OK, and the shutdown is clean', async () => {
    const s = await server();
    const a = sayHelloBidi(client(s), ['a', 'b', 'c', 'd'], { intervalMs: 100 });
    await expect.poll(() => s.inFlight()).toBe(1);
    expect(await s.shutdown(5000)).toBe(true);
    const answer = await a;
    expect({ code: answer.code, replies: answer.replies.length }).toEqual({ code: status.OK, replies: 4 });
  });
});
