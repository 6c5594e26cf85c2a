// Issue 15: the server stays up and bounded under the known HTTP/2 denial-of-service classes. One test per
// attack of test/helpers/attacks.ts, each against a fresh `dist/server.js -workers 1` (which serves in its
// own process), measured by test/helpers/attack-harness.ts. Scales are fractions of the counts,
// small enough for the whole file to take about 90 s on two busy cores, large enough that a server whose
// memory grows with the attack goes past the bound (today's does at these scales wherever it does at full
// scale; at full scale too it stays within it for empty DATA, SETTINGS, PING and the oversized message);
// `npm run attack` runs the full counts.
//
// The goals, as the issue states them, for every attack:
//   - the server stays up;
//   - a normal SayHello on a fresh connection (dist/client.cjs, -timeout PROBE_TIMEOUT_S) is answered
//     during the attack (one probe at a time, at most one a second) and after it;
//   - peak RSS within +64 MB of idle (idle: after one SayHello and one health Check);
//   - nothing stays allocated once the attacker has left: after a full GC the heap and the buffers outside
//     it hold at most HEAP_BOUND_MB more than before the attack, and no more sockets are open. (RSS is
//     reported, not bounded, here: V8 and malloc keep the pages they freed, so RSS after an attack says how
//     high it went, not what is still held. The server is started with test/helpers/heap-report.mjs
//     preloaded for this; the image never loads it.)
// and for the connections that never complete the preface (idle, slowloris): the server closes every one
// within PREFACE_DEADLINE_MS (grpc-go's limit is 120 s, its connection timeout; today's server has none).
// Each goal is a soft assertion: a failing test lists every goal it misses, with the figures.
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { attackNamed } from './helpers/attacks.ts';
import { describe as describeMeasurement, HEAP_REPORT_FLAGS, heapReader, measureAttack, type Measurement } from './helpers/attack-harness.ts';
import { spawnServer } from './helpers/spawn.ts';

const PEAK_BOUND_MB = 64;
const AFTER_BOUND_MB = 32;
const HEAP_BOUND_MB = 8;
const SETTLE_MS = 1500;
/** a probe's whole deadline, connecting included */
const PROBE_TIMEOUT_S = 3;
/** how long a connection may take to send the whole preface */
const PREFACE_DEADLINE_MS = 10_000;

/** Attacks a fresh server, killed through `cleanup` (the test's onTestFinished, or afterAll's list). */
async function attackOurs(name: string, scale: number, maxMs: number, cleanup: (kill: () => void) => void = onTestFinished): Promise<Measurement> {
  const server = await spawnServer(['-workers', '1'], { onStdoutLine: () => {}, nodeFlags: HEAP_REPORT_FLAGS });
  cleanup(() => server.child.kill('SIGKILL'));
  const target = { name: 'ours', pid: server.child.pid!, port: server.port, heapAfterGcMb: heapReader(server.child, server.stderr) };
  const m = await measureAttack(target, attackNamed(name), {
    scale,
    maxMs,
    holdMs: 300,
    probeTimeoutS: PROBE_TIMEOUT_S,
    settleMs: SETTLE_MS,
    afterBoundMb: AFTER_BOUND_MB,
    heapBoundMb: HEAP_BOUND_MB,
  });
  console.log(describeMeasurement(m));
  return m;
}

function expectGoals(m: Measurement, peakBoundMb = PEAK_BOUND_MB): void {
  const figures = describeMeasurement(m);
  expect.soft(m.attackError, `the attacker ran: ${figures}`).toBeUndefined();
  expect.soft(m.alive, `the server is up: ${figures}`).toBe(true);
  expect.soft(m.during.length, `probes during the attack: ${figures}`).toBeGreaterThan(0);
  expect.soft(
    m.during.filter((p) => !p.ok).map((p) => `at ${p.startedAtMs} ms: ${p.outcome}`),
    `probes during the attack that failed: ${figures}`,
  ).toEqual([]);
  expect.soft(m.after.ok, `the probe after the attack (${m.after.outcome}): ${figures}`).toBe(true);
  expect.soft(Math.round(m.peakDeltaMb), `peak RSS above idle, MB: ${figures}`).toBeLessThanOrEqual(peakBoundMb);
  expect.soft(m.heapAfterMb! - m.heapIdleMb!, `heap and buffers held after the attacker left, MB more than idle: ${figures}`).toBeLessThanOrEqual(HEAP_BOUND_MB);
  expect.soft(m.socketsAfter, `sockets open after the attacker left (idle: ${m.socketsIdle}): ${figures}`).toBeLessThanOrEqual(m.socketsIdle);
}

