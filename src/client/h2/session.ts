// The client's HTTP/2 connection: the core's client role (src/h2/connection.ts) over a socket it is given
// (node:net, or node:tls after an h2 handshake), so that a probe does not load node:http2 (which doubles
// Node's start time). A request is HEADERS and a body that ends the stream, or (open()) a body written over
// time until end(); its answer comes back as header blocks, DATA and an ending. What this adds to the core:
// waiting for the transport (and ALPN h2), a queue for requests above the server's concurrency limit, and
// errors with codes that explain.ts words. Requests go out as soon as the transport is up, with the client's
// preface and SETTINGS, without waiting for the server's SETTINGS (RFC 9113 §3.4; grpc-go and nghttp2 do the
// same): a request lost on a connection whose server SETTINGS never came was not processed (a server sends
// its SETTINGS first), so it counts as not sent.
import type { Socket } from 'node:net';
import { GoawayError, H2Connection, HeaderListTooLarge, NotHttp2Error, type H2Stream, type StreamReset } from '../../h2/connection.ts';
import { ErrorCode, errorName, H2ProtocolError } from '../../h2/frames.ts';
import type { HeaderList } from '../../h2/hpack.ts';

export type Headers = Record<string, string | string[]>;

export interface StreamEnding {
  /** the server's RST_STREAM code; NO_ERROR when it ended the stream or the connection ended */
  rstCode: number;
  /** the server ended the stream (END_STREAM) */
  ended: boolean;
  /** the connection ended under the stream */
  connectionLost: boolean;
  /**
   * The request went out to the server. When false (never written, refused with REFUSED_STREAM or by a
   * GOAWAY that did not take it), the server certainly did not process it: safe to send again.
   */
  sent: boolean;
  /** the answer's headers were larger than the client takes */
  headersTooLarge?: boolean;
  /** why, when something failed: the connection's error, or the stream's refusal by GOAWAY */
  error?: Error;
}

export interface StreamHandlers {
  /** the response headers, then the trailers */
  onHeaders(headers: Headers): void;
  onData(chunk: Buffer): void;
  /** once, at the end, however it comes (also after cancel()) */
  onClose(ending: StreamEnding): void;
  /** open(): the request DATA waiting for the server's window has gone out after write() returned false */
  onDrain?(): void;
}

export interface ClientStream {
  /** resets the stream (RST_STREAM CANCEL); onClose follows at once */
  cancel(): void;
}

/** A request whose body is written over time (open()). */
export interface RequestStream extends ClientStream {
  /** More of the body; false: wait for onDrain before writing more. Nothing once the stream ended. */
  write(data: Buffer): boolean;
  /** Ends the request side (END_STREAM). */
  end(): void;
}

export interface SessionEvents {
  /** the transport is up: TCP connected, or the TLS handshake done with ALPN h2; requests go out from now */
  connect?(): void;
  /** the server's first SETTINGS arrived: it speaks HTTP/2 */
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
    /** ERR_H2_NOT_HTTP2: what the server sent instead of HTTP/2 */
    readonly firstBytes?: Buffer,
  ) {
    super(message);
  }
}

interface Request {
  fields: HeaderList;
  /** body written before the stream opened (it may wait in the queue) */
  pending: Buffer[];
  /** the body ends after `pending` */
  ended: boolean;
  handlers: StreamHandlers;
  stream: H2Stream | undefined;
  done: boolean;
}

const EMPTY = Buffer.alloc(0);

export class H2Session {
  readonly #connection: H2Connection;
  readonly #events: SessionEvents;
  /** requests waiting for the server's concurrency limit */
  readonly #queued: Request[] = [];
  /** the transport is up and our preface went: requests may go */
  #started = false;
  #goingAway = false;
  #lastActivity = performance.now();

  /** the :scheme of its requests */
  readonly scheme: 'http' | 'https';

