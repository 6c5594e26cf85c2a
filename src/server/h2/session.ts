// The server's own HTTP/2 (RFC 9113) on a connection node:net or node:tls accepted. node:http2 hands every
// request header value to JavaScript as a V8 external string, whose clean-up stops the process for 25–35 ms
// at every full GC under load (README, Performance, has the trace): that, not gRPC, bounded the server's
// p99 latency and memory. This session decodes headers into ordinary strings instead.
//
// It does what a gRPC server needs and no more: it reads the preface and SETTINGS, answers PING, decodes
// HEADERS and CONTINUATION, keeps flow control in both directions (a stream's DATA waits for the peer's
// windows; the peer's windows are opened again as the handler consumes what it was given), refuses streams
// above its concurrency limit, and drains with GOAWAY. A protocol error ends the connection with GOAWAY and
// never throws out of the socket's callbacks. Frames to send are gathered and written once per tick.
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
import { encodeHeaders, HpackDecoder, HpackError, type HeaderList } from '../../h2/hpack.ts';

/** What the server does with a stream: set by the session's `onStream` before it returns. */
export interface StreamHandler {
  /** request DATA; the handler calls stream.consumed(n) once it no longer holds the bytes */
  onData(chunk: Buffer): void;
  /** the client half-closed (END_STREAM) */
  onEnd(): void;
  /** the stream ended before the server ended it: the client reset it or the session found a stream error (the code), or the connection went (CANCEL) */
  onReset(code: number): void;
}

/** A stream's receive window (and the SETTINGS_INITIAL_WINDOW_SIZE sent): a whole 4 MiB gRPC message and a little more. */
const STREAM_WINDOW = 4 * 1024 * 1024 + 65_536;
const CONNECTION_WINDOW = 16 * 1024 * 1024;
const DEFAULT_WINDOW = 65_535;
/**
 * Streams a client may have open at once, by default: as good as unlimited, as grpc-go's and node:http2's
 * (a load test may hold thousands of delayed calls on one connection).
 */
export const DEFAULT_MAX_CONCURRENT_STREAMS = 0xffff_ffff;
/** The decoded header list a request may have (RFC 7541 sizes: name + value + 32 per field). */
const MAX_HEADER_LIST = 1024 * 1024;
/** Answers waiting in the socket beyond this: stop reading requests until they have gone. */
const MAX_UNSENT = 1024 * 1024;
/** write() says "wait for onDrain" beyond this many queued bytes */
const HIGH_WATER = 64 * 1024;

export class ServerStream {
  handler: StreamHandler | undefined;
  /** the peer's window for our DATA on this stream */
  sendWindow: number;
  /** DATA waiting for window, then the trailers */
  queue: Buffer[] = [];
  queued = 0;
  trailers: Buffer | undefined;
  /** called once queued DATA has gone out after write() returned false */
  onDrain: (() => void) | undefined;
  /** the client half-closed */
  remoteEnded = false;
  /** END_STREAM or RST_STREAM sent, or reset by the client, or the connection went */
  closed = false;
  responded = false;
  /** bytes the handler consumed, not yet given back with a stream WINDOW_UPDATE */
  unacknowledged = 0;
  /** our receive window for this stream */
  receiveWindow = STREAM_WINDOW;

  constructor(
    private readonly session: ServerSession,
    readonly id: number,
    /** the request's header fields, in order, as sent */
    readonly fields: HeaderList,
    /** the same by name, for dispatch */
    readonly headers: Readonly<Record<string, string>>,
    initialWindow: number,
  ) {
    this.sendWindow = initialWindow;
  }

  /** The peer, as grpc-js' getPeer() says it: "address:port". */
  get peer(): string {
    return this.session.peer;
  }

  /** Response headers (fields, or a block encodeHeaders made); with `endStream` the whole answer (trailers-only). */
  respond(fields: HeaderList | Buffer, endStream = false): void {
    if (this.closed || this.responded) return;
    this.responded = true;
    this.session.sendHeaders(this, Buffer.isBuffer(fields) ? fields : encodeHeaders(fields), endStream);
  }