/**
 * attack, its scale (fraction of the counts: attacks.ts says them), at most this long: a bound for a
 * slow machine, well above what the counts take (each attack ends by count, so the test measures the same
 * amount of attack however busy the machine is)
 */
const CASES: ReadonlyArray<[name: string, scale: number, maxMs: number, peakBoundMb?: number]> = [
  ['zero-window-1MB', 0.1, 8000],
  ['zero-window-15KB', 0.1, 8000],
  ['zero-window-health', 0.2, 8000],
  ['continuation-flood', 0.3, 8000],
  ['empty-headers-flood', 0.3, 8000],
  ['empty-data-flood', 0.5, 8000],
  ['open-streams-sayhello', 0.35, 8000],
  ['open-streams-health', 0.06, 8000],
  ['settings-flood', 1, 8000],
  ['ping-flood', 1, 8000],
  ['window-update-0-flood', 0.3, 8000],
  ['data-on-closed-flood', 0.1, 8000],
  ['rapid-reset', 0.03, 8000],
  ['hpack-bomb', 0.3, 8000],
  ['forwarded-1MB-headers', 0.05, 8000],
  ['oversized-message', 0.3, 8000],
  // (ends when the server stops reading each connection, not by count: its bound is the wait for that). What
  // it may hold is 20 x 1 MiB unsent plus the 12 MiB process cap; its peak also counts the garbage of answering
  // at full speed until then, which a mark-compact may not have collected yet: +47..89 MB in 22 runs here. What
  // stays is bounded by the heap after GC (HEAP_BOUND_MB), as for every attack.
  ['never-reading', 1, 4000, 96],
];

/**
 * The connections that never complete the preface: 200 idle ones, and 200 sending it a byte a second. These
 * attacks only wait (PREFACE_DEADLINE_MS and a little more, as long as the server keeps the connections),
 * so they run in the background, each against its own server, while the tests above run one by one.
 */
const PREFACE_ATTACKS = ['idle-no-preface', 'slowloris-preface'] as const;
const prefaceRuns = new Map<string, Promise<Measurement>>();
const kills: Array<() => void> = [];

describe('issue 15: HTTP/2 attacks on one server process (-workers 1)', () => {
  beforeAll(() => {
    for (const name of PREFACE_ATTACKS) {
      const run = attackOurs(name, 0.1, PREFACE_DEADLINE_MS + 1500, (kill) => kills.push(kill));
      run.catch(() => {}); // its test reports it
      prefaceRuns.set(name, run);
    }
  });
  afterAll(() => {
    for (const kill of kills) kill();
  });

  for (const [name, scale, maxMs, peakBoundMb] of CASES) {
    it(`${name}, scale ${scale} of: ${attackNamed(name).what}`, async () => {
      expectGoals(await attackOurs(name, scale, maxMs), peakBoundMb);
    });
  }

  for (const name of PREFACE_ATTACKS) {
    it(`${name}, scale 0.1 of: ${attackNamed(name).what}: every one closed by the server within ${PREFACE_DEADLINE_MS / 1000} s`, async () => {
      const m = await prefaceRuns.get(name)!;
      expectGoals(m);
      expect.soft(m.report?.closedByServer, `connections the server closed: ${describeMeasurement(m)}`).toBe(m.report?.connections);
      // (the server's timer, then the attacker seeing the close: on a busy machine each may run late)
      expect.soft(m.report?.lastCloseMs ?? Infinity, 'ms until the last was closed').toBeLessThanOrEqual(PREFACE_DEADLINE_MS + 2000);
    });
  }
});
