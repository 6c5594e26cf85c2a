// Reads an Istio VirtualService (k8s/istio/*.yaml) into the few things the client's sidecar does with a
// gRPC call: pick the first HTTP route whose match fits, then apply its fault (delay first, then abort,
// each with its own percentage), or answer "no route" when nothing matches. The local e2e renders this
// model as an HAProxy configuration (haproxy.ts); the kind e2e applies the same file to a real mesh.
//
// A route's `timeout` (Envoy's route timeout and max_grpc_timeout, docs/streams.md) is read too: the local
// proxy cuts a call at it (haproxy.ts). A route's `retries` is read as well (Istio's default policy when a
// route has none: ISTIO_DEFAULT_RETRIES); what of it the local proxy can render is traffic-policy.ts's business.
//
// Anything else in a VirtualService changes what the sidecar does in ways the local proxy would not show
// (rewrites, mirrors, subsets, TCP/TLS routes, ...), so it is rejected with an error that names the field,
// rather than silently ignored: a local pass must mean what a mesh pass means.
import { parseAllDocuments } from 'yaml';
import { STATUS_NAMES, type StatusName } from '../src/status.ts';

export class UnsupportedVirtualService extends Error {
  override name = 'UnsupportedVirtualService';
}

/** Envoy's StringMatcher as Istio sets it: `exact` / `prefix` / `regex` (RE2, whole value), or presence. */
export type StringMatch =
  | { kind: 'exact'; value: string }
  | { kind: 'prefix'; value: string }
  | { kind: 'regex'; value: string }
  | { kind: 'present' };

/** One entry of a route's `match` list: all of its conditions must hold. */
export interface MatchCondition {
  uri?: StringMatch;
  ignoreUriCase: boolean;
  method?: StringMatch;
  /** lowercase header name -> match; `withoutHeaders` ones are negated */
  headers: { name: string; match: StringMatch; negate: boolean }[];
}

export interface Fault {
  delay?: { ms: number; percent: number };
  /** the gRPC status the client sees (`httpStatus` already mapped as Envoy maps it for a gRPC call) */
  abort?: { grpcStatus: number; percent: number; from: string };
}

/** A route's retry policy, as Istio turns it into Envoy's (pilot/pkg/networking/core/route/retry/retry.go). */
export interface RetryPolicy {
  /** retries after the first attempt; 0: none at all */
  attempts: number;
  /** Envoy's retry_on conditions */
  retryOn: string[];
  perTryTimeoutMs?: number;
}

/**
 * What Istio gives a route without `retries` (and what an explicit policy without `retryOn` retries on): the
 * same in Istio 1.22 to 1.30 (docs/resilience.md cites the source).
 */
export const ISTIO_DEFAULT_RETRIES: RetryPolicy = {
  attempts: 2,
  retryOn: ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes'],
};

/** The retry policy a route gets: its own, or Istio's default. */
export const retryPolicy = (route: Pick<HttpRoute, 'retries'>): RetryPolicy => route.retries ?? ISTIO_DEFAULT_RETRIES;

export interface HttpRoute {
  name: string;
  /** set only when the route has `retries` (retryPolicy() gives the default otherwise) */
  retries?: RetryPolicy;
  /** null: matches every call (a catch-all route); otherwise any one entry matching selects this route */
  match: MatchCondition[] | null;
  fault: Fault;
  /** `timeout`: the call is cut this long after its request ended (absent: the client's own deadline alone) */
  timeoutMs?: number;
}

export interface VirtualServiceModel {
  name: string;
  file: string;
  hosts: string[];
  routes: HttpRoute[];
  /** true when some route matches every call; without one, unmatched calls get "no route" (NR) */
  hasCatchAll: boolean;
}

export interface ReadOptions {
  /** the Service the local proxy stands in for: `hosts` and every route destination must name it */
  service: string;
  /** the Service port: a destination with another `port.number` is rejected */
  servicePort: number;
}

export const DEFAULT_TARGET: ReadOptions = { service: 'grpc-helloworld-service', servicePort: 10000 };

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Envoy's mapping of an HTTP status to the gRPC status of a local reply to a gRPC call
 * (Grpc::Utility::httpToGrpcStatus, after grpc/doc/http-grpc-status-mapping.md): the fault filter's
 * `httpStatus: 503` reaches a gRPC client as `:status 200`, `grpc-status: 14` (UNAVAILABLE).
 */
