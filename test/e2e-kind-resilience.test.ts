// The resilience scenarios in the kind e2e (e2e/kind-resilience.ts): the plan as --dry-run prints it, and the
// real path against a simulated cluster whose mesh shows what each scenario predicts (or, flawed, does not):
// this checks the runner's own logic (server setup, reading the client's JSON and every pod's log, the verdict,
// the second run after a late config push, clean-up), not Istio, which only a real run can.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { runResiliencePlans, type Runner } from '../e2e/kind-resilience.ts';
import { NAMESPACE, SERVERS } from '../e2e/kind.ts';
import { planResilience, resilienceScenarios, runsInKind, type ResiliencePlan } from '../e2e/resilience.ts';
import { root } from './helpers/spawn.ts';

const kindNames = resilienceScenarios.filter(runsInKind).map((s) => s.name);
const ns = `kubectl --context kind-grpc-helloworld-e2e -n ${NAMESPACE}`;

describe('npm run e2e:kind -- --dry-run: the resilience scenarios', () => {
  const r = spawnSync(process.execPath, ['e2e/kind.ts', '--dry-run', '--only', kindNames.join(',')], { cwd: root, encoding: 'utf8', timeout: 20_000 });
  const lines = r.stdout.split('\n');
  const at = (text: string, from = 0) => lines.findIndex((l, i) => i >= from && l.includes(text));

  it('runs every scenario kind can, in table order, and none of the local-only ones', () => {
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const order = kindNames.map((n) => at(`# resilience scenario ${n}:`));
    expect(order.every((i) => i > 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(r.stdout).not.toMatch(/connections-pinned|connections-spread/);
  });

  it('per scenario: servers set and rolled out, files applied, the push awaited, the call, every pod\'s log, the objects deleted', () => {
    const start = at('# resilience scenario ejection:');
    const steps = [
      `${ns} apply -k k8s/plaintext-v2`,
      `${ns} patch deployment ${SERVERS.grpc.deployment} --type=json '-p=[{"op":"replace","path":"/spec/template/spec/containers/0/command","value":["/server"]}]'`,
      `${ns} scale deployment/${SERVERS.grpc.deployment} --replicas=1`,
      `"value":["/server","-crash_rate","1"]`,
      `${ns} rollout status deployment/${SERVERS.grpc.deployment}-v2`,
      `${ns} apply -f k8s/istio/outlier-detection.yaml`,
      '# wait 15 s for Istio to push the configuration',
      `${ns} exec deploy/grpc-client-deployment -c client -- /client -server_addr grpc-helloworld-service:10000 -timeout 5 -count 30 -interval 0.1 -json`,
      `${ns} get pods -l app=grpc-helloworld -o 'jsonpath={range .items[*]}{.metadata.name} {.metadata.labels.version}`,
      `${ns} logs POD -c helloworld --tail=-1 --since-time=CALL_START`,
      `${ns} delete destinationrule grpc-helloworld-destination-rule --ignore-not-found`,
    ];
    let i = start;
    for (const step of steps) {
      const next = at(step, i);
      expect(next, `${step}\nafter line ${i}: ${lines[i]}`).toBeGreaterThan(i);
      i = next;
    }
    const mirror = at('# resilience scenario mirror:');
    expect(at(`${ns} delete virtualservice grpc-helloworld-virtual-service --ignore-not-found`, mirror)).toBeGreaterThan(mirror);
  });

  it('sets the servers back at the end: v1 two replicas without flags, v2 none', () => {
    const end = at('# resilience scenarios done');
    expect(end).toBeGreaterThan(0);
    expect(at(`${ns} scale deployment/${SERVERS.grpc.deployment} --replicas=2`, end)).toBeGreaterThan(end);
    expect(at(`${ns} scale deployment/${SERVERS.grpc.deployment}-v2 --replicas=0`, end)).toBeGreaterThan(end);
  });
});

/** A cluster whose mesh shows, for the scenario whose files are applied, a run that meets its plan. */
class SimulatedMesh {
  commands: string[][] = [];
  out: string[] = [];
  t = Date.parse('2030-01-01T00:00:00.000Z');
  private scale: Record<string, number> = { v1: 2, v2: 0 };
  private applied: string[] = [];
  private logs = new Map<string, Array<Record<string, unknown>>>();
  constructor(
    private readonly plans: ResiliencePlan[],
    /** a flaw: the run that breaks the plan, or the first run only (a late push) */
    private readonly flaw?: { kind: 'no-ejection' | 'late-push' },
  ) {}
  private execs = 0;

  runner(): Runner {
    return {
      dryRun: false,
      out: (l) => this.out.push(l),
      note: (t) => this.out.push(`# ${t}`),
      iso: () => new Date(this.t).toISOString(),
      sleep: async (ms) => {
        this.t += ms;
      },
      run: async (argv) => this.exec(argv),
    };
  }

  private pods(): Array<{ name: string; version: 'v1' | 'v2' }> {
    return (['v1', 'v2'] as const).flatMap((v) => Array.from({ length: this.scale[v]! }, (_, i) => ({ name: `pod-${v}-${i}`, version: v })));
  }

  private async exec(argv: string[]) {
    this.commands.push(argv);
    const ok = (stdout = '') => ({ code: 0, stdout, stderr: '' });
    const rest = argv.slice(5); // kubectl --context CTX -n NS
    const [verb] = rest;
    if (verb === 'scale') this.scale[rest[1]!.endsWith('-v2') ? 'v2' : 'v1'] = Number(rest[2]!.split('=')[1]);
    if (verb === 'apply' && rest[1] === '-f') this.applied.push(rest[2]!.replace('k8s/istio/', ''));
    if (verb === 'delete') this.applied = [];
    if (verb === 'get') return ok(this.pods().map((p) => `${p.name} ${p.version}\n`).join(''));
    if (verb === 'logs') return ok((this.logs.get(rest[1]!) ?? []).map((e) => JSON.stringify(e)).join('\n'));
    if (verb === 'exec') return ok(JSON.stringify({ requests: this.client(rest.slice(rest.indexOf('--') + 4)) }));
    return ok();
  }

  /** The client's requests for the scenario in force (its files, and these client args), and the pods' logs of them. */
  private client(args: string[]) {
    const plan = this.plans.find((p) => p.scenario.files.join() === this.applied.join() && p.scenario.args.join() === args.slice(0, -1).join())!;
    const pods = this.pods();
    const time = new Date(this.t + 1).toISOString();
    const line = (pod: string, status = 'OK', authority = 'grpc-helloworld-service:10000') =>
      this.logs.set(pod, [...(this.logs.get(pod) ?? []), { time, method: '/helloworld.Greeter/SayHello', peer: '127.0.0.6:4000', authority, status }]);
    const e = plan.expectation;
    const n = plan.count;
    const request = (status = 'OK', latency_ms = 5) => ({ start: time, latency_ms, code: status === 'OK' ? 0 : 14, status });
    const v1 = pods.filter((p) => p.version === 'v1');
    const v2 = pods.filter((p) => p.version === 'v2');
    const flawed = this.flaw?.kind === 'late-push' ? this.execs++ === 0 : this.flaw !== undefined;
    this.logs.clear();
    switch (e.kind) {
      case 'failure-rate': {
        const failed = Math.round(n * e.p);
        for (let i = 0; i < n; i++) line(v1[i % v1.length]!.name, i < failed ? 'UNAVAILABLE' : 'OK');
        return Array.from({ length: n }, (_, i) => request(i < failed ? 'UNAVAILABLE' : 'OK'));
      }
      case 'ejection':
        for (let i = 0; i < (flawed ? 10 : 1); i++) line(v2[0]!.name, 'UNAVAILABLE');
        for (let i = 1; i < n; i++) line(v1[0]!.name);
        return Array.from({ length: n }, (_, i) => request(i === 0 ? 'UNAVAILABLE' : 'OK'));
      case 'retried':
        line(v2[0]!.name, 'UNAVAILABLE');
        for (let i = 0; i < n; i++) line(v1[0]!.name);
        return Array.from({ length: n }, () => request());
      case 'per-try-timeout':
        for (let i = 0; i < n * e.tries; i++) line(v1[0]!.name, 'CANCELLED');
        return Array.from({ length: n }, () => request('UNAVAILABLE', e.tries * e.perTryMs + 200));
      case 'overflow':
        for (let i = 0; i < e.maxOk; i++) line(v1[0]!.name);
        return Array.from({ length: n }, (_, i) => (i < e.maxOk ? request('OK', e.sleepMs + 10) : request('UNAVAILABLE', 3)));
      case 'spread':
      case 'sticky':
        for (let i = 0; i < n; i++) line(e.kind === 'sticky' || flawed ? v1[0]!.name : v1[i % v1.length]!.name);
        return Array.from({ length: n }, () => request());
      case 'mirror':
        for (let i = 0; i < n; i++) {
          line(v1[0]!.name);
          line(v2[0]!.name, 'OK', 'grpc-helloworld-service:10000-shadow');
        }
        return Array.from({ length: n }, () => request());
    }
  }
}

describe('e2e:kind resilience scenarios against a simulated cluster', () => {
  const plans = planResilience(kindNames);
  const kubectl = (n: string | null, ...args: string[]) => ['kubectl', '--context', 'kind-x', ...(n ? ['-n', n] : []), ...args];
  const context = { namespace: NAMESPACE, clientDeployment: 'grpc-client-deployment', clientContainer: 'client', serverContainer: 'helloworld', server: SERVERS.grpc };

  it('passes every scenario on a mesh that shows what the plans predict, and sets the servers back', async () => {
    const mesh = new SimulatedMesh(plans);
    const failures = await runResiliencePlans(mesh.runner(), kubectl, context, plans);
    expect(failures, mesh.out.join('\n')).toEqual([]);
    for (const name of kindNames) expect(mesh.out).toContain(`# resilience scenario ${name}: passed`);
    expect(mesh.commands.at(-1)).toEqual(kubectl(NAMESPACE, 'rollout', 'status', `deployment/${SERVERS.grpc.deployment}`, '--timeout=300s'));
  });

  it('catches a replica that is never ejected, naming what its log shows', async () => {
    const only = plans.filter((p) => p.scenario.name === 'ejection');
    const failures = await runResiliencePlans(new SimulatedMesh(only, { kind: 'no-ejection' }).runner(), kubectl, context, only);
    expect(failures).toEqual(['ejection: the crashing replica pod-v2-0 logged 10 calls, want at most 3: it got calls after its ejection']);
  });

  it('runs once more when the first run fails (a late push), and the second verdict counts', async () => {
    const only = plans.filter((p) => p.scenario.name === 'round-robin');
    const mesh = new SimulatedMesh(only, { kind: 'late-push' });
    expect(await runResiliencePlans(mesh.runner(), kubectl, context, only)).toEqual([]);
    expect(mesh.commands.filter((c) => c.includes('exec'))).toHaveLength(2);
  });
});
