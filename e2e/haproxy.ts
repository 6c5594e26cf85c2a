// HAProxy playing the client's Istio sidecar for the local e2e: a real HTTP/2 proxy whose configuration is
// rendered from a VirtualService model (virtual-service.ts), so a change to k8s/istio/*.yaml changes what
// the local e2e checks.
//
// What Envoy's fault filter does, and how it is rendered (HAProxy 2.6, Lua 5.3):
// - route selection: the first route whose match fits sets `txn.route`; none fitting -> Envoy's "no route"
//   (NR) local reply, which a gRPC client sees as UNIMPLEMENTED (HTTP 404 mapped) without grpc-message;
// - delay `fixedDelay` -> `lua.delay MS` (core.msleep yields: delayed calls do not serialise), applied
//   before the call is forwarded, so it reaches the server late; a call whose client gives up during the
//   delay (RST_STREAM, or a closed connection) is never forwarded, as with Envoy;
// - abort -> a trailers-only local reply (`:status 200`, `content-type: application/grpc`, `grpc-status`,
//   `grpc-message: fault filter abort`), never forwarded; `httpStatus` is mapped to a gRPC status as Envoy
//   maps its local replies to gRPC calls (503 -> UNAVAILABLE, ...);
// - `percentage.value` -> `rand(1000000) lt value*10000` (Envoy's per-million fraction), drawn
//   independently for delay and abort; omitted = 0 % = never;
// - a port named `tls` -> a `mode tcp` frontend: opaque bytes, the routes and faults do not apply;
// - a route `timeout` -> the route's own backend, named with its timeout; the Lua task below cuts (`shutdown
//   session`, on HAProxy's admin socket) each of its streams that long after its request ended, as Envoy's
//   route timeout starts when the whole request is in (docs/streams.md);
// - a gateway that terminates TLS (`terminateTls`) -> `bind ... ssl alpn h2`, plaintext h2 to the server;
// - `streamIdleTimeoutMs` (Envoy's stream_idle_timeout, which Istio sets to 0) -> the backend's `timeout server`;
// - a Service without a sidecar in front (`tcp`) -> `mode tcp`, `balance roundrobin`: kube-proxy, which
//   balances connections, not calls;
// - several replicas, retries, load balancing, circuit breaking, outlier detection: traffic-policy.ts.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { statusName } from '../src/status.ts';
import type { MatchCondition, StringMatch, VirtualServiceModel } from './virtual-service.ts';
import { renderBackendPolicy, serverOptions, type BackendPolicy } from './traffic-policy.ts';
import { accepts, freePort } from '../test/helpers/ports.ts';
export { freePort };

/** The admin socket the route-timeout task uses, beside the Lua file. */
export const ADMIN_SOCKET = 'admin.sock';

