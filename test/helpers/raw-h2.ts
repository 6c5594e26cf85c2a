// A client that speaks HTTP/2 by writing frames by hand on a socket (node:net, or node:tls with ALPN h2):
// for tests of what a server does with frames no library would send. What the server sends is kept in
// order, header blocks decoded; every wait is bounded. Connections opened here are closed by
// closeRawH2Connections() (call it in afterEach).
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { CLIENT_PREFACE, encodeFrame, encodeSettings, encodeWindowUpdate, errorName, Flag, FrameReader, FrameType } from '../../src/h2/frames.ts';
import { encodeHeaders, HpackDecoder, type HeaderList } from '../../src/h2/hpack.ts';
import { testCa } from '../../src/generated/test-pki.ts';
import { SAY_HELLO_PATH } from '../../src/rpc-names.ts';
import { grpcFrame } from './raw-grpc.ts';

/** How long a wait for the server lasts by default: a bound for a stuck server, far above a busy machine's slowest answer */
export const WAIT_MS = 10_000;
export const MAX_FRAME = 16_384;

export interface Received {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
  /** HEADERS (its CONTINUATIONs joined into it): the decoded fields */
  fields?: HeaderList;
  /** the WINDOW_UPDATE increments this client had sent (on the frame's stream, on the connection) when it came */
  granted: { stream: number; connection: number };
}

export interface StreamAnswer {
  /** each header block: the response headers, then the trailers */
  headers: Array<Record<string, string>>;
  data: Buffer;
  dataFrames: number;
  ended: boolean;
  rstCode?: number;
}

/** One HTTP/2 connection as a client that writes frames by hand; what the server sends is kept in order. */
export class RawH2 {
  readonly received: Received[] = [];
  closed = false;
  /** the server sent something this client cannot read: every wait fails with it */
  readError: Error | undefined;
  readonly #reader = new FrameReader(MAX_FRAME);
  readonly #decoder = new HpackDecoder();
  #headerBlock: { first: Received; parts: Buffer[] } | undefined;
  readonly #granted = new Map<number, number>();
  readonly #listeners = new Set<() => void>();

  private constructor(
    readonly socket: Socket,
    private readonly ackSettings: boolean,
  ) {
    socket.on('data', (chunk: Buffer) => {
      try {
        this.#reader.read(chunk, (frame) => this.#onFrame({ ...frame, payload: Buffer.from(frame.payload), granted: this.#grantedFor(frame.streamId) }));
      } catch (err) {
        this.readError = err instanceof Error ? err : new Error(String(err));
        socket.destroy();
      }
      this.#wake();
    });
    socket.on('error', () => {}); // a reset by the server ends up as 'close' too
    socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
  }