  /** A message's bytes (after respond()); false when the caller should wait for onDrain before writing more. */
  write(data: Buffer): boolean {
    if (this.closed) return true;
    this.queue.push(data);
    this.queued += data.length;
    this.session.pump(this);
    return this.queued <= HIGH_WATER;
  }

  /** Trailers (fields, or a block encodeHeaders made), after the DATA written so far (which may still wait for the peer's window). */
  end(trailers: HeaderList | Buffer): void {
    if (this.closed || this.trailers) return;
    this.trailers = Buffer.isBuffer(trailers) ? trailers : encodeHeaders(trailers);
    this.session.pump(this);
  }

  /** RST_STREAM: the stream is over for both sides. */
  reset(code: number): void {
    this.session.resetStream(this, code);
  }

  /** The handler is done with `n` request bytes: the client may send that many more. */
  consumed(n: number): void {
    this.session.consumed(this, n);
  }
}

export interface SessionOptions {
  onStream(stream: ServerStream): void;
  /** SETTINGS_MAX_CONCURRENT_STREAMS; beyond it a new stream is refused (RST_STREAM REFUSED_STREAM) */
  maxConcurrentStreams?: number;
  /** the connection ended (after the streams were told) */
  onClose?(): void;
}

export class ServerSession {
  readonly #socket: Socket;
  readonly #options: SessionOptions;
  readonly #reader = new FrameReader();
  // metadata as large as grpc-js on node:http2 took (a 70 KB value, say); the block itself is capped at MAX_HEADER_BLOCK
  readonly #decoder = new HpackDecoder({ maxHeaderListSize: MAX_HEADER_LIST });
  readonly #streams = new Map<number, ServerStream>();
  #prefaceSeen = 0;
  #lastStreamId = 0;
  /** GOAWAY sent: no new streams; the connection ends with its last stream */
  #draining = false;
  #closed = false;
  #out: Buffer[] = [];
  #flushScheduled = false;
  #inReceive = false;
  // the client's settings
  #maxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  #initialWindow = DEFAULT_WINDOW;
  #connectionSendWindow = DEFAULT_WINDOW;
  /** our connection receive window, and what was consumed but not yet given back */
  #connectionReceiveWindow = CONNECTION_WINDOW;
  #unacknowledged = 0;
  readonly #headerBlocks = new HeaderBlockReader();
  #peer: string | undefined;
  readonly #maxConcurrentStreams: number;

