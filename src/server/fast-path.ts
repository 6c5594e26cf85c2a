// The SayHello, answered by the front door itself: the request a load generator sends in a loop, one
// uncompressed message, with its delay and its failure as planned (-sleep, -fail_rate, the override headers;
// faults.ts), so that a load test with faults on runs as fast as one without. It is the call that decides
// how fast the server is under load.
//
// Everything else is grpc-js' job, unchanged (forward.ts): other methods, health, reflection, compression,
// a grpc-timeout that is not of the strict form, and every request body that is not exactly one well-formed
// message. A call starts here only when its headers qualify; its body is then looked at as it arrives, and
// the moment anything about it is unusual (more than one message, a compressed flag, a frame split over
// several DATA frames, bytes protobuf does not accept) the stream is forwarded to grpc-js with the bytes
// read so far, as if it had never been touched. Nothing is answered here before the client
// has half-closed, so a hand-over is always still possible until then.
//
// What a client sees is what grpc-js sends for the same call (test/server-fast-path.test.ts compares the
// two): the same headers, message, trailers, and the same access-log line. Those bytes are one grpc-js
// version's, so package.json pins grpc-js exactly.
import { frame } from '../grpc-frame.ts';
import { afterLongDelay, parseGrpcTimeout } from '../grpc-timeout.ts';
import { encodeHeaders, type HeaderList } from '../h2/hpack.ts';
import { greeterService, SAY_HELLO_PATH } from '../proto.ts';
import { Code } from '../status.ts';
import { httpDate } from './http-date.ts';
import type { CallRecord, CallTracker } from './access-log.ts';
import { afterDelay } from './delay.ts';
import { ATTEMPT_HEADER, attemptFromHeader, crashDetails, type FaultOptions } from './faults.ts';
import { sayHello, type Greeting } from './greeting.ts';
import type { H2Stream, StreamHandler } from '../h2/connection.ts';

/** A larger request goes to grpc-js (whose limit is 4 MB). */
const FAST_MAX_MESSAGE = 16 * 1024;

const SAY_HELLO = greeterService.SayHello!;
/** what grpc-js' unary handler sends with the answer (status OK, details 'OK'), encoded once */
export const OK_TRAILERS = encodeHeaders([
  ['grpc-status', '0'],
  ['grpc-message', 'OK'],
]);
const NO_MESSAGE = `Received no request message for server streaming method ${SAY_HELLO_PATH}`;

/**
 * Headers of a SayHello the fast path takes: anything else is grpc-js' job. Asked only of what the front door
 * did not refuse (refusals.ts), so the content type is gRPC's.
 */
export function qualifiesForFastPath(headers: Readonly<Record<string, string>>, remoteEnded: boolean): boolean {
  if (headers[':path'] !== SAY_HELLO_PATH || headers[':method'] !== 'POST') return false;
  const encoding = headers['grpc-encoding'];
  if (encoding !== undefined && encoding !== 'identity') return false;
  // END_STREAM on the headers: no message at all, grpc-js says so
  if (remoteEnded) return false;
  const timeout = headers['grpc-timeout'];
  return timeout === undefined || !Number.isNaN(parseGrpcTimeout(timeout)); // a malformed one: grpc-js words the error
}

/** The OK answer's headers, as grpc-js sends them (with the attempt Envoy counted, when it did). */
function okHeaders(hostname: string, attempt: number | undefined): HeaderList {
  return [
    [':status', '200'],
    ['content-type', 'application/grpc+proto'],
    ['grpc-accept-encoding', 'identity,deflate,gzip'],
    ['grpc-encoding', 'identity'],
    ['hostname', hostname],
    ...(attempt === undefined ? [] : ([['attempt', String(attempt)]] as HeaderList)),
    ['date', httpDate()],
  ];
}

/** okHeaders without an attempt, encoded again only when the date or the hostname changes (only calls through Envoy have one). */
let okCache: { date: string; hostname: string; block: Buffer } = { date: '', hostname: '', block: Buffer.alloc(0) };
function okHeadersBlock(hostname: string): Buffer {
  const date = httpDate();
  if (okCache.date !== date || okCache.hostname !== hostname) okCache = { date, hostname, block: encodeHeaders(okHeaders(hostname, undefined)) };
  return okCache.block;
}

/** A trailers-only answer, as grpc-js sends one (an error before any message), with the handler's metadata, in its order. */
export function trailersOnly(code: number, details: string, metadata: HeaderList): HeaderList {
  return [
    [':status', '200'],
    ['grpc-status', String(code)],
    ['grpc-message', encodeURI(details)],
    ['content-type', 'application/grpc+proto'],
    ...metadata,
    ['date', httpDate()],
  ];
}

