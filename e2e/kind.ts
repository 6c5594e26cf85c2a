// The fault-injection scenarios (e2e/scenarios.ts, the same table the local e2e runs) against a real
// Istio sidecar in a kind cluster. Opt-in, for a machine with Docker, kind, kubectl and istioctl:
//
//   npm run e2e:kind                      create (or reuse) the cluster, run every scenario, clean up
//   npm run e2e:kind -- --keep            ... and keep the cluster (and what was deployed) afterwards
//   npm run e2e:kind -- --dry-run         print every command of the plan, run nothing
//   npm run e2e:kind -- --only abort,delay --cluster NAME
//
// The plan: kind cluster -> Istio (minimal profile, JSON access logs on stdout) -> its own namespace,
// labelled istio-injection=enabled BEFORE any pod exists -> docker build + kind load -> the kustomize
// overlays k8s/plaintext, k8s/tls and k8s/client side by side in that namespace (every name they use is
// short: nothing assumes `default`) -> rollouts ready, sidecars
// present -> per scenario: baseline until 3 consecutive calls are clean, apply the VirtualService, poll
// until 3 consecutive calls show its effect (60 s cap), run the scenario's calls with `kubectl exec` into
// the client pod (the client measures its own latency: kubectl's overhead does not count), check the
// client sidecar's access log (DI / FI) and the server's, delete the VirtualService and see the baseline
// return -> the stream scenarios a mesh can run (e2e/stream-scenarios.ts: a route timeout cutting a server
// stream, a delay, a stream through an ingress gateway that terminates TLS, for which the plan adds the
// ingress gateway to the install) -> the resilience scenarios (e2e/resilience.ts, run by kind-resilience.ts:
// servers set per scenario, VirtualServices and DestinationRules applied, the client's counts and every
// replica's access log checked) -> clean up (unless --keep).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { runMain } from '../src/cli.ts';
import { SAY_HELLO_PATH } from '../src/rpc-names.ts';
import { statusName } from '../src/status.ts';
import {
  baselineCall,
  checkCall,
  checkServer,
  clientArgs,
  planScenarios,
  predict,
  repoRoot,
  scenarios,
  type Port,
  type Prediction,
  type ScenarioPlan,
  type ServerLogEntry,
} from './scenarios.ts';
import {
  checkStream,
  checkStreamServer,
  meshStreamScenarios,
  planStreamScenarios,
  streamClientArgs,
  type StreamLogEntry,
  type StreamPlan,
  type StreamPrediction,
} from './stream-scenarios.ts';
import { maxDelayMs } from './virtual-service.ts';
import { runResiliencePlans } from './kind-resilience.ts';
import { planResilience, resilienceScenarios, runsInKind } from './resilience.ts';

export const DEFAULT_CLUSTER = 'grpc-helloworld-e2e';
/** Everything the plan deploys goes here, not in `default`: the manifests must work in any namespace. */
export const NAMESPACE = 'grpc-helloworld-e2e';
/** The server variants as k8s/plaintext and k8s/tls name them (test/k8s.test.ts checks the overlays against these). */
export const SERVERS: Record<Port, { deployment: string; service: string; app: string; overlay: string }> = {
  grpc: { deployment: 'grpc-helloworld-deployment', service: 'grpc-helloworld-service', app: 'grpc-helloworld', overlay: 'k8s/plaintext' },
  tls: { deployment: 'grpc-helloworld-deployment-tls', service: 'grpc-helloworld-service-tls', app: 'grpc-helloworld-tls', overlay: 'k8s/tls' },
};
const CLIENT_DEPLOYMENT = 'grpc-client-deployment';
/** The ingress gateway the stream-through-the-gateway scenario installs (istioctl's default name and namespace). */
const INGRESS_GATEWAY = 'istio-ingressgateway';
const INGRESS_NAMESPACE = 'istio-system';
const CLIENT_CONTAINER = 'client';
const SERVER_CONTAINER = 'helloworld';
const POLL_CAP_MS = 60_000;
const CONSECUTIVE = 3;

/**
 * The versions the plan runs on, pinned. kind supports a node image only with the kind release it came with,
 * so the node image is kind v0.32.0's own (Kubernetes 1.36.1, by digest); istioctl installs its own version of
 * Istio, and 1.30 supports Kubernetes 1.32 to 1.36. The manifests themselves need Kubernetes >= 1.30 and Istio
 * >= 1.22 (README, Kubernetes: Versions).
 */
export const PINNED = {
  kind: '0.32.0',
  nodeImage: 'kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5',
  istio: '1.30.3',
} as const;
const ISTIO_DOWNLOAD = `curl -L https://istio.io/downloadIstio | ISTIO_VERSION=${PINNED.istio} sh -`;

