// The resilience scenarios: retries, outlier detection, circuit breaking, load balancing, mirroring. One table
// read by both runners: the local e2e (HAProxy rendered from the same manifests, resilience-local.ts) for what
// HAProxy can model, and the kind e2e (kind.ts) for every one of them against a real sidecar.
//
// A scenario names the k8s/istio files it applies (none: Istio's defaults), the servers behind the Service
// (replicas of version v1 and v2, each with its own flags: -fail_rate, -crash_rate, -sleep) and one client
// command. What the run must show is PREDICTED from the manifests (retry attempts and conditions, the
// outlier threshold, the pool's limits, the balancer) by planResilience(), with bounds that a correct proxy
// misses at most a few times in 100,000 runs, and checked against the client's -json document and the
// replicas' access logs by checkResilience().
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { binomialBound, istioDir, type Bound, type ClientRequest } from './scenarios.ts';
import { readDestinationRule, type BackendPolicy, type TrafficPolicy } from './traffic-policy.ts';
import { ISTIO_DEFAULT_RETRIES, readVirtualService, retryPolicy, type RetryPolicy } from './virtual-service.ts';

export type Version = 'v1' | 'v2';

export interface Replicas {
  replicas: number;
  /** server flags */
  args: string[];
}

export interface ResilienceScenario {
  name: string;
  summary: string;
  /** files under k8s/istio/, applied together (none: no VirtualService or DestinationRule, Istio's defaults) */
  files: string[];
  servers: { v1: Replicas; v2?: Replicas };
  /** client arguments, without -server_addr and -json */
  args: string[];
  /** `sidecar`: the client's calls go through its sidecar (HAProxy locally); `none`: straight to the Service (kube-proxy) */
  path?: 'sidecar' | 'none';
  /** a scenario that runs with one runner only, and why not with the other (HAProxy cannot model it, or kind's client always has a sidecar) */
  onlyIn?: { runner: 'kind' | 'local'; because: string };
}

export type Expectation =
  /** the calls that fail (with `code`), within a binomial bound: the server's -fail_rate, after the retries */
  | { kind: 'failure-rate'; failRate: number; p: number; bound: Bound; code: number }
  /** a replica in crash mode is ejected: at most `maxFailures` calls fail, none in the second half; it answers nothing */
  | { kind: 'ejection'; maxFailures: number; bad: Version }
  /** every attempt hangs: each one cut after `perTryMs` and retried, `tries` in all, then UNAVAILABLE */
  | { kind: 'per-try-timeout'; tries: number; perTryMs: number }
  /** every call OK although a replica crashes: the retries took them elsewhere */
  | { kind: 'retried'; bad: Version }
  /** at most `maxOk` calls served at once (each after `sleepMs`); the rest fail fast, UNAVAILABLE */
  | { kind: 'overflow'; maxOk: number; sleepMs: number }
  /** every replica answered between lo and hi calls */
  | { kind: 'spread'; bound: Bound; balancer: string }
  /** one replica answered every call */
  | { kind: 'sticky'; why: string }
  /** every call answered by v1; v2 logged a copy of each, its authority ending in -shadow */
  | { kind: 'mirror' };

export interface ResiliencePlan {
  scenario: ResilienceScenario;
  /** the sidecar's policy as the manifests set it (the local backend) */
  policy: BackendPolicy;
  expectation: Expectation;
  count: number;
  /** kind: the VirtualService and DestinationRule names to delete afterwards */
  objects: Array<{ kind: 'VirtualService' | 'DestinationRule'; name: string }>;
}

export const RESILIENCE_CALLS = 100;

const V1_TWO: Replicas = { replicas: 2, args: [] };

/** A load-balancing scenario: two plain replicas, one DestinationRule, the calls on one connection. */
function balancing(name: string, file: string, summary: string, args: string[]): ResilienceScenario {
  return { name, summary, files: [file], servers: { v1: V1_TWO }, args: ['-timeout', '10', ...args] };
}

