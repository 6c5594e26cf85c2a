// One HTTP/2 connection (RFC 9113) over a socket node:net or node:tls opened, in either role: the client's
// (src/client/h2/session.ts) and the server's (src/server/front-door.ts). As nghttp2 and grpc-go's transport
// have it, one type does everything both roles share: the preface and SETTINGS, the stream state machine
// (§5.1), header blocks and their checks (§8), flow control both ways (§6.9), PING, GOAWAY, stream and
// connection errors (§5.4), the limits (limits.ts), and one write path that gathers frames and writes them
// once per tick. What differs by role is small and named: who opens streams, which ids are whose, what a
// well-formed header list is, and that a server ends a stream it answered before the request ended.
//
// A protocol error never throws out of the socket's callbacks: a stream error resets that stream, a
// connection error sends GOAWAY and closes.
import type { Socket } from 'node:net';
import { contentLength, readRequest, responseMalformed, trailersMalformed } from './fields.ts';
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
  Outbox,
  pingToAnswer,
  readSettings,
  Setting,
  unpadded,
  windowIncrement,
  type Frame,
  type HeaderBlock,
} from './frames.ts';
import { encodeHeaders, HpackDecoder, HpackError, TABLE_SIZE_ZERO, type HeaderList } from './hpack.ts';
import { TokenBucket } from './budget.ts';
import {
  CONNECTION_WINDOW,
  DEFAULT_LIMITS,
  DEFAULT_WINDOW,
  FLOOD_BUDGETS,
  MAX_QUEUED_IN_PROCESS,
  REFUSALS_BEFORE_GOAWAY,
  STREAM_HIGH_WATER,
  STREAM_OVERHEAD,
  STREAM_WINDOW,
  WINDOW_UPDATE_FRACTION,
  type H2Limits,
} from './limits.ts';

export type Role = 'client' | 'server';

/** A stream's life (RFC 9113 §5.1); idle and reserved streams have no object. */
export const StreamState = {
  OPEN: 'open',
  /** we sent END_STREAM */
  HALF_CLOSED_LOCAL: 'half-closed (local)',
  /** the peer sent END_STREAM */
  HALF_CLOSED_REMOTE: 'half-closed (remote)',
  CLOSED: 'closed',
} as const;
export type StreamState = (typeof StreamState)[keyof typeof StreamState];

/** How a stream ended before both sides ended it. */
export interface StreamReset {
  /** the RST_STREAM code (sent or received); CANCEL when the connection went */
  code: number;
  /** peer: its RST_STREAM; protocol: a stream error we found; goaway: the peer's GOAWAY did not take it; connection: the connection ended */
  cause: 'peer' | 'protocol' | 'goaway' | 'connection';
  /** words for it: the stream error, or the connection's error */
  error?: Error;
}

/** What the owner of a stream does with what arrives on it. */
export interface StreamHandler {
  /** a header block after the first: a client's response headers and both roles' trailers (endStream) */
  onHeaders?(fields: HeaderList, endStream: boolean): void;
  /** DATA; the handler calls stream.consumed(n) once it no longer holds the bytes */
  onData(chunk: Buffer): void;
  /** the peer half-closed (END_STREAM) */
  onEnd(): void;
  /** the stream ended before both sides ended it */
  onReset(reset: StreamReset): void;
}

export class H2Stream {
  handler: StreamHandler | undefined;
  state: StreamState;
  /** the peer ended its side (END_STREAM), whatever happened after */
  remoteEnded: boolean;
  /** called once queued DATA has gone out after write() returned false */
  onDrain: (() => void) | undefined;
  /** write() returned false: onDrain is owed */
  blocked = false;
  /** the peer's window for our DATA on this stream */
  sendWindow: number;
  /** our window for the peer's DATA, and what was consumed but not yet given back */
  receiveWindow = STREAM_WINDOW;
  unacknowledged = 0;
  /** DATA waiting for window, then the end: a trailers block, or END_STREAM on the last DATA */
  queue: Buffer[] = [];
  queued = 0;
  end: Buffer | 'data' | undefined;
  /** our HEADERS went out (a server's response, a client's request) */
  headersSent = false;
  /** header blocks received (the first a request or a response) */
  blocksReceived = 0;
  /** content-length the peer declared, and the DATA bytes received */
  declaredLength: number | undefined;
  dataReceived = 0;
  /** what it counts in the connection's memory besides its queue: its header list and objects, and what its owner retains */
  cost = STREAM_OVERHEAD;
  /** DATA handed to its owner and not yet consumed */
  held = 0;
  /** a server's request: its header names and values, in characters (counted once in the connection's memory) */
  headerSize = 0;
  /** the connection's read that opened it (a reset in that same read is HTTP/2 "rapid reset") */
  openedInRead = 0;

  constructor(
    private readonly connection: H2Connection,
    readonly id: number,
    /** the first header block: a server's request; a client's own request */
    readonly fields: HeaderList,
    /** the same by name, repeated names joined with ", " as node:http2 does (a server dispatches on them) */
    readonly headers: Readonly<Record<string, string>>,
    initialWindow: number,
    remoteEnded: boolean,
  ) {
    this.sendWindow = initialWindow;
    this.remoteEnded = remoteEnded;
    this.state = remoteEnded ? StreamState.HALF_CLOSED_REMOTE : StreamState.OPEN;
  }

  get closed(): boolean {
    return this.state === StreamState.CLOSED;
  }

  /** The peer, as grpc-js' getPeer() says it: "address:port". */
  get peer(): string {
    return this.connection.peer;
  }

