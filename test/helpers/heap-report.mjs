// Preloaded into a test server (node --expose-gc --import this): on SIGUSR2, a full GC, then one stderr line
// with what the heap and the buffers outside it still hold. RSS cannot say whether anything stays allocated
// after an attack: V8 and malloc keep freed pages; this can. Tests only: the image never loads it.
process.on('SIGUSR2', () => {
  globalThis.gc();
  const { heapUsed, external } = process.memoryUsage();
  process.stderr.write(`heap-after-gc ${((heapUsed + external) / 1048576).toFixed(1)}\n`);
});