/** The Lua half of the fault filter: a delay that yields instead of blocking HAProxy's thread. */
// After the sleep it marks the call: when the client goes away during the sleep (deadline, exit), HAProxy
// cuts the action short ("aborting Lua processing") and, for a closed connection, would still forward the
// call at once; the missing mark lets the next rule drop it instead, as Envoy does.
//
// The route-timeout task finds its work in HAProxy itself: backends named *_timeout_<ms>ms, and the admin
// socket beside this file (ADMIN_SOCKET). A stream's clock starts when HAProxy first sees its request done
// (req.st=MSG_DONE; a 50 ms scan), so a bidi stream is not cut while its client is still sending. Only a
// stream whose answer has begun is cut: before that Envoy answers 504 (UNAVAILABLE), which `shutdown session`
// cannot (it resets with REFUSED_STREAM, which a client retries); such a call is left to its own deadline.
export const FAULT_LUA = `core.register_action("delay", {"http-req"}, function(txn, ms)
  core.msleep(tonumber(ms))
  txn:set_var("txn.delay_done", true)
end, 1)

local function admin(command)
  local dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")
  local s = core.tcp()
  s:settimeout(2)
  if not s:connect("unix@" .. dir .. "/${ADMIN_SOCKET}") then return "" end
  s:send(command .. "\\n")
  local out = s:receive("*a") or ""
  s:close()
  return out
end

-- "show sess all": a block per stream, from its "0x<ptr>: [<accept date>] id=<n> ..." line to the next
local function sessions(text)
  local list, current = {}, nil
  for line in text:gmatch("[^\\n]+") do
    local ptr, id = line:match("^(0x%x+): %[[^%]]*%] id=(%d+)")
    if ptr then
      current = { ptr = ptr, key = ptr .. "#" .. id, backend = nil, done = false, answering = false }
      list[#list + 1] = current
    elseif current then
      current.backend = current.backend or line:match("^  backend=([%w_]+) ")
      current.done = current.done or line:find("req%.st=MSG_DONE") ~= nil
      current.answering = current.answering or (line:find(" rsp%.st=") ~= nil and line:find("rsp%.st=MSG_RPBEFORE") == nil)
    end
  end
  return list
end

core.register_task(function()
  local limits = {}
  for name in pairs(core.backends) do
    local ms = name:match("_timeout_(%d+)ms$")
    if ms then limits[name] = tonumber(ms) end
  end
  if next(limits) == nil then return end
  local since = {}
  while true do
    core.msleep(50)
    local now = core.now()
    local t = now.sec * 1000 + now.usec / 1000
    local seen = {}
    for _, s in ipairs(sessions(admin("show sess all"))) do
      local limit = limits[s.backend or ""]
      if limit and s.done and s.answering then
        seen[s.key] = true
        since[s.key] = since[s.key] or t
        if t - since[s.key] >= limit then admin("shutdown session " .. s.ptr) end
      end
    end
    for key in pairs(since) do
      if not seen[key] then since[key] = nil end
    end
  end
end)
`;

export interface Endpoint {
  host: string;
  port: number;
}

export interface FrontendSpec {
  name: string;
  listen: Endpoint;
  /** the Service port's protocol as Istio reads its name: `grpc` is parsed (L7), `tls` is opaque TCP; `tcp`: no sidecar at all (kube-proxy) */
  protocol: 'grpc' | 'tls' | 'tcp';
  backend: Endpoint;
  /** more replicas than `backend` (which is the first) */
  replicas?: Endpoint[];
  /** grpc: the route's retries and the DestinationRule's policy (traffic-policy.ts) */
  policy?: BackendPolicy;
  /** the VirtualService in force; none = the baseline (the VirtualService deleted) */
  virtualService?: VirtualServiceModel;
  /** an ingress gateway terminating TLS (ALPN h2) with this certificate; `grpc` only */
  terminateTls?: { certFile: string; keyFile: string };
  /** a stream with nothing from the server for this long is cut (Envoy's stream_idle_timeout); default 60 s */
  streamIdleTimeoutMs?: number;
}

/** The backend a route with a `timeout` uses: the Lua task reads the timeout from its name. */
export const timeoutBackend = (frontend: string, route: number, ms: number) => `${frontend}_route${route}_timeout_${Math.round(ms)}ms`;

const hasRouteTimeout = (f: FrontendSpec) => f.protocol === 'grpc' && (f.virtualService?.routes.some((r) => r.timeoutMs !== undefined) ?? false);

const PER_MILLION = 1_000_000;

/** HAProxy's strong quoting: nothing inside single quotes is interpreted (the reader rejects `'`). */
const quote = (s: string) => `'${s}'`;

function stringAcl(fetch: string, m: StringMatch, ignoreCase = false): string {
  const i = ignoreCase ? '-i ' : '';
  switch (m.kind) {
    case 'exact':
      return `{ ${fetch} ${i}-m str -- ${quote(m.value)} }`;
    case 'prefix':
      return `{ ${fetch} ${i}-m beg -- ${quote(m.value)} }`;
    case 'regex': // Envoy's safe_regex matches the whole value; HAProxy's -m reg searches: anchor it
      return `{ ${fetch} ${i}-m reg -- ${quote(`^(?:${m.value})$`)} }`;
    case 'present':
      return `{ ${fetch.replace(/^req\.fhdr\(/, 'req.hdr_cnt(')} gt 0 }`;
  }
}