/** What is wrong with the tools' versions, from `kind version` and `istioctl version --remote=false -o json`. */
export function versionProblems(kindVersion: string, istioctlVersion: string): string[] {
  const problems: string[] = [];
  const kind = /\bv?(\d+\.\d+\.\d+\S*)/.exec(kindVersion)?.[1];
  if (kind !== PINNED.kind) problems.push(`kind ${kind ? `v${kind}` : 'of unknown version'}, want v${PINNED.kind} (the release of the node image ${PINNED.nodeImage.split('@')[0]}): ${TOOLS.kind}`);
  let istio: string | undefined;
  try {
    istio = (JSON.parse(istioctlVersion) as { clientVersion?: { version?: string } }).clientVersion?.version;
  } catch {
    // not JSON: an istioctl too old or not istioctl
  }
  if (istio !== PINNED.istio) problems.push(`istioctl ${istio ?? 'of unknown version'}, want ${PINNED.istio} (it installs its own version of Istio): ${ISTIO_DOWNLOAD}`);
  return problems;
}

export const TOOLS: Record<string, string> = {
  docker: 'https://docs.docker.com/engine/install/',
  kind: 'https://kind.sigs.k8s.io/docs/user/quick-start/#installation',
  kubectl: 'https://kubernetes.io/docs/tasks/tools/',
  istioctl: 'https://istio.io/latest/docs/setup/getting-started/#download',
};

export const USAGE = `usage: npm run e2e:kind -- [--dry-run] [--keep] [--cluster NAME] [--only SCENARIO,...]
  --dry-run       print every command of the plan and run nothing
  --keep          keep the cluster and what was deployed (default: clean up on exit)
  --cluster NAME  the kind cluster to create or reuse (default ${DEFAULT_CLUSTER})
  --only LIST     run only these scenarios (default: all)`;

export class UsageError extends Error {}

/** Every scenario the kind e2e knows: the unary fault ones, the streams a mesh can run, then the resilience ones kind runs (the others are local-only: e2e/resilience.ts). */
export const allScenarioNames = () => [...scenarios, ...meshStreamScenarios(), ...resilienceScenarios.filter(runsInKind)].map((s) => s.name);

export interface KindOptions {
  dryRun: boolean;
  keep: boolean;
  cluster: string;
  only: string[];
  help: boolean;
}

export function parseKindArgs(argv: readonly string[]): KindOptions {
  const o: KindOptions = { dryRun: false, keep: false, cluster: DEFAULT_CLUSTER, only: [], help: false };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split(/=(.*)/s, 2) as [string, string | undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--dry-run':
        o.dryRun = true;
        break;
      case '--keep':
        o.keep = true;
        break;
      case '--cluster':
        o.cluster = value();
        if (!/^[a-z0-9][a-z0-9.-]*$/.test(o.cluster)) throw new UsageError(`--cluster ${JSON.stringify(o.cluster)}: a kind cluster name is lower-case letters, digits, '-' and '.'`);
        break;
      case '--only': {
        o.only = value().split(',').map((s) => s.trim()).filter(Boolean);
        const known = allScenarioNames();
        const unknown = o.only.filter((n) => !known.includes(n));
        if (unknown.length > 0) throw new UsageError(`--only: unknown scenario ${unknown.join(', ')} (known: ${known.join(', ')})`);
        break;
      }
      case '-h':
      case '--help':
        o.help = true;
        break;
      default:
        throw new UsageError(`unknown argument ${JSON.stringify(argv[i])}`);
    }
  }
  return o;
}

/** The image the overlays deploy: the `images` entry of k8s/base/kustomization.yaml, so the two never drift. */
export function imageRef(): string {
  const k = parseYaml(readFileSync(join(repoRoot, 'k8s/base/kustomization.yaml'), 'utf8')) as { images?: { name: string; newName?: string; newTag?: string }[] };
  const entry = k.images?.find((i) => i.name === 'grpc-helloworld');
  if (!entry?.newTag) throw new Error('k8s/base/kustomization.yaml: no images entry with newTag for grpc-helloworld');
  return `${entry.newName ?? entry.name}:${entry.newTag}`;
}

export function findTool(name: string, path = process.env.PATH ?? ''): string | undefined {
  return path.split(delimiter).filter(Boolean).map((d) => join(d, name)).find((p) => existsSync(p));
}

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;
export const shellQuote = (argv: readonly string[]) => argv.map((a) => (SAFE.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** What the plan runs on: real processes and time by default; a test substitutes a simulated cluster. */
export interface KindDeps {
  /** runs argv to completion (quiet: do not echo its output), `input` on its stdin */
  exec?: (argv: string[], quiet: boolean, input?: string) => Promise<Result>;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  /** how long to poll for a VirtualService change to show (default 60 s) */
  pollCapMs?: number;
}

async function spawnCommand(argv: string[], quiet: boolean, input?: string): Promise<Result> {
  const child = spawn(argv[0]!, argv.slice(1), { cwd: repoRoot, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  child.stdin?.end(input);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    if (!quiet) process.stdout.write(d);
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    if (!quiet) process.stderr.write(d);
  });
  const code = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c ?? 1));
  });
  return { code, stdout, stderr };
}

