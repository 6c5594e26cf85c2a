// The resilience e2e, locally: every scenario of e2e/resilience.ts that HAProxy can model, through HAProxy
// rendered from the scenario's k8s/istio manifests, in front of built servers (several replicas, some in
// crash mode), all scenarios at once; and the plans themselves (what each predicts from the manifests).
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { settledScenarios } from './helpers/settled-scenarios.ts';
import { FAULT_LUA, findHaproxy, renderHaproxyConfig } from '../e2e/haproxy.ts';
import { checkResilience, planResilience, planResilienceScenario, ResilienceError, resilienceScenarios, runsInKind, runsLocally, type ResiliencePlan } from '../e2e/resilience.ts';
import { runResilienceLocally, type ResilienceReport } from '../e2e/resilience-local.ts';
import { binomialOutside, istioDir } from '../e2e/scenarios.ts';
import { readDestinationRule } from '../e2e/traffic-policy.ts';
import { UnsupportedVirtualService } from '../e2e/virtual-service.ts';

const haproxy = findHaproxy();
const plans = planResilience();
const plan = (name: string) => plans.find((p) => p.scenario.name === name)!;

describe('the resilience plans, predicted from k8s/istio', () => {
  it('cover the issue: retries (default, off, on reset), ejection, circuit breaker, four balancers, connections, mirroring', () => {
    expect(resilienceScenarios.map((s) => s.name)).toEqual([
      'fail-rate-no-retries',
      'fail-rate-default-retries',
      'ejection',
      'retry-on-reset',
      'per-try-timeout',
      'circuit-breaker',
      'round-robin',
      'least-request',
      'random',
      'consistent-hash',
      'connections-pinned',
      'connections-spread',
      'mirror',
    ]);
    expect(resilienceScenarios.filter((s) => !runsLocally(s)).map((s) => s.name)).toEqual(['fail-rate-default-retries', 'mirror']);
    expect(resilienceScenarios.filter((s) => !runsInKind(s)).map((s) => s.name)).toEqual(['connections-pinned', 'connections-spread']);
  });

  it("predicts the failure rate from the retry policy: 50 % without retries, 0.5^3 with Istio's default", () => {
    expect(plan('fail-rate-no-retries').expectation).toEqual({ kind: 'failure-rate', failRate: 0.5, p: 0.5, bound: { lo: 30, hi: 70 }, code: 14 });
    expect(plan('fail-rate-default-retries').expectation).toEqual({ kind: 'failure-rate', failRate: 0.5, p: 0.125, bound: { lo: 0, hi: 26 }, code: 14 });
    // a correct mesh misses these bounds less than once in 10,000 runs
    expect(binomialOutside(100, 0.5, { lo: 30, hi: 70 })).toBeLessThan(1e-4);
    expect(binomialOutside(100, 0.125, { lo: 0, hi: 26 })).toBeLessThan(1e-4);
  });

  it('predicts ejection, retries on reset, overflow, spreads, stickiness and the mirror from the DestinationRules', () => {
    expect(plan('ejection').expectation).toEqual({ kind: 'ejection', maxFailures: 3, bad: 'v2' });
    expect(plan('retry-on-reset').expectation).toEqual({ kind: 'retried', bad: 'v2' });
    expect(plan('retry-on-reset').policy.retries).toEqual({ attempts: 3, retryOn: ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'reset'], perTryTimeoutMs: 1000 });
    expect(plan('per-try-timeout').expectation).toEqual({ kind: 'per-try-timeout', tries: 4, perTryMs: 1000 });
    expect(plan('circuit-breaker').expectation).toEqual({ kind: 'overflow', maxOk: 3, sleepMs: 2000 });
    expect(plan('round-robin').expectation).toEqual({ kind: 'spread', balancer: 'round-robin', bound: { lo: 8, hi: 12 } });
    expect(plan('random').expectation).toEqual({ kind: 'spread', balancer: 'random', bound: { lo: 7, hi: 33 } });
    expect(plan('consistent-hash').expectation).toMatchObject({ kind: 'sticky' });
    expect(plan('connections-pinned').expectation).toMatchObject({ kind: 'sticky' });
    expect(plan('connections-spread').expectation).toMatchObject({ kind: 'spread', bound: { lo: 8, hi: 12 } });
    expect(plan('mirror').expectation).toEqual({ kind: 'mirror' });
    expect(plan('mirror').objects).toEqual([
      { kind: 'VirtualService', name: 'grpc-helloworld-virtual-service' },
      { kind: 'DestinationRule', name: 'grpc-helloworld-destination-rule' },
    ]);
  });

  it('fails loudly when a change would make a scenario vacuous', () => {
    const base = resilienceScenarios.find((s) => s.name === 'retry-on-reset')!;
    expect(() => planResilienceScenario({ ...base, files: ['retries-off.yaml'] })).toThrow(ResilienceError);
    const cb = resilienceScenarios.find((s) => s.name === 'circuit-breaker')!;
    expect(() => planResilienceScenario({ ...cb, servers: { v1: { replicas: 1, args: [] } } })).toThrow(/needs a slow server/);
    const hash = resilienceScenarios.find((s) => s.name === 'consistent-hash')!;
    expect(() => planResilienceScenario({ ...hash, args: ['-count', '20'] })).toThrow(/do not send x-user/);
  });

  it('every check fails on a run that does not show what it predicts', () => {
    const ok = (n: number) => Array.from({ length: n }, () => ({ start: '', latency_ms: 5, code: 0, status: 'OK' }));
    const failing = (n: number) => Array.from({ length: n }, () => ({ start: '', latency_ms: 5, code: 14, status: 'UNAVAILABLE' }));
    const two = (a: number, b: number) => [
      { name: 'v1-0', version: 'v1' as const, ok: a, logged: a, shadow: 0 },
      { name: 'v1-1', version: 'v1' as const, ok: b, logged: b, shadow: 0 },
    ];
    expect(checkResilience(plan('fail-rate-no-retries'), { requests: [...ok(88), ...failing(12)], replicas: two(44, 44) })).toEqual([
      'fail-rate-no-retries: 12 of 100 failed, want 30..70 (p 0.5)',
    ]);
    expect(checkResilience(plan('round-robin'), { requests: ok(20), replicas: two(20, 0) })[0]).toMatch(/replica v1-0 answered 20, want 8..12/);
    const ejected = { requests: [...ok(20), ...failing(1), ...ok(9)], replicas: [{ name: 'v2-0', version: 'v2' as const, ok: 0, logged: 5, shadow: 0 }] };
    expect(checkResilience(plan('ejection'), ejected)).toEqual([
      'ejection: 1 failures in the second half of the run: the replica was not ejected',
      'ejection: the crashing replica v2-0 logged 5 calls, want at most 3: it got calls after its ejection',
    ]);
    expect(checkResilience(plan('circuit-breaker'), { requests: ok(10), replicas: [] })[0]).toBe('circuit-breaker: 10 OK, want 1..3');
  });

  it('reads every DestinationRule of k8s/istio, and its HAProxy rendering passes `haproxy -c`', async () => {
    const files = ['outlier-detection.yaml', 'circuit-breaker.yaml', 'lb-round-robin.yaml', 'lb-least-request.yaml', 'lb-random.yaml', 'lb-consistent-hash.yaml'];
    for (const file of files) expect(readDestinationRule(readFileSync(join(istioDir, file), 'utf8'), file).name).toBe('grpc-helloworld-destination-rule');
    expect(() => readDestinationRule(readFileSync(join(istioDir, 'mirror.yaml'), 'utf8'), 'mirror.yaml')).toThrow(UnsupportedVirtualService); // subsets: kind only
    if (!haproxy) return;
    const dir = await mkdtemp(join(tmpdir(), 'e2e-resilience-'));
    try {
      for (const p of plans.filter((x) => runsLocally(x.scenario))) {
        const cfg = renderHaproxyConfig({
          luaFile: join(dir, 'fault.lua'),
          frontends: [
            {
              name: 'r',
              listen: { host: '127.0.0.1', port: 1 },
              protocol: p.scenario.path === 'none' ? 'tcp' : 'grpc',
              backend: { host: '127.0.0.1', port: 2 },
              replicas: [{ host: '127.0.0.1', port: 3 }],
              policy: p.policy,
            },
          ],
        });
        await writeFile(join(dir, 'fault.lua'), FAULT_LUA);
        await writeFile(join(dir, 'haproxy.cfg'), cfg);
        const check = spawnSync(haproxy, ['-c', '-f', join(dir, 'haproxy.cfg')], { encoding: 'utf8' });
        expect(check.status, `${p.scenario.name}: ${check.stdout}${check.stderr}\n${cfg}`).toBe(0);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!haproxy)('resilience e2e, locally: HAProxy rendered from k8s/istio in front of several built servers', () => {
  const local = plans.filter((p) => runsLocally(p.scenario));
  // two groups at a time (replicas started together, shared by the scenarios with the same servers): the machine may be busy
  const report = settledScenarios<ResilienceReport>(
    'local resilience e2e (OK per replica)',
    () => runResilienceLocally(local, 2),
    (r) => r.observed.replicas.map((x) => x.ok).join('/'),
    180_000,
  );
  const describeRun = (r: ResilienceReport) =>
    `${r.command}\n  exit ${r.exitCode}\n  replicas ${JSON.stringify(r.observed.replicas)}\n  statuses ${JSON.stringify(r.observed.requests.map((q) => `${q.status} ${Math.round(q.latency_ms)}`))}\n  stderr ${r.stderr.slice(0, 600)}\n${r.haproxyConfig}`;

  it.each(local.map((p): [string, ResiliencePlan] => [p.scenario.name, p]))('%s: shows what its manifests predict', (name) => {
    const r = report(name);
    expect(r.problems, describeRun(r)).toEqual([]);
  });

  it('fail-rate-no-retries: every failure is the server\'s UNAVAILABLE, answered by a replica (none retried)', () => {
    const r = report('fail-rate-no-retries');
    const failed = r.observed.requests.filter((q) => q.status !== 'OK');
    console.info(`fail-rate-no-retries: ${failed.length} of 100 failed (bound 30..70)`);
    expect(failed.every((q) => q.details?.startsWith('injected failure'))).toBe(true);
    const logged = r.observed.replicas.reduce((n, x) => n + x.logged, 0);
    expect(logged).toBe(100); // one attempt per call
  });

  it('ejection: the crashed replica logged its one crash and answered nothing; the other answered every call after it', () => {
    const r = report('ejection');
    const [good, bad] = r.observed.replicas;
    expect(bad).toMatchObject({ version: 'v2', ok: 0, logged: 1 });
    const failed = r.observed.requests.filter((q) => q.status !== 'OK');
    expect(failed.length).toBeLessThanOrEqual(1);
    expect(good!.ok).toBe(30 - failed.length);
  });

  it('circuit-breaker: the calls over the limit fail fast with UNAVAILABLE, as Envoy\'s overflow does', () => {
    const r = report('circuit-breaker');
    const failed = r.observed.requests.filter((q) => q.status !== 'OK');
    console.info(`circuit-breaker: ${10 - failed.length} OK, ${failed.length} UNAVAILABLE in at most ${Math.max(...failed.map((q) => q.latency_ms)).toFixed(1)} ms`);
    expect(failed.length).toBeGreaterThanOrEqual(7);
  });
});

if (!haproxy) console.warn(`e2e-resilience.test.ts: haproxy not found: the local e2e is SKIPPED (.ci/run installs it)`);
