// What the calls the front door answers itself share (a SayHello: fast-path.ts; a health Check: health-check.ts;
// a SayHelloStream: stream-fast-path.ts): each is a request of exactly one plain message, and each is answered
// here only while nothing about it is unusual. The headers qualify (plainHeaders); then the body is looked at
// as it arrives, and the moment anything about it is unusual (more than one message, a compressed flag, a
// frame split over several DATA frames, bytes protobuf does not accept) the stream is forwarded to grpc-js
// with the bytes read so far, as if it had never been touched. Nothing is answered before the client has
// half-closed, so a hand-over is always still possible until then. The call is counted and logged
// (access-log.ts) as grpc-js' interceptor does, and ended by its deadline (grpc-timeout) as grpc-js ends it.
import { afterLongDelay, parseGrpcTimeout } from '../grpc-timeout.ts';
import type { H2Stream, StreamHandler } from '../h2/connection.ts';
import type { CallRecord, CallTracker } from './access-log.ts';
import { ATTEMPT_HEADER, attemptFromHeader } from './faults.ts';

/**
 * Headers of a call to `path` that may be answered here: POST, uncompressed, a deadline of the strict form (a
 * malformed one: grpc-js words the error), and a request body to come (END_STREAM on the headers: no message
 * at all, grpc-js says so). Asked only of what the front door did not refuse (refusals.ts).
 */
export function plainHeaders(path: string, headers: Readonly<Record<string, string>>, remoteEnded: boolean): boolean {
  if (headers[':path'] !== path || headers[':method'] !== 'POST' || remoteEnded) return false;
  const encoding = headers['grpc-encoding'];
  if (encoding !== undefined && encoding !== 'identity') return false;
  const timeout = headers['grpc-timeout'];
  return timeout === undefined || !Number.isNaN(parseGrpcTimeout(timeout));
}

/** A call the front door answers: counted and logged as grpc-js' interceptor does, and ended by its deadline. */
export abstract class FrontDoorCall implements StreamHandler {
  protected readonly record: CallRecord;
  private readonly cancelDeadline: (() => void) | undefined;
  /** performance.now() of the call's deadline (grpc-timeout); Infinity without one */
  private readonly deadlineAt: number = Infinity;

  constructor(
    protected readonly stream: H2Stream,
    path: string,
    tracker: CallTracker,
  ) {
    const { headers } = stream;
    this.record = tracker.begin(path, stream.peer, headers[':authority'] ?? headers.host ?? '', headers['user-agent'] ?? '');
    this.record.attempt = attemptFromHeader(headers[ATTEMPT_HEADER]); // (logged, as grpc-js' interceptor does)
    stream.handler = this;
    const timeout = headers['grpc-timeout'];
    if (timeout !== undefined) {
      const ms = parseGrpcTimeout(timeout);
      this.deadlineAt = performance.now() + ms;
      this.cancelDeadline = afterLongDelay(ms, () => {
        if (!this.record.finished && !stream.closed) this.onDeadline();
      });
    }
  }

  abstract onData(chunk: Buffer): void;

  abstract onEnd(): void;

  /** The deadline passed before the call ended. */
  protected abstract onDeadline(): void;

  /** Stops what the call waits for besides its deadline (a delay). */
  protected stopWaiting(): void {}

  protected stopDeadline(): void {
    this.cancelDeadline?.();
  }

  protected stopTimers(): void {
    this.cancelDeadline?.();
    this.stopWaiting();
  }

  /** The client went away (RST_STREAM, or the connection closed). */
  onReset(): void {
    this.stopTimers();
    this.record.cancel(this.deadlineAt - performance.now());
  }

  /** Ends the call with this status in the access log; its timers are stopped. */
  protected finish(code: number, details: string): void {
    this.stopTimers();
    this.record.finish(code, details);
  }
}

/** A call of one request message, handed to grpc-js if anything about it is unusual. */
export abstract class PlainCall extends FrontDoorCall {
  /** the request's one message, framed, until the request has ended */
  private body: Buffer | undefined;

  constructor(
    stream: H2Stream,
    path: string,
    tracker: CallTracker,
    /** a larger request goes to grpc-js */
    private readonly maxMessage: number,
    /** forwards the stream to grpc-js with the request bytes read so far */
    private readonly toGrpcJs: (read: Buffer[]) => void,
  ) {
    super(stream, path, tracker);
  }

  /** Reads the request's message; false when protobuf (or anything the answer needs) does not take it. */
  protected abstract read(message: Buffer): boolean;

  /** The request has ended, with the one message `read` took; the call is answered now. */
  protected abstract answer(): void;

  /** The request ended without a message: grpc-js' answer, here or there. */
  protected abstract noMessage(): void;

  onData(chunk: Buffer): void {
    if (this.record.finished) return this.stream.consumed(chunk.length);
    if (this.body !== undefined || !this.accept(chunk)) this.handOver(this.body === undefined ? [chunk] : [this.body, chunk]);
  }

  /** The first DATA: exactly one uncompressed message that `read` takes. */
  private accept(chunk: Buffer): boolean {
    if (chunk.length < 5 || chunk[0] !== 0) return false;
    const length = chunk.readUInt32BE(1);
    if (length > this.maxMessage || chunk.length !== 5 + length) return false;
    try {
      if (!this.read(chunk.subarray(5))) return false;
    } catch {
      return false;
    }
    // a copy: the chunk is a view of a socket read of up to 64 KB, which this call would otherwise keep alive
    this.body = Buffer.from(chunk);
    return true;
  }

  /** Gives the call to grpc-js, before it has been answered, with the bytes read so far. */
  protected handOver(read: Buffer[]): void {
    this.stopDeadline();
    this.record.abandon();
    this.toGrpcJs(read);
  }

  onEnd(): void {
    if (this.record.finished || this.stream.closed) return;
    const { body } = this;
    this.body = undefined; // no hand-over after the end
    if (!body) return this.noMessage();
    this.stream.consumed(body.length);
    this.answer();
  }
}
