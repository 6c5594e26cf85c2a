// The stream scenarios, one table read by both runners as e2e/scenarios.ts is for unary calls: the local e2e
// (HAProxy as the sidecar and as the ingress gateway, e2e/stream-local.ts, test/e2e-streams.test.ts) and the
// kind e2e (a real Istio sidecar and ingress gateway, e2e/kind.ts). What each stream must show (how it ends,
// the exit code, how many messages, when) is predicted from the VirtualService (route timeout, delay) and
// the stream's own shape (-messages, -stream_interval), never written by hand. docs/streams.md says what each
// timeout does to a stream in Envoy, and where the local HAProxy differs.
import { exitCodeForStatus } from '../src/exit-codes.ts';
import { statusName } from '../src/status.ts';
import { loadVirtualService, ScenarioError, type ClientRun } from './scenarios.ts';
import type { VirtualServiceModel } from './virtual-service.ts';

/** The name the gateway is called by: one the bundled test certificate has (*.test.youtube.com), as k8s/gateway. */
export const GATEWAY_HOST = 'grpc-helloworld.test.youtube.com';

/** What a stream goes through: the client's sidecar (port `grpc`), or an ingress gateway that terminates TLS. */
export type StreamVia = 'sidecar' | 'gateway';

/** What a stream is there to show; checked against the prediction so that a scenario cannot go vacuous. */
export type StreamShows = 'complete' | 'cut' | 'delayed' | 'kept-alive';

export interface StreamCall {
  label: string;
  kind: 'server' | 'bidi';
  messages: number;
  /** -stream_interval, seconds */
  intervalS: number;
  /** -timeout: the client's deadline for the whole stream, seconds */
  timeoutS: number;
  /** -keepalive, seconds */
  keepaliveS?: number;
  shows: StreamShows;
}

export interface StreamScenario {
  name: string;
  summary: string;
  via: StreamVia;
  /** file under k8s/istio/ (sidecar scenarios); none: no VirtualService */
  virtualService?: string;
  /**
   * Envoy's stream_idle_timeout, which Istio sets to 0 (off) on every listener it builds: only the local
   * stand-in has one, so a scenario with it runs locally only (docs/streams.md).
   */
  streamIdleTimeoutMs?: number;
  calls: StreamCall[];
}

export const STREAM_IDLE_MS = 1000;

export const streamScenarios: StreamScenario[] = [
  {
    name: 'stream-gateway-tls',
    summary: 'a server stream through an ingress gateway that terminates TLS (ALPN h2), plaintext h2 to the server: every message, OK',
    via: 'gateway',
    calls: [{ label: 'server stream of 5 through the gateway', kind: 'server', messages: 5, intervalS: 0.1, timeoutS: 10, shows: 'complete' }],
  },
  {
    name: 'stream-timeout',
    summary: 'a route timeout of 2 s cuts a 10 s server stream (INTERNAL, exit 77, 5..25 of 100 messages); a bidi stream is timed from its half-close',
    via: 'sidecar',
    virtualService: 'stream-timeout.yaml',
    calls: [
      { label: 'server stream of 100, 0.1 s apart', kind: 'server', messages: 100, intervalS: 0.1, timeoutS: 30, shows: 'cut' },
      { label: 'bidi stream of 30, 0.1 s apart (3 s, timer from the half-close)', kind: 'bidi', messages: 30, intervalS: 0.1, timeoutS: 30, shows: 'complete' },
    ],
  },
  {
    name: 'stream-delay',
    summary: 'a fixed delay of 3 s holds a server stream before it reaches the server: every message, the first after the delay',
    via: 'sidecar',
    virtualService: 'delay.yaml',
    calls: [{ label: 'server stream of 5, 0.1 s apart', kind: 'server', messages: 5, intervalS: 0.1, timeoutS: 10, shows: 'delayed' }],
  },
  {
    name: 'stream-idle',
    summary: 'a stream idle timeout of 1 s (local only: Istio turns it off): replies 2 s apart are cut after the first, 0.3 s apart keep it alive, PINGs do not',
    via: 'sidecar',
    streamIdleTimeoutMs: STREAM_IDLE_MS,
    calls: [
      { label: 'replies 2 s apart', kind: 'server', messages: 3, intervalS: 2, timeoutS: 30, shows: 'cut' },
      { label: 'replies 0.3 s apart', kind: 'server', messages: 8, intervalS: 0.3, timeoutS: 30, shows: 'kept-alive' },
      { label: 'replies 2 s apart, -keepalive 0.3', kind: 'server', messages: 3, intervalS: 2, timeoutS: 30, keepaliveS: 0.3, shows: 'cut' },
    ],
  },
];

/** The stream scenarios a mesh can run: those without the local stand-in's idle timeout. */
export const meshStreamScenarios = () => streamScenarios.filter((s) => s.streamIdleTimeoutMs === undefined);

export interface Bound {
  lo: number;
  hi: number;
}