  constructor(socket: Socket, secure: boolean, events: SessionEvents) {
    this.scheme = secure ? 'https' : 'http';
    this.#events = events;
    this.#connection = new H2Connection(socket, 'client', {
      onReady: () => {
        // (the server's concurrency limit may leave room for more, or for fewer, than before it)
        this.#openQueued();
        events.ready();
      },
      onGoaway: (code, lastStreamId) => {
        this.#goingAway = true;
        for (const request of this.#queued.splice(0)) this.#end(request, endingOf({ code: ErrorCode.REFUSED_STREAM, cause: 'goaway' }, false));
        events.goaway(code, lastStreamId);
      },
      onStreamClosed: () => this.#openQueued(),
      onClose: (error) => {
        const why = error && sessionError(error);
        for (const request of this.#queued.splice(0)) this.#end(request, { rstCode: ErrorCode.NO_ERROR, ended: false, connectionLost: true, sent: false, ...(why ? { error: why } : {}) });
        events.close(why);
      },
    });
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      if (secure) {
        const alpn = (socket as Socket & { alpnProtocol?: string | false }).alpnProtocol;
        if (alpn !== 'h2') {
          const what = alpn ? `chose ${alpn}` : 'does not negotiate ALPN';
          return this.destroy(new SessionError(`the TLS server ${what}, not HTTP/2 (h2): not a gRPC server?`, 'ERR_H2_NO_ALPN'));
        }
      }
      this.#connection.start();
      this.#started = true;
      events.connect?.();
      this.#openQueued();
    });
  }

  /** The server's SETTINGS came: it speaks HTTP/2. */
  get ready(): boolean {
    return this.#connection.settingsReceived;
  }

  /** False once the server said GOAWAY or the connection ended: new requests need a new session. */
  get usable(): boolean {
    return this.#started && !this.#goingAway && this.#connection.usable;
  }

  get closed(): boolean {
    return this.#connection.closed;
  }

  /** The socket, for what it knows (the TLS version). */
  get socket(): Socket {
    return this.#connection.socket;
  }

  /** Sends a request: `fields` (pseudo-headers first) and `body`, which ends the stream. */
  request(fields: HeaderList, body: Buffer, handlers: StreamHandlers): ClientStream {
    const request = this.#enqueue(fields, [body], true, handlers);
    return { cancel: () => this.#cancel(request) };
  }

  /** Opens a request whose body the caller writes, then ends. */
  open(fields: HeaderList, handlers: StreamHandlers): RequestStream {
    const request = this.#enqueue(fields, [], false, handlers);
    return {
      cancel: () => this.#cancel(request),
      write: (data) => {
        if (request.done || request.ended) return true;
        if (!request.stream) return request.pending.push(data) > 0;
        return request.stream.write(data);
      },
      end: () => {
        if (request.done || request.ended) return;
        request.ended = true;
        request.stream?.write(EMPTY, true);
      },
    };
  }

  /** Sends a PING; resolves with the round trip in ms (and counts as the server's activity), rejects if the connection ends first. */
  async ping(): Promise<number> {
    const ms = await this.#connection.ping();
    this.#lastActivity = performance.now();
    return ms;
  }

  /** How long since the server last sent anything on a stream, or acknowledged a PING. */
  get idleMs(): number {
    return performance.now() - this.#lastActivity;
  }

  #enqueue(fields: HeaderList, pending: Buffer[], ended: boolean, handlers: StreamHandlers): Request {
    if (this.#connection.closed) throw new SessionError('the connection was already closed', 'ERR_HTTP2_INVALID_SESSION');
    if (this.#goingAway || !this.#connection.usable) throw new SessionError('the server is going away (GOAWAY)', 'ERR_HTTP2_GOAWAY_SESSION');
    const request: Request = { fields, pending, ended, handlers, stream: undefined, done: false };
    // streams open in the order of their ids: behind any already waiting
    this.#queued.push(request);
    this.#openQueued();
    return request;
  }

  /** Ends the connection now; open streams end with `error` (a probe does not wait for a graceful close). */
  destroy(error?: Error): void {
    this.#connection.destroy(error);
  }

  #openQueued(): void {
    while (this.#started && this.#queued.length > 0 && this.#connection.usable && this.#connection.canOpenStream) {
      const request = this.#queued.shift()!;
      const connection = this.#connection;
      const stream = connection.openStream(request.fields, {
        onHeaders: (fields) => {
          this.#lastActivity = performance.now();
          request.handlers.onHeaders(toHeaders(fields));
        },
        onData: (chunk) => {
          this.#lastActivity = performance.now();
          stream.consumed(chunk.length);
          request.handlers.onData(chunk);
        },
        onEnd: () => {
          // the server's answer is complete while the request is not: the request is over too (RFC 9113 §8.1)
          if (!stream.closed) stream.write(EMPTY, true);
          this.#end(request, { rstCode: ErrorCode.NO_ERROR, ended: true, connectionLost: false, sent: true });
        },
        // (before the server's SETTINGS it has processed nothing: they come first)
        onReset: (reset) => this.#end(request, endingOf(reset, connection.written(stream) && connection.settingsReceived)),
      });
      request.stream = stream;
      stream.onDrain = () => request.handlers.onDrain?.();
      const pending = request.pending;
      request.pending = [];
      pending.forEach((chunk, i) => stream.write(chunk, request.ended && i === pending.length - 1));
      if (request.ended && pending.length === 0) stream.write(EMPTY, true);
    }
  }

  #cancel(request: Request): void {
    if (request.done) return;
    const queued = this.#queued.indexOf(request);
    if (queued >= 0) this.#queued.splice(queued, 1);
    request.stream?.reset(ErrorCode.CANCEL);
    this.#end(request, { rstCode: ErrorCode.CANCEL, ended: false, connectionLost: false, sent: request.stream !== undefined });
  }

  #end(request: Request, ending: StreamEnding): void {
    if (request.done) return;
    request.done = true;
    request.handlers.onClose(ending);
  }
}