/** One match entry as an HAProxy condition: its ACLs side by side are ANDed. */
function conditionAcls(c: MatchCondition): string[] {
  const acls: string[] = [];
  if (c.uri) acls.push(stringAcl('path', c.uri, c.ignoreUriCase));
  if (c.method) acls.push(stringAcl('method', c.method));
  for (const h of c.headers) {
    // req.fhdr: the whole value (req.hdr would split it at commas); Envoy compares the whole value too
    const acl = stringAcl(`req.fhdr(${h.name})`, h.match);
    acls.push(h.negate ? `!${acl}` : acl);
  }
  return acls;
}

function describeMatch(c: MatchCondition): string {
  const parts: string[] = [];
  const d = (m: StringMatch) => (m.kind === 'present' ? 'present' : `${m.kind} ${JSON.stringify(m.value)}`);
  if (c.uri) parts.push(`uri ${d(c.uri)}${c.ignoreUriCase ? ' (any case)' : ''}`);
  if (c.method) parts.push(`method ${d(c.method)}`);
  for (const h of c.headers) parts.push(`${h.negate ? 'without ' : ''}header ${h.name} ${d(h.match)}`);
  return parts.join(' and ');
}

const perMillion = (percent: number) => Math.round(percent * (PER_MILLION / 100));

function renderFaultRules(name: string, vs: VirtualServiceModel): string[] {
  const lines: string[] = [`    # VirtualService ${vs.name} (${vs.file}), hosts ${vs.hosts.join(', ')}`];
  const unrouted = '!{ var(txn.route) -m found }';
  vs.routes.forEach((route, i) => {
    if (route.match === null) {
      lines.push(`    # route ${i} ${JSON.stringify(route.name)}: every call`);
      lines.push(`    http-request set-var(txn.route) int(${i}) if ${unrouted}`);
    } else {
      lines.push(`    # route ${i} ${JSON.stringify(route.name)}: ${route.match.map(describeMatch).join(', or ')}`);
      const alternatives = route.match.map((c) => [unrouted, ...conditionAcls(c)].join(' '));
      lines.push(`    http-request set-var(txn.route) int(${i}) if ${alternatives.join(' || ')}`);
    }
  });
  if (!vs.hasCatchAll) {
    lines.push('    # no route matched: Envoy answers NR (404), which a gRPC client sees as UNIMPLEMENTED');
    lines.push(`    http-request set-var(txn.grpc_local) bool(true) if ${unrouted}`);
    lines.push(`    http-request return status 200 hdr grpc-status 12 if ${unrouted}`);
  }
  vs.routes.forEach((route, i) => {
    const onRoute = `{ var(txn.route) -m int ${i} }`;
    const { delay, abort } = route.fault;
    if (delay) {
      if (delay.percent <= 0) {
        lines.push(`    # route ${i}: delay ${delay.ms}ms at 0 % (percentage omitted or 0): never applied`);
      } else {
        lines.push(`    # route ${i}: delay ${delay.ms}ms for ${delay.percent} % of calls (response flag DI)`);
        lines.push(`    http-request set-var(txn.delay) bool(true) if ${onRoute} { rand(${PER_MILLION}) lt ${perMillion(delay.percent)} }`);
        lines.push(`    http-request lua.delay ${Math.round(delay.ms)} if ${onRoute} { var(txn.delay) -m bool }`);
        lines.push('    # the client went away during the delay: never forward the call (nobody is left to get the answer)');
        lines.push(`    http-request deny deny_status 503 if ${onRoute} { var(txn.delay) -m bool } !{ var(txn.delay_done) -m bool }`);
      }
    }
    if (abort) {
      if (abort.percent <= 0) {
        lines.push(`    # route ${i}: abort (${abort.from}) at 0 % (percentage omitted or 0): never applied`);
      } else {
        lines.push(
          `    # route ${i}: abort ${abort.from} -> grpc-status ${abort.grpcStatus} ${statusName(abort.grpcStatus)} for ${abort.percent} % of calls (response flag FI)`,
        );
        lines.push(`    http-request set-var(txn.grpc_local) bool(true) if ${onRoute} { rand(${PER_MILLION}) lt ${perMillion(abort.percent)} }`);
        lines.push(
          `    http-request return status 200 hdr grpc-status ${abort.grpcStatus} hdr grpc-message "fault filter abort" if ${onRoute} { var(txn.grpc_local) -m bool }`,
        );
      }
    }
  });
  // a local reply to a gRPC call is a gRPC response: trailers-only, with gRPC's content type
  lines.push('    http-after-response set-header content-type application/grpc if { var(txn.grpc_local) -m bool }');
  vs.routes.forEach((route, i) => {
    if (route.timeoutMs === undefined) return;
    lines.push(`    # route ${i}: timeout ${route.timeoutMs}ms after the request ended (response flag UT)`);
    lines.push(`    use_backend ${timeoutBackend(name, i, route.timeoutMs)} if { var(txn.route) -m int ${i} }`);
  });
  return lines;
}

