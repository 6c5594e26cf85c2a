// The fault-injection e2e, locally: every scenario of e2e/scenarios.ts (the table the kind e2e runs too)
// through a real HTTP/2 proxy, HAProxy, whose configuration is rendered from the scenario's VirtualService
// in k8s/istio/. Built server and client (dist/), each scenario with its own server(s) and HAProxy on free
// loopback ports, all scenarios at once (they are independent), everything stopped in the end.
//
// What each call must show is predicted from the manifest (e2e/scenarios.ts: predict); the tests below
// check the predictions' problems list, and then spell out the issue's bounds against the raw output.
import { describe, expect, it } from 'vitest';
import { seconds, settleEach, settledScenarios } from './helpers/settled-scenarios.ts';
import { findHaproxy } from '../e2e/haproxy.ts';
import { runScenarioLocally, type CallReport, type ScenarioReport } from '../e2e/local.ts';
import {
  baselineCall,
  binomialBound,
  binomialOutside,
  planScenarios,
  predict,
  ScenarioError,
  scenarios,
  type Scenario,
} from '../e2e/scenarios.ts';
import { readVirtualService } from '../e2e/virtual-service.ts';

const haproxy = findHaproxy();

describe('the scenario table and its predictions from k8s/istio', () => {
  const plans = planScenarios();
  const plan = (name: string) => plans.find((p) => p.scenario.name === name)!;

  it('covers the issue: delay, deadline, abort, header match, percentage, tls passthrough', () => {
    expect(scenarios.map((s) => s.name)).toEqual(['delay', 'delay-deadline', 'abort', 'header-delay', 'percent-delay', 'tls-passthrough']);
    expect(new Set(scenarios.map((s) => s.virtualService))).toEqual(new Set(['delay.yaml', 'abort.yaml', 'header-delay.yaml', 'percent-delay.yaml']));
  });

  it('predicts from the manifests what the issue states', () => {
    const [delayed] = plan('delay').predictions;
    expect(delayed).toMatchObject({ code: 0, latency: { kind: 'range', minMs: 3000, maxMs: 5000 }, server: 'late', flag: 'DI' });
    const [deadline] = plan('delay-deadline').predictions;
    expect(deadline).toMatchObject({ code: 4, server: 'never-ok', flag: 'DI', latency: { kind: 'range', minMs: 980, maxMs: 2500 } });
    const [aborted] = plan('abort').predictions;
    expect(aborted).toMatchObject({ code: 14, details: 'fault filter abort', server: 'nothing', flag: 'FI' });
    expect(plan('header-delay').predictions.map((p) => [p.route, p.code, p.latency.kind === 'range' && p.latency.minMs])).toEqual([
      ['delay-jason', 0, 3000],
      ['default', 0, 0],
      ['default', 0, 0],
    ]);
    expect(plan('percent-delay').predictions[0]!.latency).toEqual({
      kind: 'mixed',
      delayMs: 3000,
      percent: 50,
      undelayedMaxMs: 1500,
      delayedMaxMs: 5000,
      count: 100,
      bound: { lo: 30, hi: 70 },
    });
    expect(plan('tls-passthrough').predictions.map((p) => [p.call.port, p.flag])).toEqual([
      ['grpc', 'DI'],
      ['tls', null],
    ]);
  });

  it('states the binomial bound of the percentage scenario and its false-alarm rate', () => {
    const bound = binomialBound(100, 0.5);
    expect(bound).toEqual({ lo: 30, hi: 70 });
    const p = binomialOutside(100, 0.5, bound);
    expect(p).toBeGreaterThan(1e-5); // about 3.3e-5: a correct proxy fails it once in ~30,000 runs
    expect(p).toBeLessThan(1e-4);
    expect(binomialBound(20, 0.5)).toEqual({ lo: 1, hi: 19 }); // kind's probe batch
    expect(binomialOutside(20, 0.5, { lo: 1, hi: 19 })).toBeCloseTo(2 / 2 ** 20, 10);
  });

  it('fails loudly when a manifest change would make a scenario vacuous', () => {
    const delay = scenarios.find((s) => s.name === 'delay')!;
    const noPercent = readVirtualService(
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: x}
spec:
  hosts: [grpc-helloworld-service]
  http:
    - fault: {delay: {fixedDelay: 3s}}
      route: [{destination: {host: grpc-helloworld-service}}]
`,
      'delay.yaml (percentage omitted)',
    );
    expect(() => predict(delay, delay.calls[0]!, noPercent)).toThrow(ScenarioError);
    expect(() => predict(delay, delay.calls[0]!, noPercent)).toThrow(/is there to show "delay", but the VirtualService predicts OK in 0\.\.1500 ms/);
  });

  it('predicts the baseline (no VirtualService) as fast and OK on both ports', () => {
    for (const port of ['grpc', 'tls'] as const) {
      expect(predict(scenarios[0]!, baselineCall(port), null)).toMatchObject({ code: 0, latency: { kind: 'range', minMs: 0 }, server: 'answered' });
    }
  });
});

// (skipped where haproxy is not installed; .ci/run installs it)
describe.skipIf(!haproxy)('fault injection e2e, locally: HAProxy rendered from k8s/istio in front of the built server', () => {
  const report = settledScenarios<ScenarioReport>(
    'local fault e2e, all at once',
    () => settleEach(planScenarios(), (p) => runScenarioLocally(p.scenario, p.vs, p.predictions)),
    seconds,
    60_000,
  );
  const describeCall = (c: CallReport) =>
    `${c.command}\n  exit ${c.run.code}\n  stdout ${c.run.stdout.slice(0, 1500)}\n  stderr ${c.run.stderr.trim()}\n  server ${JSON.stringify(c.serverEntries)}`;
  const fault = (r: ScenarioReport) => r.calls.filter((c) => !c.baseline);
  const latencies = (c: CallReport) => c.outcome.requests.map((q) => q.latency_ms);

  it.each(scenarios.map((s): [string, Scenario] => [s.name, s]))('%s: every call shows what its VirtualService predicts (baseline first)', (name) => {
    const r = report(name);
    expect(r.calls[0]!.baseline, 'the baseline runs first').toBe(true);
    for (const c of r.calls) expect([...c.outcome.problems, ...c.serverProblems], describeCall(c)).toEqual([]);
  });

  it('delay: OK, latency at least the delay and under delay + 2 s; the call reached the server late', () => {
    const r = report('delay');
    const [call] = fault(r);
    expect(call!.run.code).toBe(0);
    const [ms] = latencies(call!);
    expect(ms).toBeGreaterThanOrEqual(3000);
    expect(ms).toBeLessThan(5000);
    expect(call!.command).toMatch(/-expect_code OK -expect_min_latency 3000ms -expect_max_latency 5000ms/);
    const baselineMs = latencies(r.calls[0]!);
    expect(Math.max(...baselineMs)).toBeLessThan(1500);
  });

  it('delay-deadline: exit 68 (DEADLINE_EXCEEDED) after about 1 s, and the server never answered it OK', () => {
    const [raw, expecting] = fault(report('delay-deadline'));
    expect(raw!.run.code, describeCall(raw!)).toBe(68);
    expect(raw!.outcome.requests[0]!.status).toBe('DEADLINE_EXCEEDED');
    expect(latencies(raw!)[0]).toBeGreaterThanOrEqual(980);
    expect(latencies(raw!)[0]).toBeLessThan(2500);
    expect(expecting!.run.code, describeCall(expecting!)).toBe(0); // -expect_code DEADLINE_EXCEEDED met
    // checked after waiting past the delay: nothing forwarded late, or logged as the failure it was
    for (const c of [raw!, expecting!]) {
      expect(c.serverEntries.filter((e) => e.status === 'OK')).toEqual([]);
      for (const e of c.serverEntries) expect(['DEADLINE_EXCEEDED', 'CANCELLED']).toContain(e.status);
    }
  });

  it('abort: exit 78 (UNAVAILABLE), details "fault filter abort", fast, and the server saw nothing', () => {
    const [raw, expecting] = fault(report('abort'));
    expect(raw!.run.code, describeCall(raw!)).toBe(78);
    expect(raw!.outcome.requests[0]).toMatchObject({ code: 14, status: 'UNAVAILABLE', details: 'fault filter abort' });
    expect(expecting!.run.code).toBe(0);
    expect(raw!.serverEntries).toEqual([]);
    expect(expecting!.serverEntries).toEqual([]);
  });

  it("header-delay: only the call with 'end-user: jason' is delayed", () => {
    const [jason, none, alice] = fault(report('header-delay'));
    expect(latencies(jason!)[0]).toBeGreaterThanOrEqual(3000);
    expect(latencies(none!)[0]).toBeLessThan(1500);
    expect(latencies(alice!)[0]).toBeLessThan(1500);
    for (const c of [jason, none, alice]) expect(c!.outcome.requests[0]!.status).toBe('OK');
  });

  it('percent-delay: 30..70 of 100 delayed, and no latency between 1.5 s and the 3 s delay', () => {
    const [batch] = fault(report('percent-delay'));
    const ms = latencies(batch!);
    expect(ms).toHaveLength(100);
    const delayed = ms.filter((x) => x >= 3000);
    const undelayed = ms.filter((x) => x < 1500);
    console.info(`percent-delay: ${delayed.length} of 100 delayed; undelayed max ${Math.max(...undelayed).toFixed(1)} ms, delayed min ${Math.min(...delayed).toFixed(1)} ms`);
    expect(delayed.length + undelayed.length, 'every latency on one side of the gap').toBe(100);
    expect(delayed.length).toBeGreaterThanOrEqual(30);
    expect(delayed.length).toBeLessThanOrEqual(70);
    expect(batch!.outcome.delayed).toBe(delayed.length);
  });

  it('tls-passthrough: the TLS call behind a tcp frontend is not delayed, the plaintext control in the same run is', () => {
    const r = report('tls-passthrough');
    const [control, tls] = fault(r);
    expect(latencies(control!)[0]).toBeGreaterThanOrEqual(3000);
    expect(latencies(tls!)[0]).toBeLessThan(1500);
    expect(tls!.command).toMatch(/ -tls /);
    expect(tls!.outcome.requests[0]!.message).toBe('Hello world');
    expect(r.haproxyConfig).toMatch(/frontend tls\n[^]*?mode tcp/);
  });
});