export const resilienceScenarios: ResilienceScenario[] = [
  {
    name: 'fail-rate-no-retries',
    summary: '-fail_rate 0.5 with retries off (attempts: 0): the client sees about half the calls fail',
    files: ['retries-off.yaml'],
    servers: { v1: { replicas: 2, args: ['-fail_rate', '0.5'] } },
    args: ['-timeout', '10', '-count', String(RESILIENCE_CALLS), '-concurrency', '10'],
  },
  {
    name: 'fail-rate-default-retries',
    summary: "-fail_rate 0.5 with Istio's default retries (2, on unavailable): about 0.5^3 = 12.5 % fail",
    files: ['retries-default.yaml'],
    servers: { v1: { replicas: 2, args: ['-fail_rate', '0.5'] } },
    args: ['-timeout', '10', '-count', String(RESILIENCE_CALLS), '-concurrency', '10'],
    onlyIn: { runner: 'kind', because: 'HAProxy cannot retry on a gRPC status (retryOn unavailable): the status is in an HTTP 200 response' },
  },
  {
    name: 'ejection',
    summary: 'two replicas, v2 in crash mode, outlier detection: v2 is ejected and answers nothing; at most 3 calls fail, all early',
    files: ['outlier-detection.yaml'],
    servers: { v1: { replicas: 1, args: [] }, v2: { replicas: 1, args: ['-crash_rate', '1'] } },
    args: ['-timeout', '5', '-count', '30', '-interval', '0.1'],
  },
  {
    name: 'retry-on-reset',
    summary: 'two replicas, v2 in crash mode, retries on reset (retries.yaml): every call OK, the crashed ones retried on v1',
    files: ['retries.yaml'],
    servers: { v1: { replicas: 1, args: [] }, v2: { replicas: 1, args: ['-crash_rate', '1'] } },
    args: ['-timeout', '10', '-count', '20', '-interval', '0.05'],
  },
  {
    name: 'per-try-timeout',
    summary: 'retries.yaml, every call hanging (x-helloworld-fault: hang): each attempt cut after 1 s and retried, 4 in all, then UNAVAILABLE',
    files: ['retries.yaml'],
    servers: { v1: { replicas: 1, args: [] } },
    args: ['-timeout', '10', '-count', '2', '-concurrency', '2', '-H', 'x-helloworld-fault: hang'],
  },
  {
    name: 'circuit-breaker',
    summary: 'a slow server (-sleep 2), 2 calls in flight and 1 pending allowed: of 10 at once at most 3 OK, the rest UNAVAILABLE at once',
    files: ['circuit-breaker.yaml'],
    servers: { v1: { replicas: 1, args: ['-sleep', '2'] } },
    args: ['-timeout', '10', '-count', '10', '-concurrency', '10'],
  },
  balancing('round-robin', 'lb-round-robin.yaml', 'ROUND_ROBIN over two replicas: 20 calls on one connection, 10 each (within 2)', ['-count', '20']),
  balancing('least-request', 'lb-least-request.yaml', 'LEAST_REQUEST over two replicas: 40 sequential calls spread over both', ['-count', '40']),
  balancing('random', 'lb-random.yaml', 'RANDOM over two replicas: each gets a binomial share of 40 calls', ['-count', '40']),
  balancing('consistent-hash', 'lb-consistent-hash.yaml', "consistent hash on x-user: 20 calls with 'x-user: alice' all answered by one replica", [
    '-count',
    '20',
    '-H',
    'x-user: alice',
  ]),
  {
    name: 'connections-pinned',
    summary: 'no sidecar (kube-proxy balances connections): 20 calls on one connection all go to one replica',
    files: [],
    servers: { v1: V1_TWO },
    args: ['-timeout', '10', '-count', '20', '-concurrency', '4'],
    path: 'none',
    onlyIn: { runner: 'local', because: "kind's client pod has a sidecar, which balances every call (round-robin and the others show it)" },
  },
  {
    name: 'connections-spread',
    summary: 'no sidecar: -connections 4, the connections taking turns over two replicas, 10 calls each',
    files: [],
    servers: { v1: V1_TWO },
    args: ['-timeout', '10', '-count', '20', '-concurrency', '4', '-connections', '4'],
    path: 'none',
    onlyIn: { runner: 'local', because: "kind's client pod has a sidecar, which balances every call (round-robin and the others show it)" },
  },
  {
    name: 'mirror',
    summary: 'mirror to v2 (mirror.yaml): v1 answers every call, v2 logs a copy of each with the authority ending in -shadow',
    files: ['mirror.yaml'],
    servers: { v1: { replicas: 1, args: [] }, v2: { replicas: 1, args: [] } },
    args: ['-timeout', '10', '-count', '10'],
    onlyIn: { runner: 'kind', because: 'HAProxy has no request mirroring, and no subsets' },
  },
];

