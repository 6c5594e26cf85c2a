// The fault-injection scenarios, one table read by both runners: the local e2e (HAProxy rendered from the
// same VirtualService, test/e2e.test.ts) and the kind e2e (a real Istio sidecar, e2e/kind.ts).
//
// A scenario names a VirtualService file in k8s/istio/ and the client commands to run against it. What
// each command must show is not written here but PREDICTED from the VirtualService (route match, delay,
// abort, percentages) by predict() below, so a change to a manifest changes what both e2e runs check.
// Each call also states what it is about (`shows`), so a manifest change that would make a scenario
// vacuous (e.g. the delay's percentage set to 0) fails loudly instead of passing trivially.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SAY_HELLO_PATH } from '../src/rpc-names.ts';
import { exitCodeForStatus } from '../src/exit-codes.ts';
import { statusName, STATUS_NAMES } from '../src/status.ts';
import { readVirtualService, type MatchCondition, type StringMatch, type VirtualServiceModel } from './virtual-service.ts';

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));
export const istioDir = join(repoRoot, 'k8s/istio');

/** The server variant a call goes to: plaintext behind a port named `grpc`, or TLS behind a port named `tls`. */
export type Port = 'grpc' | 'tls';

/** What a call is there to show; checked against the prediction so that a scenario cannot go vacuous. */
export type Shows = 'delay' | 'no-delay' | 'abort' | 'deadline' | 'percent-delay' | 'passthrough';

export interface Call {
  label: string;
  port: Port;
  /** client arguments, without -server_addr (and -tls, added for the tls port), -json and -expect_* */
  args: string[];
  /** add -expect_code / -expect_*_latency derived from the prediction: one command that exits 0 or 1 */
  expectFlags: boolean;
  shows: Shows;
}

export interface Scenario {
  name: string;
  summary: string;
  /** file under k8s/istio/ */
  virtualService: string;
  calls: Call[];
  /** the call kind polls after a VirtualService change until 3 consecutive runs show its effect (default: the first) */
  probe?: Call;
}

/** -count and -concurrency of the percentage scenario (kind polls with the smaller batch). */
export const PERCENT_CALLS = 100;
export const PERCENT_PROBE_CALLS = 20;

