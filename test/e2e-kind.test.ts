// The kind e2e (npm run e2e:kind) cannot run here (no Docker, kind or istioctl): what can be checked
// offline is checked here: its arguments, the clear failure when a tool is missing, and the plan it
// prints with --dry-run, command by command, against the shared scenario table.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kindE2e as runPlan, NAMESPACE, parseKindArgs, PINNED, SERVERS, shellQuote, versionProblems, virtualServiceForTls, type Result } from '../e2e/kind.ts';
import { baselineCall, callHeaders, clientArgs, loadVirtualService, planScenarios, predict, scenarios, selectRoute, type Port } from '../e2e/scenarios.ts';
import { meshStreamScenarios, planStreamScenarios, streamClientArgs } from '../e2e/stream-scenarios.ts';
import { readVirtualService, type VirtualServiceModel } from '../e2e/virtual-service.ts';
import { statusName } from '../src/status.ts';
import { which } from '../bench/lib.ts';
import { root } from './helpers/spawn.ts';

function kindE2e(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync(process.execPath, ['e2e/kind.ts', ...args], { cwd: root, env, encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr, lines: r.stdout.split('\n') };
}

/** Index of the first line containing `text` at or after `from`; -1 if none. */
const find = (lines: string[], text: string, from = 0) => lines.findIndex((l, i) => i >= from && l.includes(text));

const ctx = 'kubectl --context kind-grpc-helloworld-e2e';
const ns = `${ctx} -n ${NAMESPACE}`;

describe('npm run e2e:kind -- --dry-run: the plan', () => {
  const { code, out, lines, err } = kindE2e(['--dry-run']);
  const commands = lines.filter((l) => l.startsWith('$ '));

  it('is printed, and nothing else happens', () => {
    expect(err).toBe('');
    expect(code, out).toBe(0);
    expect(commands.length).toBeGreaterThan(40);
  });

  it('is the npm script', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts['e2e:kind']).toBe('node e2e/kind.ts');
  });

  it('checks the pinned versions of kind and istioctl, then creates (or reuses) the cluster from the pinned node image', () => {
    expect(commands.slice(0, 4)).toEqual([
      '$ kind version',
      '$ istioctl version --remote=false -o json',
      '$ kind get clusters',
      `$ kind create cluster --name grpc-helloworld-e2e --image ${PINNED.nodeImage} --wait 180s`,
    ]);
    expect(PINNED.nodeImage).toMatch(/^kindest\/node:v1\.\d+\.\d+@sha256:[0-9a-f]{64}$/);
    expect(out).toContain(`# pinned: kind v${PINNED.kind}, node image ${PINNED.nodeImage}, Istio ${PINNED.istio}`);
    // and the Versions table (k8s/README.md) says the same
    const readme = readFileSync(join(root, 'k8s/README.md'), 'utf8');
    const row = /^\| `npm run e2e:kind` \|.*$/m.exec(readme)?.[0] ?? '';
    for (const v of [`kind v${PINNED.kind}`, PINNED.nodeImage.split('@')[0]!, `Istio ${PINNED.istio}`]) expect(row).toContain(v);
  });

  it('installs Istio minimal with access logs, waits for istiod', () => {
    expect(out).toMatch(/# if grpc-helloworld-e2e is not listed: create it \(a listed one is reused, and not deleted at the end\)/);
    const istio = commands.find((c) => c.startsWith('$ istioctl install'))!;
    expect(istio).toContain('-y');
    expect(istio).toContain('--context kind-grpc-helloworld-e2e');
    expect(istio).toContain('--set profile=minimal');
    expect(istio).toContain('--set meshConfig.accessLogFile=/dev/stdout');
    expect(istio).toContain('--set meshConfig.accessLogEncoding=JSON');
    expect(find(lines, `${ctx} -n istio-system rollout status deployment/istiod`)).toBeGreaterThan(find(lines, '$ istioctl install'));
  });

  it('labels its own namespace for injection before creating any pod, builds and loads the image before deploying', () => {
    expect(NAMESPACE).not.toBe('default');
    const create = find(lines, `${ctx} create namespace ${NAMESPACE}`);
    const label = find(lines, `${ctx} label namespace ${NAMESPACE} istio-injection=enabled --overwrite`);
    const build = find(lines, '$ docker build -t grpc-helloworld:0.1.0 .');
    const load = find(lines, '$ kind load docker-image grpc-helloworld:0.1.0 --name grpc-helloworld-e2e');
    // plaintext and TLS side by side in the one namespace
    const plain = find(lines, `${ns} apply -k k8s/plaintext`);
    const client = find(lines, `${ns} apply -k k8s/client`);
    const tls = find(lines, `${ns} apply -k k8s/tls`);
    for (const i of [create, label, build, load, plain, client, tls]) expect(i).toBeGreaterThan(0);
    expect(create).toBeLessThan(label);
    expect(label).toBeLessThan(Math.min(plain, client, tls));
    expect(build).toBeLessThan(load);
    expect(load).toBeLessThan(Math.min(plain, client, tls));
    expect(out).not.toMatch(/-n default\b|namespace default\b|\.default\b|\.svc\b/);
    // the image tag is the one the overlays deploy
    expect(readFileSync(join(root, 'k8s/base/kustomization.yaml'), 'utf8')).toMatch(/newTag: 0\.1\.0/);
  });

  it('waits for the rollouts and checks the sidecars are there before the first scenario', () => {
    const first = find(lines, '# scenario ');
    for (const d of ['grpc-helloworld-deployment', 'grpc-helloworld-deployment-tls', 'grpc-client-deployment']) {
      const i = find(lines, `${ns} rollout status deployment/${d} --timeout=300s`);
      expect(i).toBeGreaterThan(0);
      expect(i).toBeLessThan(first);
    }
    expect(find(lines, 'get pods -l app=grpc-client -o')).toBeLessThan(first);
  });

  it('runs every scenario of the shared table: baseline, apply, poll, the calls, the sidecar and server logs, delete, baseline back', () => {
    for (const { scenario, vs, predictions, probe } of planScenarios()) {
      const start = find(lines, `# scenario ${scenario.name}: ${scenario.summary}`);
      expect(start, scenario.name).toBeGreaterThan(0);
      const end = (() => {
        const next = find(lines, '# scenario ', start + 1);
        return next < 0 ? lines.length : next;
      })();
      const section = lines.slice(start, end);
      // the Services by their short names: the client pod is in the same namespace
      const exec = (p: Parameters<typeof clientArgs>[0]) =>
        `$ ${ns} exec deploy/grpc-client-deployment -c client -- /client -server_addr ${SERVERS[p.call.port].service}:10000 ${shellQuote(clientArgs(p))}`;
      const ports = [...new Set(scenario.calls.map((c) => c.port))];
      const baselines = ports.map((port) => exec(predict(scenario, baselineCall(port), null)));
      const apply = section.indexOf(`$ ${ns} apply -f k8s/istio/${scenario.virtualService}`);
      const del = section.indexOf(`$ ${ns} delete virtualservice ${vs.name} --ignore-not-found`);
      expect(apply, scenario.name).toBeGreaterThan(0);
      expect(del).toBeGreaterThan(apply);
      for (const b of baselines) {
        expect(section.indexOf(b), `${scenario.name}: baseline before`).toBeLessThan(apply);
        expect(section.lastIndexOf(b), `${scenario.name}: baseline back after the delete`).toBeGreaterThan(del);
      }
      // poll until 3 consecutive runs show the VirtualService, 60 s cap, then each call in order
      const poll = section.findIndex((l) => l.startsWith(`# poll until 3 consecutive runs show VirtualService ${vs.name}`));
      expect(poll).toBeGreaterThan(apply);
      expect(section[poll]).toContain('(60 s cap)');
      expect(section[poll + 1]).toBe(exec(probe));
      let at = poll + 2;
      for (const p of predictions) {
        const i = section.indexOf(exec(p), at);
        expect(i, `${scenario.name}: ${p.call.label}`).toBeGreaterThan(0);
        expect(section[i + 1]).toBe(`$ ${ns} logs deploy/grpc-client-deployment -c istio-proxy --since-time=CALL_START`);
        expect(section[i + 2]).toBe(`$ ${ns} logs -l app=${SERVERS[p.call.port].app} -c helloworld --tail=-1 --since-time=CALL_START`);
        at = i + 1;
      }
      expect(del).toBeGreaterThan(at);
      if (ports.includes('tls')) {
        // the same VirtualService aimed at the TLS Service, on stdin, and deleted with the other
        const tlsApply = section.indexOf(`$ ${ns} apply -f -`);
        expect(section[tlsApply - 1]).toBe(`# on stdin: k8s/istio/${scenario.virtualService} aimed at grpc-helloworld-service-tls (hosts and destinations), named ${vs.name}-tls`);
        expect(tlsApply).toBeLessThan(poll);
        expect(section.indexOf(`$ ${ns} delete virtualservice ${vs.name}-tls --ignore-not-found`)).toBeGreaterThan(at);
      }
    }
  });

  it('aims the passthrough scenario\'s VirtualService at the TLS Service: its own name, the same routes and faults', () => {
    for (const file of ['delay.yaml', 'header-delay.yaml']) {
      const original = loadVirtualService(file);
      const { name, yaml } = virtualServiceForTls(file);
      const aimed = readVirtualService(yaml, 'stdin', { service: SERVERS.tls.service, servicePort: 10000 });
      expect({ name, hosts: aimed.hosts, routes: aimed.routes }).toEqual({ name: `${original.name}-tls`, hosts: [SERVERS.tls.service], routes: original.routes });
    }
  });

  it('runs the stream scenarios a mesh can: the route timeout, the delay, and a stream through the ingress gateway that terminates TLS', () => {
    const plans = planStreamScenarios(meshStreamScenarios());
    expect(plans.map((p) => p.scenario.name)).toEqual(['stream-gateway-tls', 'stream-timeout', 'stream-delay']);
    // the minimal profile has no ingress gateway: the plan installs one, and waits for it
    const istio = commands.find((c) => c.startsWith('$ istioctl install'))!;
    expect(istio).toContain("--set 'components.ingressGateways[0].name=istio-ingressgateway' --set 'components.ingressGateways[0].enabled=true'");
    expect(find(lines, `${ctx} -n istio-system rollout status deployment/istio-ingressgateway --timeout=300s`)).toBeGreaterThan(find(lines, '$ istioctl install'));
    for (const { scenario, vs, predictions } of plans) {
      const start = find(lines, `# scenario ${scenario.name}: ${scenario.summary}`);
      expect(start, scenario.name).toBeGreaterThan(0);
      const next = find(lines, '# scenario ', start + 1);
      const section = lines.slice(start, next < 0 ? lines.length : next);
      const exec = (i: number) =>
        `$ ${ns} exec deploy/grpc-client-deployment -c client -- /client -server_addr ${scenario.via === 'gateway' ? 'istio-ingressgateway.istio-system:443' : 'grpc-helloworld-service:10000'} ${shellQuote(streamClientArgs(scenario, predictions[i]!.call))}`;
      const apply =
        scenario.via === 'gateway'
          ? [`$ ${ctx} -n istio-system apply -k k8s/gateway-secret`, `$ ${ns} apply -k k8s/gateway`]
          : [`$ ${ns} apply -f k8s/istio/${scenario.virtualService}`];
      const remove =
        scenario.via === 'gateway'
          ? [`$ ${ns} delete -k k8s/gateway --ignore-not-found`, `$ ${ctx} -n istio-system delete -k k8s/gateway-secret --ignore-not-found`]
          : [`$ ${ns} delete virtualservice ${vs!.name} --ignore-not-found`];
      const at = section.indexOf(apply.at(-1)!);
      expect(section.indexOf(apply[0]!), scenario.name).toBeGreaterThan(0);
      expect(section.slice(at - apply.length + 1, at + 1)).toEqual(apply);
      expect(section[at + 1]).toMatch(/^# poll until 3 consecutive runs show .* \(60 s cap\)/);
      expect(section[at + 2]).toBe(exec(0));
      let i = at + 3;
      predictions.forEach((p, k) => {
        i = section.indexOf(exec(k), i);
        expect(i, `${scenario.name}: ${p.call.label}`).toBeGreaterThan(0);
        const logs = section.slice(i + 1, i + 3).filter((l) => l.includes(' logs '));
        // through the gateway the client's sidecar only passes TLS bytes on: the server's log says where it came from
        expect(logs.some((l) => l.includes('-c istio-proxy'))).toBe(scenario.via === 'sidecar');
        expect(logs.some((l) => l.includes('logs -l app=grpc-helloworld -c helloworld'))).toBe(true);
      });
      const del = section.indexOf(remove[0]!);
      expect(del).toBeGreaterThan(i);
      expect(section.slice(del, del + remove.length)).toEqual(remove);
      expect(section.findIndex((l, j) => j > del && l.includes('-timeout 10 -count 3 -json -expect_code OK'))).toBeGreaterThan(del);
    }
    // the route timeout's stream: long enough to be cut, a client deadline long enough not to decide it
    expect(out).toContain('/client -server_addr grpc-helloworld-service:10000 -stream server -messages 100 -stream_interval 0.1 -timeout 30 -json stream');
    expect(out).toContain('route timeout-2s: INTERNAL (exit 77) after 5..25 of 100 messages, in 2000..5000 ms, cut by the route timeout, sidecar flag UT');
  });

  it('uses the client assertions: one command per scenario call, as in a pod', () => {
    expect(out).toContain('/client -server_addr grpc-helloworld-service:10000 -timeout 1 -json -expect_code DEADLINE_EXCEEDED');
    expect(out).toContain('-timeout 10 -json -expect_code UNAVAILABLE');
    expect(out).toContain("-H 'end-user: jason' -json -expect_code OK -expect_min_latency 3000ms -expect_max_latency 5000ms");
    expect(out).toContain('-server_addr grpc-helloworld-service-tls:10000 -tls -timeout 10 -json -expect_code OK');
  });

  it('cleans up at the end: deletes the cluster it created', () => {
    expect(commands.at(-1)).toBe('$ kind delete cluster --name grpc-helloworld-e2e');
  });
});

describe('npm run e2e:kind: arguments and tools', () => {
  it('--keep keeps the cluster', () => {
    const { code, out, err } = kindE2e(['--dry-run', '--keep']);
    // (it failed once, in a loaded run, without saying why: now a failure shows the output)
    expect(code, `${out}\n${err}`).toBe(0);
    expect(out).not.toContain('$ kind delete cluster');
    expect(out).toContain('# --keep: leaving the cluster as it is');
  });

  it.runIf(which('python3'))('prints the whole plan to a pipe its reader is slow to empty (it exits only once stdout has taken it)', () => {
    // a 4 KiB pipe read after a second: the plan (~50 KB) waits in the program's stdout until then
    const reader = `import fcntl, os, subprocess, sys, time
r, w = os.pipe()
fcntl.fcntl(w, 1031, 4096)  # F_SETPIPE_SZ
p = subprocess.Popen(sys.argv[1:], stdout=w, cwd=${JSON.stringify(root)})
os.close(w)
time.sleep(1)
out = b''
while chunk := os.read(r, 65536):
    out += chunk
sys.stdout.write(f'{p.wait()} {len(out)}\\n' + out.decode().rstrip().split('\\n')[-1])`;
    const r = spawnSync('python3', ['-c', reader, process.execPath, 'e2e/kind.ts', '--dry-run', '--keep'], { encoding: 'utf8', timeout: 20_000 });
    const [status, last] = r.stdout.split('\n');
    expect(status, r.stderr).toMatch(/^0 \d{5,}$/);
    expect(last).toMatch(/^# --keep: leaving the cluster as it is/);
  });

  it('--only a stream scenario without the gateway: no ingress gateway installed, no TLS server', () => {
    const { code, out } = kindE2e(['--dry-run', '--only', 'stream-delay']);
    expect(code, out).toBe(0);
    expect(out).toMatch(/^# scenarios: stream-delay$/m);
    expect(out).not.toContain('ingressGateways');
    expect(out).not.toContain('k8s/tls');
    expect(out).toContain(`kubectl --context kind-grpc-helloworld-e2e -n ${NAMESPACE} apply -f k8s/istio/delay.yaml`);
  });

  it('--only and --cluster narrow the plan', () => {
    const { code, out } = kindE2e(['--dry-run', '--only', 'abort', '--cluster=other']);
    expect(code, out).toBe(0);
    expect(out).toMatch(/^# scenarios: abort$/m);
    expect(out).toContain(`$ kind create cluster --name other --image ${PINNED.nodeImage} --wait 180s`);
    expect(out).toContain(`kubectl --context kind-other -n ${NAMESPACE} apply -f k8s/istio/abort.yaml`);
    expect(out).not.toContain('# scenario delay');
    expect(out).not.toContain('k8s/tls'); // no TLS scenario: no TLS server
  });

  it.each([
    [['--bogus'], /unknown argument "--bogus"/],
    [['--only', 'nope'], /--only: unknown scenario nope \(known: delay, delay-deadline, abort, header-delay, percent-delay, tls-passthrough, stream-gateway-tls, stream-timeout, stream-delay, fail-rate-no-retries, [a-z-, ]+, mirror\)/],
    [['--cluster'], /--cluster needs a value/],
    [['--cluster', 'Bad_Name'], /a kind cluster name is lower-case/],
  ])('%j is a usage error (exit 2)', (args, message) => {
    const { code, out } = kindE2e(['--dry-run', ...args]);
    expect(code).toBe(2);
    expect(out).toMatch(message);
    expect(out).toContain('usage: npm run e2e:kind');
  });

  it('--help prints the usage', () => {
    const { code, out } = kindE2e(['--help']);
    expect(code).toBe(0);
    expect(out).toMatch(/^usage: npm run e2e:kind -- \[--dry-run\] \[--keep\]/);
  });

  it('names every missing tool and where to get it, and runs nothing', () => {
    const empty = mkdtempSync(join(tmpdir(), 'e2e-kind-path-'));
    try {
      const { code, out } = kindE2e([], { ...process.env, PATH: empty });
      expect(code).toBe(1);
      expect(out.trim()).toBe(
        'e2e:kind: missing tools on PATH: docker (https://docs.docker.com/engine/install/), kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation), ' +
          'kubectl (https://kubernetes.io/docs/tasks/tools/), istioctl (https://istio.io/latest/docs/setup/getting-started/#download)',
      );
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// The real (non-dry-run) path of the plan, against a simulated cluster: commands are answered the way
// kubectl, kind and a mesh would answer them (the sidecar acting on the VirtualService in force, a few
// calls after each change, as Istio's config push takes a moment), on a virtual clock. This checks the
// script's own logic: polling, reading the client's JSON, the sidecar's and the server's access logs,
// the verdicts and the clean-up; not Istio, which only the real run can.

interface MeshFlaws {
  /** a VirtualService's route timeout does not cut a stream */
  ignoresRouteTimeout?: boolean;
  /** VirtualServices never take effect */
  ignoresVirtualServices?: boolean;
  /** a call whose client gave up during the delay is forwarded anyway, and answered OK */
  forwardsAbandonedCalls?: boolean;
  /** the sidecar's access log lacks the response flags */
  noFlags?: boolean;
}

/** The server variant (by its Service) a command names. */
function portOf(matches: (server: (typeof SERVERS)[Port]) => boolean): Port {
  const port = (Object.keys(SERVERS) as Port[]).find((p) => matches(SERVERS[p]));
  if (!port) throw new Error('names no server of SERVERS');
  return port;
}

class SimulatedCluster {
  t = Date.parse('2030-01-01T00:00:00.000Z');
  commands: string[][] = [];
  /** what `kind version` and `istioctl version --remote=false -o json` say */
  versions = { kind: `kind v${PINNED.kind} go1.24.4 linux/amd64`, istioctl: JSON.stringify({ clientVersion: { version: PINNED.istio, revision: 'x' } }) };
  /** by the Service it is for (the port the call goes to) */
  private inForce = new Map<Port, VirtualServiceModel | null>();
  private pending = new Map<Port, { vs: VirtualServiceModel | null; execsLeft: number }>();
  private envoy: Record<string, unknown>[] = [];
  private server = new Map<Port, Record<string, unknown>[]>();
  private flaws: MeshFlaws;
  /** k8s/gateway applied: the ingress gateway routes the stream to the plaintext Service */
  private gateway = false;
  constructor(flaws: MeshFlaws = {}) {
    this.flaws = flaws;
  }

  iso = (ms = this.t) => new Date(ms).toISOString();
  now = () => this.t;
  sleep = async (ms: number) => {
    this.t += ms;
  };

  exec = async (argv: string[], _quiet: boolean, input?: string): Promise<Result> => {
    this.commands.push(argv);
    const ok = (stdout = '') => ({ code: 0, stdout, stderr: '' });
    if (argv[1] === 'version') return ok(argv[0] === 'kind' ? this.versions.kind : this.versions.istioctl);
    if (argv[0] !== 'kubectl') return ok();
    let rest = argv.slice(3); // kubectl --context CTX
    if (rest[0] === '-n') {
      // everything the plan deploys is in its own namespace
      if (rest[1] !== NAMESPACE && rest[1] !== 'istio-system') throw new Error(`kubectl in namespace ${rest[1]}: ${argv.join(' ')}`);
      rest = rest.slice(2);
    }
    const [verb] = rest;
    const set = (port: Port, vs: VirtualServiceModel | null) => this.pending.set(port, { vs: this.flaws.ignoresVirtualServices ? null : vs, execsLeft: 2 });
    if (verb === 'get') return ok(rest[1] === 'pods' ? 'helloworld istio-proxy' : '');
    if (verb === 'apply' && rest[1] === '-f' && rest[2] === '-') set('tls', readVirtualService(input!, 'stdin', { service: SERVERS.tls.service, servicePort: 10000 }));
    else if (verb === 'apply' && rest[1] === '-f') set('grpc', loadVirtualService(rest[2]!.replace('k8s/istio/', '')));
    if (rest[1] === '-k' && rest[2] === 'k8s/gateway') this.gateway = verb === 'apply';
    if (verb === 'delete' && rest[1] === 'virtualservice') this.pending.set(rest[2]!.endsWith('-tls') ? 'tls' : 'grpc', { vs: null, execsLeft: 2 });
    if (verb === 'logs') {
      const since = rest.find((a) => a.startsWith('--since-time='))!.slice('--since-time='.length);
      const lines = rest.includes('istio-proxy')
        ? this.envoy.filter((l) => String(l.start_time) >= since)
        : (this.server.get(portOf((s) => rest.includes(`app=${s.app}`))) ?? []).filter((e) => String(e.time) >= since);
      return ok(lines.map((l) => JSON.stringify(l)).join('\n'));
    }
    if (verb === 'exec') return this.client(rest.slice(rest.indexOf('--') + 2));
    return ok();
  };

  private serverLog(port: Port, entry: Record<string, unknown>) {
    this.server.set(port, [...(this.server.get(port) ?? []), entry]);
  }

  /**
   * /client -stream ... through the client's sidecar or the ingress gateway, as Envoy does it (docs/streams.md):
   * the route timeout cuts a server stream once its request is in (RST_STREAM: INTERNAL at the client), a delay
   * holds the stream's start; the mesh's VirtualService does not act on calls through the gateway.
   */
  private stream(value: (flag: string) => string | undefined): Result {
    const addr = value('-server_addr')!;
    const viaGateway = addr.startsWith('istio-ingressgateway.');
    const kind = value('-stream')!;
    const [n, interval] = [Number(value('-messages')), Number(value('-stream_interval')) * 1000];
    const method = kind === 'server' ? '/helloworld.GreeterStream/SayHelloStream' : '/helloworld.GreeterStream/SayHelloBidi';
    const start = this.t;
    let [ms, received, code, delay, flag] = [5, 0, 14, 0, '-'];
    if (!viaGateway || this.gateway) {
      const route = viaGateway ? undefined : this.inForce.get('grpc')?.routes.find((r) => r.match === null);
      delay = route?.fault.delay?.percent === 100 ? route.fault.delay.ms : 0;
      const last = (n - 1) * interval;
      const timeout = this.flaws.ignoresRouteTimeout ? undefined : route?.timeoutMs;
      const cut = timeout !== undefined && kind === 'server' && last > timeout;
      [ms, received, code] = cut ? [delay + timeout + 5, Math.floor(timeout / interval) + 1, 13] : [delay + last + 5, n, 0];
      flag = this.flaws.noFlags ? '-' : cut ? 'UT' : delay > 0 ? 'DI' : '-';
      const authority = viaGateway ? 'grpc-helloworld.test.youtube.com' : addr;
      this.serverLog('grpc', { time: this.iso(start + delay), method, peer: '127.0.0.6:40002', authority, status: cut ? 'CANCELLED' : 'OK', code: cut ? 1 : 0, messages_sent: received });
    }
    this.envoy.push({ start_time: this.iso(start + 1), path: viaGateway ? null : method, response_flags: flag, upstream_cluster: `outbound|10000||${SERVERS.grpc.service}` });
    const messages = Array.from({ length: received }, (_, i) => ({ index: i + 1, message: `Hello stream ${i + 1}`, hostname: 'pod-a', ms_since_start: delay + i * interval + 2 }));
    this.t += ms + 300;
    const stream = { start: this.iso(start), latency_ms: ms, code, status: statusName(code), messages };
    return { code: code === 0 ? 0 : 64 + code, stdout: JSON.stringify({ requests: [stream] }), stderr: '' };
  }

  /** /client ARGS through the client's sidecar */
  private client(args: string[]): Result {
    for (const [port, p] of this.pending) {
      if (p.execsLeft-- <= 0) {
        this.inForce.set(port, p.vs);
        this.pending.delete(port);
      }
    }
    const value = (flag: string) => {
      const i = args.lastIndexOf(flag);
      return i < 0 ? undefined : args[i + 1];
    };
    if (args.includes('-stream')) return this.stream(value);
    const ms = (d: string | undefined) => (d === undefined ? undefined : Number(d.replace(/ms$/, '')));
    const addr = value('-server_addr')!;
    const port = portOf((s) => addr === `${s.service}:10000`);
    const tls = args.includes('-tls');
    const timeoutMs = Number(value('-timeout') ?? 1) * 1000;
    const count = Number(value('-count') ?? 1);
    const headers = callHeaders(args);
    const vs = port === 'tls' ? null : (this.inForce.get(port) ?? null); // behind a port named tls: opaque TCP
    const start = this.t;
    // the exec probes call the servers every few seconds, from localhost: the checks must leave them out
    this.serverLog(port, { time: this.iso(start), method: '/helloworld.Greeter/SayHello', peer: '127.0.0.1:40000', authority: 'localhost:10000', status: 'OK', code: 0 });
    const requests = Array.from({ length: count }, (_, i) => {
      const at = start + i;
      const route = vs ? selectRoute(vs, headers) : -1;
      const fault = route === undefined || route < 0 ? {} : vs!.routes[route]!.fault;
      const fires = (f?: { percent: number }) => !!f && f.percent > 0 && Math.random() * 100 < f.percent;
      const delay = fires(fault.delay) ? fault.delay!.ms : 0;
      const abort = fires(fault.abort) ? fault.abort!.grpcStatus : 0;
      let code = 0;
      let latency = delay + 20;
      let details: string | undefined;
      const flags: string[] = [];
      if (delay) flags.push('DI');
      if (route === undefined) [code, latency] = [12, 5];
      else if (delay >= timeoutMs) [code, latency] = [4, timeoutMs + 5];
      else if (abort) [code, details, latency] = [abort, 'fault filter abort', delay + 3];
      if (abort && route !== undefined && delay < timeoutMs) flags.push('FI');
      const forwarded = route !== undefined && (code === 0 || (code === 4 && this.flaws.forwardsAbandonedCalls));
      if (forwarded) {
        this.serverLog(port, { time: this.iso(at + delay), method: '/helloworld.Greeter/SayHello', peer: '127.0.0.6:40001', authority: addr, status: 'OK', code: 0 });
      }
      this.envoy.push({
        start_time: this.iso(at + 1),
        path: tls ? null : '/helloworld.Greeter/SayHello',
        response_flags: this.flaws.noFlags || flags.length === 0 ? '-' : flags.join(','),
        upstream_cluster: `outbound|10000||${SERVERS[port].service}.${NAMESPACE}.svc.cluster.local`,
      });
      return { start: this.iso(at), latency_ms: latency, code, status: statusName(code), ...(details ? { details } : {}), ...(code === 0 ? { message: 'Hello world' } : {}) };
    });
    this.t += Math.max(...requests.map((r) => r.latency_ms)) + 300; // kubectl's own overhead, not in latency_ms
    let exit: number;
    const expectCode = value('-expect_code');
    if (expectCode !== undefined) {
      const [min, max] = [ms(value('-expect_min_latency')) ?? 0, ms(value('-expect_max_latency')) ?? Infinity];
      exit = requests.every((r) => r.status === expectCode && r.latency_ms >= min && r.latency_ms <= max) ? 0 : 1;
    } else {
      const failed = requests.find((r) => r.code !== 0);
      exit = failed ? 64 + failed.code : 0;
    }
    return { code: exit, stdout: JSON.stringify({ requests }), stderr: exit === 0 ? '' : 'expectation not met' };
  }
}

describe('npm run e2e:kind, for real against a simulated cluster', () => {
  // the real cap is 60 s; 20 s keeps the failing polls short (a 10 s stream needs the whole minute: the push takes 3 calls)
  async function run(args: string[], cluster: SimulatedCluster, pollCapMs = 20_000) {
    const lines: string[] = [];
    const code = await runPlan(parseKindArgs(args), (l) => lines.push(l), { exec: cluster.exec, sleep: cluster.sleep, now: cluster.now, pollCapMs });
    return { code, out: lines.join('\n') };
  }
  const execs = (c: SimulatedCluster) => c.commands.filter((a) => a.includes('exec'));

  it('passes every fault and stream scenario on a mesh that behaves, polling through the config push, and cleans up', async () => {
    const cluster = new SimulatedCluster();
    // (the resilience scenarios against a simulated cluster: test/e2e-kind-resilience.test.ts)
    const { code, out } = await run(['--only', [...scenarios, ...meshStreamScenarios()].map((s) => s.name).join(',')], cluster, 60_000);
    expect(code, out).toBe(0);
    expect(out).toContain('# all 9 scenarios passed');
    for (const s of [...scenarios, ...meshStreamScenarios()]) expect(out).toContain(`# scenario ${s.name}: passed`);
    // every scenario: 3 clean baselines, >= 3 polls, its calls, 3 baselines back (and more while the push lands)
    expect(execs(cluster).length).toBeGreaterThan(scenarios.length * 9);
    expect(cluster.commands.at(-1)).toEqual(['kind', 'delete', 'cluster', '--name', 'grpc-helloworld-e2e']);
  });

  it('stops before creating anything when kind or istioctl is not the pinned version, saying which and where to get it', async () => {
    const cluster = new SimulatedCluster();
    cluster.versions = { kind: 'kind v0.31.0 go1.24.4 linux/amd64', istioctl: JSON.stringify({ clientVersion: { version: '1.29.6' } }) };
    const { code, out } = await run([], cluster);
    expect(code).toBe(1);
    expect(out).toContain(`e2e:kind: kind v0.31.0, want v${PINNED.kind} (the release of the node image kindest/node:v1.36.1): https://kind.sigs.k8s.io/`);
    expect(out).toContain(`e2e:kind: istioctl 1.29.6, want ${PINNED.istio} (it installs its own version of Istio): curl -L https://istio.io/downloadIstio | ISTIO_VERSION=${PINNED.istio} sh -`);
    expect(cluster.commands.map((c) => c.slice(0, 2).join(' '))).toEqual(['kind version', 'istioctl version']);
  });

  it('reads the versions as the tools print them', () => {
    expect(versionProblems(`kind v${PINNED.kind} go1.24.4 linux/amd64`, JSON.stringify({ clientVersion: { version: PINNED.istio } }))).toEqual([]);
    expect(versionProblems('', 'client version: 1.30.3')).toEqual([
      expect.stringMatching(/^kind of unknown version, want v/),
      expect.stringMatching(/^istioctl of unknown version, want /),
    ]);
  });

  it('fails, naming the wait, when the VirtualService never takes effect, and still cleans up', async () => {
    const { code, out } = await run(['--only', 'abort'], new SimulatedCluster({ ignoresVirtualServices: true }));
    expect(code).toBe(1);
    expect(out).toMatch(/# FAILED \(1\):\n# {3}abort: VirtualService grpc-helloworld-virtual-service \(abort\.yaml\) in force: not 3 consecutive runs within 20 s; last run: aborted \(exit code\): exit 0, want 78/);
    expect(out).toContain('$ kind delete cluster --name grpc-helloworld-e2e');
  });

  it('catches a call answered OK after its client gave up (the server log)', async () => {
    const { code, out } = await run(['--only', 'delay-deadline'], new SimulatedCluster({ forwardsAbandonedCalls: true }));
    expect(code).toBe(1);
    expect(out).toMatch(/delay-deadline: deadline first, -timeout 1 \(exit code\): server answered OK a call its client had given up on/);
  });

  it('fails, naming the wait, when the route timeout does not cut the stream, and still cleans up', async () => {
    const { code, out } = await run(['--only', 'stream-timeout'], new SimulatedCluster({ ignoresRouteTimeout: true }), 60_000);
    expect(code).toBe(1);
    expect(out).toMatch(/stream-timeout: VirtualService grpc-helloworld-virtual-service \(stream-timeout\.yaml\) in force: not 3 consecutive runs within 60 s; last run: server stream of 100, 0\.1 s apart: exit 0, want 77/);
    expect(out).toContain('$ kind delete cluster --name grpc-helloworld-e2e');
  });

  it('catches a stream the sidecar did not flag as delayed (DI)', async () => {
    const { code, out } = await run(['--only', 'stream-delay'], new SimulatedCluster({ noFlags: true }));
    expect(code).toBe(1);
    expect(out).toMatch(/stream-delay: server stream of 5, 0\.1 s apart: client sidecar access log: flags -, want DI/);
  });

  it('catches a sidecar access log without DI / FI', async () => {
    const { code, out } = await run(['--only', 'delay,abort'], new SimulatedCluster({ noFlags: true }));
    expect(code).toBe(1);
    expect(out).toMatch(/delay: delayed, -timeout 10: client sidecar access log: flags -, want DI on every line/);
    expect(out).toMatch(/abort: aborted \(exit code\): client sidecar access log: flags -, want FI on every line/);
  });
});
