// grpc.health.v1.Health/Check, answered by the front door itself: the call Kubernetes' `grpc:` probes and
// grpc-health-probe make, once a period per pod, and the one a load test of health makes in a loop. Forwarded,
// each Check costs grpc-js' whole call path and the in-memory hop (forward.ts); here it is a lookup and three
// writes.
//
// The statuses are the ones grpc-health-check's service serves (ServerHealth keeps a copy, written by the same
// setStatus calls: the drain's NOT_SERVING, a test's), and the answers are its answers, field for field and byte
// for byte in the message (test/server-health-check.test.ts compares them): SERVING or NOT_SERVING with grpc-status
// OK, NOT_FOUND for a service it does not know, trailers only. As on the SayHello fast path (fast-path.ts), only
// a plain request is answered here: one uncompressed message that protobuf reads. Anything unusual is handed to
// grpc-js, with the bytes read so far, before anything is answered. Watch is a stream, and stays grpc-js' job.
import { service as healthService, HealthImplementation, type ServingStatus, type ServingStatusMap } from 'grpc-health-check';
import { frame } from '../grpc-frame.ts';
import { afterLongDelay, parseGrpcTimeout } from '../grpc-timeout.ts';
import { encodeHeaders } from '../h2/hpack.ts';
import { HEALTH_CHECK_PATH } from '../rpc-names.ts';
import { Code } from '../status.ts';
import type { H2Stream, StreamHandler } from '../h2/connection.ts';
import type { CallRecord, CallTracker } from './access-log.ts';
import { OK_TRAILERS, trailersOnly } from './fast-path.ts';
import { httpDate } from './http-date.ts';

export { HEALTH_CHECK_PATH };

const CHECK = healthService.Check!;
/** A HealthCheckRequest is one service name: a larger one is grpc-js' to refuse or answer. */
const MAX_REQUEST = 4096;

/** grpc-health-check's service, whose statuses can also be read (its own map is private). */
export class ServerHealth extends HealthImplementation {
  readonly #statuses = new Map<string, ServingStatus>();

  constructor(initial: ServingStatusMap) {
    super();
    for (const [service, status] of Object.entries(initial)) this.setStatus(service, status);
  }

  override setStatus(service: string, status: ServingStatus): void {
    this.#statuses.set(service, status);
    super.setStatus(service, status);
  }

  statusOf(service: string): ServingStatus | undefined {
    return this.#statuses.get(service);
  }
}

/** The HealthCheckResponse of each status, framed, serialized as grpc-health-check's service does. */
const answers = new Map<ServingStatus, Buffer>();
function answerOf(status: ServingStatus): Buffer {
  let answer = answers.get(status);
  if (!answer) answers.set(status, (answer = frame(CHECK.responseSerialize({ status }))));
  return answer;
}

/** The OK answer's headers as grpc-js sends them for this service (no hostname: health is not the Greeter's), encoded once a second. */
let okHeaders: { date: string; block: Buffer } = { date: '', block: Buffer.alloc(0) };
function okHeadersBlock(): Buffer {
  const date = httpDate();
  if (okHeaders.date !== date) {
    const block = encodeHeaders([
      [':status', '200'],
      ['content-type', 'application/grpc+proto'],
      ['grpc-accept-encoding', 'identity,deflate,gzip'],
      ['grpc-encoding', 'identity'],
      ['date', date],
    ]);
    okHeaders = { date, block };
  }
  return okHeaders.block;
}

/** A Check this file answers: anything else is grpc-js' job. Asked only of what the front door did not refuse. */
export function qualifiesForHealthCheck(headers: Readonly<Record<string, string>>, remoteEnded: boolean): boolean {
  if (headers[':path'] !== HEALTH_CHECK_PATH || headers[':method'] !== 'POST' || remoteEnded) return false;
  const encoding = headers['grpc-encoding'];
  if (encoding !== undefined && encoding !== 'identity') return false;
  const timeout = headers['grpc-timeout'];
  return timeout === undefined || !Number.isNaN(parseGrpcTimeout(timeout));
}

export class HealthCheckCall implements StreamHandler {
  /** the request, until it has ended */
  private body: Buffer | undefined;
  private service: string | undefined;
  /** what a NOT_FOUND says, percent-encoded as grpc-js sends it */
  private notFound = '';
  private readonly record: CallRecord;
  private cancelDeadline: (() => void) | undefined;
  private deadlineAt = Infinity;

  constructor(
    private readonly stream: H2Stream,
    private readonly health: Pick<ServerHealth, 'statusOf'>,
    tracker: CallTracker,
    /** forwards the stream to grpc-js with the request bytes read so far */
    private readonly toGrpcJs: (read: Buffer[]) => void,
  ) {
    const { headers } = stream;
    this.record = tracker.begin(HEALTH_CHECK_PATH, stream.peer, headers[':authority'] ?? headers.host ?? '', headers['user-agent'] ?? '');
    stream.handler = this;
    const timeout = headers['grpc-timeout'];
    if (timeout !== undefined) {
      const ms = parseGrpcTimeout(timeout);
      this.deadlineAt = performance.now() + ms;
      this.cancelDeadline = afterLongDelay(ms, () => {
        if (!this.record.finished && !stream.closed) this.end(trailersOnly(4, 'Deadline exceeded', []), 4, 'Deadline exceeded');
      });
    }
  }

  onData(chunk: Buffer): void {
    if (this.record.finished) return this.stream.consumed(chunk.length);
    if (this.body !== undefined || !this.accept(chunk)) this.handOver(this.body === undefined ? [chunk] : [this.body, chunk]);
  }

  private handOver(read: Buffer[]): void {
    this.cancelDeadline?.();
    this.record.abandon();
    this.toGrpcJs(read);
  }

  /** The first DATA: exactly one uncompressed message that protobuf reads, and a name grpc-js can put in a status. */
  private accept(chunk: Buffer): boolean {
    if (chunk.length < 5 || chunk[0] !== 0) return false;
    const length = chunk.readUInt32BE(1);
    if (length > MAX_REQUEST || chunk.length !== 5 + length) return false;
    try {
      this.service = (CHECK.requestDeserialize(chunk.subarray(5)) as { service: string }).service;
      this.notFound = `Health status unknown for service ${this.service}`;
      encodeURI(this.notFound); // (throws on a lone surrogate: what grpc-js does with that is its own business)
    } catch {
      return false;
    }
    this.body = Buffer.from(chunk); // a copy: the chunk is a view of a whole socket read
    return true;
  }

  onEnd(): void {
    if (this.record.finished || this.stream.closed) return;
    if (this.body) this.stream.consumed(this.body.length);
    this.body = undefined;
    if (this.service === undefined) return this.handOver([]); // no message at all: grpc-js words that error
    this.cancelDeadline?.();
    // the status as the request ends, when grpc-health-check's handler would read it
    const status = this.health.statusOf(this.service);
    if (status === undefined) return this.end(trailersOnly(Code.NOT_FOUND, this.notFound, []), Code.NOT_FOUND, this.notFound);
    const { stream } = this;
    stream.respond(okHeadersBlock());
    stream.write(answerOf(status));
    stream.finish(OK_TRAILERS);
    this.record.finish(0, 'OK');
  }

  onReset(): void {
    this.cancelDeadline?.();
    this.record.cancel(this.deadlineAt - performance.now());
  }

  private end(fields: ReturnType<typeof trailersOnly>, code: number, details: string): void {
    this.cancelDeadline?.();
    this.stream.respond(fields, true);
    this.record.finish(code, details);
  }
}
