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
import { encodeHeaders, type HeaderList } from '../h2/hpack.ts';
import { greeterService, SAY_HELLO_PATH } from '../proto.ts';
import { Code } from '../status.ts';
import { httpDate } from './http-date.ts';
import type { CallTracker } from './access-log.ts';
import { afterDelay } from './delay.ts';
import { crashDetails, type FaultOptions } from './faults.ts';
import { sayHello, type Greeting } from './greeting.ts';
import { LastRequest } from './last-request.ts';
import type { H2Stream } from '../h2/connection.ts';
import { PlainCall, plainHeaders } from './plain-call.ts';

/** A larger request goes to grpc-js (whose limit is 4 MB). */
const FAST_MAX_MESSAGE = 16 * 1024;

const SAY_HELLO = greeterService.SayHello!;

/**
 * The last request's name, and the last reply's text and framed bytes: under load, and from a probe, one request
 * comes again and again, and protobufjs need not read it or write its reply each time.
 */
const lastName = new LastRequest((message) => (SAY_HELLO.requestDeserialize(message) as { name: string }).name);
let lastReply = { text: '', framed: frame(SAY_HELLO.responseSerialize({ message: '' })) };

function framedReply(text: string): Buffer {
  if (text !== lastReply.text) lastReply = { text, framed: frame(SAY_HELLO.responseSerialize({ message: text })) };
  return lastReply.framed;
}

/** The trailers that end a call after its headers, as grpc-js sends them. */
export function statusTrailers(code: number, details: string): Buffer {
  return encodeHeaders([
    ['grpc-status', String(code)],
    ['grpc-message', encodeURI(details)],
  ]);
}
/** what grpc-js' unary handler sends with the answer (status OK, details 'OK'), encoded once */
export const OK_TRAILERS = statusTrailers(Code.OK, 'OK');
const NO_MESSAGE = `Received no request message for server streaming method ${SAY_HELLO_PATH}`;

/**
 * Headers of a SayHello the fast path takes: anything else is grpc-js' job. Asked only of what the front door
 * did not refuse (refusals.ts), so the content type is gRPC's.
 */
export function qualifiesForFastPath(headers: Readonly<Record<string, string>>, remoteEnded: boolean): boolean {
  return plainHeaders(SAY_HELLO_PATH, headers, remoteEnded);
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
export function okHeadersBlock(hostname: string): Buffer {
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

export class FastCall extends PlainCall {
  private name: string | undefined;
  private cancelDelay: (() => void) | undefined;

  constructor(
    stream: H2Stream,
    private readonly options: FaultOptions,
    private readonly hostname: string,
    tracker: CallTracker,
    toGrpcJs: (read: Buffer[]) => void,
  ) {
    super(stream, SAY_HELLO_PATH, tracker, FAST_MAX_MESSAGE, toGrpcJs);
  }

  protected override read(message: Buffer): boolean {
    this.name = lastName.of(message);
    return true;
  }

  protected override stopWaiting(): void {
    this.cancelDelay?.();
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
  protected override onDeadline(): void {
    this.fail(Code.DEADLINE_EXCEEDED, 'Deadline exceeded', false);
  }

  /** half-closed without a byte: what grpc-js' unary handler answers */
  protected override noMessage(): void {
    this.fail(Code.UNIMPLEMENTED, NO_MESSAGE, false);
  }

  protected override answer(): void {
    const greeting = sayHello(this.options, this.name!, (name) => this.stream.headers[name]);
    this.name = undefined; // what a waiting call holds is its answer alone
    if (greeting.end === 'hang') return; // the deadline (still armed) or the client going away ends it
    if (greeting.delayMs <= 0) return this.reply(greeting);
    // as grpc-js' handler: the deadline (still armed) or the client going away ends the wait
    this.cancelDelay = afterDelay(greeting.delayMs, () => this.reply(greeting));
  }

  private reply(greeting: Greeting): void {
    const { stream } = this;
    if (stream.closed || this.record.finished) return;
    if (greeting.end === 'crash') {
      this.finish(Code.UNAVAILABLE, crashDetails(greeting.why));
      return this.options.crash?.(greeting.why);
    }
    if (greeting.fail) return this.fail(greeting.fail.code, greeting.fail.details, true);
    stream.respond(this.record.attempt === undefined ? okHeadersBlock(this.hostname) : okHeaders(this.hostname, this.record.attempt));
    stream.write(framedReply(greeting.message!));
    stream.finish(OK_TRAILERS);
    this.finish(0, 'OK');
  }
}