export const scenarios: Scenario[] = [
  {
    name: 'delay',
    summary: 'fixedDelay, deadline long enough: OK, and latency at least the delay',
    virtualService: 'delay.yaml',
    calls: [{ label: 'delayed, -timeout 10', port: 'grpc', args: ['-timeout', '10'], expectFlags: true, shows: 'delay' }],
  },
  {
    name: 'delay-deadline',
    summary: 'fixedDelay longer than the deadline: DEADLINE_EXCEEDED (exit 68) after the deadline, never answered OK late',
    virtualService: 'delay.yaml',
    calls: [
      { label: 'deadline first, -timeout 1 (exit code)', port: 'grpc', args: ['-timeout', '1'], expectFlags: false, shows: 'deadline' },
      { label: 'deadline first, -timeout 1 (-expect_*)', port: 'grpc', args: ['-timeout', '1'], expectFlags: true, shows: 'deadline' },
    ],
  },
  {
    name: 'abort',
    summary: 'abort grpcStatus: the status (exit 64+code) with details "fault filter abort"; the server sees nothing',
    virtualService: 'abort.yaml',
    calls: [
      { label: 'aborted (exit code)', port: 'grpc', args: ['-timeout', '10'], expectFlags: false, shows: 'abort' },
      { label: 'aborted (-expect_*)', port: 'grpc', args: ['-timeout', '10'], expectFlags: true, shows: 'abort' },
    ],
  },
  {
    name: 'header-delay',
    summary: 'header-matched delay: only calls with the header are delayed, the fallback route serves the rest',
    virtualService: 'header-delay.yaml',
    calls: [
      { label: "with -H 'end-user: jason'", port: 'grpc', args: ['-timeout', '10', '-H', 'end-user: jason'], expectFlags: true, shows: 'delay' },
      { label: 'without the header', port: 'grpc', args: ['-timeout', '10'], expectFlags: true, shows: 'no-delay' },
      { label: "with -H 'end-user: alice'", port: 'grpc', args: ['-timeout', '10', '-H', 'end-user: alice'], expectFlags: true, shows: 'no-delay' },
    ],
  },
  {
    name: 'percent-delay',
    summary: 'percentage delay: the delayed count within a binomial bound, and a clear gap between the two groups',
    virtualService: 'percent-delay.yaml',
    calls: [
      {
        label: `${PERCENT_CALLS} calls at once`,
        port: 'grpc',
        args: ['-timeout', '10', '-count', String(PERCENT_CALLS), '-concurrency', String(PERCENT_CALLS)],
        expectFlags: true,
        shows: 'percent-delay',
      },
    ],
    // kind polls with a smaller batch until the VirtualService is in force (both groups present)
    probe: {
      label: `${PERCENT_PROBE_CALLS} calls at once (kind's probe)`,
      port: 'grpc',
      args: ['-timeout', '10', '-count', String(PERCENT_PROBE_CALLS), '-concurrency', String(PERCENT_PROBE_CALLS)],
      expectFlags: true,
      shows: 'percent-delay',
    },
  },
  {
    name: 'tls-passthrough',
    summary: 'the same delay behind a port named tls: opaque TCP, not delayed; the plaintext control in the same run is',
    virtualService: 'delay.yaml',
    calls: [
      { label: 'plaintext control (port grpc)', port: 'grpc', args: ['-timeout', '10'], expectFlags: true, shows: 'delay' },
      { label: 'TLS (port tls)', port: 'tls', args: ['-timeout', '10'], expectFlags: true, shows: 'passthrough' },
    ],
  },
];

/** Unfaulted calls before the faults (and, in kind, again after the VirtualService is deleted). */
export const baselineCall = (port: Port): Call => ({
  label: `baseline (${port})`,
  port,
  args: ['-timeout', '10', '-count', '3'],
  expectFlags: true,
  shows: 'no-delay',
});

export function loadVirtualService(file: string): VirtualServiceModel {
  const path = join(istioDir, file);
  return readVirtualService(readFileSync(path, 'utf8'), `k8s/istio/${file}`);
}

// ---------------------------------------------------------------------------------------------------
// Predictions: what Istio's sidecar does to a call, from the VirtualService model.

/** Latency slack above a delay, and the ceiling for an undelayed call: generous, for loaded CI machines. */
export const DELAY_SLACK_MS = 2000;
export const UNDELAYED_MAX_MS = 1500;

export interface Bound {
  lo: number;
  hi: number;
}

/**
 * The delayed count of `n` independent calls delayed with probability `p` must fall in mean ± 4 standard
 * deviations (rounded outward): for n = 100, p = 0.5 that is 30..70, which a correct proxy misses about
 * 3 times in 100,000 runs (binomialOutside gives the exact figure).
 */
export function binomialBound(n: number, p: number): Bound {
  const mean = n * p;
  const sd = Math.sqrt(n * p * (1 - p));
  return { lo: Math.max(0, Math.floor(mean - 4 * sd)), hi: Math.min(n, Math.ceil(mean + 4 * sd)) };
}

/** P(X < lo or X > hi) for X ~ Binomial(n, p): the chance that a correct proxy fails the bound. */
export function binomialOutside(n: number, p: number, { lo, hi }: Bound): number {
  let logC = 0; // log C(n, k), built up incrementally
  let inside = 0;
  for (let k = 0; k <= n; k++) {
    if (k > 0) logC += Math.log(n - k + 1) - Math.log(k);
    const pk = p === 0 ? (k === 0 ? 1 : 0) : p === 1 ? (k === n ? 1 : 0) : Math.exp(logC + k * Math.log(p) + (n - k) * Math.log(1 - p));
    if (k >= lo && k <= hi) inside += pk;
  }
  return Math.max(0, 1 - inside);
}

