// An injected delay that ends on time. setTimeout counts whole milliseconds from the event loop's cached
// clock and fires up to a millisecond late, which the access log's duration shows and a delay test would read
// as the mesh's. So the timer wakes up to 2 ms early and the rest is waited
// out on setImmediate, which lets I/O run between checks.
const EARLY_MS = 2;

/** Calls `fn` once `ms` milliseconds have passed; returns a function that cancels it. */
export function afterDelay(ms: number, fn: () => void): () => void {
  const due = performance.now() + ms;
  let immediate: NodeJS.Immediate | undefined;
  const check = () => {
    if (performance.now() >= due) fn();
    else immediate = setImmediate(check);
  };
  const timer = setTimeout(check, Math.max(0, ms - EARLY_MS));
  return () => {
    clearTimeout(timer);
    if (immediate) clearImmediate(immediate);
  };
}
