// The client's own HTTP/2 (src/client/h2/session.ts) against a server scripted frame by frame over a real
// socket: what a well-behaved server asks of it (PING, SETTINGS, flow control, a concurrency limit,
// CONTINUATION, GOAWAY) and what a broken one does to it. The client's behaviour against real servers
// (grpc-js, grpc-go, grpcio, HAProxy) is in the client and interop tests.
import fc from 'fast-check';
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, test } from 'vitest';
import { encodeFrame, encodeSettings, ErrorCode, Flag, FrameReader, FrameType, Setting, type Frame } from '../src/h2/frames.ts';
import { encodeHeaders, HpackDecoder, type HeaderList } from '../src/h2/hpack.ts';
import { H2Session, type StreamEnding } from '../src/client/h2/session.ts';
import { keepalive } from '../src/client/h2/keepalive.ts';
import { explainTransportError } from '../src/client/explain.ts';

const PREFACE_LENGTH = 24;
const WAIT_MS = 3000;

/** The server's side of one connection: frames as they come, and a way to send them. */
class Peer {
  readonly frames: Frame[] = [];
  readonly decoder = new HpackDecoder();
  #reader = new FrameReader(1 << 24);
  #preface = Buffer.alloc(0);
  #waiters: Array<() => void> = [];
  closed = false;

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      if (this.#preface.length < PREFACE_LENGTH) {
        const need = PREFACE_LENGTH - this.#preface.length;
        this.#preface = Buffer.concat([this.#preface, chunk.subarray(0, need)]);
        chunk = chunk.subarray(need);
      }
      this.#reader.read(chunk, (frame) => void this.frames.push(frame));
      this.#wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
    socket.on('error', () => {});
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  send(type: number, flags: number, streamId: number, payload: Uint8Array = Buffer.alloc(0)): void {
    this.socket.write(encodeFrame(type, flags, streamId, payload));
  }

  settings(values: Array<[number, number]> = []): void {
    this.socket.write(encodeSettings(values));
  }

  headers(streamId: number, fields: HeaderList, flags: number = Flag.END_HEADERS): void {
    this.send(FrameType.HEADERS, flags, streamId, encodeHeaders(fields));
  }