export function grpcStatusForHttpStatus(http: number): number {
  switch (http) {
    case 400:
      return 13; // INTERNAL
    case 401:
      return 16; // UNAUTHENTICATED
    case 403:
      return 7; // PERMISSION_DENIED
    case 404:
      return 12; // UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return 14; // UNAVAILABLE
    default:
      return 2; // UNKNOWN
  }
}

const DURATION_UNITS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 1e-3, 'µs': 1e-3, ns: 1e-6 };

/** A Go / protobuf-JSON duration ("3s", "0.5s", "250ms", "1m30s") in milliseconds. */
export function parseDurationMs(text: string): number | undefined {
  const t = text.trim();
  if (!/^(\d+(\.\d+)?(h|m|s|ms|us|µs|ns))+$/.test(t)) return undefined;
  let ms = 0;
  for (const m of t.matchAll(/(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)/g)) ms += Number(m[1]) * DURATION_UNITS[m[2]!]!;
  return ms;
}

class Reader {
  readonly file: string;
  readonly options: ReadOptions;

  constructor(file: string, options: ReadOptions) {
    this.file = file;
    this.options = options;
  }

  fail(path: string, why: string): never {
    throw new UnsupportedVirtualService(`${this.file}: ${path}: ${why}`);
  }

  /** Rejects keys outside `allowed`, naming the reason for the ones we know and refuse. */
  keys(obj: Obj, path: string, allowed: readonly string[], refused: Record<string, string> = {}): void {
    for (const key of Object.keys(obj)) {
      if (allowed.includes(key)) continue;
      if (key in refused) this.fail(`${path}.${key}`, refused[key]!);
      this.fail(`${path}.${key}`, `unknown field (a typo?); the local renderer knows ${allowed.join(', ')}`);
    }
  }

  object(v: unknown, path: string): Obj {
    if (!isObj(v)) this.fail(path, 'expected a mapping');
    return v;
  }

  string(v: unknown, path: string): string {
    if (typeof v !== 'string') this.fail(path, 'expected a string');
    return v;
  }

  percent(fault: Obj, path: string): number {
    if ('percent' in fault) this.fail(`${path}.percent`, 'the deprecated integer `percent`: use `percentage: {value: N}`');
    if (!('percentage' in fault)) return 0; // Istio: an omitted percentage is 0 %, the fault never fires
    const p = this.object(fault.percentage, `${path}.percentage`);
    this.keys(p, `${path}.percentage`, ['value']);
    if (p.value === undefined) return 0;
    if (typeof p.value !== 'number' || !Number.isFinite(p.value) || p.value < 0 || p.value > 100) {
      this.fail(`${path}.percentage.value`, 'expected a number from 0 to 100');
    }
    return p.value;
  }

