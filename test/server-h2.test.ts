// The server's own HTTP/2 (src/h2/connection.ts in the server role) seen from a client that writes bytes on a socket: the
// connection preface, PING, CONTINUATION, connection errors, flow control of what the server sends, the
// concurrency limit, graceful drain, the peer in the access log and a client's RST_STREAM; and, with
// fast-check, random stream actions and windows opened in random steps, on both paths (the fast path and the
// hop to grpc-js). Everything goes to a real server over loopback; every wait is bounded.
import type { Client } from '@grpc/grpc-js';
import { connect } from 'node:net';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { CLIENT_PREFACE, encodeFrame, encodeRstStream, encodeSettings, encodeWindowUpdate, ErrorCode, Flag, FrameType, Setting } from '../src/h2/frames.ts';
import { encodeHeaders, type HeaderList } from '../src/h2/hpack.ts';
import { HEALTH_CHECK_PATH, SAY_HELLO_PATH } from '../src/rpc-names.ts';
import { DEFAULT_LIMITS } from '../src/h2/limits.ts';
import { greeterClient, sayHello } from './helpers/grpc-js-client.ts';
import { grpcFrame, helloRequest } from './helpers/raw-grpc.ts';
import { closeRawH2Connections, MAX_FRAME, RawH2, requestFields, WAIT_MS } from './helpers/raw-h2.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const DEFAULT_WINDOW = 65_535;
const STREAM_WINDOW = 4 * 1024 * 1024 + 65_536;
const CONNECTION_WINDOW = 16 * 1024 * 1024;
const MAX_HEADER_BLOCK = DEFAULT_LIMITS.maxHeaderBlock;

/** A gRPC message out of DATA bytes: exactly one, uncompressed. */
function onlyMessage(data: Buffer): Buffer {
  expect(data.length).toBeGreaterThanOrEqual(5);
  expect(data[0]).toBe(0);
  expect(data.readUInt32BE(1)).toBe(data.length - 5);
  return data.subarray(5);
}

/** HelloReply { message } is encoded as HelloRequest { name } is: field 1, a string. */
const helloReply = (message: string) => helloRequest(message);

let server: TestServer;
let greeter: Client;

beforeAll(async () => {
  server = await startTestServer();
  greeter = greeterClient(server.address);
});
afterAll(() => {
  greeter?.close();
  server?.forceShutdown();
});
afterEach(closeRawH2Connections);

async function expectServing(): Promise<void> {
  const answer = await sayHello(greeter, 'still there', { deadlineMs: WAIT_MS });
  expect(answer.err).toBeNull();
  expect(answer.reply?.message).toBe('Hello still there');
}

describe('the connection', () => {
  it('opens with SETTINGS (concurrency limit, stream window, no push) and a connection WINDOW_UPDATE, and ACKs the client\'s SETTINGS', async () => {
    const client = await RawH2.open(server.port);
    const settings = client.received.find((f) => f.type === FrameType.SETTINGS && !(f.flags & Flag.ACK))!;
    const values = new Map<number, number>();
    for (let at = 0; at < settings.payload.length; at += 6) values.set(settings.payload.readUInt16BE(at), settings.payload.readUInt32BE(at + 2));
    expect(values.get(Setting.MAX_CONCURRENT_STREAMS)).toBe(DEFAULT_LIMITS.maxConcurrentStreams);
    expect(values.get(Setting.INITIAL_WINDOW_SIZE)).toBe(STREAM_WINDOW);
    expect(values.get(Setting.ENABLE_PUSH)).toBe(0);
    const update = await client.waitFor((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 0, 'a connection WINDOW_UPDATE');
    expect(update.payload.readUInt32BE(0)).toBe(CONNECTION_WINDOW - DEFAULT_WINDOW);
    expect(client.received[0]!.type).toBe(FrameType.SETTINGS); // the server's preface comes first
  });

  // (an HTTP/1.x request gets an HTTP/1.1 answer: server-http-health.test.ts)
  it('answers bytes that are neither the preface nor an HTTP/1 request line with GOAWAY PROTOCOL_ERROR and closes, and goes on serving', async () => {
    const client = await RawH2.open(server.port, { preface: false });
    client.write(Buffer.from('BREW / HTCPCP/1.0\r\nHost: x\r\n\r\n', 'latin1'));
    expect(await client.goaway()).toEqual({ lastStreamId: 0, code: 'PROTOCOL_ERROR' });
    await client.waitClosed();
    await expectServing();
  });

  it('closes a connection that starts with a TLS ClientHello, and goes on serving', async () => {
    const client = await RawH2.open(server.port, { preface: false });
    // a TLS 1.0 record header (handshake, 0x03 0x01), then the start of a ClientHello
    const hello = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0x2f, 0x01, 0x00, 0x00, 0x2b, 0x03, 0x03]), Buffer.alloc(32, 0xab), Buffer.from([0x00, 0x00, 0x02, 0x13, 0x01, 0x01, 0x00])]);
    client.write(hello);
    await client.waitClosed();
    await expectServing();
  });

  it('answers PING with a PING ACK carrying the same 8 bytes', async () => {
    const client = await RawH2.open(server.port);
    const payload = Buffer.from('8 bytes!', 'latin1');
    client.write(encodeFrame(FrameType.PING, 0, 0, payload));
    const ack = await client.waitFor((f) => f.type === FrameType.PING, 'PING ACK');
    expect(ack.flags & Flag.ACK).toBe(Flag.ACK);
    expect(ack.streamId).toBe(0);
    expect(ack.payload).toEqual(payload);
  });
});