export interface StreamPrediction {
  call: StreamCall;
  /** the route in force ('(none)' without a VirtualService) */
  route: string;
  code: number;
  exit: number;
  /** messages received */
  messages: Bound;
  /** the whole stream, ms */
  latencyMs: Bound;
  /** the first message no earlier than this (a delay), ms since start */
  firstMessageMinMs: number;
  /** what ended it early, if anything */
  cutBy: 'route timeout' | 'stream idle timeout' | null;
  /** the response flag of the client sidecar's access log (kind) */
  flag: 'UT' | 'DI' | null;
}

/** Slack above a predicted time, for a loaded 2-core machine (and kubectl exec in kind). */
export const STREAM_SLACK_MS = 3000;

/** When the k-th reply (1-based) is sent, the stream's own schedule: SayHelloStream answers at once, then every interval. */
const replyAtMs = (c: StreamCall, k: number) => Math.round((k - 1) * c.intervalS * 1000);

export function predictStream(scenario: StreamScenario, call: StreamCall, vs: VirtualServiceModel | null): StreamPrediction {
  const where = `scenario ${scenario.name}, stream "${call.label}"`;
  const route = vs?.routes.find((r) => r.match === null);
  if (vs && !route) throw new ScenarioError(`${where}: ${vs.file} has no catch-all route, which the stream scenarios need`);
  const delayMs = route?.fault.delay && route.fault.delay.percent >= 100 ? route.fault.delay.ms : 0;
  if (route?.fault.abort || (route?.fault.delay && route.fault.delay.percent < 100)) throw new ScenarioError(`${where}: an abort or a partial delay on a stream is not predicted`);
  const lastMs = replyAtMs(call, call.messages);
  const deadlineMs = call.timeoutS * 1000;
  const ok: StreamPrediction = {
    call,
    route: route?.name ?? '(none)',
    code: 0,
    exit: 0,
    messages: { lo: call.messages, hi: call.messages },
    latencyMs: { lo: delayMs + lastMs, hi: delayMs + lastMs + STREAM_SLACK_MS },
    firstMessageMinMs: delayMs,
    cutBy: null,
    flag: delayMs > 0 ? 'DI' : null,
  };
  if (delayMs + lastMs + STREAM_SLACK_MS >= deadlineMs) throw new ScenarioError(`${where}: -timeout ${call.timeoutS} leaves no room for the stream (its deadline would decide, not the mesh)`);
  const intervalMs = call.intervalS * 1000;
  let prediction = ok;
  // Envoy's route timeout runs from the end of the request: a server stream's request ends at once, a bidi
  // stream's at its half-close, after its last request (whose reply comes at once): only a server stream is cut.
  const timeoutMs = route?.timeoutMs;
  if (timeoutMs !== undefined && call.kind === 'server' && lastMs > timeoutMs) {
    if (timeoutMs + STREAM_SLACK_MS >= deadlineMs) throw new ScenarioError(`${where}: -timeout ${call.timeoutS} does not outlast the route timeout`);
    // about timeout/interval messages; the bounds are wide (a quarter of that, five more) for a busy machine
    const expected = timeoutMs / intervalMs;
    prediction = {
      ...ok,
      code: 13,
      exit: exitCodeForStatus(13),
      messages: { lo: Math.max(1, Math.floor(expected / 4)), hi: Math.min(call.messages - 1, Math.ceil(expected) + 5) },
      latencyMs: { lo: delayMs + timeoutMs, hi: delayMs + timeoutMs + STREAM_SLACK_MS },
      cutBy: 'route timeout',
      flag: 'UT',
    };
  } else if (scenario.streamIdleTimeoutMs !== undefined && intervalMs > scenario.streamIdleTimeoutMs) {
    // cut after the first reply, once nothing more came for the idle timeout; PINGs are not stream activity
    if (intervalMs < scenario.streamIdleTimeoutMs + 500) throw new ScenarioError(`${where}: the interval is too close to the idle timeout to predict`);
    const idle = scenario.streamIdleTimeoutMs;
    prediction = { ...ok, code: 13, exit: exitCodeForStatus(13), messages: { lo: 1, hi: 1 }, latencyMs: { lo: idle, hi: idle + STREAM_SLACK_MS }, cutBy: 'stream idle timeout', flag: null };
  }
  checkStreamShows(where, call.shows, prediction);
  return prediction;
}

function checkStreamShows(where: string, shows: StreamShows, p: StreamPrediction): void {
  const fine =
    shows === 'cut'
      ? p.cutBy !== null && p.messages.hi < p.call.messages
      : shows === 'delayed'
        ? p.code === 0 && p.firstMessageMinMs > 0
        : shows === 'kept-alive'
          ? p.code === 0 && p.cutBy === null && p.call.intervalS > 0
          : p.code === 0 && p.messages.lo === p.call.messages;
  if (!fine) {
    throw new ScenarioError(`${where}: the stream is there to show "${shows}", but the prediction is ${statusName(p.code)} after ${p.messages.lo}..${p.messages.hi} messages (route ${p.route})`);
  }
}

