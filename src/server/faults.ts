// What a SayHello does besides answering: how long to wait and whether to fail. From the -sleep,
// -fail_rate and -fail_code flags, overridden per request by metadata that a client sends, so retries and
// outlier detection can be exercised without a mesh:
//   x-helloworld-delay-ms: 250          wait 250 ms instead of -sleep (capped at 5 minutes; the call's
//                                       deadline ends the wait anyway)
//   x-helloworld-fail-code: UNAVAILABLE answer with this status (name or number; OK forces success)
// and, for the streaming methods (greeter-stream.ts), when a planned failure comes:
//   x-helloworld-fail-after: 3          after 3 replies: the failure takes the place of reply 4 (default 0:
//                                       in place of the first reply)
import { parseStatusCode } from '../status.ts';

export const DELAY_HEADER = 'x-helloworld-delay-ms';
export const FAIL_CODE_HEADER = 'x-helloworld-fail-code';
export const FAIL_AFTER_HEADER = 'x-helloworld-fail-after';
export const MAX_DELAY_MS = 5 * 60 * 1000;

export interface FaultOptions {
  sleepMs: number;
  failRate: number;
  failCode: number;
}

export interface Plan {
  delayMs: number;
  /** undefined: answer OK */
  fail?: { code: number; details: string };
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
  const plan = planRequest(options, header, random);
  const after = header(FAIL_AFTER_HEADER);
  if (after !== undefined && !/^\s*\d{1,9}\s*$/.test(after)) {
    throw new BadOverride(`${FAIL_AFTER_HEADER}: want a number of replies, got ${JSON.stringify(after)}`);
  }
  return plan.fail ? { delayMs: plan.delayMs, fail: { ...plan.fail, afterReplies: Number(after ?? 0) } } : { delayMs: plan.delayMs };
}

/** The milliseconds of an x-helloworld-delay-ms value, capped at MAX_DELAY_MS; undefined when it is not a number. */
export function delayFromHeader(value: string): number | undefined {
  return /^\s*\d+(\.\d+)?\s*$/.test(value) ? Math.min(Number(value), MAX_DELAY_MS) : undefined;
}