describe('a request', () => {
  it('whose header block is split over HEADERS and CONTINUATION frames is answered', async () => {
    const client = await RawH2.open(server.port);
    const block = encodeHeaders(requestFields(server.port, SAY_HELLO_PATH, [['user-agent', 'raw-h2-test/1']]));
    const cut = [Math.floor(block.length / 3), Math.floor((2 * block.length) / 3)] as const;
    client.write(
      Buffer.concat([
        encodeFrame(FrameType.HEADERS, 0, 1, block.subarray(0, cut[0])),
        encodeFrame(FrameType.CONTINUATION, 0, 1, block.subarray(cut[0], cut[1])),
        encodeFrame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, block.subarray(cut[1])),
      ]),
    );
    client.data(1, grpcFrame(helloRequest('continued')));
    const answer = await client.finished(1);
    expect(answer.rstCode).toBeUndefined();
    expect(answer.headers).toHaveLength(2);
    expect(answer.headers[0]![':status']).toBe('200');
    expect(answer.dataFrames).toBe(1);
    expect(onlyMessage(answer.data)).toEqual(helloReply('Hello continued'));
    expect(answer.headers[1]!['grpc-status']).toBe('0');
  });
});

describe('connection errors: GOAWAY with the code, then the connection closes', () => {
  const block = encodeHeaders(requestFields(0));
  const cases: Array<[string, () => Buffer, string]> = [
    ['HEADERS on an even (server-initiated) stream id', () => encodeFrame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 2, block), 'PROTOCOL_ERROR'],
    ['DATA on a stream never opened', () => encodeFrame(FrameType.DATA, 0, 7, grpcFrame(helloRequest('nobody'))), 'PROTOCOL_ERROR'],
    ['a frame longer than 16384 bytes', () => encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, 1, Buffer.alloc(MAX_FRAME + 1)), 'FRAME_SIZE_ERROR'],
    // an integer with more continuation octets than any 32-bit value needs
    ['a header block HPACK cannot decode', () => encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])), 'COMPRESSION_ERROR'],
    [
      'a CONTINUATION flood (a header block over 256 KiB, no END_HEADERS)',
      () => {
        // one frame past the limit, and no more: the server has read everything when it closes
        const frames = [encodeFrame(FrameType.HEADERS, 0, 1, Buffer.alloc(MAX_FRAME))];
        while (frames.length * MAX_FRAME <= MAX_HEADER_BLOCK) frames.push(encodeFrame(FrameType.CONTINUATION, 0, 1, Buffer.alloc(MAX_FRAME)));
        return Buffer.concat(frames);
      },
      'ENHANCE_YOUR_CALM',
    ],
  ];
  for (const [name, bytes, code] of cases) {
    it(`${name}: ${code}`, async () => {
      const client = await RawH2.open(server.port);
      client.write(bytes());
      expect((await client.goaway()).code).toBe(code);
      await client.waitClosed();
      await expectServing();
    });
  }
});

