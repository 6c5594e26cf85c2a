// The image without a Docker engine: `npm run image:layout DIR` lays out what the Dockerfile's runtime stage
// copies, and this test (1) checks the Dockerfile and the layout still correspond, (2) runs DIR/server and
// DIR/client with the test's Node (the image's major) for a greeting, TLS and mTLS with the shipped test
// certificates, and (3) runs every command the manifests and the README make the image run (container
// commands, exec probes, `kubectl exec ... -- /client ...`, `docker run --entrypoint /client ...`), with the
// paths and addresses mapped to the layout and loopback, and checks each one succeeds.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LAYOUT_ENTRIES, LICENSE_FILES, NODE_FLAGS, RUNTIME_NODE, SHIPPED_CERTS, withShebang } from '../scripts/image-layout.ts';
import { NOTICES_FILE } from '../scripts/notices.ts';
import {
  findKubectl,
  imageCommands,
  isDeployment,
  isGateway,
  k8sDir,
  kustomize,
  readmeDockerClientCommands,
  readmeExecCommands,
  readProjectDocs,
  readYamlFile,
  root,
  type ImageCommand,
} from './k8s-manifests.ts';
import type { KubeObject } from './k8s-schema.ts';
import { http1Exchange, http1Request } from './helpers/http1.ts';
import { bundle, cleanEnv, run, spawnServer, type RunResult, type SpawnedServer } from './helpers/spawn.ts';

// ---- the Dockerfile, as far as this test reads it -------------------------------------------------------------
interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

/** Instructions with line continuations joined and comments dropped. */
function dockerInstructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending: { text: string; line: number } | undefined;
  text.split('\n').forEach((raw, i) => {
    if (/^\s*#/.test(raw)) return; // comments, also inside a continuation
    const continued = /\\\s*$/.test(raw);
    const piece = raw.replace(/\\\s*$/, '');
    pending = pending ? { text: `${pending.text} ${piece.trim()}`, line: pending.line } : { text: piece.trim(), line: i + 1 };
    if (continued) return;
    if (pending.text) {
      const m = /^(\w+)\s*(.*)$/.exec(pending.text)!;
      out.push({ keyword: m[1]!.toUpperCase(), args: m[2]!, line: pending.line });
    }
    pending = undefined;
  });
  return out;
}

interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

function dockerStages(text: string): { args: Record<string, string>; stages: Stage[] } {
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const ins of dockerInstructions(text)) {
    if (ins.keyword === 'FROM') {
      const words = ins.args.split(/\s+/).filter((w) => !w.startsWith('--platform='));
      const image = words[0]!.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string | undefined, b: string | undefined) => args[(a ?? b)!] ?? '');
      stages.push({ from: image, ...(words[1]?.toUpperCase() === 'AS' ? { name: words[2] } : {}), instructions: [] });
    } else if (stages.length === 0) {
      if (ins.keyword === 'ARG') {
        const m = /^(\w+)=(.*)$/.exec(ins.args);
        if (m) args[m[1]!] = m[2]!;
      }
    } else {
      stages.at(-1)!.instructions.push(ins);
    }
  }
  return { args, stages };
}

const dockerfile = dockerStages(readFileSync(join(root, 'Dockerfile'), 'utf8'));
const [buildStage, runtimeStage] = dockerfile.stages;

/** The build stage's layout directory: where its RUN has scripts/image-layout.ts write. */
function layoutDirInBuild(): string {
  const run = buildStage!.instructions.find((i) => i.keyword === 'RUN' && /scripts\/image-layout\.ts\s/.test(i.args));
  const m = run && /scripts\/image-layout\.ts\s+(\/\S+)/.exec(run.args);
  if (!m) throw new Error('the build stage does not run scripts/image-layout.ts into an absolute directory');
  return m[1]!.replace(/\/$/, '');
}

// ---- the layout --------------------------------------------------------------------------------------------
let dir: string;
const servers: SpawnedServer[] = [];

