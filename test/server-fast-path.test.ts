// The fast path (src/server/fast-path.ts) answers plain SayHellos outside grpc-js. Every request here goes
// to two in-process servers, one with the fast path and one without, and what comes back must be the same:
// HTTP status, headers (but the date), DATA bytes, trailers, and the access-log line (but its times).
import type { OutgoingHttpHeaders } from 'node:http2';
import { constants as h2 } from 'node:http2';
import { describe, expect, it } from 'vitest';
import { grpcFrame, grpcHeaders, h2Session, helloRequest, rawRequest, type RawAnswer } from './helpers/raw-grpc.ts';
import { greeterClient, sayHello } from './helpers/grpc-js-client.ts';
import { fastAndPlainServers } from './helpers/fast-and-plain.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { qualifiesForFastPath } from '../src/server/fast-path.ts';

const servers = fastAndPlainServers();

const MB = 1024 * 1024;

/**
 * What a client can see of an answer, without what differs by nature (the date). (Not `error`: rawRequest
 * resets the stream itself once the answer is complete, and may note that after it resolved.)
 */
function seen(a: RawAnswer) {
  const { date: _date, ...headers } = a.headers;
  return { httpStatus: a.httpStatus, headers, data: a.data.toString('hex'), trailers: { ...a.trailers }, timedOut: a.timedOut };
}

/** The same request to both servers: the same answer, and the same access-log line but for times and ports. */
async function both(headers: OutgoingHttpHeaders, body: Buffer[], options?: Parameters<typeof rawRequest>[3]) {
  const fastLogged = servers.fast.log.length;
  const plainLogged = servers.plain.log.length;
  const [a, b] = await Promise.all([rawRequest(servers.fastSession, headers, body, options), rawRequest(servers.plainSession, headers, body, options)]);
  // the line is written when the call ends, which can be just after the client saw the end
  await expect.poll(() => [servers.fast.log.length - fastLogged, servers.plain.log.length - plainLogged]).toEqual([1, 1]);
  const line = (e: TestServer['log'][number]) => {
    const { time: _t, duration_ms: _d, peer: _p, authority: _a, ...rest } = e;
    return rest;
  };
  expect(line(servers.fast.log.at(-1)!)).toEqual(line(servers.plain.log.at(-1)!));
  expect(seen(a)).toEqual(seen(b));
  // the same answer is not enough: both servers could fail alike (a 1 MB answer once did, on both)
  expect(a.httpStatus, a.error).toBe(200);
  return a;
}