describe('flow control of what the server sends', () => {
  it('sends no more DATA than the client\'s stream and connection windows allow, and the rest as they open', async () => {
    const initialWindow = 100;
    const client = await RawH2.open(server.port, { settings: [[Setting.INITIAL_WINDOW_SIZE, initialWindow]] });
    // larger than a connection window of 65535, so both windows are the limit in turn; grpc-js answers it
    const name = 'w'.repeat(100_000);
    client.call(1, requestFields(server.port), helloRequest(name));
    const sent = () => client.answer(1).data.length;

    await client.until(() => (sent() >= initialWindow ? true : undefined), `${initialWindow} bytes of DATA`);
    await client.roundTrip();
    expect(sent()).toBe(initialWindow);
    expect(client.answer(1).ended).toBe(false);

    client.windowUpdate(1, 1 << 20);
    await client.until(() => (sent() >= DEFAULT_WINDOW ? true : undefined), 'DATA up to the connection window');
    await client.roundTrip();
    expect(sent()).toBe(DEFAULT_WINDOW);
    expect(client.answer(1).ended).toBe(false);

    client.windowUpdate(0, 1 << 20);
    const answer = await client.finished(1);
    expect(answer.rstCode).toBeUndefined();
    expect(onlyMessage(answer.data)).toEqual(helloReply(`Hello ${name}`));
    expect(answer.headers.at(-1)!['grpc-status']).toBe('0');

    // every DATA frame fitted the windows as the client had opened them when it came
    let onStream = 0;
    let onConnection = 0;
    for (const frame of client.received.filter((f) => f.type === FrameType.DATA)) {
      expect(frame.streamId).toBe(1);
      onStream += frame.payload.length;
      onConnection += frame.payload.length;
      expect(frame.payload.length).toBeLessThanOrEqual(MAX_FRAME);
      expect(onStream).toBeLessThanOrEqual(initialWindow + frame.granted.stream);
      expect(onConnection).toBeLessThanOrEqual(DEFAULT_WINDOW + frame.granted.connection);
    }
  });
});

describe('calls forwarded to grpc-js, more bytes both ways than a window holds', () => {
  it('are all answered (three 64 KB SayHellos on one connection once stalled for ever in the in-memory hop)', async () => {
    const client = await RawH2.open(server.port, { settings: [[Setting.INITIAL_WINDOW_SIZE, 1 << 20]] });
    client.windowUpdate(0, 1 << 20); // this client reads whatever comes: the server's sending is not the limit
    const names = [1, 3, 5].map((id) => `${id}`.padEnd(64 * 1024, 'n')); // over 16 KB: grpc-js takes them
    names.forEach((name, i) => client.call(1 + 2 * i, requestFields(server.port), helloRequest(name)));
    for (const [i, name] of names.entries()) {
      const answer = await client.finished(1 + 2 * i);
      expect(answer.headers.at(-1)!['grpc-status']).toBe('0');
      expect(onlyMessage(answer.data).equals(helloReply(`Hello ${name}`))).toBe(true);
    }
  });
});

describe('a forwarded answer to a client that opens its window a byte at a time', () => {
  it('arrives whole, its trailers after its last byte (they once overtook DATA still waiting)', async () => {
    const client = await RawH2.open(server.port, { settings: [[Setting.INITIAL_WINDOW_SIZE, 6147]] });
    const names = [78, 19, 6].map((kb, i) => `${i}`.padEnd(kb * 1024, 'n')); // found so by fast-check
    names.forEach((name, i) => client.call(1 + 2 * i, requestFields(server.port), helloRequest(name)));
    for (let step = 0; step < 40; step++) {
      await client.roundTrip();
      const increment = step < 30 ? 1 : 1 << 20;
      client.windowUpdate(0, increment);
      for (const i of names.keys()) client.windowUpdate(1 + 2 * i, increment);
    }
    for (const [i, name] of names.entries()) {
      const answer = await client.finished(1 + 2 * i);
      expect(answer.headers.at(-1)!['grpc-status']).toBe('0');
      expect(onlyMessage(answer.data).equals(helloReply(`Hello ${name}`))).toBe(true);
    }
  });
});

