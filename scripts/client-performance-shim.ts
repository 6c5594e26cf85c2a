// The client bundle's `performance` (esbuild `inject`, scripts/build.mjs): every `performance.now()` in it, ours
// and p-retry's, reads process.hrtime instead. Node's `performance` global loads perf_hooks and eight internal
// modules on first use, at every probe's start; the client only ever takes differences of now(), so the
// origin does not matter. Any other member throws, rather than reading as undefined in the bundle alone;
// test/client-startup.test.ts checks that a run loads no perf_hooks.
const now = (): number => Number(process.hrtime.bigint()) / 1e6;

export const performance: Pick<Performance, 'now'> = new Proxy(
  { now },
  {
    get(target, key) {
      if (key === 'now') return target.now;
      if (typeof key === 'symbol') return undefined; // util.inspect and the like
      throw new Error(`performance.${key} is not in the client bundle (scripts/client-performance-shim.ts has only now())`);
    },
  },
);