/** Where a scenario runs: `local` (HAProxy) and `kind`, or one of them. */
export const runsLocally = (s: ResilienceScenario) => s.onlyIn?.runner !== 'kind';
export const runsInKind = (s: ResilienceScenario) => s.onlyIn?.runner !== 'local';

function flag(args: readonly string[], name: string): string | undefined {
  const i = args.lastIndexOf(`-${name}`);
  return i < 0 ? undefined : args[i + 1];
}

interface Manifests {
  retries: RetryPolicy;
  traffic: TrafficPolicy;
  mirror: boolean;
  objects: ResiliencePlan['objects'];
}

/** The scenario's files: the VirtualService's retries (read by virtual-service.ts) and the DestinationRule's policy. */
function readManifests(files: readonly string[]): Manifests {
  const out: Manifests = { retries: ISTIO_DEFAULT_RETRIES, traffic: {}, mirror: false, objects: [] };
  for (const file of files) {
    const text = readFileSync(join(istioDir, file), 'utf8');
    const where = `k8s/istio/${file}`;
    for (const doc of parseAllDocuments(text)) {
      const o = doc.toJS() as { kind?: string; metadata?: { name?: string }; spec?: { http?: Array<Record<string, unknown>>; trafficPolicy?: unknown } } | null;
      if (!o) continue;
      if (o.kind === 'VirtualService') {
        out.objects.push({ kind: 'VirtualService', name: String(o.metadata?.name) });
        const route = o.spec?.http?.[0] ?? {};
        if ('mirror' in route) out.mirror = true; // kind only: the local reader refuses mirrors
        else out.retries = retryPolicy(readVirtualService(doc.toString(), where).routes[0]!);
      } else if (o.kind === 'DestinationRule') {
        out.objects.push({ kind: 'DestinationRule', name: String(o.metadata?.name) });
        if (o.spec?.trafficPolicy !== undefined) out.traffic = readDestinationRule(doc.toString(), where).policy;
      }
    }
  }
  return out;
}

export class ResilienceError extends Error {
  override name = 'ResilienceError';
}

