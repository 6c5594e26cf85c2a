// Streams: helloworld.GreeterStream served by dist/server.js and by grpc-go (Debian's 1.33, the peer kit's
// version), driven alike by one grpc-go load client (bench/streams/main.go, built here from Debian's packages:
// golang-google-grpc-dev, protoc-gen-go 1.3; the build is cached under the OS temp directory).
//   server-streaming: K streams at once on one connection, each asking for N/K replies: messages/s;
//   bidi: K streams at once, each making N/K round trips one after the other (request, its reply): round trips/s
//   and each round trip's p50/p99.
// Every reply is checked by its text ("Hello <name> <i>", in order) and every stream must end OK.
//
//   node bench/streams.ts [--messages 200000] [--round-trips 50000] [--streams 8] [--rounds 3]
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { commandLine, cpuSeconds, dist, fmt, freePort, machine, median, node, processTree, root, rssMb, startServerProcess, which } from './lib.ts';
import { SERVER_NODE_FLAGS } from '../src/server/v8-flags.ts';

const SOURCE = join(root, 'bench', 'streams', 'main.go');
const PROTOS = ['helloworld.proto', 'helloworld_stream.proto'];
const GOPATH_DEBIAN = '/usr/share/gocode';

/** bench/streams/main.go built (or found built) for these sources; a reason when it cannot be. */
export function streamPeer(): { binary: string } | { missing: string } {
  for (const tool of ['go', 'protoc', 'protoc-gen-go']) {
    if (!which(tool)) return { missing: `${tool} not found (apt-get install golang-go golang-google-grpc-dev protoc-gen-go-1-3 protobuf-compiler)` };
  }
  if (!existsSync(join(GOPATH_DEBIAN, 'src', 'google.golang.org', 'grpc'))) return { missing: 'grpc-go not found in /usr/share/gocode (apt-get install golang-google-grpc-dev)' };
  const hash = createHash('sha256');
  for (const file of [SOURCE, ...PROTOS.map((p) => join(root, 'proto', p))]) hash.update(readFileSync(file));
  const cache = join(tmpdir(), 'grpc-helloworld-bench-streams');
  const binary = join(cache, `streampeer-${hash.digest('hex').slice(0, 16)}`);
  if (existsSync(binary)) return { binary };
  mkdirSync(cache, { recursive: true });
  const gopath = mkdtempSync(join(tmpdir(), 'bench-streams-'));
  try {
    const pkg = join(gopath, 'src', 'streampeer');
    mkdirSync(join(pkg, 'helloworld'), { recursive: true });
    copyFileSync(SOURCE, join(pkg, 'main.go'));
    const mapping = PROTOS.map((p) => `M${p}=streampeer/helloworld`).join(',');
    const run = (argv: string[], env: NodeJS.ProcessEnv = process.env) => {
      const r = spawnSync(argv[0]!, argv.slice(1), { env, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr || r.error}`);
    };
    run(['protoc', '-I', join(root, 'proto'), `--go_out=plugins=grpc,paths=source_relative,${mapping}:${join(pkg, 'helloworld')}`, ...PROTOS]);
    // GOPATH mode, offline, as the peer kit builds its go-server
    const env = { ...process.env, GOPATH: `${gopath}:${GOPATH_DEBIAN}`, GO111MODULE: 'off', GOPROXY: 'off', GOFLAGS: '', GOCACHE: join(cache, 'gocache') };
    run(['go', 'build', '-o', `${binary}.tmp`, 'streampeer'], env);
    renameSync(`${binary}.tmp`, binary);
    return { binary };
  } catch (err) {
    return { missing: `the grpc-go stream peer did not build: ${(err as Error).message}` };
  } finally {
    rmSync(gopath, { recursive: true, force: true });
  }
}

interface LoadResult {
  mode: 'server' | 'bidi';
  count: number;
  per_sec: number;
  p50_ms?: number;
  p99_ms?: number;
  verified: boolean;
  error?: string;
}

export interface StreamRun {
  messagesPerSec: number;
  roundTripsPerSec: number;
  p50: number;
  p99: number;
  cpuUsPerMessage: number;
  rssMaxMb: number;
  verified: boolean;
}

export interface StreamsResult {
  peer: { binary: string } | { missing: string };
  options: StreamsOptions;
  servers: Array<{ label: string; command: string; runs: StreamRun[]; errors: string[] }>;
  ok: boolean;
}

export interface StreamsOptions {
  messages: number;
  roundTrips: number;
  rounds: number;
  streams?: number;
  /** labels of our servers to run (all: ts, ts -workers 1) */
  only?: readonly string[];
  log?: (line: string) => void;
}

function load(binary: string, port: number, mode: 'server' | 'bidi', streams: number, messages: number): LoadResult {
  const r = spawnSync(binary, ['load', '-addr', `127.0.0.1:${port}`, '-mode', mode, '-streams', String(streams), '-messages', String(messages)], { encoding: 'utf8', timeout: 600_000 });
  try {
    return JSON.parse(r.stdout) as LoadResult;
  } catch {
    return { mode, count: 0, per_sec: Number.NaN, verified: false, error: r.stderr || String(r.error) };
  }
}

export async function benchStreams(o: StreamsOptions): Promise<StreamsResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const streams = o.streams ?? 8;
  const peer = streamPeer();
  const ours = `${node} ${SERVER_NODE_FLAGS.join(' ')} ${dist('server')} -host 127.0.0.1 -port {port}`;
  const specs = [
    { label: 'ts', command: ours },
    { label: 'ts -workers 1', command: `${ours} -workers 1` },
  ].filter((s) => !o.only || o.only.includes(s.label));
  // a build of another commit beside this one, in the same run, as in bench/server.ts
  const baseline = process.env.BENCH_BASELINE;
  if (baseline) specs.push({ label: 'baseline -workers 1', command: `${node} ${SERVER_NODE_FLAGS.join(' ')} ${baseline} -host 127.0.0.1 -port {port} -workers 1` });
  if ('binary' in peer) specs.push({ label: 'go', command: `${peer.binary} serve -port {port}` });
  const servers = specs.map((s) => ({ ...s, runs: [] as StreamRun[], errors: [] as string[] }));
  if (!('binary' in peer)) {
    log(`streams: ${peer.missing}`);
    return { peer, options: o, servers, ok: true };
  }
  for (let round = 1; round <= o.rounds; round++) {
    for (const server of servers) {
      const port = await freePort();
      const running = await startServerProcess(commandLine(server.command, port), port, { ready: /Listening/ });
      try {
        const pids = processTree(running.pid);
        const cpu0 = cpuSeconds(pids);
        const s = load(peer.binary, port, 'server', streams, o.messages);
        const b = load(peer.binary, port, 'bidi', streams, o.roundTrips);
        const cpu = cpuSeconds(pids) - cpu0;
        for (const r of [s, b]) if (!r.verified) server.errors.push(`${r.mode}: ${r.error}`);
        const run: StreamRun = {
          messagesPerSec: s.per_sec,
          roundTripsPerSec: b.per_sec,
          p50: b.p50_ms ?? Number.NaN,
          p99: b.p99_ms ?? Number.NaN,
          cpuUsPerMessage: (cpu * 1e6) / (s.count + 2 * b.count),
          rssMaxMb: Math.max(...rssMb(pids)),
          verified: s.verified && b.verified,
        };
        server.runs.push(run);
        log(
          `round ${round} ${server.label}: ${fmt(run.messagesPerSec, 0)} messages/s, ${fmt(run.roundTripsPerSec, 0)} round trips/s ` +
            `(p99 ${fmt(run.p99, 2)} ms), ${run.verified ? 'verified' : `NOT VERIFIED: ${server.errors.at(-1)}`}`,
        );
      } finally {
        await running.stop();
      }
    }
  }
  return { peer, options: o, servers, ok: servers.every((s) => s.runs.every((r) => r.verified)) };
}

export function streamsTable(result: StreamsResult): string {
  const { options: o } = result;
  const streams = o.streams ?? 8;
  const head = `Streams: helloworld.GreeterStream, ${streams} streams at once on one connection, driven by a grpc-go 1.33 client (bench/streams/main.go): server-streaming ${o.messages} replies, bidi ${o.roundTrips} round trips; median of ${o.rounds} round(s); ${machine()}`;
  if ('missing' in result.peer) return `${head}\n\nStreams: SKIPPED: the grpc-go stream peer is MISSING: ${result.peer.missing}`;
  const go = result.servers.find((s) => s.label === 'go');
  const med = (runs: StreamRun[], k: keyof StreamRun) => median(runs.map((r) => Number(r[k])));
  /** median over the rounds of each round's ratio to go */
  const vsGo = (runs: StreamRun[], k: keyof StreamRun) => {
    if (!go) return '-';
    const ratios = runs.map((r, i) => (go.runs[i] ? Number(r[k]) / Number(go.runs[i]![k]) : Number.NaN)).filter((x) => !Number.isNaN(x));
    return ratios.length ? `${median(ratios).toFixed(2)}x` : '-';
  };
  const lines = [
    head,
    '',
    '| server | server-streaming messages/s | bidi round trips/s | bidi p50 ms | bidi p99 ms | server CPU us/message | RSS after MB (max per process) | verified | messages/s vs go | round trips/s vs go |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |',
  ];
  for (const s of result.servers) {
    lines.push(
      `| ${s.label} | ${fmt(med(s.runs, 'messagesPerSec'), 0)} | ${fmt(med(s.runs, 'roundTripsPerSec'), 0)} | ${fmt(med(s.runs, 'p50'), 2)} | ${fmt(med(s.runs, 'p99'), 2)} | ` +
        `${fmt(med(s.runs, 'cpuUsPerMessage'))} | ${fmt(med(s.runs, 'rssMaxMb'), 0)} | ${s.runs.filter((r) => r.verified).length}/${s.runs.length} | ` +
        `${vsGo(s.runs, 'messagesPerSec')} | ${vsGo(s.runs, 'roundTripsPerSec')} |`,
    );
  }
  lines.push('', 'Server CPU per message: server-streaming replies plus bidi requests and replies. The load client runs on the same 2 cores.');
  for (const s of result.servers) for (const e of s.errors) lines.push(`- ${s.label}: ${e}`);
  return lines.join('\n');
}

async function main() {
  const { values } = parseArgs({
    options: {
      messages: { type: 'string', default: '200000' },
      'round-trips': { type: 'string', default: '50000' },
      streams: { type: 'string', default: '8' },
      rounds: { type: 'string', default: '3' },
    },
  });
  const result = await benchStreams({ messages: Number(values.messages), roundTrips: Number(values['round-trips']), streams: Number(values.streams), rounds: Number(values.rounds) });
  process.stdout.write(`${streamsTable(result)}\n`);
  if (!result.ok) process.exitCode = 1;
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
