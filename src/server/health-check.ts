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
import { encodeHeaders } from '../h2/hpack.ts';
import { HEALTH_CHECK_PATH } from '../rpc-names.ts';
import { Code } from '../status.ts';
import type { H2Stream } from '../h2/connection.ts';
import type { CallTracker } from './access-log.ts';
import { PlainCall, plainHeaders } from './plain-call.ts';
import { OK_TRAILERS, trailersOnly } from './fast-path.ts';
import { httpDate } from './http-date.ts';
import { LastRequest } from './last-request.ts';

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

/** The last Check's service name: probes send one request (service "") again and again. */
const lastService = new LastRequest((message) => (CHECK.requestDeserialize(message) as { service: string }).service);

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
  return plainHeaders(HEALTH_CHECK_PATH, headers, remoteEnded);
}

export class HealthCheckCall extends PlainCall {
  private service: string | undefined;

  constructor(
    stream: H2Stream,
    private readonly health: Pick<ServerHealth, 'statusOf'>,
    tracker: CallTracker,
    toGrpcJs: (read: Buffer[]) => void,
  ) {
    super(stream, HEALTH_CHECK_PATH, tracker, MAX_REQUEST, toGrpcJs);
  }

  /** A name grpc-js can put in a status, too (a lone surrogate it cannot: grpc-js' business, then). */
  protected override read(message: Buffer): boolean {
    this.service = lastService.of(message);
    return this.service.isWellFormed();
  }

  protected override onDeadline(): void {
    this.end(trailersOnly(Code.DEADLINE_EXCEEDED, 'Deadline exceeded', []), Code.DEADLINE_EXCEEDED, 'Deadline exceeded');
  }

  /** no message at all: grpc-js words that error */
  protected override noMessage(): void {
    this.handOver([]);
  }

  protected override answer(): void {
    // the status as the request ends, when grpc-health-check's handler would read it
    const status = this.health.statusOf(this.service!);
    if (status === undefined) {
      const notFound = `Health status unknown for service ${this.service}`;
      return this.end(trailersOnly(Code.NOT_FOUND, notFound, []), Code.NOT_FOUND, notFound);
    }
    const { stream } = this;
    stream.respond(okHeadersBlock());
    stream.write(answerOf(status));
    stream.finish(OK_TRAILERS);
    this.finish(0, 'OK');
  }

  private end(fields: ReturnType<typeof trailersOnly>, code: number, details: string): void {
    this.stream.respond(fields, true);
    this.finish(code, details);
  }
}
