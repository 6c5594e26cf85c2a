// The plain SayHello, answered straight on its HTTP/2 stream: the request a load generator sends in a loop
// (one uncompressed message, no fail header, no -sleep or -fail_rate; a delay header is served here too, so
// that the answer comes as one write when the delay ends) costs about two thirds of the CPU
// that grpc-js' general call machinery spends on it (README, Performance, has the figures), and it is the call
// that decides how fast the server is under load.
//
// Everything else is grpc-js' job, unchanged: other methods, health, reflection, compression, deadlines
// shorter than FAST_MIN_TIMEOUT_MS, faults, malformed delays, and every request body that is not exactly one
// well-formed message. A call starts here only when its headers qualify; its body is then looked at as it
// arrives, and the moment anything about it is unusual (more than one message, a compressed flag, a frame
// split over several DATA frames, bytes protobuf does not accept) the bytes read so far are put back on
// the stream (Readable.unshift) and the stream is handed to grpc-js as if it had never been touched.
// Nothing is answered here before the client has half-closed, so a hand-over is always still possible
// until then.
//
// What a client sees is byte-for-byte what grpc-js sends for the same call (test/server-fast-path.test.ts
// compares the two): the same headers, message, trailers, and the same access-log line (a handed-over
// call's duration_ms counts from the hand-over).
import type { Server } from '@grpc/grpc-js';
import type { EventEmitter } from 'node:events';
import type { Http2Session, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { greeterService, SAY_HELLO_PATH } from '../proto.ts';
import type { CallRecord, CallTracker } from './access-log.ts';
import { afterDelay } from './delay.ts';
import { DELAY_HEADER, delayFromHeader, FAIL_CODE_HEADER, type FaultOptions } from './faults.ts';

/** A call with a shorter deadline goes to grpc-js, which keeps a timer for it. */
export const FAST_MIN_TIMEOUT_MS = 1000;
/** A larger request goes to grpc-js (whose limit is 4 MB). */
const FAST_MAX_MESSAGE = 16 * 1024;

const SAY_HELLO = greeterService.SayHello!;
/** what grpc-js' unary handler sends with the answer (status OK, details 'OK') */
const OK_TRAILERS = { 'grpc-status': '0', 'grpc-message': 'OK' } as const;
const NO_MESSAGE = `Received no request message for server streaming method ${SAY_HELLO_PATH}`;

type StreamListener = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, ...rest: unknown[]) => void;

/**
 * Puts the fast path in front of grpc-js' own 'stream' listener on each HTTP/2 server it bound. Returns false
 * (and changes nothing) when grpc-js' internals do not look as expected: the server then works as before,
 * only slower (test/server-fast-path.test.ts fails so that a grpc-js upgrade cannot lose this silently).
 */
export function installFastPath(server: Server, options: FaultOptions & { hostname: string }, tracker: CallTracker): boolean {
  if (options.sleepMs > 0 || options.failRate > 0) return false; // every SayHello is grpc-js' job then
  const http2Servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(http2Servers instanceof Map) || http2Servers.size === 0) return false;
  const emitters = [...http2Servers.keys()] as EventEmitter[];
  if (!emitters.every((h2) => typeof h2?.listeners === 'function' && h2.listeners('stream').length === 1)) return false;
  for (const h2 of emitters) {
    const grpcJs = h2.listeners('stream')[0] as StreamListener;
    h2.removeAllListeners('stream');
    h2.on('stream', function (this: EventEmitter, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, ...rest: unknown[]) {
      if (!qualifiesForFastPath(headers, rest[0])) return grpcJs.call(this, stream, headers, ...rest);
      new FastCall(stream, headers, options.hostname, tracker, () => grpcJs.call(this, stream, headers, ...rest));
    });
  }
  return true;
}

/** Headers of a plain SayHello: anything else, or anything that asks for more, is grpc-js' job. */
export function qualifiesForFastPath(headers: IncomingHttpHeaders, flags: unknown): boolean {
  if (headers[':path'] !== SAY_HELLO_PATH) return false;
  const contentType = headers['content-type'];
  if (typeof contentType !== 'string' || !contentType.startsWith('application/grpc')) return false;
  const encoding = headers['grpc-encoding'];
  if (encoding !== undefined && encoding !== 'identity') return false;
  if (headers[FAIL_CODE_HEADER] !== undefined) return false;
  const delay = headers[DELAY_HEADER];
  if (delay !== undefined && (typeof delay !== 'string' || delayFromHeader(delay) === undefined)) return false; // grpc-js words the error
  // END_STREAM on the headers: no message at all, grpc-js says so
  if (typeof flags === 'number' && (flags & 0x1) !== 0) return false;
  const timeout = headers['grpc-timeout'];
  return timeout === undefined || timeoutMs(String(timeout)) >= FAST_MIN_TIMEOUT_MS;
}

const TIMEOUT_UNITS_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/**
 * grpc-timeout in ms as grpc-js computes it (including its 32-bit truncation); NaN when it is not the strict
 * `1-8 digits + unit` form (grpc-js then decides what it means).
 */
export function timeoutMs(value: string): number {
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  return m ? (Number(m[1]) * TIMEOUT_UNITS_MS[m[2]!]!) | 0 : Number.NaN;
}

const peers = new WeakMap<Http2Session, string>();

/** grpc-js' getPeer(), read once per connection. */
function peerOf(stream: ServerHttp2Stream): string {
  const session = stream.session;
  if (!session) return 'unknown';
  let peer = peers.get(session);
  if (peer === undefined) {
    const socket = session.socket;
    peer = socket?.remoteAddress ? (socket.remotePort ? `${socket.remoteAddress}:${socket.remotePort}` : socket.remoteAddress) : 'unknown';
    peers.set(session, peer);
  }
  return peer;
}

