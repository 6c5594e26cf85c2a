// What is retried, and when. A request is retried (p-retry) while its deadline allows when it failed for a
// transport reason (no connection, TLS handshake failed, connection lost before an answer, stream refused
// by a server going away) or, opted in with -retry_on, when it was answered with one of the listed
// statuses. Anything else is the request's outcome. Waits follow gRPC's connection-backoff spec (and
// grpc-go): the first retry comes `initial` after the first attempt started, each later wait is the
// previous base × `multiplier` (at most `max`) spread by ±`jitter`, measured from the start of the attempt
// that failed. The deadline ends a wait as it ends a call: nothing runs past it.
import pRetry from 'p-retry';

export interface Backoff {
  initialMs: number;
  maxMs: number;
  multiplier: number;
  /** 0.2: each wait is its base ±20 % */
  jitter: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 1000, maxMs: 120_000, multiplier: 1.6, jitter: 0.2 };

/** A failure that another attempt may cure. */
export class Retryable extends Error {
  override name = 'Retryable';
  /**
   * @param message what went wrong, in words (ends up in the details of a request that runs out of time)
   * @param transparent the server certainly did not process the request (never written, REFUSED_STREAM,
   *   above a GOAWAY's last stream): retried at once, without waiting, as gRPC's transparent retries are;
   *   once in a row, so that a server that refuses everything is not asked in a tight loop
   */
  constructor(
    message: string,
    readonly transparent = false,
  ) {
    super(message);
  }
}

/** No connection, a failed TLS handshake, a connection lost before the answer: retried with backoff. */
export class TransportFailure extends Retryable {
  override name = 'TransportFailure';
}

/**
 * The server speaks something else than asked for (TLS to a plaintext client, plaintext to a TLS one, HTTP/1,
 * TLS without h2): not transient, so not retried; the request ends UNAVAILABLE with these words at once.
 */
export class ProtocolMismatch extends Error {
  override name = 'ProtocolMismatch';
}

/** A request answered with a status that -retry_on lists. */
export class RetryableStatus extends Retryable {
  override name = 'RetryableStatus';
}

/** The wait before retry number `retry` (1 for the first), before it is counted from the attempt's start. */
export function backoffDelayMs(retry: number, backoff: Backoff, random: () => number = Math.random): number {
  if (retry <= 1) return Math.min(backoff.initialMs, backoff.maxMs);
  const base = Math.min(backoff.initialMs * backoff.multiplier ** (retry - 1), backoff.maxMs);
  return base * (1 + backoff.jitter * (random() * 2 - 1));
}

export interface RetryEvent {
  /** the attempt that failed, from 1 */
  attempt: number;
  error: Retryable;
  /** how long until the next attempt starts */
  waitMs: number;
  /** the next attempt would start at or after the deadline: the wait ends the request */
  pastDeadline: boolean;
}

export interface RetryPolicy {
  backoff: Backoff;
  /** aborted at the deadline: ends an attempt in flight, a wait, and the retries */
  signal: AbortSignal;
  /** performance.now() time of the deadline, to tell whether another attempt fits */
  deadline: number;
  onRetry?: (event: RetryEvent) => void;
  random?: () => number;
}

/**
 * Runs `attempt` until it returns, throws something that is not Retryable, or the signal aborts (then
 * rejects with the signal's reason). `attempt` must end promptly when the signal aborts.
 */
export function withRetries<T>(attempt: (n: number) => Promise<T>, policy: RetryPolicy): Promise<T> {
  let started = 0;
  let retries = 0;
  let lastTransparent = false;
  return pRetry(
    (n) => {
      started = performance.now();
      return attempt(n);
    },
    {
      retries: Infinity,
      // p-retry waits nothing itself (its randomize is ×1..2, gRPC's jitter is ±): the wait is in onFailedAttempt
      minTimeout: 0,
      signal: policy.signal,
      shouldRetry: ({ error }) => error instanceof Retryable,
      onFailedAttempt: async ({ error, attemptNumber }) => {
        if (!(error instanceof Retryable)) return;
        const atOnce = error.transparent && !lastTransparent;
        lastTransparent = atOnce;
        const next = atOnce ? performance.now() : started + backoffDelayMs(++retries, policy.backoff, policy.random);
        const waitMs = Math.max(0, next - performance.now());
        policy.onRetry?.({ attempt: attemptNumber, error, waitMs, pastDeadline: next >= policy.deadline });
        // whole milliseconds, rounded up: a timer never fires before its attempt is due
        if (waitMs > 0) await sleep(Math.ceil(waitMs), policy.signal);
      },
    },
  );
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
