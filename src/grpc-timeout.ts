// grpc-timeout (gRPC over HTTP/2: 1 to 8 digits and a unit), both ways, and timers for deadlines of any length:
// one setTimeout waits at most 2^31-1 ms (24.8 days) and fires at once when asked for more, so a deadline
// such as grpc-go's 720 h (`2592000S`) is waited for in steps.

/** The longest wait one setTimeout takes (a signed 32-bit count of ms). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/** grpc-timeout in ms; NaN when it is not the strict `1-8 digits + unit` form. */
export function parseGrpcTimeout(value: string): number {
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  return m ? Number(m[1]) * UNIT_MS[m[2]!]! : Number.NaN;
}

/** grpc-timeout for `ms`: at most 8 digits, rounded up so the server never ends the call before the client does. */
export function grpcTimeout(ms: number): string {
  const m = Math.max(1, Math.ceil(ms));
  if (m <= 99_999_999) return `${m}m`;
  return `${Math.min(99_999_999, Math.ceil(m / 1000))}S`;
}

/** Calls `fn` once `ms` have passed, however long that is; returns a function that cancels it. */
export function afterLongDelay(ms: number, fn: () => void): () => void {
  const due = performance.now() + ms;
  let timer: NodeJS.Timeout;
  const arm = () => {
    const left = due - performance.now();
    if (left > 0) timer = setTimeout(arm, Math.min(Math.ceil(left), MAX_TIMER_MS));
    else fn();
  };
  arm();
  return () => clearTimeout(timer);
}
