// Server throughput: h2load sends gRPC-framed requests (content-type application/grpc, te trailers) over
// h2c, SayHello (HelloRequest "world") or, with --call health, grpc.health.v1.Health/Check (service "", the
// call of Kubernetes' grpc probes and grpc-health-probe), and every run is checked to be real gRPC successes,
// not just HTTP 200s: N x 2xx AND N x the reply's DATA bytes (a gRPC error is a trailers-only response without
// DATA), plus one `nghttp -v` request per server before the load and one after it whose trailers must say
// grpc-status: 0 and whose body must be the expected reply's bytes (for health: SERVING).
//
//   node bench/server.ts [--call sayhello|health] [--n 200000] [--c 4] [--m 32] [--t 1] [--warmup 20000]
//                        [--rounds 3] [--only ts,go] [--server 'label=command with {port}'] [--json out.json]
//
// Each round starts every server afresh (round-robin, so a burst of load elsewhere on the machine hits
// them all alike), warms it up, runs the load once, and reads the server's CPU time (its whole process
// tree: a cluster primary and its workers) and RSS after the load from /proc. The table shows medians over
// the rounds and ratios to grpc-go when the peer kit (../shared/peers) is present.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  commandLine,
  cpuSeconds,
  dist,
  fmt,
  freePort,
  helloRequestFrame,
  loadAverage,
  machine,
  median,
  node,
  peersDir,
  percentile,
  processTree,
  rssMb,
  startServerProcess,
  which,
} from './lib.ts';
import { SERVER_NODE_FLAGS } from '../src/server/v8-flags.ts';

/** The call h2load makes, and how each answer is known to be the right one. */
export interface BenchCall {
  name: string;
  path: string;
  request: Buffer;
  /** the whole gRPC-framed reply */
  reply: Buffer;
}

export const SAY_HELLO_CALL: BenchCall = {
  name: 'unary SayHello',
  path: '/helloworld.Greeter/SayHello',
  request: helloRequestFrame('world'),
  reply: Buffer.concat([Buffer.from([0, 0, 0, 0, 13, 0x0a, 11]), Buffer.from('Hello world')]),
};

export const HEALTH_CHECK_CALL: BenchCall = {
  name: 'grpc.health.v1.Health/Check (service "")',
  path: '/grpc.health.v1.Health/Check',
  request: Buffer.from([0, 0, 0, 0, 0]),
  // HealthCheckResponse{status: SERVING}: NOT_SERVING has the same length, so the nghttp checks read it
  reply: Buffer.from([0, 0, 0, 0, 2, 0x08, 0x01]),
};

export interface ServerSpec {
  label: string;
  command: string;
  /** a stderr line that says the server is ready */
  ready?: RegExp;
}

export interface ServerRun {
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  cpuUsPerReq: number;
  cores: number;
  rssMaxMb: number;
  rssSumMb: number;
  processes: number;
  verified: boolean;
  logLinesPerRpc?: number;
  load: number;
}

export interface ServerResult {
  label: string;
  command: string;
  nghttp?: boolean;
  runs: ServerRun[];
}

/**
 * Ours as the image runs it (default: 2 workers), with -workers 1 and without the access log unless `only`
 * names the labels wanted; BENCH_BASELINE's build; the peers' servers (grpc-go, and the naive grpc-js one but
 * for health, which it does not serve).
 */
export function defaultServers(call: BenchCall = SAY_HELLO_CALL, only?: readonly string[]): ServerSpec[] {
  // as the image runs it: its /server's shebang carries these
  const ours = `${node} ${SERVER_NODE_FLAGS.join(' ')} ${dist('server')} -host 127.0.0.1 -port {port}`;
  let specs: ServerSpec[] = [
    { label: 'ts', command: ours, ready: /Listening/ },
    { label: 'ts -workers 1', command: `${ours} -workers 1`, ready: /Listening/ },
    { label: 'ts -access_log=false', command: `${ours} -access_log=false`, ready: /Listening/ },
  ];
  // a build of another commit beside this one, in the same run: BENCH_BASELINE=/path/to/old/dist/server.js
  const baseline = process.env.BENCH_BASELINE;
  if (baseline) specs.push({ label: 'baseline -workers 1', command: `${node} ${SERVER_NODE_FLAGS.join(' ')} ${baseline} -host 127.0.0.1 -port {port} -workers 1`, ready: /Listening/ });
  const peers = peersDir();
  if (peers) {
    specs.push({ label: 'go', command: `${peers}/bin/go-server -port {port}` });
    if (call !== HEALTH_CHECK_CALL) specs.push({ label: 'node-ref', command: `${node} ${peers}/node-ref/server.js -port {port}` });
  }
  if (only) specs = specs.filter((s) => only.includes(s.label) || !s.label.startsWith('ts'));
  return specs;
}