/** Runs commands, or (dry run) prints them: the plan's code is the same either way. */
class Shell {
  readonly dryRun: boolean;
  readonly out: (line: string) => void;
  readonly exec: (argv: string[], quiet: boolean, input?: string) => Promise<Result>;
  readonly sleep: (ms: number) => Promise<void>;
  readonly now: () => number;
  readonly pollCapMs: number;

  constructor(dryRun: boolean, out: (line: string) => void, deps: KindDeps) {
    this.dryRun = dryRun;
    this.out = out;
    this.exec = deps.exec ?? spawnCommand;
    this.sleep = deps.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.now = deps.now ?? Date.now;
    this.pollCapMs = deps.pollCapMs ?? POLL_CAP_MS;
  }

  iso(): string {
    return new Date(this.now()).toISOString();
  }

  note(text: string): void {
    this.out(`# ${text}`);
  }

  /** Runs argv; a non-zero exit throws unless `allowFail`. */
  async run(argv: string[], options: { allowFail?: boolean; quiet?: boolean; dryResult?: Partial<Result>; input?: string } = {}): Promise<Result> {
    if (this.dryRun || !options.quiet) this.out(`$ ${shellQuote(argv)}`);
    if (this.dryRun) return { code: 0, stdout: '', stderr: '', ...options.dryResult };
    const result = await this.exec(argv, options.quiet ?? false, options.input);
    if (result.code !== 0 && !options.allowFail) throw new Error(`${argv[0]} exited ${result.code}: ${shellQuote(argv)}\n${result.stderr.trim()}`);
    return result;
  }
}

