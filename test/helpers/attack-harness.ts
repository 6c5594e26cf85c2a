// Measures one server process around one attack (test/helpers/attacks.ts), for test/attacks.test.ts and
// bench/attack.ts: its RSS (/proc/PID/status VmRSS) every 100 ms from just before the attack until the
// attacker has left and the RSS has settled, its CPU time (/proc/PID/stat), its open sockets, and probes:
// a normal SayHello on a fresh connection, by the project's own client bundle in a process of its own
// (so that a busy attacker cannot delay it), during the attack (one at a time, at most one a second) and
// after it. With `-workers 1` dist/server.js serves in its own process (main.ts: workers only above 1), so
// the PID to watch is the spawned one.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { once } from 'node:events';
import type { AttackEntry, AttackOptions, AttackReport } from './attacks.ts';
import { cpuSeconds, rssKb, socketCount } from './process-stats.ts';
import { bundle, cleanEnv, root } from './spawn.ts';

export interface Target {
  /** 'ours', 'grpc-go' */
  name: string;
  pid: number;
  port: number;
  /** what the process still holds after a full GC (a server started with heapReportFlags), in MB */
  heapAfterGcMb?: () => Promise<number>;
}

/** Node flags for a server whose heapAfterGcMb can be read: helpers/heap-report.mjs, preloaded. */
export const HEAP_REPORT_FLAGS = ['--expose-gc', '--import', join(root, 'test/helpers/heap-report.mjs')] as const;

/** heapAfterGcMb for a server started with HEAP_REPORT_FLAGS: asks it (SIGUSR2) and reads its answer from its stderr. */
export function heapReader(child: ChildProcess, stderr: () => string): () => Promise<number> {
  return async () => {
    const seen = stderr().length;
    child.kill('SIGUSR2');
    for (let waited = 0; waited < 5000; waited += 20) {
      const m = /heap-after-gc ([\d.]+)\n/.exec(stderr().slice(seen));
      if (m) return Number(m[1]);
      await sleep(20);
    }
    return Number.NaN;
  };
}

export interface ProbeResult {
  ok: boolean;
  /** the gRPC status the client saw, or the failure */
  outcome: string;
  /** the client's own measure of the call (connecting included); undefined when it has none */
  latencyMs?: number;
  /** the probe process, start to exit (Node's start included) */
  wallMs: number;
  /** ms after the attack started */
  startedAtMs: number;
}

export interface Measurement {
  attack: string;
  target: string;
  report?: AttackReport;
  /** the attacker itself failed (e.g. could not connect) */
  attackError?: string;
  idleMb: number;
  peakMb: number;
  /** RSS once the attacker had left and the RSS settled (or settleMs passed) */
  afterMb: number;
  /** heap and buffers after a full GC, before the attack and once the attacker had left (targets that can tell) */
  heapIdleMb?: number;
  heapAfterMb?: number;
  peakDeltaMb: number;
  afterDeltaMb: number;
  /** server CPU seconds from the attack's start until the attacker left, and until the end of the measurement */
  cpuAttackS: number;
  cpuS: number;
  during: ProbeResult[];
  after: ProbeResult;
  socketsIdle: number;
  socketsAfter: number;
  alive: boolean;
  samples: number;
  /** how long after the attacker left the RSS and sockets took to come back within bounds (settleMs if they did not) */
  settledMs: number;
}

export interface MeasureOptions extends AttackOptions {
  /** each probe's -timeout (seconds) */
  probeTimeoutS: number;
  /** how long to wait, after the attacker left, for RSS within afterBoundMb of idle and sockets back to idle */
  settleMs: number;
  afterBoundMb: number;
  /** the same for the heap and buffers after a full GC (targets with heapAfterGcMb); default 8 */
  heapBoundMb?: number;
  probeEveryMs?: number;
  log?: (line: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !Number.isNaN(cpuSeconds(pid));
  } catch {
    return false;
  }
}

const rssMbOf = (pid: number) => {
  try {
    return rssKb(pid) / 1024;
  } catch {
    return Number.NaN;
  }
};

const socketsOf = (pid: number) => {
  try {
    return socketCount(pid);
  } catch {
    return Number.NaN;
  }
};

/** One SayHello (or health Check) on a fresh connection by dist/client.cjs; killed 5 s after its own deadline. */
export async function probe(port: number, timeoutS: number, t0 = performance.now(), health = false): Promise<ProbeResult> {
  const startedAtMs = Math.round(performance.now() - t0);
  const started = performance.now();
  const child = spawn(process.execPath, [bundle('client'), '-server_addr', `127.0.0.1:${port}`, '-timeout', String(timeoutS), '-json', ...(health ? ['-health'] : [])], {
    cwd: root,
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), (timeoutS + 5) * 1000);
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  const wallMs = Math.round(performance.now() - started);
  try {
    const doc = JSON.parse(stdout) as { requests: Array<{ ok: boolean; status: string; latency_ms: number; details?: string }> };
    const r = doc.requests[0]!;
    return { ok: code === 0 && r.ok, outcome: r.ok ? r.status : `${r.status} ${r.details ?? ''}`.trim(), latencyMs: Math.round(r.latency_ms), wallMs, startedAtMs };
  } catch {
    return { ok: false, outcome: signal ? `client killed (${signal})` : `client exit ${code}: ${stderr.trim().split('\n')[0] ?? ''}`, wallMs, startedAtMs };
  }
}

/**
 * Warms the server up (a SayHello and a health Check: both paths loaded), takes its idle RSS, runs the attack
 * with the sampler and the probes, and measures again once the attacker has left.
 */