export interface RenderOptions {
  /** FAULT_LUA's file; the admin socket and the gateways' certificates (`<frontend>.pem`) go beside it */
  luaFile: string;
  frontends: FrontendSpec[];
}

/** The certificate and key of a gateway that terminates TLS, in one file as HAProxy's `crt` takes them. */
export const pemFile = (luaFile: string, frontend: string) => join(dirname(luaFile), `${frontend}.pem`);

function backendLines(name: string, f: FrontendSpec): string[] {
  const out = ['', `backend ${name}`];
  const servers = [f.backend, ...(f.replicas ?? [])];
  if (f.protocol !== 'grpc') {
    out.push('    mode tcp', ...(servers.length > 1 ? ['    balance roundrobin'] : []));
    servers.forEach((b, i) => out.push(`    server s${i + 1} ${b.host}:${b.port}`));
    return out;
  }
  if (f.streamIdleTimeoutMs !== undefined) out.push(`    timeout server ${Math.round(f.streamIdleTimeoutMs)}ms`);
  // 'proto h2' is required: otherwise HAProxy speaks HTTP/1.1 to the gRPC server (-> 502)
  out.push('    mode http', ...(f.policy ? renderBackendPolicy(f.policy) : []));
  const options = f.policy ? serverOptions(f.policy) : '';
  servers.forEach((b, i) => out.push(`    server s${i + 1} ${b.host}:${b.port} proto h2${options}`));
  return out;
}