export async function kindE2e(o: KindOptions, out: (line: string) => void, deps: KindDeps = {}): Promise<number> {
  const sh = new Shell(o.dryRun, out, deps);
  const context = `kind-${o.cluster}`;
  const kubectl = (ns: string | null, ...args: string[]) => ['kubectl', '--context', context, ...(ns ? ['-n', ns] : []), ...args];
  const only = (names: readonly string[]) => (o.only.length > 0 ? o.only.filter((n) => names.includes(n)) : undefined);
  const unaryOnly = only(scenarios.map((s) => s.name));
  const plans = unaryOnly?.length === 0 ? [] : planScenarios(unaryOnly);
  const streamOnly = only(meshStreamScenarios().map((s) => s.name));
  const streamPlans = streamOnly?.length === 0 ? [] : planStreamScenarios(meshStreamScenarios().filter((s) => !streamOnly || streamOnly.includes(s.name)));
  const gateway = streamPlans.some((p) => p.scenario.via === 'gateway');
  const resilienceOnly = only(resilienceScenarios.map((s) => s.name));
  const resilience = resilienceOnly?.length === 0 ? [] : planResilience(resilienceOnly ?? []).filter((p) => runsInKind(p.scenario));
  const image = imageRef();
  const failures: string[] = [];

  sh.note(`e2e:kind${o.dryRun ? ' plan (dry run: nothing is run)' : ''}: cluster ${o.cluster} (kubectl context ${context}), image ${image}`);
  sh.note(`scenarios: ${[...plans, ...streamPlans, ...resilience].map((p) => p.scenario.name).join(', ')}`);
  if (o.dryRun) sh.note('CALL_START below: the time the call started (RFC 3339); "poll" lines: the command after them is repeated');

  // ---- versions ------------------------------------------------------------------------------------
  sh.note(`pinned: kind v${PINNED.kind}, node image ${PINNED.nodeImage}, Istio ${PINNED.istio}`);
  const kindVersion = await sh.run(['kind', 'version'], { quiet: true, allowFail: true, dryResult: { stdout: `kind v${PINNED.kind}` } });
  const istioVersion = await sh.run(['istioctl', 'version', '--remote=false', '-o', 'json'], {
    quiet: true,
    allowFail: true,
    dryResult: { stdout: JSON.stringify({ clientVersion: { version: PINNED.istio } }) },
  });
  const wrong = versionProblems(kindVersion.stdout, istioVersion.stdout);
  if (wrong.length > 0) {
    for (const w of wrong) out(`e2e:kind: ${w}`);
    return 1;
  }

  // ---- cluster -------------------------------------------------------------------------------------
  const clusters = await sh.run(['kind', 'get', 'clusters'], { quiet: true });
  const reuse = clusters.stdout.split('\n').map((s) => s.trim()).includes(o.cluster);
  if (reuse) sh.note(`reusing the existing cluster ${o.cluster} as it is, its Kubernetes version included (it is not deleted at the end)`);
  else {
    if (o.dryRun) sh.note(`if ${o.cluster} is not listed: create it (a listed one is reused, and not deleted at the end)`);
    await sh.run(['kind', 'create', 'cluster', '--name', o.cluster, '--image', PINNED.nodeImage, '--wait', '180s']);
  }
  const applied = { namespace: false };

  const cleanup = async () => {
    if (o.keep) {
      sh.note(`--keep: leaving the cluster as it is (kind delete cluster --name ${o.cluster} removes it)`);
      return;
    }
    sh.note('clean up');
    if (!reuse) {
      await sh.run(['kind', 'delete', 'cluster', '--name', o.cluster], { allowFail: true });
      return;
    }
    // everything the plan deployed, VirtualServices included, is in its namespace
    if (applied.namespace || o.dryRun) await sh.run(kubectl(null, 'delete', 'namespace', NAMESPACE, '--ignore-not-found'), { allowFail: true });
    // the gateway's certificate is in the gateway's own namespace
    if (gateway) await sh.run(kubectl(INGRESS_NAMESPACE, 'delete', '-k', 'k8s/gateway-secret', '--ignore-not-found'), { allowFail: true });
  };
  let cleaned = false;
  const onSignal = () => {
    if (cleaned) process.exit(130);
    cleaned = true;
    out('# interrupted: cleaning up (interrupt again to stop at once)');
    void cleanup().finally(() => process.exit(130));
  };
  if (!o.dryRun) process.on('SIGINT', onSignal).on('SIGTERM', onSignal);

  try {
    // ---- Istio ---------------------------------------------------------------------------------------
    sh.note('Istio: minimal profile (istiod only: sidecars are all the faults need), Envoy access logs on stdout as JSON');
    if (gateway) sh.note(`and the ingress gateway ${INGRESS_GATEWAY} (istio: ingressgateway), which the minimal profile lacks, for the stream through the gateway`);
    await sh.run([
      'istioctl', 'install', '-y', '--context', context,
      '--set', 'profile=minimal',
      '--set', 'meshConfig.accessLogFile=/dev/stdout',
      '--set', 'meshConfig.accessLogEncoding=JSON',
      ...(gateway ? ['--set', `components.ingressGateways[0].name=${INGRESS_GATEWAY}`, '--set', 'components.ingressGateways[0].enabled=true'] : []),
    ]);
    await sh.run(kubectl('istio-system', 'rollout', 'status', 'deployment/istiod', '--timeout=300s'));
    if (gateway) await sh.run(kubectl(INGRESS_NAMESPACE, 'rollout', 'status', `deployment/${INGRESS_GATEWAY}`, '--timeout=300s'));

    // ---- the namespace, labelled before any pod is created (injection happens at pod creation) --------
    const existing = await sh.run(kubectl(null, 'get', 'namespace', NAMESPACE, '--ignore-not-found', '-o', 'name'), { quiet: true });
    if (existing.stdout.trim() === '') await sh.run(kubectl(null, 'create', 'namespace', NAMESPACE));
    applied.namespace = true;
    await sh.run(kubectl(null, 'label', 'namespace', NAMESPACE, 'istio-injection=enabled', '--overwrite'));

    // ---- image ---------------------------------------------------------------------------------------
    await sh.run(['docker', 'build', '-t', image, '.']);
    await sh.run(['kind', 'load', 'docker-image', image, '--name', o.cluster]);

    // ---- workloads: side by side in the one namespace ---------------------------------------------------
    const ports = [...new Set<Port>(['grpc', ...plans.flatMap((p) => p.scenario.calls.map((c) => c.port))])];
    const workloads: Array<{ dir: string; deployment: string; app: string }> = [
      ...ports.map((port) => ({ dir: SERVERS[port].overlay, deployment: SERVERS[port].deployment, app: SERVERS[port].app })),
      { dir: 'k8s/client', deployment: CLIENT_DEPLOYMENT, app: 'grpc-client' },
    ];
    for (const w of workloads) await sh.run(kubectl(NAMESPACE, 'apply', '-k', w.dir));
    if (reuse) {
      sh.note('a reused cluster: restart, so the pods run the image just loaded (same tag) and have their sidecars');
      for (const w of workloads) await sh.run(kubectl(NAMESPACE, 'rollout', 'restart', `deployment/${w.deployment}`));
    }
    for (const w of workloads) await sh.run(kubectl(NAMESPACE, 'rollout', 'status', `deployment/${w.deployment}`, '--timeout=300s'));
    for (const w of workloads) {
      const names = await sh.run(
        kubectl(NAMESPACE, 'get', 'pods', '-l', `app=${w.app}`, '-o', 'jsonpath={.items[*].spec.containers[*].name} {.items[*].spec.initContainers[*].name}'),
        { quiet: true, dryResult: { stdout: 'istio-proxy' } },
      );
      if (!names.stdout.split(/\s+/).includes('istio-proxy')) {
        throw new Error(`no istio-proxy sidecar in the ${w.deployment} pods of ${NAMESPACE}: was the namespace labelled istio-injection=enabled before they were created?`);
      }
    }

    // ---- scenarios -----------------------------------------------------------------------------------
    const vsName = plans[0]?.vs.name ?? streamPlans.find((p) => p.vs)?.vs?.name;
    for (const port of ports) {
      if (vsName) await sh.run(kubectl(NAMESPACE, 'delete', 'virtualservice', virtualServiceName(port, vsName), '--ignore-not-found'));
    }
    for (const plan of plans) {
      const problems = await runScenario(sh, kubectl, plan);
      failures.push(...problems.map((p) => `${plan.scenario.name}: ${p}`));
    }
    for (const plan of streamPlans) {
      const problems = await runStreamScenario(sh, kubectl, plan);
      failures.push(...problems.map((p) => `${plan.scenario.name}: ${p}`));
    }
    failures.push(
      ...(await runResiliencePlans(
        sh,
        kubectl,
        { namespace: NAMESPACE, clientDeployment: CLIENT_DEPLOYMENT, clientContainer: CLIENT_CONTAINER, serverContainer: SERVER_CONTAINER, server: SERVERS.grpc },
        resilience,
      )),
    );
  } catch (err) {
    failures.push(err instanceof Error ? err.message : String(err));
  } finally {
    if (!cleaned) {
      cleaned = true;
      await cleanup().catch((err: unknown) => failures.push(`clean up: ${String(err)}`));
    }
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
  }

  if (o.dryRun) return 0;
  if (failures.length > 0) {
    out(`# FAILED (${failures.length}):`);
    for (const f of failures) out(`#   ${f}`);
    return 1;
  }
  out(`# all ${plans.length + streamPlans.length + resilience.length} scenarios passed`);
  return 0;
}

