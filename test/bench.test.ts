// The bench scripts (bench/, npm run bench) run with tiny N and one server each, so they cannot rot unnoticed,
// in a few seconds. Nothing here looks at a speed: only that each part runs, checks what it must (every h2load
// answer a real gRPC OK, every probe run exit 0) and prints its table. The peer kit is kept out (PEERS_DIR
// points nowhere): the project's tests never depend on it, and the bench must say it is missing.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { beforeAll, describe, expect, it } from 'vitest';
import { which } from '../bench/lib.ts';
import { root } from './helpers/spawn.ts';

const hasH2load = which('h2load') !== undefined;
const canTimeProbes = which('hyperfine') !== undefined || which('python3') !== undefined;

let smoke: { code: number | null; stdout: string; stderr: string };

beforeAll(async () => {
  // (not streams: its first run builds a grpc-go program, ~20 s)
  const child = spawn(process.execPath, ['bench/run.ts', '--smoke', '--only', 'probe,server,health,timing'], {
    cwd: root,
    env: { ...process.env, PEERS_DIR: '/nonexistent-peer-kit' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const [code] = (await once(child, 'close')) as [number | null];
  smoke = { code, stdout, stderr };
}, 120_000);

describe('npm run bench -- --smoke', () => {
  it('runs every part cleanly and says the peer kit is missing', () => {
    expect(smoke.code, smoke.stderr).toBe(0);
    expect(smoke.stdout).toMatch(/^Peer kit: MISSING/);
  });

  for (const [part, call] of [
    ['server', 'unary SayHello'],
    ['health', 'grpc\\.health\\.v1\\.Health/Check'],
  ] as const) {
    it.runIf(hasH2load)(`${part}: real gRPC OKs under h2load (and nghttp before and after), one access-log line per call`, () => {
      const table = smoke.stdout.slice(smoke.stdout.search(new RegExp(`Server throughput: .*${call}`)));
      expect(table).toMatch(/\| server \| req\/s \|/);
      expect(table).toMatch(/\| ts \| \d+ \| .* \| 1\/1 \+ nghttp \|/);
      expect(table).toMatch(/Access log lines per RPC: ts 1\.000/);
      expect(table).toMatch(/No grpc-go row: .* MISSING/);
    });
    it.runIf(!hasH2load)(`${part}: SKIPPED here: h2load is not installed (apt-get install nghttp2-client; .ci/run does)`, () => {
      expect(smoke.stdout).toMatch(new RegExp(`Server throughput \\(${call}.*\\): SKIPPED: h2load not found`));
    });
  }

  it.runIf(canTimeProbes)('probe: the client, its floors and node -e 0, timed, every run exit 0', () => {
    for (const label of ['node -e 0', 'floor \\(hand-framed\\)', 'ts', 'ts -tls', 'floor -tls \\(hand-framed\\)', 'ts \\(V8 code cache\\)']) {
      expect(smoke.stdout).toMatch(new RegExp(`\\| ${label} \\| [\\d.]+ \\| [\\d.]+ \\|`));
    }
  });
  it.runIf(!canTimeProbes)('probe: SKIPPED here: neither hyperfine nor python3 is installed (apt-get install hyperfine; .ci/run does)', () => {
    expect(smoke.stdout).toMatch(/Probe cold start: SKIPPED/);
  });

  it('timing: the delay and deadline checks run and print their figures', () => {
    expect(smoke.stdout).toMatch(/\| delay 100 ms, 3 sequential calls \(OK\) \|/);
    expect(smoke.stdout).toMatch(/\| -timeout 0\.1 s, server answers 2 s late, 1 calls \(DEADLINE_EXCEEDED\) \|/);
  });
});

describe('bench/allocations.ts', () => {
  it.runIf(hasH2load)('samples what the server allocates under h2load: bytes per call for SayHello and health, every load OK', async () => {
    const child = spawn(process.execPath, ['bench/allocations.ts', '--calls', '300', '--only', 'sayhello,health', '--top', '2'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const [code] = (await once(child, 'close')) as [number | null];
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/^\| unary SayHello \(h2load -c 4 -m 32\) \| \d+ \| .+ \| 0 \|$/m);
    expect(stdout).toMatch(/^\| health Check \(h2load -c 4 -m 32\) \| \d+ \| .+ \| 0 \|$/m);
    expect(stdout).toMatch(/^- sayhello: [\d.]+ % /m);
  }, 60_000);
});