export async function measureAttack(target: Target, entry: AttackEntry, options: MeasureOptions): Promise<Measurement> {
  const { pid, port } = target;
  const log = options.log ?? (() => {});
  await Promise.all([probe(port, options.probeTimeoutS), probe(port, options.probeTimeoutS, undefined, true)]);
  await sleep(200);
  const idles: number[] = [];
  for (let i = 0; i < 3; i++) {
    idles.push(rssMbOf(pid));
    await sleep(50);
  }
  const idleMb = idles.sort((a, b) => a - b)[1]!;
  const socketsIdle = socketsOf(pid);
  const heapIdleMb = await target.heapAfterGcMb?.();

  let peakMb = idleMb;
  let samples = 0;
  const sampler = setInterval(() => {
    const mb = rssMbOf(pid);
    if (!Number.isNaN(mb)) {
      samples++;
      peakMb = Math.max(peakMb, mb);
    }
  }, 100);

  const t0 = performance.now();
  const cpu0 = cpuSeconds(pid);
  let attacking = true;
  const during: ProbeResult[] = [];
  const prober = (async () => {
    await sleep(250);
    do {
      const result = probe(port, options.probeTimeoutS, t0);
      await Promise.all([result, sleep(options.probeEveryMs ?? 1000)]);
      during.push(await result);
    } while (attacking);
  })();

  let report: AttackReport | undefined;
  let attackError: string | undefined;
  try {
    report = await entry.run(port, options);
  } catch (err) {
    attackError = err instanceof Error ? err.message : String(err);
  }
  attacking = false;
  const cpuAttackS = cpuSeconds(pid) - cpu0;
  const left = performance.now();
  log(`${target.name} ${entry.name}: attacker left after ${Math.round(left - t0)} ms: ${report ? `${report.units} ${report.unitName}, stopped by ${report.stoppedBy}` : attackError}`);

  await prober;
  // the attacker has gone: wait (bounded) for the server to let go of what it held
  let afterMb = rssMbOf(pid);
  let socketsAfter = socketsOf(pid);
  while (performance.now() - left < options.settleMs && alive(pid)) {
    afterMb = rssMbOf(pid);
    socketsAfter = socketsOf(pid);
    if (afterMb <= idleMb + options.afterBoundMb && !(socketsAfter > socketsIdle)) break;
    await sleep(100);
  }
  const settledMs = Math.round(performance.now() - left);
  // (a connection's last frees come a moment after its socket closes: asked again, within the same bound of time)
  let heapAfterMb = await target.heapAfterGcMb?.();
  while (heapAfterMb !== undefined && heapIdleMb !== undefined && heapAfterMb > heapIdleMb + (options.heapBoundMb ?? 8) && performance.now() - left < options.settleMs + 1500) {
    await sleep(250);
    heapAfterMb = await target.heapAfterGcMb!();
  }
  const after = await probe(port, options.probeTimeoutS, t0);
  clearInterval(sampler);
  const cpuS = cpuSeconds(pid) - cpu0;
  return {
    attack: entry.name,
    target: target.name,
    ...(report ? { report } : {}),
    ...(attackError ? { attackError } : {}),
    idleMb,
    peakMb,
    afterMb,
    ...(heapIdleMb !== undefined && heapAfterMb !== undefined ? { heapIdleMb, heapAfterMb } : {}),
    peakDeltaMb: peakMb - idleMb,
    afterDeltaMb: afterMb - idleMb,
    cpuAttackS,
    cpuS,
    during,
    after,
    socketsIdle,
    socketsAfter,
    alive: alive(pid),
    samples,
    settledMs,
  };
}

const mb = (x: number) => (Number.isNaN(x) ? '-' : x.toFixed(0));

export function probeSummary(probes: readonly ProbeResult[]): string {
  if (probes.length === 0) return 'none';
  const ok = probes.filter((p) => p.ok);
  const worst = Math.max(...probes.map((p) => p.latencyMs ?? p.wallMs));
  const failures = probes.filter((p) => !p.ok).map((p) => p.outcome);
  return `${ok.length}/${probes.length} ok, max ${worst} ms${failures.length ? ` (${[...new Set(failures)].join('; ')})` : ''}`;
}

/** One line per measurement, for logs and assertion messages. */
export function describe(m: Measurement): string {
  const r = m.report;
  const attacker = r
    ? `${r.units} ${r.unitName} in ${r.ms} ms over ${r.connections} conn, stopped by ${r.stoppedBy}; server closed ${r.closedByServer}${r.lastCloseMs !== undefined ? ` (last at ${r.lastCloseMs} ms)` : ''}${r.goaways.length ? `, GOAWAY ${r.goaways.join('/')}` : ''}${r.rstReceived ? `, ${r.rstReceived} RST_STREAM` : ''}${r.notes.length ? `; ${r.notes.join('; ')}` : ''}`
    : `attacker failed: ${m.attackError}`;
  return (
    `${m.target} ${m.attack}: RSS idle ${mb(m.idleMb)} MB, peak +${mb(m.peakDeltaMb)}, after +${mb(m.afterDeltaMb)} (${m.settledMs} ms after the attacker left); ` +
    (m.heapAfterMb !== undefined ? `heap and buffers after a full GC ${m.heapIdleMb!.toFixed(1)} MB idle, ${m.heapAfterMb.toFixed(1)} MB after; ` : '') +
    `CPU ${m.cpuAttackS.toFixed(1)} s during, ${m.cpuS.toFixed(1)} s in all; sockets ${m.socketsIdle} idle, ${m.socketsAfter} after; ` +
    `probes during: ${probeSummary(m.during)}; after: ${probeSummary([m.after])}; ${m.alive ? 'alive' : 'DEAD'}. Attacker: ${attacker}`
  );
}