export type LatencyExpectation =
  | { kind: 'range'; minMs: number; maxMs: number }
  /** each call either undelayed (< undelayedMaxMs) or delayed (delayMs .. delayedMaxMs), nothing between */
  | { kind: 'mixed'; delayMs: number; percent: number; undelayedMaxMs: number; delayedMaxMs: number; count: number; bound: Bound };

/** What the server's access log must show for the call. */
export type ServerSees =
  | 'answered' // logged OK
  | 'late' // logged OK, and it arrived at least the delay after the client started it
  | 'nothing' // no entry (aborted, or no route, in the client's sidecar)
  | 'never-ok'; // no OK entry: never forwarded, or logged DEADLINE_EXCEEDED / CANCELLED

export interface Prediction {
  call: Call;
  route: string;
  code: number;
  details?: string;
  latency: LatencyExpectation;
  server: ServerSees;
  /** the response flag the client sidecar's access log shows (kind) */
  flag: 'DI' | 'FI' | 'NR' | null;
  /** requests in the run */
  count: number;
  timeoutMs: number;
}

export class ScenarioError extends Error {
  override name = 'ScenarioError';
}

function flagValue(args: readonly string[], name: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const m = new RegExp(`^--?${name}(?:=(.*))?$`).exec(args[i]!);
    if (m) value = m[1] ?? args[++i];
  }
  return value;
}

/** The metadata a call sends with `-H 'key: value'` (keys lower case, as the client sends them). */
export function callHeaders(args: readonly string[]): Map<string, string> {
  const headers = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const m = /^--?H(?:=(.*))?$/.exec(args[i]!);
    if (!m) continue;
    const text = m[1] ?? args[++i] ?? '';
    const colon = text.indexOf(':');
    headers.set(text.slice(0, colon).trim().toLowerCase(), text.slice(colon + 1).trim());
  }
  return headers;
}

/** Headers every call carries whatever -H says: a route matching on them cannot be predicted from the table. */
const AUTOMATIC_HEADERS = new Set(['content-type', 'te', 'user-agent', 'grpc-timeout', 'grpc-encoding', 'grpc-accept-encoding', 'host']);

function stringMatches(m: StringMatch, value: string | undefined, ignoreCase = false): boolean {
  if (value === undefined) return false;
  if (m.kind === 'present') return true;
  const v = ignoreCase ? value.toLowerCase() : value;
  const want = ignoreCase ? m.value.toLowerCase() : m.value;
  if (m.kind === 'exact') return v === want;
  if (m.kind === 'prefix') return v.startsWith(want);
  return new RegExp(`^(?:${m.value})$`, ignoreCase ? 'iu' : 'u').test(value);
}

function conditionMatches(c: MatchCondition, headers: Map<string, string>, where: string): boolean {
  if (c.uri && !stringMatches(c.uri, SAY_HELLO_PATH, c.ignoreUriCase)) return false;
  if (c.method && !stringMatches(c.method, 'POST')) return false;
  return c.headers.every((h) => {
    if (AUTOMATIC_HEADERS.has(h.name)) throw new ScenarioError(`${where}: a match on ${h.name}, which every call sends, cannot be predicted`);
    return stringMatches(h.match, headers.get(h.name)) !== h.negate;
  });
}

/** The route the sidecar picks for a call with these headers, or undefined (no route: NR). */
export function selectRoute(vs: VirtualServiceModel, headers: Map<string, string>): number | undefined {
  const i = vs.routes.findIndex((r) => r.match === null || r.match.some((c) => conditionMatches(c, headers, vs.file)));
  return i < 0 ? undefined : i;
}

