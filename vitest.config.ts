import { defineConfig } from 'vitest/config';

/**
 * Files that measure the server under load or race its timers: attacks and bench (CPU, RSS, probes with
 * deadlines during an attack), the soak (RSS), -workers under rapid signals, the e2e's latency gaps through
 * HAProxy. They run after the others, one at a time, with the machine to themselves.
 */
const ALONE = ['test/attacks.test.ts', 'test/bench.test.ts', 'test/reliability-soak.test.ts', 'test/server-workers.test.ts', 'test/e2e.test.ts'];

export default defineConfig({
  test: {
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    projects: [
      {
        extends: true,
        // Much of a file's time is spent waiting (on spawned servers and clients, deadlines, grace periods), so
        // two files share the two cores; vitest's default on two cores is one at a time.
        test: { name: 'shared', include: ['test/**/*.test.ts'], exclude: ALONE, maxWorkers: 2, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: { name: 'alone', include: ALONE, maxWorkers: 1, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
