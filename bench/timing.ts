// Timing fidelity of the client, on loopback against dist/server.js (printed, never asserted: a loaded
// machine moves these numbers; the goals are from issue 6):
// - delay: with a server delay D (x-helloworld-delay-ms), the latency the client reports is within 5 ms of D
//   at p99. Request 1 of a run also opens the connection, so it is shown apart and not in the percentiles.
// - deadline: with -timeout T against a server that answers later than T, each call ends (DEADLINE_EXCEEDED)
//   within T + 20 ms, by the client's clock; the whole process, spawn to exit, is shown too.
//
//   node bench/timing.ts [--count 300] [--delay-ms 100] [--deadlines 0.2,1] [--deadline-count 5] [--json out.json]
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { cleanEnv, dist, fmt, freePort, machine, node, percentile, startServerProcess } from './lib.ts';

interface Spread {
  p50: number;
  p99: number;
  max: number;
}

interface ClientRequest {
  latency_ms: number;
  status: string;
}

export interface TimingResult {
  delay: {
    delayMs: number;
    count: number;
    firstMs: number;
    excessMs: Spread;
    /** the same calls by the server's access log (duration_ms): how much of the excess is the server's */
    serverExcessMs: Spread;
    statuses: string[];
    ok: boolean;
  };
  deadlines: { timeoutMs: number; count: number; overMs: Spread; processMs: number; statuses: string[]; ok: boolean }[];
}

async function client(args: string[]): Promise<{ requests: ClientRequest[]; wallMs: number }> {
  const t0 = performance.now();
  const child = spawn(node, [dist('client'), ...args, '-json'], { stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv() });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.resume();
  await once(child, 'close');
  const wallMs = performance.now() - t0;
  try {
    return { requests: (JSON.parse(stdout) as { requests: ClientRequest[] }).requests, wallMs };
  } catch {
    throw new Error(`dist/client.cjs ${args.join(' ')}: no JSON document on stdout: ${stdout.slice(0, 500)}`);
  }
}

const spreadOf = (xs: number[]): Spread => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p99: percentile(s, 99), max: s.at(-1) ?? Number.NaN };
};

export async function benchTiming(o: { count: number; delayMs: number; deadlinesS: number[]; deadlineCount: number }): Promise<TimingResult> {
  const port = await freePort();
  const argv = [node, dist('server'), '-host', '127.0.0.1', '-port', String(port), '-workers', '1'];
  const server = await startServerProcess(argv, port, { ready: /Listening/, keepStdout: true });
  const addr = `127.0.0.1:${port}`;
  try {
    const delayed = await client(['-server_addr', addr, '-count', String(o.count), '-timeout', '10', '-H', `x-helloworld-delay-ms: ${o.delayMs}`]);
    const [first, ...rest] = delayed.requests;
    const excess = spreadOf(rest.map((r) => r.latency_ms - o.delayMs));
    await new Promise((r) => setTimeout(r, 200)); // the last access-log lines
    const logged = server
      .stdout()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { duration_ms: number; code: number })
      .filter((e) => e.code === 0)
      .slice(1, delayed.requests.length);
    const delay = {
      delayMs: o.delayMs,
      count: delayed.requests.length,
      firstMs: first?.latency_ms ?? Number.NaN,
      excessMs: excess,
      serverExcessMs: spreadOf(logged.map((e) => e.duration_ms - o.delayMs)),
      statuses: [...new Set(delayed.requests.map((r) => r.status))],
      ok: excess.p99 <= 5 && rest.every((r) => r.latency_ms >= o.delayMs),
    };
    const deadlines: TimingResult['deadlines'] = [];
    for (const t of o.deadlinesS) {
      const timeoutMs = t * 1000;
      const late = ['-H', `x-helloworld-delay-ms: ${timeoutMs + 2000}`];
      const many = await client(['-server_addr', addr, '-count', String(o.deadlineCount), '-timeout', String(t), ...late]);
      const single = await client(['-server_addr', addr, '-timeout', String(t), ...late]);
      const over = spreadOf(many.requests.map((r) => r.latency_ms - timeoutMs));
      deadlines.push({
        timeoutMs,
        count: many.requests.length,
        overMs: over,
        processMs: single.wallMs,
        statuses: [...new Set(many.requests.map((r) => r.status))],
        ok: over.max <= 20 && over.p50 >= 0,
      });
    }
    return { delay, deadlines };
  } finally {
    await server.stop();
  }
}

export function timingTable(r: TimingResult): string {
  const d = r.delay;
  const lines = [
    `Timing fidelity: dist/client.cjs against dist/server.js on loopback; ${machine()}`,
    '',
    '| check | goal | measured | |',
    '| --- | --- | --- | --- |',
    `| delay ${d.delayMs} ms, ${d.count} sequential calls (${d.statuses.join(', ')}) | reported latency within 5 ms of the delay at p99 | ` +
      `over the delay by p50 ${fmt(d.excessMs.p50, 2)}, p99 ${fmt(d.excessMs.p99, 2)}, max ${fmt(d.excessMs.max, 2)} ms ` +
      `(of which the server's own, by its access log: p50 ${fmt(d.serverExcessMs.p50, 2)}, p99 ${fmt(d.serverExcessMs.p99, 2)} ms; ` +
      `call 1, with the connection: ${fmt(d.firstMs, 1)} ms) | ${d.ok ? 'met' : 'NOT met'} |`,
  ];
  for (const x of r.deadlines) {
    lines.push(
      `| -timeout ${x.timeoutMs / 1000} s, server answers 2 s late, ${x.count} calls (${x.statuses.join(', ')}) | ends within T + 20 ms | ` +
        `after T + p50 ${fmt(x.overMs.p50, 2)}, p99 ${fmt(x.overMs.p99, 2)}, max ${fmt(x.overMs.max, 2)} ms; one call's process, spawn to exit: ${fmt(x.processMs, 0)} ms | ${x.ok ? 'met' : 'NOT met'} |`,
    );
  }
  return lines.join('\n');
}

async function main() {
  const { values } = parseArgs({
    options: {
      count: { type: 'string', default: '300' },
      'delay-ms': { type: 'string', default: '100' },
      deadlines: { type: 'string', default: '0.2,1' },
      'deadline-count': { type: 'string', default: '5' },
      json: { type: 'string' },
    },
  });
  const o = {
    count: Number(values.count),
    delayMs: Number(values['delay-ms']),
    deadlinesS: values.deadlines.split(',').map(Number),
    deadlineCount: Number(values['deadline-count']),
  };
  const result = await benchTiming(o);
  process.stdout.write(`${timingTable(result)}\n`);
  if (values.json) writeFileSync(values.json, JSON.stringify({ options: o, result }, null, 2));
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