/** The whole haproxy.cfg: one frontend per spec, each with its own backend. */
export function renderHaproxyConfig({ luaFile, frontends }: RenderOptions): string {
  const out: string[] = [
    '# Rendered by e2e/haproxy.ts: HAProxy as the client-side Istio sidecar of the local e2e.',
    'global',
    `    lua-load ${quote(luaFile)}`,
    ...(frontends.some(hasRouteTimeout) ? [`    stats socket ${quote(join(dirname(luaFile), ADMIN_SOCKET))} mode 600 level admin`] : []),
    // the percentage scenario sends 100 calls at once on one connection (HAProxy's default limit is 100)
    '    tune.h2.max-concurrent-streams 256',
    '    maxconn 4096',
    'defaults',
    '    timeout connect 2s',
    '    timeout client 60s',
    '    timeout server 60s',
    // A client that gives up while its call is held by the delay: Envoy never forwards it. Besides the
    // delay's mark (FAULT_LUA), do not send a request whose client has gone to the server.
    '    option abortonclose',
  ];
  for (const f of frontends) {
    if (!/^[a-z][a-z0-9_]*$/.test(f.name)) throw new Error(`frontend name ${f.name}: use [a-z0-9_]`);
    out.push('', `frontend ${f.name}`);
    if (f.protocol === 'tcp') {
      out.push('    # no sidecar: kube-proxy balances connections (each one stays with the replica it was given)');
      out.push('    mode tcp', `    bind ${f.listen.host}:${f.listen.port}`);
    } else if (f.protocol === 'tls') {
      out.push('    # a "tls" port: the sidecar proxies opaque TCP, VirtualService http routes (and faults) do not apply');
      out.push('    mode tcp', `    bind ${f.listen.host}:${f.listen.port}`);
      if (f.virtualService) out.push(`    # (VirtualService ${f.virtualService.name} is in force, and has nothing to act on here)`);
    } else {
      const bind = `    bind ${f.listen.host}:${f.listen.port}`;
      if (f.terminateTls) out.push('    # an ingress gateway terminating TLS: h2 by ALPN, plaintext h2 to the server');
      out.push('    mode http', f.terminateTls ? `${bind} ssl crt ${quote(pemFile(luaFile, f.name))} alpn h2` : `${bind} proto h2`);
      if (f.virtualService) out.push(...renderFaultRules(f.name, f.virtualService));
      else out.push('    # baseline: no VirtualService');
    }
    out.push(`    default_backend ${f.name}_backend`);
    out.push(...backendLines(`${f.name}_backend`, f));
    f.virtualService?.routes.forEach((r, i) => {
      if (r.timeoutMs !== undefined && hasRouteTimeout(f)) out.push(...backendLines(timeoutBackend(f.name, i, r.timeoutMs), f));
    });
  }
  return `${out.join('\n')}\n`;
}

/** The haproxy binary: on PATH, or in the sbin directories a non-root PATH may lack; undefined if absent. */
export function findHaproxy(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  return dirs.filter(Boolean).map((d) => join(d, 'haproxy')).find((p) => existsSync(p));
}

export interface RunningHaproxy {
  child: ChildProcess;
  config: string;
  output: () => string;
  stop(): Promise<void>;
}

export class HaproxyBindError extends Error {}

/** Children still running, killed if this process exits before stopping them (no stray proxies). */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Runs `haproxy -db` (foreground) on the rendered config and waits until every frontend accepts connections. */
export async function startHaproxy(options: Omit<RenderOptions, 'luaFile'> & { binary?: string }): Promise<RunningHaproxy> {
  const binary = options.binary ?? findHaproxy();
  if (!binary) throw new Error('haproxy not found (apt-get install haproxy; .ci/run installs it)');
  const dir = await mkdtemp(join(tmpdir(), 'e2e-haproxy-'));
  const luaFile = join(dir, 'fault.lua');
  const config = renderHaproxyConfig({ ...options, luaFile });
  await writeFile(luaFile, FAULT_LUA);
  for (const f of options.frontends) {
    if (f.terminateTls) await writeFile(pemFile(luaFile, f.name), (await Promise.all([f.terminateTls.certFile, f.terminateTls.keyFile].map((p) => readFile(p, 'utf8')))).join('\n'));
  }
  await writeFile(join(dir, 'haproxy.cfg'), config);
  const child = spawn(binary, ['-db', '-f', join(dir, 'haproxy.cfg')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
  running.add(child);
  const exited = once(child, 'close');
  let gone = false;
  void exited.then(() => {
    gone = true;
    running.delete(child);
  });
  const stop = async () => {
    if (!gone) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  for (const f of options.frontends) {
    while (!(await accepts(f.listen.port, f.listen.host))) {
      if (gone || Date.now() > deadline) {
        await stop();
        const why = `haproxy did not start: ${output.trim() || '(no output)'}`;
        throw /cannot bind socket/.test(output) ? new HaproxyBindError(why) : new Error(why);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return { child, config, output: () => output, stop };
}