  /** Waits until a frame matching `match` has come (or the connection closed), and returns it. */
  async next(match: (f: Frame) => boolean, what: string): Promise<Frame> {
    const until = Date.now() + WAIT_MS;
    while (true) {
      const found = this.frames.find(match);
      if (found) {
        this.frames.splice(this.frames.indexOf(found), 1);
        return found;
      }
      if (this.closed || Date.now() > until) throw new Error(`no ${what} came${this.closed ? ' (connection closed)' : ''}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  /** The request headers on `streamId`, decoded (HEADERS plus any CONTINUATION). */
  async requestHeaders(streamId: number): Promise<Map<string, string>> {
    const parts: Buffer[] = [];
    let frame = await this.next((f) => f.type === FrameType.HEADERS && f.streamId === streamId, `HEADERS on ${streamId}`);
    parts.push(frame.payload);
    while (!(frame.flags & Flag.END_HEADERS)) {
      frame = await this.next((f) => f.type === FrameType.CONTINUATION && f.streamId === streamId, 'CONTINUATION');
      parts.push(frame.payload);
    }
    return new Map(this.decoder.decode(Buffer.concat(parts)));
  }

  async requestBody(streamId: number): Promise<{ body: Buffer; frames: number }> {
    const parts: Buffer[] = [];
    while (true) {
      const frame = await this.next((f) => f.type === FrameType.DATA && f.streamId === streamId, `DATA on ${streamId}`);
      parts.push(frame.payload);
      if (frame.flags & Flag.END_STREAM) return { body: Buffer.concat(parts), frames: parts.length };
    }
  }
}

let server: Server | undefined;
afterEach(() => {
  server?.close();
  server = undefined;
});

interface Exchange {
  peer: Peer;
  session: H2Session;
  closed: Promise<Error | undefined>;
  goaways: Array<[number, number]>;
}

/**
 * A session connected to a scripted server that has sent its SETTINGS (`settings`) and seen the client's;
 * with `settings` null, a server that has seen the client's SETTINGS and sent nothing yet.
 */
async function connected(settings: Array<[number, number]> | null = []): Promise<Exchange> {
  server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const goaways: Array<[number, number]> = [];
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  let closed!: (e: Error | undefined) => void;
  const closedPromise = new Promise<Error | undefined>((r) => (closed = r));
  const session = new H2Session(connect({ host: '127.0.0.1', port }), false, {
    ready,
    goaway: (code, last) => goaways.push([code, last]),
    close: closed,
  });
  const [socket] = await accepted;
  const peer = new Peer(socket);
  await peer.next((f) => f.type === FrameType.SETTINGS && !(f.flags & Flag.ACK), "the client's SETTINGS");
  if (settings === null) return { peer, session, closed: closedPromise, goaways };
  peer.settings(settings);
  await isReady;
  return { peer, session, closed: closedPromise, goaways };
}

interface Recorded {
  headers: Array<Record<string, string | string[]>>;
  data: Buffer[];
  ending: Promise<StreamEnding>;
}

function request(session: H2Session, body = Buffer.from('hello'), extra: HeaderList = []) {
  const recorded: Recorded = { headers: [], data: [], ending: undefined as never };
  let end!: (e: StreamEnding) => void;
  recorded.ending = new Promise<StreamEnding>((r) => (end = r));
  const stream = session.request(
    [[':method', 'POST'], [':scheme', 'http'], [':path', '/p'], [':authority', 'x'], ...extra],
    body,
    { onHeaders: (h) => recorded.headers.push(h), onData: (d) => recorded.data.push(d), onClose: end },
  );
  return { stream, recorded };
}

const OK_HEADERS: HeaderList = [[':status', '200'], ['content-type', 'application/grpc']];

describe('a well-behaved server', () => {
  test("SETTINGS are acknowledged; the client's SETTINGS disable push", async ({ expect }) => {
    const { peer } = await connected();
    await peer.next((f) => f.type === FrameType.SETTINGS && (f.flags & Flag.ACK) !== 0, 'SETTINGS ACK');
  });

  test('PING is answered with the same bytes', async ({ expect }) => {
    const { peer } = await connected();
    peer.send(FrameType.PING, 0, 0, Buffer.from('12345678'));
    const ack = await peer.next((f) => f.type === FrameType.PING, 'PING ACK');
    expect(ack.flags & Flag.ACK).toBe(Flag.ACK);
    expect(ack.payload.toString()).toBe('12345678');
  });

  test('a request and its answer: headers, data, trailers, END_STREAM', async ({ expect }) => {
    const { peer, session } = await connected();
    const { recorded } = request(session, Buffer.from('hello'), [['x-meta', 'v']]);
    const headers = await peer.requestHeaders(1);
    expect(Object.fromEntries(headers)).toEqual({ ':method': 'POST', ':scheme': 'http', ':path': '/p', ':authority': 'x', 'x-meta': 'v' });
    expect((await peer.requestBody(1)).body.toString()).toBe('hello');
    peer.headers(1, OK_HEADERS);
    peer.send(FrameType.DATA, 0, 1, Buffer.from('answer'));
    peer.headers(1, [['grpc-status', '0'], ['x', 'a'], ['x', 'b']], Flag.END_HEADERS | Flag.END_STREAM);
    expect(await recorded.ending).toEqual({ rstCode: 0, ended: true, connectionLost: false, sent: true });
    expect(recorded.headers).toEqual([{ ':status': '200', 'content-type': 'application/grpc' }, { 'grpc-status': '0', x: ['a', 'b'] }]);
    expect(Buffer.concat(recorded.data).toString()).toBe('answer');
  });

  test('padding and priority in HEADERS and DATA, a header block in CONTINUATION frames, a 1xx before the answer', async ({ expect }) => {
    const { peer, session } = await connected();
    const { recorded } = request(session);
    await peer.requestBody(1);
    peer.headers(1, [[':status', '100']]);
    const block = encodeHeaders([...OK_HEADERS, ['x-long', 'y'.repeat(100)]]);
    const priority = Buffer.from([0, 0, 0, 0, 16]);
    const padded = Buffer.concat([Buffer.from([3]), priority, block.subarray(0, 10), Buffer.alloc(3)]);
    peer.send(FrameType.HEADERS, Flag.PADDED | Flag.PRIORITY, 1, padded);
    peer.send(FrameType.CONTINUATION, 0, 1, block.subarray(10, 50));
    peer.send(FrameType.CONTINUATION, Flag.END_HEADERS, 1, block.subarray(50));
    peer.send(FrameType.PRIORITY, 0, 1, priority);
    peer.send(FrameType.DATA, Flag.PADDED | Flag.END_STREAM, 1, Buffer.concat([Buffer.from([2]), Buffer.from('body'), Buffer.alloc(2)]));
    expect((await recorded.ending).ended).toBe(true);
    expect(recorded.headers).toEqual([{ ':status': '200', 'content-type': 'application/grpc', 'x-long': 'y'.repeat(100) }]);
    expect(Buffer.concat(recorded.data).toString()).toBe('body');
  });

  test("a body larger than the server's window waits for WINDOW_UPDATE; frames stay within the frame size", async ({ expect }) => {
    const { peer, session } = await connected([[Setting.INITIAL_WINDOW_SIZE, 20_000]]);
    const body = Buffer.alloc(50_000, 7);
    request(session, body);
    const first = await peer.next((f) => f.type === FrameType.DATA, 'DATA');
    const second = await peer.next((f) => f.type === FrameType.DATA, 'DATA');
    expect([first.payload.length, second.payload.length]).toEqual([16_384, 20_000 - 16_384]);
    expect(second.flags & Flag.END_STREAM).toBe(0);
    await new Promise((r) => setTimeout(r, 100));
    expect(peer.frames.filter((f) => f.type === FrameType.DATA)).toEqual([]); // window used up: nothing more
    const increment = Buffer.alloc(4);
    increment.writeUInt32BE(40_000);
    peer.send(FrameType.WINDOW_UPDATE, 0, 1, increment);
    const rest = await peer.requestBody(1);
    expect(rest.body.length).toBe(30_000);
  });

  test('a large header block goes out as HEADERS and CONTINUATION frames', async ({ expect }) => {
    const { peer, session } = await connected();
    request(session, Buffer.from('x'), [['x-big', 'z'.repeat(40_000)]]);
    const headers = await peer.requestHeaders(1);
    expect(headers.get('x-big')).toHaveLength(40_000);
  });

  test('MAX_CONCURRENT_STREAMS 1: the second request waits for the first to end, then goes in order', async ({ expect }) => {
    const { peer, session } = await connected([[Setting.MAX_CONCURRENT_STREAMS, 1]]);
    const a = request(session);
    const b = request(session);
    const c = request(session);
    await peer.requestHeaders(1);
    await peer.requestBody(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(peer.frames.filter((f) => f.type === FrameType.HEADERS)).toEqual([]);
    b.stream.cancel(); // a waiting request that gives up never goes out
    expect(await b.recorded.ending).toMatchObject({ rstCode: ErrorCode.CANCEL, sent: false });
    peer.headers(1, OK_HEADERS, Flag.END_HEADERS | Flag.END_STREAM);
    await a.recorded.ending;
    // the next waiting request takes the next id: ids are given as streams open
    await peer.requestBody(3);
    peer.headers(3, OK_HEADERS, Flag.END_HEADERS | Flag.END_STREAM);
    expect((await c.recorded.ending).ended).toBe(true);
  });

  test("a request goes out before the server's SETTINGS, one stream until they come; then their limit holds", async ({ expect }) => {
    const { peer, session } = await connected(null);
    expect(session.ready).toBe(false);
    const a = request(session);
    const b = request(session);
    const c = request(session);
    await peer.requestHeaders(1);
    await peer.requestBody(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(peer.frames.filter((f) => f.type === FrameType.HEADERS)).toEqual([]);
    peer.settings([[Setting.MAX_CONCURRENT_STREAMS, 2]]);
    await peer.requestHeaders(3);
    await peer.requestBody(3);
    await new Promise((r) => setTimeout(r, 100));
    expect(peer.frames.filter((f) => f.type === FrameType.HEADERS)).toEqual([]);
    expect(session.ready).toBe(true);
    peer.headers(1, OK_HEADERS, Flag.END_HEADERS | Flag.END_STREAM);
    expect((await a.recorded.ending).ended).toBe(true);
    await peer.requestBody(5);
    for (const id of [3, 5]) peer.headers(id, OK_HEADERS, Flag.END_HEADERS | Flag.END_STREAM);
    expect((await b.recorded.ending).ended).toBe(true);
    expect((await c.recorded.ending).ended).toBe(true);
  });

  test("a request written on a connection lost before the server's SETTINGS was not processed: not sent", async ({ expect }) => {
    const { peer, session, closed } = await connected(null);
    const a = request(session);
    await peer.requestBody(1);
    peer.socket.end();
    expect(await a.recorded.ending).toEqual({ rstCode: 0, ended: false, connectionLost: true, sent: false });
    expect(await closed).toBeUndefined();
  });

  test('cancel() resets the stream (RST_STREAM CANCEL); what comes for it later is ignored', async ({ expect }) => {
    const { peer, session } = await connected();
    const a = request(session);
    a.stream.cancel();
    const rst = await peer.next((f) => f.type === FrameType.RST_STREAM, 'RST_STREAM');
    expect([rst.streamId, rst.payload.readUInt32BE(0)]).toEqual([1, ErrorCode.CANCEL]);
    expect(await a.recorded.ending).toEqual({ rstCode: ErrorCode.CANCEL, ended: false, connectionLost: false, sent: true });
    peer.headers(1, OK_HEADERS, Flag.END_HEADERS | Flag.END_STREAM);
    const b = request(session);
    await peer.requestBody(3);
    peer.headers(3, OK_HEADERS, Flag.END_HEADERS | Flag.END_STREAM);
    expect((await b.recorded.ending).ended).toBe(true);
  });

  test('a reset from the server ends the stream with its code', async ({ expect }) => {
    const { peer, session } = await connected();
    const a = request(session);
    await peer.requestBody(1);
    const code = Buffer.alloc(4);
    code.writeUInt32BE(ErrorCode.REFUSED_STREAM);
    peer.send(FrameType.RST_STREAM, 0, 1, code);
    // REFUSED_STREAM: the server did not process it, whatever went out
    expect(await a.recorded.ending).toEqual({ rstCode: ErrorCode.REFUSED_STREAM, ended: false, connectionLost: false, sent: false });
  });

  test('GOAWAY: streams above its last id are refused, the others finish, then the connection closes', async ({ expect }) => {
    const { peer, session, closed, goaways } = await connected();
    const a = request(session);
    const b = request(session);
    await peer.requestBody(3);
    const goaway = Buffer.alloc(8);
    goaway.writeUInt32BE(1, 0);
    peer.send(FrameType.GOAWAY, 0, 0, goaway);
    const refused = await b.recorded.ending;
    expect(refused.rstCode).toBe(ErrorCode.REFUSED_STREAM);
    expect((refused.error as { code?: string }).code).toBe('ERR_HTTP2_GOAWAY_SESSION');
    expect(goaways).toEqual([[0, 1]]);
    expect(session.usable).toBe(false);
    expect(() => request(session)).toThrow(expect.objectContaining({ code: 'ERR_HTTP2_GOAWAY_SESSION' }));
    peer.headers(1, OK_HEADERS, Flag.END_HEADERS | Flag.END_STREAM);
    expect((await a.recorded.ending).ended).toBe(true);
    expect(await closed).toBeUndefined();
  });

  test("the client gives its connection window back as it reads (WINDOW_UPDATE on stream 0)", async ({ expect }) => {
    const { peer, session } = await connected();
    const chunk = Buffer.alloc(16_384);
    const streams = [request(session), request(session), request(session)];
    for (const [i, s] of streams.entries()) {
      const id = 1 + 2 * i;
      await peer.requestBody(id);
      peer.headers(id, OK_HEADERS);
      for (let sent = 0; sent < 3 * 1024 * 1024; sent += chunk.length) peer.send(FrameType.DATA, 0, id, chunk);
      peer.headers(id, [['grpc-status', '0']], Flag.END_HEADERS | Flag.END_STREAM);
      await s.recorded.ending;
    }
    const update = await peer.next((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 0 && f.payload.readUInt32BE(0) >= 8 * 1024 * 1024, 'WINDOW_UPDATE');
    expect(update).toBeDefined();
  });
});

describe('a request written over time (open(), for streams)', () => {
  function open(session: H2Session) {
    const recorded: Recorded = { headers: [], data: [], ending: undefined as never };
    let end!: (e: StreamEnding) => void;
    recorded.ending = new Promise<StreamEnding>((r) => (end = r));
    const stream = session.open([[':method', 'POST'], [':scheme', 'http'], [':path', '/p'], [':authority', 'x']], {
      onHeaders: (h) => recorded.headers.push(h),
      onData: (d) => recorded.data.push(d),
      onClose: end,
    });
    return { stream, recorded };
  }

  test('HEADERS without END_STREAM, DATA as it is written, END_STREAM at end(); the answer comes meanwhile', async ({ expect }) => {
    const { peer, session } = await connected();
    const { stream, recorded } = open(session);
    await peer.requestHeaders(1);
    stream.write(Buffer.from('one'));
    const first = await peer.next((f) => f.type === FrameType.DATA && f.streamId === 1, 'the first DATA');
    expect({ body: first.payload.toString(), end: first.flags & Flag.END_STREAM }).toEqual({ body: 'one', end: 0 });
    peer.headers(1, OK_HEADERS);
    peer.send(FrameType.DATA, 0, 1, Buffer.from('reply'));
    await expect.poll(() => recorded.data.length).toBe(1);
    stream.write(Buffer.from('two'));
    stream.end();
    expect((await peer.requestBody(1)).body.toString()).toBe('two');
    peer.headers(1, [['grpc-status', '0']], Flag.END_HEADERS | Flag.END_STREAM);
    expect(await recorded.ending).toEqual({ rstCode: 0, ended: true, connectionLost: false, sent: true });
  });

  test('what is written before the stream opens (a concurrency limit) goes out when it does, in order', async ({ expect }) => {
    const { peer, session } = await connected([[Setting.MAX_CONCURRENT_STREAMS, 1]]);
    const first = request(session);
    const { stream } = open(session);
    stream.write(Buffer.from('a'));
    stream.write(Buffer.from('b'));
    stream.end();
    await peer.requestBody(1);
    peer.headers(1, [[':status', '200'], ['content-type', 'application/grpc'], ['grpc-status', '0']], Flag.END_HEADERS | Flag.END_STREAM);
    await first.recorded.ending;
    expect((await peer.requestBody(3)).body.toString()).toBe('ab');
  });

  test("the server's answer ends before the request: the client ends its side too (no stream left open)", async ({ expect }) => {
    const { peer, session } = await connected();
    const { stream, recorded } = open(session);
    stream.write(Buffer.from('x'));
    await peer.next((f) => f.type === FrameType.DATA && f.streamId === 1, 'DATA');
    peer.headers(1, [[':status', '200'], ['content-type', 'application/grpc'], ['grpc-status', '14']], Flag.END_HEADERS | Flag.END_STREAM);
    expect((await recorded.ending).ended).toBe(true);
    const end = await peer.next((f) => f.type === FrameType.DATA && f.streamId === 1 && (f.flags & Flag.END_STREAM) !== 0, 'END_STREAM from the client');
    expect(end.payload.length).toBe(0);
    expect(stream.write(Buffer.from('late'))).toBe(true); // ignored
  });
});

describe('PING (the core) and -keepalive (h2/keepalive.ts)', () => {
  test('ping() resolves when its ACK comes, with the round trip; rejects when the connection ends first', async ({ expect }) => {
    const { peer, session } = await connected();
    const answered = session.ping();
    const ping = await peer.next((f) => f.type === FrameType.PING && !(f.flags & Flag.ACK), 'PING');
    peer.send(FrameType.PING, Flag.ACK, 0, Buffer.from('not ours')); // an ACK of no PING of ours: ignored
    peer.send(FrameType.PING, Flag.ACK, 0, ping.payload);
    expect(await answered).toBeGreaterThanOrEqual(0);
    const lost = session.ping();
    await peer.next((f) => f.type === FrameType.PING, 'the second PING');
    peer.socket.destroy();
    await expect(lost).rejects.toThrow();
  });

  test('a PING only after the server was quiet for the period; unanswered, the connection ends with words', async ({ expect }) => {
    const { peer, session, closed } = await connected();
    const { recorded } = request(session);
    await peer.requestBody(1);
    peer.headers(1, OK_HEADERS);
    keepalive(session, 150, 400);
    // data every 50 ms keeps the stream busy: no PING
    for (let i = 0; i < 6; i++) {
      peer.send(FrameType.DATA, 0, 1, Buffer.from('x'));
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(peer.frames.filter((f) => f.type === FrameType.PING)).toEqual([]);
    // then quiet: a PING, answered; another, not answered
    const ping = await peer.next((f) => f.type === FrameType.PING, 'a PING on the quiet stream');
    peer.send(FrameType.PING, Flag.ACK, 0, ping.payload);
    await peer.next((f) => f.type === FrameType.PING, 'the next PING');
    const error = await closed;
    expect(error?.message).toBe('keepalive: no answer to a PING within 0.4s (the connection is gone?)');
    const ending = await recorded.ending;
    expect({ lost: ending.connectionLost, words: explainTransportError(ending.error, { target: { host: 'x', port: 1, address: 'x:1' } }) }).toEqual({
      lost: true,
      words: 'keepalive: no answer to a PING within 0.4s (the connection is gone?)',
    });
  });
});

describe('a broken server', () => {
  const protocolErrors: Array<[string, (peer: Peer) => void, number]> = [
    ['a frame inside a header block', (p) => (p.send(FrameType.HEADERS, 0, 1, encodeHeaders(OK_HEADERS).subarray(0, 2)), p.send(FrameType.PING, 0, 0, Buffer.alloc(8))), ErrorCode.PROTOCOL_ERROR],
    ['DATA on a stream never opened', (p) => p.send(FrameType.DATA, 0, 99, Buffer.from('x')), ErrorCode.PROTOCOL_ERROR],
    ['PUSH_PROMISE (push is disabled)', (p) => p.send(FrameType.PUSH_PROMISE, Flag.END_HEADERS, 1, Buffer.alloc(4)), ErrorCode.PROTOCOL_ERROR],
    ['a frame larger than 16384 bytes', (p) => p.send(FrameType.DATA, 0, 1, Buffer.alloc(20_000)), ErrorCode.FRAME_SIZE_ERROR],
    ['a PING of 7 bytes', (p) => p.send(FrameType.PING, 0, 0, Buffer.alloc(7)), ErrorCode.FRAME_SIZE_ERROR],
    ['SETTINGS of 5 bytes', (p) => p.send(FrameType.SETTINGS, 0, 0, Buffer.alloc(5)), ErrorCode.FRAME_SIZE_ERROR],
    ['a header block that is not HPACK', (p) => p.send(FrameType.HEADERS, Flag.END_HEADERS, 1, Buffer.from([0x80])), ErrorCode.COMPRESSION_ERROR],
    ['a connection window above 2^31-1', (p) => p.send(FrameType.WINDOW_UPDATE, 0, 0, Buffer.from([0x7f, 0xff, 0xff, 0xff])), ErrorCode.FLOW_CONTROL_ERROR],
    [
      'CONTINUATION frames without end (a flood)',
      (p) => {
        p.send(FrameType.HEADERS, 0, 1, encodeHeaders(OK_HEADERS));
        for (let i = 0; i < 100; i++) p.send(FrameType.CONTINUATION, 0, 1, Buffer.alloc(0));
      },
      ErrorCode.ENHANCE_YOUR_CALM,
    ],
  ];
  test.for(protocolErrors)('%s: GOAWAY with its code, the stream ends with the reason, the session closes', async ([, misbehave, code], { expect }) => {
    const { peer, session, closed } = await connected();
    const a = request(session);
    await peer.requestBody(1);
    misbehave(peer);
    const goaway = await peer.next((f) => f.type === FrameType.GOAWAY, 'GOAWAY');
    expect(goaway.payload.readUInt32BE(4)).toBe(code);
    const ending = await a.recorded.ending;
    expect(ending.connectionLost).toBe(true);
    expect(ending.error).toMatchObject({ code: 'ERR_HTTP2_PROTOCOL' });
    expect(ending.error!.message).toMatch(/^HTTP\/2 protocol error from the server: /);
    expect(await closed).toBe(ending.error);
  });

  test('an HTTP/1.1 answer to the preface: said so from its status line, before any frame is read', async ({ expect }) => {
    server = createServer((s) => s.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    const error = await new Promise<Error | undefined>((close) => new H2Session(connect({ host: '127.0.0.1', port }), false, { ready: () => {}, goaway: () => {}, close }));
    expect(error).toMatchObject({ code: 'ERR_H2_NOT_HTTP2' });
    expect(explainTransportError(error, { target: { host: '127.0.0.1', port, address: `127.0.0.1:${port}` } })).toBe('the server speaks HTTP/1.1, not HTTP/2: not a gRPC server?');
  });

  test('the connection closed under an open stream: connectionLost, no error', async ({ expect }) => {
    const { peer, session, closed } = await connected();
    const a = request(session);
    await peer.requestBody(1);
    peer.socket.end();
    expect(await a.recorded.ending).toEqual({ rstCode: 0, ended: false, connectionLost: true, sent: true });
    expect(await closed).toBeUndefined();
    expect(() => request(session)).toThrow(expect.objectContaining({ code: 'ERR_HTTP2_INVALID_SESSION' }));
  });
});

describe('whatever a server sends (fast-check)', () => {
  // Frames of any type, flags, stream and payload after a valid SETTINGS, or bytes that are not frames at
  // all: the open request always ends (onClose once), and the session never throws out of a socket
  // handler. Bounded: 150 connections.
  const anyFrame = fc.record({
    type: fc.oneof(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 10, max: 255 })),
    flags: fc.integer({ min: 0, max: 255 }),
    streamId: fc.oneof(fc.constantFrom(0, 1, 3), fc.integer({ min: 0, max: 2 ** 31 - 1 })),
    payload: fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.constant(encodeHeaders(OK_HEADERS))),
  });
  const script = fc.oneof(
    fc.array(anyFrame, { minLength: 1, maxLength: 8 }).map((frames) => frames.map((f) => encodeFrame(f.type, f.flags, f.streamId, f.payload))),
    fc.array(fc.uint8Array({ minLength: 1, maxLength: 64 }), { minLength: 1, maxLength: 4 }).map((chunks) => chunks.map((c) => Buffer.from(c))),
  );

  test('the request ends, once, and nothing escapes', async ({ expect }) => {
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      await fc.assert(
        fc.asyncProperty(script, async (chunks) => {
          const { peer, session } = await connected();
          const { stream, recorded } = request(session);
          let endings = 0;
          void recorded.ending.then(() => endings++);
          await peer.requestBody(1);
          for (const chunk of chunks) peer.socket.write(chunk);
          // a server that sends nothing conclusive leaves the stream open: the caller's deadline cancels it
          const ended = await Promise.race([recorded.ending.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 30))]);
          if (!ended) stream.cancel();
          await recorded.ending;
          session.destroy();
          peer.socket.destroy();
          server?.close();
          await new Promise((r) => setImmediate(r));
          expect(endings).toBe(1);
        }),
        { numRuns: 150 },
      );
    } finally {
      process.off('uncaughtException', onUncaught);
    }
    expect(uncaught).toEqual([]);
  }, 60_000);
});
