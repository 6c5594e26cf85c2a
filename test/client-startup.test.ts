// What an exec probe's start loads: every built-in module a run pulls in is paid for at each probe (compiled, not
// in Node's startup snapshot). The bundle is run as users run it, with a preload that writes Node's own list of
// loaded modules (process.moduleLoadList) at exit; speed itself is the bench's business (bench/probe.ts).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { cleanEnv, runClient } from './helpers/spawn.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

let dir: string;
let plain: TestServer;
let tls: TestServer;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'client-startup-'));
  writeFileSync(
    join(dir, 'record.cjs'),
    "process.on('exit', () => require('node:fs').writeFileSync(process.env.MODULE_LIST, process.moduleLoadList.join('\\n')));\n",
  );
  [plain, tls] = await Promise.all([startTestServer(), startTestServer({ useTls: true })]);
});
afterAll(() => {
  plain?.forceShutdown();
  tls?.forceShutdown();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The built-in modules (`NativeModule x`) a client run loaded, after checking it succeeded. */
async function loadedBy(args: string[]): Promise<string[]> {
  const list = join(dir, `modules-${Math.random().toString(36).slice(2)}`);
  const r = await runClient(args, { env: cleanEnv({ NODE_OPTIONS: `--require ${join(dir, 'record.cjs')}`, MODULE_LIST: list }) });
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  return readFileSync(list, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('NativeModule '))
    .map((l) => l.slice('NativeModule '.length));
}

// perf_hooks: the `performance` global (the bundle's is process.hrtime, scripts/client-performance-shim.ts);
// module: yargs-parser's Node entry (createRequire for config files); http2: the client speaks HTTP/2 itself;
// dns: localhost is loopback, not looked up
const NEVER = ['perf_hooks', 'module', 'http2', 'dns', 'internal/source_map/source_map'];
const TLS_ONLY = ['tls', 'crypto'];

describe('a probe loads only what its flags need', () => {
  test.each([
    ['SayHello to localhost', () => ['-server_addr', `localhost:${plain.port}`]],
    ['-health', () => ['-health', '-server_addr', `localhost:${plain.port}`]],
    ['-count 3 -json', () => ['-count', '3', '-json', '-server_addr', `localhost:${plain.port}`]],
    ['-stream bidi -keepalive 1', () => ['-stream', 'bidi', '-messages', '3', '-keepalive', '1', '-server_addr', `localhost:${plain.port}`]],
  ])('%s: no TLS, no perf_hooks, no node:module, no http2, no DNS', async (_, args) => {
    const loaded = await loadedBy(args());
    expect(loaded).toContain('net'); // the list is real
    expect(loaded.filter((m) => NEVER.includes(m) || TLS_ONLY.includes(m))).toEqual([]);
  });

  test('-tls: node:tls and node:crypto, and still none of the others', async () => {
    const loaded = await loadedBy(['-tls', '-server_addr', `localhost:${tls.port}`]);
    expect(loaded).toEqual(expect.arrayContaining(TLS_ONLY));
    expect(loaded.filter((m) => NEVER.includes(m))).toEqual([]);
  });
});

describe("the client bundle's performance.now() (scripts/client-performance-shim.ts)", () => {
  test('milliseconds on a monotonic clock; any other member throws instead of reading undefined', async () => {
    const { performance: shim } = await import('../scripts/client-performance-shim.ts');
    const real = () => globalThis.performance.now();
    // an interval of Node's own clock inside one of the shim's, and one of the shim's inside one of Node's
    const outerS0 = shim.now();
    const innerR0 = real();
    while (real() - innerR0 < 2);
    const innerR1 = real();
    const outerS1 = shim.now();
    expect(outerS1 - outerS0 + 0.001).toBeGreaterThanOrEqual(innerR1 - innerR0); // the two clocks round differently
    const outerR0 = real();
    const innerS0 = shim.now();
    while (shim.now() - innerS0 < 2);
    const innerS1 = shim.now();
    const outerR1 = real();
    expect(innerS1 - innerS0).toBeGreaterThanOrEqual(2);
    expect(innerS1 - innerS0).toBeLessThanOrEqual(outerR1 - outerR0 + 0.001);
    expect(() => (shim as unknown as Performance).timeOrigin).toThrow(/performance\.timeOrigin is not in the client bundle/);
  });
});