type Kubectl = (ns: string | null, ...args: string[]) => string[];

/** The server's Service by its short name: the client pod is in the same namespace. */
const serverAddr = (port: Port) => `${SERVERS[port].service}:10000`;

function clientCommand(kubectl: Kubectl, p: Prediction): string[] {
  return kubectl(NAMESPACE, 'exec', `deploy/${CLIENT_DEPLOYMENT}`, '-c', CLIENT_CONTAINER, '--', '/client', '-server_addr', serverAddr(p.call.port), ...clientArgs(p));
}

/** The VirtualService a scenario puts in front of a port's Service: k8s/istio's own for grpc, a `-tls` twin for tls. */
export const virtualServiceName = (port: Port, name: string) => (port === 'tls' ? `${name}-tls` : name);

/**
 * A scenario's VirtualService aimed at the TLS Service instead: the same routes and faults, its own name (both
 * are in one namespace), hosts and destinations grpc-helloworld-service-tls. Behind a port named tls it must
 * change nothing: that is what the passthrough scenario shows.
 */
export function virtualServiceForTls(file: string): { name: string; yaml: string } {
  const vs = parseYaml(readFileSync(join(repoRoot, 'k8s/istio', file), 'utf8')) as {
    metadata: { name: string };
    spec: { hosts: string[]; http: Array<{ route?: Array<{ destination: { host: string } }> }> };
  };
  vs.metadata.name = virtualServiceName('tls', vs.metadata.name);
  vs.spec.hosts = [SERVERS.tls.service];
  for (const r of vs.spec.http) for (const d of r.route ?? []) d.destination.host = SERVERS.tls.service;
  return { name: vs.metadata.name, yaml: stringifyYaml(vs) };
}

async function applyVirtualService(sh: Shell, kubectl: Kubectl, port: Port, file: string): Promise<void> {
  if (port === 'grpc') {
    await sh.run(kubectl(NAMESPACE, 'apply', '-f', `k8s/istio/${file}`));
    return;
  }
  const { name, yaml } = virtualServiceForTls(file);
  sh.note(`on stdin: k8s/istio/${file} aimed at ${SERVERS.tls.service} (hosts and destinations), named ${name}`);
  await sh.run(kubectl(NAMESPACE, 'apply', '-f', '-'), { input: yaml });
}

function describe(p: Prediction): string {
  const latency =
    p.latency.kind === 'range'
      ? `${p.latency.minMs}..${p.latency.maxMs} ms`
      : `${p.latency.bound.lo}..${p.latency.bound.hi} of ${p.latency.count} delayed ${p.latency.delayMs} ms, the rest under ${p.latency.undelayedMaxMs} ms`;
  return `route ${p.route}: ${statusName(p.code)}${p.details ? ` "${p.details}"` : ''}, ${latency}, server ${p.server}, sidecar flag ${p.flag ?? 'none'}`;
}

/** Runs `p`'s command until CONSECUTIVE runs in a row pass its checks (60 s cap). */
function pollUntil(sh: Shell, kubectl: Kubectl, p: Prediction, what: string): Promise<string[]> {
  return pollCommand(sh, clientCommand(kubectl, p), (run) => checkCall(p, { exitCode: run.code, stdout: run.stdout, stderr: run.stderr }).problems, what, describe(p));
}