interface H2loadResult {
  rps: number;
  ok2xx: number;
  dataBytes: number;
  latenciesUs: number[];
  text: string;
}

/** h2load's arguments for n gRPC calls of `path` on 127.0.0.1:port, each sending the file `body` (a framed request). */
export function h2loadArgs(port: number, path: string, body: string, n: number, c: number, m: number, t: number, logFile?: string): string[] {
  const args = ['-n', String(n), '-c', String(c), '-m', String(m), '-t', String(t)];
  args.push('-H', 'content-type: application/grpc', '-H', 'te: trailers', '-d', body);
  if (logFile) args.push('--log-file', logFile);
  args.push(`http://127.0.0.1:${port}${path}`);
  return args;
}

async function h2load(port: number, path: string, body: string, n: number, c: number, m: number, t: number, logFile?: string): Promise<H2loadResult> {
  const child = spawn('h2load', h2loadArgs(port, path, body, n, c, m, t, logFile), { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (text += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (text += d));
  await once(child, 'close');
  const rps = Number(/finished in [\d.]+\w*, ([\d.]+) req\/s/.exec(text)?.[1] ?? NaN);
  const ok2xx = Number(/status codes: (\d+) 2xx/.exec(text)?.[1] ?? 0);
  const dataBytes = Number(/traffic: .*\((\d+)\) data/.exec(text)?.[1] ?? 0);
  let latenciesUs: number[] = [];
  if (logFile) {
    // --log-file: start time (us), status, duration (us), one line per request
    latenciesUs = readFileSync(logFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => Number(l.split('\t')[2]))
      .sort((a, b) => a - b);
  }
  return { rps, ok2xx, dataBytes, latenciesUs, text };
}

/** One request with nghttp -v: HTTP 200 and grpc-status 0 in the trailers, and the expected reply's bytes in the body. */
async function nghttpCheck(port: number, call: BenchCall, body: string): Promise<{ ok: boolean; text: string }> {
  const child = spawn('nghttp', ['-v', '-H', 'content-type: application/grpc', '-H', 'te: trailers', '-d', body, `http://127.0.0.1:${port}${call.path}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout.setEncoding('latin1').on('data', (d: string) => (text += d));
  child.stderr.setEncoding('latin1').on('data', (d: string) => (text += d));
  await once(child, 'close');
  return { ok: /:status: 200/.test(text) && /grpc-status: 0/.test(text) && text.includes(call.reply.toString('latin1')), text };
}

export interface ServerBenchOptions {
  call: BenchCall;
  n: number;
  c: number;
  m: number;
  t: number;
  warmup: number;
  rounds: number;
  servers: ServerSpec[];
  log?: (line: string) => void;
}

export async function benchServers(o: ServerBenchOptions): Promise<ServerResult[]> {
  if (!which('h2load')) throw new Error('h2load not found: apt-get install nghttp2-client');
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const dir = mkdtempSync(join(tmpdir(), 'bench-server-'));
  const body = join(dir, 'body.bin');
  writeFileSync(body, o.call.request);
  const replyBytes = o.call.reply.length;
  const hasNghttp = which('nghttp') !== undefined;
  const results = o.servers.map((s): ServerResult => ({ label: s.label, command: s.command, runs: [] }));
  try {
    for (let round = 1; round <= o.rounds; round++) {
      for (const [i, spec] of o.servers.entries()) {
        const result = results[i]!;
        const port = await freePort();
        const server = await startServerProcess(commandLine(spec.command, port), port, { ready: spec.ready });
        try {
          let rpcs = 0;
          const nghttp = async (when: string) => {
            if (!hasNghttp) return;
            const check = await nghttpCheck(port, o.call, body);
            result.nghttp = (result.nghttp ?? true) && check.ok;
            rpcs++;
            if (!check.ok) log(`${spec.label}: nghttp -v ${when} did not show HTTP 200 + grpc-status 0 + the reply ${o.call.reply.toString('hex')}:\n${check.text}`);
          };
          await nghttp('before the load');
          if (o.warmup > 0) {
            await h2load(port, o.call.path, body, o.warmup, o.c, o.m, o.t);
            rpcs += o.warmup;
          }
          const pids = processTree(server.pid);
          const cpu0 = cpuSeconds(pids);
          const t0 = performance.now();
          const logFile = join(dir, `lat-${i}.log`);
          const r = await h2load(port, o.call.path, body, o.n, o.c, o.m, o.t, logFile);
          const seconds = (performance.now() - t0) / 1000;
          const cpu = cpuSeconds(pids) - cpu0;
          rmSync(logFile, { force: true });
          rpcs += o.n;
          const rss = rssMb(pids);
          const verified = r.ok2xx === o.n && r.dataBytes === o.n * replyBytes;
          if (!verified) log(`${spec.label}: NOT VERIFIED: ${r.ok2xx}/${o.n} 2xx, ${r.dataBytes} DATA bytes, want ${o.n * replyBytes}\n${r.text}`);
          await nghttp('after the load');
          // an access log is written as the calls end: give the last batch a moment to arrive
          for (let k = 0; k < 50 && server.stdoutLines() > 0 && server.stdoutLines() < rpcs; k++) await new Promise((res) => setTimeout(res, 20));
          const lines = server.stdoutLines();
          const run: ServerRun = {
            rps: r.rps,
            p50: percentile(r.latenciesUs, 50) / 1000,
            p90: percentile(r.latenciesUs, 90) / 1000,
            p99: percentile(r.latenciesUs, 99) / 1000,
            cpuUsPerReq: (cpu * 1e6) / o.n,
            cores: cpu / seconds,
            rssMaxMb: Math.max(...rss),
            rssSumMb: rss.reduce((a, b) => a + b, 0),
            processes: pids.length,
            verified,
            ...(lines > 0 ? { logLinesPerRpc: lines / rpcs } : {}),
            load: loadAverage(),
          };
          result.runs.push(run);
          log(
            `round ${round} ${spec.label}: ${fmt(run.rps, 0)} req/s, p99 ${fmt(run.p99, 2)} ms, ${fmt(run.cpuUsPerReq)} us CPU/req, ` +
              `RSS ${rss.map((x) => fmt(x, 0)).join('+')} MB, ${verified ? 'verified' : 'NOT VERIFIED'}, load ${run.load}`,
          );
        } finally {
          await server.stop();
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}

const med = (r: ServerResult, k: keyof ServerRun) => median(r.runs.map((x) => Number(x[k])));
const spread = (r: ServerResult, k: keyof ServerRun, d = 0) => {
  const xs = r.runs.map((x) => Number(x[k]));
  return xs.length > 1 ? ` [${fmt(Math.min(...xs), d)}..${fmt(Math.max(...xs), d)}]` : '';
};

/** Median over the rounds of x's value over the base's in the same round: both ran minutes apart at most. */
function pairedRatio(x: ServerResult, base: ServerResult, k: keyof ServerRun): string {
  const ratios = x.runs.map((run, i) => (base.runs[i] ? Number(run[k]) / Number(base.runs[i]![k]) : Number.NaN)).filter((r) => !Number.isNaN(r));
  return ratios.length ? `${median(ratios).toFixed(2)}x` : '-';
}

export function serverTable(results: ServerResult[], o: Pick<ServerBenchOptions, 'call' | 'n' | 'c' | 'm' | 't' | 'rounds'>): string {
  const go = results.find((r) => r.label === 'go');
  const lines = [
    `Server throughput: h2load -n ${o.n} -c ${o.c} -m ${o.m} -t ${o.t}, ${o.call.name}, median of ${o.rounds} round(s); ${machine()}`,
    '',
    '| server | req/s | p50 ms | p99 ms | CPU us/req | cores | RSS after load MB (max per process) | processes | verified | req/s vs go | p99 vs go |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |',
  ];
  for (const r of results) {
    const ok = r.runs.filter((x) => x.verified).length;
    lines.push(
      `| ${r.label} | ${fmt(med(r, 'rps'), 0)}${spread(r, 'rps')} | ${fmt(med(r, 'p50'), 2)} | ${fmt(med(r, 'p99'), 2)} | ` +
        `${fmt(med(r, 'cpuUsPerReq'))} | ${fmt(med(r, 'cores'), 2)} | ${fmt(med(r, 'rssMaxMb'), 0)} | ${fmt(med(r, 'processes'), 0)} | ` +
        `${ok}/${r.runs.length}${r.nghttp === false ? ', nghttp FAILED' : r.nghttp ? ' + nghttp' : ''} | ` +
        `${go ? pairedRatio(r, go, 'rps') : '-'} | ${go ? pairedRatio(r, go, 'p99') : '-'} |`,
    );
  }
  const logged = results.filter((r) => r.runs.some((x) => x.logLinesPerRpc !== undefined));
  if (logged.length) {
    lines.push('', `Access log lines per RPC: ${logged.map((r) => `${r.label} ${fmt(med(r, 'logLinesPerRpc'), 3)}`).join(', ')}`);
  }
  if (go) lines.push('', 'Ratios to go: the median over the rounds of each round\'s ratio (servers of one round run back to back).');
  else lines.push('', 'No grpc-go row: the peer kit (../shared/peers, or $PEERS_DIR, with bin/go-server built by its setup.sh) is MISSING.');
  return lines.join('\n');
}

export function allVerified(results: ServerResult[]): boolean {
  return results.every((r) => r.nghttp !== false && r.runs.every((x) => x.verified));
}

async function main() {
  const { values } = parseArgs({
    options: {
      call: { type: 'string', default: 'sayhello' },
      n: { type: 'string', default: '200000' },
      c: { type: 'string', default: '4' },
      m: { type: 'string', default: '32' },
      t: { type: 'string', default: '1' },
      warmup: { type: 'string', default: '20000' },
      rounds: { type: 'string', default: '3' },
      only: { type: 'string' },
      server: { type: 'string', multiple: true, default: [] },
      json: { type: 'string' },
    },
  });
  const call = values.call === 'health' ? HEALTH_CHECK_CALL : values.call === 'sayhello' ? SAY_HELLO_CALL : fail(`--call wants sayhello or health, got ${values.call}`);
  let servers = defaultServers(call);
  for (const s of values.server) {
    const eq = s.indexOf('=');
    if (eq < 1) throw new Error(`--server wants label=command, got ${s}`);
    const spec = { label: s.slice(0, eq), command: s.slice(eq + 1), ...(s.includes(dist('server')) ? { ready: /Listening/ } : {}) };
    servers = [...servers.filter((x) => x.label !== spec.label), spec];
  }
  if (values.only) {
    const only = values.only.split(',');
    servers = only.map((l) => servers.find((s) => s.label === l) ?? fail(`no server labelled ${l}`));
  }
  const o = {
    call,
    n: Number(values.n),
    c: Number(values.c),
    m: Number(values.m),
    t: Number(values.t),
    warmup: Number(values.warmup),
    rounds: Number(values.rounds),
    servers,
  };
  if (!which('h2load')) {
    process.stdout.write('bench/server: skipped: h2load not found (apt-get install nghttp2-client)\n');
    return;
  }
  const results = await benchServers(o);
  process.stdout.write(`${serverTable(results, o)}\n`);
  if (values.json) writeFileSync(values.json, JSON.stringify({ options: { ...o, servers: undefined }, results }, null, 2));
  if (!allVerified(results)) process.exitCode = 1;
}

function fail(message: string): never {
  throw new Error(message);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