/** Client arguments after -server_addr. */
export function streamClientArgs(scenario: StreamScenario, c: StreamCall): string[] {
  return [
    ...(scenario.via === 'gateway' ? ['-tls', '-server_host_override', GATEWAY_HOST] : []),
    '-stream', c.kind,
    '-messages', String(c.messages),
    '-stream_interval', String(c.intervalS),
    '-timeout', String(c.timeoutS),
    ...(c.keepaliveS !== undefined ? ['-keepalive', String(c.keepaliveS)] : []),
    '-json',
    'stream',
  ];
}

/** One stream of the client's `-json` document (the fields these checks read). */
export interface StreamRequestJson {
  start: string;
  latency_ms: number;
  code: number;
  status: string;
  details?: string;
  messages?: { index: number; message: string; hostname?: string; ms_since_start: number }[];
}

export interface StreamOutcome {
  stream?: StreamRequestJson;
  received: number;
  problems: string[];
}

const outside = (x: number, b: Bound) => x < b.lo || x > b.hi;

/** Everything wrong with a client run against its prediction (empty: it shows what the scenario says). */
export function checkStream(p: StreamPrediction, run: ClientRun): StreamOutcome {
  const problems: string[] = [];
  const say = (what: string) => problems.push(`${p.call.label}: ${what}`);
  if (run.exitCode !== p.exit) say(`exit ${run.exitCode}, want ${p.exit}; stderr: ${run.stderr.trim().split('\n').slice(-2).join(' | ')}`);
  let stream: StreamRequestJson | undefined;
  try {
    stream = (JSON.parse(run.stdout) as { requests: StreamRequestJson[] }).requests[0];
  } catch {
    // said below
  }
  if (!stream) {
    say(`no -json document with a stream on stdout: ${JSON.stringify(run.stdout.slice(0, 200))}`);
    return { received: 0, problems };
  }
  const received = stream.messages?.length ?? 0;
  if (stream.code !== p.code) say(`status ${stream.status}, want ${statusName(p.code)}${stream.details ? `: ${stream.details}` : ''}`);
  if (outside(received, p.messages)) say(`${received} of ${p.call.messages} messages, want ${p.messages.lo}..${p.messages.hi}`);
  if (outside(stream.latency_ms, p.latencyMs)) say(`ended after ${stream.latency_ms.toFixed(0)} ms, want ${p.latencyMs.lo}..${p.latencyMs.hi} ms`);
  const first = stream.messages?.[0]?.ms_since_start;
  if (p.firstMessageMinMs > 0 && !(first !== undefined && first >= p.firstMessageMinMs)) say(`first message at ${first?.toFixed(0)} ms, want >= ${p.firstMessageMinMs} (the delay)`);
  return { stream, received, problems };
}

/** A server access-log line of a stream (the fields these checks read). */
export interface StreamLogEntry {
  time: string;
  method: string;
  authority: string;
  status: string;
  messages_sent?: number;
}

/** The server's view: the stream reached it (late by the delay), at the gateway's host, and ended as its client saw. */
export function checkStreamServer(scenario: StreamScenario, p: StreamPrediction, entries: StreamLogEntry[], outcome: StreamOutcome): string[] {
  const problems: string[] = [];
  const say = (what: string) => problems.push(`${p.call.label}: server ${what}`);
  const method = p.call.kind === 'server' ? '/helloworld.GreeterStream/SayHelloStream' : '/helloworld.GreeterStream/SayHelloBidi';
  const mine = entries.filter((e) => e.method === method);
  if (mine.length !== 1) return [`${p.call.label}: server logged ${mine.length} ${method} streams, want 1: ${JSON.stringify(mine)}`];
  const e = mine[0]!;
  // a cut stream: its client (the proxy) went away, so the server saw CANCELLED, having sent at least what arrived
  const want = p.cutBy ? 'CANCELLED' : 'OK';
  if (e.status !== want) say(`logged ${e.status}, want ${want}`);
  if ((e.messages_sent ?? 0) < outcome.received) say(`sent ${e.messages_sent} messages, fewer than the ${outcome.received} received`);
  if (scenario.via === 'gateway' && e.authority !== GATEWAY_HOST) say(`saw :authority ${e.authority}, want ${GATEWAY_HOST} (the gateway's host)`);
  if (p.firstMessageMinMs > 0 && outcome.stream) {
    const arrivedAfter = Date.parse(e.time) - Date.parse(outcome.stream.start); // the log's time: when the stream began there
    if (!(arrivedAfter >= p.firstMessageMinMs - 50)) say(`received the stream ${arrivedAfter.toFixed(0)} ms after the client started it, want >= ${p.firstMessageMinMs} (the delay)`);
  }
  return problems;
}

export interface StreamPlan {
  scenario: StreamScenario;
  vs: VirtualServiceModel | null;
  predictions: StreamPrediction[];
}

export function planStreamScenarios(list: readonly StreamScenario[] = streamScenarios): StreamPlan[] {
  return list.map((scenario) => {
    const vs = scenario.virtualService ? loadVirtualService(scenario.virtualService) : null;
    return { scenario, vs, predictions: scenario.calls.map((c) => predictStream(scenario, c, vs)) };
  });
}