/** Runs `cmd` until CONSECUTIVE runs in a row pass `check` (60 s cap). */
async function pollCommand(sh: Shell, cmd: string[], check: (run: Result) => string[], what: string, expected: string): Promise<string[]> {
  sh.note(`poll until ${CONSECUTIVE} consecutive runs show ${what} (${sh.pollCapMs / 1000} s cap): ${expected}`);
  if (sh.dryRun) {
    sh.out(`$ ${shellQuote(cmd)}`);
    return [];
  }
  const deadline = sh.now() + sh.pollCapMs;
  let streak = 0;
  let last: string[] = [];
  while (sh.now() < deadline) {
    const run = await sh.run(cmd, { allowFail: true, quiet: true });
    last = check(run);
    streak = last.length === 0 ? streak + 1 : 0;
    if (streak >= CONSECUTIVE) return [];
    if (last.length > 0) await sh.sleep(1000);
  }
  return [`${what}: not ${CONSECUTIVE} consecutive runs within ${sh.pollCapMs / 1000} s; last run: ${last.join('; ')}`];
}

interface EnvoyLogLine {
  start_time?: string;
  path?: string | null;
  response_flags?: string;
  upstream_cluster?: string;
}

/** The client sidecar's access-log lines for requests started in [from, to], waiting for them to be flushed. */
function sidecarLines(sh: Shell, kubectl: Kubectl, p: Prediction, from: string, to: string): Promise<EnvoyLogLine[]> {
  const mine = (l: EnvoyLogLine) => (p.call.port === 'tls' ? (l.upstream_cluster ?? '').includes(`|${SERVERS.tls.service}.`) : l.path === SAY_HELLO_PATH);
  return envoyLines(sh, kubectl, mine, p.call.port === 'tls' ? 1 : p.count, from, to);
}

/** The client sidecar's access-log lines that `mine` picks, started in [from, to], until `want` of them are flushed. */
async function envoyLines(sh: Shell, kubectl: Kubectl, mine: (l: EnvoyLogLine) => boolean, want: number, from: string, to: string): Promise<EnvoyLogLine[]> {
  const cmd = kubectl(NAMESPACE, 'logs', `deploy/${CLIENT_DEPLOYMENT}`, '-c', 'istio-proxy', `--since-time=${from}`);
  if (sh.dryRun) {
    sh.out(`$ ${shellQuote(cmd)}`);
    return [];
  }
  const ours = (l: EnvoyLogLine) => l.start_time !== undefined && l.start_time >= from && l.start_time <= to && mine(l);
  let lines: EnvoyLogLine[] = [];
  const deadline = sh.now() + 20_000; // Envoy flushes its access log on a timer
  do {
    const run = await sh.run(cmd, { allowFail: true, quiet: true });
    lines = run.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as EnvoyLogLine)
      .filter(ours);
    if (lines.length >= want) break;
    await sh.sleep(1000);
  } while (sh.now() < deadline);
  return lines;
}

function checkSidecar(p: Prediction, lines: EnvoyLogLine[], delayed: number): string[] {
  const flags = (l: EnvoyLogLine) => (l.response_flags ?? '-').split(',');
  const with_ = (f: string) => lines.filter((l) => flags(l).includes(f)).length;
  const label = `${p.call.label}: client sidecar access log`;
  const want = p.call.port === 'tls' ? 1 : p.count;
  if (lines.length < want) return [`${label}: ${lines.length} line(s) for the call, want ${want}`];
  if (p.call.port === 'tls' && lines.some((l) => l.path)) return [`${label}: an HTTP path on the tls port: the sidecar parsed the TLS bytes`];
  if (p.latency.kind === 'mixed') return with_('DI') === delayed ? [] : [`${label}: ${with_('DI')} lines flagged DI, but ${delayed} calls were delayed`];
  if (p.flag === null) {
    const faulted = lines.filter((l) => flags(l).some((f) => f === 'DI' || f === 'FI'));
    return faulted.length === 0 ? [] : [`${label}: flagged ${faulted.map((l) => l.response_flags).join(' ')} on a call that should be untouched`];
  }
  return with_(p.flag) === lines.length ? [] : [`${label}: flags ${lines.map((l) => l.response_flags).join(' ')}, want ${p.flag} on every line`];
}

function serverEntries(sh: Shell, kubectl: Kubectl, p: Prediction, from: string, to: string): Promise<ServerLogEntry[]> {
  return serverLog<ServerLogEntry>(sh, kubectl, SERVERS[p.call.port].app, from, to);
}

/** The server's access-log lines written in [from, to], but the exec probes'. */
async function serverLog<T extends { peer?: string; time: string }>(sh: Shell, kubectl: Kubectl, app: string, from: string, to: string): Promise<T[]> {
  const cmd = kubectl(NAMESPACE, 'logs', '-l', `app=${app}`, '-c', SERVER_CONTAINER, '--tail=-1', `--since-time=${from}`);
  if (sh.dryRun) {
    sh.out(`$ ${shellQuote(cmd)}`);
    return [];
  }
  const run = await sh.run(cmd, { allowFail: true, quiet: true });
  return run.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as T)
    // the exec probes call from inside the pod (127.0.0.1, ::1); mesh calls come through the sidecar (127.0.0.6)
    .filter((e) => !/^(127\.0\.0\.1|\[?::1\]?|::ffff:127\.0\.0\.1):/.test(e.peer ?? '') && e.time >= from && e.time <= to);
}

