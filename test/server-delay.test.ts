// The server's injected delay (src/server/delay.ts): never ends early, and cancelling stops it. How close to
// the delay it ends is measured by bench/timing.ts, not asserted here.
import { describe, test } from 'vitest';
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

  test('cancelled before the timer, or while waiting out the last milliseconds: never called', async ({ expect }) => {
    let called = 0;
    afterDelay(20, () => called++)();
    const cancel = afterDelay(20, () => called++);
    await new Promise((r) => setTimeout(r, 19));
    cancel();
    await new Promise((r) => setTimeout(r, 30));
    expect(called).toBe(0);
  });
});
