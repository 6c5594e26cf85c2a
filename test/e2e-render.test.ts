// The VirtualService -> HAProxy renderer of the local fault-injection e2e: what it reads, what it refuses,
// and, through a real HAProxy in front of the in-process server (a grpc-js client on the other side), that
// the rendered proxy does what the model says Istio's sidecar does (route matching, abort statuses,
// trailers-only local replies, no route, percentages 0 and 100, the tls passthrough).
import { status, type Client } from '@grpc/grpc-js';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAULT_LUA, findHaproxy, freePort, renderHaproxyConfig, startHaproxy, type RunningHaproxy } from '../e2e/haproxy.ts';
import { istioDir, selectRoute } from '../e2e/scenarios.ts';
import { grpcStatusForHttpStatus, parseDurationMs, readVirtualService, UnsupportedVirtualService } from '../e2e/virtual-service.ts';
import { greeterClient, sayHello } from './helpers/grpc-js-client.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const haproxy = findHaproxy();
// the files that are one VirtualService (DestinationRules and mirror.yaml: test/e2e-resilience.test.ts)
const vsFiles = readdirSync(istioDir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml' && !/^kind: DestinationRule$/m.test(readFileSync(join(istioDir, f), 'utf8')));

const vs = (spec: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: t
spec:
  hosts: [grpc-helloworld-service]
${spec}`;
const read = (text: string) => readVirtualService(text, 'test.yaml');
const route = '      route: [{destination: {host: grpc-helloworld-service}}]';

describe('reading a VirtualService', () => {
  it.each(vsFiles)('k8s/istio/%s is read, and its rendering passes `haproxy -c`', async (file) => {
    const model = readVirtualService(readFileSync(join(istioDir, file), 'utf8'), file);
    expect(model.routes.length).toBeGreaterThan(0);
    if (!haproxy) return;
    const dir = await mkdtemp(join(tmpdir(), 'e2e-render-'));
    try {
      const luaFile = join(dir, 'fault.lua');
      await writeFile(luaFile, FAULT_LUA);
      const cfg = renderHaproxyConfig({
        luaFile,
        frontends: [
          { name: 'fault', listen: { host: '127.0.0.1', port: 1 }, protocol: 'grpc', backend: { host: '127.0.0.1', port: 2 }, virtualService: model },
          { name: 'tls', listen: { host: '127.0.0.1', port: 3 }, protocol: 'tls', backend: { host: '127.0.0.1', port: 4 }, virtualService: model },
        ],
      });
      await writeFile(join(dir, 'haproxy.cfg'), cfg);
      const check = spawnSync(haproxy, ['-c', '-f', join(dir, 'haproxy.cfg')], { encoding: 'utf8' });
      expect(check.status, `${check.stdout}${check.stderr}\n${cfg}`).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reads the scenario manifests as the issue describes them', () => {
    const load = (f: string) => readVirtualService(readFileSync(join(istioDir, f), 'utf8'), f);
    expect(load('delay.yaml').routes[0]!.fault).toEqual({ delay: { ms: 3000, percent: 100 } });
    expect(load('abort.yaml').routes[0]!.fault).toEqual({ abort: { grpcStatus: 14, percent: 100, from: 'grpcStatus UNAVAILABLE' } });
    expect(load('percent-delay.yaml').routes[0]!.fault.delay?.percent).toBe(50);
    expect(load('stream-timeout.yaml').routes[0]).toMatchObject({ name: 'timeout-2s', match: null, fault: {}, timeoutMs: 2000 });
    const header = load('header-delay.yaml');
    expect(header.hasCatchAll).toBe(true);
    expect(header.routes[0]!.match).toEqual([{ ignoreUriCase: false, headers: [{ name: 'end-user', match: { kind: 'exact', value: 'jason' }, negate: false }] }]);
  });

  it('renders a route timeout as the route\'s own backend, named with it, and the admin socket the Lua task cuts streams with', () => {
    const m = read(vs(`  http:\n    - name: slow\n      match: [{headers: {x-slow: {}}}]\n      timeout: 1.5s\n${route}\n    - name: rest\n${route}`));
    expect(m.routes.map((r) => r.timeoutMs)).toEqual([1500, undefined]);
    const cfg = renderHaproxyConfig({
      luaFile: '/tmp/x/fault.lua',
      frontends: [{ name: 'fault', listen: { host: '127.0.0.1', port: 1 }, protocol: 'grpc', backend: { host: '127.0.0.1', port: 2 }, virtualService: m }],
    });
    expect(cfg).toContain("stats socket '/tmp/x/admin.sock' mode 600 level admin");
    expect(cfg).toContain('use_backend fault_route0_timeout_1500ms if { var(txn.route) -m int 0 }');
    expect(cfg).toMatch(/\nbackend fault_route0_timeout_1500ms\n    mode http\n    server s1 127\.0\.0\.1:2 proto h2\n/);
    expect(cfg).not.toContain('route1_timeout');
    // without a route timeout: no admin socket at all
    expect(renderHaproxyConfig({ luaFile: '/tmp/x/fault.lua', frontends: [{ name: 'b', listen: { host: '127.0.0.1', port: 1 }, protocol: 'grpc', backend: { host: '127.0.0.1', port: 2 } }] })).not.toContain('stats socket');
  });

  it('renders an ingress gateway that terminates TLS (ALPN h2), and a stream idle timeout as the backend\'s `timeout server`', () => {
    const cfg = renderHaproxyConfig({
      luaFile: '/tmp/x/fault.lua',
      frontends: [
        { name: 'gw', listen: { host: '127.0.0.1', port: 1 }, protocol: 'grpc', backend: { host: '127.0.0.1', port: 2 }, terminateTls: { certFile: 'c', keyFile: 'k' } },
        { name: 'idle', listen: { host: '127.0.0.1', port: 3 }, protocol: 'grpc', backend: { host: '127.0.0.1', port: 2 }, streamIdleTimeoutMs: 1000 },
      ],
    });
    expect(cfg).toContain("bind 127.0.0.1:1 ssl crt '/tmp/x/gw.pem' alpn h2");
    expect(cfg).toMatch(/backend gw_backend\n    mode http\n    server s1 127\.0\.0\.1:2 proto h2/);
    expect(cfg).toMatch(/backend idle_backend\n    timeout server 1000ms\n/);
  });

  it('takes an omitted percentage as 0 %, as Istio does', () => {
    const m = read(vs(`  http:\n    - fault: {delay: {fixedDelay: 3s}}\n${route}`));
    expect(m.routes[0]!.fault.delay).toEqual({ ms: 3000, percent: 0 });
  });

  it('maps an abort httpStatus to the gRPC status Envoy sends a gRPC client', () => {
    expect([400, 401, 403, 404, 429, 502, 503, 504, 500, 418].map(grpcStatusForHttpStatus)).toEqual([13, 16, 7, 12, 14, 14, 14, 14, 2, 2]);
    const m = read(vs(`  http:\n    - fault: {abort: {httpStatus: 503, percentage: {value: 100}}}\n${route}`));
    expect(m.routes[0]!.fault.abort).toEqual({ grpcStatus: 14, percent: 100, from: 'httpStatus 503' });
  });

  it('parses Go durations', () => {
    expect(['3s', '0.5s', '250ms', '1m30s', '1500us'].map(parseDurationMs)).toEqual([3000, 500, 250, 90_000, 1.5]);
    expect(['3', 's', '3 s', '-1s', ''].map(parseDurationMs)).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });

  const refused: [string, string, RegExp][] = [
    ['a typo', `  http:\n    - fault: {delay: {fixedDelay: 3s, percent: 50}}\n${route}`, /percent: the deprecated integer `percent`/],
    ['an unknown field', `  http:\n    - fault: {delay: {fixedDelay: 3s, percentage: {valu: 5}}}\n${route}`, /percentage\.valu: unknown field/],
    ['retries locality', `  http:\n    - retries: {attempts: 3, retryRemoteLocalities: true}\n${route}`, /spec\.http\[0\]\.retries\.retryRemoteLocalities: localities do not exist locally/],
    ['a route timeout of 0s (Istio: no timeout)', `  http:\n    - timeout: 0s\n${route}`, /timeout: a timeout under 1ms \(0s disables it in Istio\)/],
    ['a route timeout without a unit', `  http:\n    - timeout: "2"\n${route}`, /timeout: "2" is not a duration/],
    ['a subset', `  http:\n    - route: [{destination: {host: grpc-helloworld-service, subset: v1}}]`, /subset: subsets need a DestinationRule/],
    ['another destination', `  http:\n    - route: [{destination: {host: other}}]`, /other is not grpc-helloworld-service/],
    ['a TCP route', `  tcp:\n    - route: [{destination: {host: grpc-helloworld-service}}]`, /spec\.tcp: TCP routes are not rendered/],
    ['a gateway', `  gateways: [my-gateway]\n  http:\n${route}`, /only the sidecars \("mesh"\)/],
    ['an uppercase header key', `  http:\n    - match: [{headers: {End-User: {exact: jason}}}]\n${route}`, /header keys must be lowercase/],
    ['an authority match', `  http:\n    - match: [{authority: {exact: x}}]\n${route}`, /authority matches are not rendered/],
    ['two kinds in one match', `  http:\n    - match: [{headers: {a: {exact: x, prefix: y}}}]\n${route}`, /give one of exact, prefix, regex, not exact and prefix/],
    ['a bad regex', `  http:\n    - match: [{headers: {a: {regex: "(x"}}}]\n${route}`, /not a valid regular expression/],
    ['a quote in a value', `  http:\n    - match: [{headers: {a: {exact: "it's"}}}]\n${route}`, /quotes and control characters/],
    ['a bad grpcStatus', `  http:\n    - fault: {abort: {grpcStatus: UNAVAILABLEX, percentage: {value: 100}}}\n${route}`, /"UNAVAILABLEX" is not a gRPC status name/],
    ['a numeric grpcStatus', `  http:\n    - fault: {abort: {grpcStatus: 14, percentage: {value: 100}}}\n${route}`, /grpcStatus: expected a string/],
    ['both statuses', `  http:\n    - fault: {abort: {grpcStatus: INTERNAL, httpStatus: 503}}\n${route}`, /exactly one of grpcStatus, httpStatus/],
    ['http2Error', `  http:\n    - fault: {abort: {http2Error: x}}\n${route}`, /http2Error is not implemented by Istio/],
    ['a bad duration', `  http:\n    - fault: {delay: {fixedDelay: 3, percentage: {value: 100}}}\n${route}`, /fixedDelay: expected a string/],
    ['a percentage over 100', `  http:\n    - fault: {delay: {fixedDelay: 3s, percentage: {value: 150}}}\n${route}`, /from 0 to 100/],
    ['an unreachable route', `  http:\n    - name: all\n${route}\n    - name: never\n${route}`, /spec\.http\[1\]: unreachable: route all before it matches every call/],
  ];
  it.each(refused)('refuses %s, naming the field', (_what, spec, message) => {
    expect(() => read(vs(spec))).toThrow(UnsupportedVirtualService);
    expect(() => read(vs(spec))).toThrow(message);
  });

  it('refuses a VirtualService for another host, and a file with two documents', () => {
    expect(() => read(vs(`  http:\n${route}`).replace('hosts: [grpc-helloworld-service]', 'hosts: [reviews]'))).toThrow(/none of reviews is grpc-helloworld-service/);
    expect(() => read(`${vs(`  http:\n${route}`)}\n---\n${vs(`  http:\n${route}`)}`)).toThrow(/expected one VirtualService, found 2 documents/);
  });
});

// ---------------------------------------------------------------------------------------------------
// The rendered HAProxy against the model, with a grpc-js client (independent of this project's client).

const routes = `  http:
    - name: exact
      match: [{headers: {x-case: {exact: a}}}]
      fault: {abort: {grpcStatus: PERMISSION_DENIED, percentage: {value: 100}}}
${route}
    - name: prefix
      match: [{headers: {x-case: {prefix: pre}}}]
      fault: {abort: {httpStatus: 401, percentage: {value: 100}}}
${route}
    - name: regex
      match: [{headers: {x-case: {regex: "re[0-9]+"}}}]
      fault: {abort: {grpcStatus: RESOURCE_EXHAUSTED, percentage: {value: 100}}}
${route}
    - name: present-and-uri
      match: [{headers: {x-present: {}}, uri: {exact: /helloworld.Greeter/SayHello}}]
      fault: {abort: {grpcStatus: ABORTED, percentage: {value: 100}}}
${route}
    - name: either
      match: [{headers: {x-case: {exact: one}}}, {headers: {x-case: {exact: two}}}]
      fault: {abort: {httpStatus: 503, percentage: {value: 100}}}
${route}
    - name: without
      match: [{headers: {x-case: {exact: neg}}, withoutHeaders: {x-veto: {}}}]
      fault: {abort: {grpcStatus: FAILED_PRECONDITION, percentage: {value: 100}}}
${route}
    - name: delay
      match: [{headers: {x-case: {exact: delay}}}]
      fault: {delay: {fixedDelay: 400ms, percentage: {value: 100}}}
${route}
    - name: zero
      match: [{headers: {x-case: {exact: zero}}}]
      fault: {abort: {grpcStatus: INTERNAL}, delay: {fixedDelay: 5s, percentage: {value: 0}}}
${route}
    - name: method
      match: [{headers: {x-case: {exact: method}}, method: {exact: GET}}]
      fault: {abort: {grpcStatus: INTERNAL, percentage: {value: 100}}}
${route}
`;

// (skipped where haproxy is not installed; .ci/run installs it)
describe.skipIf(!haproxy)('the rendered HAProxy does what the model says', () => {
  const model = read(vs(routes));
  let server: TestServer;
  let tlsServer: TestServer;
  let proxy: RunningHaproxy;
  let address: string;
  let tlsAddress: string;
  const clients: Client[] = [];

  beforeAll(async () => {
    server = await startTestServer();
    tlsServer = await startTestServer({ useTls: true });
    const port = await freePort();
    const tlsPort = await freePort();
    proxy = await startHaproxy({
      frontends: [
        { name: 'fault', listen: { host: '127.0.0.1', port }, protocol: 'grpc', backend: { host: '127.0.0.1', port: server.port }, virtualService: model },
        { name: 'tls', listen: { host: '127.0.0.1', port: tlsPort }, protocol: 'tls', backend: { host: '127.0.0.1', port: tlsServer.port }, virtualService: model },
      ],
    });
    address = `127.0.0.1:${port}`;
    tlsAddress = `127.0.0.1:${tlsPort}`;
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await proxy?.stop();
    server?.forceShutdown();
    tlsServer?.forceShutdown();
  });

  const cases: [string, Record<string, string>, string | null, number][] = [
    ['exact', { 'x-case': 'a' }, 'exact', status.PERMISSION_DENIED],
    ['exact, not a prefix', { 'x-case': 'ab' }, null, status.UNIMPLEMENTED],
    ['exact, the whole value', { 'x-case': 'a, b' }, null, status.UNIMPLEMENTED],
    ['prefix, httpStatus 401 mapped', { 'x-case': 'prefix' }, 'prefix', status.UNAUTHENTICATED],
    ['regex, whole value', { 'x-case': 're42' }, 'regex', status.RESOURCE_EXHAUSTED],
    ['regex, not a search', { 'x-case': 're42x' }, null, status.UNIMPLEMENTED],
    ['presence and uri', { 'x-present': '' }, 'present-and-uri', status.ABORTED],
    ['one of two match entries', { 'x-case': 'two' }, 'either', status.UNAVAILABLE],
    ['withoutHeaders, header absent', { 'x-case': 'neg' }, 'without', status.FAILED_PRECONDITION],
    ['withoutHeaders, header present', { 'x-case': 'neg', 'x-veto': '1' }, null, status.UNIMPLEMENTED],
    ['percentage 0 and omitted: no fault', { 'x-case': 'zero' }, 'zero', status.OK],
    ['method GET: gRPC is POST', { 'x-case': 'method' }, null, status.UNIMPLEMENTED],
    ['no route at all (no catch-all): NR -> UNIMPLEMENTED', {}, null, status.UNIMPLEMENTED],
  ];

  it.each(cases)('%s', async (_what, metadata, routeName, code) => {
    const selected = selectRoute(model, new Map(Object.entries(metadata)));
    expect(selected === undefined ? null : model.routes[selected]!.name).toBe(routeName);
    const c = greeterClient(address);
    clients.push(c);
    const before = server.log.length;
    const answer = await sayHello(c, 'x', { metadata });
    expect(answer.err?.code ?? status.OK).toBe(code);
    if (code !== status.OK && code !== status.UNIMPLEMENTED) expect(answer.err?.details).toBe('fault filter abort');
    // aborted and unrouted calls never reach the server
    expect(server.log.length - before).toBe(code === status.OK ? 1 : 0);
  });

  it('delays before forwarding: the call reaches the server late', async () => {
    const c = greeterClient(address);
    clients.push(c);
    const before = server.log.length;
    const started = Date.now();
    const answer = await sayHello(c, 'x', { metadata: { 'x-case': 'delay' } });
    expect(answer.err).toBeNull();
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    const entry = server.log[before]!;
    expect(Date.parse(entry.time) - started).toBeGreaterThanOrEqual(390);
  });

  it.each([
    ['resets the stream (RST_STREAM, as grpc-js does at its deadline)', 'reset'],
    ['closes the connection (a CLI client exiting at its deadline)', 'close'],
  ])('never forwards a held call whose client %s, as Envoy', async (_what, how) => {
    const before = server.log.length;
    const session = connect(`http://${address}`);
    const req = session.request({ ':method': 'POST', ':path': '/helloworld.Greeter/SayHello', 'content-type': 'application/grpc', te: 'trailers', 'x-case': 'delay' });
    req.on('error', () => {});
    session.on('error', () => {});
    req.end(Buffer.from([0, 0, 0, 0, 0]));
    await new Promise((r) => setTimeout(r, 100));
    if (how === 'reset') req.close(8); // CANCEL
    else session.destroy();
    await new Promise((r) => setTimeout(r, 700)); // past the 400 ms delay
    session.destroy();
    expect(server.log.slice(before)).toEqual([]);
  });

  it('answers an abort trailers-only, as Envoy: :status 200, application/grpc, grpc-status, grpc-message, END_STREAM', async () => {
    const session = connect(`http://${address}`);
    try {
      const req = session.request({ ':method': 'POST', ':path': '/helloworld.Greeter/SayHello', 'content-type': 'application/grpc', te: 'trailers', 'x-case': 'a' });
      req.end(Buffer.from([0, 0, 0, 0, 0]));
      const [headers, flags] = await new Promise<[Record<string, unknown>, number]>((resolve) => req.once('response', (h, f) => resolve([h, f])));
      let body = 0;
      req.on('data', (d: Buffer) => (body += d.length));
      await new Promise((r) => req.once('close', r));
      expect(headers[':status']).toBe(200);
      expect(headers['content-type']).toBe('application/grpc');
      expect(headers['grpc-status']).toBe('7');
      expect(headers['grpc-message']).toBe('fault filter abort');
      expect(body).toBe(0);
      expect(flags & 0x1, 'END_STREAM on the HEADERS frame').toBe(1);
    } finally {
      session.close();
    }
  });

  it('passes a tls port through as opaque TCP: the same headers, no fault', async () => {
    const c = greeterClient(tlsAddress, {});
    clients.push(c);
    const answer = await sayHello(c, 'x', { metadata: { 'x-case': 'a' } });
    expect(answer.err).toBeNull();
    expect(answer.reply?.message).toBe('Hello x');
  });
});