/** What `call` must show with `vs` in force (null: no VirtualService, the baseline). */
export function predict(scenario: Scenario, call: Call, vs: VirtualServiceModel | null): Prediction {
  const where = `scenario ${scenario.name}, call "${call.label}" (${vs?.file ?? 'no VirtualService'})`;
  const count = Number(flagValue(call.args, 'count') ?? 1);
  const timeoutMs = Number(flagValue(call.args, 'timeout') ?? 1) * 1000;
  const base = { call, count, timeoutMs };
  const undelayed: LatencyExpectation = { kind: 'range', minMs: 0, maxMs: Math.min(UNDELAYED_MAX_MS, timeoutMs) };
  const ok = (route: string): Prediction => ({ ...base, route, code: 0, latency: undelayed, server: 'answered', flag: null });
  let prediction: Prediction;
  if (vs === null) {
    prediction = ok('(no VirtualService)');
  } else if (call.port === 'tls') {
    prediction = ok('(tls port: opaque TCP, no HTTP route applies)');
  } else {
    const index = selectRoute(vs, callHeaders(call.args));
    if (index === undefined) {
      // Envoy's "no route" local reply: 404, which a gRPC client sees as UNIMPLEMENTED
      prediction = { ...base, route: '(none: NR)', code: 12, latency: undelayed, server: 'nothing', flag: 'NR' };
    } else {
      const route = vs.routes[index]!;
      // a route timeout is for the stream scenarios (stream-scenarios.ts); a unary call's prediction ignores it
      if (route.timeoutMs !== undefined) throw new ScenarioError(`${where}: a route timeout is predicted for streams only (e2e/stream-scenarios.ts)`);
      const { delay, abort } = route.fault;
      const delayMs = delay && delay.percent > 0 ? delay.ms : 0;
      if (delay && delay.percent > 0 && delay.percent < 100) {
        if (abort && abort.percent > 0) throw new ScenarioError(`${where}: a partial delay together with an abort is not predicted`);
        if (delayMs >= timeoutMs) throw new ScenarioError(`${where}: a partial delay beyond the deadline is not predicted`);
        const p = delay.percent / 100;
        prediction = {
          ...base,
          route: route.name,
          code: 0,
          latency: {
            kind: 'mixed',
            delayMs,
            percent: delay.percent,
            undelayedMaxMs: Math.min(UNDELAYED_MAX_MS, delayMs / 2),
            delayedMaxMs: delayMs + DELAY_SLACK_MS,
            count,
            bound: binomialBound(count, p),
          },
          server: 'answered',
          flag: 'DI',
        };
      } else if (abort && abort.percent > 0 && abort.percent < 100) {
        throw new ScenarioError(`${where}: an abort for ${abort.percent} % of calls is not predicted per call`);
      } else if (delayMs >= timeoutMs) {
        // the client's deadline passes while the sidecar holds the call: it is never forwarded
        prediction = {
          ...base,
          route: route.name,
          code: 4,
          latency: { kind: 'range', minMs: timeoutMs - 20, maxMs: timeoutMs + 1500 },
          server: 'never-ok',
          flag: 'DI',
        };
      } else if (abort && abort.percent >= 100) {
        prediction = {
          ...base,
          route: route.name,
          code: abort.grpcStatus,
          details: 'fault filter abort',
          latency: delayMs > 0 ? { kind: 'range', minMs: delayMs, maxMs: delayMs + DELAY_SLACK_MS } : undelayed,
          server: 'nothing',
          flag: 'FI',
        };
      } else if (delayMs > 0) {
        prediction = { ...base, route: route.name, code: 0, latency: { kind: 'range', minMs: delayMs, maxMs: delayMs + DELAY_SLACK_MS }, server: 'late', flag: 'DI' };
      } else {
        prediction = ok(route.name);
      }
    }
  }
  checkShows(where, call.shows, prediction);
  return prediction;
}

