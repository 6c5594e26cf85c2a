// The local e2e files run all their scenarios at once, before any test (each scenario has its own servers and
// proxy), then each test reads its scenario's report: a scenario that failed to run fails its own tests only.
import { afterAll, beforeAll } from 'vitest';

export type Settled<R> = Map<string, PromiseSettledResult<R>>;

/** Every plan run at once, settled by scenario name. */
export async function settleEach<P extends { scenario: { name: string } }, R>(plans: readonly P[], run: (plan: P) => Promise<R>): Promise<Settled<R>> {
  const results = await Promise.allSettled(plans.map(run));
  return new Map(plans.map((p, i) => [p.scenario.name, results[i]!]));
}

/**
 * Runs `runAll` before the file's tests, prints one line afterwards (`label`: the wall time and each scenario's
 * `summary`), and returns the report of a scenario by name, throwing its failure if it did not run.
 */
export function settledScenarios<R>(label: string, runAll: () => Promise<Settled<R>>, summary: (report: R) => string, timeoutMs: number): (name: string) => R {
  let settled: Settled<R> = new Map();
  let wallMs = 0;
  beforeAll(async () => {
    const started = performance.now();
    settled = await runAll();
    wallMs = performance.now() - started;
  }, timeoutMs);
  afterAll(() => {
    const each = [...settled].map(([name, r]) => `${name} ${r.status === 'fulfilled' ? summary(r.value) : 'failed'}`);
    console.info(`${label}: ${(wallMs / 1000).toFixed(1)}s for ${settled.size} scenarios (${each.join(', ')})`);
  });
  return (name) => {
    const r = settled.get(name);
    if (!r) throw new Error(`scenario ${name} did not run`);
    if (r.status === 'rejected') throw r.reason;
    return r.value;
  };
}

export const seconds = (r: { ms: number }) => `${(r.ms / 1000).toFixed(1)}s`;
