import { defineConfig } from 'vitest/config';

/**
 * Files that measure the server under load (CPU, RSS, probes with deadlines during an attack): they run
 * after the others, one at a time, with the machine to themselves.
 */
const ALONE = ['test/attacks.test.ts', 'test/bench.test.ts'];

export default defineConfig({
  test: {
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    projects: [
      {
        extends: true,
        // Most of a file's time is spent waiting (on spawned servers and clients, deadlines, grace periods), so
        // three files share the two cores; vitest's default on two cores is one at a time.
        test: { name: 'shared', include: ['test/**/*.test.ts'], exclude: ALONE, maxWorkers: 3, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: { name: 'alone', include: ALONE, maxWorkers: 1, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