function checkShows(where: string, shows: Shows, p: Prediction): void {
  const delayed = p.latency.kind === 'range' && p.latency.minMs > 0 && p.code === 0;
  const fine =
    shows === 'delay'
      ? delayed && p.count === 1
      : shows === 'no-delay' || shows === 'passthrough'
        ? p.code === 0 && p.latency.kind === 'range' && p.latency.minMs === 0 && (shows === 'no-delay' || p.call.port === 'tls')
        : shows === 'abort'
          ? p.code !== 0 && p.code !== 4 && p.details === 'fault filter abort'
          : shows === 'deadline'
            ? p.code === 4
            : p.latency.kind === 'mixed';
  if (!fine) {
    throw new ScenarioError(
      `${where}: the call is there to show "${shows}", but the VirtualService predicts ${statusName(p.code)}` +
        `${p.latency.kind === 'range' ? ` in ${p.latency.minMs}..${p.latency.maxMs} ms` : ' with a partial delay'} (route ${p.route})`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------
// The client's command line and the checks of its outcome, shared by both runners.

const seconds = (ms: number) => `${Math.round(ms)}ms`;

/** Client arguments after -server_addr: the call's own, then -json and the -expect_* flags. */
export function clientArgs(p: Prediction): string[] {
  const args = [...(p.call.port === 'tls' ? ['-tls'] : []), ...p.call.args, '-json'];
  if (p.call.expectFlags) {
    args.push('-expect_code', statusName(p.code));
    if (p.latency.kind === 'range') {
      if (p.latency.minMs > 0) args.push('-expect_min_latency', seconds(p.latency.minMs));
      args.push('-expect_max_latency', seconds(p.latency.maxMs));
    } else {
      args.push('-expect_max_latency', seconds(p.latency.delayedMaxMs));
    }
  }
  return args;
}

/** The process exit code the call must end with. */
export function expectedExit(p: Prediction): number {
  return p.call.expectFlags || p.code === 0 ? 0 : exitCodeForStatus(p.code);
}

/** One request of the client's `-json` document (the fields these checks read). */
export interface ClientRequest {
  start: string;
  latency_ms: number;
  code: number;
  status: string;
  details?: string;
  hostname?: string;
  message?: string;
}

export interface ClientRun {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

export interface CallOutcome {
  requests: ClientRequest[];
  /** requests whose latency put them in the delayed group (mixed expectations) */
  delayed: number;
  problems: string[];
}

export function parseClientJson(stdout: string): { requests: ClientRequest[] } | undefined {
  try {
    const doc = JSON.parse(stdout) as { requests?: unknown };
    return Array.isArray(doc.requests) ? (doc as { requests: ClientRequest[] }) : undefined;
  } catch {
    return undefined;
  }
}

const codeOf = (r: ClientRequest) => (typeof r.code === 'number' ? r.code : STATUS_NAMES.indexOf(String(r.status) as (typeof STATUS_NAMES)[number]));

/** Everything wrong with a client run against its prediction (empty: it shows what the scenario says). */
export function checkCall(p: Prediction, run: ClientRun): CallOutcome {
  const problems: string[] = [];
  const say = (what: string) => problems.push(`${p.call.label}: ${what}`);
  const wantExit = expectedExit(p);
  if (run.exitCode !== wantExit) say(`exit ${run.exitCode}, want ${wantExit}; stderr: ${run.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  const doc = parseClientJson(run.stdout);
  if (!doc) {
    say(`no -json document on stdout: ${JSON.stringify(run.stdout.slice(0, 200))}`);
    return { requests: [], delayed: 0, problems };
  }
  const { requests } = doc;
  if (requests.length !== p.count) say(`${requests.length} requests in the JSON, want ${p.count}`);
  let delayed = 0;
  for (const [i, r] of requests.entries()) {
    const which = p.count > 1 ? ` (request ${i + 1})` : '';
    if (codeOf(r) !== p.code) say(`status ${r.status} (${r.code})${which}, want ${statusName(p.code)}${r.details ? `: ${r.details}` : ''}`);
    if (p.details !== undefined && r.details !== p.details) say(`details ${JSON.stringify(r.details)}${which}, want ${JSON.stringify(p.details)}`);
    const ms = r.latency_ms;
    if (typeof ms !== 'number') {
      say(`no latency_ms${which}`);
      continue;
    }
    if (p.latency.kind === 'range') {
      if (ms < p.latency.minMs || ms > p.latency.maxMs) say(`latency ${ms.toFixed(1)} ms${which}, want ${p.latency.minMs}..${p.latency.maxMs} ms`);
    } else {
      const l = p.latency;
      if (ms >= l.delayMs && ms <= l.delayedMaxMs) delayed++;
      else if (!(ms < l.undelayedMaxMs)) {
        say(`latency ${ms.toFixed(1)} ms${which} is neither undelayed (< ${l.undelayedMaxMs}) nor delayed (${l.delayMs}..${l.delayedMaxMs})`);
      }
    }
  }
  if (p.latency.kind === 'mixed') {
    const { lo, hi } = p.latency.bound;
    if (delayed < lo || delayed > hi) say(`${delayed} of ${requests.length} delayed, want ${lo}..${hi} (${p.latency.percent} %)`);
  }
  return { requests, delayed, problems };
}

/** A server access-log entry (the fields these checks read). */
export interface ServerLogEntry {
  time: string;
  peer: string;
  method: string;
  authority: string;
  status: string;
  code: number;
}

/** The server's access-log entries for the call (those written while it ran) against the prediction. */
export function checkServer(p: Prediction, entries: ServerLogEntry[], requests: ClientRequest[]): string[] {
  const calls = entries.filter((e) => e.method === SAY_HELLO_PATH);
  const problems: string[] = [];
  const say = (what: string) => problems.push(`${p.call.label}: server ${what}`);
  const summary = () => JSON.stringify(calls.map((e) => `${e.time} ${e.status}`));
  switch (p.server) {
    case 'nothing':
      if (calls.length > 0) say(`saw ${calls.length} call(s), want none: ${summary()}`);
      break;
    case 'never-ok':
      if (calls.some((e) => e.status === 'OK')) say(`answered OK a call its client had given up on: ${summary()}`);
      break;
    case 'answered':
    case 'late': {
      const okCalls = calls.filter((e) => e.status === 'OK');
      if (okCalls.length < p.count) say(`logged ${okCalls.length} OK call(s), want ${p.count}: ${summary()}`);
      if (p.server === 'late' && p.latency.kind === 'range' && requests[0] && okCalls[0]) {
        const lateBy = Date.parse(okCalls[0].time) - Date.parse(requests[0].start);
        if (!(lateBy >= p.latency.minMs - 50)) say(`received the call ${lateBy} ms after the client started it, want >= ${p.latency.minMs} (the delay)`);
      }
      break;
    }
  }
  return problems;
}

/** Every scenario with the VirtualService it reads and its predictions; throws ScenarioError/UnsupportedVirtualService. */
export interface ScenarioPlan {
  scenario: Scenario;
  vs: VirtualServiceModel;
  predictions: Prediction[];
  /** what kind polls for after applying the VirtualService */
  probe: Prediction;
}

export function planScenarios(only?: readonly string[]): ScenarioPlan[] {
  const unknown = (only ?? []).filter((n) => !scenarios.some((s) => s.name === n));
  if (unknown.length > 0) throw new ScenarioError(`unknown scenario ${unknown.join(', ')} (known: ${scenarios.map((s) => s.name).join(', ')})`);
  return scenarios
    .filter((s) => !only || only.length === 0 || only.includes(s.name))
    .map((scenario) => {
      const vs = loadVirtualService(scenario.virtualService);
      return {
        scenario,
        vs,
        predictions: scenario.calls.map((c) => predict(scenario, c, vs)),
        probe: predict(scenario, scenario.probe ?? scenario.calls[0]!, vs),
      };
    });
}
