// The resilience scenarios (resilience.ts) in the kind e2e, after the fault scenarios, against real sidecars.
// Per scenario: the server Deployments set as the scenario says (replicas and flags of version v1,
// k8s/plaintext; and of v2, k8s/plaintext-v2, deployed the first time one is needed), rollouts ready, the
// scenario's files applied, a wait for Istio's config push, the client's command (kubectl exec into the client
// pod, -json), every server pod's access log since the call started; checked with checkResilience(). A run
// that fails is repeated once after another wait (the push may have come late); the second verdict counts.
// Then the files' objects are deleted. At the end the servers are set back (v1: 2 replicas, no flags; v2: 0).
import { shellQuote } from './kind.ts';
import { checkResilience, replicaLog, type Observed, type ReplicaLog, type ResiliencePlan, type Version } from './resilience.ts';
import { parseClientJson } from './scenarios.ts';

/** How long Istio takes to push a changed VirtualService or DestinationRule to the sidecars (generous). */
export const PUSH_WAIT_MS = 15_000;

export interface KindContext {
  namespace: string;
  clientDeployment: string;
  clientContainer: string;
  serverContainer: string;
  /** the plaintext server: its Deployment, Service and pods' app label */
  server: { deployment: string; service: string; app: string };
}

/** The slice of kind.ts's Shell this needs. */
export interface Runner {
  dryRun: boolean;
  out(line: string): void;
  note(text: string): void;
  iso(): string;
  sleep(ms: number): Promise<void>;
  run(argv: string[], options?: { allowFail?: boolean; quiet?: boolean; dryResult?: { stdout?: string } }): Promise<{ code: number; stdout: string; stderr: string }>;
}

type Kubectl = (ns: string | null, ...args: string[]) => string[];

const V2_OVERLAY = 'k8s/plaintext-v2';

export async function runResiliencePlans(sh: Runner, kubectl: Kubectl, k: KindContext, plans: ResiliencePlan[]): Promise<string[]> {
  const failures: string[] = [];
  const deployment = (v: Version) => (v === 'v1' ? k.server.deployment : `${k.server.deployment}-v2`);
  let v2Deployed = false;
  // what an earlier, interrupted run may have left (the VirtualService is taken care of with the fault scenarios)
  const names = [...new Set(plans.flatMap((p) => p.objects).filter((o) => o.kind === 'DestinationRule').map((o) => o.name))];
  for (const name of names) await sh.run(kubectl(k.namespace, 'delete', 'destinationrule', name, '--ignore-not-found'), { allowFail: true });
  const setServers = async (v: Version, replicas: number, args: readonly string[]) => {
    const patch = JSON.stringify([{ op: 'replace', path: '/spec/template/spec/containers/0/command', value: ['/server', ...args] }]);
    await sh.run(kubectl(k.namespace, 'patch', 'deployment', deployment(v), '--type=json', `-p=${patch}`));
    await sh.run(kubectl(k.namespace, 'scale', `deployment/${deployment(v)}`, `--replicas=${replicas}`));
  };
  for (const plan of plans) {
    const { scenario } = plan;
    sh.note('');
    sh.note(`resilience scenario ${scenario.name}: ${scenario.summary}`);
    try {
      const v2 = scenario.servers.v2;
      if (v2 && !v2Deployed) {
        await sh.run(kubectl(k.namespace, 'apply', '-k', V2_OVERLAY));
        v2Deployed = true;
      }
      await setServers('v1', scenario.servers.v1.replicas, scenario.servers.v1.args);
      if (v2Deployed) await setServers('v2', v2?.replicas ?? 0, v2?.args ?? []);
      for (const v of v2Deployed ? (['v1', 'v2'] as const) : (['v1'] as const)) {
        await sh.run(kubectl(k.namespace, 'rollout', 'status', `deployment/${deployment(v)}`, '--timeout=300s'));
      }
      for (const file of scenario.files) await sh.run(kubectl(k.namespace, 'apply', '-f', `k8s/istio/${file}`));
      let problems: string[] = [];
      for (let round = 1; round <= 2; round++) {
        sh.note(`wait ${PUSH_WAIT_MS / 1000} s for Istio to push the configuration to the client's sidecar${round > 1 ? ' (again: the first run failed)' : ''}`);
        if (!sh.dryRun) await sh.sleep(PUSH_WAIT_MS);
        problems = await runOnce(sh, kubectl, k, plan);
        if (problems.length === 0 || sh.dryRun) break;
      }
      failures.push(...problems);
      if (!sh.dryRun) sh.note(problems.length === 0 ? `resilience scenario ${scenario.name}: passed` : `resilience scenario ${scenario.name}: FAILED\n#   ${problems.join('\n#   ')}`);
    } catch (err) {
      failures.push(`${scenario.name}: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      for (const o of plan.objects) await sh.run(kubectl(k.namespace, 'delete', o.kind.toLowerCase(), o.name, '--ignore-not-found'), { allowFail: true });
    }
  }
  if (plans.length > 0) {
    sh.note('resilience scenarios done: the servers as they were (v1: 2 replicas, no flags; v2: none)');
    await setServers('v1', 2, []);
    if (v2Deployed) await setServers('v2', 0, []);
    await sh.run(kubectl(k.namespace, 'rollout', 'status', `deployment/${k.server.deployment}`, '--timeout=300s'), { allowFail: true });
  }
  return failures;
}

async function runOnce(sh: Runner, kubectl: Kubectl, k: KindContext, plan: ResiliencePlan): Promise<string[]> {
  const cmd = kubectl(k.namespace, 'exec', `deploy/${k.clientDeployment}`, '-c', k.clientContainer, '--', '/client', '-server_addr', `${k.server.service}:10000`, ...plan.scenario.args, '-json');
  const from = sh.dryRun ? 'CALL_START' : sh.iso();
  const run = await sh.run(cmd, { allowFail: true, quiet: !sh.dryRun });
  if (!sh.dryRun) sh.out(`$ ${shellQuote(cmd)}  -> exit ${run.code}`);
  if (!sh.dryRun) await sh.sleep(2000); // the servers' last access-log lines
  // every server pod with its version label, then each one's log since the call started
  const pods = await sh.run(
    kubectl(k.namespace, 'get', 'pods', '-l', `app=${k.server.app}`, '-o', 'jsonpath={range .items[*]}{.metadata.name} {.metadata.labels.version}{"\\n"}{end}'),
    { quiet: true },
  );
  const replicas: ReplicaLog[] = [];
  for (const line of sh.dryRun ? ['POD VERSION'] : pods.stdout.split('\n').filter(Boolean)) {
    const [name, version] = line.split(' ') as [string, string];
    const logs = await sh.run(kubectl(k.namespace, 'logs', name, '-c', k.serverContainer, '--tail=-1', `--since-time=${from}`), { quiet: true, allowFail: true });
    const entries = logs.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { method: string; status: string; authority: string; peer?: string; time: string })
      // the exec probes call from inside the pod (127.0.0.1, ::1); mesh calls come through the sidecar
      .filter((e) => !/^(127\.0\.0\.1|\[?::1\]?|::ffff:127\.0\.0\.1):/.test(e.peer ?? '') && e.time >= from);
    replicas.push(replicaLog(name, version === 'v2' ? 'v2' : 'v1', entries));
  }
  if (sh.dryRun) return [];
  const doc = parseClientJson(run.stdout);
  if (!doc) return [`${plan.scenario.name}: no -json document from the client (exit ${run.code}): ${run.stderr.trim().split('\n').slice(-2).join(' | ')}`];
  const observed: Observed = { requests: doc.requests, replicas };
  return checkResilience(plan, observed);
}
