// helloworld.GreeterStream (SayHelloStream, SayHelloBidi) answered by the front door (src/server/stream-fast-path.ts). Every
// stream here goes to two in-process servers, one that answers it itself and one that forwards it to
// greeter-stream.ts in grpc-js, and what comes back must be the same: HTTP status, headers (but the date) in
// their order, every reply's bytes, trailers, and the access-log line with its message counts (but its times).
import { constants as h2, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2';
import { describe, expect, it } from 'vitest';
import { SAY_HELLO_BIDI_PATH, SAY_HELLO_STREAM_PATH } from '../src/rpc-names.ts';
import { SHUTTING_DOWN } from '../src/server/server.ts';
import { qualifiesForBidiFastPath, qualifiesForStreamFastPath } from '../src/server/stream-fast-path.ts';
import { fastAndPlainServers, logLine, sameAnswers, seen } from './helpers/fast-and-plain.ts';
import { grpcFrame, grpcHeaders, h2Session, helloRequest, rawRequest, varint } from './helpers/raw-grpc.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const servers = fastAndPlainServers();

/** protobuf varint of an int32 as protobuf writes it: a negative one is ten bytes, two's complement over 64 bits. */
function int32(n: number): Buffer {
  if (n >= 0) return varint(n);
  const bytes: number[] = [];
  let v = BigInt.asUintN(64, BigInt(n));
  while (v >= 0x80n) {
    bytes.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  bytes.push(Number(v));
  return Buffer.from(bytes);
}

/** HelloStreamRequest { string name = 1; int32 count = 2; int32 interval_ms = 3 } by hand; 0 fields left out. */
function streamRequest(name: string | Buffer, count = 0, intervalMs = 0): Buffer {
  const parts = [helloRequest(name)];
  if (count !== 0) parts.push(Buffer.from([0x10]), int32(count));
  if (intervalMs !== 0) parts.push(Buffer.from([0x18]), int32(intervalMs));
  return Buffer.concat(parts);
}

const streamHeaders = (extra: OutgoingHttpHeaders = {}) => grpcHeaders(SAY_HELLO_STREAM_PATH, extra);
const both = (headers: OutgoingHttpHeaders, body: Buffer[], options?: Parameters<typeof rawRequest>[3]) => sameAnswers(servers, headers, body, options);

/** The replies' texts in an answer's DATA (each "Hello …" of a HelloReply). */
function texts(data: Buffer): string[] {
  const out: string[] = [];
  for (let at = 0; at + 5 <= data.length; ) {
    const length = data.readUInt32BE(at + 1);
    const message = data.subarray(at + 5, at + 5 + length);
    let p = 1;
    while (message[p]! & 0x80) p++;
    out.push(message.subarray(p + 1).toString('utf8'));
    at += 5 + length;
  }
  return out;
}

describe('SayHelloStream on the fast path', () => {
  const split = (frame: Buffer, at: number) => [frame.subarray(0, at), frame.subarray(at)];
  const cases: [string, OutgoingHttpHeaders, Buffer[], { status?: number; replies?: number }][] = [
    ['three replies', streamHeaders(), [grpcFrame(streamRequest('world', 3))], { status: 0, replies: 3 }],
    ['count 0 (unset): ten replies', streamHeaders(), [grpcFrame(streamRequest('ten'))], { status: 0, replies: 10 }],
    ['replies 20 ms apart', streamHeaders(), [grpcFrame(streamRequest('paced', 3, 20))], { status: 0, replies: 3 }],
    ['an empty message (no field at all)', streamHeaders(), [grpcFrame(Buffer.alloc(0))], { status: 0, replies: 10 }],
    ['a UTF-8 name', streamHeaders(), [grpcFrame(streamRequest('wörld ✓', 2))], { status: 0 }],
    ['a name that is not UTF-8', streamHeaders(), [grpcFrame(streamRequest(Buffer.from([0xff, 0xfe, 0xc3]), 2))], { status: 0 }],
    ['a 200-byte name (a two-byte length)', streamHeaders(), [grpcFrame(streamRequest('n'.repeat(200), 2))], { status: 0 }],
    ['unknown fields', streamHeaders(), [grpcFrame(Buffer.concat([Buffer.from([0x20, 0x05]), streamRequest('x', 2)]))], { status: 0 }],
    ['5,000 replies (many to a DATA frame, more than a window)', streamHeaders(), [grpcFrame(streamRequest('many', 5000))], { status: 0, replies: 5000 }],
    ['a user agent, metadata, a deadline', streamHeaders({ 'user-agent': 'grpc-go/1.33.3', 'x-any': 'v', 'grpc-timeout': '5S' }), [grpcFrame(streamRequest('md', 2))], { status: 0 }],
    ['an Envoy attempt count', streamHeaders({ 'x-envoy-attempt-count': '2' }), [grpcFrame(streamRequest('r', 2))], { status: 0 }],
    ['count -1 (INVALID_ARGUMENT)', streamHeaders(), [grpcFrame(streamRequest('x', -1))], { status: 3 }],
    ['count 1000001 (INVALID_ARGUMENT)', streamHeaders(), [grpcFrame(streamRequest('x', 1_000_001))], { status: 3 }],
    ['interval_ms 400000 (INVALID_ARGUMENT)', streamHeaders(), [grpcFrame(streamRequest('x', 1, 400_000))], { status: 3 }],
    ['a delay before every reply (x-helloworld-delay-ms 15)', streamHeaders({ 'x-helloworld-delay-ms': '15' }), [grpcFrame(streamRequest('d', 3))], { status: 0, replies: 3 }],
    ['a malformed delay (INVALID_ARGUMENT)', streamHeaders({ 'x-helloworld-delay-ms': 'soon' }), [grpcFrame(streamRequest('d', 3))], { status: 3 }],
    ['a fail code: the failure at once', streamHeaders({ 'x-helloworld-fail-code': 'ABORTED' }), [grpcFrame(streamRequest('f', 3))], { status: 10, replies: 0 }],
    ['a fail code after 2 replies', streamHeaders({ 'x-helloworld-fail-code': 'UNAVAILABLE', 'x-helloworld-fail-after': '2' }), [grpcFrame(streamRequest('f', 5, 10))], { status: 14, replies: 2 }],
    ['a fail code after the last reply (never comes)', streamHeaders({ 'x-helloworld-fail-code': '14', 'x-helloworld-fail-after': '3' }), [grpcFrame(streamRequest('f', 3))], { status: 0, replies: 3 }],
    ['a delay and a fail code after 1 reply', streamHeaders({ 'x-helloworld-delay-ms': '10', 'x-helloworld-fail-code': '14', 'x-helloworld-fail-after': '1' }), [grpcFrame(streamRequest('f', 3))], { status: 14, replies: 1 }],
    ['fail code OK', streamHeaders({ 'x-helloworld-fail-code': 'OK' }), [grpcFrame(streamRequest('f', 2))], { status: 0, replies: 2 }],
    ['a bad fail code (INVALID_ARGUMENT)', streamHeaders({ 'x-helloworld-fail-code': 'SOMETIMES' }), [grpcFrame(streamRequest('f', 2))], { status: 3 }],
    ['a bad fail-after (INVALID_ARGUMENT)', streamHeaders({ 'x-helloworld-fail-code': '14', 'x-helloworld-fail-after': 'soon' }), [grpcFrame(streamRequest('f', 2))], { status: 3 }],
    ['x-helloworld-fault (for SayHello only: INVALID_ARGUMENT)', streamHeaders({ 'x-helloworld-fault': 'hang' }), [grpcFrame(streamRequest('h', 2))], { status: 3 }],
    ['a deadline that passes mid-stream', streamHeaders({ 'grpc-timeout': '250m' }), [grpcFrame(streamRequest('late', 10, 100))], { status: 4 }],
    // grpc-js' own answers, the stream handed to it
    ['a malformed grpc-timeout', streamHeaders({ 'grpc-timeout': 'soon' }), [grpcFrame(streamRequest('t', 2))], {}],
    ['grpc-encoding gzip on an uncompressed message', streamHeaders({ 'grpc-encoding': 'gzip' }), [grpcFrame(streamRequest('g', 2))], {}],
    ['a compressed flag', streamHeaders(), [grpcFrame(streamRequest('c', 2), { compressed: true })], {}],
    ['two messages', streamHeaders(), [grpcFrame(streamRequest('a', 2)), grpcFrame(streamRequest('b', 2))], {}],
    ['a message split over two DATA frames', streamHeaders(), split(grpcFrame(streamRequest('split', 2)), 6), { status: 0, replies: 2 }],
    ['a message and stray bytes', streamHeaders(), [Buffer.concat([grpcFrame(streamRequest('a', 2)), Buffer.from([1, 2])])], {}],
    ['no message at all', streamHeaders(), [], {}],
    ['bytes protobuf rejects', streamHeaders(), [grpcFrame(Buffer.from([0x0a, 0xff, 0xff, 0xff]))], {}],
    ['a 20,000-byte name (grpc-js)', streamHeaders(), [grpcFrame(streamRequest('n'.repeat(20_000), 2))], { status: 0, replies: 2 }],
  ];
  for (const [name, headers, body, expected] of cases) {
    it(`answers ${name} as grpc-js does`, async () => {
      const a = await both(headers, body);
      if (expected.status !== undefined) expect(a.grpcStatus).toBe(expected.status);
      if (expected.replies !== undefined) expect(texts(a.data)).toHaveLength(expected.replies);
    });
  }

  it('sends the replies in order, "Hello <name> <i>"', async () => {
    const a = await rawRequest(servers.fastSession, streamHeaders(), [grpcFrame(streamRequest('n', 1200))]);
    expect(texts(a.data)).toEqual(Array.from({ length: 1200 }, (_, i) => `Hello n ${i + 1}`));
  });

  it('answers a deadline that passes before the request ends as grpc-js does (DEADLINE_EXCEEDED, trailers only)', async () => {
    const a = await both(streamHeaders({ 'grpc-timeout': '200m' }), [grpcFrame(streamRequest('open', 2))], { keepOpen: true, waitMs: 5000 });
    expect(a.grpcStatus).toBe(4);
  });

  for (const [what, options] of [
    ['-sleep 0.02', { sleepMs: 20 }],
    ['-fail_rate 1 -fail_code RESOURCE_EXHAUSTED', { failRate: 1, failCode: 8 }],
  ] as const) {
    it(`answers streams under ${what} as grpc-js does`, async () => {
      const pair = await Promise.all([startTestServer(options), startTestServer({ ...options, fastPath: false })]);
      const sessions = await Promise.all(pair.map((s) => h2Session(s.address)));
      try {
        const local = { fast: pair[0]!, plain: pair[1]!, fastSession: sessions[0]!, plainSession: sessions[1]! };
        await sameAnswers(local, streamHeaders(), [grpcFrame(streamRequest('s', 3))]);
        await sameAnswers(local, streamHeaders({ 'x-helloworld-fail-after': '2' }), [grpcFrame(streamRequest('s', 3))]);
        await sameAnswers(local, streamHeaders({ 'x-helloworld-fail-code': 'OK' }), [grpcFrame(streamRequest('s', 2))]);
      } finally {
        for (const session of sessions) session.destroy();
        for (const s of pair) s.forceShutdown();
      }
    });
  }

  /** Opens a SayHelloStream on each server; `onReply(n)` after each reply (n so far). */
  function openOnBoth(request: Buffer, onReply: (stream: ReturnType<ClientHttp2Session['request']>, n: number) => void) {
    return [servers.fastSession, servers.plainSession].map(
      (session) =>
        new Promise<string[]>((resolve) => {
          const stream = session.request(streamHeaders({ 'grpc-timeout': '20S' }), { endStream: false });
          const chunks: Buffer[] = [];
          // replies complete so far, counted as the bytes come
          let replies = 0;
          let pending = Buffer.alloc(0);
          stream.on('data', (d: Buffer) => {
            chunks.push(d);
            pending = Buffer.concat([pending, d]);
            while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
              pending = pending.subarray(5 + pending.readUInt32BE(1));
              replies++;
            }
            onReply(stream, replies);
          });
          stream.on('error', () => {});
          stream.on('close', () => resolve(texts(Buffer.concat(chunks))));
          stream.end(grpcFrame(request));
        }),
    );
  }

  const lastLines = async (logged: number[]) => {
    await expect.poll(() => [servers.fast.log.length - logged[0]!, servers.plain.log.length - logged[1]!], { timeout: 10_000 }).toEqual([1, 1]);
    return [servers.fast.log.at(-1)!, servers.plain.log.at(-1)!];
  };

  it('logs a stream its client cancels mid-stream as grpc-js does (CANCELLED, the replies sent), and counts it out', async () => {
    const logged = [servers.fast.log.length, servers.plain.log.length];
    const got = await Promise.all(openOnBoth(streamRequest('gone', 50, 150), (stream, n) => n === 2 && stream.close(h2.NGHTTP2_CANCEL)));
    expect(got).toEqual([
      ['Hello gone 1', 'Hello gone 2'],
      ['Hello gone 1', 'Hello gone 2'],
    ]);
    const [fast, plain] = await lastLines(logged);
    expect(logLine(fast!)).toEqual(logLine(plain!));
    expect(fast).toMatchObject({ status: 'CANCELLED', messages_received: 1, messages_sent: 2 });
    expect([servers.fast.inFlight(), servers.plain.inFlight()]).toEqual([0, 0]);
  });

  it('holds a client that does not read to its window: cancelled, it had been sent a window of replies, not the million', async () => {
    const count = 1_000_000;
    const logged = [servers.fast.log.length, servers.plain.log.length];
    const paused: Array<ReturnType<ClientHttp2Session['request']>> = [];
    const got = openOnBoth(streamRequest('slow', count), (stream, n) => {
      if (n > 0 && !paused.includes(stream)) {
        paused.push(stream);
        stream.pause(); // node:http2 stops giving the window back: the server's writes wait
      }
    });
    await expect.poll(() => paused.length).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (const stream of paused) stream.close(h2.NGHTTP2_CANCEL);
    await Promise.all(got);
    const [fast, plain] = await lastLines(logged);
    expect(fast).toMatchObject({ status: 'CANCELLED', messages_received: 1 });
    // (grpc-js, its writes still waiting on the hop when the client goes, sometimes logs INTERNAL "Internal server error")
    expect(['CANCELLED', 'INTERNAL']).toContain(plain!.status);
    // a window's worth and what waits for it, not the million
    for (const line of [fast!, plain!]) expect(line.messages_sent).toBeLessThan(count / 10);
  });

  it('writes to a client that reads slowly only as fast as it reads, and ends OK', async () => {
    const count = 30_000;
    const paused = new Set<ReturnType<ClientHttp2Session['request']>>();
    const got = await Promise.all(
      openOnBoth(streamRequest('slow', count), (stream, n) => {
        if (n < 100 || paused.has(stream)) return;
        paused.add(stream);
        stream.pause();
        setTimeout(() => stream.resume(), 300);
      }),
    );
    const want = Array.from({ length: count }, (_, i) => `Hello slow ${i + 1}`);
    expect(got[0]).toEqual(want);
    expect(got[1]).toEqual(want);
  });

  for (const [method, headers, body] of [
    ['SayHelloStream', streamHeaders(), [grpcFrame(streamRequest('drain', 1000, 100))]],
    // (the client never half-closes: the stream is open when the grace period is over)
    ['SayHelloBidi', grpcHeaders(SAY_HELLO_BIDI_PATH), [grpcFrame(helloRequest('a')), grpcFrame(helloRequest('b'))]],
  ] as const) {
    it(`ends a ${method} still open when the grace period is over UNAVAILABLE, as grpc-js does`, async () => {
      const pair = await Promise.all([startTestServer(), startTestServer({ fastPath: false })]);
      const sessions = await Promise.all(pair.map((s) => h2Session(s.address)));
      try {
        const answers = sessions.map((session) => rawRequest(session, headers, [...body], { waitMs: 10_000, keepOpen: method === 'SayHelloBidi' }));
        await expect.poll(() => pair.map((s) => s.inFlight())).toEqual([1, 1]);
        const clean = await Promise.all(pair.map((s) => s.shutdown(450)));
        expect(clean).toEqual([false, false]);
        const [a, b] = await Promise.all(answers);
        for (const answer of [a!, b!]) {
          expect({ status: answer.grpcStatus, message: answer.grpcMessage }).toEqual({ status: 14, message: SHUTTING_DOWN });
          expect(texts(answer.data).length).toBeGreaterThanOrEqual(2);
        }
        expect(seen(a!).headers).toEqual(seen(b!).headers);
        const lines = pair.map((s: TestServer) => s.log.at(-1)!);
        expect(lines[0]).toMatchObject({ status: 'UNAVAILABLE', details: SHUTTING_DOWN, messages_sent: texts(a!.data).length });
        expect(lines[1]).toMatchObject({ status: 'UNAVAILABLE', details: SHUTTING_DOWN, messages_sent: texts(b!.data).length });
      } finally {
        for (const session of sessions) session.destroy();
        for (const s of pair) s.forceShutdown();
      }
    });
  }

  it('takes SayHelloStreams with any override headers and deadline, and leaves compression, malformed deadlines and bidi to grpc-js', () => {
    const base = { ':method': 'POST', ':path': SAY_HELLO_STREAM_PATH, 'content-type': 'application/grpc' };
    expect(qualifiesForStreamFastPath({ ...base, 'x-helloworld-delay-ms': '250', 'grpc-timeout': '1S' }, false)).toBe(true);
    expect(qualifiesForStreamFastPath({ ...base, 'grpc-encoding': 'gzip' }, false)).toBe(false);
    expect(qualifiesForStreamFastPath({ ...base, 'grpc-timeout': 'soon' }, false)).toBe(false);
    expect(qualifiesForStreamFastPath({ ...base, ':path': SAY_HELLO_BIDI_PATH }, false)).toBe(false);
    expect(qualifiesForStreamFastPath(base, true)).toBe(false);
    expect(qualifiesForBidiFastPath({ ...base, ':path': SAY_HELLO_BIDI_PATH }, false)).toBe(true);
    expect(qualifiesForBidiFastPath({ ...base, ':path': SAY_HELLO_BIDI_PATH, 'grpc-encoding': 'gzip' }, false)).toBe(false);
    expect(qualifiesForBidiFastPath({ ...base, ':path': SAY_HELLO_BIDI_PATH }, true)).toBe(false);
  });
});

describe('SayHelloBidi on the fast path', () => {
  const bidiHeaders = (extra: OutgoingHttpHeaders = {}) => grpcHeaders(SAY_HELLO_BIDI_PATH, extra);
  const requests = (...names: string[]) => names.map((n) => grpcFrame(helloRequest(n)));
  const cases: [string, OutgoingHttpHeaders, Buffer[], { status?: number; replies?: number }, Parameters<typeof rawRequest>[3]?][] = [
    ['three requests, one a DATA frame', bidiHeaders(), requests('a', 'b', 'c'), { status: 0, replies: 3 }],
    ['three requests in one DATA frame', bidiHeaders(), [Buffer.concat(requests('a', 'b', 'c'))], { status: 0, replies: 3 }],
    ['names repeated and alternating (a, a, b, a, a)', bidiHeaders(), requests('a', 'a', 'b', 'a', 'a'), { status: 0, replies: 5 }],
    // the same name in other bytes (an unknown field after it): read again, answered alike
    ['one name in two encodings', bidiHeaders(), [grpcFrame(Buffer.concat([helloRequest('a'), Buffer.from([0x10, 0x01])])), ...requests('a', 'a')], { status: 0, replies: 3 }],
    ['no request at all (the client half-closes at once)', bidiHeaders(), [], { status: 0, replies: 0 }],
    ['an empty message, a UTF-8 name, one not UTF-8', bidiHeaders(), [grpcFrame(Buffer.alloc(0)), grpcFrame(helloRequest('wörld ✓')), grpcFrame(helloRequest(Buffer.from([0xff, 0xc3])))], { status: 0, replies: 3 }],
    ['40 requests (more than wait at once)', bidiHeaders(), requests(...Array.from({ length: 40 }, (_, i) => `n${i}`)), { status: 0, replies: 40 }],
    ['20,000 requests in one go', bidiHeaders(), [Buffer.concat(requests(...Array.from({ length: 20_000 }, (_, i) => `m${i}`)))], { status: 0, replies: 20_000 }, { waitMs: 20_000 }],
    ['a message split over two DATA frames', bidiHeaders(), (() => { const f = grpcFrame(helloRequest('split')); return [f.subarray(0, 3), f.subarray(3)]; })(), { status: 0, replies: 1 }],
    ['an Envoy attempt count and metadata', bidiHeaders({ 'x-envoy-attempt-count': '3', 'x-any': 'v', 'user-agent': 'test/1' }), requests('a'), { status: 0, replies: 1 }],
    ['a delay before every reply (x-helloworld-delay-ms 15)', bidiHeaders({ 'x-helloworld-delay-ms': '15' }), requests('a', 'b'), { status: 0, replies: 2 }],
    ['a fail code: the failure at once', bidiHeaders({ 'x-helloworld-fail-code': 'ABORTED' }), requests('a', 'b'), { status: 10, replies: 0 }],
    ['a fail code after 1 reply', bidiHeaders({ 'x-helloworld-fail-code': 'UNAVAILABLE', 'x-helloworld-fail-after': '1' }), requests('a', 'b', 'c'), { status: 14, replies: 1 }],
    ['a fail code after more replies than requests', bidiHeaders({ 'x-helloworld-fail-code': '14', 'x-helloworld-fail-after': '5' }), requests('a', 'b'), { status: 0, replies: 2 }],
    ['a bad fail-after (INVALID_ARGUMENT)', bidiHeaders({ 'x-helloworld-fail-code': '14', 'x-helloworld-fail-after': 'soon' }), requests('a'), { status: 3 }],
    ['x-helloworld-fault (INVALID_ARGUMENT)', bidiHeaders({ 'x-helloworld-fault': 'crash' }), requests('a'), { status: 3 }],
    ['a compressed flag (grpc-js reads it as it is: the encoding is identity)', bidiHeaders(), [grpcFrame(helloRequest('c'), { compressed: true })], { status: 0, replies: 1 }],
    ['bytes protobuf rejects after a good request (INTERNAL)', bidiHeaders(), [...requests('a'), grpcFrame(Buffer.from([0x0a, 0xff, 0xff, 0xff]))], { status: 13 }],
    ['a truncated message at the end', bidiHeaders(), [...requests('a'), grpcFrame(helloRequest('xyz')).subarray(0, 7)], { status: 0, replies: 1 }],
    ['a length prefix over the 4 MB limit (RESOURCE_EXHAUSTED)', bidiHeaders(), [grpcFrame(Buffer.alloc(16), { length: 5 * 1024 * 1024 })], { status: 8 }, { keepOpen: true }],
    ['a deadline while the client keeps the stream open', bidiHeaders({ 'grpc-timeout': '200m' }), requests('a', 'b'), { status: 4, replies: 2 }, { keepOpen: true }],
    ['grpc-encoding gzip (grpc-js)', bidiHeaders({ 'grpc-encoding': 'gzip' }), requests('g'), {}],
    ['a malformed grpc-timeout (grpc-js)', bidiHeaders({ 'grpc-timeout': 'soon' }), requests('t'), {}],
  ];
  for (const [name, headers, body, expected, options] of cases) {
    it(`answers ${name} as grpc-js does`, async () => {
      const a = await both(headers, body, options);
      if (expected.status !== undefined) expect(a.grpcStatus).toBe(expected.status);
      if (expected.replies !== undefined) expect(texts(a.data)).toHaveLength(expected.replies);
    });
  }

  it('replies to each request by its own name when names repeat and alternate', async () => {
    const a = await both(bidiHeaders(), requests('a', 'a', 'b', 'a', 'b', 'b'));
    expect(texts(a.data)).toEqual(['Hello a 1', 'Hello a 2', 'Hello b 3', 'Hello a 4', 'Hello b 5', 'Hello b 6']);
  });

  it('reads no more requests from a client that does not read its replies than a window of replies and the few waiting', async () => {
    const count = 100_000;
    const s = servers.fast;
    const logged = s.log.length;
    const stream = servers.fastSession.request(bidiHeaders({ 'grpc-timeout': '20S' }), { endStream: false });
    stream.on('error', () => {});
    stream.pause(); // node:http2 gives no window back: the server's replies wait
    stream.write(Buffer.concat(requests(...Array.from({ length: count }, (_, i) => `w${i}`))));
    await new Promise((resolve) => setTimeout(resolve, 500));
    stream.close(h2.NGHTTP2_CANCEL);
    await expect.poll(() => s.log.length).toBe(logged + 1);
    const line = s.log.at(-1)!;
    expect(line).toMatchObject({ method: SAY_HELLO_BIDI_PATH, status: 'CANCELLED' });
    expect(line.messages_received!).toBeLessThan(count / 4);
    expect(line.messages_received! - line.messages_sent!).toBeLessThanOrEqual(16);
  });
});