export class FastCall implements StreamHandler {
  private body: Buffer | undefined;
  private name: string | undefined;
  private readonly record: CallRecord;
  private cancelDeadline: (() => void) | undefined;
  /** performance.now() of the call's deadline (grpc-timeout); Infinity without one */
  private deadlineAt = Infinity;
  private cancelDelay: (() => void) | undefined;

  constructor(
    private readonly stream: H2Stream,
    private readonly options: FaultOptions,
    private readonly hostname: string,
    tracker: CallTracker,
    /** forwards the stream to grpc-js with the request bytes read so far */
    private readonly toGrpcJs: (read: Buffer[]) => void,
  ) {
    const { headers } = stream;
    this.record = tracker.begin(SAY_HELLO_PATH, stream.peer, headers[':authority'] ?? headers.host ?? '', headers['user-agent'] ?? '');
    this.record.attempt = attemptFromHeader(headers[ATTEMPT_HEADER]);
    stream.handler = this;
    const timeout = headers['grpc-timeout'];
    if (timeout !== undefined) {
      const ms = parseGrpcTimeout(timeout);
      this.deadlineAt = performance.now() + ms;
      this.cancelDeadline = afterLongDelay(ms, () => this.deadline());
    }
  }

  private stopTimers(): void {
    this.cancelDeadline?.();
    this.cancelDelay?.();
  }

  private finish(code: number, details: string): void {
    this.stopTimers();
    this.record.finish(code, details);
  }

  /** The client went away (RST_STREAM, or the connection closed). */
  onReset(): void {
    this.stopTimers();
    this.record.cancel(this.deadlineAt - performance.now());
  }

  /**
   * Ends the call with an error, trailers only. `byHandler`: the error comes from the Greeter's handler
   * (greeter.ts in grpc-js), whose answers carry the hostname; grpc-js' own (a deadline, no message) do not.
   */
  private fail(code: number, details: string, byHandler: boolean): void {
    this.stream.respond(trailersOnly(code, details, byHandler ? this.replyMetadata() : []), true);
    this.finish(code, details);
  }

  /** The Greeter's metadata on every answer: the hostname, and the attempt Envoy counted (when it did). */
  private replyMetadata(): HeaderList {
    const { attempt } = this.record;
    return attempt === undefined ? [['hostname', this.hostname]] : [['hostname', this.hostname], ['attempt', String(attempt)]];
  }

  /** What grpc-js sends when a deadline passes before the answer: DEADLINE_EXCEEDED, trailers only. */
  private deadline(): void {
    if (this.record.finished || this.stream.closed) return;
    this.fail(Code.DEADLINE_EXCEEDED, 'Deadline exceeded', false);
  }

  onData(chunk: Buffer): void {
    if (this.record.finished) return this.stream.consumed(chunk.length);
    if (this.body !== undefined || !this.accept(chunk)) this.handOver(this.body === undefined ? [chunk] : [this.body, chunk]);
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
    // a copy: the chunk is a view of a socket read of up to 64 KB, which this call would otherwise keep alive
    this.body = Buffer.from(chunk);
    return true;
  }

  /** Gives the call to grpc-js, before it has ended, with the bytes read so far. */
  private handOver(read: Buffer[]): void {
    this.cancelDeadline?.();
    this.record.abandon();
    this.toGrpcJs(read);
  }

  onEnd(): void {
    if (this.record.finished || this.stream.closed) return;
    if (this.body) this.stream.consumed(this.body.length);
    this.body = undefined; // no hand-over after the end
    if (this.name === undefined) {
      // half-closed without a byte: what grpc-js' unary handler answers
      return this.fail(Code.UNIMPLEMENTED, NO_MESSAGE, false);
    }
    const greeting = sayHello(this.options, this.name, (name) => this.stream.headers[name]);
    this.name = undefined; // what a waiting call holds is its answer alone
    if (greeting.end === 'hang') return; // the deadline (still armed) or the client going away ends it
    if (greeting.delayMs <= 0) return this.answer(greeting);
    // as grpc-js' handler: the deadline (still armed) or the client going away ends the wait
    this.cancelDelay = afterDelay(greeting.delayMs, () => this.answer(greeting));
  }

  private answer(greeting: Greeting): void {
    const { stream } = this;
    this.cancelDeadline?.();
    if (stream.closed || this.record.finished) return;
    if (greeting.end === 'crash') {
      this.finish(Code.UNAVAILABLE, crashDetails(greeting.why));
      return this.options.crash?.(greeting.why);
    }
    if (greeting.fail) return this.fail(greeting.fail.code, greeting.fail.details, true);
    stream.respond(this.record.attempt === undefined ? okHeadersBlock(this.hostname) : okHeaders(this.hostname, this.record.attempt));
    stream.write(frame(SAY_HELLO.responseSerialize({ message: greeting.message })));
    stream.finish(OK_TRAILERS);
    this.finish(0, 'OK');
  }
}