describe('flow control of what the server sends (fast-check)', () => {
  // Calls whose answers exceed the windows, on both paths, the windows opened bit by bit in random steps
  // (and the initial window changed by SETTINGS halfway): every answer arrives whole and right, and no DATA
  // frame ever goes beyond the windows as the client had opened them.
  it('delivers every answer whole, within the windows, however they open', { timeout: Number(process.env.FUZZ_MS ?? 20_000) + 30_000 }, async () => {
    const calls = fc.array(fc.record({ nameKb: fc.integer({ min: 0, max: 120 }), forwarded: fc.boolean() }), { minLength: 1, maxLength: 4 });
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(
        calls,
        fc.integer({ min: 0, max: 70_000 }),
        fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 8 }),
        fc.option(fc.integer({ min: 0, max: 200_000 }), { nil: undefined }),
        async (wanted, initialWindow, steps, laterWindow) => {
          runs++;
          const client = await RawH2.open(server.port, { settings: [[Setting.INITIAL_WINDOW_SIZE, initialWindow]] });
          const ids = wanted.map((_, i) => 1 + 2 * i);
          const names = wanted.map((c, i) => `${i}`.padEnd(c.nameKb * 1024, 'n'));
          wanted.forEach((c, i) => client.call(ids[i]!, requestFields(server.port, SAY_HELLO_PATH, c.forwarded ? [['grpc-encoding', 'gzip']] : []), helloRequest(names[i]!)));
          let windowNow = initialWindow;
          const streamGrants = new Map<number, number>();
          const done = () => ids.every((id) => client.answer(id).ended || client.answer(id).rstCode !== undefined);
          for (let step = 0; !done(); step++) {
            if (step > 60) throw new Error('the answers did not arrive as the windows opened');
            await client.roundTrip();
            if (step === 2 && laterWindow !== undefined) {
              client.write(encodeSettings([[Setting.INITIAL_WINDOW_SIZE, laterWindow]]));
              windowNow = laterWindow;
            }
            const increment = step < 30 ? steps[step % steps.length]! : 1 << 20; // random steps, then wide open
            client.windowUpdate(0, increment);
            for (const id of ids) {
              client.windowUpdate(id, increment);
              streamGrants.set(id, (streamGrants.get(id) ?? 0) + increment);
            }
          }
          for (const [i, id] of ids.entries()) {
            const answer = client.answer(id);
            expect(answer.rstCode, `stream ${id}`).toBeUndefined();
            expect(answer.headers.at(-1)!['grpc-status'], `stream ${id}`).toBe('0');
            expect(onlyMessage(answer.data).equals(helloReply(`Hello ${names[i]}`)), `stream ${id}`).toBe(true);
          }
          let onConnection = 0;
          const onStream = new Map<number, number>();
          for (const frame of client.received.filter((f) => f.type === FrameType.DATA)) {
            onConnection += frame.payload.length;
            onStream.set(frame.streamId, (onStream.get(frame.streamId) ?? 0) + frame.payload.length);
            expect(frame.payload.length).toBeLessThanOrEqual(MAX_FRAME);
            expect(onConnection).toBeLessThanOrEqual(DEFAULT_WINDOW + frame.granted.connection);
            // (a later SETTINGS may only have opened a stream's window further: the larger initial window bounds it)
            expect(onStream.get(frame.streamId)).toBeLessThanOrEqual(Math.max(initialWindow, windowNow) + frame.granted.stream);
          }
          client.destroy();
        },
      ),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 25), interruptAfterTimeLimit: Number(process.env.FUZZ_MS ?? 20_000) },
    );
    expect(runs).toBeGreaterThan(0);
    await expect.poll(() => server.inFlight(), { timeout: WAIT_MS }).toBe(0);
  });
});

