// The server's injected delay (src/server/delay.ts): never ends early, and cancelling stops it. How close to
// the delay it ends is measured by bench/timing.ts, not asserted here.
import { describe, test, vi } from 'vitest';
import { afterDelay } from '../src/server/delay.ts';

describe('afterDelay', () => {
  test.for([0, 1, 2, 5, 25])('%i ms: called once, never before the delay', async (ms, { expect }) => {
    const start = performance.now();
    const calls: number[] = [];
    await new Promise<void>((resolve) => afterDelay(ms, () => (calls.push(performance.now() - start), resolve())));
    await new Promise((r) => setTimeout(r, 10));
    expect(calls).toHaveLength(1);
    expect(calls[0]).toBeGreaterThanOrEqual(ms);
  });

  test('cancelled before the timer, or while waiting out the last milliseconds: never called', ({ expect }) => {
    // fake clocks: the second case must cancel inside the last 2 ms, which real timers cannot promise
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'performance'] });
    try {
      let called = 0;
      afterDelay(20, () => called++)();
      const cancel = afterDelay(20, () => called++);
      vi.advanceTimersByTime(19); // the timer (at 18 ms) has fired; the rest is waited on setImmediate
      cancel();
      vi.advanceTimersByTime(50);
      expect(called).toBe(0);
      const again = afterDelay(20, () => called++);
      vi.advanceTimersByTime(25);
      again();
      expect(called).toBe(1); // the same steps without the cancel do call it
    } finally {
      vi.useRealTimers();
    }
  });
});
