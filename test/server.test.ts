// The server in-process, called by grpc-js clients over loopback.
import { credentials, loadPackageDefinition, status, type GrpcObject, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { testCa } from '../src/generated/test-pki.ts';
import { readFileSync } from 'node:fs';
import { greeterClient, reflect, reflectionClient, sayHello } from './helpers/grpc-js-client.ts';
import { perTest } from './helpers/server.ts';

const certs = (name: string) => readFileSync(new URL(`../certs/${name}`, import.meta.url));

const { server, keep } = perTest();
const client = (...args: Parameters<typeof greeterClient>) => keep(greeterClient(...args));

describe('SayHello', () => {
  it('answers Hello <name> over plaintext, with the hostname metadata', async () => {
    const s = await server();
    const answer = await sayHello(client(s.address), 'world');
    expect(answer.err).toBeNull();
    expect(answer.reply).toEqual({ message: 'Hello world' });
    expect(answer.headers?.get('hostname')).toEqual([hostname()]);
  });

  it('answers "Hello " for an empty name, as the original', async () => {
    const s = await server();
    expect((await sayHello(client(s.address), '')).reply).toEqual({ message: 'Hello ' });
  });

  it('serves TLS with the bundled test certificate, trusted via the bundled CA as x.test.youtube.com', async () => {
    const s = await server({ useTls: true });
    const answer = await sayHello(client(s.address, {}), 'tls');
    expect(answer.err).toBeNull();
    expect(answer.reply?.message).toBe('Hello tls');
  });

  it('serves TLS to a client given the CA file explicitly, for every SAN the manifests use', async () => {
    const s = await server({ useTls: true });
    for (const serverName of ['localhost', 'grpc-helloworld-service.default.svc.cluster.local', 'x.test.youtube.com']) {
      const answer = await sayHello(client(s.address, { ca: certs('ca.pem'), serverName }), 'ca');
      expect(answer.err, serverName).toBeNull();
    }
  });

  it('fails the handshake for a client that does not trust the CA', async () => {
    const s = await server({ useTls: true });
    const answer = await sayHello(client(s.address, { ca: certs('client.pem') }), 'x', { deadlineMs: 2000 });
    expect(answer.err?.code).toBe(status.UNAVAILABLE);
  });

  it('waits -sleep before answering', async () => {
    const s = await server({ sleepMs: 300 });
    const started = performance.now();
    const answer = await sayHello(client(s.address), 'slow');
    expect(answer.err).toBeNull();
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('gives DEADLINE_EXCEEDED to a client whose deadline is shorter than -sleep, and logs it so', async () => {
    const s = await server({ sleepMs: 3000 });
    const answer = await sayHello(client(s.address), 'impatient', { deadlineMs: 300 });
    expect(answer.err?.code).toBe(status.DEADLINE_EXCEEDED);
    await expect.poll(() => s.log.length).toBe(1);
    expect(s.log[0]).toMatchObject({ method: '/helloworld.Greeter/SayHello', status: 'DEADLINE_EXCEEDED', code: 4 });
    expect(s.inFlight()).toBe(0);
  });
});

describe('faults', () => {
  it('-fail_rate 1 answers -fail_code, with the hostname in the trailers', async () => {
    const s = await server({ failRate: 1, failCode: status.RESOURCE_EXHAUSTED });
    const answer = await sayHello(client(s.address), 'x');
    expect(answer.err?.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(answer.err?.details).toMatch(/fail_rate/);
    expect(answer.trailers?.get('hostname')).toEqual([hostname()]);
  });

  it('-fail_rate 0.5 fails about half the calls', async () => {
    const s = await server({ failRate: 0.5 });
    const c = client(s.address);
    const answers = await Promise.all(Array.from({ length: 200 }, () => sayHello(c, 'x')));
    const failed = answers.filter((a) => a.err?.code === status.UNAVAILABLE).length;
    // binomial(200, 0.5): mean 100, sd ≈ 7.1; 60..140 is beyond 5 sd
    expect(failed).toBeGreaterThan(60);
    expect(failed).toBeLessThan(140);
    expect(answers.filter((a) => a.err === null).length).toBe(200 - failed);
  });

  it('x-helloworld-fail-code makes one call fail with that status; OK overrides -fail_rate', async () => {
    const s = await server({ failRate: 1 });
    const c = client(s.address);
    expect((await sayHello(c, 'x', { metadata: { 'x-helloworld-fail-code': 'PERMISSION_DENIED' } })).err?.code).toBe(
      status.PERMISSION_DENIED,
    );
    expect((await sayHello(c, 'x', { metadata: { 'x-helloworld-fail-code': '10' } })).err?.code).toBe(status.ABORTED);
    expect((await sayHello(c, 'x', { metadata: { 'x-helloworld-fail-code': 'OK' } })).err).toBeNull();
  });

  it('x-helloworld-delay-ms delays one call, bounded by its deadline', async () => {
    const s = await server();
    const c = client(s.address);
    let started = performance.now();
    expect((await sayHello(c, 'x', { metadata: { 'x-helloworld-delay-ms': '250' } })).err).toBeNull();
    expect(performance.now() - started).toBeGreaterThanOrEqual(240);
    started = performance.now();
    const answer = await sayHello(c, 'x', { metadata: { 'x-helloworld-delay-ms': '60000' }, deadlineMs: 200 });
    expect(answer.err?.code).toBe(status.DEADLINE_EXCEEDED);
    await expect.poll(() => s.inFlight()).toBe(0);
  });

  it('answers a malformed override with INVALID_ARGUMENT saying what is wrong', async () => {
    const s = await server();
    const c = client(s.address);
    const bad = await sayHello(c, 'x', { metadata: { 'x-helloworld-delay-ms': 'soon' } });
    expect(bad.err?.code).toBe(status.INVALID_ARGUMENT);
    expect(bad.err?.details).toMatch(/x-helloworld-delay-ms/);
    const badCode = await sayHello(c, 'x', { metadata: { 'x-helloworld-fail-code': 'NOPE' } });
    expect(badCode.err?.code).toBe(status.INVALID_ARGUMENT);
  });
});

describe('health', () => {
  const healthPackage = loadPackageDefinition(loadSync(healthProtoPath, { keepCase: true, enums: String })) as GrpcObject;
  const Health = ((healthPackage.grpc as GrpcObject).health as GrpcObject).v1 as GrpcObject;
  const healthClient = (address: string) => {
    const c = keep(new (Health.Health as ServiceClientConstructor)(address, credentials.createInsecure()));
    return c as typeof c & Record<string, Function>;
  };
  const check = (c: Record<string, Function>, service: string) =>
    new Promise<{ err: { code: number } | null; status?: string }>((resolve) =>
      c.Check({ service }, (err: { code: number } | null, res?: { status: string }) => resolve({ err, status: res?.status })),
    );

  it('Check: "" and helloworld.Greeter are SERVING, an unknown service is NOT_FOUND', async () => {
    const s = await server();
    const c = healthClient(s.address);
    expect(await check(c, '')).toEqual({ err: null, status: 'SERVING' });
    expect(await check(c, 'helloworld.Greeter')).toEqual({ err: null, status: 'SERVING' });
    expect((await check(c, 'nope')).err?.code).toBe(status.NOT_FOUND);
  });

  it('Watch streams SERVING, then NOT_SERVING when the server shuts down', async () => {
    const s = await server();
    const c = healthClient(s.address);
    const seen: string[] = [];
    const stream = c.Watch({ service: '' });
    stream.on('data', (m: { status: string }) => seen.push(m.status));
    stream.on('error', () => {});
    await expect.poll(() => seen).toEqual(['SERVING']);
    await s.shutdown(2000);
    expect(seen).toEqual(['SERVING', 'NOT_SERVING']);
  });
});

describe('reflection', () => {
  it('lists helloworld.Greeter and grpc.health.v1.Health, and describes SayHello', async () => {
    const s = await server();
    const c = keep(reflectionClient(s.address));
    const names = (await reflect(c, { list_services: '' })).list_services_response!.service.map((x) => x.name);
    expect(names).toEqual(expect.arrayContaining(['helloworld.Greeter', 'grpc.health.v1.Health']));
    const files = (await reflect(c, { file_containing_symbol: 'helloworld.Greeter' })).file_descriptor_response!.file_descriptor_proto;
    expect(Buffer.concat(files).toString('latin1')).toContain('SayHello');
  });
});

describe('mTLS', () => {
  it('accepts a client certificate signed by -client_ca_file, rejects none and a wrong one', async () => {
    const s = await server({ useTls: true, tls: { cert: certs('server.pem'), key: certs('server-key.pem'), clientCa: Buffer.from(testCa) } });
    const good = await sayHello(client(s.address, { cert: certs('client.pem'), key: certs('client-key.pem') }), 'm');
    expect(good.err).toBeNull();
    const none = await sayHello(client(s.address, {}), 'm', { deadlineMs: 2000 });
    expect(none.err?.code).toBe(status.UNAVAILABLE);
    // the server's own certificate is not a client certificate (no clientAuth usage)
    const wrong = await sayHello(client(s.address, { cert: certs('server.pem'), key: certs('server-key.pem') }), 'm', { deadlineMs: 2000 });
    expect(wrong.err?.code).toBe(status.UNAVAILABLE);
  });
});

describe('graceful shutdown', () => {
  it('finishes the calls in flight, refuses new ones once the listener closed, and reports in-flight counts', async () => {
    const s = await server({ sleepMs: 400 });
    const c = client(s.address);
    const inFlight = Array.from({ length: 20 }, () => sayHello(c, 'x'));
    await expect.poll(() => s.inFlight()).toBe(20);
    const done = s.shutdown(5000);
    // NOT_SERVING first; the listener closes 10 ms later (timers of this same process: in order)
    await new Promise((r) => setTimeout(r, 30));
    const late = await sayHello(client(s.address), 'late', { deadlineMs: 1000 });
    expect(late.err?.code).toBe(status.UNAVAILABLE);
    const answers = await Promise.all(inFlight);
    expect(answers.every((a) => a.err === null)).toBe(true);
    expect(await done).toBe(true);
    expect(s.inFlight()).toBe(0);
  });

  it('cuts the calls still running when the grace period ends', async () => {
    const s = await server({ sleepMs: 10_000 });
    const c = client(s.address);
    const call = sayHello(c, 'x', { deadlineMs: 20_000 });
    await expect.poll(() => s.inFlight()).toBe(1);
    expect(await s.shutdown(200)).toBe(false);
    expect((await call).err).not.toBeNull();
  });
});
