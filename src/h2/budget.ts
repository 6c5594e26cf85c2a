// A token bucket: a burst, refilled at a rate. What a connection spends on frames that cost it work and carry
// nothing a well-behaved peer needs many of (limits.ts, FLOOD_BUDGETS).

export class TokenBucket {
  #tokens: number;
  #at = performance.now();

  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
  ) {
    this.#tokens = burst;
  }

  /** Spends one token; false when none is left. */
  take(): boolean {
    const now = performance.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) * this.perSecond) / 1000);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
