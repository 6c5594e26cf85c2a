// The bench scripts (bench/, npm run bench) run with tiny N, so they cannot rot unnoticed. Nothing here
// looks at a speed: only that each part runs, checks what it must (every h2load answer a real gRPC OK,
// every probe run exit 0) and prints its table. The peer kit is kept out (PEERS_DIR points nowhere): the
// project's tests never depend on it.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { which } from '../bench/lib.ts';
import { root } from './helpers/spawn.ts';

async function bench(only: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['bench/run.ts', '--smoke', '--only', only], {
    cwd: root,
    env: { ...process.env, PEERS_DIR: '/nonexistent-peer-kit' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

const hasH2load = which('h2load') !== undefined;
const canTimeProbes = which('hyperfine') !== undefined || which('python3') !== undefined;

describe('npm run bench -- --smoke', () => {
  it.skipIf(!hasH2load)('server: every server answers real gRPC OKs under h2load, one access-log line per call', { timeout: 120_000 }, async () => {
    const r = await bench('server');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Peer kit: not found/);
    expect(r.stdout).toMatch(/\| server \| req\/s \|/);
    for (const label of ['ts', 'ts -workers 1', 'ts -access_log=false']) {
      expect(r.stdout).toMatch(new RegExp(`\\| ${label} \\| \\d+ \\| .* \\| 1/1 \\+ nghttp \\|`));
    }
    expect(r.stdout).toMatch(/Access log lines per RPC: ts 1\.000, ts -workers 1 1\.000/);
  });
  it.runIf(!hasH2load)('server: SKIPPED here: h2load is not installed (apt-get install nghttp2-client; .ci/run does)', async () => {
    expect((await bench('server')).stdout).toMatch(/Server throughput: SKIPPED: h2load not found/);
  });

  it.skipIf(!canTimeProbes)('probe: the client and node -e 0, timed, every run exit 0', { timeout: 120_000 }, async () => {
    const r = await bench('probe');
    expect(r.code, r.stderr).toBe(0);
    for (const label of ['node -e 0', 'ts', 'ts -tls', 'ts as /client']) {
      expect(r.stdout).toMatch(new RegExp(`\\| ${label} \\| [\\d.]+ \\| [\\d.]+ \\|`));
    }
  });
  it.runIf(!canTimeProbes)('probe: SKIPPED here: neither hyperfine nor python3 is installed (apt-get install hyperfine; .ci/run does)', async () => {
    expect((await bench('probe')).stdout).toMatch(/Probe cold start: SKIPPED/);
  });

  it('timing: the delay and deadline checks run and print their figures', { timeout: 60_000 }, async () => {
    const r = await bench('timing');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\| delay 100 ms, 3 sequential calls \(OK\) \|/);
    expect(r.stdout).toMatch(/\| -timeout 0\.1 s, server answers 2 s late, 1 calls \(DEADLINE_EXCEEDED\) \|/);
  });
});
