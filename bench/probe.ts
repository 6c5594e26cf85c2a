// Probe cold start: what an exec probe pays per run. The client (one SayHello against a ready local server,
// plaintext and -tls) against `node -e 0` on the same Node, the floor for any Node program, and against a
// SayHello hand-framed over node:net or node:tls (bench/floor-client.cjs), the floor for any Node gRPC probe; and the
// peers' clients when the peer kit is here.
//
//   node bench/probe.ts [--runs 40] [--warmup 3] [--rss-runs 10] [--only 'node -e 0,ts'] [--client 'label=command']
//                       [--json out.json]
//
// Wall (spawn to exit) and CPU (user + system, wait4(2)): bench/rusage.py (python3), round-robin runs, medians;
// without python3, hyperfine -N (wall median, CPU mean). Peak RSS: /usr/bin/time -v's "Maximum resident set
// size" (median). Commands are split on whitespace; {addr} is the plaintext server as localhost:PORT (what the manifests'
// probes call: `/client` is localhost:10000), {ip_addr} the same as 127.0.0.1:PORT, {tls_addr} the -tls one (localhost),
// {tls_ip_addr} the -tls one as 127.0.0.1:PORT,
// {image_client} a copy of dist/client.cjs laid out as the image has it (/client: no .js, no package.json),
// {compile_cache} a directory for Node's compile cache (NODE_COMPILE_CACHE; written by the check run before
// timing, so the timed runs read it, as every run after the first would), {code_cache} a file for a V8 code cache
// taken after a whole run (bench/code-cache-client.cjs; written by the check run too).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cleanEnv, dist, fmt, freePort, machine, median, node, peersDir, ratio, root, startServerProcess, which, type Running } from './lib.ts';

export interface ClientSpec {
  label: string;
  command: string;
  env?: Record<string, string>;
}

export interface ClientResult {
  label: string;
  command: string;
  wallMs: number;
  cpuMs: number;
  rssMb: number;
  runs: number;
  failures: number;
}

export function defaultClients(): ClientSpec[] {
  const client = `${node} ${dist('client')}`;
  const specs: ClientSpec[] = [
    { label: 'node -e 0', command: `${node} -e 0` },
    // what any Node probe must pay: connect, one hand-framed SayHello, exit (bench/floor-client.cjs)
    { label: 'floor (hand-framed)', command: `${node} ${join(root, 'bench', 'floor-client.cjs')} {ip_addr}` },
    // the manifests' probes run a bare `/client` (localhost:10000): no flags to parse; the address from the environment
    { label: 'ts', command: client, env: { HELLO_CLIENT_SERVER_ADDR: '{addr}' } },
    { label: 'ts -server_addr', command: `${client} -server_addr {addr}` },
    { label: 'ts -tls', command: `${client} -tls -server_addr {tls_addr}` },
    // what any Node -tls probe must pay: node:tls, a verified handshake, one hand-framed SayHello
    { label: 'floor -tls (hand-framed)', command: `${node} ${join(root, 'bench', 'floor-client.cjs')} -tls {tls_ip_addr}` },
    // the image runs the bundle as /client: no .js, no package.json, so Node detects the module syntax itself
    { label: 'ts as /client', command: `${node} {image_client} -server_addr {addr}` },
    // Node's compile cache (NODE_COMPILE_CACHE; measured, not used by the image: README, Performance)
    { label: 'ts (compile cache)', command: client, env: { HELLO_CLIENT_SERVER_ADDR: '{addr}', NODE_COMPILE_CACHE: '{compile_cache}' } },
    { label: 'ts -tls (compile cache)', command: `${client} -tls -server_addr {tls_addr}`, env: { NODE_COMPILE_CACHE: '{compile_cache}' } },
    // a V8 code cache of every function a run compiled: what compiling costs the probe (not shippable: Performance)
    {
      label: 'ts (V8 code cache)',
      command: `${node} ${join(root, 'bench', 'code-cache-client.cjs')} ${dist('client')}`,
      env: { HELLO_CLIENT_SERVER_ADDR: '{addr}', CODE_CACHE: '{code_cache}' },
    },
  ];
  const peers = peersDir();
  if (peers) {
    specs.push({ label: 'go', command: `${peers}/bin/go-client -server_addr {addr} -quiet` });
    specs.push({ label: 'node-ref', command: `${node} ${peers}/node-ref/client.js -server_addr {addr} -quiet` });
  }
  return specs;
}

interface Placeholders {
  addr: string;
  ip_addr: string;
  tls_addr: string;
  tls_ip_addr: string;
  image_client: string;
  compile_cache: string;
  code_cache: string;
}

