// The local runner of the resilience scenarios (resilience.ts) that HAProxy can model: the scenario's
// replicas (dist/server.js with their flags, each its own access log), one HAProxy whose backend is rendered
// from the scenario's manifests (traffic-policy.ts) or, for `path: none`, a TCP round robin standing in for
// kube-proxy; the built client runs the scenario's command with -json; every replica's log is read after.
// Scenarios with the same servers share one set of replicas, one after the other (each reads only the log
// lines written during its own run), unless a replica may crash: those get their own.
import { runClient, type SpawnedServer } from '../test/helpers/spawn.ts';
import { freePort, HaproxyBindError, startHaproxy, type FrontendSpec, type RunningHaproxy } from './haproxy.ts';
import { logEntries, startServer } from './local.ts';
import { checkResilience, replicaLog, type Observed, type ResiliencePlan, type ResilienceScenario, type Version } from './resilience.ts';
import { parseClientJson } from './scenarios.ts';

export interface ResilienceReport {
  plan: ResiliencePlan;
  command: string;
  exitCode: number | null;
  stderr: string;
  observed: Observed;
  problems: string[];
  haproxyConfig: string;
}

interface Replica {
  server: SpawnedServer;
  version: Version;
  name: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts a scenario's replicas together, in name order (v1-0, v1-1, v2-0); on a failure stops those that started. */
async function startReplicas(servers: ResilienceScenario['servers']): Promise<Replica[]> {
  const wanted = (['v1', 'v2'] as const).flatMap((version) =>
    Array.from({ length: servers[version]?.replicas ?? 0 }, (_, i) => ({ version, name: `${version}-${i}`, args: servers[version]!.args })),
  );
  const started = await Promise.allSettled(wanted.map(async (w) => ({ version: w.version, name: w.name, server: await startServer(w.args) })));
  const replicas = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) {
    await Promise.all(replicas.map((r) => r.server.stop()));
    throw failed.reason;
  }
  return replicas;
}

/** Runs one plan on running replicas, with its own HAProxy (stopped at the end). */
async function runOnReplicas(plan: ResiliencePlan, replicas: Replica[]): Promise<ResilienceReport> {
  const { scenario } = plan;
  const before = replicas.map((r) => logEntries(r.server).length);
  const endpoints = replicas.map((r) => ({ host: '127.0.0.1', port: r.server.port }));
  let haproxy: RunningHaproxy | undefined;
  let listen = { host: '127.0.0.1', port: 0 };
  try {
    for (let attempt = 1; ; attempt++) {
      listen = { host: '127.0.0.1', port: await freePort() };
      const frontend: FrontendSpec = {
        name: 'resilience',
        listen,
        protocol: scenario.path === 'none' ? 'tcp' : 'grpc',
        backend: endpoints[0]!,
        replicas: endpoints.slice(1),
        ...(scenario.path === 'none' ? {} : { policy: plan.policy }),
      };
      try {
        haproxy = await startHaproxy({ frontends: [frontend] });
        break;
      } catch (err) {
        if (!(err instanceof HaproxyBindError) || attempt >= 3) throw err;
      }
    }
    const args = ['-server_addr', `${listen.host}:${listen.port}`, ...scenario.args, '-json'];
    const run = await runClient(args, { timeoutMs: 60_000 });
    await sleep(300); // the last access-log lines
    const doc = parseClientJson(run.stdout);
    const observed: Observed = {
      requests: doc?.requests ?? [],
      replicas: replicas.map((r, i) => replicaLog(r.name, r.version, logEntries(r.server).slice(before[i]))),
    };
    const problems = doc ? checkResilience(plan, observed) : [`${scenario.name}: no -json document: ${run.stdout.slice(0, 200)} ${run.stderr.slice(0, 300)}`];
    return { plan, command: `client ${args.join(' ')}`, exitCode: run.code, stderr: run.stderr, observed, problems, haproxyConfig: haproxy.config };
  } finally {
    await haproxy?.stop();
  }
}

/** The plans that can share replicas: the same servers, none of which may crash. */
function groups(plans: readonly ResiliencePlan[]): ResiliencePlan[][] {
  const byServers = new Map<string, ResiliencePlan[]>();
  plans.forEach((p, i) => {
    const servers = p.scenario.servers;
    const crashes = [servers.v1, servers.v2].some((s) => s?.args.includes('-crash_rate'));
    const key = crashes ? `crash ${i}` : JSON.stringify(servers);
    byServers.set(key, [...(byServers.get(key) ?? []), p]);
  });
  return [...byServers.values()];
}

/**
 * Runs every plan: `parallel` groups at a time (each group's replicas started once, its plans one after the
 * other), everything stopped in the end. Each plan's report, or why it could not run.
 */
export async function runResilienceLocally(plans: readonly ResiliencePlan[], parallel: number): Promise<Map<string, PromiseSettledResult<ResilienceReport>>> {
  const results = new Map<string, PromiseSettledResult<ResilienceReport>>();
  const queue = groups(plans);
  const worker = async () => {
    for (let group = queue.shift(); group; group = queue.shift()) {
      let replicas: Replica[];
      try {
        replicas = await startReplicas(group[0]!.scenario.servers);
      } catch (reason) {
        for (const p of group) results.set(p.scenario.name, { status: 'rejected', reason });
        continue;
      }
      try {
        for (const p of group) {
          const [result] = await Promise.allSettled([runOnReplicas(p, replicas)]);
          results.set(p.scenario.name, result!);
        }
      } finally {
        await Promise.all(replicas.map((r) => r.server.stop()));
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return results;
}
