// npm run bench: probe cold start, server throughput (SayHello, then health Check), streams and timing
// fidelity, one after the other, printing each table (markdown, as docs/performance.md shows them), with the
// ratios to grpc-go when the peer kit is here. Needs a build (npm run bench does one first). Benchmarks are
// measurements, not tests: nothing here fails on speed, only on a broken run (a server answer that is not a
// real gRPC OK, a client that does not exit 0).
//
//   npm run bench                        # docs/performance.md's figures: about 15 minutes on 2 cores
//   npm run bench -- --quick             # small N everywhere: a couple of minutes, for a rough picture
//   npm run bench -- --only server,probe # some of probe, server, health, streams, timing
//   npm run bench -- --smoke             # tiny N, one server each: that every script still runs (test/bench.test.ts
//                                        # leaves out streams, whose first run builds a Go program: ~20 s)
//   BENCH_BASELINE=../old/dist/server.js npm run bench -- --only server   # another build, side by side
//
// The peer kit (../shared/peers, or $PEERS_DIR: grpc-go and a naive grpc-js server and client, built by its
// setup.sh) adds its rows when present, and each table says so when it is missing; h2load (nghttp2-client) and
// hyperfine or python3 are needed for the server and probe parts, which say so and are skipped when those are
// missing; the streams part needs Go (bench/streams builds its grpc-go peer from Debian's packages).
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { benchProbe, defaultClients, probeTable } from './probe.ts';
import { allVerified, benchServers, defaultServers, HEALTH_CHECK_CALL, SAY_HELLO_CALL, serverTable } from './server.ts';
import { benchStreams, streamsTable } from './streams.ts';
import { benchTiming, timingTable } from './timing.ts';
import { dist, peersDir, which } from './lib.ts';

const PRESETS = {
  full: {
    probe: { runs: 40, warmup: 3, rssRuns: 10 },
    server: { n: 200_000, warmup: 20_000, rounds: 3 },
    streams: { messages: 200_000, roundTrips: 50_000, rounds: 3 },
    timing: { count: 300, deadlineCount: 5 },
  },
  quick: {
    probe: { runs: 10, warmup: 2, rssRuns: 3 },
    server: { n: 50_000, warmup: 5_000, rounds: 1 },
    streams: { messages: 50_000, roundTrips: 10_000, rounds: 1 },
    timing: { count: 30, deadlineCount: 3 },
  },
  smoke: {
    probe: { runs: 1, warmup: 0, rssRuns: 0 },
    server: { n: 300, warmup: 0, rounds: 1 },
    streams: { messages: 200, roundTrips: 50, rounds: 1 },
    timing: { count: 3, deadlineCount: 1 },
  },
} as const;

/** Under --smoke, the few rows that show each part runs. */
const SMOKE_SERVERS = ['ts'];
const SMOKE_CLIENTS = ['node -e 0', 'floor (hand-framed)', 'ts', 'ts -tls', 'floor -tls (hand-framed)', 'ts (V8 code cache)'];

async function main() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      smoke: { type: 'boolean', default: false },
      only: { type: 'string', default: 'probe,server,health,streams,timing' },
    },
  });
  const preset = PRESETS[values.smoke ? 'smoke' : values.quick ? 'quick' : 'full'];
  const parts = new Set(values.only.split(','));
  const out = (text: string) => process.stdout.write(`${text}\n\n`);
  const log = (line: string) => process.stderr.write(`  ${line}\n`);
  if (!existsSync(dist('server')) || !existsSync(dist('client'))) throw new Error('dist/ is missing: npm run build first');
  out(peersDir() ? `Peer kit: ${peersDir()}` : 'Peer kit: MISSING (../shared/peers or $PEERS_DIR, with bin/go-server built by its setup.sh): no grpc-go or naive grpc-js rows, no ratios to grpc-go');
  let broken = false;

  if (parts.has('probe')) {
    if (!which('hyperfine') && !which('python3')) out('Probe cold start: SKIPPED: neither hyperfine nor python3 found (apt-get install hyperfine)');
    else {
      const clients = values.smoke ? defaultClients().filter((c) => SMOKE_CLIENTS.includes(c.label)) : undefined;
      const { results, method } = await benchProbe({ ...preset.probe, clients, log });
      out(probeTable(results, method));
      broken ||= results.some((r) => r.failures > 0);
    }
  }
  for (const [part, call] of [
    ['server', SAY_HELLO_CALL],
    ['health', HEALTH_CHECK_CALL],
  ] as const) {
    if (!parts.has(part)) continue;
    if (!which('h2load')) out(`Server throughput (${call.name}): SKIPPED: h2load not found (apt-get install nghttp2-client)`);
    else {
      const servers = defaultServers(call, values.smoke ? SMOKE_SERVERS : part === 'health' ? ['ts', 'ts -workers 1'] : undefined);
      const o = { ...preset.server, call, c: 4, m: 32, t: 1, servers, log };
      const results = await benchServers(o);
      out(serverTable(results, o));
      broken ||= !allVerified(results);
    }
  }
  if (parts.has('streams')) {
    const result = await benchStreams({ ...preset.streams, log, only: values.smoke ? SMOKE_SERVERS : undefined });
    out(streamsTable(result));
    broken ||= !result.ok;
  }
  if (parts.has('timing')) {
    const result = await benchTiming({ ...preset.timing, delayMs: 100, deadlinesS: values.smoke ? [0.1] : [0.2, 1] });
    out(timingTable(result));
  }
  if (broken) {
    process.stderr.write('bench: some runs were not clean (see above)\n');
    process.exitCode = 1;
  }
}

await main();
