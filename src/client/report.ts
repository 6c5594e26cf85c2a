// What the client prints: a line per request, a summary after several, or one JSON document
// (docs/client-output.schema.json). The latency histogram (hdr-histogram-js) is loaded only when there is
// more than one latency to summarize.
import { statusName } from '../status.ts';
import type { ExpectationOutcome } from './expect.ts';
import { formatMs } from './milliseconds.ts';
import type { ClientOptions } from './options.ts';
import { methodPath, type RequestResult } from './run.ts';

export interface LatencySummary {
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface Summary {
  count: number;
  ok: number;
  failed: number;
  /** gRPC status name -> requests */
  byStatus: Record<string, number>;
  /** -health: serving status name -> requests that were answered one */
  byServingStatus?: Record<string, number>;
  /** of every request, OK or not */
  latencyMs: LatencySummary;
  /** replica hostname -> requests it answered (requests without a hostname are not counted) */
  byHostname: Record<string, number>;
  /** the attempt the answering server saw, as Envoy counted it ("2": the mesh retried once) -> requests; requests without one are not counted */
  byMeshAttempt: Record<string, number>;
  /** -stream: messages the streams were to carry, and received */
  messages?: { asked: number; received: number };
}

export async function summarize(results: readonly RequestResult[], health: boolean): Promise<Summary> {
  const byStatus: Record<string, number> = {};
  const byServingStatus: Record<string, number> = {};
  const byHostname: Record<string, number> = {};
  const byMeshAttempt: Record<string, number> = {};
  let ok = 0;
  let messages: Summary['messages'];
  for (const r of results) {
    if (r.ok) ok++;
    if (r.stream) {
      messages ??= { asked: 0, received: 0 };
      messages.asked += r.stream.asked;
      messages.received += r.stream.received;
    }
    const status = statusName(r.code);
    byStatus[status] = (byStatus[status] ?? 0) + 1;
    if (health && r.message !== undefined) byServingStatus[r.message] = (byServingStatus[r.message] ?? 0) + 1;
    if (r.hostname !== undefined) byHostname[r.hostname] = (byHostname[r.hostname] ?? 0) + 1;
    if (r.meshAttempt !== undefined) byMeshAttempt[r.meshAttempt] = (byMeshAttempt[r.meshAttempt] ?? 0) + 1;
  }
  return {
    count: results.length,
    ok,
    failed: results.length - ok,
    byStatus,
    ...(health ? { byServingStatus } : {}),
    latencyMs: await latencySummary(results.map((r) => r.latencyMs)),
    byHostname,
    byMeshAttempt,
    ...(messages ? { messages } : {}),
  };
}

/** min and max exact; percentiles from an HDR histogram in microseconds (3 significant digits). */
async function latencySummary(latencies: readonly number[]): Promise<LatencySummary> {
  if (latencies.length === 0) return { min: 0, p50: 0, p90: 0, p99: 0, max: 0 };
  let min = Infinity;
  let max = -Infinity;
  for (const ms of latencies) {
    if (ms < min) min = ms;
    if (ms > max) max = ms;
  }
  if (latencies.length === 1) return { min, p50: min, p90: min, p99: min, max };
  // the plain-JS histogram, not the package index: that one drags in a 39 KB WebAssembly build
  const module = await import('hdr-histogram-js/dist/Int32Histogram.js');
  // a CommonJS module with `exports.default`: Node's and esbuild's interop give { default: exports }, vite's the class
  const loaded = module.default as unknown as { default?: typeof module.default.default };
  const Histogram = loaded.default ?? (module.default as unknown as typeof module.default.default);
  const histogram = new Histogram(1, Math.max(2, Math.ceil(max * 1000) + 1), 3);
  for (const ms of latencies) histogram.recordValue(Math.max(1, Math.round(ms * 1000)));
  const at = (p: number) => Math.min(max, Math.max(min, histogram.getValueAtPercentile(p) / 1000));
  return { min, p50: at(50), p90: at(90), p99: at(99), max };
}

/** Who answered, and how long it took: "(from pod-a, 1.20 ms)", "(from pod-b via Envoy, attempt 2, 3.10 ms)", "(no server reached, 1000.0 ms)". */
export function from(r: Pick<RequestResult, 'hostname' | 'envoy' | 'answeredBy' | 'reached' | 'latencyMs' | 'meshAttempt'>): string {
  const envoy = r.envoy ? ' via Envoy' : '';
  const who =
    r.hostname !== undefined
      ? `from ${r.hostname}${envoy}`
      : r.answeredBy === 'other'
        ? `answer without a hostname${envoy}`
        : r.reached
          ? 'no answer'
          : 'no server reached';
  const attempt = r.meshAttempt === undefined ? '' : `, attempt ${r.meshAttempt}`;
  return `(${who}${attempt}, ${formatMs(r.latencyMs)} ms)`;
}

/** The line for one request, and whether it goes to stdout (OK) or stderr. */
export function requestLine(r: RequestResult, options: Pick<ClientOptions, 'call'>): { text: string; stream: 'stdout' | 'stderr' } {
  const call = options.call;
  if (call.kind === 'hello') {
    if (r.ok) return { text: `Greeting: ${r.message} ${from(r)}`, stream: 'stdout' };
    return { text: `could not greet: ${statusName(r.code)}: ${r.details} ${from(r)}`, stream: 'stderr' };
  }
  const service = call.service ? ` service ${JSON.stringify(call.service)}` : '';
  if (r.ok) return { text: `status: ${r.message}${service} ${from(r)}`, stream: 'stdout' };
  if (r.code === 0) return { text: `health check failed:${service} status ${r.message}, want SERVING ${from(r)}`, stream: 'stderr' };
  return { text: `could not check health: ${statusName(r.code)}: ${r.details} ${from(r)}`, stream: 'stderr' };
}

/** The summary after -count > 1 requests, ping-style. */
export function summaryText(summary: Summary, options: Pick<ClientOptions, 'target' | 'call' | 'stream' | 'connections'>): string {
  const counts = (m: Record<string, number>) =>
    Object.entries(m)
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
  const failures: Record<string, number> = { ...summary.byStatus };
  delete failures.OK;
  if (summary.byServingStatus) {
    for (const [status, n] of Object.entries(summary.byServingStatus)) if (status !== 'SERVING') failures[status] = n;
  }
  const l = summary.latencyMs;
  const hosts = counts(summary.byHostname);
  const unnamed = summary.count - Object.values(summary.byHostname).reduce((a, b) => a + b, 0);
  const m = summary.messages;
  const attempts = Object.entries(summary.byMeshAttempt)
    .sort((a, b) => Number(a[0]) - Number(b[0]))
    .map(([k, n]) => `${k}: ${n}`)
    .join(', ');
  const over = (options.connections ?? 1) > 1 ? ` over ${options.connections} connections` : '';
  return [
    `--- ${methodPath(options)} on ${options.target.address}: ${summary.count} ${options.stream ? 'streams' : 'requests'}${over}, ${summary.ok} OK, ${summary.failed} failed${
      summary.failed ? ` (${counts(failures)})` : ''
    } ---`,
    `${options.stream ? 'duration' : 'latency'} ms: min ${formatMs(l.min)}, p50 ${formatMs(l.p50)}, p90 ${formatMs(l.p90)}, p99 ${formatMs(l.p99)}, max ${formatMs(l.max)}`,
    ...(m ? [`messages: ${m.received} of ${m.asked} received`] : []),
    `replicas: ${hosts || 'none named'}${hosts && unnamed ? ` (${unnamed} without a hostname)` : ''}`,
    // only through Envoy: it counts the attempts (x-envoy-attempt-count) that the server echoes
    ...(attempts ? [`mesh attempt seen by the server: ${attempts}`] : []),
  ].join('\n');
}

const round3 = (ms: number) => Math.round(ms * 1000) / 1000;

/** The -json document; docs/client-output.schema.json describes it and a test holds them together. */
export function jsonDocument(
  options: ClientOptions,
  results: readonly RequestResult[],
  summary: Summary,
  expectation: ExpectationOutcome | undefined,
  exitCode: number,
): unknown {
  const e = options.expectations;
  return {
    target: options.target.address,
    tls: options.tls !== undefined,
    authority: options.authority,
    method: methodPath(options),
    ...(options.call.kind === 'hello' ? { name: options.call.name } : { service: options.call.service }),
    ...(options.stream ? { stream: { kind: options.stream.kind, messages: options.stream.messages, interval_ms: options.stream.intervalMs } } : {}),
    connections: options.connections ?? 1,
    requests: results.map((r) => ({
      index: r.index,
      start: r.start.toISOString(),
      latency_ms: round3(r.latencyMs),
      attempts: r.attempts,
      code: r.code,
      status: statusName(r.code),
      details: r.details,
      hostname: r.hostname ?? null,
      mesh_attempt: r.meshAttempt ?? null,
      reached: r.reached,
      answered_by: r.answeredBy,
      envoy: r.envoy,
      message: r.message ?? null,
      ok: r.ok,
      ...(r.stream
        ? {
            messages: (r.stream.messages ?? []).map((m) => ({ index: m.index, message: m.text, hostname: m.hostname ?? null, ms_since_start: round3(m.msSinceStart) })),
          }
        : {}),
    })),
    summary: {
      count: summary.count,
      ok: summary.ok,
      failed: summary.failed,
      by_status: summary.byStatus,
      ...(summary.byServingStatus ? { by_serving_status: summary.byServingStatus } : {}),
      latency_ms: Object.fromEntries(Object.entries(summary.latencyMs).map(([k, v]) => [k, round3(v)])),
      by_hostname: summary.byHostname,
      by_mesh_attempt: summary.byMeshAttempt,
      ...(summary.messages ? { messages: summary.messages } : {}),
    },
    expectations:
      e && expectation
        ? {
            codes: e.codes.map(statusName),
            min_latency_ms: e.minLatencyMs ?? null,
            max_latency_ms: e.maxLatencyMs ?? null,
            answered_by: e.answeredBy ?? null,
            ...(options.stream ? { messages: e.messages ?? null } : {}),
            met: expectation.met,
            failures: expectation.failures,
          }
        : null,
    exit_code: exitCode,
  };
}