describe('the concurrency limit', () => {
  const MAX_CONCURRENT_STREAMS = 1000; // the default is as good as unlimited: a server with a limit
  it(`refuses the stream past ${MAX_CONCURRENT_STREAMS} open ones with RST_STREAM REFUSED_STREAM, and counts them all out when the client goes`, async () => {
    const server = await startTestServer({ limits: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS } });
    onTestFinished(() => server.forceShutdown());
    const client = await RawH2.open(server.port);
    const fields = encodeHeaders(requestFields(server.port));
    const frames: Buffer[] = [];
    // requests that never finish: HEADERS without END_STREAM, and no DATA
    for (let i = 0; i <= MAX_CONCURRENT_STREAMS; i++) frames.push(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, 2 * i + 1, fields));
    client.write(Buffer.concat(frames));
    const extra = 2 * MAX_CONCURRENT_STREAMS + 1;
    expect(await client.rstStream(extra)).toBe('REFUSED_STREAM');
    expect(client.received.filter((f) => f.type === FrameType.RST_STREAM).map((f) => f.streamId)).toEqual([extra]);
    await expect.poll(() => server.inFlight(), { timeout: WAIT_MS }).toBe(MAX_CONCURRENT_STREAMS);
    client.destroy();
    await expect.poll(() => server.inFlight(), { timeout: WAIT_MS }).toBe(0);
  });
});

describe('graceful drain', () => {
  it('sends GOAWAY NO_ERROR with the last stream, refuses newer ones, finishes the call in flight, then closes', async () => {
    const own = await startTestServer();
    try {
      const client = await RawH2.open(own.port);
      client.call(1, requestFields(own.port, SAY_HELLO_PATH, [['x-helloworld-delay-ms', '500']]), helloRequest('draining'));
      await expect.poll(() => own.inFlight(), { timeout: WAIT_MS }).toBe(1);
      const shutdown = own.shutdown(5000);

      expect(await client.goaway()).toEqual({ lastStreamId: 1, code: 'NO_ERROR' });
      client.headers(3, requestFields(own.port), true);
      expect(await client.rstStream(3)).toBe('REFUSED_STREAM');

      const answer = await client.finished(1);
      expect(answer.rstCode).toBeUndefined();
      expect(answer.headers[0]![':status']).toBe('200');
      expect(onlyMessage(answer.data)).toEqual(helloReply('Hello draining'));
      expect(answer.headers.at(-1)!['grpc-status']).toBe('0');
      await client.waitClosed();
      expect(await shutdown).toBe(true);
    } finally {
      own.forceShutdown();
    }
  });
});

describe('the access log', () => {
  /** The log line of the next call to end, after `start()` made one. */
  async function loggedCall(start: () => void) {
    const before = server.log.length;
    start();
    await expect.poll(() => server.log.length, { timeout: WAIT_MS }).toBe(before + 1);
    return server.log.at(-1)!;
  }

  it('shows the client\'s own address as the peer, forwarded to grpc-js or not, whatever peer header the client sends', async () => {
    const client = await RawH2.open(server.port);
    const peer = `127.0.0.1:${client.socket.localPort}`;
    const spoof: HeaderList = [['x-helloworld-forwarded-peer', '6.6.6.6:1']];
    const calls: Array<[string, number, HeaderList, Buffer]> = [
      ['health Check (health-check.ts)', 1, requestFields(server.port, HEALTH_CHECK_PATH), Buffer.alloc(0)],
      ['health Check with a peer header (grpc-js: grpc-encoding gzip sends it there)', 3, requestFields(server.port, HEALTH_CHECK_PATH, [...spoof, ['grpc-encoding', 'gzip']]), Buffer.alloc(0)],
      ['SayHello with a peer header (fast path)', 5, requestFields(server.port, SAY_HELLO_PATH, spoof), helloRequest('spoof')],
    ];
    for (const [what, streamId, fields, message] of calls) {
      const entry = await loggedCall(() => client.call(streamId, fields, message));
      expect(entry.method, what).toBe(fields.find(([name]) => name === ':path')![1]);
      expect(entry.status, what).toBe('OK');
      expect(entry.peer, what).toBe(peer);
      expect((await client.finished(streamId)).headers.at(-1)!['grpc-status'], what).toBe('0');
    }
  });

  const delayed: Array<[string, HeaderList]> = [
    ['the fast path', []],
    ['grpc-js (grpc-encoding gzip sends it there)', [['grpc-encoding', 'gzip']]],
  ];
  for (const [path, extra] of delayed) {
    it(`logs a delayed SayHello the client resets as CANCELLED, and counts it out (${path})`, async () => {
      const client = await RawH2.open(server.port);
      const before = server.log.length;
      client.call(1, requestFields(server.port, SAY_HELLO_PATH, [['x-helloworld-delay-ms', '2000'], ...extra]), helloRequest('impatient'));
      await expect.poll(() => server.inFlight(), { timeout: WAIT_MS }).toBe(1);
      client.write(encodeRstStream(1, ErrorCode.CANCEL));
      await expect.poll(() => server.log.length, { timeout: WAIT_MS }).toBe(before + 1);
      const entry = server.log.at(-1)!;
      expect(entry.method).toBe(SAY_HELLO_PATH);
      expect(entry.status).toBe('CANCELLED');
      expect(server.inFlight()).toBe(0);
      expect(client.answer(1).ended).toBe(false);
    });
  }
});

