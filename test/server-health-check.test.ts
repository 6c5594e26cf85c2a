// grpc.health.v1.Health/Check answered by the front door (src/server/health-check.ts). Every request here goes to
// two in-process servers, one that answers Checks itself and one that forwards them to grpc-health-check's
// service in grpc-js, and what comes back must be the same: HTTP status, headers (but the date) in their order,
// the message's bytes, trailers, and the access-log line (but its times). Then the clients that make these calls
// in the field: grpcio (C-core, as grpc-health-probe and the kubelet are grpc-go) and our own -health.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { OutgoingHttpHeaders } from 'node:http2';
import { describe, expect, it, test } from 'vitest';
import { HEALTH_CHECK_PATH } from '../src/rpc-names.ts';
import { client } from './helpers/client.ts';
import { hasGrpcio, python, pythonArgs } from './helpers/python.ts';
import { grpcFrame, grpcHeaders, h2Session, rawRequest, varint } from './helpers/raw-grpc.ts';
import { fastAndPlainServers, logLine, sameAnswers } from './helpers/fast-and-plain.ts';
import { startTestServer } from './helpers/server.ts';

const servers = fastAndPlainServers();

/** HealthCheckRequest { string service = 1 } by hand; '' is the empty message, as clients send it. */
function checkRequest(service: string | Buffer): Buffer {
  const bytes = typeof service === 'string' ? Buffer.from(service, 'utf8') : service;
  return bytes.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a]), varint(bytes.length), bytes]);
}

const checkHeaders = (extra: OutgoingHttpHeaders = {}) => grpcHeaders(HEALTH_CHECK_PATH, extra);

/** The same request to both servers: the same answer, and the same access-log line but for times and ports. */
const both = (headers: OutgoingHttpHeaders, body: Buffer[], options?: Parameters<typeof rawRequest>[3]) => sameAnswers(servers, headers, body, options);

