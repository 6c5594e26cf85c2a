// What the client's sidecar does with a call once its route is chosen: retry it (the route's retry policy,
// virtual-service.ts), pick a replica (the DestinationRule's load balancer), refuse it over the connection
// pool's limits (circuit breaking), and stop sending to a replica that fails (outlier detection). Read from a
// DestinationRule (k8s/istio/*.yaml) into a model, and rendered as the backend of the local HAProxy
// (haproxy.ts) as far as HAProxy can model it:
//
//   Istio / Envoy                                   HAProxy 2.6
//   retries.attempts N                              retries N (option redispatch 1: another replica each time)
//   retryOn connect-failure                         retry-on conn-failure
//   retryOn reset                                   retry-on empty-response (the replica closed unanswered)
//   perTryTimeout                                   timeout server + retry-on response-timeout
//   loadBalancer ROUND_ROBIN / RANDOM               balance roundrobin / random
//   loadBalancer LEAST_REQUEST                      balance leastconn
//   consistentHash.httpHeaderName                   balance hdr(NAME) + hash-type consistent
//   connectionPool.http.http2MaxRequests            server maxconn N (per replica: equal with one replica)
//   connectionPool.http.http1MaxPendingRequests     queue() of the backend: with N waiting, a call is answered
//                                                   at once grpc-status 14 (Envoy: overflow, flag UO)
//   outlierDetection.consecutive5xxErrors N         observe layer4 error-limit N on-error mark-down
//
// What it cannot model (those scenarios run only in e2e:kind; docs/resilience.md lists them):
// - retries on a gRPC status (`unavailable`, `cancelled`, `retriable-status-codes`): the status is in a
//   response HAProxy sees as HTTP 200, and its retry-on knows only transport events and HTTP statuses;
// - `refused-stream` (REFUSED_STREAM from the replica);
// - outlier detection on gRPC statuses (Envoy counts grpc-status UNAVAILABLE as a 503; HAProxy's layer-7
//   observation sees HTTP 200): only connection failures (a crashed replica) eject locally, and an ejected
//   replica comes back when its health check passes, not after baseEjectionTime;
// - the x-envoy-attempt-count header (the server's `attempt` metadata): HAProxy sends none;
// - mirroring and subsets.
import { parseAllDocuments } from 'yaml';
import { parseDurationMs, UnsupportedVirtualService, type RetryPolicy } from './virtual-service.ts';

type SimpleKind = 'round-robin' | 'least-request' | 'random';
export type LoadBalancer = { kind: SimpleKind } | { kind: 'header-hash'; header: string };

export interface TrafficPolicy {
  loadBalancer?: LoadBalancer;
  /** connectionPool.http: calls in flight at once, and calls waiting, before a call is refused */
  pool?: { maxRequests?: number; maxPending?: number; maxRequestsPerConnection?: number };
  outlier?: { consecutiveErrors: number; intervalMs: number; baseEjectionMs: number; maxEjectionPercent: number };
}

export interface DestinationRuleModel {
  name: string;
  file: string;
  policy: TrafficPolicy;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const SIMPLE: Record<string, SimpleKind> = { ROUND_ROBIN: 'round-robin', LEAST_REQUEST: 'least-request', RANDOM: 'random' };

/** Envoy's outlier detection defaults, as Istio leaves them when a field is omitted. */
const OUTLIER_DEFAULTS = { consecutiveErrors: 5, intervalMs: 10_000, baseEjectionMs: 30_000, maxEjectionPercent: 10 };

/** Reads the one DestinationRule of a k8s/istio file (for `host`: `service`); throws UnsupportedVirtualService. */
export function readDestinationRule(text: string, file: string, service = 'grpc-helloworld-service'): DestinationRuleModel {
  const fail = (path: string, why: string): never => {
    throw new UnsupportedVirtualService(`${file}: ${path}: ${why}`);
  };
  const obj = (v: unknown, path: string): Obj => (isObj(v) ? v : fail(path, 'expected a mapping'));
  const only = (o: Obj, path: string, allowed: string[]) => {
    for (const k of Object.keys(o)) if (!allowed.includes(k)) fail(`${path}.${k}`, `not rendered locally; the local renderer knows ${allowed.join(', ')}`);
  };
  const count = (v: unknown, path: string): number => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : fail(path, 'expected a whole number'));
  const duration = (v: unknown, path: string): number => (typeof v === 'string' ? (parseDurationMs(v) ?? fail(path, 'expected a duration')) : fail(path, 'expected a duration'));