describe('a stream error the server finds', () => {
  for (const [path, extra] of [
    ['the fast path', []],
    ['grpc-js', [['grpc-encoding', 'gzip']]],
  ] as Array<[string, HeaderList]>) {
    it(`ends the call: DATA after END_STREAM on a delayed SayHello gets RST_STREAM STREAM_CLOSED, and the call is counted out (${path})`, async () => {
      const client = await RawH2.open(server.port);
      const before = server.log.length;
      client.call(1, requestFields(server.port, SAY_HELLO_PATH, [['x-helloworld-delay-ms', '300'], ...extra]), helloRequest('twice'));
      await expect.poll(() => server.inFlight(), { timeout: WAIT_MS }).toBe(1);
      client.data(1, grpcFrame(helloRequest('again')));
      expect(await client.rstStream(1)).toBe('STREAM_CLOSED');
      await expect.poll(() => server.inFlight(), { timeout: WAIT_MS }).toBe(0);
      await expect.poll(() => server.log.length, { timeout: WAIT_MS }).toBe(before + 1);
      expect(server.log.at(-1)!.status).toBe('CANCELLED');
    });
  }
});

describe('a client that cancels calls by the thousand', () => {
  // No reset budget, as in grpc-go: a fault-injection load test cancels a call at each deadline, and nghttp2's
  // (node:http2's) 1000 + 33/s would end its connections with GOAWAY. A reset costs the server its HEADERS' work.
  it('keeps the connection: each cancelled call is counted out, and the next calls on it are answered', async () => {
    const client = await RawH2.open(server.port);
    const before = server.log.length;
    const message = grpcFrame(helloRequest('impatient'));
    const delayed = (extra: HeaderList) => encodeHeaders(requestFields(server.port, SAY_HELLO_PATH, [['x-helloworld-delay-ms', '2000'], ...extra]));
    const gzip: HeaderList = [['grpc-encoding', 'gzip']]; // sends the call to grpc-js
    const FAST = 2000;
    const FORWARDED = 200;
    let id = 1;
    // the calls go out, and are cancelled in a later read, as a client's deadline cancels them (a reset in the
    // read that opened its stream is rapid reset, which has a budget: h2-limits.test.ts)
    for (const [count, block] of [[FAST, delayed([])], [FORWARDED, delayed(gzip)]] as const) {
      const calls: Buffer[] = [];
      const resets: Buffer[] = [];
      for (let i = 0; i < count; i++, id += 2) {
        calls.push(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, id, block), encodeFrame(FrameType.DATA, Flag.END_STREAM, id, message));
        resets.push(encodeRstStream(id, ErrorCode.CANCEL));
      }
      client.write(Buffer.concat(calls));
      await client.roundTrip();
      client.write(Buffer.concat(resets));
    }
    const lastCalls: Array<[string, HeaderList]> = [
      ['fast', []],
      ['forwarded', gzip],
    ];
    for (const [name, extra] of lastCalls) {
      client.call(id, requestFields(server.port, SAY_HELLO_PATH, extra), helloRequest(`still here, ${name}`));
      const answer = await client.finished(id);
      expect(answer.headers.at(-1)!['grpc-status'], name).toBe('0');
      expect(onlyMessage(answer.data), name).toEqual(helloReply(`Hello still here, ${name}`));
      id += 2;
    }
    expect(client.received.some((f) => f.type === FrameType.GOAWAY)).toBe(false);
    expect(client.closed).toBe(false);
    // every fast-path call is logged CANCELLED; grpc-js logs only those its handler had started
    await expect.poll(() => server.inFlight(), { timeout: 5000 }).toBe(0);
    await expect.poll(() => server.log.slice(before).filter((entry) => entry.status === 'CANCELLED').length, { timeout: 10_000 }).toBeGreaterThanOrEqual(FAST);
    expect(server.log.slice(before).filter((entry) => entry.status !== 'CANCELLED')).toHaveLength(lastCalls.length);
  });
});

