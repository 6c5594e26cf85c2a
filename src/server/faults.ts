// What a SayHello does besides answering: how long to wait and whether to fail. From the -sleep,
// -fail_rate and -fail_code flags, overridden per request by metadata that a client sends, so retries and
// outlier detection can be exercised without a mesh:
//   x-helloworld-delay-ms: 250          wait 250 ms instead of -sleep (capped at 5 minutes; the call's
//                                       deadline ends the wait anyway)
//   x-helloworld-fail-code: UNAVAILABLE answer with this status (name or number; OK forces success)
//   x-helloworld-fault: crash           SayHello only: instead of answering (after the delay), end the serving
//                                       process (server.ts `crash`; main.ts exits ServerExit.CRASHED, all workers too)
//   x-helloworld-fault: hang            SayHello only: never answer; the call's deadline (or its client) ends it
//   x-helloworld-fault: none            neither, whatever -crash_rate draws
// -crash_rate draws a crash for that fraction of SayHello calls (off by default). Everything about crash mode,
// and what it does to a pod: docs/resilience.md.
// and, for the streaming methods (greeter-stream.ts), when a planned failure comes:
//   x-helloworld-fail-after: 3          after 3 replies: the failure takes the place of reply 4 (default 0:
//                                       in place of the first reply)
import { parseStatusCode } from '../status.ts';

export const DELAY_HEADER = 'x-helloworld-delay-ms';
export const FAIL_CODE_HEADER = 'x-helloworld-fail-code';
export const FAIL_AFTER_HEADER = 'x-helloworld-fail-after';
export const FAULT_HEADER = 'x-helloworld-fault';
/** Envoy's count of the attempt a request is (1 the first, 2 its first retry), on every request it retries. */
export const ATTEMPT_HEADER = 'x-envoy-attempt-count';
export const MAX_DELAY_MS = 5 * 60 * 1000;

export interface FaultOptions {
  sleepMs: number;
  failRate: number;
  failCode: number;
  /** -crash_rate: fraction of SayHello calls that end the serving process instead of being answered (default 0) */
  crashRate?: number;
  /** what a planned crash does: end the serving process (main.ts), or in-process every connection (server.ts) */
  crash?: (why: string) => void;
}

/** The access log's details for a call that crashed the server: it is logged so, and never answered. */
export const crashDetails = (why: string) => `crash (${why}): the server ends without answering`;

/** What a SayHello does instead of answering, after its delay: end the serving process, or never answer. */
export type Ending = 'crash' | 'hang';
const ENDINGS = ['crash', 'hang', 'none'] as const;

export interface Plan {
  delayMs: number;
  /** undefined: answer OK */
  fail?: { code: number; details: string };
  /** SayHello only: no answer at all (planStream refuses these) */
  end?: Ending;
  /** why it ends so: the header or the flag (the crash's log line says it) */
  endWhy?: string;
}

export interface StreamPlan {
  /** before every reply */
  delayMs: number;
  /** undefined: the stream ends OK */
  fail?: { code: number; details: string; afterReplies: number };
}

/** A bad override header: the call is answered INVALID_ARGUMENT with this message. */
export class BadOverride extends Error {}

/** `header(name)`: the request's value for that name (the first one, as grpc-js' metadata gives it), if any. */
export function planRequest(options: FaultOptions, header: (name: string) => string | undefined, random: () => number = Math.random): Plan {
  const delayHeader = header(DELAY_HEADER);
  let delayMs = options.sleepMs;
  if (delayHeader !== undefined) {
    const requested = delayFromHeader(delayHeader);
    if (requested === undefined) throw new BadOverride(`${DELAY_HEADER}: want milliseconds, got ${JSON.stringify(delayHeader)}`);
    delayMs = requested;
  }
  delayMs = Math.min(delayMs, MAX_DELAY_MS);

  const fault = header(FAULT_HEADER)?.trim().toLowerCase();
  if (fault !== undefined && !(ENDINGS as readonly string[]).includes(fault)) {
    throw new BadOverride(`${FAULT_HEADER}: want ${ENDINGS.join(', ')}, got ${JSON.stringify(header(FAULT_HEADER))}`);
  }
  if (fault === 'crash' || fault === 'hang') return { delayMs, end: fault, endWhy: `${FAULT_HEADER}: ${fault}` };
  const crashRate = options.crashRate ?? 0;
  if (fault === undefined && crashRate > 0 && random() < crashRate) return { delayMs, end: 'crash', endWhy: `-crash_rate ${crashRate}` };

  const codeHeader = header(FAIL_CODE_HEADER);
  if (codeHeader !== undefined) {
    const code = parseStatusCode(codeHeader);
    if (code === undefined) {
      throw new BadOverride(`${FAIL_CODE_HEADER}: want a gRPC status code name or number, got ${JSON.stringify(codeHeader)}`);
    }
    return code === 0 ? { delayMs } : { delayMs, fail: { code, details: `failure requested by ${FAIL_CODE_HEADER}` } };
  }
  if (options.failRate > 0 && random() < options.failRate) {
    return { delayMs, fail: { code: options.failCode, details: `injected failure (-fail_rate ${options.failRate})` } };
  }
  return { delayMs };
}

/** A stream's plan: SayHello's, and after how many replies a planned failure comes (checked even when none is planned). */
export function planStream(options: FaultOptions, header: (name: string) => string | undefined, random: () => number = Math.random): StreamPlan {
  if (header(FAULT_HEADER) !== undefined) throw new BadOverride(`${FAULT_HEADER}: for SayHello only, not for streams`);
  const plan = planRequest({ ...options, crashRate: 0 }, header, random);
  const after = header(FAIL_AFTER_HEADER);
  if (after !== undefined && !/^\s*\d{1,9}\s*$/.test(after)) {
    throw new BadOverride(`${FAIL_AFTER_HEADER}: want a number of replies, got ${JSON.stringify(after)}`);
  }
  return plan.fail ? { delayMs: plan.delayMs, fail: { ...plan.fail, afterReplies: Number(after ?? 0) } } : { delayMs: plan.delayMs };
}

/** The x-envoy-attempt-count a request carries, when it is a positive number (Envoy's own; anything else is ignored). */
export function attemptFromHeader(value: string | undefined): number | undefined {
  return value !== undefined && /^\s*[1-9]\d{0,8}\s*$/.test(value) ? Number(value) : undefined;
}

/** The milliseconds of an x-helloworld-delay-ms value, capped at MAX_DELAY_MS; undefined when it is not a number. */
export function delayFromHeader(value: string): number | undefined {
  return /^\s*\d+(\.\d+)?\s*$/.test(value) ? Math.min(Number(value), MAX_DELAY_MS) : undefined;
}