  const docs = parseAllDocuments(text);
  const contents = (Array.isArray(docs) ? docs : []).filter((d) => d.contents !== null).map((d) => d.toJS() as unknown);
  const rules = contents.filter((d) => isObj(d) && d.kind === 'DestinationRule');
  if (rules.length !== 1) fail('(file)', `expected one DestinationRule, found ${rules.length}`);
  const dr = obj(rules[0], '(document)');
  const name = String(obj(dr.metadata, 'metadata').name);
  const spec = obj(dr.spec, 'spec');
  only(spec, 'spec', ['host', 'trafficPolicy']);
  if (spec.host !== service) fail('spec.host', `${String(spec.host)} is not ${service}, the only backend locally`);
  const tp = obj(spec.trafficPolicy ?? {}, 'spec.trafficPolicy');
  only(tp, 'spec.trafficPolicy', ['loadBalancer', 'connectionPool', 'outlierDetection']);
  const policy: TrafficPolicy = {};
  if (tp.loadBalancer !== undefined) {
    const lb = obj(tp.loadBalancer, 'loadBalancer');
    only(lb, 'spec.trafficPolicy.loadBalancer', ['simple', 'consistentHash']);
    if (lb.simple !== undefined) policy.loadBalancer = { kind: SIMPLE[String(lb.simple)] ?? fail('loadBalancer.simple', `${String(lb.simple)}: the local renderer knows ${Object.keys(SIMPLE).join(', ')}`) };
    if (lb.consistentHash !== undefined) {
      const hash = obj(lb.consistentHash, 'loadBalancer.consistentHash');
      only(hash, 'spec.trafficPolicy.loadBalancer.consistentHash', ['httpHeaderName']);
      const header = String(hash.httpHeaderName ?? '');
      if (!/^[a-z0-9][a-z0-9-]*$/.test(header)) fail('loadBalancer.consistentHash.httpHeaderName', 'expected a lower-case header name');
      policy.loadBalancer = { kind: 'header-hash', header };
    }
  }
  if (tp.connectionPool !== undefined) {
    const pool = obj(tp.connectionPool, 'connectionPool');
    only(pool, 'spec.trafficPolicy.connectionPool', ['http', 'tcp']);
    const http = obj(pool.http ?? {}, 'connectionPool.http');
    only(http, 'spec.trafficPolicy.connectionPool.http', ['http2MaxRequests', 'http1MaxPendingRequests', 'maxRequestsPerConnection']);
    policy.pool = {
      ...(http.http2MaxRequests !== undefined ? { maxRequests: count(http.http2MaxRequests, 'http2MaxRequests') } : {}),
      ...(http.http1MaxPendingRequests !== undefined ? { maxPending: count(http.http1MaxPendingRequests, 'http1MaxPendingRequests') } : {}),
      ...(http.maxRequestsPerConnection !== undefined ? { maxRequestsPerConnection: count(http.maxRequestsPerConnection, 'maxRequestsPerConnection') } : {}),
    };
  }
  if (tp.outlierDetection !== undefined) {
    const o = obj(tp.outlierDetection, 'outlierDetection');
    only(o, 'spec.trafficPolicy.outlierDetection', ['consecutive5xxErrors', 'interval', 'baseEjectionTime', 'maxEjectionPercent']);
    policy.outlier = {
      consecutiveErrors: o.consecutive5xxErrors === undefined ? OUTLIER_DEFAULTS.consecutiveErrors : count(o.consecutive5xxErrors, 'consecutive5xxErrors'),
      intervalMs: o.interval === undefined ? OUTLIER_DEFAULTS.intervalMs : duration(o.interval, 'interval'),
      baseEjectionMs: o.baseEjectionTime === undefined ? OUTLIER_DEFAULTS.baseEjectionMs : duration(o.baseEjectionTime, 'baseEjectionTime'),
      maxEjectionPercent: o.maxEjectionPercent === undefined ? OUTLIER_DEFAULTS.maxEjectionPercent : count(o.maxEjectionPercent, 'maxEjectionPercent'),
    };
  }
  return { name, file, policy };
}

