// What SayHello answers, decided in one place for both paths that serve it: grpc-js' handler (greeter.ts) and
// the front door's fast path (fast-path.ts). Each path only puts the answer on the wire its own way.
import { Code } from '../status.ts';
import { BadOverride, planRequest, type Ending, type FaultOptions } from './faults.ts';

/**
 * Wait `delayMs` first (-sleep, x-helloworld-delay-ms; the call's deadline or its client may end the wait), then
 * reply with `message`, end with the status `fail` (a planned fault, or INVALID_ARGUMENT for a bad override), or
 * `end` without answering (x-helloworld-fault, -crash_rate).
 */
export type Greeting =
  | { delayMs: number; message: string; fail?: undefined; end?: undefined }
  | { delayMs: number; message?: undefined; fail: { code: number; details: string }; end?: undefined }
  /** no answer at all: end the serving process (crash) or wait for the deadline (hang); `why` names the header or flag */
  | { delayMs: number; message?: undefined; fail?: undefined; end: Ending; why: string };

/** "Hello <name>", and "Hello <name> <i>" for the i-th reply of a stream. */
export function helloText(name: string, index?: number): string {
  return index === undefined ? `Hello ${name}` : `Hello ${name} ${index}`;
}

/** `header(name)`: the request's first value for that header, if any. */
export function sayHello(options: FaultOptions, name: string, header: (name: string) => string | undefined): Greeting {
  try {
    const { delayMs, fail, end, endWhy } = planRequest(options, header);
    if (end) return { delayMs, end, why: endWhy ?? end };
    return fail ? { delayMs, fail } : { delayMs, message: helloText(name) };
  } catch (err) {
    if (!(err instanceof BadOverride)) throw err;
    return { delayMs: 0, fail: { code: Code.INVALID_ARGUMENT, details: err.message } };
  }
}