describe('whatever a client does with its streams (fast-check)', () => {
  // Random calls on one connection, each opened, fed, reset or left as it is, the bytes cut anywhere, then
  // the connection kept or dropped: whatever happened, the server (in this process: anything it throws
  // fails the run) goes on serving, and every call the access log counted in is counted out. (It found a
  // forwarded call reset before grpc-js started it, which stayed in flight forever, and HEADERS plus
  // RST_STREAM for an unknown method, which took the process down.)
  const kinds: Record<string, [path: string, extra: HeaderList]> = {
    fast: [SAY_HELLO_PATH, []],
    'fast, delayed': [SAY_HELLO_PATH, [['x-helloworld-delay-ms', '40']]],
    forwarded: [SAY_HELLO_PATH, [['grpc-encoding', 'gzip']]],
    'forwarded, delayed': [SAY_HELLO_PATH, [['grpc-encoding', 'gzip'], ['x-helloworld-delay-ms', '40']]],
    'failing on purpose': [SAY_HELLO_PATH, [['x-helloworld-fail', 'UNAVAILABLE']]],
    'a malformed deadline': [SAY_HELLO_PATH, [['grpc-timeout', 'soon']]],
    'an unsupported encoding': [SAY_HELLO_PATH, [['grpc-encoding', 'br']]],
    'not gRPC': [SAY_HELLO_PATH, [['content-type', 'text/plain']]],
    health: [HEALTH_CHECK_PATH, []],
    'health, forwarded': [HEALTH_CHECK_PATH, [['grpc-encoding', 'gzip']]],
    'health watch': ['/grpc.health.v1.Health/Watch', []],
    reflection: ['/grpc.reflection.v1.ServerReflection/ServerReflectionInfo', []],
    'an unknown method': ['/helloworld.Greeter/Nope', []],
  };
  const call = fc.record({
    kind: fc.constantFrom(...Object.keys(kinds)),
    headersEndStream: fc.boolean(),
    body: fc.constantFrom('none', 'whole', 'half', 'two messages', 'compressed'),
    endStream: fc.boolean(),
    after: fc.constantFrom('nothing', 'RST_STREAM', 'trailers', 'WINDOW_UPDATE', 'more DATA'),
    resetLater: fc.boolean(),
  });

  for (const tls of [false, true]) it(`goes on serving, and counts out every call it counted in${tls ? ' (TLS)' : ''}`, { timeout: Number(process.env.FUZZ_MS ?? 30_000) + 30_000 }, async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(call, { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 1, max: 400 }),
        fc.constantFrom('wait for the answers', 'drop the connection', 'the server shuts down'),
        async (calls, cut, ending) => {
          runs++;
          // a server of its own: a call left counted in by one run must not fail the next (or the shrinking)
          const s = await startTestServer({ useTls: tls });
          onTestFinished(() => s.forceShutdown());
          const client = await RawH2.open(s.port, { tls });
          const frames: Buffer[] = [];
          calls.forEach((c, i) => {
            const id = 1 + 2 * i;
            const [path, extra] = kinds[c.kind]!;
            const message = grpcFrame(helloRequest(`fuzz ${i}`));
            const body = {
              none: Buffer.alloc(0),
              whole: message,
              half: message.subarray(0, 6),
              'two messages': Buffer.concat([message, message]),
              compressed: grpcFrame(helloRequest('x'), { compressed: true }),
            }[c.body];
            frames.push(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS | (c.headersEndStream ? Flag.END_STREAM : 0), id, encodeHeaders(requestFields(s.port, path, extra))));
            if (!c.headersEndStream && (body.length > 0 || c.endStream)) frames.push(encodeFrame(FrameType.DATA, c.endStream ? Flag.END_STREAM : 0, id, body));
            if (c.after === 'RST_STREAM') frames.push(encodeRstStream(id, ErrorCode.CANCEL));
            if (c.after === 'trailers') frames.push(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, id, encodeHeaders([['x-trailer', 'yes']])));
            if (c.after === 'WINDOW_UPDATE') frames.push(encodeWindowUpdate(id, 1024));
            if (c.after === 'more DATA') frames.push(encodeFrame(FrameType.DATA, Flag.END_STREAM, id, message));
          });
          // the same bytes, cut into pieces of `cut` bytes: frames split across reads
          const bytes = Buffer.concat(frames);
          for (let at = 0; at < bytes.length; at += cut) client.write(bytes.subarray(at, at + cut));
          await new Promise((resolve) => setTimeout(resolve, 10));
          calls.forEach((c, i) => c.resetLater && client.write(encodeRstStream(1 + 2 * i, ErrorCode.CANCEL)));
          if (ending === 'wait for the answers' && !client.closed) await client.roundTrip().catch(() => {}); // a connection error ends it early
          if (ending === 'the server shuts down') {
            // (calls left open, a health Watch: the grace period cuts them)
            await s.shutdown(300);
            await client.waitClosed();
            expect(s.inFlight()).toBe(0);
            return;
          }
          client.destroy();
          await expect.poll(() => s.inFlight(), { timeout: 3000 }).toBe(0);
          const greeterOfRun = greeterClient(s.address, tls ? {} : undefined);
          const answer = await sayHello(greeterOfRun, 'still there', { deadlineMs: WAIT_MS });
          greeterOfRun.close();
          expect(answer.reply?.message).toBe('Hello still there');
          s.forceShutdown();
        },
      ),
      // (FUZZ_RUNS and FUZZ_MS to hunt longer by hand)
      { numRuns: Number(process.env.FUZZ_RUNS ?? (tls ? 20 : 60)), interruptAfterTimeLimit: Number(process.env.FUZZ_MS ?? 30_000) },
    );
    expect(runs).toBeGreaterThan(0);
    process.stdout.write(`server-h2 fuzz${tls ? ' (TLS)' : ''}: ${runs} runs of random stream actions, 0 failures\n`);
  });
});