/** Istio's retryOn conditions and the HAProxy retry-on event that stands for each (none: not modelled). */
const RETRY_ON: Record<string, string | undefined> = {
  'connect-failure': 'conn-failure',
  reset: 'empty-response',
  'refused-stream': undefined,
  unavailable: undefined,
  cancelled: undefined,
  'retriable-status-codes': undefined,
};

/** The retryOn conditions of a policy that the local proxy cannot model (a scenario that needs them runs only in kind). */
export function unmodelledRetryOn(retries: RetryPolicy): string[] {
  return retries.attempts === 0 ? [] : retries.retryOn.filter((c) => RETRY_ON[c] === undefined);
}

export interface BackendPolicy {
  retries: RetryPolicy;
  traffic: TrafficPolicy;
}

/** The backend section's own lines (after `mode http`), for a policy. */
export function renderBackendPolicy({ retries, traffic }: BackendPolicy): string[] {
  const lines: string[] = [];
  const lb = traffic.loadBalancer;
  if (!lb || lb.kind === 'round-robin') lines.push('    balance roundrobin');
  else if (lb.kind === 'random') lines.push('    balance random');
  else if (lb.kind === 'least-request') lines.push('    balance leastconn');
  else if (lb.kind === 'header-hash') lines.push(`    balance hdr(${lb.header})`, '    hash-type consistent');
  const events = [...new Set(retries.retryOn.map((c) => RETRY_ON[c]).filter((e): e is string => e !== undefined))];
  if (retries.perTryTimeoutMs !== undefined) events.push('response-timeout');
  if (retries.attempts === 0 || events.length === 0) {
    lines.push(`    # retries: none (attempts ${retries.attempts}${retries.attempts > 0 ? `; ${retries.retryOn.join(',')}: not modelled locally` : ''})`, '    retries 0', '    retry-on none');
  } else {
    const skipped = unmodelledRetryOn(retries);
    lines.push(`    # retries ${retries.attempts} on ${retries.retryOn.join(',')}${skipped.length ? ` (not modelled locally: ${skipped.join(',')})` : ''}`);
    lines.push(`    retries ${retries.attempts}`, `    retry-on ${events.join(' ')}`);
    // Istio avoids the replica that failed (previous-hosts predicate), except with a consistent hash
    if (lb?.kind !== 'header-hash') lines.push('    option redispatch 1');
    if (retries.perTryTimeoutMs !== undefined) lines.push(`    timeout server ${Math.round(retries.perTryTimeoutMs)}ms`);
  }
  const pool = traffic.pool;
  if (pool?.maxRequests !== undefined) {
    // the calls past maxconn wait in the queue; past the pending limit, Envoy's overflow answer
    lines.push(`    # circuit breaker: ${pool.maxRequests} calls in flight (server maxconn), ${pool.maxPending ?? 0} waiting, the rest refused at once`);
    lines.push('    timeout queue 60s # a pending call waits for a free slot (HAProxy would give up after timeout connect)');
    lines.push(`    http-request set-var(txn.grpc_local) bool(true) if { queue() ge ${pool.maxPending ?? 0} } { srv_conn(s1) ge ${pool.maxRequests} }`);
    lines.push('    http-request return status 200 hdr grpc-status 14 hdr grpc-message "upstream overflow (circuit breaker)" if { var(txn.grpc_local) -m bool }');
    lines.push('    http-after-response set-header content-type application/grpc if { var(txn.grpc_local) -m bool }');
  }
  return lines;
}

/** What follows `server sN HOST:PORT proto h2` for a policy. */
export function serverOptions({ traffic }: BackendPolicy): string {
  const options: string[] = [];
  if (traffic.pool?.maxRequests) options.push(`maxconn ${traffic.pool.maxRequests}`);
  // an ejected replica: marked down at the first N connection errors, back when a health check passes
  if (traffic.outlier) options.push(`check inter ${Math.round(traffic.outlier.intervalMs)}ms observe layer4 error-limit ${traffic.outlier.consecutiveErrors} on-error mark-down`);
  return options.length ? ` ${options.join(' ')}` : '';
}