  /** A server's response headers (fields, or a block encodeHeaders made); with `endStream` the whole answer. */
  respond(fields: HeaderList | Buffer, endStream = false): void {
    if (this.closed || this.headersSent) return;
    this.headersSent = true;
    this.connection.sendHeaders(this, Buffer.isBuffer(fields) ? fields : encodeHeaders(fields), endStream);
  }

  /** DATA (after the headers); `endStream` ends our side with it. False: wait for onDrain before writing more. */
  write(data: Buffer, endStream = false): boolean {
    if (this.closed || this.end !== undefined) return true;
    if (data.length > 0) this.connection.enqueue(this, data);
    if (endStream) this.end = 'data';
    this.connection.pump(this);
    // (what waits unsent in the socket counts too: a peer whose windows are wide but who does not read)
    if (this.queued <= STREAM_HIGH_WATER && !this.connection.congested) return true;
    this.blocked = true;
    return false;
  }

  /** Its owner holds `n` more bytes for it (a forwarded request, in grpc-js) until it closes: counted in the connection's memory. */
  retain(n: number): void {
    this.connection.charge(this, n);
  }

  /** Trailers (fields, or a block encodeHeaders made) after the DATA written so far, ending our side. */
  finish(trailers: HeaderList | Buffer): void {
    if (this.closed || this.end !== undefined) return;
    this.end = Buffer.isBuffer(trailers) ? trailers : encodeHeaders(trailers);
    this.connection.pump(this);
  }

  /** RST_STREAM: the stream is over for both sides; the handler is not told (it asked). */
  reset(code: number): void {
    this.connection.resetStream(this, code);
  }

  /** The handler is done with `n` received bytes: the peer may send that many more. */
  consumed(n: number): void {
    this.connection.consumed(this, n);
  }
}

export interface ConnectionEvents {
  /** a server's new stream, its request headers checked; the handler is set before this returns */
  onStream?(stream: H2Stream): void;
  /** the bytes of one read from the socket have all been handled (a server may act on its new streams now) */
  onReceived?(): void;
  /** the peer's first SETTINGS arrived */
  onReady?(): void;
  /** the peer sent GOAWAY */
  onGoaway?(code: number, lastStreamId: number, debug: string): void;
  /** a stream ended (a client may open a queued one) */
  onStreamClosed?(): void;
  /** the connection ended, with the error that ended it, if any (after the streams were told) */
  onClose?(error: Error | undefined): void;
}

/** The peer did not speak HTTP/2: its first bytes, for words about what it is. */
export class NotHttp2Error extends H2ProtocolError {
  override name = 'NotHttp2Error';
  constructor(
    message: string,
    readonly firstBytes: Buffer,
  ) {
    super(message);
  }
}

/** The peer's GOAWAY with an error code, as the error that ends the connection. */
export class GoawayError extends H2ProtocolError {
  override name = 'GoawayError';
}

/** A header list larger than we take: its stream is reset, the connection goes on. */
export class HeaderListTooLarge extends H2ProtocolError {
  override name = 'HeaderListTooLarge';
}

const PROTOCOL = ErrorCode.PROTOCOL_ERROR;

/** A client's streams open before the server's SETTINGS say how many it takes. */
const STREAMS_BEFORE_SETTINGS = 1;

/** DATA waiting for peers' windows, all connections of this process together. */
let queuedInProcess = 0;

function bucket(budget: { burst: number; perSecond: number }): TokenBucket {
  return new TokenBucket(budget.burst, budget.perSecond);
}

