// The kind e2e (npm run e2e:kind) cannot run here (no Docker, kind or istioctl): what can be checked
// offline is checked here: its arguments, the clear failure when a tool is missing, and the plan it
// prints with --dry-run, command by command, against the shared scenario table.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { shellQuote } from '../e2e/kind.ts';
import { baselineCall, clientArgs, planScenarios, predict } from '../e2e/scenarios.ts';
import { root } from './helpers/spawn.ts';

function kindE2e(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync(process.execPath, ['e2e/kind.ts', ...args], { cwd: root, env, encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr, lines: r.stdout.split('\n') };
}

/** Index of the first line containing `text` at or after `from`; -1 if none. */
const find = (lines: string[], text: string, from = 0) => lines.findIndex((l, i) => i >= from && l.includes(text));

const ctx = 'kubectl --context kind-grpc-helloworld-e2e';

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

  it('creates (or reuses) the cluster, installs Istio minimal with access logs, waits for istiod', () => {
    expect(commands[0]).toBe('$ kind get clusters');
    expect(commands[1]).toBe('$ kind create cluster --name grpc-helloworld-e2e --wait 180s');
    expect(out).toMatch(/# if grpc-helloworld-e2e is not listed: create it \(a listed one is reused, and not deleted at the end\)/);
    const istio = commands.find((c) => c.startsWith('$ istioctl install'))!;
    expect(istio).toContain('-y');
    expect(istio).toContain('--context kind-grpc-helloworld-e2e');
    expect(istio).toContain('--set profile=minimal');
    expect(istio).toContain('--set meshConfig.accessLogFile=/dev/stdout');
    expect(istio).toContain('--set meshConfig.accessLogEncoding=JSON');
    expect(find(lines, `${ctx} -n istio-system rollout status deployment/istiod`)).toBeGreaterThan(find(lines, '$ istioctl install'));
  });

  it('labels the namespaces for injection before creating any pod, builds and loads the image before deploying', () => {
    const label = find(lines, `${ctx} label namespace default istio-injection=enabled --overwrite`);
    const labelTls = find(lines, `${ctx} label namespace grpc-helloworld-tls istio-injection=enabled --overwrite`);
    const createTls = find(lines, `${ctx} create namespace grpc-helloworld-tls`);
    const build = find(lines, '$ docker build -t grpc-helloworld:0.1.0 .');
    const load = find(lines, '$ kind load docker-image grpc-helloworld:0.1.0 --name grpc-helloworld-e2e');
    const plain = find(lines, `${ctx} -n default apply -k k8s/plaintext`);
    const client = find(lines, `${ctx} -n default apply -k k8s/client`);
    const tls = find(lines, `${ctx} -n grpc-helloworld-tls apply -k k8s/tls`);
    for (const i of [label, labelTls, createTls, build, load, plain, client, tls]) expect(i).toBeGreaterThan(0);
    expect(createTls).toBeLessThan(labelTls);
    expect(Math.max(label, labelTls)).toBeLessThan(Math.min(plain, client, tls));
    expect(build).toBeLessThan(load);
    expect(load).toBeLessThan(Math.min(plain, client, tls));
    // the image tag is the one the overlays deploy
    expect(readFileSync(join(root, 'k8s/base/kustomization.yaml'), 'utf8')).toMatch(/newTag: 0\.1\.0/);
  });

  it('waits for the rollouts and checks the sidecars are there before the first scenario', () => {
    const first = find(lines, '# scenario ');
    for (const [ns, d] of [
      ['default', 'grpc-helloworld-deployment'],
      ['default', 'grpc-client-deployment'],
      ['grpc-helloworld-tls', 'grpc-helloworld-deployment'],
    ]) {
      const i = find(lines, `${ctx} -n ${ns} rollout status deployment/${d} --timeout=300s`);
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
      const exec = (p: Parameters<typeof clientArgs>[0]) => {
        const ns = p.call.port === 'tls' ? 'grpc-helloworld-tls' : 'default';
        return `$ ${ctx} -n default exec deploy/grpc-client-deployment -c client -- /client -server_addr grpc-helloworld-service.${ns}.svc.cluster.local:10000 ${shellQuote(clientArgs(p))}`;
      };
      const ports = [...new Set(scenario.calls.map((c) => c.port))];
      const baselines = ports.map((port) => exec(predict(scenario, baselineCall(port), null)));
      const apply = section.indexOf(`$ ${ctx} -n default apply -f k8s/istio/${scenario.virtualService}`);
      const del = section.indexOf(`$ ${ctx} -n default delete virtualservice ${vs.name} --ignore-not-found`);
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
        expect(section[i + 1]).toBe(`$ ${ctx} -n default logs deploy/grpc-client-deployment -c istio-proxy --since-time=CALL_START`);
        const ns = p.call.port === 'tls' ? 'grpc-helloworld-tls' : 'default';
        expect(section[i + 2]).toBe(`$ ${ctx} -n ${ns} logs -l app=grpc-helloworld -c helloworld --tail=-1 --since-time=CALL_START`);
        at = i + 1;
      }
      expect(del).toBeGreaterThan(at);
      if (ports.includes('tls')) expect(section).toContain(`$ ${ctx} -n grpc-helloworld-tls apply -f k8s/istio/${scenario.virtualService}`);
    }
  });

  it('uses the client assertions: one command per scenario call, as in a pod', () => {
    expect(out).toContain('/client -server_addr grpc-helloworld-service.default.svc.cluster.local:10000 -timeout 1 -json -expect_code DEADLINE_EXCEEDED');
    expect(out).toContain('-timeout 10 -json -expect_code UNAVAILABLE');
    expect(out).toContain("-H 'end-user: jason' -json -expect_code OK -expect_min_latency 3000ms -expect_max_latency 5000ms");
    expect(out).toContain('-server_addr grpc-helloworld-service.grpc-helloworld-tls.svc.cluster.local:10000 -tls -timeout 10 -json -expect_code OK');
  });

  it('cleans up at the end: deletes the cluster it created', () => {
    expect(commands.at(-1)).toBe('$ kind delete cluster --name grpc-helloworld-e2e');
  });
});

describe('npm run e2e:kind: arguments and tools', () => {
  it('--keep keeps the cluster', () => {
    const { code, out } = kindE2e(['--dry-run', '--keep']);
    expect(code).toBe(0);
    expect(out).not.toContain('$ kind delete cluster');
    expect(out).toContain('# --keep: leaving the cluster as it is');
  });

  it('--only and --cluster narrow the plan', () => {
    const { code, out } = kindE2e(['--dry-run', '--only', 'abort', '--cluster=other']);
    expect(code, out).toBe(0);
    expect(out).toMatch(/^# scenarios: abort$/m);
    expect(out).toContain('$ kind create cluster --name other --wait 180s');
    expect(out).toContain('kubectl --context kind-other -n default apply -f k8s/istio/abort.yaml');
    expect(out).not.toContain('# scenario delay');
    expect(out).not.toContain('grpc-helloworld-tls'); // no TLS scenario: no TLS namespace
  });

  it.each([
    [['--bogus'], /unknown argument "--bogus"/],
    [['--only', 'nope'], /--only: unknown scenario nope \(known: delay, delay-deadline, abort, header-delay, percent-delay, tls-passthrough\)/],
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