function endingOf(reset: StreamReset, written: boolean): StreamEnding {
  const error = reset.error && sessionError(reset.error);
  const base = { ended: false, ...(error ? { error } : {}) };
  switch (reset.cause) {
    case 'peer':
      return { ...base, rstCode: reset.code, connectionLost: false, sent: written && reset.code !== ErrorCode.REFUSED_STREAM };
    case 'goaway':
      return { ended: false, rstCode: ErrorCode.REFUSED_STREAM, connectionLost: false, sent: false, error: new SessionError('the server is going away (GOAWAY) and did not take the request', 'ERR_HTTP2_GOAWAY_SESSION') };
    case 'protocol':
      return { ...base, rstCode: reset.code, connectionLost: false, sent: written, ...(reset.error instanceof HeaderListTooLarge ? { headersTooLarge: true } : {}) };
    case 'connection':
      return { ...base, rstCode: ErrorCode.NO_ERROR, connectionLost: true, sent: written };
  }
}

const converted = new WeakMap<Error, Error>();

/** The core's errors as SessionErrors with codes explain.ts knows (the same object for the same error); others (the socket's) as they are. */
function sessionError(error: Error): Error {
  let out = converted.get(error);
  if (!out) converted.set(error, (out = toSessionError(error)));
  return out;
}

function toSessionError(error: Error): Error {
  if (error instanceof SessionError) return error;
  if (error instanceof NotHttp2Error) return new SessionError(`not an HTTP/2 server (${error.message}): not a gRPC server?`, 'ERR_H2_NOT_HTTP2', error.firstBytes);
  if (error instanceof GoawayError) return new SessionError(error.message, 'ERR_HTTP2_GOAWAY_ERROR');
  if (error instanceof H2ProtocolError) {
    return new SessionError(`HTTP/2 protocol error from the server: ${error.message} (${errorName(error.h2Code)})`, 'ERR_HTTP2_PROTOCOL');
  }
  return error;
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
