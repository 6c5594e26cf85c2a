// The client bundle's `performance` (esbuild `inject`, scripts/build.mjs): every `performance.now()` in it, ours
// and p-retry's, reads process.hrtime instead. Node's `performance` global loads perf_hooks and eight internal
// modules on first use (~1 ms of a probe's start, measured); the client only ever takes differences of now(), so the
// origin does not matter. Nothing in the bundle uses any other member; test/client-startup.test.ts checks that
// a run loads no perf_hooks.
export const performance = { now: (): number => Number(process.hrtime.bigint()) / 1e6 };
