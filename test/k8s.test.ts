// k8s/: every kustomization builds offline, every rendered object (and every Istio scenario file) validates
// against the vendored strict schemas, and the checks a schema cannot make hold: port names per variant,
// probes that run the image's client with -health and the server's TLS mode (or httpGet its health paths),
// termination longer than the drain, pod security, explicit fault percentages, a fallback behind every
// matched route, ingress gateways that route to a Service port that exists, with the certificate they name.
// Each check is a function that returns problems, so the tests also show it catching a broken manifest.
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SERVERS } from '../e2e/kind.ts';
import { RUNTIME_NODE } from '../scripts/image-layout.ts';
import { STATUS_NAMES } from '../src/status.ts';
import {
  findKubectl,
  isDeployment,
  isGateway,
  isSecret,
  isService,
  isVirtualService,
  istioScenarios,
  k8sDir,
  kustomizations,
  kustomize,
  readYamlFile,
  root,
  type AnyVirtualService,
  type Deployment,
  type Gateway,
  type HttpRoute,
  type Probe,
  type RouteDestination,
  type Service,
  type TlsRoute,
  type VirtualService,
} from './k8s-manifests.ts';
import { parseGoDuration, SchemaSet, type KubeObject } from './k8s-schema.ts';

const kubectl = findKubectl();
if (!kubectl) {
  console.warn('k8s.test.ts: kubectl not found (PATH, /usr/bin, /usr/local/bin): SKIPPING the `kubectl kustomize` builds and the checks on rendered overlays');
}

const SERVICE = 'grpc-helloworld-service';
const CLIENT_DEPLOYMENT = 'grpc-client-deployment';
const PORT = 10000;
const DEFAULT_GRACE_S = 10; // the server's -grace default (issue 2, README)
const CLIENT_DEADLINE_S = 1; // the client's -timeout default
/** the server's HTTP health paths (src/server/http-health.ts): readiness turns 503 as shutdown begins, liveness does not */
const HTTP_HEALTH_PATHS = { readinessProbe: '/readyz', livenessProbe: '/healthz' } as const;
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;

const clone = <T>(value: T): T => structuredClone(value);

interface ServerVariant {
  tls: boolean;
  portName: string;
  appProtocol: string;
  probe: 'exec' | 'grpc' | 'httpGet';
  /** the Deployment, the Service and their pods' app label */
  names: { deployment: string; service: string; app: string };
}
// the names e2e/kind.ts deploys and calls: the TLS variant has its own, so that it runs beside the plaintext one
const PLAINTEXT_NAMES = SERVERS.grpc;
const TLS_NAMES = SERVERS.tls;
const SERVER_VARIANTS: Record<string, ServerVariant> = {
  base: { tls: false, portName: 'grpc', appProtocol: 'grpc', probe: 'exec', names: PLAINTEXT_NAMES },
  plaintext: { tls: false, portName: 'grpc', appProtocol: 'grpc', probe: 'exec', names: PLAINTEXT_NAMES },
  'plaintext-grpc-probe': { tls: false, portName: 'grpc', appProtocol: 'grpc', probe: 'grpc', names: PLAINTEXT_NAMES },
  'plaintext-httpget': { tls: false, portName: 'grpc', appProtocol: 'grpc', probe: 'httpGet', names: PLAINTEXT_NAMES },
  tls: { tls: true, portName: 'tls', appProtocol: 'tls', probe: 'exec', names: TLS_NAMES },
};

/** Go-style flag value from argv: `-name v`, `-name=v`, `--name v`, `--name=v`. */
function flagValue(argv: readonly string[], name: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const m = /^--?([^=]+)(?:=(.*))?$/.exec(argv[i]!);
    if (m?.[1] === name) return m[2] ?? argv[i + 1];
  }
  return undefined;
}
const hasFlag = (argv: readonly string[], name: string): boolean =>
  argv.some((a) => a === `-${name}` || a === `--${name}` || /^--?([^=]+)=(true|1|t)$/i.exec(a)?.[1] === name);

/** Kubernetes quantity to a number (cores or bytes). */
function quantity(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|k|M|G)?$/.exec(q);
  if (!m) throw new Error(`unparsed quantity ${q}`);
  const unit = { m: 1e-3, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, k: 1e3, M: 1e6, G: 1e9 }[m[2] ?? ''] ?? 1;
  return Number(m[1]) * unit;
}

function podSecurityProblems(d: Deployment): string[] {
  const problems: string[] = [];
  const pod = d.spec.template.spec;
  if (pod.securityContext?.runAsNonRoot !== true) problems.push(`${d.metadata.name}: pod runAsNonRoot is not true`);
  if (!pod.securityContext?.runAsUser) problems.push(`${d.metadata.name}: pod runAsUser is not a non-zero uid`);
  if (pod.securityContext?.seccompProfile?.type !== 'RuntimeDefault') problems.push(`${d.metadata.name}: seccompProfile is not RuntimeDefault`);
  for (const c of pod.containers) {
    const sc = c.securityContext;
    if (sc?.allowPrivilegeEscalation !== false) problems.push(`${c.name}: allowPrivilegeEscalation is not false`);
    if (sc?.readOnlyRootFilesystem !== true) problems.push(`${c.name}: readOnlyRootFilesystem is not true`);
    if (!sc?.capabilities?.drop?.includes('ALL')) problems.push(`${c.name}: capabilities do not drop ALL`);
    if (sc?.capabilities?.add?.length) problems.push(`${c.name}: adds capabilities`);
    if (c.image !== `grpc-helloworld:${version}`) problems.push(`${c.name}: image ${c.image}, want grpc-helloworld:${version} (package.json)`);
    const r = c.resources;
    if (!r?.requests?.cpu || !r.requests.memory || !r.limits?.memory) problems.push(`${c.name}: needs cpu and memory requests and a memory limit`);
    for (const res of ['cpu', 'memory']) {
      const req = r?.requests?.[res];
      const lim = r?.limits?.[res];
      if (req && lim && quantity(req) > quantity(lim)) problems.push(`${c.name}: ${res} request ${req} above limit ${lim}`);
    }
  }
  return problems;
}

