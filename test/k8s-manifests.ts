// The manifests under k8s/ as the tests see them: kustomize renders, the Istio scenario files, and every
// command they (and the README) make a container run.
import { execFileSync } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync, statSync } from 'node:fs';
import { delimiter, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import type { KubeObject } from './k8s-schema.ts';

export const root = fileURLToPath(new URL('..', import.meta.url));
export const k8sDir = join(root, 'k8s');

/** Every directory under k8s/ with a kustomization.yaml, relative to k8s/ (e.g. "tls", "istio"). */
export function kustomizations(): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name === 'kustomization.yaml') found.push(relative(k8sDir, dir));
    }
  };
  walk(k8sDir);
  return found;
}

/** The Istio fault scenarios: each file of k8s/istio/ but its kustomization, by name (e.g. "delay"). */
export function istioScenarios(): Record<string, string> {
  const dir = join(k8sDir, 'istio');
  return Object.fromEntries(
    readdirSync(dir)
      .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
      .sort()
      .map((f) => [f.slice(0, -'.yaml'.length), join(dir, f)]),
  );
}

/** kubectl, where the tests can run it; undefined if absent (the kustomize tests then skip, saying why). */
export function findKubectl(): string | undefined {
  const candidates = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, 'kubectl')), '/usr/bin/kubectl', '/usr/local/bin/kubectl'];
  return candidates.find((path) => {
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export function parseYamlDocuments(text: string, source: string): KubeObject[] {
  return parseAllDocuments(text).flatMap((doc) => {
    if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors[0]!.message}`);
    const value = doc.toJS() as unknown;
    return value === null || value === undefined ? [] : [value as KubeObject];
  });
}

export function readYamlFile(path: string): KubeObject[] {
  return parseYamlDocuments(readFileSync(path, 'utf8'), relative(root, path));
}

/** `kubectl kustomize k8s/<dir>`, offline, parsed. */
export function kustomize(kubectl: string, dir: string): KubeObject[] {
  const out = execFileSync(kubectl, ['kustomize', join(k8sDir, dir)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
  return parseYamlDocuments(out, `kubectl kustomize k8s/${dir}`);
}

// --- the parts of the objects the tests look at -------------------------------------------------------------
export interface Probe {
  exec?: { command?: string[] };
  grpc?: { port: number; service?: string };
  httpGet?: { path?: string; port: number | string; scheme?: string; host?: string };
  tcpSocket?: unknown;
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  failureThreshold?: number;
}
export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  ports?: Array<{ name?: string; containerPort: number; protocol?: string }>;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command?: string[] }; sleep?: { seconds: number } }; postStart?: { exec?: { command?: string[] } } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    runAsNonRoot?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
  };
}
export interface PodSpec {
  containers: Container[];
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; seccompProfile?: { type: string } };
}
export interface Deployment extends KubeObject {
  kind: 'Deployment';
  metadata: { name: string; labels?: Record<string, string> };
  spec: { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } };
}
export interface Service extends KubeObject {
  kind: 'Service';
  metadata: { name: string };
  spec: {
    type?: string;
    selector: Record<string, string>;
    ports: Array<{ name?: string; port: number; targetPort?: number | string; appProtocol?: string; protocol?: string }>;
  };
}
export interface HttpRoute {
  name?: string;
  match?: Array<Record<string, unknown>>;
  fault?: {
    delay?: { percentage?: { value?: number }; percent?: number; fixedDelay?: string };
    abort?: { percentage?: { value?: number }; grpcStatus?: string; httpStatus?: number };
  };
  route?: Array<{ destination: { host: string; port?: { number: number } }; weight?: number }>;
  timeout?: string;
}
export interface VirtualService extends KubeObject {
  kind: 'VirtualService';
  metadata: { name: string };
  spec: { hosts: string[]; http: HttpRoute[] };
}

export interface RouteDestination {
  destination: { host: string; port?: { number: number } };
  weight?: number;
}
export interface TlsRoute {
  match: Array<{ port?: number; sniHosts: string[] }>;
  route?: RouteDestination[];
}
/** A VirtualService of any shape: bound to gateways or the mesh, with http, tls or tcp routes. */
export interface AnyVirtualService extends KubeObject {
  kind: 'VirtualService';
  metadata: { name: string };
  spec: { hosts: string[]; gateways?: string[]; http?: HttpRoute[]; tls?: TlsRoute[]; tcp?: Array<{ route?: RouteDestination[] }> };
}
export interface GatewayServer {
  name?: string;
  port: { number: number; name: string; protocol: string; targetPort?: number };
  hosts: string[];
  tls?: { mode?: string; credentialName?: string; [key: string]: unknown };
}
export interface Gateway extends KubeObject {
  kind: 'Gateway';
  metadata: { name: string };
  spec: { selector?: Record<string, string>; servers: GatewayServer[] };
}
export interface Secret extends KubeObject {
  kind: 'Secret';
  metadata: { name: string };
  type?: string;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

export const isDeployment = (o: KubeObject): o is Deployment => o.kind === 'Deployment';
export const isService = (o: KubeObject): o is Service => o.kind === 'Service';
export const isVirtualService = (o: KubeObject): o is VirtualService => o.kind === 'VirtualService';
export const isGateway = (o: KubeObject): o is Gateway => o.kind === 'Gateway';
export const isSecret = (o: KubeObject): o is Secret => o.kind === 'Secret';

/** A command that a manifest or the README makes a container of the image run. */
export interface ImageCommand {
  /** where it comes from, for messages: "tls: Deployment/x container helloworld readinessProbe" */
  source: string;
  /** how it is run: as the container's main process, or inside a running container (probe, kubectl exec) */
  role: 'container' | 'exec';
  argv: string[];
}

export function imageCommands(variant: string, objects: readonly KubeObject[]): ImageCommand[] {
  const commands: ImageCommand[] = [];
  for (const d of objects.filter(isDeployment)) {
    for (const c of d.spec.template.spec.containers) {
      const where = `${variant}: Deployment/${d.metadata.name} container ${c.name}`;
      if (c.command) commands.push({ source: `${where} command`, role: 'container', argv: [...c.command, ...(c.args ?? [])] });
      for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe'] as const) {
        const argv = c[probe]?.exec?.command;
        if (argv) commands.push({ source: `${where} ${probe}`, role: 'exec', argv });
      }
      for (const hook of ['postStart', 'preStop'] as const) {
        const argv = c.lifecycle?.[hook]?.exec?.command;
        if (argv) commands.push({ source: `${where} lifecycle.${hook}`, role: 'exec', argv });
      }
    }
  }
  return commands;
}

/** Splits a shell command line as sh would for plain words, '...' and "..." quoting and backslashes. */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (ch === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated ' in: ${line}`);
      word = (word ?? '') + line.slice(i + 1, end);
      i = end;
    } else if (ch === '"') {
      let j = i + 1;
      let text = '';
      for (; j < line.length && line[j] !== '"'; j++) text += line[j] === '\\' && /["\\$`]/.test(line[j + 1] ?? '') ? line[++j] : line[j];
      if (j >= line.length) throw new Error(`unterminated " in: ${line}`);
      word = (word ?? '') + text;
      i = j;
    } else if (ch === '\\') {
      word = (word ?? '') + (line[++i] ?? '');
    } else if (/\s/.test(ch)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (ch === '#' && word === undefined) {
      break;
    } else {
      word = (word ?? '') + ch;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** The README and every document it links to (k8s/, e2e/, docs/), in that order: where users copy commands from. */
export function readProjectDocs(root: string): string {
  const docs = readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => join('docs', f));
  return ['README.md', 'k8s/README.md', 'e2e/README.md', ...docs].map((f) => readFileSync(join(root, f), 'utf8')).join('\n');
}

/** A markdown text's fenced code blocks, fences included. */
export const CODE_BLOCK = /^```[^\n]*\n[\s\S]*?^```/gm;

/** Every line of the fenced code blocks, trimmed, without a leading `$ ` prompt. */
function codeLines(markdown: string): string[] {
  return (markdown.match(CODE_BLOCK) ?? []).flatMap((block) => block.split('\n').map((raw) => raw.trim().replace(/^\$\s+/, '')));
}

/** Every `kubectl exec ... -- CMD ...` command line in the docs' code blocks, as the CMD's argv. */
export function readmeExecCommands(readme: string): ImageCommand[] {
  const commands: ImageCommand[] = [];
  for (const line of codeLines(readme)) {
    if (!/^kubectl\s+exec\s/.test(line)) continue;
    const words = shellWords(line);
    const dashdash = words.indexOf('--');
    if (dashdash < 0) throw new Error(`README: kubectl exec without "--": ${line}`);
    commands.push({ source: `README: ${line}`, role: 'exec', argv: words.slice(dashdash + 1) });
  }
  return commands;
}

/** docker run's options that take a value (as the next word, unless given with `=`). */
const DOCKER_RUN_VALUE_FLAGS = new Set(['--network', '--entrypoint', '-p', '--publish', '-e', '--env', '-v', '--volume', '--name', '--platform', '-u', '--user', '-w', '--workdir']);

/** Every `docker run ... --entrypoint /client IMAGE ARGS` line in the README's code blocks, as /client's argv. */
export function readmeDockerClientCommands(readme: string): ImageCommand[] {
  const commands: ImageCommand[] = [];
  for (const line of codeLines(readme)) {
    if (!/^docker\s+run\s/.test(line)) continue;
    const words = shellWords(line);
    let entrypoint: string | undefined;
    let i = 2;
    for (; i < words.length && words[i]!.startsWith('-'); i++) {
      const [flag, inline] = words[i]!.split(/=(.*)/s, 2) as [string, string | undefined];
      const value = inline ?? (DOCKER_RUN_VALUE_FLAGS.has(flag) ? words[++i] : undefined);
      if (flag === '--entrypoint') entrypoint = value;
    }
    if (entrypoint !== '/client') continue;
    commands.push({ source: `README: ${line}`, role: 'container', argv: ['/client', ...words.slice(i + 1)] });
  }
  return commands;
}
