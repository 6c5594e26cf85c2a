// The local runner of the resilience scenarios (resilience.ts) that HAProxy can model: the scenario's
// replicas (dist/server.js with their flags, each its own access log), one HAProxy whose backend is rendered
// from the scenario's manifests (traffic-policy.ts) or, for `path: none`, a TCP round robin standing in for
// kube-proxy; the built client runs the scenario's command with -json; every replica's log is read after.
import { runClient, type SpawnedServer } from '../test/helpers/spawn.ts';
import { freePort, HaproxyBindError, startHaproxy, type FrontendSpec, type RunningHaproxy } from './haproxy.ts';
import { logEntries, startServer } from './local.ts';
import { checkResilience, replicaLog, type Observed, type ResiliencePlan, type Version } from './resilience.ts';
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs one plan end to end and stops everything it started. */
export async function runResilienceLocally(plan: ResiliencePlan): Promise<ResilienceReport> {
  const { scenario } = plan;
  const replicas: Array<{ server: SpawnedServer; version: Version; name: string }> = [];
  let haproxy: RunningHaproxy | undefined;
  try {
    for (const version of ['v1', 'v2'] as const) {
      const set = scenario.servers[version];
      for (let i = 0; i < (set?.replicas ?? 0); i++) replicas.push({ server: await startServer(set!.args), version, name: `${version}-${i}` });
    }
    const endpoints = replicas.map((r) => ({ host: '127.0.0.1', port: r.server.port }));
    let listen = { host: '127.0.0.1', port: 0 };
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
      replicas: replicas.map((r) => replicaLog(r.name, r.version, logEntries(r.server) as unknown as Array<{ method: string; status: string; authority: string }>)),
    };
    const problems = doc ? checkResilience(plan, observed) : [`${scenario.name}: no -json document: ${run.stdout.slice(0, 200)} ${run.stderr.slice(0, 300)}`];
    return { plan, command: `client ${args.join(' ')}`, exitCode: run.code, stderr: run.stderr, observed, problems, haproxyConfig: haproxy!.config };
  } finally {
    await Promise.all([haproxy?.stop(), ...replicas.map((r) => r.server.stop())]);
  }
}