function serverProblems(objects: readonly KubeObject[], variant: ServerVariant): string[] {
  const problems: string[] = [];
  const deployments = objects.filter(isDeployment);
  const services = objects.filter(isService);
  const { deployment, service, app } = variant.names;
  const d = deployments.find((o) => o.metadata.name === deployment);
  const svc = services.find((o) => o.metadata.name === service);
  if (!d || !svc) return [`want Deployment/${deployment} and Service/${service}`];
  const pod = d.spec.template;
  if (pod.metadata.labels.app !== app || d.spec.selector.matchLabels.app !== app) problems.push(`label app: ${app}`);
  if (!Object.entries(svc.spec.selector).every(([k, v]) => pod.metadata.labels[k] === v)) problems.push('Service selector does not select the pods');
  if ((svc.spec.type ?? 'ClusterIP') !== 'ClusterIP') problems.push('Service type is not ClusterIP');

  const [c, ...others] = pod.spec.containers;
  if (!c || others.length > 0) return [...problems, 'want exactly one container'];
  const command = [...(c.command ?? []), ...(c.args ?? [])];
  if (command[0] !== '/server') problems.push(`command ${JSON.stringify(command)} does not run /server`);
  if (hasFlag(command, 'tls') !== variant.tls) problems.push(`server ${variant.tls ? 'without' : 'with'} -tls`);
  if (flagValue(command, 'port') !== undefined && Number(flagValue(command, 'port')) !== PORT) problems.push('server -port is not 10000');

  const containerPort = c.ports?.find((p) => p.containerPort === PORT);
  if (!containerPort) problems.push(`no containerPort ${PORT}`);
  else if (containerPort.name !== variant.portName) problems.push(`container port named ${containerPort.name}, want ${variant.portName}`);
  if (svc.spec.ports.length !== 1) problems.push('want one Service port');
  const sp = svc.spec.ports[0];
  if (sp) {
    if (sp.port !== PORT || (sp.targetPort ?? sp.port) !== PORT) problems.push(`Service port ${sp.port} -> ${String(sp.targetPort)}, want ${PORT} -> ${PORT}`);
    if (sp.name !== variant.portName) problems.push(`Service port named ${sp.name}, want ${variant.portName}`);
    if (sp.appProtocol !== variant.appProtocol) problems.push(`Service appProtocol ${sp.appProtocol}, want ${variant.appProtocol}`);
    // A port Istio reads as gRPC/HTTP in front of a TLS server breaks every call.
    if (variant.tls && /^(grpc|http)/.test(`${sp.appProtocol ?? ''} ${sp.name ?? ''}`.trim())) problems.push('TLS server behind a port Istio parses as HTTP');
  }

  for (const which of ['readinessProbe', 'livenessProbe'] as const) {
    const probe = c[which];
    if (!probe) {
      problems.push(`no ${which}`);
      continue;
    }
    if (variant.probe === 'grpc') {
      if (probe.grpc?.port !== PORT || probe.exec) problems.push(`${which}: want the native grpc probe on ${PORT}`);
      if (variant.tls) problems.push(`${which}: the kubelet's grpc probe cannot do TLS`);
      continue;
    }
    if (variant.probe === 'httpGet') {
      problems.push(...httpGetProblems(which, probe, variant.tls));
      continue;
    }
    const argv = probe.exec?.command ?? [];
    if (argv[0] !== '/client') problems.push(`${which}: ${JSON.stringify(argv)} does not run /client`);
    if (hasFlag(argv, 'tls') !== variant.tls) problems.push(`${which}: ${JSON.stringify(argv)} ${variant.tls ? 'lacks' : 'has'} -tls (the server ${variant.tls ? 'has' : 'lacks'} it)`);
    if (!hasFlag(argv, 'health')) problems.push(`${which}: ${JSON.stringify(argv)} calls SayHello, which the server's own -sleep and -fail_rate fail: use -health`);
    const addr = flagValue(argv, 'server_addr') ?? `localhost:${PORT}`;
    if (!/^(localhost|127\.0\.0\.1|\[::1\]):10000$/.test(addr)) problems.push(`${which}: probes must call localhost:${PORT} (bypassing the sidecar), not ${addr}`);
    const deadline = Number(flagValue(argv, 'timeout') ?? CLIENT_DEADLINE_S);
    if ((probe.timeoutSeconds ?? 1) <= deadline) problems.push(`${which}: timeoutSeconds ${probe.timeoutSeconds ?? 1} leaves no time for the client's cold start beyond its ${deadline} s deadline`);
    if (!probe.periodSeconds || probe.periodSeconds < 5) problems.push(`${which}: a period under 5 s starts a Node process too often`);
  }

  const grace = Number(flagValue(command, 'grace') ?? DEFAULT_GRACE_S);
  const preStop = c.lifecycle?.preStop?.sleep?.seconds ?? 0;
  const tgps = pod.spec.terminationGracePeriodSeconds ?? 30;
  if (!(tgps > grace + preStop)) problems.push(`terminationGracePeriodSeconds ${tgps} must exceed preStop ${preStop} s + -grace ${grace} s`);
  return [...problems, ...podSecurityProblems(d)];
}

/** An httpGet probe must ask the server's own port (the pod's, no other host) for the health path of its kind, in the server's TLS mode. */
function httpGetProblems(which: keyof typeof HTTP_HEALTH_PATHS, probe: Probe, tls: boolean): string[] {
  const problems: string[] = [];
  const get = probe.httpGet;
  if (!get || probe.exec || probe.grpc) return [`${which}: want an httpGet probe`];
  if (get.port !== PORT && get.port !== 'grpc') problems.push(`${which}: httpGet port ${get.port}, want ${PORT} (the gRPC port serves the health paths)`);
  if (get.path !== HTTP_HEALTH_PATHS[which]) problems.push(`${which}: httpGet path ${get.path}, want ${HTTP_HEALTH_PATHS[which]}`);
  const scheme = get.scheme ?? 'HTTP';
  if (scheme !== (tls ? 'HTTPS' : 'HTTP')) problems.push(`${which}: scheme ${scheme} against a ${tls ? 'TLS' : 'plaintext'} server`);
  if (get.host !== undefined) problems.push(`${which}: httpGet host ${get.host}: probe the pod itself`);
  return problems;
}

function clientProblems(objects: readonly KubeObject[]): string[] {
  const d = objects.filter(isDeployment).find((o) => o.metadata.name === CLIENT_DEPLOYMENT);
  if (!d) return [`want Deployment/${CLIENT_DEPLOYMENT}`];
  const problems = podSecurityProblems(d);
  const [c] = d.spec.template.spec.containers;
  const argv = [...(c?.command ?? []), ...(c?.args ?? [])];
  if (argv[0] !== RUNTIME_NODE || argv[1] !== '-e') problems.push(`client container runs ${JSON.stringify(argv)}, want the image's node (${RUNTIME_NODE}) idling`);
  if (!/SIGTERM/.test(argv[2] ?? '')) problems.push('the idle process must exit on SIGTERM (as PID 1 it ignores it otherwise)');
  if (c?.readinessProbe || c?.livenessProbe) problems.push('the idle client has nothing to probe');
  return problems;
}

/** Every string value in an object, with its path. */
function strings(value: unknown, path = ''): Array<[string, string]> {
  if (typeof value === 'string') return [[path, value]];
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => strings(v, `${path}/${k}`));
}

/** A host qualified with a namespace: svc.NS.svc[.cluster.local], or svc.default. */
const NAMESPACED_HOST = /\b[a-z0-9-]+\.[a-z0-9-]+\.svc\b|\b[a-z0-9-]+\.default\b/;

/**
 * What keeps objects from working in any namespace (`kubectl apply -k DIR -n NAMESPACE`): a namespace of their
 * own, or a host qualified with one (they must use short names, resolved in their own namespace).
 */