async function runScenario(sh: Shell, kubectl: Kubectl, { scenario, vs, predictions, probe }: ScenarioPlan): Promise<string[]> {
  const problems: string[] = [];
  sh.note('');
  sh.note(`scenario ${scenario.name}: ${scenario.summary}`);
  const ports = [...new Set(scenario.calls.map((c) => c.port))];
  const baselines = ports.map((port) => predict(scenario, baselineCall(port), null));
  for (const b of baselines) problems.push(...(await pollUntil(sh, kubectl, b, `the baseline (no VirtualService, port ${b.call.port})`)));

  for (const port of ports) await applyVirtualService(sh, kubectl, port, scenario.virtualService);
  const inForce = await pollUntil(sh, kubectl, probe, `VirtualService ${vs.name} (${scenario.virtualService}) in force`);
  problems.push(...inForce);

  if (inForce.length === 0) {
    for (const p of predictions) {
      const cmd = clientCommand(kubectl, p);
      sh.note(`${p.call.label}: ${describe(p)}`);
      const from = sh.dryRun ? 'CALL_START' : sh.iso();
      const run = await sh.run(cmd, { allowFail: true, quiet: !sh.dryRun });
      if (sh.dryRun) {
        await sidecarLines(sh, kubectl, p, from, from);
        await serverEntries(sh, kubectl, p, from, from);
        continue;
      }
      sh.out(`$ ${shellQuote(cmd)}  -> exit ${run.code}`);
      const outcome = checkCall(p, { exitCode: run.code, stdout: run.stdout, stderr: run.stderr });
      problems.push(...outcome.problems);
      if (p.server === 'never-ok' || p.server === 'nothing') await sh.sleep(maxDelayMs(vs) + 1000); // a late forward would show
      const to = sh.iso();
      problems.push(...checkSidecar(p, await sidecarLines(sh, kubectl, p, from, to), outcome.delayed));
      problems.push(...checkServer(p, await serverEntries(sh, kubectl, p, from, to), outcome.requests));
    }
  }

  for (const port of ports) await sh.run(kubectl(NAMESPACE, 'delete', 'virtualservice', virtualServiceName(port, vs.name), '--ignore-not-found'));
  for (const b of baselines) problems.push(...(await pollUntil(sh, kubectl, b, `the baseline back (VirtualService deleted, port ${b.call.port})`)));
  if (!sh.dryRun) sh.note(problems.length === 0 ? `scenario ${scenario.name}: passed` : `scenario ${scenario.name}: FAILED\n#   ${problems.join('\n#   ')}`);
  return problems;
}

// ---- stream scenarios (e2e/stream-scenarios.ts) --------------------------------------------------------

/** Where a stream goes from the client pod: the Service through the client's sidecar, or the ingress gateway. */
const streamAddr = (plan: StreamPlan) => (plan.scenario.via === 'gateway' ? `${INGRESS_GATEWAY}.${INGRESS_NAMESPACE}:443` : serverAddr('grpc'));

function streamCommand(kubectl: Kubectl, plan: StreamPlan, p: StreamPrediction): string[] {
  return kubectl(NAMESPACE, 'exec', `deploy/${CLIENT_DEPLOYMENT}`, '-c', CLIENT_CONTAINER, '--', '/client', '-server_addr', streamAddr(plan), ...streamClientArgs(plan.scenario, p.call));
}

function describeStream(p: StreamPrediction): string {
  return `route ${p.route}: ${statusName(p.code)} (exit ${p.exit}) after ${p.messages.lo}..${p.messages.hi} of ${p.call.messages} messages, in ${p.latencyMs.lo}..${p.latencyMs.hi} ms${p.cutBy ? `, cut by the ${p.cutBy}` : ''}, sidecar flag ${p.flag ?? 'none'}`;
}

const streamMethod = (p: StreamPrediction) => (p.call.kind === 'server' ? '/helloworld.GreeterStream/SayHelloStream' : '/helloworld.GreeterStream/SayHelloBidi');

/** The client sidecar's line for a stream to the Service: UT where the route timeout cut it, DI where it was delayed. */
function checkStreamSidecar(p: StreamPrediction, lines: EnvoyLogLine[]): string[] {
  const label = `${p.call.label}: client sidecar access log`;
  if (lines.length !== 1) return [`${label}: ${lines.length} line(s) for the stream, want 1`];
  const flags = (lines[0]!.response_flags ?? '-').split(',');
  if (p.flag !== null && !flags.includes(p.flag)) return [`${label}: flags ${lines[0]!.response_flags}, want ${p.flag}`];
  if (p.flag === null && flags.some((f) => f === 'UT' || f === 'DI')) return [`${label}: flagged ${lines[0]!.response_flags} on a stream that should be untouched`];
  return [];
}