/** What the scenario must show, from its manifests and servers; throws ResilienceError when it would be vacuous. */
export function planResilienceScenario(scenario: ResilienceScenario): ResiliencePlan {
  const m = readManifests(scenario.files);
  const count = Number(flag(scenario.args, 'count') ?? 1);
  const v1 = scenario.servers.v1;
  const v2 = scenario.servers.v2;
  const replicas = v1.replicas + (v2?.replicas ?? 0);
  const where = `resilience scenario ${scenario.name}`;
  const bad: Version | undefined = v2 && flag(v2.args, 'crash_rate') === '1' ? 'v2' : undefined;
  const failRate = Number(flag(v1.args, 'fail_rate') ?? 0);
  let expectation: Expectation;
  const hangs = scenario.args.some((a) => /^x-helloworld-fault:\s*hang$/i.test(a));
  if (m.mirror) {
    expectation = { kind: 'mirror' };
  } else if (hangs) {
    const perTryMs = m.retries.perTryTimeoutMs;
    if (perTryMs === undefined || !m.retries.retryOn.includes('reset')) throw new ResilienceError(`${where}: hanging calls need a per-try timeout and retries on reset`);
    expectation = { kind: 'per-try-timeout', tries: m.retries.attempts + 1, perTryMs };
  } else if (failRate > 0) {
    // Envoy retries a trailers-only UNAVAILABLE (-fail_code's default) when retryOn has `unavailable`
    const retried = m.retries.attempts > 0 && m.retries.retryOn.includes('unavailable');
    const p = retried ? failRate ** (m.retries.attempts + 1) : failRate;
    expectation = { kind: 'failure-rate', failRate, p, bound: binomialBound(count, p), code: 14 };
  } else if (bad && m.traffic.outlier) {
    expectation = { kind: 'ejection', maxFailures: m.traffic.outlier.consecutiveErrors, bad };
  } else if (bad) {
    if (!(m.retries.attempts > 0 && m.retries.retryOn.includes('reset'))) throw new ResilienceError(`${where}: a crashing replica without retries on reset: calls would fail`);
    expectation = { kind: 'retried', bad };
  } else if (m.traffic.pool?.maxRequests !== undefined) {
    const sleepMs = Number(flag(v1.args, 'sleep') ?? 0) * 1000;
    if (sleepMs < 1000) throw new ResilienceError(`${where}: the circuit breaker needs a slow server (-sleep 1 or more) to fill the pool`);
    expectation = { kind: 'overflow', maxOk: m.traffic.pool.maxRequests + (m.traffic.pool.maxPending ?? 0), sleepMs };
  } else if (m.traffic.loadBalancer?.kind === 'header-hash') {
    const header = m.traffic.loadBalancer.header;
    if (!scenario.args.some((a) => a.toLowerCase().startsWith(`${header}:`))) throw new ResilienceError(`${where}: the calls do not send ${header}, which the hash is on`);
    expectation = { kind: 'sticky', why: `consistent hash on ${header}` };
  } else if (scenario.path === 'none' && Number(flag(scenario.args, 'connections') ?? 1) === 1) {
    expectation = { kind: 'sticky', why: 'one connection, balanced once by kube-proxy' };
  } else {
    const lb = scenario.path === 'none' ? 'connections in turn (kube-proxy)' : (m.traffic.loadBalancer?.kind ?? 'least-request');
    const exact = lb === 'round-robin' || scenario.path === 'none';
    const share = count / replicas;
    expectation = { kind: 'spread', balancer: lb, bound: exact ? { lo: Math.floor(share - 2), hi: Math.ceil(share + 2) } : binomialBound(count, 1 / replicas) };
    if (replicas < 2) throw new ResilienceError(`${where}: balancing needs two replicas`);
  }
  return { scenario, policy: { retries: m.retries, traffic: m.traffic }, expectation, count, objects: m.objects };
}

export function planResilience(only?: readonly string[]): ResiliencePlan[] {
  return resilienceScenarios.filter((s) => !only || only.length === 0 || only.includes(s.name)).map(planResilienceScenario);
}

/** One replica as its access log saw the run. */
export interface ReplicaLog {
  name: string;
  version: Version;
  /** SayHello calls answered OK, copies (mirrored) left out */
  ok: number;
  /** SayHello lines in its log */
  logged: number;
  /** lines whose authority ends in -shadow: mirrored copies */
  shadow: number;
}

export interface Observed {
  requests: Array<ClientRequest & { mesh_attempt?: number | null }>;
  replicas: ReplicaLog[];
}

/** A SayHello access-log line (the fields the checks read) into a replica's counts. */
export function replicaLog(name: string, version: Version, entries: ReadonlyArray<{ method: string; status: string; authority: string }>): ReplicaLog {
  const calls = entries.filter((e) => e.method === '/helloworld.Greeter/SayHello');
  const shadow = calls.filter((e) => e.authority.endsWith('-shadow'));
  return { name, version, ok: calls.filter((e) => e.status === 'OK' && !e.authority.endsWith('-shadow')).length, logged: calls.length, shadow: shadow.length };
}

