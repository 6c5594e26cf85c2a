// What a V8 code cache would save the probe (docs/performance.md, Probe): runs a CommonJS bundle as `node BUNDLE
// ARGS...` would, but compiled with the code cache in $CODE_CACHE when that file is there; when it is not, runs
// it and writes the cache at exit, after the run, so that the cache holds every function the run compiled (Node's
// own compile cache keeps only what is compiled up front). A measurement, not something the image ships: a cache
// is only taken by the very node binary that wrote it.
//
//   CODE_CACHE=/tmp/client.cache node bench/code-cache-client.cjs dist/client.cjs -server_addr localhost:10000
'use strict';
const { existsSync, readFileSync, writeFileSync } = require('node:fs');
const { dirname, resolve } = require('node:path');
const { Script } = require('node:vm');

const bundle = resolve(process.argv[2]);
const cacheFile = process.env.CODE_CACHE;
process.argv.splice(1, 1); // the bundle sees the argv it would see run by node itself
const cachedData = cacheFile && existsSync(cacheFile) ? readFileSync(cacheFile) : undefined;
const script = new Script(`(function (exports, require, module, __filename, __dirname) {${readFileSync(bundle, 'utf8')}\n})`, {
  filename: bundle,
  cachedData,
});
if (cacheFile && !cachedData) process.on('exit', () => writeFileSync(cacheFile, script.createCachedData()));
if (cachedData && script.cachedDataRejected) process.emitWarning(`${cacheFile}: rejected by this node`);
const module_ = { exports: {} };
script.runInThisContext()(module_.exports, require, module_, bundle, dirname(bundle));