  stringMatch(v: unknown, path: string, emptyMeansPresence: boolean): StringMatch {
    const m = this.object(v ?? {}, path);
    this.keys(m, path, ['exact', 'prefix', 'regex']);
    const kinds = Object.keys(m) as ('exact' | 'prefix' | 'regex')[];
    if (kinds.length === 0) {
      if (emptyMeansPresence) return { kind: 'present' };
      this.fail(path, 'an empty match: give one of exact, prefix, regex');
    }
    if (kinds.length > 1) this.fail(path, `give one of exact, prefix, regex, not ${kinds.join(' and ')}`);
    const kind = kinds[0]!;
    const value = this.string(m[kind], `${path}.${kind}`);
    // The HAProxy rendering quotes values in single quotes (no escapes there), one line per rule.
    if (value === '') this.fail(`${path}.${kind}`, 'an empty value is not rendered locally');
    if (/['\x00-\x1f\x7f]/.test(value)) this.fail(`${path}.${kind}`, 'quotes and control characters are not rendered locally');
    if (kind === 'regex') {
      try {
        new RegExp(value, 'u');
      } catch (err) {
        this.fail(`${path}.regex`, `not a valid regular expression: ${(err as Error).message}`);
      }
    }
    return { kind, value };
  }

  headerMap(v: unknown, path: string, negate: boolean): MatchCondition['headers'] {
    const headers = this.object(v, path);
    return Object.entries(headers).map(([name, match]) => {
      if (name !== name.toLowerCase()) this.fail(`${path}.${name}`, 'header keys must be lowercase (Istio requires it)');
      if (!/^[a-z0-9][a-z0-9._-]*$/.test(name)) this.fail(`${path}.${name}`, 'not a header name the local renderer handles');
      return { name, match: this.stringMatch(match, `${path}.${name}`, true), negate };
    });
  }

  matchCondition(v: unknown, path: string): MatchCondition {
    const m = this.object(v, path);
    this.keys(m, path, ['name', 'uri', 'method', 'headers', 'withoutHeaders', 'ignoreUriCase'], {
      authority: 'authority matches are not rendered locally (the local proxy is reached by another name)',
      scheme: 'scheme matches are not rendered locally',
      port: 'port matches are not rendered locally',
      queryParams: 'query parameters do not exist in gRPC calls',
      sourceLabels: 'source workload matches need a mesh',
      sourceNamespace: 'source namespace matches need a mesh',
      gateways: 'gateway matches need a mesh',
      statPrefix: 'not rendered locally',
    });
    if (m.ignoreUriCase !== undefined && typeof m.ignoreUriCase !== 'boolean') this.fail(`${path}.ignoreUriCase`, 'expected a boolean');
    return {
      ...(m.uri !== undefined ? { uri: this.stringMatch(m.uri, `${path}.uri`, false) } : {}),
      ...(m.method !== undefined ? { method: this.stringMatch(m.method, `${path}.method`, false) } : {}),
      ignoreUriCase: m.ignoreUriCase === true,
      headers: [
        ...(m.headers !== undefined ? this.headerMap(m.headers, `${path}.headers`, false) : []),
        ...(m.withoutHeaders !== undefined ? this.headerMap(m.withoutHeaders, `${path}.withoutHeaders`, true) : []),
      ],
    };
  }

  refersToService(host: string): boolean {
    const s = this.options.service;
    return host === s || host.startsWith(`${s}.`);
  }

  fault(v: unknown, path: string): Fault {
    const f = this.object(v, path);
    this.keys(f, path, ['delay', 'abort']);
    const fault: Fault = {};
    if (f.delay !== undefined) {
      const d = this.object(f.delay, `${path}.delay`);
      this.keys(d, `${path}.delay`, ['fixedDelay', 'percentage', 'percent'], {
        exponentialDelay: 'exponentialDelay is not implemented by Istio',
      });
      const text = this.string(d.fixedDelay, `${path}.delay.fixedDelay`);
      const ms = parseDurationMs(text);
      if (ms === undefined) this.fail(`${path}.delay.fixedDelay`, `${JSON.stringify(text)} is not a duration such as 3s or 500ms`);
      if (ms < 1) this.fail(`${path}.delay.fixedDelay`, 'Istio requires at least 1ms');
      fault.delay = { ms, percent: this.percent(d, `${path}.delay`) };
    }
    if (f.abort !== undefined) {
      const a = this.object(f.abort, `${path}.abort`);
      this.keys(a, `${path}.abort`, ['grpcStatus', 'httpStatus', 'percentage', 'percent'], {
        http2Error: 'http2Error is not implemented by Istio',
      });
      const given = ['grpcStatus', 'httpStatus'].filter((k) => a[k] !== undefined);
      if (given.length !== 1) this.fail(`${path}.abort`, 'give exactly one of grpcStatus, httpStatus');
      let grpcStatus: number;
      let from: string;
      if (a.grpcStatus !== undefined) {
        const name = this.string(a.grpcStatus, `${path}.abort.grpcStatus`);
        grpcStatus = STATUS_NAMES.indexOf(name as StatusName);
        if (grpcStatus < 0) this.fail(`${path}.abort.grpcStatus`, `${JSON.stringify(name)} is not a gRPC status name (${STATUS_NAMES.join(', ')})`);
        if (grpcStatus === 0) this.fail(`${path}.abort.grpcStatus`, 'OK is not an abort');
        from = `grpcStatus ${name}`;
      } else {
        const http = a.httpStatus;
        if (typeof http !== 'number' || !Number.isInteger(http) || http < 200 || http > 599) {
          this.fail(`${path}.abort.httpStatus`, 'expected an HTTP status code from 200 to 599');
        }
        grpcStatus = grpcStatusForHttpStatus(http);
        from = `httpStatus ${http}`;
      }
      fault.abort = { grpcStatus, percent: this.percent(a, `${path}.abort`), from };
    }
    return fault;
  }

  /** Istio's `timeout: 0s` disables the route timeout: not rendered, so refused rather than read as "cut at once". */
  timeout(v: unknown, path: string): number {
    const text = this.string(v, path);
    const ms = parseDurationMs(text);
    if (ms === undefined) this.fail(path, `${JSON.stringify(text)} is not a duration such as 2s or 500ms`);
    if (ms < 1) this.fail(path, 'a timeout under 1ms (0s disables it in Istio) is not rendered locally: leave it out');
    return ms;
  }

  route(v: unknown, path: string): HttpRoute {
    const r = this.object(v, path);
    const notLocal = 'changes what the sidecar does to a call in a way the local proxy does not render';
    this.keys(r, path, ['name', 'match', 'route', 'fault', 'timeout', 'retries'], {
      rewrite: `rewrite ${notLocal}`,
      redirect: 'redirects do not apply to gRPC calls',
      directResponse: `directResponse ${notLocal}`,
      delegate: 'delegate VirtualServices are not rendered locally',
      mirror: `mirroring ${notLocal}`,
      mirrors: `mirroring ${notLocal}`,
      mirrorPercentage: `mirroring ${notLocal}`,
      mirrorPercent: `mirroring ${notLocal}`,
      mirror_percent: `mirroring ${notLocal}`,
      corsPolicy: 'CORS does not apply to gRPC calls',
      headers: `header manipulation ${notLocal}`,
    });
    const name = r.name === undefined ? `route ${path}` : this.string(r.name, `${path}.name`);
    // destinations: every one the same Service (the one the local proxy stands in for), no subsets
    if (!Array.isArray(r.route) || r.route.length === 0) this.fail(`${path}.route`, 'expected at least one destination');
    r.route.forEach((d, j) => {
      const dpath = `${path}.route[${j}]`;
      const dest = this.object(d, dpath);
      this.keys(dest, dpath, ['destination', 'weight'], { headers: `header manipulation ${notLocal}` });
      const target = this.object(dest.destination, `${dpath}.destination`);
      this.keys(target, `${dpath}.destination`, ['host', 'port'], { subset: 'subsets need a DestinationRule and replicas: not rendered locally' });
      const host = this.string(target.host, `${dpath}.destination.host`);
      if (!this.refersToService(host)) this.fail(`${dpath}.destination.host`, `${host} is not ${this.options.service}, the only backend locally`);
      if (target.port !== undefined) {
        const port = this.object(target.port, `${dpath}.destination.port`);
        this.keys(port, `${dpath}.destination.port`, ['number']);
        if (port.number !== this.options.servicePort) this.fail(`${dpath}.destination.port.number`, `the Service port is ${this.options.servicePort}`);
      }
    });
    let match: MatchCondition[] | null = null;
    if (r.match !== undefined) {
      if (!Array.isArray(r.match)) this.fail(`${path}.match`, 'expected a list');
      const conditions = r.match.map((m, j) => this.matchCondition(m, `${path}.match[${j}]`));
      // an entry with no condition matches everything, and so does the whole list
      match = conditions.length === 0 || conditions.some((c) => !c.uri && !c.method && c.headers.length === 0) ? null : conditions;
    }
    return {
      name,
      match,
      fault: r.fault === undefined ? {} : this.fault(r.fault, `${path}.fault`),
      ...(r.retries === undefined ? {} : { retries: this.retries(r.retries, `${path}.retries`) }),
      ...(r.timeout === undefined ? {} : { timeoutMs: this.timeout(r.timeout, `${path}.timeout`) }),
    };
  }

  retries(v: unknown, path: string): RetryPolicy {
    const r = this.object(v, path);
    this.keys(r, path, ['attempts', 'retryOn', 'perTryTimeout'], {
      retryRemoteLocalities: 'localities do not exist locally',
      retryIgnorePreviousHosts: 'not rendered locally (retries go to another replica when there is one)',
    });
    const attempts = r.attempts ?? 0;
    if (typeof attempts !== 'number' || !Number.isInteger(attempts) || attempts < 0) this.fail(`${path}.attempts`, 'expected a whole number, 0 or more');
    // Istio: an explicit policy without retryOn keeps the default conditions
    const retryOn = r.retryOn === undefined ? ISTIO_DEFAULT_RETRIES.retryOn : this.string(r.retryOn, `${path}.retryOn`).split(',').map((c) => c.trim()).filter(Boolean);
    let perTryTimeoutMs: number | undefined;
    if (r.perTryTimeout !== undefined) {
      const text = this.string(r.perTryTimeout, `${path}.perTryTimeout`);
      perTryTimeoutMs = parseDurationMs(text);
      if (perTryTimeoutMs === undefined || perTryTimeoutMs < 1) this.fail(`${path}.perTryTimeout`, `${JSON.stringify(text)} is not a duration of at least 1ms`);
    }
    return { attempts, retryOn, ...(perTryTimeoutMs === undefined ? {} : { perTryTimeoutMs }) };
  }

  virtualService(doc: unknown): VirtualServiceModel {
    const vs = this.object(doc, '(document)');
    this.keys(vs, '(document)', ['apiVersion', 'kind', 'metadata', 'spec']);
    if (!/^networking\.istio\.io\/(v1|v1beta1|v1alpha3)$/.test(String(vs.apiVersion))) this.fail('apiVersion', `${String(vs.apiVersion)} is not networking.istio.io`);
    if (vs.kind !== 'VirtualService') this.fail('kind', `${String(vs.kind)} is not a VirtualService`);
    const name = this.string(this.object(vs.metadata, 'metadata').name, 'metadata.name');
    const spec = this.object(vs.spec, 'spec');
    this.keys(spec, 'spec', ['hosts', 'http', 'gateways', 'exportTo'], {
      tcp: 'TCP routes are not rendered locally',
      tls: 'TLS routes are not rendered locally',
    });
    if (spec.gateways !== undefined && !(Array.isArray(spec.gateways) && spec.gateways.every((g) => g === 'mesh'))) {
      this.fail('spec.gateways', 'only the sidecars ("mesh") are rendered locally, not gateways');
    }
    if (!Array.isArray(spec.hosts) || spec.hosts.length === 0) this.fail('spec.hosts', 'expected a list of hosts');
    const hosts = spec.hosts.map((h, i) => this.string(h, `spec.hosts[${i}]`));
    if (!hosts.some((h) => this.refersToService(h))) this.fail('spec.hosts', `none of ${hosts.join(', ')} is ${this.options.service}`);
    if (!Array.isArray(spec.http) || spec.http.length === 0) this.fail('spec.http', 'expected at least one HTTP route');
    const routes = spec.http.map((r, i) => this.route(r, `spec.http[${i}]`));
    const catchAll = routes.findIndex((r) => r.match === null);
    if (catchAll >= 0 && catchAll < routes.length - 1) {
      this.fail(`spec.http[${catchAll + 1}]`, `unreachable: route ${routes[catchAll]!.name} before it matches every call`);
    }
    return { name, file: this.file, hosts, routes, hasCatchAll: catchAll >= 0 };
  }
}

/** Parses the one VirtualService in `text` (a file's content); throws UnsupportedVirtualService. */
export function readVirtualService(text: string, file: string, options: ReadOptions = DEFAULT_TARGET): VirtualServiceModel {
  const reader = new Reader(file, options);
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) reader.fail('(file)', 'not YAML');
  const contents = docs.filter((d) => d.contents !== null);
  for (const d of contents) if (d.errors.length > 0) reader.fail('(file)', `not valid YAML: ${d.errors[0]!.message}`);
  if (contents.length !== 1) reader.fail('(file)', `expected one VirtualService, found ${contents.length} documents`);
  return reader.virtualService(contents[0]!.toJS());
}

/** The longest fixed delay any route of `vs` can add (0 when none). */
export function maxDelayMs(vs: VirtualServiceModel): number {
  return Math.max(0, ...vs.routes.map((r) => (r.fault.delay && r.fault.delay.percent > 0 ? r.fault.delay.ms : 0)));
}