function argvOf(spec: ClientSpec, values: Placeholders): string[] {
  const fill = (w: string) => w.replace(/\{(\w+)\}/g, (all, name: string) => (Object.hasOwn(values, name) ? values[name as keyof Placeholders] : all));
  const words = spec.command.trim().split(/\s+/).map(fill);
  return spec.env ? ['env', ...Object.entries(spec.env).map(([k, v]) => `${k}=${fill(v)}`), ...words] : words;
}

async function run(argv: readonly string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env: cleanEnv() });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

const shellQuote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`);

export interface ProbeOptions {
  runs: number;
  warmup: number;
  rssRuns: number;
  clients?: ClientSpec[];
  log?: (line: string) => void;
}

export async function benchProbe(o: ProbeOptions): Promise<{ results: ClientResult[]; method: string[] }> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const dir = mkdtempSync(join(tmpdir(), 'bench-probe-'));
  const imageClient = join(dir, 'client');
  copyFileSync(dist('client'), imageClient);
  const specs = o.clients ?? defaultClients();
  const method: string[] = ['environment: without NODE_OPTIONS and NODE_EXTRA_CA_CERTS, as in the image (bench/lib.ts cleanEnv)'];
  const servers: Running[] = [];
  try {
    // the servers the probes call: -workers 1 (the probe's cost is what is measured), access log on
    for (const tls of [false, true]) {
      const port = await freePort();
      const argv = [node, dist('server'), '-host', '127.0.0.1', '-port', String(port), '-workers', '1', ...(tls ? ['-tls'] : [])];
      servers.push(await startServerProcess(argv, port, { ready: /Listening/ }));
    }
    const values: Placeholders = {
      addr: `localhost:${servers[0]!.port}`,
      ip_addr: `127.0.0.1:${servers[0]!.port}`,
      tls_addr: `localhost:${servers[1]!.port}`,
      tls_ip_addr: `127.0.0.1:${servers[1]!.port}`,
      image_client: imageClient,
      compile_cache: join(dir, 'compile-cache'),
      code_cache: join(dir, 'client.v8-code-cache'),
    };
    const commands = specs.map((s) => ({ spec: s, argv: argvOf(s, values) }));
    for (const c of commands) {
      const r = await run(c.argv);
      if (r.code !== 0) throw new Error(`${c.spec.label}: exit ${r.code}, want 0: ${r.stderr || r.stdout}`);
    }

    const wall = new Map<string, number>();
    const cpu = new Map<string, number>();
    const rss = new Map<string, number>();
    const failures = new Map<string, number>();
    // Round-robin (every command once per round) so that a burst of load elsewhere on the machine hits every
    // row alike: bench/rusage.py when python3 is here; hyperfine, which runs each command's runs in a block,
    // only without it.
    const python = which('python3');
    const hyperfine = which('hyperfine');
    if (python) {
      const spec = JSON.stringify(commands.map((c) => [c.spec.label, c.argv]));
      const r = await run([python, join(root, 'bench', 'rusage.py'), String(o.runs), String(o.warmup), spec]);
      if (r.code !== 0) throw new Error(`bench/rusage.py failed: ${r.stderr}`);
      const byLabel = JSON.parse(r.stdout) as Record<string, { wall_ms: number; cpu_ms: number; code: number }[]>;
      for (const [label, runs] of Object.entries(byLabel)) {
        wall.set(label, median(runs.map((x) => x.wall_ms)));
        cpu.set(label, median(runs.map((x) => x.cpu_ms)));
        failures.set(label, runs.filter((x) => x.code !== 0).length);
      }
      method.push(`wall (spawn to exit) and CPU (user+system, wait4(2)): bench/rusage.py, ${o.runs} round-robin runs after ${o.warmup} warm-up, medians`);
    } else if (hyperfine) {
      const out = join(dir, 'hyperfine.json');
      const args = ['-N', '--warmup', String(o.warmup), '--runs', String(o.runs), '--export-json', out, '--style', 'none'];
      for (const c of commands) args.push('-n', c.spec.label, c.argv.map(shellQuote).join(' '));
      const r = await run([hyperfine, ...args]);
      if (r.code !== 0) throw new Error(`hyperfine failed: ${r.stderr}`);
      const json = JSON.parse(readFileSync(out, 'utf8')) as { results: { command: string; median: number; user: number; system: number; exit_codes: number[] }[] };
      for (const [i, res] of json.results.entries()) {
        const label = commands[i]!.spec.label;
        wall.set(label, res.median * 1000);
        cpu.set(label, (res.user + res.system) * 1000);
        failures.set(label, res.exit_codes.filter((x) => x !== 0).length);
      }
      method.push(`wall: hyperfine -N --warmup ${o.warmup} --runs ${o.runs}, median; CPU: its mean user+system (python3 not found for round-robin wait4 medians)`);
    } else {
      throw new Error('neither python3 nor hyperfine found: nothing to time the runs with');
    }
    const time = '/usr/bin/time'; // GNU time (Debian: time); the shell's builtin has no -v
    if (existsSync(time) && o.rssRuns > 0) {
      const samples = new Map<string, number[]>(commands.map((c) => [c.spec.label, []]));
      for (let i = 0; i < o.rssRuns; i++) {
        for (const c of commands) {
          const r = await run([time, '-v', ...c.argv]);
          const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
          if (m) samples.get(c.spec.label)!.push(Number(m[1]) / 1024);
        }
      }
      for (const [label, xs] of samples) rss.set(label, median(xs));
      method.push(`peak RSS: /usr/bin/time -v, ${o.rssRuns} round-robin runs, median`);
    }
    const results = commands.map(
      (c): ClientResult => ({
        label: c.spec.label,
        command: c.argv.join(' '),
        wallMs: wall.get(c.spec.label) ?? Number.NaN,
        cpuMs: cpu.get(c.spec.label) ?? Number.NaN,
        rssMb: rss.get(c.spec.label) ?? Number.NaN,
        runs: o.runs,
        failures: failures.get(c.spec.label) ?? 0,
      }),
    );
    for (const r of results) if (r.failures) log(`${r.label}: ${r.failures} run(s) did not exit 0`);
    return { results, method };
  } finally {
    for (const s of servers) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function probeTable(results: ClientResult[], method: string[]): string {
  const floor = results.find((r) => r.label === 'node -e 0');
  const go = results.find((r) => r.label === 'go');
  // the hand-framed SayHello of the same transport: what any Node probe must pay (bench/floor-client.cjs)
  const handFramed = (r: ClientResult) => results.find((f) => f.label === (r.label.includes('-tls') ? 'floor -tls (hand-framed)' : 'floor (hand-framed)'));
  const lines = [
    `Probe cold start: one SayHello against a ready local server (dist/server.js -workers 1); ${machine()}`,
    ...method.map((m) => `- ${m}`),
    '',
    '| client | wall ms | CPU ms | peak RSS MB | wall / node -e 0 | CPU / node -e 0 | RSS / node -e 0 | wall / floor | CPU / floor | RSS / floor | wall / go |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of results) {
    const f = handFramed(r);
    lines.push(
      `| ${r.label} | ${fmt(r.wallMs)} | ${fmt(r.cpuMs)} | ${fmt(r.rssMb)} | ${ratio(r.wallMs, floor?.wallMs)} | ${ratio(r.cpuMs, floor?.cpuMs)} | ` +
        `${ratio(r.rssMb, floor?.rssMb)} | ${ratio(r.wallMs, f?.wallMs)} | ${ratio(r.cpuMs, f?.cpuMs)} | ${ratio(r.rssMb, f?.rssMb)} | ${ratio(r.wallMs, go?.wallMs)} |`,
    );
  }
  lines.push('', 'floor: the hand-framed SayHello over the same transport (plaintext or -tls), bench/floor-client.cjs.');
  if (!go) lines.push('', 'No grpc-go row: the peer kit (../shared/peers, or $PEERS_DIR, with bin/go-client built by its setup.sh) is MISSING.');
  return lines.join('\n');
}

async function main() {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '40' },
      warmup: { type: 'string', default: '3' },
      'rss-runs': { type: 'string', default: '10' },
      only: { type: 'string' },
      client: { type: 'string', multiple: true, default: [] },
      json: { type: 'string' },
    },
  });
  if (!which('hyperfine') && !which('python3')) {
    process.stdout.write('bench/probe: skipped: neither hyperfine nor python3 found (apt-get install hyperfine)\n');
    return;
  }
  let clients = defaultClients();
  for (const c of values.client) {
    const eq = c.indexOf('=');
    if (eq < 1) throw new Error(`--client wants label=command, got ${c}`);
    const spec = { label: c.slice(0, eq), command: c.slice(eq + 1) };
    clients = [...clients.filter((x) => x.label !== spec.label), spec];
  }
  if (values.only) {
    const only = values.only.split(',');
    clients = only.map((l) => {
      const found = clients.find((s) => s.label === l);
      if (!found) throw new Error(`no client labelled ${l}`);
      return found;
    });
  }
  const o = { runs: Number(values.runs), warmup: Number(values.warmup), rssRuns: Number(values['rss-runs']) };
  const { results, method } = await benchProbe({ ...o, clients });
  process.stdout.write(`${probeTable(results, method)}\n`);
  if (values.json) writeFileSync(values.json, JSON.stringify({ options: o, method, results }, null, 2));
  if (results.some((r) => r.failures > 0)) process.exitCode = 1;
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
