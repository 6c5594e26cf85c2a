// How the client writes a duration, in its lines, its summary and its expectation misses.

/** 0.412, 1.23, 3004.1: enough digits for loopback and for seconds-long delays. */
export function formatMs(ms: number): string {
  return ms < 1 ? ms.toFixed(3) : ms < 100 ? ms.toFixed(2) : ms.toFixed(1);
}