function namespaceProblems(objects: readonly KubeObject[]): string[] {
  const problems: string[] = [];
  for (const o of objects) {
    const id = `${String(o.kind)}/${String(o.metadata?.name)}`;
    if (o.metadata?.namespace !== undefined) problems.push(`${id}: metadata.namespace ${String(o.metadata.namespace)}`);
    for (const [path, s] of strings(o)) if (NAMESPACED_HOST.test(s)) problems.push(`${id}: ${path} "${s}" names a namespace`);
    if (isVirtualService(o)) {
      const { spec } = o as AnyVirtualService;
      const bound = spec.gateways ?? ['mesh'];
      const destinations = [...(spec.http ?? []), ...(spec.tls ?? []), ...(spec.tcp ?? [])].flatMap((r) => (r.route ?? []).map((d) => d.destination.host));
      // a mesh VirtualService's hosts are Services (short names); a gateway's are the names clients call it by
      const hosts = [...(bound.includes('mesh') ? spec.hosts : []), ...destinations];
      for (const h of hosts) if (h.includes('.')) problems.push(`${id}: host ${h} is not a short name`);
      for (const g of bound) if (g.includes('/')) problems.push(`${id}: gateway ${g} names a namespace`);
    }
    if (isGateway(o)) {
      // "NS/host" admits only VirtualServices of namespace NS ("./host": the Gateway's own, "*/host": any)
      for (const h of o.spec.servers.flatMap((srv) => srv.hosts)) if (/^[^*.][^/]*\//.test(h)) problems.push(`${id}: server host ${h} names a namespace`);
    }
  }
  return problems;
}

/** What keeps two overlays from running side by side in one namespace: a name in common, or a Service selecting the other's pods. */
function sideBySideProblems(a: readonly KubeObject[], b: readonly KubeObject[]): string[] {
  const ids = (objects: readonly KubeObject[]) => objects.map((o) => `${String(o.kind)}/${String(o.metadata?.name)}`);
  const problems = ids(a).filter((id) => ids(b).includes(id)).map((id) => `both have ${id}`);
  for (const [mine, theirs] of [[a, b], [b, a]] as const) {
    for (const svc of mine.filter(isService)) {
      for (const d of theirs.filter(isDeployment)) {
        const labels = d.spec.template.metadata.labels;
        if (Object.entries(svc.spec.selector).every(([k, v]) => labels[k] === v)) problems.push(`Service/${svc.metadata.name} selects the pods of Deployment/${d.metadata.name}`);
      }
    }
  }
  return problems;
}

/** What every VirtualService of k8s/istio must satisfy beyond its schema. */
function virtualServiceProblems(vs: VirtualService): string[] {
  const problems: string[] = [];
  if (vs.metadata.name !== 'grpc-helloworld-virtual-service') problems.push(`named ${vs.metadata.name}: every scenario uses grpc-helloworld-virtual-service, so one replaces another`);
  if (JSON.stringify(vs.spec.hosts) !== JSON.stringify([SERVICE])) problems.push(`hosts ${JSON.stringify(vs.spec.hosts)}, want [${SERVICE}]`);
  const http = vs.spec.http ?? [];
  if (http.length === 0) problems.push('no http routes');
  http.forEach((r, i) => {
    const at = `http[${i}]${r.name ? ` (${r.name})` : ''}`;
    if (!r.route?.length) problems.push(`${at}: no route`);
    for (const dest of r.route ?? []) if (dest.destination.host !== SERVICE) problems.push(`${at}: routes to ${dest.destination.host}`);
    if (r.match?.length && !http.slice(i + 1).some((later) => !later.match?.length)) {
      problems.push(`${at}: matched route without a later catch-all route: unmatched calls would fail (no route)`);
    }
    for (const [kind, fault] of Object.entries(r.fault ?? {}) as Array<[string, { percentage?: { value?: number }; percent?: number }]>) {
      if ('percent' in fault) problems.push(`${at}: fault.${kind}.percent is deprecated: use percentage.value`);
      const value = fault.percentage?.value;
      if (typeof value !== 'number') problems.push(`${at}: fault.${kind} without an explicit percentage.value (omitted means 0 %)`);
      else if (!(value > 0 && value <= 100)) problems.push(`${at}: fault.${kind} percentage ${value} outside (0, 100]`);
    }
    const delay = r.fault?.delay;
    if (delay && (delay.fixedDelay === undefined || (parseGoDuration(delay.fixedDelay) ?? 0) < 1e6)) problems.push(`${at}: fixedDelay ${String(delay.fixedDelay)}`);
    if (r.timeout !== undefined && !((parseGoDuration(r.timeout) ?? 0) > 0)) problems.push(`${at}: timeout ${r.timeout} (0s turns the route timeout off in Istio: leave it out instead)`);
    const abort = r.fault?.abort;
    if (abort && (typeof abort.grpcStatus !== 'string' || !(STATUS_NAMES as readonly string[]).includes(abort.grpcStatus) || abort.grpcStatus === 'OK')) {
      problems.push(`${at}: grpcStatus ${JSON.stringify(abort.grpcStatus)} is not a gRPC status name`);
    }
  });
  return problems;
}

// ---- the ingress gateway (k8s/gateway, k8s/gateway-passthrough, k8s/gateway-secret) --------------------------
/** The name clients call the gateway by: one the test certificate has (*.test.youtube.com), see gatewayProblems. */
const GATEWAY_HOST = 'grpc-helloworld.test.youtube.com';
const serverCertificate = new X509Certificate(readFileSync(join(root, 'certs/server.pem')));

interface GatewayVariant {
  mode: 'SIMPLE' | 'PASSTHROUGH';
  protocol: string;
  /** the VirtualService's route kind: http where the gateway sees the calls, tls where it sees only the SNI */
  routes: 'http' | 'tls';
  /** the overlay whose Service the route goes to, and the name that Service's port must have */
  backend: string;
  portName: string;
}
const GATEWAY_VARIANTS: Record<string, GatewayVariant> = {
  // TLS ends at the gateway: plaintext gRPC on to the plaintext server's port named grpc
  gateway: { mode: 'SIMPLE', protocol: 'HTTPS', routes: 'http', backend: 'plaintext', portName: 'grpc' },
  // TLS end to end: the bytes go on to the TLS server's port named tls
  'gateway-passthrough': { mode: 'PASSTHROUGH', protocol: 'TLS', routes: 'tls', backend: 'tls', portName: 'tls' },
};

/** A route's destination: a Service of the backend overlay, an explicit port it has, named as the variant needs. */
function destinationProblems(at: string, { destination }: RouteDestination, backend: readonly KubeObject[], variant: GatewayVariant): string[] {
  const services = backend.filter(isService);
  const svc = services.find((s) => s.metadata.name === destination.host);
  if (!svc) return [`${at}: destination ${destination.host} is not a Service of k8s/${variant.backend} (${services.map((s) => s.metadata.name).join(', ')})`];
  if (destination.port === undefined) return [`${at}: destination ${destination.host} without port.number`];
  const port = svc.spec.ports.find((p) => p.port === destination.port!.number);
  if (!port) return [`${at}: Service ${svc.metadata.name} has no port ${destination.port.number}`];
  if (port.name !== variant.portName) return [`${at}: port ${port.port} of ${svc.metadata.name} is named ${port.name}, want ${variant.portName} for a ${variant.mode} gateway`];
  return [];
}

/** What k8s/gateway (or -passthrough) must satisfy beyond its schema, against the overlays it points into. */
function gatewayProblems(objects: readonly KubeObject[], variant: GatewayVariant, backend: readonly KubeObject[], secrets: readonly KubeObject[]): string[] {
  const gateways = objects.filter(isGateway);
  const vss = objects.filter(isVirtualService) as unknown as AnyVirtualService[];
  if (gateways.length !== 1 || vss.length !== 1 || objects.length !== 2) return ['want exactly one Gateway and one VirtualService'];
  const [gw, vs] = [gateways[0]!, vss[0]!];
  const problems: string[] = [];
  if (JSON.stringify(gw.spec.selector) !== JSON.stringify({ istio: 'ingressgateway' })) problems.push(`Gateway selector ${JSON.stringify(gw.spec.selector)}, want {"istio":"ingressgateway"}`);
  if (gw.spec.servers.length !== 1) problems.push(`${gw.spec.servers.length} Gateway servers, want 1`);
  const server = gw.spec.servers[0];
  if (server) {
    if (server.port.number !== 443 || server.port.protocol !== variant.protocol) problems.push(`server port ${server.port.number} ${server.port.protocol}, want 443 ${variant.protocol}`);
    if (server.tls?.mode !== variant.mode) problems.push(`server tls.mode ${String(server.tls?.mode)}, want ${variant.mode}`);
    if (JSON.stringify(server.hosts) !== JSON.stringify([GATEWAY_HOST])) problems.push(`server hosts ${JSON.stringify(server.hosts)}, want [${GATEWAY_HOST}]`);
    // -server_host_override is at once the SNI (which picks the gateway server), the name verified in the
    // certificate (the gateway's or, passed through, the server's: the same test certificate) and :authority
    for (const host of server.hosts) if (!serverCertificate.checkHost(host)) problems.push(`server host ${host} is not a name of certs/server.pem: a client cannot verify it`);
    const credential = server.tls?.credentialName;
    if (variant.mode === 'SIMPLE') {
      const names = secrets.filter(isSecret).map((s) => s.metadata.name);
      if (credential === undefined || !names.includes(credential)) problems.push(`credentialName ${String(credential)} is not the Secret k8s/gateway-secret makes (${names.join(', ')})`);
    } else if (credential !== undefined) {
      problems.push(`credentialName ${credential} on a PASSTHROUGH server: the TLS server presents its own certificate`);
    }
  }
  if (JSON.stringify(vs.spec.gateways) !== JSON.stringify([gw.metadata.name])) problems.push(`VirtualService gateways ${JSON.stringify(vs.spec.gateways)}, want [${gw.metadata.name}] (that Gateway only, not the mesh)`);
  if (JSON.stringify(vs.spec.hosts) !== JSON.stringify(server?.hosts)) problems.push(`VirtualService hosts ${JSON.stringify(vs.spec.hosts)}, want the Gateway server's ${JSON.stringify(server?.hosts)}`);
  const others = (['http', 'tls', 'tcp'] as const).filter((k) => k !== variant.routes && vs.spec[k]?.length);
  if (others.length > 0) problems.push(`VirtualService has ${others.join(' and ')} routes: a ${variant.mode} server needs ${variant.routes} routes`);
  const routes: Array<HttpRoute | TlsRoute> = vs.spec[variant.routes] ?? [];
  if (routes.length !== 1) problems.push(`${routes.length} ${variant.routes} routes, want 1`);
  routes.forEach((r, i) => {
    const at = `${variant.routes}[${i}]`;
    if (variant.routes === 'http') {
      const { match } = r as HttpRoute;
      if (JSON.stringify(match) !== JSON.stringify([{ uri: { prefix: '/' } }])) problems.push(`${at}: match ${JSON.stringify(match)}, want [{"uri":{"prefix":"/"}}] (every gRPC method)`);
    } else {
      for (const m of (r as TlsRoute).match) {
        if (!m.sniHosts.every((h) => server?.hosts.includes(h))) problems.push(`${at}: sniHosts ${JSON.stringify(m.sniHosts)} are not the Gateway server's hosts`);
        if (m.port !== undefined && m.port !== server?.port.number) problems.push(`${at}: match port ${m.port}, but the Gateway server listens on ${server?.port.number}`);
      }
    }
    if (!r.route?.length) problems.push(`${at}: no route`);
    for (const d of r.route ?? []) problems.push(...destinationProblems(at, d, backend, variant));
  });
  return problems;
}

/** The Secret of k8s/gateway-secret: a kubernetes.io/tls Secret holding certs/server.pem and its key, as they are. */
function gatewaySecretProblems(objects: readonly KubeObject[]): string[] {
  const secrets = objects.filter(isSecret);
  if (secrets.length !== 1 || objects.length !== 1) return ['want exactly one Secret'];
  const secret = secrets[0]!;
  const problems: string[] = [];
  if (secret.type !== 'kubernetes.io/tls') problems.push(`type ${String(secret.type)}, want kubernetes.io/tls`);
  if (JSON.stringify(Object.keys(secret.data ?? {}).sort()) !== JSON.stringify(['tls.crt', 'tls.key']) || secret.stringData) problems.push('want data with tls.crt and tls.key only');
  const decoded = (key: string) => Buffer.from((secret.data?.[key] ?? '').replace(/\s/g, ''), 'base64');
  const files = { 'tls.crt': 'certs/server.pem', 'tls.key': 'certs/server-key.pem' } as const;
  for (const [key, file] of Object.entries(files)) if (!decoded(key).equals(readFileSync(join(root, file)))) problems.push(`${key} is not ${file}`);
  if (problems.length === 0 && !new X509Certificate(decoded('tls.crt')).checkPrivateKey(createPrivateKey(decoded('tls.key')))) problems.push('tls.key is not the key of tls.crt');
  return problems;
}

/** The scenarios and what each one does; a new file in k8s/istio needs a row here (and in the e2e). */
const SCENARIOS: Record<string, Array<{ match?: unknown; delay?: [string, number]; abort?: [string, number]; timeout?: string }>> = {
  delay: [{ delay: ['3s', 100] }],
  abort: [{ abort: ['UNAVAILABLE', 100] }],
  'header-delay': [{ match: [{ headers: { 'end-user': { exact: 'jason' } } }], delay: ['3s', 100] }, {}],
  'percent-delay': [{ delay: ['3s', 50] }],
  'stream-timeout': [{ timeout: '2s' }],
};

/**
 * The resilience scenarios (docs/resilience.md): each file's objects (kind and what it sets), as the table in
 * docs/resilience.md describes them. A VirtualService is grpc-helloworld-virtual-service, a DestinationRule
 * grpc-helloworld-destination-rule, so applying one scenario replaces the one before of the same kind.
 */
const RESILIENCE: Record<string, Array<{ kind: 'VirtualService' | 'DestinationRule'; sets: unknown }>> = {
  'retries-default': [{ kind: 'VirtualService', sets: { retries: { attempts: 2, retryOn: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes' } } }],
  retries: [{ kind: 'VirtualService', sets: { retries: { attempts: 3, perTryTimeout: '1s', retryOn: 'connect-failure,refused-stream,unavailable,cancelled,reset' } } }],
  'retries-off': [{ kind: 'VirtualService', sets: { retries: { attempts: 0 } } }],
  'outlier-detection': [{ kind: 'DestinationRule', sets: { outlierDetection: { consecutive5xxErrors: 3, interval: '1s', baseEjectionTime: '30s', maxEjectionPercent: 50 } } }],
  'circuit-breaker': [
    { kind: 'DestinationRule', sets: { connectionPool: { tcp: { maxConnections: 1 }, http: { http2MaxRequests: 2, http1MaxPendingRequests: 1, maxRequestsPerConnection: 100 } } } },
  ],
  'lb-round-robin': [{ kind: 'DestinationRule', sets: { loadBalancer: { simple: 'ROUND_ROBIN' } } }],
  'lb-least-request': [{ kind: 'DestinationRule', sets: { loadBalancer: { simple: 'LEAST_REQUEST' } } }],
  'lb-random': [{ kind: 'DestinationRule', sets: { loadBalancer: { simple: 'RANDOM' } } }],
  'lb-consistent-hash': [{ kind: 'DestinationRule', sets: { loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } } }],
  mirror: [
    { kind: 'VirtualService', sets: { route: [{ destination: { host: SERVICE, subset: 'v1' } }], mirror: { host: SERVICE, subset: 'v2' }, mirrorPercentage: { value: 100 } } },
    { kind: 'DestinationRule', sets: { subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] } },
  ],
};

/** What a resilience file's object sets: a VirtualService's one route without its name, a DestinationRule's policy or subsets. */
function resilienceShape(o: KubeObject): unknown {
  const spec = (o as unknown as { spec: Record<string, unknown> }).spec;
  if (o.kind === 'DestinationRule') return spec.trafficPolicy ?? { subsets: spec.subsets };
  const [route, ...more] = (spec.http as Array<Record<string, unknown>>) ?? [];
  if (more.length > 0) return 'more than one route';
  const { name: _name, ...rest } = route ?? {};
  return 'retries' in rest ? { retries: rest.retries } : rest;
}

function destinationRuleProblems(dr: KubeObject): string[] {
  const spec = (dr as unknown as { spec: { host: string; subsets?: Array<{ labels: Record<string, string> }> } }).spec;
  const problems: string[] = [];
  if (dr.metadata?.name !== 'grpc-helloworld-destination-rule') problems.push(`named ${String(dr.metadata?.name)}: every scenario uses grpc-helloworld-destination-rule, so one replaces another`);
  if (spec.host !== SERVICE) problems.push(`host ${spec.host}, want ${SERVICE}`);
  return problems;
}

function scenarioShape(vs: VirtualService): unknown {
  return vs.spec.http.map((r) => ({
    ...(r.match ? { match: r.match } : {}),
    ...(r.fault?.delay ? { delay: [r.fault.delay.fixedDelay, r.fault.delay.percentage?.value] } : {}),
    ...(r.fault?.abort ? { abort: [r.fault.abort.grpcStatus, r.fault.abort.percentage?.value] } : {}),
    ...(r.timeout !== undefined ? { timeout: r.timeout } : {}),
  }));
}

// ------------------------------------------------------------------------------------------------------------
let schemas: SchemaSet;
beforeAll(() => {
  schemas = new SchemaSet();
});

describe('vendored schemas', () => {
  it('are the files test/schemas/README.md lists, byte for byte', () => {
    const readme = readFileSync(join(root, 'test/schemas/README.md'), 'utf8');
    const rows = [...readme.matchAll(/^\| ([\w.-]+\.json) \| (\d+) \| ([0-9a-f]{40}) \| ([0-9a-f]{64}) \|$/gm)];
    expect(rows.map((r) => r[1])).toEqual(['deployment-apps-v1.json', 'service-v1.json', 'virtualservice_v1.json', 'secret-v1.json', 'gateway_v1.json', 'destinationrule_v1.json']);
    expect(readdirSync(join(root, 'test/schemas')).filter((f) => f.endsWith('.json')).sort()).toEqual(rows.map((r) => r[1]).sort());
    for (const [, file, bytes, , sha256] of rows) {
      const data = readFileSync(join(root, 'test/schemas', file!));
      expect({ file, bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') }).toEqual({ file, bytes: Number(bytes), sha256 });
    }
  });

  it('cover every kind the manifests use', () => {
    expect(schemas.kinds().sort()).toEqual([
      'apps/v1/Deployment',
      'networking.istio.io/v1/DestinationRule',
      'networking.istio.io/v1/Gateway',
      'networking.istio.io/v1/VirtualService',
      'networking.istio.io/v1beta1/VirtualService',
      'v1/Secret',
      'v1/Service',
    ]);
  });
});

describe('Istio scenarios (k8s/istio/*.yaml, each usable on its own)', () => {
  const files = istioScenarios();

  it('are exactly the known scenarios', () => {
    expect(Object.keys(files).sort()).toEqual([...Object.keys(SCENARIOS), ...Object.keys(RESILIENCE)].sort());
  });

  it.each(Object.keys(RESILIENCE))('%s.yaml: schema-valid, named to replace its kind\'s scenario, setting what the table says', (name) => {
    const objects = readYamlFile(files[name]!);
    expect(objects.map((o) => ({ kind: o.kind, sets: resilienceShape(o) }))).toEqual(RESILIENCE[name]);
    for (const o of objects) {
      expect(schemas.validate(o)).toEqual([]);
      expect(o.kind === 'VirtualService' ? virtualServiceProblems(o as VirtualService) : destinationRuleProblems(o)).toEqual([]);
    }
  });

  it.each(Object.keys(SCENARIOS))('%s.yaml: one VirtualService, schema-valid, with the fault it is named for', (name) => {
    const objects = readYamlFile(files[name]!);
    expect(objects).toHaveLength(1);
    const vs = objects[0]!;
    expect(schemas.validate(vs)).toEqual([]);
    expect(isVirtualService(vs)).toBe(true);
    expect(virtualServiceProblems(vs as VirtualService)).toEqual([]);
    expect(scenarioShape(vs as VirtualService)).toEqual(SCENARIOS[name]);
  });

  it('the checks catch what users get wrong', () => {
    const [delay] = readYamlFile(files.delay!) as [VirtualService];
    const [headerDelay] = readYamlFile(files['header-delay']!) as [VirtualService];

    // `percent:` for `percentage:` -- rejected by the schema where it is unknown (abort) or mistyped (delay),
    const abortTypo = readYamlFile(files.abort!)[0] as VirtualService;
    const abort = abortTypo.spec.http[0]!.fault!.abort! as Record<string, unknown>;
    abort.percent = abort.percentage;
    delete abort.percentage;
    expect(schemas.validate(abortTypo)).toContain('VirtualService/grpc-helloworld-virtual-service: /spec/http/0/fault/abort must NOT have additional properties: "percent"');
    const delayTypo = clone(delay);
    const d = delayTypo.spec.http[0]!.fault!.delay! as Record<string, unknown>;
    d.percent = d.percentage;
    delete d.percentage;
    expect(schemas.validate(delayTypo).join('\n')).toMatch(/\/fault\/delay\/percent must be integer/);
    // and where it is the deprecated integer field (schema-valid), by the semantic check.
    d.percent = 100;
    expect(schemas.validate(delayTypo)).toEqual([]);
    expect(virtualServiceProblems(delayTypo)).toEqual([
      'http[0] (delay-all): fault.delay.percent is deprecated: use percentage.value',
      'http[0] (delay-all): fault.delay without an explicit percentage.value (omitted means 0 %)',
    ]);

    const unknownTop = { ...clone(delay), specs: {} };
    expect(schemas.validate(unknownTop)).toEqual(['VirtualService/grpc-helloworld-virtual-service: / must NOT have additional properties: "specs"']);
    const wrongApi = { ...clone(delay), apiVersion: 'networking.istio.io/v2' };
    expect(schemas.validate(wrongApi)[0]).toMatch(/no vendored schema/);

    const noUnit = clone(delay);
    noUnit.spec.http[0]!.fault!.delay!.fixedDelay = '3';
    expect(schemas.validate(noUnit)).toEqual(['VirtualService/grpc-helloworld-virtual-service: /spec/http/0/fault/delay/fixedDelay must be a valid duration greater than 1ms']);

    const numericStatus = readYamlFile(files.abort!)[0] as VirtualService;
    (numericStatus.spec.http[0]!.fault!.abort as Record<string, unknown>).grpcStatus = 14;
    expect(schemas.validate(numericStatus)).toContain('VirtualService/grpc-helloworld-virtual-service: /spec/http/0/fault/abort/grpcStatus must be string');
    (numericStatus.spec.http[0]!.fault!.abort as Record<string, unknown>).grpcStatus = 'UNAVAILABLE_';
    expect(virtualServiceProblems(numericStatus)).toEqual(['http[0] (abort-all): grpcStatus "UNAVAILABLE_" is not a gRPC status name']);

    const noFallback = clone(headerDelay);
    noFallback.spec.http.pop();
    expect(schemas.validate(noFallback)).toEqual([]);
    expect(virtualServiceProblems(noFallback)).toEqual([
      'http[0] (delay-jason): matched route without a later catch-all route: unmatched calls would fail (no route)',
    ]);

    const [streamTimeout] = readYamlFile(files['stream-timeout']!) as [VirtualService];
    streamTimeout.spec.http[0]!.timeout = '0s';
    expect(virtualServiceProblems(streamTimeout)).toEqual(['http[0] (timeout-2s): timeout 0s (0s turns the route timeout off in Istio: leave it out instead)']);

    const noPercentage = clone(delay);
    delete noPercentage.spec.http[0]!.fault!.delay!.percentage;
    expect(virtualServiceProblems(noPercentage)).toEqual(['http[0] (delay-all): fault.delay without an explicit percentage.value (omitted means 0 %)']);
  });
});

describe.skipIf(!kubectl)('kustomize overlays (kubectl kustomize, offline)', () => {
  const dirs = kustomizations();
  const rendered: Record<string, KubeObject[]> = {};
  beforeAll(() => {
    for (const dir of dirs) rendered[dir] = kustomize(kubectl!, dir);
  });

  it('include the documented ones', () => {
    expect(dirs).toEqual(
      expect.arrayContaining(['base', 'plaintext', 'plaintext-v2', 'plaintext-grpc-probe', 'plaintext-httpget', 'tls', 'client', 'istio', 'gateway', 'gateway-passthrough', 'gateway-secret']),
    );
  });

  it.each(dirs)('k8s/%s renders objects that all validate against the strict schemas', (dir) => {
    expect(rendered[dir]!.length).toBeGreaterThan(0);
    expect(rendered[dir]!.flatMap((o) => schemas.validate(o))).toEqual([]);
  });

  it.each(Object.keys(SERVER_VARIANTS))('k8s/%s: the server variant holds together', (dir) => {
    expect(serverProblems(rendered[dir]!, SERVER_VARIANTS[dir]!)).toEqual([]);
  });

  it('k8s/client: an idle pod of the same image to kubectl exec into', () => {
    expect(rendered.client!.map((o) => `${String(o.kind)}/${String(o.metadata?.name)}`)).toEqual([`Deployment/${CLIENT_DEPLOYMENT}`]);
    expect(clientProblems(rendered.client!)).toEqual([]);
  });

  it('work in any namespace: no object sets one, every host is a short name (no `default` anywhere, comments included)', () => {
    for (const dir of dirs) expect({ dir, problems: namespaceProblems(rendered[dir]!) }).toEqual({ dir, problems: [] });
    for (const [name, file] of Object.entries(istioScenarios())) expect({ name, problems: namespaceProblems(readYamlFile(file)) }).toEqual({ name, problems: [] });
    const texts = [...yamlFiles(), join(root, 'certs/kustomization.yaml')].map((f) => [f, readFileSync(f, 'utf8')] as const);
    expect(texts.length).toBeGreaterThan(10);
    const mentions = texts.flatMap(([f, text]) => (text.match(/\.default\b|namespace:?\s+default\b|-n\s+default\b|\.svc\.cluster\.local/g) ?? []).map((m) => `${f}: ${m}`));
    expect(mentions).toEqual([]);
  });

  it('k8s/tls runs beside k8s/plaintext (or k8s/plaintext-grpc-probe, k8s/plaintext-httpget) in one namespace: no name in common, each Service selects only its own pods', () => {
    for (const plain of ['plaintext', 'plaintext-grpc-probe', 'plaintext-httpget']) {
      expect({ plain, problems: sideBySideProblems(rendered[plain]!, rendered.tls!) }).toEqual({ plain, problems: [] });
    }
    // plaintext-grpc-probe and plaintext-httpget are the plaintext server with other probes: the same objects, one replaces the other
    for (const other of ['plaintext-grpc-probe', 'plaintext-httpget']) {
      expect({ other, problems: sideBySideProblems(rendered.plaintext!, rendered[other]!) }).toEqual({
        other,
        problems: [
          `both have Service/${SERVICE}`,
          `both have Deployment/${PLAINTEXT_NAMES.deployment}`,
          `Service/${SERVICE} selects the pods of Deployment/${PLAINTEXT_NAMES.deployment}`,
          `Service/${SERVICE} selects the pods of Deployment/${PLAINTEXT_NAMES.deployment}`,
        ],
      });
    }
  });

  it('mirror.yaml: its subsets select the pods of k8s/plaintext (v1) and k8s/plaintext-v2 (v2), which the one Service selects', () => {
    const [, dr] = readYamlFile(istioScenarios().mirror!) as [unknown, { spec: { subsets: Array<{ name: string; labels: Record<string, string> }> } }];
    const podLabels = (dir: string) => rendered[dir]!.filter(isDeployment).map((d) => d.spec.template.metadata.labels);
    const selects = (labels: Record<string, string>, pods: Record<string, string>) => Object.entries(labels).every(([k, v]) => pods[k] === v);
    const [v1, v2] = dr.spec.subsets;
    expect(podLabels('plaintext').map((l) => selects(v1!.labels, l))).toEqual([true]);
    expect(podLabels('plaintext-v2').map((l) => [selects(v1!.labels, l), selects(v2!.labels, l)])).toEqual([[false, true]]);
    const service = rendered.plaintext!.find(isService)!;
    expect(podLabels('plaintext-v2').map((l) => selects(service.spec.selector, l))).toEqual([true]);
    expect(rendered['plaintext-v2']!.map((o) => `${String(o.kind)}/${String(o.metadata?.name)}`)).toEqual([`Deployment/${PLAINTEXT_NAMES.deployment}-v2`]);
  });

  it('k8s/istio applies the delay scenario, exactly as k8s/istio/delay.yaml has it', () => {
    expect(rendered.istio).toEqual(readYamlFile(istioScenarios().delay!));
  });

  it.each(Object.keys(GATEWAY_VARIANTS))('k8s/%s: a Gateway on 443 for the certificate\'s host, and a VirtualService to a port the backend Service has', (dir) => {
    const variant = GATEWAY_VARIANTS[dir]!;
    expect(gatewayProblems(rendered[dir]!, variant, rendered[variant.backend]!, rendered['gateway-secret']!)).toEqual([]);
  });

  it('k8s/gateway routes to the plaintext Service\'s grpc port, k8s/gateway-passthrough to the TLS Service\'s tls port (the names e2e:kind uses)', () => {
    const destination = (dir: string) => {
      const vs = rendered[dir]!.find(isVirtualService) as unknown as AnyVirtualService;
      return [...(vs.spec.http ?? []), ...(vs.spec.tls ?? [])].flatMap((r) => r.route ?? []).map((d) => d.destination);
    };
    expect(destination('gateway')).toEqual([{ host: PLAINTEXT_NAMES.service, port: { number: PORT } }]);
    expect(destination('gateway-passthrough')).toEqual([{ host: TLS_NAMES.service, port: { number: PORT } }]);
  });

  it('k8s/gateway-secret: the test server certificate and key, as the kubernetes.io/tls Secret the Gateway\'s credentialName names', () => {
    expect(gatewaySecretProblems(rendered['gateway-secret']!)).toEqual([]);
    const gw = rendered.gateway!.find(isGateway)!;
    expect(gw.spec.servers[0]!.tls!.credentialName).toBe(rendered['gateway-secret']![0]!.metadata!.name);
  });

  it('k8s/gateway and k8s/gateway-passthrough replace each other (same names, host and port) and share no name with the other directories', () => {
    expect(sideBySideProblems(rendered.gateway!, rendered['gateway-passthrough']!)).toEqual(['both have Gateway/grpc-helloworld-gateway', 'both have VirtualService/grpc-helloworld-ingress']);
    for (const gw of ['gateway', 'gateway-passthrough']) {
      for (const other of dirs.filter((d) => !d.startsWith('gateway'))) expect({ gw, other, problems: sideBySideProblems(rendered[gw]!, rendered[other]!) }).toEqual({ gw, other, problems: [] });
      expect(sideBySideProblems(rendered[gw]!, readYamlFile(istioScenarios().delay!))).toEqual([]);
    }
  });

  it('the gateway checks catch what users get wrong', () => {
    const [plain, tls, secrets] = [rendered.plaintext!, rendered.tls!, rendered['gateway-secret']!];
    const simple = () => rendered.gateway!.map(clone) as [Gateway, AnyVirtualService];
    const passthrough = () => rendered['gateway-passthrough']!.map(clone) as [Gateway, AnyVirtualService];

    // a credentialName that is not the generated Secret's name (e.g. with kustomize's hash suffix)
    const [gw1, vs1] = simple();
    gw1.spec.servers[0]!.tls!.credentialName = 'grpc-helloworld-gateway-credential-7d9f8m2k4b';
    expect(gatewayProblems([gw1, vs1], GATEWAY_VARIANTS.gateway!, plain, secrets)).toEqual([
      'credentialName grpc-helloworld-gateway-credential-7d9f8m2k4b is not the Secret k8s/gateway-secret makes (grpc-helloworld-gateway-credential)',
    ]);
    // a host the test certificate does not name, in the Gateway and the VirtualService
    const [gw2, vs2] = simple();
    gw2.spec.servers[0]!.hosts = ['grpc-helloworld.example.test'];
    vs2.spec.hosts = ['grpc-helloworld.example.test'];
    expect(gatewayProblems([gw2, vs2], GATEWAY_VARIANTS.gateway!, plain, secrets)).toEqual([
      'server hosts ["grpc-helloworld.example.test"], want [grpc-helloworld.test.youtube.com]',
      'server host grpc-helloworld.example.test is not a name of certs/server.pem: a client cannot verify it',
    ]);
    // a port the Service does not have; the TLS Service behind a TLS-terminating gateway; a VirtualService bound to the mesh
    const [gw3, vs3] = simple();
    vs3.spec.http![0]!.route![0]!.destination.port = { number: 443 };
    vs3.spec.gateways = ['mesh'];
    expect(gatewayProblems([gw3, vs3], GATEWAY_VARIANTS.gateway!, plain, secrets)).toEqual([
      'VirtualService gateways ["mesh"], want [grpc-helloworld-gateway] (that Gateway only, not the mesh)',
      'http[0]: Service grpc-helloworld-service has no port 443',
    ]);
    const [gw4, vs4] = simple();
    vs4.spec.http![0]!.route![0]!.destination.host = TLS_NAMES.service;
    expect(gatewayProblems([gw4, vs4], GATEWAY_VARIANTS.gateway!, plain, secrets)).toEqual([
      `http[0]: destination ${TLS_NAMES.service} is not a Service of k8s/plaintext (${PLAINTEXT_NAMES.service})`,
    ]);
    expect(gatewayProblems([gw4, vs4], { ...GATEWAY_VARIANTS.gateway!, backend: 'tls' }, tls, secrets)).toEqual([
      `http[0]: port ${PORT} of ${TLS_NAMES.service} is named tls, want grpc for a SIMPLE gateway`,
    ]);
    // passthrough: an http route where only the SNI is seen, a stray credentialName, the plaintext Service
    const [gw5, vs5] = passthrough();
    gw5.spec.servers[0]!.tls!.credentialName = 'grpc-helloworld-gateway-credential';
    vs5.spec.http = [{ route: [{ destination: { host: TLS_NAMES.service } }] }];
    vs5.spec.tls![0]!.match[0]!.sniHosts = ['x.test.youtube.com'];
    expect(gatewayProblems([gw5, vs5], GATEWAY_VARIANTS['gateway-passthrough']!, tls, secrets)).toEqual([
      'credentialName grpc-helloworld-gateway-credential on a PASSTHROUGH server: the TLS server presents its own certificate',
      'VirtualService has http routes: a PASSTHROUGH server needs tls routes',
      'tls[0]: sniHosts ["x.test.youtube.com"] are not the Gateway server\'s hosts',
    ]);
    const [gw6, vs6] = passthrough();
    vs6.spec.tls![0]!.route![0]!.destination.host = PLAINTEXT_NAMES.service;
    expect(gatewayProblems([gw6, vs6], { ...GATEWAY_VARIANTS['gateway-passthrough']!, backend: 'plaintext' }, plain, secrets)).toEqual([
      `tls[0]: port ${PORT} of ${PLAINTEXT_NAMES.service} is named grpc, want tls for a PASSTHROUGH gateway`,
    ]);

    // the schemas: unknown fields in a Gateway and a Secret, a Secret value that is not base64
    const [gw7] = simple();
    (gw7.spec.servers[0]!.tls as Record<string, unknown>).credentialname = 'x';
    delete (gw7.spec.servers[0]!.port as Record<string, unknown>).protocol;
    expect(schemas.validate(gw7)).toEqual([
      'Gateway/grpc-helloworld-gateway: /spec/servers/0/port must have required property \'protocol\'',
      'Gateway/grpc-helloworld-gateway: /spec/servers/0/tls must NOT have additional properties: "credentialname"',
    ]);
    expect(schemas.validate({ ...clone(rendered.gateway![0]!), apiVersion: 'networking.istio.io/v1beta1' })[0]).toMatch(/no vendored schema/);
    const secret = clone(secrets[0]!) as KubeObject & { data: Record<string, string> };
    secret.data['tls.crt'] = '-----BEGIN CERTIFICATE-----';
    (secret as Record<string, unknown>).stringdata = {};
    expect(schemas.validate(secret)).toEqual([
      'Secret/grpc-helloworld-gateway-credential: / must NOT have additional properties: "stringdata"',
      'Secret/grpc-helloworld-gateway-credential: /data/tls.crt must match format "byte"',
    ]);
    expect(gatewaySecretProblems([secret])).toEqual(['tls.crt is not certs/server.pem']);

    // any namespace: a Gateway host or a VirtualService gateway qualified with one
    const [gw8, vs8] = simple();
    gw8.spec.servers[0]!.hosts = [`default/${GATEWAY_HOST}`];
    vs8.spec.gateways = ['istio-system/grpc-helloworld-gateway'];
    expect(namespaceProblems([gw8, vs8])).toEqual([
      `Gateway/grpc-helloworld-gateway: server host default/${GATEWAY_HOST} names a namespace`,
      'VirtualService/grpc-helloworld-ingress: gateway istio-system/grpc-helloworld-gateway names a namespace',
    ]);
  });

  it('the namespace and side-by-side checks catch what would break them', () => {
    const tls = rendered.tls!.map(clone);
    const plain = rendered.plaintext!.map(clone);
    // the TLS overlay without its suffix and label: the plaintext one's names, and its Service selects both
    const unsuffixed = rendered.base!.map(clone);
    expect(sideBySideProblems(plain, unsuffixed)).toEqual([
      `both have Service/${SERVICE}`,
      `both have Deployment/${PLAINTEXT_NAMES.deployment}`,
      `Service/${SERVICE} selects the pods of Deployment/${PLAINTEXT_NAMES.deployment}`,
      `Service/${SERVICE} selects the pods of Deployment/${PLAINTEXT_NAMES.deployment}`,
    ]);
    // distinct names but the same app label: the plaintext Service would send calls to TLS pods
    tls.find(isDeployment)!.spec.template.metadata.labels.app = PLAINTEXT_NAMES.app;
    expect(sideBySideProblems(plain, tls)).toEqual([`Service/${SERVICE} selects the pods of Deployment/${TLS_NAMES.deployment}`]);

    const [delay] = readYamlFile(istioScenarios().delay!) as [VirtualService];
    (delay.metadata as Record<string, unknown>).namespace = 'default';
    delay.spec.hosts = [`${SERVICE}.default.svc.cluster.local`];
    (plain.find(isDeployment)!.spec.template.spec.containers[0]!.readinessProbe!.exec!.command = ['/client', '-health', '-server_addr', `${SERVICE}.grpc.svc:10000`]);
    expect(namespaceProblems([delay, ...plain])).toEqual([
      'VirtualService/grpc-helloworld-virtual-service: metadata.namespace default',
      `VirtualService/grpc-helloworld-virtual-service: /spec/hosts/0 "${SERVICE}.default.svc.cluster.local" names a namespace`,
      `VirtualService/grpc-helloworld-virtual-service: host ${SERVICE}.default.svc.cluster.local is not a short name`,
      `Deployment/${PLAINTEXT_NAMES.deployment}: /spec/template/spec/containers/0/readinessProbe/exec/command/3 "${SERVICE}.grpc.svc:10000" names a namespace`,
    ]);
  });

  it('the checks catch a broken variant', () => {
    const tls = rendered.tls!.map(clone);
    const dep = tls.find(isDeployment)!;
    const c = dep.spec.template.spec.containers[0]!;
    c.readinessProbe!.exec!.command = ['/client'];
    dep.spec.template.spec.terminationGracePeriodSeconds = 10;
    tls.find(isService)!.spec.ports[0]!.name = 'grpc';
    expect(serverProblems(tls, SERVER_VARIANTS.tls!)).toEqual([
      'Service port named grpc, want tls',
      'readinessProbe: ["/client"] lacks -tls (the server has it)',
      'readinessProbe: ["/client"] calls SayHello, which the server\'s own -sleep and -fail_rate fail: use -health',
      'terminationGracePeriodSeconds 10 must exceed preStop 5 s + -grace 10 s',
    ]);

    const plain = rendered.plaintext!.map(clone);
    const pc = plain.find(isDeployment)!.spec.template.spec.containers[0]!;
    pc.command = ['/server', '-grace', '30'];
    pc.livenessProbe!.timeoutSeconds = 1;
    pc.securityContext!.readOnlyRootFilesystem = false;
    expect(serverProblems(plain, SERVER_VARIANTS.plaintext!)).toEqual([
      'livenessProbe: timeoutSeconds 1 leaves no time for the client\'s cold start beyond its 1 s deadline',
      'terminationGracePeriodSeconds 20 must exceed preStop 5 s + -grace 30 s',
      'helloworld: readOnlyRootFilesystem is not true',
    ]);

    // httpGet probes: readiness on /healthz (which stays 200 through a drain), another port, HTTPS to plaintext, another host
    const httpGet = rendered['plaintext-httpget']!.map(clone);
    const hc = httpGet.find(isDeployment)!.spec.template.spec.containers[0]!;
    hc.readinessProbe!.httpGet = { path: '/healthz', port: 8080 };
    hc.livenessProbe!.httpGet = { path: '/healthz', port: 'grpc', scheme: 'HTTPS', host: 'example.com' };
    expect(serverProblems(httpGet, SERVER_VARIANTS['plaintext-httpget']!)).toEqual([
      'readinessProbe: httpGet port 8080, want 10000 (the gRPC port serves the health paths)',
      'readinessProbe: httpGet path /healthz, want /readyz',
      'livenessProbe: scheme HTTPS against a plaintext server',
      'livenessProbe: httpGet host example.com: probe the pod itself',
    ]);
    // ... and a strict schema: httpGet's port is required, path a string
    const portless = clone(rendered['plaintext-httpget']!.find(isDeployment)!);
    delete (portless.spec.template.spec.containers[0]!.readinessProbe!.httpGet as Partial<NonNullable<Probe['httpGet']>>).port;
    expect(schemas.validate(portless)).toEqual([
      "Deployment/grpc-helloworld-deployment: /spec/template/spec/containers/0/readinessProbe/httpGet must have required property 'port'",
    ]);

    // unknown fields in a Deployment are rejected, at any depth
    const typo = clone(rendered.plaintext!.find(isDeployment)!) as Deployment & { spec: Record<string, unknown> };
    (typo.spec.template.spec.containers[0] as unknown as Record<string, unknown>).readinessprobe = {};
    typo.spec.replica = 2;
    expect(schemas.validate(typo)).toEqual([
      'Deployment/grpc-helloworld-deployment: /spec must NOT have additional properties: "replica"',
      'Deployment/grpc-helloworld-deployment: /spec/template/spec/containers/0 must NOT have additional properties: "readinessprobe"',
    ]);
    const dupPort = clone(rendered.plaintext!.find(isDeployment)!);
    const ports = dupPort.spec.template.spec.containers[0]!.ports!;
    ports.push({ ...ports[0]!, name: 'again' });
    expect(schemas.validate(dupPort)).toEqual([
      'Deployment/grpc-helloworld-deployment: /spec/template/spec/containers/0/ports duplicate entry [10000,"TCP"] in a list of type map',
    ]);
  });
});

/** Every YAML file under k8s/. */
function yamlFiles(): string[] {
  const all: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.ya?ml$/.test(entry.name)) all.push(path);
    }
  };
  walk(k8sDir);
  return all;
}

it('k8s/ has no stray YAML outside the kustomizations and scenarios', () => {
  // every YAML file is reachable: a kustomization, a resource a kustomization lists, or an Istio scenario
  const listed = new Set<string>();
  for (const dir of kustomizations()) {
    const [k] = readYamlFile(join(k8sDir, dir, 'kustomization.yaml')) as Array<{ resources?: string[] }>;
    listed.add(join(k8sDir, dir, 'kustomization.yaml'));
    for (const r of k?.resources ?? []) if (r.endsWith('.yaml')) listed.add(join(k8sDir, dir, r));
  }
  for (const file of Object.values(istioScenarios())) listed.add(file);
  expect(yamlFiles().filter((f) => !listed.has(f))).toEqual([]);
});