beforeAll(() => {
  for (const name of ['server', 'client'] as const) {
    if (!existsSync(bundle(name))) throw new Error(`${bundle(name)} is missing: run \`npm run build\` (npm test does it first)`);
  }
  // outside the repository, like / in the image: no package.json above it decides the module type
  dir = mkdtempSync(join(tmpdir(), 'grpc-helloworld-layout-'));
  execFileSync(process.execPath, [join(root, 'scripts/image-layout.ts'), dir], { stdio: 'pipe' });
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function startFromLayout(args: readonly string[]): Promise<SpawnedServer> {
  const server = await spawnServer([...args, '-port', '0'], { file: join(dir, 'server') });
  servers.push(server);
  return server;
}

const client = (args: readonly string[]): Promise<RunResult> => run(join(dir, 'client'), args, { cwd: dir, env: cleanEnv(), timeoutMs: 15_000 });
const greeted = (r: RunResult): void => {
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  expect(r.stdout).toMatch(/^Greeting: Hello world/m);
};

describe('Dockerfile <-> npm run image:layout', () => {
  it('has a build stage that lays out with the script, and a runtime stage', () => {
    expect(dockerfile.stages).toHaveLength(2);
    expect(buildStage!.name).toBe('build');
    const runs = buildStage!.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    expect(runs.join('\n')).toMatch(/npm ci/);
    expect(runs.join('\n')).toMatch(/npm run build && node scripts\/image-layout\.ts \/layout/);
  });

  it('the runtime stage copies exactly the layout, path for path', () => {
    const layoutDir = layoutDirInBuild();
    const copies = runtimeStage!.instructions.filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD');
    const copied = copies.map((c) => {
      const words = c.args.split(/\s+/);
      const flags = words.filter((w) => w.startsWith('--'));
      const [src, dest, ...more] = words.filter((w) => !w.startsWith('--'));
      expect({ line: c.line, keyword: c.keyword, from: flags.includes('--from=build'), more }).toEqual({ line: c.line, keyword: 'COPY', from: true, more: [] });
      expect(src!.startsWith(`${layoutDir}/`)).toBe(true);
      const rel = src!.slice(layoutDir.length + 1);
      expect(dest).toBe(`/${rel}`); // same path under / as under the layout
      return rel;
    });
    // every COPY names one top-level entry of the layout, with a trailing slash exactly for directories
    expect(copied.map((p) => p.replace(/\/$/, '')).sort()).toEqual([...LAYOUT_ENTRIES].sort());
    expect(readdirSync(dir).sort()).toEqual([...LAYOUT_ENTRIES].sort());
    for (const p of copied) expect({ p, dir: statSync(join(dir, p)).isDirectory() }).toEqual({ p, dir: p.endsWith('/') });
    // nothing else reaches the runtime image: no RUN (no shell there), no other source
    expect(runtimeStage!.instructions.map((i) => i.keyword).filter((k) => !['COPY', 'LABEL', 'USER', 'EXPOSE', 'ENTRYPOINT', 'CMD', 'ENV'].includes(k))).toEqual([]);
  });

  it('runs as a numeric non-root user, exposes 10000, enters /server', () => {
    const last = (k: string) => runtimeStage!.instructions.filter((i) => i.keyword === k).at(-1)?.args;
    expect(last('USER')).toMatch(/^[1-9]\d*(:[1-9]\d*)?$/);
    expect(last('EXPOSE')).toBe('10000');
    expect(JSON.parse(last('ENTRYPOINT')!)).toEqual(['/server']);
  });

  it('the runtime image is distroless Node of the project\'s Node major, which keeps node at the shebang\'s path', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
    const major = /(\d+)/.exec(pkg.devDependencies.node!)![1];
    expect(runtimeStage!.from).toMatch(new RegExp(`^gcr\\.io/distroless/nodejs${major}-debian\\d+(:nonroot)?(@sha256:[0-9a-f]{64})?$`));
    expect(buildStage!.from).toMatch(new RegExp(`^node:${major}[-.]`));
    expect(RUNTIME_NODE).toBe('/nodejs/bin/node'); // where distroless puts node (its own ENTRYPOINT)
  });

  it('.dockerignore keeps out local build products but none of the build inputs', () => {
    const patterns = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    expect(patterns).toEqual(expect.arrayContaining(['node_modules', 'dist', '.git']));
    const inputs = ['package.json', 'package-lock.json', 'tsconfig.json', 'src', 'scripts', 'proto', 'certs', 'certs/README.md', 'LICENSE'];
    const glob = (p: string) => new RegExp(`^${p.replace(/\/$/, '').replace(/[.+^$()|[\]{}]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}(/|$)`);
    for (const input of inputs) expect({ input, ignoredBy: patterns.filter((p) => !p.startsWith('!') && glob(p).test(input)) }).toEqual({ input, ignoredBy: [] });
  });

  it('runs each program as its shebang line says (the image\'s node flags are valid for this Node)', async () => {
    for (const name of ['server', 'client']) {
      const [, ...flags] = readFileSync(join(dir, name), 'utf8').split('\n')[0]!.slice(2).split(' ');
      const r = spawnSync(process.execPath, [...flags, join(dir, name), '-help'], { encoding: 'utf8' });
      expect({ name, status: r.status, stderr: r.stderr }).toEqual({ name, status: 0, stderr: '' });
    }
  });

  it('lays out the bundles behind the runtime\'s shebang (0555) and the test-only PKI and licence notices (0444)', () => {
    for (const name of ['server', 'client'] as const) {
      const text = readFileSync(join(dir, name), 'utf8');
      expect(text.split('\n')[0]).toBe(name === 'server' ? `#!${RUNTIME_NODE} --max-semi-space-size=2` : `#!${RUNTIME_NODE}`);
      expect(text).toBe(withShebang(readFileSync(bundle(name), 'utf8'), NODE_FLAGS[name]));
      expect((statSync(join(dir, name)).mode & 0o777).toString(8)).toBe('555');
    }
    expect(readdirSync(join(dir, 'certs')).sort()).toEqual([...SHIPPED_CERTS].sort());
    expect(SHIPPED_CERTS).not.toContain('ca-key.pem');
    for (const name of SHIPPED_CERTS) {
      expect(readFileSync(join(dir, 'certs', name))).toEqual(readFileSync(join(root, 'certs', name)));
      expect((statSync(join(dir, 'certs', name)).mode & 0o777).toString(8)).toBe('444');
    }
    expect(readFileSync(join(dir, 'certs/README.md'), 'utf8')).toMatch(/TEST-ONLY/);
    // the project's licence, and the notices of every package in the bundles (test/notices.test.ts checks what they hold)
    expect(readdirSync(join(dir, 'licenses')).sort()).toEqual(['LICENSE', NOTICES_FILE].sort());
    expect([...LICENSE_FILES].sort()).toEqual(['LICENSE', NOTICES_FILE].sort());
    expect(readFileSync(join(dir, 'licenses/LICENSE'))).toEqual(readFileSync(join(root, 'LICENSE')));
    expect(readFileSync(join(dir, 'licenses', NOTICES_FILE))).toEqual(readFileSync(join(root, 'dist', NOTICES_FILE)));
    for (const name of LICENSE_FILES) expect((statSync(join(dir, 'licenses', name)).mode & 0o777).toString(8)).toBe('444');
  });

  it('the layout script refuses a directory that is not a layout, with one line and exit 2', () => {
    const r = execFileSyncResult([join(root, 'scripts/image-layout.ts'), root]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^image-layout: .* not a previous layout, refusing to replace it\n$/);
    const usage = execFileSyncResult([join(root, 'scripts/image-layout.ts')]);
    expect(usage).toMatchObject({ code: 2, stderr: expect.stringMatching(/^usage: /) as unknown as string });
  });
});

function execFileSyncResult(args: string[]): { code: number; stderr: string } {
  try {
    execFileSync(process.execPath, args, { stdio: 'pipe', encoding: 'utf8' });
    return { code: 0, stderr: '' };
  } catch (err) {
    const e = err as { status: number; stderr: string };
    return { code: e.status, stderr: e.stderr };
  }
}

describe('/server and /client from the layout', () => {
  it('greet in plaintext; the extensionless ESM bundle starts without warnings', async () => {
    const server = await startFromLayout([]);
    expect(server.stderr()).not.toMatch(/Warning|MODULE_TYPELESS/);
    greeted(await client(['-server_addr', `localhost:${server.port}`]));
  });

  it('greet over TLS with the bundled test PKI, and with the shipped /certs files (mTLS)', async () => {
    const tls = await startFromLayout(['-tls']);
    greeted(await client(['-tls', '-server_addr', `localhost:${tls.port}`]));
    greeted(await client(['-tls', '-ca_file', join(dir, 'certs/ca.pem'), '-server_addr', `localhost:${tls.port}`]));
    // a probe whose TLS mode does not match the server's fails (a non-zero exit fails the probe)
    expect((await client(['-server_addr', `localhost:${tls.port}`])).code).not.toBe(0);

    const certs = (f: string) => join(dir, 'certs', f);
    const mtls = await startFromLayout(['-tls', '-cert_file', certs('server.pem'), '-key_file', certs('server-key.pem'), '-client_ca_file', certs('ca.pem')]);
    greeted(await client(['-tls', '-ca_file', certs('ca.pem'), '-cert_file', certs('client.pem'), '-key_file', certs('client-key.pem'), '-server_addr', `localhost:${mtls.port}`]));
    expect((await client(['-tls', '-ca_file', certs('ca.pem'), '-server_addr', `localhost:${mtls.port}`])).code).not.toBe(0);
  });
});

// ---- every command the manifests and the README run in the image ----------------------------------------------
const kubectl = findKubectl();
if (!kubectl) console.warn('image-layout.test.ts: kubectl not found: SKIPPING the commands of the rendered manifests (the README commands still run)');

/** The names the manifests and README reach the servers by (short: resolved in the caller's namespace), mapped to loopback. */
const SERVICE_HOSTS = ['grpc-helloworld-service', 'grpc-helloworld-service-tls'];

/** /client's arguments with the server address pointed at a test server's port (the implicit localhost:10000 too). */
function mapClientArgs(args: readonly string[], port: number): string[] {
  const out = [...args];
  const mapAddr = (addr: string): string => {
    const m = /^(.*):10000$/.exec(addr);
    if (!m) throw new Error(`unexpected -server_addr ${addr}`);
    if (m[1] === 'localhost' || m[1] === '127.0.0.1') return `${m[1]}:${port}`;
    if (SERVICE_HOSTS.includes(m[1]!)) return `127.0.0.1:${port}`;
    throw new Error(`unexpected -server_addr host ${m[1]}`);
  };
  for (let i = 0; i < out.length; i++) {
    const m = /^(--?server_addr)(?:=(.*))?$/.exec(out[i]!);
    if (!m) continue;
    if (m[2] !== undefined) out[i] = `${m[1]}=${mapAddr(m[2])}`;
    else out[i + 1] = mapAddr(out[i + 1]!);
    return out;
  }
  return [...out, '-server_addr', `localhost:${port}`];
}

const usesTls = (argv: readonly string[]) => argv.some((a) => /^--?tls(=(true|1|t))?$/i.test(a));

describe('every command of the manifests and the README, run for real', () => {
  const variants = ['plaintext', 'tls', 'plaintext-grpc-probe', 'plaintext-httpget', 'client'];
  const rendered = new Map<string, KubeObject[]>();
  if (kubectl) for (const v of variants) rendered.set(v, kustomize(kubectl, v));
  const commands: ImageCommand[] = [];
  for (const [v, objects] of rendered) commands.push(...imageCommands(v, objects));
  const readme = readmeExecCommands(readProjectDocs(root));

  it('finds them: the containers, both probes of each exec-probe variant, and the README examples', () => {
    if (kubectl) {
      const sources = commands.map((c) => c.source.replace(/ container \S+/, ''));
      expect(sources).toEqual(
        expect.arrayContaining([
          'plaintext: Deployment/grpc-helloworld-deployment readinessProbe',
          'plaintext: Deployment/grpc-helloworld-deployment livenessProbe',
          'tls: Deployment/grpc-helloworld-deployment-tls readinessProbe',
          'tls: Deployment/grpc-helloworld-deployment-tls livenessProbe',
          'client: Deployment/grpc-client-deployment command',
        ]),
      );
    }
    expect(readme.length).toBeGreaterThanOrEqual(3);
    expect(readme.some((c) => c.source.includes('kubectl exec deploy/grpc-client-deployment -- /client -server_addr grpc-helloworld-service:10000 -timeout 10'))).toBe(true);
    expect(readme.some((c) => c.source.includes('kubectl exec deploy/grpc-client-deployment -- /client -tls -server_addr grpc-helloworld-service-tls:10000 -timeout 10'))).toBe(true);
    for (const c of [...commands, ...readme]) expect({ source: c.source, program: c.argv[0] }).toEqual({ source: c.source, program: expect.stringMatching(/^(\/server|\/client|\/nodejs\/bin\/node)$/) as unknown as string });
  });

  // One server per distinct container command (as the manifests start it), serving the exec commands of the
  // same variant; README commands go to the plaintext or TLS one by their -tls flag.
  const serverFor = new Map<string, Promise<SpawnedServer>>();
  const startServerCommand = (argv: readonly string[]): Promise<SpawnedServer> => {
    const key = JSON.stringify(argv);
    if (!serverFor.has(key)) {
      expect(argv[0]).toBe('/server');
      serverFor.set(key, startFromLayout(argv.slice(1)));
    }
    return serverFor.get(key)!;
  };
  const containerOf = (variant: string) => commands.find((c) => c.role === 'container' && c.source.startsWith(`${variant}: `) && c.argv[0] === '/server')?.argv;

  it.skipIf(!kubectl)('the exec probes succeed against the server their Deployment starts', async () => {
    for (const variant of ['plaintext', 'tls']) {
      const server = await startServerCommand(containerOf(variant)!);
      for (const c of commands.filter((x) => x.role === 'exec' && x.source.startsWith(`${variant}: `))) {
        expect(c.argv[0]).toBe('/client');
        const r = await client(mapClientArgs(c.argv.slice(1), server.port));
        expect({ source: c.source, code: r.code, stderr: r.stderr }).toEqual({ source: c.source, code: 0, stderr: '' });
        expect(r.stdout).toMatch(/^status: SERVING /m);
      }
    }
  });

  it.skipIf(!kubectl)('the exec probes still succeed when the Deployment gives the server its faults (-sleep 2 -fail_rate 1); SayHello would not', async () => {
    for (const variant of ['plaintext', 'tls']) {
      const server = await startServerCommand([...containerOf(variant)!, '-sleep', '2', '-fail_rate', '1']);
      const probes = commands.filter((x) => x.role === 'exec' && x.source.startsWith(`${variant}: `));
      expect(probes.length).toBe(2);
      for (const c of probes) {
        const r = await client(mapClientArgs(c.argv.slice(1), server.port));
        expect({ source: c.source, code: r.code, stderr: r.stderr }).toEqual({ source: c.source, code: 0, stderr: '' });
      }
      // the Go image's SayHello probe, with the same TLS mode: the server's own failure fails it
      const sayHello = await client(mapClientArgs(variant === 'tls' ? ['-tls'] : [], server.port));
      expect(sayHello.code).not.toBe(0);
    }
  });

  it.skipIf(!kubectl)('the native grpc probe variant\'s server answers the kubelet\'s Health/Check (service "")', async () => {
    const server = await startServerCommand(containerOf('plaintext-grpc-probe')!);
    const r = await client(['-health', '-server_addr', `localhost:${server.port}`]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  });

  // the kubelet's httpGet probe: HTTP/1.1 to the pod's port, a new connection each, no ALPN over HTTPS
  it.skipIf(!kubectl)('the httpGet probes get 200 ok from the server their Deployment starts, and over TLS with scheme: HTTPS', async () => {
    const container = rendered.get('plaintext-httpget')!.filter(isDeployment)[0]!.spec.template.spec.containers[0]!;
    const probes = [container.readinessProbe!.httpGet!, container.livenessProbe!.httpGet!];
    expect(probes.map((p) => p.path)).toEqual(['/readyz', '/healthz']);
    for (const [variant, scheme] of [['plaintext-httpget', 'HTTP'], ['tls', 'HTTPS']] as const) {
      const server = await startServerCommand(containerOf(variant)!);
      for (const probe of probes) {
        expect(probe.port).toBe(10000);
        const a = await http1Exchange(`127.0.0.1:${server.port}`, http1Request(probe.path!), scheme === 'HTTPS' ? { tls: {} } : {});
        expect({ variant, path: probe.path, status: a.status, body: a.body }).toEqual({ variant, path: probe.path, status: 200, body: 'ok\n' });
      }
    }
  });

  it.skipIf(!kubectl)('the client container idles in the image\'s node and exits 0 at once on SIGTERM', async () => {
    const [program, ...args] = commands.find((c) => c.source.startsWith('client: ') && c.role === 'container')!.argv;
    expect(program).toBe(RUNTIME_NODE);
    const child = spawn(process.execPath, args, { cwd: dir, stdio: 'ignore' });
    const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
    // (node handles SIGTERM from its first instant, so /proc cannot tell when the script's handler is in place:
    // the wait is long enough for a busy machine to have started it)
    const early = await Promise.race([exited.then(() => 'exited'), new Promise((r) => setTimeout(() => r('idling'), 2000))]);
    expect(early).toBe('idling');
    const t0 = performance.now();
    child.kill('SIGTERM');
    expect(await exited).toEqual([0, null]);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('the README\'s `docker run --entrypoint /client` lines succeed (addresses -> loopback; the gateway\'s -> a TLS server with the same certificate)', async () => {
    const docker = readmeDockerClientCommands(readProjectDocs(root));
    // the Image section's plaintext call, and the Ingress gateway section's call through the gateway
    expect(docker.map((c) => c.argv.includes('$GATEWAY'))).toEqual([false, true]);
    const gatewayHosts = ['gateway', 'gateway-passthrough'].flatMap((d) => readYamlFile(join(k8sDir, d, 'gateway.yaml')).filter(isGateway).flatMap((g) => g.spec.servers.flatMap((s) => s.hosts)));
    expect(new Set(gatewayHosts).size).toBe(1);
    for (const c of docker) {
      const argv = c.argv.slice(1).map((a) => a.replace(/^\/certs\//, 'certs/')); // the layout is the client's cwd
      let args: string[];
      const at = argv.indexOf('$GATEWAY');
      if (at >= 0) {
        // both variants' gateways present the test server certificate for that host: the TLS server's own (passed
        // through) or the same one from the Secret (terminated), so a TLS server stands in for either
        expect(usesTls(argv)).toBe(true);
        expect(argv[argv.indexOf('-server_host_override') + 1]).toBe(gatewayHosts[0]);
        const server = await startServerCommand(['/server', '-tls']);
        args = argv.map((a, i) => (i === at ? `127.0.0.1:${server.port}` : a));
      } else {
        const server = await startServerCommand(usesTls(argv) ? ['/server', '-tls'] : ['/server']);
        args = mapClientArgs(argv, server.port);
      }
      const r = await client(args);
      expect({ source: c.source, code: r.code, stderr: r.stderr }).toEqual({ source: c.source, code: 0, stderr: '' });
      expect(r.stdout).toMatch(/^Greeting: Hello world/m);
    }
  });

  it('the README\'s kubectl exec examples succeed (service name -> loopback)', async () => {
    for (const c of readme) {
      expect(c.argv[0]).toBe('/client');
      const tls = usesTls(c.argv);
      const server = await startServerCommand(tls ? ['/server', '-tls'] : ['/server']);
      const r = await client(mapClientArgs(c.argv.slice(1), server.port));
      expect({ source: c.source, code: r.code, stderr: r.stderr }).toEqual({ source: c.source, code: 0, stderr: '' });
    }
  });
});