class FastCall {
  private body: Buffer | undefined;
  private name: string | undefined;
  private readonly record: CallRecord;
  private readonly onData = (chunk: Buffer) => this.data(chunk);
  private readonly onEnd = () => this.end();
  private readonly onClose = () => this.cancelled();
  private timer: NodeJS.Timeout | undefined;
  /** performance.now() of the call's deadline (grpc-timeout); Infinity without one */
  private deadlineAt = Infinity;
  private cancelDelay: (() => void) | undefined;

  constructor(
    private readonly stream: ServerHttp2Stream,
    private readonly headers: IncomingHttpHeaders,
    private readonly hostname: string,
    tracker: CallTracker,
    private readonly toGrpcJs: () => void,
  ) {
    this.record = tracker.begin(SAY_HELLO_PATH, peerOf(stream), String(headers[':authority'] ?? headers.host ?? ''), String(headers['user-agent'] ?? ''));
    stream.on('error', noop); // as grpc-js does: a 'close' follows every error
    stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('close', this.onClose);
    const timeout = headers['grpc-timeout'];
    if (timeout !== undefined) {
      const ms = timeoutMs(String(timeout));
      this.deadlineAt = performance.now() + ms;
      this.timer = setTimeout(() => this.deadline(), ms);
    }
  }

  private stopTimers(): void {
    clearTimeout(this.timer);
    this.cancelDelay?.();
  }

  private finish(code: number, details: string): void {
    this.stopTimers();
    this.record.finish(code, details);
  }

  /** The client went away (RST_STREAM, or the connection closed). */
  private cancelled(): void {
    this.stopTimers();
    this.record.cancel(this.deadlineAt - performance.now());
  }

  /** What grpc-js sends when a deadline passes before the answer: DEADLINE_EXCEEDED, trailers only. */
  private deadline(): void {
    if (this.record.finished || this.stream.destroyed || this.stream.closed) return;
    this.detach();
    this.stream.respond(
      { 'grpc-status': '4', 'grpc-message': 'Deadline%20exceeded', ':status': 200, 'content-type': 'application/grpc+proto' },
      { endStream: true },
    );
    this.finish(4, 'Deadline exceeded');
  }

  private detach(): void {
    const { stream } = this;
    stream.off('data', this.onData);
    stream.off('end', this.onEnd);
    stream.off('close', this.onClose);
  }

  private data(chunk: Buffer): void {
    if (this.body !== undefined || !this.accept(chunk)) {
      this.handOver(this.body === undefined ? chunk : Buffer.concat([this.body, chunk]));
    }
  }

  /** The first DATA: exactly one uncompressed message that protobuf reads. */
  private accept(chunk: Buffer): boolean {
    if (chunk.length < 5 || chunk[0] !== 0) return false;
    const length = chunk.readUInt32BE(1);
    if (length > FAST_MAX_MESSAGE || chunk.length !== 5 + length) return false;
    try {
      this.name = (SAY_HELLO.requestDeserialize(chunk.subarray(5)) as { name: string }).name;
    } catch {
      return false;
    }
    this.body = chunk;
    return true;
  }

  /** Gives the call to grpc-js with the bytes read so far back on the stream, before it has ended. */
  private handOver(read: Buffer): void {
    const { stream } = this;
    stream.pause();
    this.detach();
    stream.off('error', noop);
    stream.unshift(read);
    clearTimeout(this.timer);
    this.record.abandon();
    this.toGrpcJs();
  }

  private end(): void {
    const { stream } = this;
    this.detach();
    if (stream.destroyed || stream.closed) {
      // a reset stream ends its readable side too: the client went away (grpc-js checks the same)
      this.cancelled();
      return;
    }
    if (this.name === undefined) {
      // half-closed without a byte: what grpc-js' unary handler answers
      stream.respond(
        { 'grpc-status': '12', 'grpc-message': encodeURI(NO_MESSAGE), ':status': 200, 'content-type': 'application/grpc+proto' },
        { endStream: true },
      );
      this.finish(12, NO_MESSAGE);
      return;
    }
    const delay = this.headers[DELAY_HEADER]; // checked well-formed by qualifiesForFastPath
    const delayMs = delay === undefined ? 0 : (delayFromHeader(String(delay)) ?? 0);
    if (delayMs <= 0) return this.answer();
    // as grpc-js' handler: the deadline (still armed) or the client going away ends the wait
    stream.once('close', this.onClose);
    this.cancelDelay = afterDelay(delayMs, () => {
      stream.off('close', this.onClose);
      this.answer();
    });
  }

  private answer(): void {
    const { stream } = this;
    clearTimeout(this.timer);
    if (stream.destroyed || stream.closed) return this.cancelled();
    const message = SAY_HELLO.responseSerialize({ message: `Hello ${this.name}` });
    const frame = Buffer.allocUnsafe(5 + message.length);
    frame[0] = 0;
    frame.writeUInt32BE(message.length, 1);
    message.copy(frame, 5);
    stream.respond(
      {
        ':status': 200,
        'content-type': 'application/grpc+proto',
        'grpc-accept-encoding': 'identity,deflate,gzip',
        'grpc-encoding': 'identity',
        hostname: this.hostname,
      },
      { waitForTrailers: true },
    );
    stream.once('wantTrailers', () => {
      stream.sendTrailers(OK_TRAILERS);
      this.finish(0, 'OK');
    });
    stream.once('close', this.onClose);
    stream.end(frame);
  }
}

function noop() {}