describe('fast path', () => {
  it('is on by default, and off when -sleep or -fail_rate make every SayHello grpc-js work', async () => {
    expect(servers.fast.fastPath).toBe(true);
    expect(servers.plain.fastPath).toBe(false);
  });

  // -sleep and -fail_rate are served on the fast path too: the same answers as grpc-js' greeter gives
  for (const [what, options] of [
    ['-sleep 0.03', { sleepMs: 30 }],
    ['-fail_rate 1 -fail_code ABORTED', { failRate: 1, failCode: 10 }],
    ['-sleep 1.5 -fail_rate 1, a deadline (1.1 s) that ends the sleep', { sleepMs: 1500, failRate: 1 }],
  ] as const) {
    it(`answers a SayHello under ${what} as grpc-js does`, async () => {
      const servers = await Promise.all([startTestServer(options), startTestServer({ ...options, fastPath: false })]);
      const sessions = await Promise.all(servers.map((s) => h2Session(s.address)));
      try {
        const headers = grpcHeaders(undefined, 'sleepMs' in options && options.sleepMs > 1000 ? { 'grpc-timeout': '1100m' } : {});
        const [a, b] = await Promise.all(sessions.map((session) => rawRequest(session, headers, [grpcFrame(helloRequest('faulty'))])));
        await expect.poll(() => servers.map((s) => s.log.length)).toEqual([1, 1]);
        const line = (e: TestServer['log'][number]) => ({ ...e, time: '', duration_ms: 0, peer: '', authority: '' });
        expect(line(servers[0]!.log[0]!)).toEqual(line(servers[1]!.log[0]!));
        expect(a!.httpStatus).toBe(200);
        expect(seen(a!)).toEqual(seen(b!));
        expect(servers[0]!.log[0]!.duration_ms).toBeGreaterThanOrEqual(Math.min(options.sleepMs ?? 0, 1100));
      } finally {
        for (const session of sessions) session.destroy();
        for (const s of servers) s.forceShutdown();
      }
    });
  }

  const split = (frame: Buffer, at: number) => [frame.subarray(0, at), frame.subarray(at)];
  const cases: [string, OutgoingHttpHeaders, Buffer[], Parameters<typeof rawRequest>[3]?][] = [
    ['a plain SayHello', grpcHeaders(), [grpcFrame(helloRequest('world'))]],
    ['an empty name', grpcHeaders(), [grpcFrame(helloRequest(''))]],
    ['a UTF-8 name', grpcHeaders(), [grpcFrame(helloRequest('wörld ✓'))]],
    ['a name that is not UTF-8', grpcHeaders(), [grpcFrame(helloRequest(Buffer.from([0xff, 0xfe, 0xc3])))]],
    ['an empty message (no name field)', grpcHeaders(), [grpcFrame(Buffer.alloc(0))]],
    ['unknown fields around the name', grpcHeaders(), [grpcFrame(Buffer.concat([Buffer.from([0x10, 0x05]), helloRequest('x'), Buffer.from([0x1a, 0x01, 0x41])]))]],
    ['application/grpc+proto, a user agent, metadata', grpcHeaders(undefined, { 'content-type': 'application/grpc+proto', 'user-agent': 'test/1', 'x-any': 'v' }), [grpcFrame(helloRequest('md'))]],
    ['a long deadline (grpc-timeout 5S)', grpcHeaders(undefined, { 'grpc-timeout': '5S' }), [grpcFrame(helloRequest('t'))]],
    ['a short deadline (grpc-timeout 500m)', grpcHeaders(undefined, { 'grpc-timeout': '500m' }), [grpcFrame(helloRequest('t'))]],
    ['a malformed grpc-timeout', grpcHeaders(undefined, { 'grpc-timeout': 'soon' }), [grpcFrame(helloRequest('t'))]],
    ['a 99999999H grpc-timeout (grpc-js truncates it)', grpcHeaders(undefined, { 'grpc-timeout': '99999999H' }), [grpcFrame(helloRequest('t'))]],
    ['grpc-encoding identity', grpcHeaders(undefined, { 'grpc-encoding': 'identity' }), [grpcFrame(helloRequest('i'))]],
    ['grpc-encoding gzip on an uncompressed message', grpcHeaders(undefined, { 'grpc-encoding': 'gzip' }), [grpcFrame(helloRequest('g'))]],
    ['a compressed flag without grpc-encoding', grpcHeaders(), [grpcFrame(helloRequest('c'), { compressed: true })]],
    ['a fault header (x-helloworld-fail-code)', grpcHeaders(undefined, { 'x-helloworld-fail-code': 'UNAVAILABLE' }), [grpcFrame(helloRequest('f'))]],
    ['a delay header (x-helloworld-delay-ms 0)', grpcHeaders(undefined, { 'x-helloworld-delay-ms': '0' }), [grpcFrame(helloRequest('d'))]],
    ['a delay (x-helloworld-delay-ms 20)', grpcHeaders(undefined, { 'x-helloworld-delay-ms': '20' }), [grpcFrame(helloRequest('d'))]],
    ['a fractional delay with spaces and a long deadline', grpcHeaders(undefined, { 'x-helloworld-delay-ms': ' 5.5 ', 'grpc-timeout': '5S' }), [grpcFrame(helloRequest('d'))]],
    ['a malformed delay (INVALID_ARGUMENT)', grpcHeaders(undefined, { 'x-helloworld-delay-ms': 'soon' }), [grpcFrame(helloRequest('d'))]],
    ['two delay headers', grpcHeaders(undefined, { 'x-helloworld-delay-ms': ['5', '10'] }), [grpcFrame(helloRequest('d'))]],
    ['a delay and a fail code', grpcHeaders(undefined, { 'x-helloworld-delay-ms': '5', 'x-helloworld-fail-code': '14' }), [grpcFrame(helloRequest('d'))]],
    ['an Envoy attempt count (x-envoy-attempt-count 2)', grpcHeaders(undefined, { 'x-envoy-attempt-count': '2' }), [grpcFrame(helloRequest('r'))]],
    ['an attempt count and a fail code', grpcHeaders(undefined, { 'x-envoy-attempt-count': '3', 'x-helloworld-fail-code': '14' }), [grpcFrame(helloRequest('r'))]],
    ['a bad attempt count (ignored)', grpcHeaders(undefined, { 'x-envoy-attempt-count': '0' }), [grpcFrame(helloRequest('r'))]],
    ['a bad fault mode (INVALID_ARGUMENT)', grpcHeaders(undefined, { 'x-helloworld-fault': 'boom' }), [grpcFrame(helloRequest('h'))]],
    ['a hang until the deadline (x-helloworld-fault hang)', grpcHeaders(undefined, { 'x-helloworld-fault': 'hang', 'grpc-timeout': '300m' }), [grpcFrame(helloRequest('h'))]],
    ['a delay and no message at all', grpcHeaders(undefined, { 'x-helloworld-delay-ms': '5' }), []],
    ['two messages in one DATA frame', grpcHeaders(), [Buffer.concat([grpcFrame(helloRequest('a')), grpcFrame(helloRequest('b'))])]],
    ['two messages in two DATA frames', grpcHeaders(), [grpcFrame(helloRequest('a')), grpcFrame(helloRequest('b'))]],
    ['a message split over two DATA frames', grpcHeaders(), split(grpcFrame(helloRequest('split')), 6)],
    ['a message and stray bytes', grpcHeaders(), [Buffer.concat([grpcFrame(helloRequest('a')), Buffer.from([1, 2, 3])])]],
    ['a message, then stray bytes in another DATA frame', grpcHeaders(), [grpcFrame(helloRequest('a')), Buffer.from([0, 0])]],
    ['no message at all', grpcHeaders(), []],
    ['a truncated prefix', grpcHeaders(), [grpcFrame(helloRequest('x')).subarray(0, 3)]],
    ['a truncated message', grpcHeaders(), [grpcFrame(helloRequest('xyz')).subarray(0, 8)]],
    ['bytes protobuf rejects', grpcHeaders(), [grpcFrame(Buffer.from([0x0a, 0xff, 0xff, 0xff]))]],
    ['a bad wire type', grpcHeaders(), [grpcFrame(Buffer.from([0x0b]))]],
    ['bytes protobufjs reads leniently', grpcHeaders(), [grpcFrame(Buffer.from([0x0a, 0x05, 0x41]))]],
    ['a length prefix over the 4 MB limit', grpcHeaders(), [grpcFrame(Buffer.alloc(16), { length: 0xffffffff })], { keepOpen: true }],
    ['a 1 MB name (more than one DATA frame: grpc-js)', grpcHeaders(), [grpcFrame(helloRequest('n'.repeat(MB)))]],
  ];
  for (const [name, headers, body, options] of cases) {
    it(`answers ${name} as grpc-js does`, async () => {
      await both(headers, body, options);
    });
  }

  it('answers each SayHello by its own name when requests repeat and alternate (the fast path keeps the last one)', async () => {
    const request = (name: string) => grpcFrame(helloRequest(name));
    for (const [name, body] of [
      ['a', [request('a')]],
      ['a', [request('a')]],
      ['b', [request('b')]],
      ['a', [request('a')]],
      ['', [request('')]],
      // the same name in other bytes (an unknown field after it)
      ['a', [grpcFrame(Buffer.concat([helloRequest('a'), Buffer.from([0x10, 0x01])]))]],
    ] as const) {
      const a = await both(grpcHeaders(), [...body]);
      expect(a.data.subarray(7).toString('utf8')).toBe(`Hello ${name}`);
    }
  });

  it('answers a wrong content-type as grpc-js does (HTTP 415, no call, nothing logged)', async () => {
    const headers = grpcHeaders(undefined, { 'content-type': 'application/json' });
    const body = [grpcFrame(helloRequest('j'))];
    const [a, b] = await Promise.all([rawRequest(servers.fastSession, headers, body), rawRequest(servers.plainSession, headers, body)]);
    expect(a.httpStatus).toBe(415);
    expect(seen(a)).toEqual(seen(b));
  });

  for (const timeout of ['1S', '150m']) {
    it(`answers a deadline (${timeout}) that passes before the client half-closes as grpc-js does (DEADLINE_EXCEEDED)`, async () => {
      const a = await both(grpcHeaders(undefined, { 'grpc-timeout': timeout }), [grpcFrame(helloRequest('late'))], { keepOpen: true, waitMs: 5000 });
      expect(a.grpcStatus).toBe(4);
    });

    it(`answers a deadline (${timeout}) that passes during a delay as grpc-js does (DEADLINE_EXCEEDED at the deadline)`, async () => {
      const a = await both(grpcHeaders(undefined, { 'grpc-timeout': timeout, 'x-helloworld-delay-ms': '3000' }), [grpcFrame(helloRequest('slow'))], { waitMs: 5000 });
      expect(a.grpcStatus).toBe(4);
    });
  }

  it('logs a client that goes away during a delay as grpc-js does, and counts it out', async () => {
    const statuses: string[] = [];
    for (const s of [servers.plain, servers.fast]) {
      const session = await h2Session(s.address);
      const before = s.log.length;
      const stream = session.request(grpcHeaders(undefined, { 'x-helloworld-delay-ms': '3000', 'grpc-timeout': '10S' }));
      stream.on('error', () => {});
      stream.end(grpcFrame(helloRequest('gone')));
      await expect.poll(() => s.inFlight()).toBe(1);
      stream.close(h2.NGHTTP2_CANCEL);
      await expect.poll(() => s.log.length).toBe(before + 1);
      statuses.push(s.log.at(-1)!.status);
      expect(s.inFlight()).toBe(0);
      session.destroy();
    }
    expect(statuses).toEqual(['CANCELLED', 'CANCELLED']);
  });

  it('waits out a delay before answering', async () => {
    const started = performance.now();
    const a = await rawRequest(servers.fastSession, grpcHeaders(undefined, { 'x-helloworld-delay-ms': '50' }), [grpcFrame(helloRequest('wait'))]);
    expect(a.grpcStatus).toBe(0);
    expect(performance.now() - started).toBeGreaterThanOrEqual(50);
    await expect.poll(() => servers.fast.log.at(-1)?.duration_ms ?? 0).toBeGreaterThanOrEqual(50);
  });

  it('answers a SayHello with 70 KB of metadata on either path, as grpc-js on node:http2 did', async () => {
    for (const s of [servers.fast, servers.plain]) {
      const client = greeterClient(s.address);
      try {
        const answer = await sayHello(client, 'big', { metadata: { 'x-big': 'v'.repeat(70_000) } });
        expect(answer.err).toBeNull();
        expect(answer.reply?.message).toBe('Hello big');
      } finally {
        client.close();
      }
    }
  });

  it('takes SayHellos with any override headers and deadline, and leaves compression, malformed deadlines and other methods to grpc-js', () => {
    const base = { ':method': 'POST', ':path': '/helloworld.Greeter/SayHello', 'content-type': 'application/grpc' };
    expect(qualifiesForFastPath({ ...base, 'x-helloworld-delay-ms': '250' }, false)).toBe(true);
    expect(qualifiesForFastPath({ ...base, 'x-helloworld-delay-ms': 'soon' }, false)).toBe(true);
    expect(qualifiesForFastPath({ ...base, 'x-helloworld-fail-code': '14' }, false)).toBe(true);
    expect(qualifiesForFastPath({ ...base, 'grpc-encoding': 'gzip' }, false)).toBe(false);
    expect(qualifiesForFastPath({ ...base, 'grpc-timeout': '150m' }, false)).toBe(true);
    expect(qualifiesForFastPath({ ...base, 'grpc-timeout': 'soon' }, false)).toBe(false); // grpc-js words that
    expect(qualifiesForFastPath({ ...base, ':path': '/grpc.health.v1.Health/Check' }, false)).toBe(false);
    expect(qualifiesForFastPath(base, true)).toBe(false);
  });

  for (const how of ['RST_STREAM', 'a closed connection'] as const) {
    it(`logs a call that ends by ${how} before the client half-closed as grpc-js does, and counts it out`, async () => {
      const statuses: string[] = [];
      for (const s of [servers.plain, servers.fast]) {
        const session = await h2Session(s.address);
        const before = s.log.length;
        const stream = session.request(grpcHeaders(), { endStream: false });
        stream.on('error', () => {});
        stream.write(grpcFrame(helloRequest('gone')));
        await expect.poll(() => s.inFlight()).toBe(1);
        if (how === 'RST_STREAM') stream.close(h2.NGHTTP2_CANCEL);
        else session.socket.destroy();
        await expect.poll(() => s.log.length).toBe(before + 1);
        statuses.push(s.log.at(-1)!.status);
        expect(s.inFlight()).toBe(0);
        session.destroy();
      }
      if (how === 'a closed connection') expect(statuses).toEqual(['CANCELLED', 'CANCELLED']);
      // node:http2's client half-closes a stream before it resets it: a server may answer in between. The
      // fast path answers at once (OK); grpc-js, a hop away in memory, usually sees the reset first.
      else for (const status of statuses) expect(['OK', 'CANCELLED']).toContain(status);
    });
  }

  it('counts its calls in flight, so a graceful shutdown waits for them', async () => {
    const s = await startTestServer();
    const session = await h2Session(s.address);
    const stream = session.request(grpcHeaders(), { endStream: false });
    stream.on('error', () => {});
    stream.write(grpcFrame(helloRequest('drain')));
    await expect.poll(() => s.inFlight()).toBe(1);
    const done = s.shutdown(5000);
    await new Promise((r) => setTimeout(r, 100));
    const answer = new Promise<string>((resolve) => {
      let data = '';
      stream.on('data', (d: Buffer) => (data += d.toString('latin1')));
      stream.on('close', () => resolve(data));
    });
    stream.end();
    expect(await answer).toContain('Hello drain');
    expect(await done).toBe(true);
    session.destroy();
  });
});