  /** Connects; unless `preface` is false, sends the preface and SETTINGS and waits for the server's SETTINGS and its ACK of ours. */
  static async open(port: number, options: { preface?: boolean; settings?: Array<[number, number]>; tls?: boolean } = {}): Promise<RawH2> {
    const preface = options.preface ?? true;
    const socket = options.tls
      ? tlsConnect({ host: '127.0.0.1', port, ca: testCa, servername: 'localhost', ALPNProtocols: ['h2'] })
      : connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no connection to port ${port}`)), WAIT_MS);
      socket.once(options.tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    const client = new RawH2(socket, preface);
    opened.add(client);
    if (preface) {
      socket.write(Buffer.concat([CLIENT_PREFACE, encodeSettings(options.settings ?? [])]));
      await client.waitFor((f) => f.type === FrameType.SETTINGS && !(f.flags & Flag.ACK), "the server's SETTINGS");
      await client.waitFor((f) => f.type === FrameType.SETTINGS && (f.flags & Flag.ACK) !== 0, 'a SETTINGS ACK');
    }
    return client;
  }

  #grantedFor(streamId: number): Received['granted'] {
    return { stream: this.#granted.get(streamId) ?? 0, connection: this.#granted.get(0) ?? 0 };
  }

  #onFrame(frame: Received): void {
    if (frame.type === FrameType.SETTINGS && !(frame.flags & Flag.ACK) && this.ackSettings) {
      this.socket.write(encodeFrame(FrameType.SETTINGS, Flag.ACK, 0));
    }
    if (this.#headerBlock) {
      if (frame.type !== FrameType.CONTINUATION || frame.streamId !== this.#headerBlock.first.streamId) {
        throw new Error(`frame type ${frame.type} inside the server's header block`);
      }
      this.#headerBlock.parts.push(frame.payload);
      if (frame.flags & Flag.END_HEADERS) this.#endHeaderBlock();
      return;
    }
    if (frame.type === FrameType.HEADERS) {
      this.#headerBlock = { first: frame, parts: [frame.payload] };
      if (frame.flags & Flag.END_HEADERS) this.#endHeaderBlock();
      return;
    }
    this.received.push(frame);
  }

  #endHeaderBlock(): void {
    const { first, parts } = this.#headerBlock!;
    this.#headerBlock = undefined;
    const payload = Buffer.concat(parts);
    this.received.push({ ...first, flags: first.flags | Flag.END_HEADERS, payload, fields: this.#decoder.decode(payload) });
  }

  #wake(): void {
    for (const listener of [...this.#listeners]) listener();
  }

  /** Resolves with what `check` returns once it returns something; fails after `waitMs`, or when the connection closed first. */
  until<T>(check: () => T | undefined, what: string, waitMs = WAIT_MS): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        this.#listeners.delete(attempt);
        settle();
      };
      const attempt = () => {
        if (this.readError) return finish(() => reject(this.readError));
        const value = check();
        if (value !== undefined) return finish(() => resolve(value));
        if (this.closed) finish(() => reject(new Error(`the connection closed before ${what}`)));
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`no ${what} within ${waitMs} ms`))), waitMs);
      this.#listeners.add(attempt);
      attempt();
    });
  }

  waitFor(match: (f: Received) => boolean, what: string): Promise<Received> {
    return this.until(() => this.received.find(match), what);
  }

  waitClosed(): Promise<true> {
    return this.until(() => this.closed || undefined, 'the server closing the connection');
  }

  async goaway(): Promise<{ lastStreamId: number; code: string }> {
    const frame = await this.waitFor((f) => f.type === FrameType.GOAWAY, 'GOAWAY');
    return { lastStreamId: frame.payload.readUInt32BE(0) & 0x7fff_ffff, code: errorName(frame.payload.readUInt32BE(4)) };
  }

  async rstStream(streamId: number): Promise<string> {
    const frame = await this.waitFor((f) => f.type === FrameType.RST_STREAM && f.streamId === streamId, `RST_STREAM on stream ${streamId}`);
    return errorName(frame.payload.readUInt32BE(0));
  }

  /** What came on `streamId` so far. */
  answer(streamId: number): StreamAnswer {
    const answer: StreamAnswer = { headers: [], data: Buffer.alloc(0), dataFrames: 0, ended: false };
    const data: Buffer[] = [];
    for (const f of this.received) {
      if (f.streamId !== streamId) continue;
      if (f.type === FrameType.HEADERS) answer.headers.push(Object.fromEntries(f.fields ?? []));
      if (f.type === FrameType.DATA) {
        data.push(f.payload);
        answer.dataFrames++;
      }
      if ((f.type === FrameType.HEADERS || f.type === FrameType.DATA) && f.flags & Flag.END_STREAM) answer.ended = true;
      if (f.type === FrameType.RST_STREAM) answer.rstCode = f.payload.readUInt32BE(0);
    }
    answer.data = Buffer.concat(data);
    return answer;
  }

  /** The stream's whole answer: once the server ended it (END_STREAM) or reset it. */
  finished(streamId: number): Promise<StreamAnswer> {
    return this.until(() => {
      const answer = this.answer(streamId);
      return answer.ended || answer.rstCode !== undefined ? answer : undefined;
    }, `the end of stream ${streamId}`);
  }

  /** A PING the server must answer after everything it sent before it. */
  async roundTrip(): Promise<void> {
    const payload = Buffer.alloc(8);
    payload.writeDoubleBE(Math.random());
    this.write(encodeFrame(FrameType.PING, 0, 0, payload));
    await this.waitFor((f) => f.type === FrameType.PING && (f.flags & Flag.ACK) !== 0 && f.payload.equals(payload), 'PING ACK');
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  headers(streamId: number, fields: HeaderList, endStream = false): void {
    this.write(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS | (endStream ? Flag.END_STREAM : 0), streamId, encodeHeaders(fields)));
  }

  /** DATA frames of at most 16384 bytes, END_STREAM on the last one. */
  data(streamId: number, body: Buffer, endStream = true): void {
    const frames: Buffer[] = [];
    for (let at = 0; at < body.length || frames.length === 0; at += MAX_FRAME) {
      const last = at + MAX_FRAME >= body.length;
      frames.push(encodeFrame(FrameType.DATA, last && endStream ? Flag.END_STREAM : 0, streamId, body.subarray(at, at + MAX_FRAME)));
    }
    this.write(Buffer.concat(frames));
  }

  windowUpdate(streamId: number, increment: number): void {
    this.#granted.set(streamId, (this.#granted.get(streamId) ?? 0) + increment);
    this.write(encodeWindowUpdate(streamId, increment));
  }

  /** A whole unary call: HEADERS, then its one message and END_STREAM. */
  call(streamId: number, fields: HeaderList, message: Buffer): void {
    this.headers(streamId, fields);
    this.data(streamId, grpcFrame(message));
  }

  destroy(): void {
    this.socket.destroy();
  }
}

const opened = new Set<RawH2>();

/** Closes every connection RawH2.open made (for afterEach). */
export function closeRawH2Connections(): void {
  for (const client of opened) client.destroy();
  opened.clear();
}

/** A gRPC request's header fields (SayHello unless `path`), `extra` after them. */
export function requestFields(port: number, path = SAY_HELLO_PATH, extra: HeaderList = []): HeaderList {
  return [
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', path],
    [':authority', `127.0.0.1:${port}`],
    ['content-type', 'application/grpc'],
    ['te', 'trailers'],
    ...extra,
  ];
}