/** Everything the run shows that the plan does not (empty: it passed). */
export function checkResilience(plan: ResiliencePlan, seen: Observed): string[] {
  const problems: string[] = [];
  const say = (what: string) => problems.push(`${plan.scenario.name}: ${what}`);
  const { requests, replicas } = seen;
  if (requests.length !== plan.count) say(`${requests.length} requests in the client's JSON, want ${plan.count}`);
  const failed = requests.filter((r) => r.status !== 'OK');
  const counts = replicas.map((r) => `${r.name} ${r.ok}`).join(', ');
  const e = plan.expectation;
  switch (e.kind) {
    case 'failure-rate': {
      const wrong = failed.filter((r) => r.code !== e.code);
      if (wrong.length) say(`failures other than code ${e.code}: ${wrong.map((r) => `${r.status} ${r.details ?? ''}`).join('; ')}`);
      if (failed.length < e.bound.lo || failed.length > e.bound.hi) say(`${failed.length} of ${requests.length} failed, want ${e.bound.lo}..${e.bound.hi} (p ${e.p})`);
      break;
    }
    case 'ejection': {
      if (failed.length > e.maxFailures) say(`${failed.length} calls failed, want at most ${e.maxFailures} (the calls in flight when the replica crashed)`);
      const late = failed.filter((r) => requests.indexOf(r) >= requests.length / 2);
      if (late.length) say(`${late.length} failures in the second half of the run: the replica was not ejected`);
      for (const r of replicas.filter((x) => x.version === e.bad)) {
        if (r.ok > 0) say(`the crashing replica ${r.name} answered ${r.ok} calls OK`);
        if (r.logged > e.maxFailures) say(`the crashing replica ${r.name} logged ${r.logged} calls, want at most ${e.maxFailures}: it got calls after its ejection`);
      }
      break;
    }
    case 'per-try-timeout': {
      const [lo, hi] = [e.tries * e.perTryMs - 100, e.tries * e.perTryMs + 3000];
      for (const r of requests) {
        if (r.status !== 'UNAVAILABLE') say(`a hanging call ended ${r.status}, want UNAVAILABLE (the last per-try timeout): ${r.details ?? ''}`);
        if (r.latency_ms < lo || r.latency_ms > hi) say(`a hanging call ended after ${r.latency_ms} ms, want ${lo}..${hi} (${e.tries} tries of ${e.perTryMs} ms)`);
      }
      const logged = replicas.reduce((n, r) => n + r.logged, 0);
      if (logged !== plan.count * e.tries) say(`the servers logged ${logged} attempts, want ${plan.count * e.tries} (${e.tries} per call)`);
      break;
    }
    case 'retried': {
      if (failed.length) say(`${failed.length} calls failed, want none: ${failed.map((r) => `${r.status} ${r.details ?? ''}`).join('; ')}`);
      const crashed = replicas.filter((r) => r.version === e.bad).some((r) => r.logged > 0);
      const retriedByMesh = requests.some((r) => (r.mesh_attempt ?? 1) > 1);
      if (!crashed && !retriedByMesh) say('no crash logged and no answer after a mesh retry: the scenario showed nothing');
      break;
    }
    case 'overflow': {
      const ok = requests.filter((r) => r.status === 'OK');
      if (ok.length < 1 || ok.length > e.maxOk) say(`${ok.length} OK, want 1..${e.maxOk}`);
      for (const r of ok) if (r.latency_ms < e.sleepMs - 50) say(`an OK call in ${r.latency_ms} ms, faster than the server's ${e.sleepMs} ms`);
      for (const r of failed) {
        if (r.status !== 'UNAVAILABLE') say(`an overflow answered ${r.status}, want UNAVAILABLE: ${r.details ?? ''}`);
        if (r.latency_ms >= e.sleepMs / 2) say(`an overflow took ${r.latency_ms} ms: not failed fast`);
      }
      break;
    }
    case 'spread': {
      if (failed.length) say(`${failed.length} calls failed`);
      for (const r of replicas) if (r.ok < e.bound.lo || r.ok > e.bound.hi) say(`replica ${r.name} answered ${r.ok}, want ${e.bound.lo}..${e.bound.hi} (${e.balancer}; ${counts})`);
      break;
    }
    case 'sticky': {
      if (failed.length) say(`${failed.length} calls failed`);
      const answering = replicas.filter((r) => r.ok > 0);
      if (answering.length !== 1) say(`${answering.length} replicas answered (${counts}), want one (${e.why})`);
      break;
    }
    case 'mirror': {
      if (failed.length) say(`${failed.length} calls failed`);
      const v1 = replicas.filter((r) => r.version === 'v1').reduce((n, r) => n + r.ok, 0);
      const copies = replicas.filter((r) => r.version === 'v2').reduce((n, r) => n + r.shadow, 0);
      if (v1 !== plan.count) say(`v1 answered ${v1}, want all ${plan.count}`);
      if (copies !== plan.count) say(`v2 logged ${copies} copies with a -shadow authority, want ${plan.count}`);
      break;
    }
  }
  return problems;
}
