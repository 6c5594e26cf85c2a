// The client's HTTP/2 connection over a socket it is given (node:net, or node:tls after an h2 handshake):
// just what gRPC unary calls need, so that a probe does not load node:http2 (which doubles Node's start
// time). Requests are HEADERS + DATA with END_STREAM; answers are HEADERS, DATA, HEADERS (trailers), or a
// reset. It answers PING and SETTINGS, honours the server's flow-control windows and concurrency limit,
// keeps its own receive windows open, and treats GOAWAY as grpc-go does: streams the server did not take
// are refused (safe to retry elsewhere), the others finish.
import type { Socket } from 'node:net';
import {
  CLIENT_PREFACE,
  DEFAULT_MAX_FRAME_SIZE,
  encodeFrame,
  encodeGoaway,
  encodeHeaderFrames,
  encodeRstStream,
  encodeSettings,
  encodeWindowUpdate,
  ErrorCode,
  errorName,
  Flag,
  FrameReader,
  FrameType,
  H2ProtocolError,
  HeaderBlockReader,
  MAX_WINDOW,
  pingToAnswer,
  readSettings,
  Setting,
  unpadded,
  windowIncrement,
  type Frame,
  type HeaderBlock,
} from '../../h2/frames.ts';
import { http1Server } from '../explain.ts';
import { encodeHeaders, HpackDecoder, HpackError, type HeaderList } from '../../h2/hpack.ts';

export type Headers = Record<string, string | string[]>;

export interface StreamEnding {
  /** the server's RST_STREAM code; NO_ERROR when it ended the stream or the connection ended */
  rstCode: number;
  /** the server ended the stream (END_STREAM) */
  ended: boolean;
  /** the connection ended under the stream */
  connectionLost: boolean;
  /** why, when something failed: the connection's error, or the stream's refusal by GOAWAY */
  error?: Error;
}

export interface StreamHandlers {
  /** the response headers, then the trailers */
  onHeaders(headers: Headers): void;
  onData(chunk: Buffer): void;
  /** once, at the end, however it comes (also after cancel()) */
  onClose(ending: StreamEnding): void;
}

export interface ClientStream {
  readonly id: number;
  /** resets the stream (RST_STREAM CANCEL); onClose follows at once */
  cancel(): void;
}

export interface SessionEvents {
  /** the transport is up: TCP connected, or the TLS handshake done with ALPN h2 */
  connect?(): void;
  /** the server's first SETTINGS arrived: requests may go */
  ready(): void;
  goaway(errorCode: number, lastStreamId: number): void;
  /** the connection ended; with the error that ended it, if any */
  close(error: Error | undefined): void;
}

/** An error with a code, as Node's errors have (explain.ts words them). */
export class SessionError extends Error {
  override name = 'SessionError';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** Our receive windows: a stream takes a whole gRPC message (4 MiB) and a little more, so that a larger one is seen, not stalled. */
const STREAM_WINDOW = 4 * 1024 * 1024 + 65_536;
const CONNECTION_WINDOW = 16 * 1024 * 1024;
const DEFAULT_WINDOW = 65_535;

interface Stream {
  id: number;
  handlers: StreamHandlers;
  gotHeaders: boolean;
  /** request body bytes waiting for flow-control window */
  pending: Buffer;
  sendWindow: number;
  closed: boolean;
}

export class H2Session {
  readonly #socket: Socket;
  readonly #events: SessionEvents;
  readonly #reader = new FrameReader();
  readonly #decoder = new HpackDecoder();
  readonly #streams = new Map<number, Stream>();
  /** requests waiting for the server's concurrency limit */
  readonly #queued: Array<{ stream: Stream; headers: Buffer }> = [];
  #nextId = 1;
  #ready = false;
  #goingAway = false;
  #closed = false;
  #error: Error | undefined;
  // the server's settings
  #maxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  #initialWindow = DEFAULT_WINDOW;
  #maxConcurrent = Infinity;
  #connectionSendWindow = DEFAULT_WINDOW;
  /** received DATA bytes not yet given back with a connection WINDOW_UPDATE */
  #unacknowledged = 0;
  /** a header block being continued (CONTINUATION frames) */
  readonly #headerBlocks = new HeaderBlockReader();

  /** the :scheme of its requests */
  readonly scheme: 'http' | 'https';