async function applyStreamRoute(sh: Shell, kubectl: Kubectl, plan: StreamPlan, remove: boolean): Promise<void> {
  const { scenario, vs } = plan;
  if (scenario.via === 'gateway') {
    // the certificate in the gateway's namespace, the Gateway and its VirtualService beside the server
    const steps: Array<[string, string]> = [[INGRESS_NAMESPACE, 'k8s/gateway-secret'], [NAMESPACE, 'k8s/gateway']];
    for (const [ns, dir] of remove ? steps.reverse() : steps) await sh.run(kubectl(ns, ...(remove ? ['delete', '-k', dir, '--ignore-not-found'] : ['apply', '-k', dir])));
  } else if (vs) {
    await sh.run(kubectl(NAMESPACE, ...(remove ? ['delete', 'virtualservice', vs.name, '--ignore-not-found'] : ['apply', '-f', `k8s/istio/${scenario.virtualService}`])));
  }
}

async function runStreamScenario(sh: Shell, kubectl: Kubectl, plan: StreamPlan): Promise<string[]> {
  const { scenario, predictions } = plan;
  const problems: string[] = [];
  sh.note('');
  sh.note(`scenario ${scenario.name}: ${scenario.summary}`);
  const baseline = predict({ name: scenario.name, summary: scenario.summary, virtualService: '', calls: [] }, baselineCall('grpc'), null);
  problems.push(...(await pollUntil(sh, kubectl, baseline, 'the baseline (no VirtualService, port grpc)')));

  await applyStreamRoute(sh, kubectl, plan, false);
  const [first] = predictions;
  const check = (p: StreamPrediction) => (run: Result) => checkStream(p, { exitCode: run.code, stdout: run.stdout, stderr: run.stderr }).problems;
  const what = scenario.via === 'gateway' ? 'the gateway routing the stream' : `VirtualService ${plan.vs?.name} (${scenario.virtualService}) in force`;
  const inForce = await pollCommand(sh, streamCommand(kubectl, plan, first!), check(first!), what, describeStream(first!));
  problems.push(...inForce);

  if (inForce.length === 0) {
    for (const p of predictions) {
      const cmd = streamCommand(kubectl, plan, p);
      sh.note(`${p.call.label}: ${describeStream(p)}`);
      const from = sh.dryRun ? 'CALL_START' : sh.iso();
      const run = await sh.run(cmd, { allowFail: true, quiet: !sh.dryRun });
      if (!sh.dryRun) sh.out(`$ ${shellQuote(cmd)}  -> exit ${run.code}`);
      const outcome = checkStream(p, { exitCode: run.code, stdout: run.stdout, stderr: run.stderr });
      if (!sh.dryRun) problems.push(...outcome.problems);
      const to = sh.dryRun ? from : sh.iso();
      // through the gateway, the client's sidecar passes the TLS bytes on (a TCP line): the gateway's log has the call
      if (scenario.via === 'sidecar') {
        const lines = await envoyLines(sh, kubectl, (l) => l.path === streamMethod(p), 1, from, to);
        if (!sh.dryRun) problems.push(...checkStreamSidecar(p, lines));
      }
      const entries = await serverLog<StreamLogEntry>(sh, kubectl, SERVERS.grpc.app, from, to);
      if (!sh.dryRun) problems.push(...checkStreamServer(scenario, p, entries, outcome));
    }
  }

  await applyStreamRoute(sh, kubectl, plan, true);
  problems.push(...(await pollUntil(sh, kubectl, baseline, 'the baseline back (port grpc)')));
  if (!sh.dryRun) sh.note(problems.length === 0 ? `scenario ${scenario.name}: passed` : `scenario ${scenario.name}: FAILED\n#   ${problems.join('\n#   ')}`);
  return problems;
}

export async function main(argv: readonly string[], out: (line: string) => void, path = process.env.PATH ?? '', deps: KindDeps = {}): Promise<number> {
  let o: KindOptions;
  try {
    o = parseKindArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    out(`e2e:kind: ${err.message}\n${USAGE}`);
    return 2;
  }
  if (o.help) {
    out(USAGE);
    return 0;
  }
  const missing = Object.keys(TOOLS).filter((t) => !findTool(t, path));
  if (missing.length > 0) {
    const lines = missing.map((t) => `${t} (${TOOLS[t]})`);
    if (!o.dryRun) {
      out(`e2e:kind: missing tool${missing.length > 1 ? 's' : ''} on PATH: ${lines.join(', ')}`);
      return 1;
    }
    out(`# (dry run: not on PATH here, needed for a real run: ${missing.join(', ')})`);
  }
  try {
    return await kindE2e(o, out, deps);
  } catch (err) {
    out(`e2e:kind: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // exits once stdout has taken the plan: process.exit() at once dropped the end of it when the pipe was full
  runMain('e2e:kind', () => main(process.argv.slice(2), (line) => process.stdout.write(`${line}\n`)));
}