  constructor(socket: Socket, options: SessionOptions) {
    this.#socket = socket;
    this.#options = options;
    this.#maxConcurrentStreams = options.maxConcurrentStreams ?? DEFAULT_MAX_CONCURRENT_STREAMS;
    socket.setNoDelay(true);
    this.#send(
      Buffer.concat([
        encodeSettings([
          [Setting.MAX_CONCURRENT_STREAMS, this.#maxConcurrentStreams],
          [Setting.INITIAL_WINDOW_SIZE, STREAM_WINDOW],
          [Setting.ENABLE_PUSH, 0],
        ]),
        encodeWindowUpdate(0, CONNECTION_WINDOW - DEFAULT_WINDOW),
      ]),
    );
    socket.on('data', (chunk: Buffer) => this.#receive(chunk));
    socket.on('error', () => this.destroy());
    socket.on('close', () => this.destroy());
  }

  get peer(): string {
    if (this.#peer === undefined) {
      const { remoteAddress, remotePort } = this.#socket;
      this.#peer = remoteAddress ? (remotePort ? `${remoteAddress}:${remotePort}` : remoteAddress) : 'unknown';
    }
    return this.#peer;
  }

  /** the streams open now */
  streams(): IterableIterator<ServerStream> {
    return this.#streams.values();
  }

  /** Graceful: GOAWAY with the last stream taken; those streams finish, then the connection ends. */
  drain(): void {
    if (this.#closed || this.#draining) return;
    this.#draining = true;
    this.#send(encodeGoaway(this.#lastStreamId, ErrorCode.NO_ERROR, ''));
    if (this.#streams.size === 0) this.#endSocket();
  }

  /** Ends the connection now: every open stream is reset for its handler (CANCEL). */
  destroy(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const stream of [...this.#streams.values()]) this.#close(stream, ErrorCode.CANCEL);
    this.#out = [];
    this.#socket.destroy();
    this.#options.onClose?.();
  }

  // --- sending ---------------------------------------------------------------------------------------

  #send(frame: Buffer): void {
    if (this.#closed) return;
    this.#out.push(frame);
    if (this.#inReceive || this.#flushScheduled) return;
    this.#flushScheduled = true;
    process.nextTick(() => this.#flush());
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#closed || this.#out.length === 0) return;
    const out = this.#out;
    this.#out = [];
    const socket = this.#socket;
    if (socket.write(out.length === 1 ? out[0]! : Buffer.concat(out)) || socket.writableLength < MAX_UNSENT || socket.isPaused()) return;
    // A client that does not read what it asked for: read nothing more from it until it has (headers and
    // trailers are not flow-controlled, so requests could otherwise pile answers up here without bound).
    socket.pause();
    socket.once('drain', () => socket.resume());
  }

  sendHeaders(stream: ServerStream, block: Buffer, endStream: boolean): void {
    for (const frame of encodeHeaderFrames(stream.id, block, this.#maxFrameSize, endStream)) this.#send(frame);
    if (!endStream) return;
    // the answer is complete before the request: the client need send no more (RFC 9113 §8.1)
    if (!stream.remoteEnded) this.#send(encodeRstStream(stream.id, ErrorCode.NO_ERROR));
    this.#close(stream);
  }

  /** Sends what the windows allow of the stream's queued DATA, then its trailers once nothing waits. */
  pump(stream: ServerStream): void {
    if (stream.closed) return;
    const wasBlocked = stream.queued > HIGH_WATER;
    while (stream.queue.length > 0) {
      const head = stream.queue[0]!;
      const room = Math.min(head.length, this.#maxFrameSize, stream.sendWindow, this.#connectionSendWindow);
      if (room <= 0 && head.length > 0) break;
      const part = room >= head.length ? head : head.subarray(0, room);
      if (part === head) stream.queue.shift();
      else stream.queue[0] = head.subarray(room);
      stream.queued -= part.length;
      stream.sendWindow -= part.length;
      this.#connectionSendWindow -= part.length;
      this.#send(encodeFrame(FrameType.DATA, 0, stream.id, part));
    }
    if (stream.queue.length === 0 && stream.trailers) this.sendHeaders(stream, stream.trailers, true);
    else if (wasBlocked && stream.queued <= HIGH_WATER) stream.onDrain?.();
  }

  /** The handler ends its stream with RST_STREAM. */
  resetStream(stream: ServerStream, code: number): void {
    if (stream.closed) return;
    this.#send(encodeRstStream(stream.id, code));
    this.#close(stream);
  }

  /** A stream error (RFC 9113 §5.4.2) the session found: RST_STREAM, and the handler learns its stream is gone. */
  #streamError(stream: ServerStream, code: number): void {
    if (stream.closed) return;
    this.#send(encodeRstStream(stream.id, code));
    this.#close(stream, code);
  }

  consumed(stream: ServerStream, n: number): void {
    if (this.#closed || n <= 0) return;
    this.#giveBack(n);
    if (stream.closed || stream.remoteEnded) return;
    stream.unacknowledged += n;
    if (stream.unacknowledged >= STREAM_WINDOW / 4) {
      this.#send(encodeWindowUpdate(stream.id, stream.unacknowledged));
      stream.receiveWindow += stream.unacknowledged;
      stream.unacknowledged = 0;
    }
  }

  /** Opens the connection's receive window again by `n` (in batches). */
  #giveBack(n: number): void {
    this.#unacknowledged += n;
    if (this.#unacknowledged < CONNECTION_WINDOW / 4) return;
    this.#send(encodeWindowUpdate(0, this.#unacknowledged));
    this.#connectionReceiveWindow += this.#unacknowledged;
    this.#unacknowledged = 0;
  }

  /** The stream is over for us (sent END_STREAM or RST_STREAM), or for the client (`resetCode`). */
  #close(stream: ServerStream, resetCode?: number): void {
    if (stream.closed) return;
    stream.closed = true;
    stream.queue = [];
    stream.queued = 0;
    this.#streams.delete(stream.id);
    if (resetCode !== undefined) stream.handler?.onReset(resetCode);
    if (this.#draining && this.#streams.size === 0) this.#endSocket();
  }

  #endSocket(): void {
    this.#flush();
    this.#socket.end();
  }

  // --- receiving -------------------------------------------------------------------------------------

  #receive(chunk: Buffer): void {
    if (this.#closed) return;
    this.#inReceive = true;
    try {
      if (this.#prefaceSeen < CLIENT_PREFACE.length) {
        chunk = this.#readPreface(chunk);
        if (chunk.length === 0) return;
      }
      for (const frame of this.#reader.frames(chunk)) {
        this.#handle(frame);
        if (this.#closed) return;
      }
    } catch (err) {
      this.#connectionError(err);
    } finally {
      this.#inReceive = false;
      this.#flush();
    }
  }

  /** Checks the preface's bytes as they come; returns what follows it. */
  #readPreface(chunk: Buffer): Buffer {
    const want = CLIENT_PREFACE.length - this.#prefaceSeen;
    const part = chunk.subarray(0, want);
    if (!part.equals(CLIENT_PREFACE.subarray(this.#prefaceSeen, this.#prefaceSeen + part.length))) {
      throw new H2ProtocolError('not an HTTP/2 connection preface (an HTTP/1 or TLS client on a plaintext HTTP/2 port?)');
    }
    this.#prefaceSeen += part.length;
    return chunk.subarray(part.length);
  }

  #connectionError(err: unknown): void {
    const h2Code = err instanceof H2ProtocolError ? err.h2Code : err instanceof HpackError ? ErrorCode.COMPRESSION_ERROR : ErrorCode.INTERNAL_ERROR;
    const message = err instanceof Error ? err.message : String(err);
    this.#send(encodeGoaway(this.#lastStreamId, h2Code, message.slice(0, 200)));
    this.#endSocket();
    this.destroy();
  }

  #handle(frame: Frame): void {
    if (this.#headerBlocks.open && frame.type !== FrameType.CONTINUATION) {
      throw new H2ProtocolError('a frame inside a header block (CONTINUATION expected)');
    }
    switch (frame.type) {
      case FrameType.DATA:
        return this.#onData(frame);
      case FrameType.HEADERS:
        return this.#onHeaderBlock(this.#headerBlocks.headers(frame));
      case FrameType.CONTINUATION:
        return this.#onHeaderBlock(this.#headerBlocks.continuation(frame));
      case FrameType.SETTINGS:
        return this.#onSettings(frame);
      case FrameType.RST_STREAM:
        return this.#onRstStream(frame);
      case FrameType.PING: {
        const payload = pingToAnswer(frame);
        if (payload) this.#send(encodeFrame(FrameType.PING, Flag.ACK, 0, payload));
        return;
      }
      case FrameType.WINDOW_UPDATE:
        return this.#onWindowUpdate(frame);
      case FrameType.GOAWAY:
        if (frame.streamId !== 0) throw new H2ProtocolError('GOAWAY on a stream');
        return; // the client opens nothing more; what is open finishes
      case FrameType.PUSH_PROMISE:
        throw new H2ProtocolError('PUSH_PROMISE from a client');
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
      }
    }
    this.#send(encodeFrame(FrameType.SETTINGS, Flag.ACK, 0));
    for (const stream of [...this.#streams.values()]) this.pump(stream);
  }

  #onHeaderBlock(whole: HeaderBlock | undefined): void {
    if (!whole) return; // CONTINUATION frames follow
    const { streamId: id, endStream, block } = whole;
    // decoded whatever becomes of the stream: the header table is the connection's
    const fields = this.#decoder.decode(block);
    const open = this.#streams.get(id);
    if (open) {
      // trailers from the client: gRPC sends none, but they end the request as END_STREAM does
      if (!endStream) return this.#streamError(open, ErrorCode.PROTOCOL_ERROR);
      return this.#remoteEnd(open);
    }
    if (id % 2 === 0) throw new H2ProtocolError(`HEADERS on stream ${id}, an even (server-initiated) id`);
    if (id <= this.#lastStreamId) {
      this.#send(encodeRstStream(id, ErrorCode.STREAM_CLOSED));
      return;
    }
    this.#lastStreamId = id;
    if (this.#draining || this.#streams.size >= this.#maxConcurrentStreams) {
      this.#send(encodeRstStream(id, ErrorCode.REFUSED_STREAM));
      return;
    }
    // a repeated name joined with ", ", as node:http2 gives it to grpc-js
    const headers: Record<string, string> = {};
    for (const [name, value] of fields) headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    const stream = new ServerStream(this, id, fields, headers, this.#initialWindow);
    this.#streams.set(id, stream);
    stream.remoteEnded = endStream;
    this.#options.onStream(stream);
    if (endStream && !stream.closed) stream.handler?.onEnd();
  }

  #remoteEnd(stream: ServerStream): void {
    if (stream.remoteEnded) return;
    stream.remoteEnded = true;
    stream.handler?.onEnd();
  }

  #onData(frame: Frame): void {
    if (frame.streamId === 0) throw new H2ProtocolError('DATA on stream 0');
    const length = frame.payload.length;
    this.#connectionReceiveWindow -= length;
    if (this.#connectionReceiveWindow < 0) throw new H2ProtocolError('DATA beyond the connection window', ErrorCode.FLOW_CONTROL_ERROR);
    const stream = this.#streams.get(frame.streamId);
    if (!stream || stream.remoteEnded) {
      if (frame.streamId > this.#lastStreamId) throw new H2ProtocolError(`DATA on stream ${frame.streamId}, which was never opened`);
      this.#giveBack(length); // the bytes still count against the connection window
      if (stream) this.#streamError(stream, ErrorCode.STREAM_CLOSED);
      else this.#send(encodeRstStream(frame.streamId, ErrorCode.STREAM_CLOSED));
      return;
    }
    stream.receiveWindow -= length;
    if (stream.receiveWindow < 0) {
      this.consumed(stream, length);
      return this.#streamError(stream, ErrorCode.FLOW_CONTROL_ERROR);
    }
    const data = unpadded(frame);
    if (data.length < length) this.consumed(stream, length - data.length); // padding is never handed over
    if (data.length > 0) stream.handler?.onData(data);
    if (frame.flags & Flag.END_STREAM && !stream.closed) this.#remoteEnd(stream);
  }

  #onRstStream(frame: Frame): void {
    if (frame.streamId === 0) throw new H2ProtocolError('RST_STREAM on stream 0');
    if (frame.payload.length !== 4) throw new H2ProtocolError('RST_STREAM length not 4', ErrorCode.FRAME_SIZE_ERROR);
    const stream = this.#streams.get(frame.streamId);
    if (stream) this.#close(stream, frame.payload.readUInt32BE(0));
  }

  #onWindowUpdate(frame: Frame): void {
    const increment = windowIncrement(frame);
    if (frame.streamId === 0) {
      if (increment === 0) throw new H2ProtocolError('WINDOW_UPDATE of 0 on the connection');
      this.#connectionSendWindow += increment;
      if (this.#connectionSendWindow > MAX_WINDOW) throw new H2ProtocolError('connection window above 2^31-1', ErrorCode.FLOW_CONTROL_ERROR);
      for (const stream of [...this.#streams.values()]) if (stream.queue.length > 0) this.pump(stream);
      return;
    }
    const stream = this.#streams.get(frame.streamId);
    if (!stream) {
      if (frame.streamId > this.#lastStreamId) throw new H2ProtocolError(`WINDOW_UPDATE on stream ${frame.streamId}, which was never opened`);
      return; // a stream that just closed
    }
    if (increment === 0 || stream.sendWindow + increment > MAX_WINDOW) {
      return this.#streamError(stream, increment === 0 ? ErrorCode.PROTOCOL_ERROR : ErrorCode.FLOW_CONTROL_ERROR);
    }
    stream.sendWindow += increment;
    this.pump(stream);
  }
}