  constructor(socket: Socket, secure: boolean, events: SessionEvents) {
    this.#socket = socket;
    this.scheme = secure ? 'https' : 'http';
    this.#events = events;
    socket.setNoDelay(true);
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      if (secure) {
        const alpn = (socket as Socket & { alpnProtocol?: string | false }).alpnProtocol;
        if (alpn !== 'h2') {
          const what = alpn ? `chose ${alpn}` : 'does not negotiate ALPN';
          return this.destroy(new SessionError(`the TLS server ${what}, not HTTP/2 (h2): not a gRPC server?`, 'ERR_H2_NO_ALPN'));
        }
      }
      events.connect?.();
      socket.write(
        Buffer.concat([
          CLIENT_PREFACE,
          encodeSettings([
            [Setting.ENABLE_PUSH, 0],
            [Setting.INITIAL_WINDOW_SIZE, STREAM_WINDOW],
          ]),
          encodeWindowUpdate(0, CONNECTION_WINDOW - DEFAULT_WINDOW),
        ]),
      );
    });
    socket.on('data', (chunk: Buffer) => this.#receive(chunk));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
  }

  get ready(): boolean {
    return this.#ready;
  }

  /** False once the server said GOAWAY or the connection ended: new requests need a new session. */
  get usable(): boolean {
    return this.#ready && !this.#goingAway && !this.#closed;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The socket, for what it knows (the TLS version). */
  get socket(): Socket {
    return this.#socket;
  }

  /** Sends a request: `fields` (pseudo-headers first) and `body`, which ends the stream. */
  request(fields: HeaderList, body: Buffer, handlers: StreamHandlers): ClientStream {
    if (this.#closed) throw new SessionError('the connection was already closed', 'ERR_HTTP2_INVALID_SESSION');
    if (this.#goingAway || this.#nextId > MAX_WINDOW) {
      throw new SessionError('the server is going away (GOAWAY)', 'ERR_HTTP2_GOAWAY_SESSION');
    }
    const stream: Stream = { id: this.#nextId, handlers, gotHeaders: false, pending: body, sendWindow: this.#initialWindow, closed: false };
    this.#nextId += 2;
    const headers = encodeHeaders(fields);
    // streams open in the order of their ids: behind any already waiting
    if (this.#queued.length > 0 || this.#streams.size >= this.#maxConcurrent) this.#queued.push({ stream, headers });
    else this.#open(stream, headers);
    return { id: stream.id, cancel: () => this.#cancel(stream) };
  }

  /** Ends the connection now; open streams end with `error` (a probe does not wait for a graceful close). */
  destroy(error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#error = error;
    for (const { stream } of this.#queued.splice(0)) this.#streams.set(stream.id, stream);
    for (const stream of [...this.#streams.values()]) {
      this.#finish(stream, { rstCode: ErrorCode.NO_ERROR, ended: false, connectionLost: true, ...(error ? { error } : {}) });
    }
    this.#socket.destroy();
    this.#events.close(error);
  }

  #open(stream: Stream, headers: Buffer): void {
    this.#streams.set(stream.id, stream);
    const frames = [...encodeHeaderFrames(stream.id, headers, this.#maxFrameSize, false), ...this.#takeData(stream)];
    this.#socket.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames));
  }

  /** DATA frames for as much of the stream's body as the windows allow; the last one ends the stream. */
  #takeData(stream: Stream): Buffer[] {
    const frames: Buffer[] = [];
    while (true) {
      const room = Math.min(stream.pending.length, this.#maxFrameSize, stream.sendWindow, this.#connectionSendWindow);
      if (room <= 0 && stream.pending.length > 0) return frames;
      const part = stream.pending.subarray(0, Math.max(0, room));
      stream.pending = stream.pending.subarray(part.length);
      stream.sendWindow -= part.length;
      this.#connectionSendWindow -= part.length;
      const last = stream.pending.length === 0;
      frames.push(encodeFrame(FrameType.DATA, last ? Flag.END_STREAM : 0, stream.id, part));
      if (last) return frames;
    }
  }

  #flushBlocked(): void {
    const frames: Buffer[] = [];
    for (const stream of this.#streams.values()) {
      if (stream.pending.length > 0) frames.push(...this.#takeData(stream));
    }
    if (frames.length > 0) this.#socket.write(Buffer.concat(frames));
  }

  #openQueued(): void {
    while (this.#queued.length > 0 && this.#streams.size < this.#maxConcurrent) {
      const next = this.#queued.shift()!;
      this.#open(next.stream, next.headers);
    }
  }

  #cancel(stream: Stream): void {
    if (stream.closed) return;
    const queued = this.#queued.findIndex((q) => q.stream === stream);
    if (queued >= 0) this.#queued.splice(queued, 1);
    else if (!this.#closed) this.#socket.write(encodeRstStream(stream.id, ErrorCode.CANCEL));
    this.#finish(stream, { rstCode: ErrorCode.CANCEL, ended: false, connectionLost: false });
  }

  #finish(stream: Stream, ending: StreamEnding): void {
    if (stream.closed) return;
    stream.closed = true;
    this.#streams.delete(stream.id);
    stream.handlers.onClose(ending);
    if (this.#closed) return;
    this.#openQueued();
    // a server going away closes the connection when its last stream ends; so does the client
    if (this.#goingAway && this.#streams.size === 0) this.destroy(this.#error);
  }

  #receive(chunk: Buffer): void {
    if (this.#closed) return;
    try {
      if (!this.#ready) this.#checkFirstFrame(chunk);
      for (const frame of this.#reader.frames(chunk)) {
        this.#handle(frame);
        if (this.#closed) return;
      }
    } catch (err) {
      this.#connectionError(err);
    }
  }

  /**
   * A server that is not HTTP/2 answers something other than SETTINGS first: say so before reading it as
   * frames. An HTTP/1 server's status line says what it is (no second connection needed to find out).
   */
  #checkFirstFrame(chunk: Buffer): void {
    const seen = this.#reader.pending.length === 0 ? chunk : Buffer.concat([this.#reader.pending, chunk]);
    if (seen.length < 9) return;
    if (seen[3] !== FrameType.SETTINGS || seen.readUInt32BE(5) !== 0 || seen[4] !== 0) {
      const http1 = http1Server(seen.subarray(0, 8).toString('latin1'));
      if (http1) throw new SessionError(http1, 'ERR_H2_HTTP1');
      throw new SessionError('Protocol error: its first frame is not SETTINGS', 'ERR_HTTP2_ERROR');
    }
  }

  #connectionError(err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    if (error instanceof H2ProtocolError || error instanceof HpackError) {
      const h2Code = error instanceof H2ProtocolError ? error.h2Code : ErrorCode.COMPRESSION_ERROR;
      const lastId = Math.max(0, this.#nextId - 2);
      this.#socket.write(encodeGoaway(lastId, h2Code, error.message));
      return this.destroy(new SessionError(`HTTP/2 protocol error from the server: ${error.message} (${errorName(h2Code)})`, 'ERR_HTTP2_PROTOCOL'));
    }
    this.destroy(error);
  }

  #handle(frame: Frame): void {
    if (this.#headerBlocks.open && frame.type !== FrameType.CONTINUATION) {
      throw new H2ProtocolError(`a ${frameName(frame.type)} frame inside a header block (CONTINUATION expected)`);
    }
    switch (frame.type) {
      case FrameType.SETTINGS:
        return this.#onSettings(frame);
      case FrameType.HEADERS:
        return this.#onHeaderBlock(this.#headerBlocks.headers(frame));
      case FrameType.CONTINUATION:
        return this.#onHeaderBlock(this.#headerBlocks.continuation(frame));
      case FrameType.DATA:
        return this.#onData(frame);
      case FrameType.RST_STREAM:
        return this.#onRstStream(frame);
      case FrameType.PING:
        return this.#onPing(frame);
      case FrameType.GOAWAY:
        return this.#onGoaway(frame);
      case FrameType.WINDOW_UPDATE:
        return this.#onWindowUpdate(frame);
      case FrameType.PUSH_PROMISE:
        throw new H2ProtocolError('PUSH_PROMISE, though the client disabled push');
      default:
        return; // PRIORITY and unknown types are ignored (RFC 9113 §5.5)
    }
  }

  #onSettings(frame: Frame): void {
    const settings = readSettings(frame);
    if (!settings) return; // an ACK
    for (const [id, value] of settings) {
      if (id === Setting.MAX_FRAME_SIZE) {
        this.#maxFrameSize = value;
      } else if (id === Setting.INITIAL_WINDOW_SIZE) {
        for (const stream of this.#streams.values()) stream.sendWindow += value - this.#initialWindow;
        this.#initialWindow = value;
      } else if (id === Setting.MAX_CONCURRENT_STREAMS) {
        this.#maxConcurrent = value;
      }
    }
    this.#socket.write(encodeFrame(FrameType.SETTINGS, Flag.ACK, 0));
    this.#flushBlocked();
    this.#openQueued();
    if (!this.#ready) {
      this.#ready = true;
      this.#events.ready();
    }
  }

  #onHeaderBlock(whole: HeaderBlock | undefined): void {
    if (!whole) return; // CONTINUATION frames follow
    const { streamId, endStream, block } = whole;
    // decoded even for a stream that is gone: the header table is the connection's
    const fields = this.#decoder.decode(block);
    const stream = this.#streams.get(streamId);
    if (!stream) {
      if (streamId >= this.#nextId) throw new H2ProtocolError(`HEADERS on stream ${streamId}, which the client never opened`);
      return;
    }
    const headers = toHeaders(fields);
    const status = headers[':status'];
    // informational answers (1xx) come before the real one: skip them
    if (!stream.gotHeaders && typeof status === 'string' && status.startsWith('1') && !endStream) return;
    stream.gotHeaders = true;
    stream.handlers.onHeaders(headers);
    if (endStream) this.#finish(stream, { rstCode: ErrorCode.NO_ERROR, ended: true, connectionLost: false });
  }

  #onData(frame: Frame): void {
    if (frame.streamId === 0) throw new H2ProtocolError('DATA on stream 0');
    this.#unacknowledged += frame.payload.length;
    if (this.#unacknowledged >= CONNECTION_WINDOW / 2) {
      this.#socket.write(encodeWindowUpdate(0, this.#unacknowledged));
      this.#unacknowledged = 0;
    }
    const stream = this.#streams.get(frame.streamId);
    if (!stream) {
      if (frame.streamId >= this.#nextId) throw new H2ProtocolError(`DATA on stream ${frame.streamId}, which the client never opened`);
      return;
    }
    if (!stream.gotHeaders) throw new H2ProtocolError(`DATA before HEADERS on stream ${frame.streamId}`);
    const data = unpadded(frame);
    if (data.length > 0) stream.handlers.onData(data);
    if (frame.flags & Flag.END_STREAM && !stream.closed) this.#finish(stream, { rstCode: ErrorCode.NO_ERROR, ended: true, connectionLost: false });
  }

  #onRstStream(frame: Frame): void {
    if (frame.streamId === 0) throw new H2ProtocolError('RST_STREAM on stream 0');
    if (frame.payload.length !== 4) throw new H2ProtocolError('RST_STREAM length not 4', ErrorCode.FRAME_SIZE_ERROR);
    const stream = this.#streams.get(frame.streamId);
    if (stream) this.#finish(stream, { rstCode: frame.payload.readUInt32BE(0), ended: false, connectionLost: false });
  }

  #onPing(frame: Frame): void {
    const payload = pingToAnswer(frame);
    if (payload) this.#socket.write(encodeFrame(FrameType.PING, Flag.ACK, 0, payload));
  }

  #onGoaway(frame: Frame): void {
    if (frame.streamId !== 0) throw new H2ProtocolError('GOAWAY on a stream');
    if (frame.payload.length < 8) throw new H2ProtocolError('GOAWAY shorter than 8 bytes', ErrorCode.FRAME_SIZE_ERROR);
    const lastStreamId = frame.payload.readUInt32BE(0) & MAX_WINDOW;
    const code = frame.payload.readUInt32BE(4);
    this.#goingAway = true;
    if (code !== ErrorCode.NO_ERROR) {
      const debug = frame.payload.subarray(8).toString('utf8').slice(0, 200);
      this.#error ??= new SessionError(`the server closed the connection with ${errorName(code)}${debug ? ` (${debug})` : ''}`, 'ERR_HTTP2_GOAWAY_ERROR');
    }
    this.#events.goaway(code, lastStreamId);
    const refused = new SessionError('the server is going away (GOAWAY) and did not take the request', 'ERR_HTTP2_GOAWAY_SESSION');
    for (const { stream } of this.#queued.splice(0)) this.#streams.set(stream.id, stream);
    for (const stream of [...this.#streams.values()]) {
      if (stream.id > lastStreamId) this.#finish(stream, { rstCode: ErrorCode.REFUSED_STREAM, ended: false, connectionLost: false, error: refused });
    }
    if (this.#streams.size === 0) this.destroy(this.#error);
  }

  #onWindowUpdate(frame: Frame): void {
    const increment = windowIncrement(frame);
    if (frame.streamId === 0) {
      if (increment === 0) throw new H2ProtocolError('WINDOW_UPDATE of 0 on the connection');
      this.#connectionSendWindow += increment;
      if (this.#connectionSendWindow > MAX_WINDOW) throw new H2ProtocolError('connection window above 2^31-1', ErrorCode.FLOW_CONTROL_ERROR);
    } else {
      const stream = this.#streams.get(frame.streamId);
      if (!stream) return;
      if (increment === 0 || stream.sendWindow + increment > MAX_WINDOW) {
        this.#socket.write(encodeRstStream(stream.id, increment === 0 ? ErrorCode.PROTOCOL_ERROR : ErrorCode.FLOW_CONTROL_ERROR));
        return this.#finish(stream, { rstCode: ErrorCode.PROTOCOL_ERROR, ended: false, connectionLost: false, error: new SessionError('the server sent an invalid WINDOW_UPDATE', 'ERR_HTTP2_PROTOCOL') });
      }
      stream.sendWindow += increment;
    }
    this.#flushBlocked();
  }
}

/** Header fields as Node gives them: lower-case names, a repeated name as an array of its values. */
function toHeaders(fields: HeaderList): Headers {
  const headers: Headers = {};
  for (const [name, value] of fields) {
    const existing = headers[name];
    if (existing === undefined) headers[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else headers[name] = [existing, value];
  }
  return headers;
}

function frameName(type: number): string {
  return Object.entries(FrameType).find(([, t]) => t === type)?.[0] ?? `type 0x${type.toString(16)}`;
}