export class H2Connection {
  readonly #socket: Socket;
  readonly #role: Role;
  readonly #events: ConnectionEvents;
  readonly #limits: H2Limits;
  readonly #reader = new FrameReader();
  readonly #decoder: HpackDecoder;
  readonly #blocks: HeaderBlockReader;
  readonly #streams = new Map<number, H2Stream>();
  /** the highest stream id the peer opened, and the next id we open */
  #lastPeerStreamId = 0;
  #nextStreamId: number;
  /** the ids up to this one went out to the socket */
  #writtenStreamId = 0;
  #prefaceSeen = 0;
  #settingsSeen = false;
  /** we sent GOAWAY: no new streams; the connection ends with its last stream */
  #draining = false;
  /** the peer sent GOAWAY */
  #peerGoingAway = false;
  #closed = false;
  readonly #out = new Outbox();
  #flushScheduled = false;
  #inReceive = false;
  // the peer's settings
  #maxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  #initialWindow = DEFAULT_WINDOW;
  /**
   * Unlimited (RFC 9113 §6.5.2) once the peer's SETTINGS came without a limit. Before them (§3.4 lets a client
   * send with its preface) a client opens one stream, the request of a probe: more could go above a limit the
   * server has yet to state, and be refused.
   */
  #peerMaxConcurrentStreams: number;
  #tableSizeUpdateOwed = false;
  #tableSizeUpdateSent = false;
  /** a client: why the server's GOAWAY ended the connection, when it was an error */
  #goawayError: Error | undefined;
  #connectionSendWindow = DEFAULT_WINDOW;
  #connectionReceiveWindow = CONNECTION_WINDOW;
  #unacknowledged = 0;
  #peer: string | undefined;
  /** bytes held for the peer (limits.ts, maxConnectionMemory), but what waits unsent in the socket */
  #memory = 0;
  /** new streams refused in a row for memory */
  #memoryRefusals = 0;
  /** DATA of its streams waiting for the peer's windows */
  #queued = 0;
  readonly #budgets = {
    ping: bucket(FLOOD_BUDGETS.ping),
    settings: bucket(FLOOD_BUDGETS.settings),
    streamErrors: bucket(FLOOD_BUDGETS.streamErrors),
    emptyFrames: bucket(FLOOD_BUDGETS.emptyFrames),
    rapidResets: bucket(FLOOD_BUDGETS.rapidResets),
  };
  /** reads from the socket so far */
  #reads = 0;
  #handshakeTimer: NodeJS.Timeout | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  /** performance.now() when the last stream closed (or the connection started) */
  #idleSince = performance.now();
  /**
   * We sent HEADERS or DATA since the peer's last PING: its next PING is free, as in grpc-go's server (which
   * resets its ping strikes whenever it sends either). grpc-go's client sends a PING each round trip while
   * DATA flows (its BDP estimator): on a busy stream that is hundreds a second, and not a flood.
   */
  #pingFree = false;
  /** our PINGs waiting for their ACK, by payload (a counter) */
  readonly #pings = new Map<bigint, { sent: number; resolve(ms: number): void; reject(error: Error): void }>();
  #pingsSent = 0n;

  constructor(socket: Socket, role: Role, events: ConnectionEvents, limits: Partial<H2Limits> = {}) {
    this.#socket = socket;
    this.#role = role;
    this.#events = events;
    this.#limits = { ...DEFAULT_LIMITS, ...limits };
    this.#decoder = new HpackDecoder({ maxHeaderListSize: this.#limits.maxHeaderListSize });
    this.#blocks = new HeaderBlockReader(Math.max(this.#limits.maxHeaderBlock, this.#limits.maxHeaderListSize));
    this.#nextStreamId = role === 'client' ? 1 : 2;
    this.#peerMaxConcurrentStreams = role === 'client' ? STREAMS_BEFORE_SETTINGS : Infinity;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#receive(chunk));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
    if (role === 'server') {
      this.start();
      const { handshakeTimeoutMs } = this.#limits;
      if (handshakeTimeoutMs > 0) {
        this.#handshakeTimer = setTimeout(() => this.destroy(new Error(`no HTTP/2 preface and SETTINGS within ${handshakeTimeoutMs / 1000} s`)), handshakeTimeoutMs).unref();
      }
    }
  }

  /** Sends our preface and SETTINGS: a server at once, a client once its transport is up. */
  start(): void {
    const settings = encodeSettings([
      [Setting.ENABLE_PUSH, 0],
      [Setting.MAX_CONCURRENT_STREAMS, this.#role === 'server' ? this.#limits.maxConcurrentStreams : 0],
      [Setting.INITIAL_WINDOW_SIZE, STREAM_WINDOW],
      [Setting.MAX_HEADER_LIST_SIZE, this.#limits.maxHeaderListSize],
    ]);
    const window = encodeWindowUpdate(0, CONNECTION_WINDOW - DEFAULT_WINDOW);
    this.#send(this.#role === 'client' ? Buffer.concat([CLIENT_PREFACE, settings, window]) : Buffer.concat([settings, window]));
  }

  get role(): Role {
    return this.#role;
  }

  get peer(): string {
    if (this.#peer === undefined) {
      const { remoteAddress, remotePort } = this.#socket;
      this.#peer = remoteAddress ? (remotePort ? `${remoteAddress}:${remotePort}` : remoteAddress) : 'unknown';
    }
    return this.#peer;
  }

  get socket(): Socket {
    return this.#socket;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The peer is not going away, we are not draining: a client may open streams. Also before the peer's
   * SETTINGS: what goes out before them keeps to the protocol's initial values (frame size, windows).
   */
  get usable(): boolean {
    return !this.#peerGoingAway && !this.#draining && !this.#closed && this.#nextStreamId <= MAX_WINDOW;
  }

  /** The peer's first SETTINGS came (a server sends them before anything else). */
  get settingsReceived(): boolean {
    return this.#settingsSeen;
  }

  /** The peer's concurrency limit leaves room for another stream of ours. */
  get canOpenStream(): boolean {
    return this.#streams.size < this.#peerMaxConcurrentStreams;
  }

  /** the streams open now */
  streams(): IterableIterator<H2Stream> {
    return this.#streams.values();
  }

  /** A client's request: a new stream with these headers; the body follows with write(). */
  openStream(fields: HeaderList, handler: StreamHandler, endStream = false): H2Stream {
    const id = this.#nextStreamId;
    this.#nextStreamId += 2;
    const stream = new H2Stream(this, id, fields, {}, this.#initialWindow, false);
    stream.handler = handler;
    this.#memory += stream.cost;
    this.#streams.set(id, stream);
    stream.headersSent = true;
    this.sendHeaders(stream, encodeHeaders(fields), endStream);
    return stream;
  }

  /** Whether a stream of ours went out to the peer: if not, it certainly was not processed. */
  written(stream: H2Stream): boolean {
    return stream.id <= this.#writtenStreamId;
  }

  /** Sends a PING; resolves with the round trip in ms when its ACK comes, rejects if the connection ends first. */
  ping(): Promise<number> {
    if (this.#closed) return Promise.reject(new Error('the connection is closed'));
    const id = ++this.#pingsSent;
    const payload = Buffer.alloc(8);
    payload.writeBigUInt64BE(id);
    return new Promise((resolve, reject) => {
      this.#pings.set(id, { sent: performance.now(), resolve, reject });
      this.#send(encodeFrame(FrameType.PING, 0, 0, payload));
    });
  }

  /** Graceful: GOAWAY with the last stream taken; those streams finish, then the connection ends. */
  drain(): void {
    if (this.#closed || this.#draining) return;
    this.#draining = true;
    this.#send(encodeGoaway(this.#lastPeerStreamId, ErrorCode.NO_ERROR, ''));
    if (this.#streams.size === 0) this.#endSocket();
  }

  /** Ends the connection now: every open stream is reset for its handler. */
  destroy(error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#handshakeTimer);
    clearTimeout(this.#idleTimer);
    error ??= this.#goawayError;
    const reset: StreamReset = { code: ErrorCode.CANCEL, cause: 'connection', ...(error ? { error } : {}) };
    for (const stream of [...this.#streams.values()]) this.#close(stream, reset);
    for (const ping of this.#pings.values()) ping.reject(error ?? new Error('the connection closed'));
    this.#pings.clear();
    this.#out.clear();
    this.#socket.destroy();
    this.#events.onClose?.(error);
  }

  // --- sending ---------------------------------------------------------------------------------------

  #send(frame: Buffer): void {
    if (this.#closed) return;
    this.#out.add(frame);
    this.#scheduleFlush();
  }

  /** A frame whose payload is copied once, into the flush's one write, with its header written there beside it. */
  #sendFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    if (this.#closed) return;
    this.#out.addFrame(type, flags, streamId, payload);
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#inReceive || this.#flushScheduled) return;
    this.#flushScheduled = true;
    process.nextTick(() => this.#flush());
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#closed || this.#out.empty) return;
    const out = this.#out.take();
    this.#writtenStreamId = this.#nextStreamId - 2;
    const socket = this.#socket;
    if (socket.write(out) || socket.writableLength < this.#limits.maxUnsent || socket.isPaused()) return;
    // A peer that does not read what it asked for: read nothing more from it until it has (headers and
    // control frames are not flow-controlled, so requests could otherwise pile answers up here without bound).
    socket.pause();
    socket.once('drain', () => {
      socket.resume();
      for (const stream of [...this.#streams.values()]) if (stream.blocked) this.pump(stream);
    });
  }

  /** So much waits unsent in the socket that a stream's writer should wait for its onDrain. */
  get congested(): boolean {
    return this.#socket.writableLength >= this.#limits.maxUnsent;
  }

  /** A header block on `stream` (HEADERS, CONTINUATION as needed); with `endStream` our side ends. */
  sendHeaders(stream: H2Stream, block: Buffer, endStream: boolean): void {
    if (this.#tableSizeUpdateOwed) {
      this.#tableSizeUpdateOwed = false;
      block = Buffer.concat([TABLE_SIZE_ZERO, block]);
    }
    if (block.length <= this.#maxFrameSize) {
      this.#sendFrame(FrameType.HEADERS, Flag.END_HEADERS | (endStream ? Flag.END_STREAM : 0), stream.id, block);
    } else {
      for (const frame of encodeHeaderFrames(stream.id, block, this.#maxFrameSize, endStream)) this.#send(frame);
    }
    this.#pingFree = true;
    if (endStream) this.#localEnd(stream);
  }

  /** DATA to send on `stream`, counted in the connection's memory until it has gone. */
  enqueue(stream: H2Stream, data: Buffer): void {
    stream.queue.push(data);
    stream.queued += data.length;
    this.#memory += data.length;
    this.#queued += data.length;
    queuedInProcess += data.length;
  }

  /** `n` more bytes held for `stream` until it closes. */
  charge(stream: H2Stream, n: number): void {
    if (stream.closed) return;
    stream.cost += n;
    this.#memory += n;
  }

  /** What the connection holds for its peer now, what waits unsent in the socket included. */
  get memory(): number {
    return this.#memory + this.#socket.writableLength;
  }

  /** Sends what the windows allow of the stream's queued DATA, then its end once nothing waits. */
  pump(stream: H2Stream): void {
    if (stream.closed || stream.state === StreamState.HALF_CLOSED_LOCAL || this.#closed) return;
    while (stream.queue.length > 0) {
      const head = stream.queue[0]!;
      const room = Math.min(head.length, this.#maxFrameSize, stream.sendWindow, this.#connectionSendWindow);
      if (room <= 0) break;
      const part = room === head.length ? head : head.subarray(0, room);
      if (part === head) stream.queue.shift();
      else stream.queue[0] = head.subarray(room);
      stream.queued -= part.length;
      this.#memory -= part.length;
      this.#queued -= part.length;
      queuedInProcess -= part.length;
      stream.sendWindow -= part.length;
      this.#connectionSendWindow -= part.length;
      const last = stream.queue.length === 0 && stream.end === 'data';
      this.#sendFrame(FrameType.DATA, last ? Flag.END_STREAM : 0, stream.id, part);
      this.#pingFree = true;
      if (last) return this.#localEnd(stream);
    }
    if (stream.queue.length === 0 && stream.end !== undefined) {
      if (stream.end === 'data') {
        this.#send(encodeFrame(FrameType.DATA, Flag.END_STREAM, stream.id));
        return this.#localEnd(stream);
      }
      return this.sendHeaders(stream, stream.end, true);
    }
    if (stream.blocked && stream.queued <= STREAM_HIGH_WATER && !this.congested) {
      stream.blocked = false;
      stream.onDrain?.();
    }
  }

  #localEnd(stream: H2Stream): void {
    if (stream.remoteEnded) return this.#close(stream);
    if (this.#role === 'server') {
      // the answer is complete before the request: the client need send no more (RFC 9113 §8.1)
      this.#send(encodeRstStream(stream.id, ErrorCode.NO_ERROR));
      return this.#close(stream);
    }
    stream.state = StreamState.HALF_CLOSED_LOCAL;
  }

  /** The owner ends its stream with RST_STREAM. */
  resetStream(stream: H2Stream, code: number): void {
    if (stream.closed) return;
    this.#send(encodeRstStream(stream.id, code));
    this.#close(stream);
  }

  /** A stream error (RFC 9113 §5.4.2): RST_STREAM, and the owner learns its stream is gone. */
  #streamError(stream: H2Stream, code: number, why: string): void {
    if (stream.closed) return;
    this.#provoked(stream.id, code);
    this.#close(stream, { code, cause: 'protocol', error: new H2ProtocolError(why, code) });
  }

  /** An RST_STREAM the peer's misbehaviour asks for: within its budget, else the connection ends (a flood of them). */
  #provoked(id: number, code: number): void {
    if (!this.#budgets.streamErrors.take()) throw new H2ProtocolError('too many stream errors', ErrorCode.ENHANCE_YOUR_CALM);
    this.#send(encodeRstStream(id, code));
  }

  /** A frame that carries nothing: within its budget, else the connection ends (CVE-2019-9518). */
  #empty(what: string): void {
    if (!this.#budgets.emptyFrames.take()) throw new H2ProtocolError(`too many empty ${what} frames`, ErrorCode.ENHANCE_YOUR_CALM);
  }

  consumed(stream: H2Stream, n: number): void {
    if (this.#closed || n <= 0) return;
    const released = Math.min(n, stream.held);
    stream.held -= released;
    this.#memory -= released;
    this.#giveBack(n);
    if (stream.closed || stream.remoteEnded) return;
    stream.unacknowledged += n;
    if (stream.unacknowledged >= STREAM_WINDOW / WINDOW_UPDATE_FRACTION) {
      this.#send(encodeWindowUpdate(stream.id, stream.unacknowledged));
      stream.receiveWindow += stream.unacknowledged;
      stream.unacknowledged = 0;
    }
  }

  /** Opens the connection's receive window again by `n` (in batches). */
  #giveBack(n: number): void {
    this.#unacknowledged += n;
    if (this.#unacknowledged < CONNECTION_WINDOW / WINDOW_UPDATE_FRACTION) return;
    this.#send(encodeWindowUpdate(0, this.#unacknowledged));
    this.#connectionReceiveWindow += this.#unacknowledged;
    this.#unacknowledged = 0;
  }

  /** The stream is over: both sides ended it, or it was reset (then its owner hears why). */
  #close(stream: H2Stream, reset?: StreamReset): void {
    if (stream.closed) return;
    stream.state = StreamState.CLOSED;
    this.#memory -= stream.queued + stream.cost + stream.held;
    this.#queued -= stream.queued;
    queuedInProcess -= stream.queued;
    stream.held = 0;
    stream.queue = [];
    stream.queued = 0;
    this.#streams.delete(stream.id);
    if (reset) stream.handler?.onReset(reset);
    if (this.#closed) return;
    this.#events.onStreamClosed?.();
    if (this.#streams.size > 0) return;
    this.#idleSince = performance.now();
    if (this.#draining) this.#endSocket();
    else if (this.#peerGoingAway && this.#role === 'client') this.destroy(this.#goawayError);
  }

  /** Closes the connection (GOAWAY) once no stream has been open for idleTimeoutMs; checked when the timer fires, not per stream. */
  #armIdleTimer(ms: number): void {
    this.#idleTimer = setTimeout(() => {
      const idle = this.#limits.idleTimeoutMs;
      const idleFor = performance.now() - this.#idleSince;
      if (this.#streams.size > 0) return this.#armIdleTimer(idle);
      if (idleFor < idle) return this.#armIdleTimer(idle - idleFor);
      this.drain();
    }, Math.ceil(ms)).unref();
  }

  #endSocket(): void {
    this.#flush();
    this.#socket.end();
  }

  // --- receiving -------------------------------------------------------------------------------------

  #receive(chunk: Buffer): void {
    if (this.#closed) return;
    this.#inReceive = true;
    this.#reads++;
    try {
      if (this.#role === 'server' && this.#prefaceSeen < CLIENT_PREFACE.length) {
        chunk = this.#readPreface(chunk);
        if (chunk.length === 0) return;
      }
      if (!this.#settingsSeen) this.#checkFirstFrame(chunk);
      this.#reader.read(chunk, this.#onFrame);
      if (this.#closed) return;
      this.#events.onReceived?.();
    } catch (err) {
      this.#connectionError(err);
    } finally {
      this.#inReceive = false;
      this.#flush();
    }
  }

  /** Checks the client preface's bytes as they come; returns what follows it. */
  #readPreface(chunk: Buffer): Buffer {
    const want = CLIENT_PREFACE.length - this.#prefaceSeen;
    const part = chunk.subarray(0, want);
    if (!part.equals(CLIENT_PREFACE.subarray(this.#prefaceSeen, this.#prefaceSeen + part.length))) {
      throw new NotHttp2Error('not an HTTP/2 connection preface (an HTTP/1 or TLS client on a plaintext HTTP/2 port?)', chunk.subarray(0, 64));
    }
    this.#prefaceSeen += part.length;
    return chunk.subarray(part.length);
  }

  /** The peer's first frame must be SETTINGS (RFC 9113 §3.4); a peer that is not HTTP/2 is told apart by its bytes. */
  #checkFirstFrame(chunk: Buffer): void {
    const seen = this.#reader.pending.length === 0 ? chunk : Buffer.concat([this.#reader.pending, chunk]);
    if (seen.length < 9) return;
    if (seen[3] !== FrameType.SETTINGS || seen[4] !== 0 || seen.readUInt32BE(5) !== 0) {
      throw new NotHttp2Error('the first frame is not SETTINGS', seen.subarray(0, 64));
    }
  }

  #connectionError(err: unknown): void {
    const h2Code = err instanceof H2ProtocolError ? err.h2Code : err instanceof HpackError ? ErrorCode.COMPRESSION_ERROR : ErrorCode.INTERNAL_ERROR;
    const error = err instanceof Error ? err : new Error(String(err));
    if (!(err instanceof NotHttp2Error && this.#role === 'client')) {
      this.#send(encodeGoaway(this.#lastPeerStreamId, h2Code, error.message.slice(0, 200)));
    }
    this.#endSocket();
    this.destroy(err instanceof H2ProtocolError ? err : new H2ProtocolError(error.message, h2Code));
  }

  /** Whether `id` names a stream that was never opened (RFC 9113 §5.1.1: lower unused ids are closed, not idle). */
  #idle(id: number): boolean {
    const peers = (id % 2 === 1) === (this.#role === 'server');
    return peers ? id > this.#lastPeerStreamId : id >= this.#nextStreamId;
  }

  /** The reader's callback, made once: a frame handled, and whether the session still reads. */
  readonly #onFrame = (frame: Frame): boolean => {
    this.#handle(frame);
    return !this.#closed;
  };

  #handle(frame: Frame): void {
    if (this.#blocks.open && frame.type !== FrameType.CONTINUATION) {
      throw new H2ProtocolError(`a ${frameName(frame.type)} frame inside a header block (CONTINUATION expected)`);
    }
    switch (frame.type) {
      case FrameType.DATA:
        return this.#onData(frame);
      case FrameType.HEADERS:
        return this.#onHeaderBlock(this.#blocks.headers(frame));
      case FrameType.CONTINUATION:
        if (frame.payload.length === 0) this.#empty('CONTINUATION');
        return this.#onHeaderBlock(this.#blocks.continuation(frame));
      case FrameType.PRIORITY:
        return this.#onPriority(frame);
      case FrameType.RST_STREAM:
        return this.#onRstStream(frame);
      case FrameType.SETTINGS:
        return this.#onSettings(frame);
      case FrameType.PUSH_PROMISE:
        throw new H2ProtocolError(this.#role === 'server' ? 'PUSH_PROMISE from a client' : 'PUSH_PROMISE, though push is disabled');
      case FrameType.PING: {
        const payload = pingToAnswer(frame);
        if (!payload) return this.#onPingAck(frame.payload);
        // as grpc-go: a peer that pings without end is told so ("too_many_pings") and the connection ends
        if (this.#pingFree) this.#pingFree = false;
        else if (!this.#budgets.ping.take()) throw new H2ProtocolError('too_many_pings', ErrorCode.ENHANCE_YOUR_CALM);
        this.#send(encodeFrame(FrameType.PING, Flag.ACK, 0, payload));
        return;
      }
      case FrameType.GOAWAY:
        return this.#onGoaway(frame);
      case FrameType.WINDOW_UPDATE:
        return this.#onWindowUpdate(frame);
      default:
        return; // unknown types are ignored (RFC 9113 §5.5)
    }
  }

  /** An ACK of one of our PINGs (one we did not send is ignored). */
  #onPingAck(payload: Buffer): void {
    const id = payload.readBigUInt64BE(0);
    const ping = this.#pings.get(id);
    if (!ping) return;
    this.#pings.delete(id);
    ping.resolve(performance.now() - ping.sent);
  }

  #onSettings(frame: Frame): void {
    const settings = readSettings(frame);
    if (!settings) return; // an ACK
    if (!this.#budgets.settings.take()) throw new H2ProtocolError('too many SETTINGS', ErrorCode.ENHANCE_YOUR_CALM);
    if (!this.#settingsSeen) this.#peerMaxConcurrentStreams = Infinity; // the peer's own, from now on
    for (const [id, value] of settings) {
      switch (id) {
        case Setting.HEADER_TABLE_SIZE:
          // our encoder's table must come down to the peer's size: once at 0, it stays within any
          if (value < 4096 && !this.#tableSizeUpdateSent) this.#tableSizeUpdateOwed = this.#tableSizeUpdateSent = true;
          break;
        case Setting.ENABLE_PUSH:
          if (value !== 0 && this.#role === 'client') throw new H2ProtocolError('SETTINGS_ENABLE_PUSH from a server must be 0');
          break;
        case Setting.MAX_CONCURRENT_STREAMS:
          this.#peerMaxConcurrentStreams = value;
          break;
        case Setting.INITIAL_WINDOW_SIZE:
          for (const stream of this.#streams.values()) {
            stream.sendWindow += value - this.#initialWindow;
            if (stream.sendWindow > MAX_WINDOW) throw new H2ProtocolError('SETTINGS_INITIAL_WINDOW_SIZE takes a stream window above 2^31-1', ErrorCode.FLOW_CONTROL_ERROR);
          }
          this.#initialWindow = value;
          break;
        case Setting.MAX_FRAME_SIZE:
          this.#maxFrameSize = value;
          break;
      }
    }
    this.#send(encodeFrame(FrameType.SETTINGS, Flag.ACK, 0));
    for (const stream of [...this.#streams.values()]) this.pump(stream);
    if (!this.#settingsSeen) {
      this.#settingsSeen = true;
      clearTimeout(this.#handshakeTimer);
      if (this.#role === 'server' && this.#limits.idleTimeoutMs > 0) this.#armIdleTimer(this.#limits.idleTimeoutMs);
      this.#events.onReady?.();
    }
  }

  #onHeaderBlock(whole: HeaderBlock | undefined): void {
    if (!whole) return; // CONTINUATION frames follow
    const { streamId: id, endStream, block, selfDependent } = whole;
    // decoded whatever becomes of the stream: the HPACK table is the connection's
    const fields = this.#decoder.decodeWithinLimit(block);
    const invalid = this.#decoder.invalidField;
    const stream = this.#streams.get(id);
    if (!stream) return this.#role === 'server' ? this.#onRequest(id, endStream, fields, selfDependent || invalid !== undefined) : this.#onUnknownStreamHeaders(id);
    if (selfDependent) return this.#streamError(stream, PROTOCOL, 'HEADERS that depend on their own stream');
    if (invalid) return this.#streamError(stream, PROTOCOL, invalid);
    if (stream.remoteEnded) return this.#streamError(stream, ErrorCode.STREAM_CLOSED, `HEADERS on stream ${id}, which the peer had ended`);
    if (!fields) {
      const what = this.#role === 'client' ? 'response' : 'request';
      this.#send(encodeRstStream(id, ErrorCode.CANCEL));
      return this.#close(stream, { code: ErrorCode.CANCEL, cause: 'protocol', error: new HeaderListTooLarge(`${what} headers larger than ${this.#limits.maxHeaderListSize} bytes`) });
    }
    const first = this.#role === 'client' && stream.blocksReceived === 0;
    if (first) {
      const malformed = responseMalformed(fields);
      if (malformed) return this.#streamError(stream, PROTOCOL, `malformed response: ${malformed}`);
      // informational answers (1xx) come before the real one: skipped
      if (fields[0]![1].startsWith('1') && fields[0]![0] === ':status') {
        if (endStream) return this.#streamError(stream, PROTOCOL, 'an informational response that ends the stream');
        return;
      }
      stream.declaredLength = contentLength(fields);
    } else {
      if (!endStream) return this.#streamError(stream, PROTOCOL, 'trailers without END_STREAM');
      const malformed = trailersMalformed(fields);
      if (malformed) return this.#streamError(stream, PROTOCOL, `malformed trailers: ${malformed}`);
    }
    stream.blocksReceived++;
    stream.handler?.onHeaders?.(fields, endStream);
    if (endStream) this.#remoteEnd(stream);
  }

  /** A client's HEADERS on a stream it no longer has: one it reset may still be answered; one it never opened may not. */
  #onUnknownStreamHeaders(id: number): void {
    if (this.#idle(id)) throw new H2ProtocolError(`HEADERS on stream ${id}, which the client never opened`);
  }

  /** A new stream from a client. */
  #onRequest(id: number, endStream: boolean, fields: HeaderList | undefined, malformed: boolean): void {
    if (id % 2 === 0) throw new H2ProtocolError(`HEADERS on stream ${id}, an even (server-initiated) id`);
    // (ids below the last one may never have been used: only the last one is surely a closed stream)
    if (id === this.#lastPeerStreamId) throw new H2ProtocolError(`HEADERS on stream ${id}, which is closed`, ErrorCode.STREAM_CLOSED);
    if (id < this.#lastPeerStreamId) throw new H2ProtocolError(`HEADERS on stream ${id}, below the last stream opened (${this.#lastPeerStreamId})`);
    this.#lastPeerStreamId = id;
    if (malformed) return this.#provoked(id, PROTOCOL); // (a priority on itself, an invalid name or value)
    if (this.#draining || this.#streams.size >= this.#limits.maxConcurrentStreams) return this.#send(encodeRstStream(id, ErrorCode.REFUSED_STREAM));
    // (a peer whose answers wait for its windows gets no more streams while such answers fill the process's
    // share: many connections that never read would otherwise each hold a connection's budget)
    if (this.memory > this.#limits.maxConnectionMemory || (this.#queued > 0 && queuedInProcess > MAX_QUEUED_IN_PROCESS)) {
      if (++this.#memoryRefusals > REFUSALS_BEFORE_GOAWAY) throw new H2ProtocolError('streams opened past the connection\'s memory budget', ErrorCode.ENHANCE_YOUR_CALM);
      return this.#send(encodeRstStream(id, ErrorCode.REFUSED_STREAM));
    }
    this.#memoryRefusals = 0;
    if (!fields) return this.#provoked(id, ErrorCode.ENHANCE_YOUR_CALM); // (RFC 9113 §10.5.1 would allow a 431; a gRPC client reads the code)
    const request = readRequest(fields);
    if (typeof request === 'string') return this.#provoked(id, PROTOCOL);
    const declared = request.contentLength;
    if (endStream && declared !== undefined && declared !== 0) return this.#provoked(id, PROTOCOL);
    const stream = new H2Stream(this, id, fields, request.headers, this.#initialWindow, endStream);
    stream.blocksReceived = 1;
    stream.openedInRead = this.#reads;
    stream.headerSize = request.size;
    stream.declaredLength = declared;
    this.charge(stream, request.size);
    this.#memory += STREAM_OVERHEAD;
    this.#streams.set(id, stream);
    this.#events.onStream?.(stream);
    if (endStream && !stream.closed) stream.handler?.onEnd();
  }

  #remoteEnd(stream: H2Stream): void {
    if (stream.remoteEnded) return;
    stream.remoteEnded = true;
    if (stream.state === StreamState.HALF_CLOSED_LOCAL) this.#close(stream);
    else stream.state = StreamState.HALF_CLOSED_REMOTE;
    stream.handler?.onEnd();
  }

  #onData(frame: Frame): void {
    if (frame.streamId === 0) throw new H2ProtocolError('DATA on stream 0');
    if (frame.payload.length === 0 && !(frame.flags & Flag.END_STREAM)) this.#empty('DATA');
    const data = unpadded(frame);
    const length = frame.payload.length;
    this.#connectionReceiveWindow -= length;
    if (this.#connectionReceiveWindow < 0) throw new H2ProtocolError('DATA beyond the connection window', ErrorCode.FLOW_CONTROL_ERROR);
    const stream = this.#streams.get(frame.streamId);
    if (!stream || stream.remoteEnded) {
      if (!stream && this.#idle(frame.streamId)) throw new H2ProtocolError(`DATA on stream ${frame.streamId}, which was never opened`);
      this.#giveBack(length); // the bytes still count against the connection window
      if (stream) return this.#streamError(stream, ErrorCode.STREAM_CLOSED, `DATA on stream ${frame.streamId} after its END_STREAM`);
      return this.#provoked(frame.streamId, ErrorCode.STREAM_CLOSED);
    }
    if (stream.blocksReceived === 0) {
      this.#giveBack(length);
      return this.#streamError(stream, PROTOCOL, `DATA before HEADERS on stream ${frame.streamId}`);
    }
    stream.receiveWindow -= length;
    if (stream.receiveWindow < 0) {
      this.#giveBack(length);
      return this.#streamError(stream, ErrorCode.FLOW_CONTROL_ERROR, `DATA beyond the window of stream ${frame.streamId}`);
    }
    stream.dataReceived += data.length;
    const end = (frame.flags & Flag.END_STREAM) !== 0;
    const declared = stream.declaredLength;
    if (declared !== undefined && (stream.dataReceived > declared || (end && stream.dataReceived !== declared))) {
      this.#giveBack(length);
      return this.#streamError(stream, PROTOCOL, `DATA of ${stream.dataReceived} bytes where content-length said ${declared}`);
    }
    if (data.length < length) this.consumed(stream, length - data.length); // padding is never handed over
    if (data.length > 0) {
      stream.held += data.length;
      this.#memory += data.length;
      stream.handler?.onData(data);
    }
    if (end && !stream.closed) this.#remoteEnd(stream);
  }

  #onPriority(frame: Frame): void {
    if (frame.streamId === 0) throw new H2ProtocolError('PRIORITY on stream 0');
    const stream = this.#streams.get(frame.streamId);
    const fail = (code: number, why: string) => {
      if (stream) return this.#streamError(stream, code, why);
      if (this.#idle(frame.streamId)) throw new H2ProtocolError(why, code); // no RST_STREAM on an idle stream
      this.#provoked(frame.streamId, code);
    };
    if (frame.payload.length !== 5) return fail(ErrorCode.FRAME_SIZE_ERROR, 'PRIORITY length not 5');
    if ((frame.payload.readUInt32BE(0) & MAX_WINDOW) === frame.streamId) return fail(PROTOCOL, 'PRIORITY that depends on its own stream');
    // otherwise ignored: RFC 9113 deprecates the priority scheme
  }

  #onRstStream(frame: Frame): void {
    if (frame.streamId === 0) throw new H2ProtocolError('RST_STREAM on stream 0');
    if (frame.payload.length !== 4) throw new H2ProtocolError('RST_STREAM length not 4', ErrorCode.FRAME_SIZE_ERROR);
    if (this.#idle(frame.streamId)) throw new H2ProtocolError(`RST_STREAM on stream ${frame.streamId}, which was never opened`);
    const stream = this.#streams.get(frame.streamId);
    if (!stream) return;
    // a stream reset in the very read that opened it never had a chance to be waited for: within its budget
    // (a client's deadline cancels a call in a later read, and has no budget)
    if (stream.openedInRead === this.#reads && this.#role === 'server' && !this.#budgets.rapidResets.take()) {
      throw new H2ProtocolError('too many streams reset as they were opened (rapid reset)', ErrorCode.ENHANCE_YOUR_CALM);
    }
    this.#close(stream, { code: frame.payload.readUInt32BE(0), cause: 'peer' });
  }

  #onGoaway(frame: Frame): void {
    if (frame.streamId !== 0) throw new H2ProtocolError('GOAWAY on a stream');
    if (frame.payload.length < 8) throw new H2ProtocolError('GOAWAY shorter than 8 bytes', ErrorCode.FRAME_SIZE_ERROR);
    const lastStreamId = frame.payload.readUInt32BE(0) & MAX_WINDOW;
    const code = frame.payload.readUInt32BE(4);
    const debug = frame.payload.subarray(8, 8 + 200).toString('utf8');
    this.#peerGoingAway = true;
    if (code !== ErrorCode.NO_ERROR) {
      this.#goawayError ??= new GoawayError(`the ${this.#role === 'client' ? 'server' : 'client'} closed the connection with ${errorName(code)}${debug ? ` (${debug})` : ''}`, code);
    }
    this.#events.onGoaway?.(code, lastStreamId, debug);
    if (this.#role === 'server') return; // the client opens nothing more; what is open finishes
    // streams above the last one the server took were not processed: safe to retry elsewhere
    const refused = new H2ProtocolError(`the server is going away (GOAWAY ${errorName(code)}) and did not take the stream`, ErrorCode.REFUSED_STREAM);
    for (const stream of [...this.#streams.values()]) {
      if (stream.id > lastStreamId) this.#close(stream, { code: ErrorCode.REFUSED_STREAM, cause: 'goaway', error: refused });
    }
    if (this.#streams.size === 0 && !this.#closed) this.destroy(this.#goawayError);
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
      if (this.#idle(frame.streamId)) throw new H2ProtocolError(`WINDOW_UPDATE on stream ${frame.streamId}, which was never opened`);
      return; // a stream that just closed
    }
    if (increment === 0) return this.#streamError(stream, PROTOCOL, 'WINDOW_UPDATE of 0');
    if (stream.sendWindow + increment > MAX_WINDOW) return this.#streamError(stream, ErrorCode.FLOW_CONTROL_ERROR, 'stream window above 2^31-1');
    stream.sendWindow += increment;
    this.pump(stream);
  }
}

function frameName(type: number): string {
  return Object.entries(FrameType).find(([, t]) => t === type)?.[0] ?? `type 0x${type.toString(16)}`;
}