describe('health Check on the fast path', () => {
  const split = (frame: Buffer, at: number) => [frame.subarray(0, at), frame.subarray(at)];
  const cases: [string, OutgoingHttpHeaders, Buffer[], { status?: number; data?: string }][] = [
    ['the server ("", an empty message): SERVING', checkHeaders(), [grpcFrame(checkRequest(''))], { status: 0, data: '00000000020801' }],
    ['helloworld.Greeter: SERVING', checkHeaders(), [grpcFrame(checkRequest('helloworld.Greeter'))], { status: 0, data: '00000000020801' }],
    ['"" sent as a field of its own', checkHeaders(), [grpcFrame(Buffer.from([0x0a, 0x00]))], { status: 0 }],
    ['an unknown service: NOT_FOUND', checkHeaders(), [grpcFrame(checkRequest('no.Such'))], { status: 5, data: '' }],
    ['a name to percent-encode', checkHeaders(), [grpcFrame(checkRequest('a b%c ✓ "x"'))], { status: 5 }],
    ['a name that is not UTF-8', checkHeaders(), [grpcFrame(checkRequest(Buffer.from([0xff, 0xfe, 0xc3])))], {}],
    // a surrogate encoded in UTF-8 (ED A0 80): Node's decoder reads it as U+FFFD, never as a lone surrogate
    ['a name with an encoded surrogate', checkHeaders(), [grpcFrame(checkRequest(Buffer.from([0x61, 0xed, 0xa0, 0x80])))], {}],
    ['unknown fields around the name', checkHeaders(), [grpcFrame(Buffer.concat([Buffer.from([0x10, 0x05]), checkRequest('helloworld.Greeter'), Buffer.from([0x1a, 0x01, 0x41])]))], { status: 0 }],
    ['a user agent, metadata, a deadline', checkHeaders({ 'user-agent': 'grpc-go/1.33.3', 'x-any': 'v', 'grpc-timeout': '1S' }), [grpcFrame(checkRequest(''))], { status: 0 }],
    ['an Envoy attempt count (logged)', checkHeaders({ 'x-envoy-attempt-count': '2' }), [grpcFrame(checkRequest(''))], { status: 0 }],
    ['a malformed grpc-timeout', checkHeaders({ 'grpc-timeout': 'soon' }), [grpcFrame(checkRequest(''))], {}],
    ['grpc-encoding gzip on an uncompressed message', checkHeaders({ 'grpc-encoding': 'gzip' }), [grpcFrame(checkRequest(''))], {}],
    ['a compressed flag', checkHeaders(), [grpcFrame(checkRequest(''), { compressed: true })], {}],
    ['two messages', checkHeaders(), [grpcFrame(checkRequest('')), grpcFrame(checkRequest('x'))], {}],
    ['a message split over two DATA frames', checkHeaders(), split(grpcFrame(checkRequest('helloworld.Greeter')), 7), { status: 0 }],
    ['stray bytes after the message', checkHeaders(), [Buffer.concat([grpcFrame(checkRequest('')), Buffer.from([1, 2])])], {}],
    ['no message at all', checkHeaders(), [], {}],
    ['bytes protobuf rejects', checkHeaders(), [grpcFrame(Buffer.from([0x0a, 0xff, 0xff, 0xff]))], {}],
    ['a 5,000-byte name (grpc-js)', checkHeaders(), [grpcFrame(checkRequest('n'.repeat(5000)))], { status: 5 }],
  ];
  for (const [name, headers, body, expected] of cases) {
    it(`answers ${name} as grpc-health-check does`, async () => {
      const a = await both(headers, body);
      if (expected.status !== undefined) expect(a.grpcStatus).toBe(expected.status);
      if (expected.data !== undefined) expect(a.data.toString('hex')).toBe(expected.data);
    });
  }

  it('answers a deadline that passes before the request ends as grpc-js does (DEADLINE_EXCEEDED)', async () => {
    const a = await both(checkHeaders({ 'grpc-timeout': '200m' }), [grpcFrame(checkRequest(''))], { keepOpen: true, waitMs: 5000 });
    expect(a.grpcStatus).toBe(4);
  });

  it('follows setStatus: NOT_SERVING, then SERVING again, for one service and not the other', async () => {
    for (const s of [servers.fast, servers.plain]) s.health.setStatus('helloworld.Greeter', 'NOT_SERVING');
    try {
      const a = await both(checkHeaders(), [grpcFrame(checkRequest('helloworld.Greeter'))]);
      expect(a.data.toString('hex')).toBe('00000000020802');
      expect((await both(checkHeaders(), [grpcFrame(checkRequest(''))])).data.toString('hex')).toBe('00000000020801');
    } finally {
      for (const s of [servers.fast, servers.plain]) s.health.setStatus('helloworld.Greeter', 'SERVING');
    }
    expect((await both(checkHeaders(), [grpcFrame(checkRequest('helloworld.Greeter'))])).data.toString('hex')).toBe('00000000020801');
  });

  it('answers NOT_SERVING to a Check whose request ends once a shutdown has begun, as grpc-js does', async () => {
    const servers = await Promise.all([startTestServer(), startTestServer({ fastPath: false })]);
    const sessions = await Promise.all(servers.map((s) => h2Session(s.address)));
    try {
      // the request is open when the shutdown begins; its message comes after
      const streams = sessions.map((session) => session.request(checkHeaders(), { endStream: false }));
      const answers = streams.map(
        (stream) =>
          new Promise<{ data: string; trailers: Record<string, unknown> }>((resolve) => {
            const chunks: Buffer[] = [];
            let trailers: Record<string, unknown> = {};
            stream.on('data', (d: Buffer) => chunks.push(d));
            stream.on('trailers', (t) => (trailers = Object.fromEntries(Object.entries(t))));
            stream.on('error', () => {});
            stream.on('close', () => resolve({ data: Buffer.concat(chunks).toString('hex'), trailers }));
          }),
      );
      await new Promise((resolve) => setTimeout(resolve, 100)); // both streams reached their server
      const stopped = servers.map((s) => s.shutdown(5000));
      for (const stream of streams) stream.end(grpcFrame(checkRequest('')));
      const [a, b] = await Promise.all(answers);
      expect(a).toEqual({ data: '00000000020802', trailers: { 'grpc-status': '0', 'grpc-message': 'OK' } });
      expect(b).toEqual(a);
      expect(await Promise.all(stopped)).toEqual([true, true]);
      expect(logLine(servers[0]!.log.at(-1)!)).toEqual(logLine(servers[1]!.log.at(-1)!));
    } finally {
      for (const session of sessions) session.destroy();
      for (const s of servers) s.forceShutdown();
    }
  });

  it('counts a Check whose client goes away before its request ended as cancelled, and not in flight', async () => {
    const session = await h2Session(servers.fast.address);
    const logged = servers.fast.log.length;
    const stream = session.request(checkHeaders(), { endStream: false });
    stream.on('error', () => {});
    stream.write(grpcFrame(checkRequest('')));
    await expect.poll(() => servers.fast.inFlight()).toBe(1);
    session.destroy(); // (a stream's own close() half-closes it first, which the server would answer)
    await expect.poll(() => servers.fast.log.length).toBe(logged + 1);
    expect(servers.fast.log.at(-1)).toMatchObject({ method: HEALTH_CHECK_PATH, code: 1, status: 'CANCELLED' });
    expect(servers.fast.inFlight()).toBe(0);
  });

  it('leaves Watch to grpc-js: its first message is the status', async () => {
    const a = await rawRequest(servers.fastSession, grpcHeaders('/grpc.health.v1.Health/Watch'), [grpcFrame(checkRequest(''))], { waitMs: 1000 });
    expect(a.httpStatus).toBe(200);
    expect(a.data.toString('hex')).toBe('00000000020801');
    expect(a.timedOut).toBe(true); // a Watch does not end by itself
  });
});

describe('clients that check health', () => {
  test.skipIf(!hasGrpcio)('grpcio (C-core) gets the same answers from the fast path as from grpc-js', async () => {
    const services = ['', 'helloworld.Greeter', 'no.Such', 'ünï code'];
    // (not spawnSync: the servers answer in this process)
    const run = async (address: string) => {
      const { stdout } = await promisify(execFile)(python, pythonArgs('python-health-check.py', [address, ...services]), { encoding: 'utf8', timeout: 30_000 });
      return JSON.parse(stdout) as Array<{ service: string; code: number; details: string; response: string; headers: string[] }>;
    };
    const [fromFast, fromGrpcJs] = await Promise.all([run(servers.fast.address), run(servers.plain.address)]);
    expect(fromFast).toEqual(fromGrpcJs);
    expect(fromFast.map((r) => [r.code, r.response])).toEqual([
      [0, '0801'],
      [0, '0801'],
      [5, ''],
      [5, ''],
    ]);
    expect(fromFast[2]!.details).toBe('Health status unknown for service no.Such');
  });

  test('our client: -health and -service, SERVING, NOT_FOUND', async () => {
    const ok = await client(['-server_addr', servers.fast.address, '-health', '-service', 'helloworld.Greeter']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^status: SERVING service "helloworld.Greeter" \(/);
    const unknown = await client(['-server_addr', servers.fast.address, '-health', '-service', 'no.Such']);
    expect(unknown.stderr).toMatch(/^could not check health: NOT_FOUND: Health status unknown for service no\.Such/);
    expect(servers.fast.log.at(-1)).toMatchObject({ method: HEALTH_CHECK_PATH, code: 5 });
  });
});
