// npm run bench: probe cold start, server throughput and timing fidelity, one after the other, printing
// each table (markdown, as the README's Performance section shows them). Needs a build (npm run bench does
// one first). Benchmarks are measurements, not tests: nothing here fails on speed, only on a broken run
// (a server answer that is not a real gRPC OK, a client that does not exit 0).
//
//   npm run bench                        # the README's figures: about 10 minutes on 2 cores
//   npm run bench -- --quick             # small N everywhere: a minute, for a rough picture
//   npm run bench -- --only server,probe # some of probe, server, timing
//   npm run bench -- --smoke             # tiny N: that every script still runs (test/bench.test.ts)
//   BENCH_BASELINE=../old/dist/server.js npm run bench -- --only server   # another build, side by side
//
// The peer kit (../shared/peers, or $PEERS_DIR: grpc-go and a naive grpc-js server and client) adds its
// columns when present; h2load (nghttp2-client) and hyperfine or python3 are needed for the server and
// probe parts, which say so and are skipped when those are missing.
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { benchProbe, probeTable } from './probe.ts';
import { allVerified, benchServers, defaultServers, serverTable } from './server.ts';
import { benchTiming, timingTable } from './timing.ts';
import { dist, peersDir, which } from './lib.ts';

const PRESETS = {
  full: { probe: { runs: 40, warmup: 3, rssRuns: 10 }, server: { n: 200_000, warmup: 20_000, rounds: 3 }, timing: { count: 300, deadlineCount: 5 } },
  quick: { probe: { runs: 10, warmup: 2, rssRuns: 3 }, server: { n: 50_000, warmup: 5_000, rounds: 1 }, timing: { count: 30, deadlineCount: 3 } },
  smoke: { probe: { runs: 2, warmup: 1, rssRuns: 1 }, server: { n: 300, warmup: 100, rounds: 1 }, timing: { count: 3, deadlineCount: 1 } },
} as const;

async function main() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      smoke: { type: 'boolean', default: false },
      only: { type: 'string', default: 'probe,server,timing' },
    },
  });
  const preset = PRESETS[values.smoke ? 'smoke' : values.quick ? 'quick' : 'full'];
  const parts = new Set(values.only.split(','));
  const out = (text: string) => process.stdout.write(`${text}\n\n`);
  const log = (line: string) => process.stderr.write(`  ${line}\n`);
  if (!existsSync(dist('server')) || !existsSync(dist('client'))) throw new Error('dist/ is missing: npm run build first');
  out(peersDir() ? `Peer kit: ${peersDir()}` : 'Peer kit: not found (../shared/peers or $PEERS_DIR): no grpc-go or naive grpc-js columns');
  let broken = false;

  if (parts.has('probe')) {
    if (!which('hyperfine') && !which('python3')) out('Probe cold start: SKIPPED: neither hyperfine nor python3 found (apt-get install hyperfine)');
    else {
      const { results, method } = await benchProbe({ ...preset.probe, log });
      out(probeTable(results, method));
      broken ||= results.some((r) => r.failures > 0);
    }
  }
  if (parts.has('server')) {
    if (!which('h2load')) out('Server throughput: SKIPPED: h2load not found (apt-get install nghttp2-client)');
    else {
      const o = { ...preset.server, c: 4, m: 32, t: 1, servers: defaultServers(), log };
      const results = await benchServers(o);
      out(serverTable(results, o));
      broken ||= !allVerified(results);
    }
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