describe('a client that does not read its answers', () => {
  it('is read no further until it does: answers do not pile up in the server', async () => {
    // INVALID_ARGUMENT answers (a malformed delay header): trailers only, which no flow control window holds back
    const s = await startTestServer();
    const socket = connect(s.port, '127.0.0.1');
    try {
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      socket.pause(); // reads nothing, ever, until resumed
      const fields = encodeHeaders(requestFields(s.port, SAY_HELLO_PATH, [['x-helloworld-delay-ms', 'soon']]));
      const body = grpcFrame(helloRequest('unread'));
      const CALLS = 100_000; // ~7 MB of answers, beyond the server's 1 MB and the kernel's buffers
      const chunks: Buffer[] = [CLIENT_PREFACE, encodeSettings([])];
      for (let i = 0, id = 1; i < CALLS; i++, id += 2) {
        chunks.push(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, id, fields), encodeFrame(FrameType.DATA, Flag.END_STREAM, id, body));
      }
      socket.write(Buffer.concat(chunks));
      // the server answers what fits, then stops reading: the calls it has taken stop growing short of all
      let taken = -1;
      await expect
        .poll(
          () => {
            const before = taken;
            taken = s.log.length;
            return taken > 0 && taken === before;
          },
          { timeout: 10_000, interval: 300 },
        )
        .toBe(true);
      expect(taken).toBeLessThan(CALLS);
      socket.resume(); // reading again: the server takes the rest
      socket.on('data', () => {});
      await expect.poll(() => s.log.length, { timeout: 20_000, interval: 100 }).toBe(CALLS);
    } finally {
      socket.destroy();
      s.forceShutdown();
    }
  }, 40_000);
});
