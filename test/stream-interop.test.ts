// Streams against independent gRPC implementations, both ways: Python's grpcio (gRPC C-core: its own HTTP/2,
// HPACK and flow control) and grpc-go (the original image's stack) calling GreeterStream on dist/server.js, and
// the client's -stream calling a grpcio and a grpc-go GreeterStream. Skipped when python3-grpcio, or go with
// Debian's golang-google-grpc-dev, is absent (.ci/run installs them).
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { client } from './helpers/client.ts';
import { expectValid } from './helpers/output-schema.ts';
import { goPeer, hasGoGrpc, startGoPeer } from './helpers/go-peer.ts';
import { hasGrpcio, python, pythonArgs, startPython, stopPython } from './helpers/python.ts';
import { spawnServer, type SpawnedServer } from './helpers/spawn.ts';

const SCRIPT = 'python-greeter-stream.py';

interface Outcome {
  replies: string[];
  code: string;
  details: string;
  hostname: string | null;
}

describe.skipIf(!hasGrpcio)('a grpcio client calling our GreeterStream (dist/server.js)', () => {
  let server: SpawnedServer;
  let results: Record<'stream' | 'bidi' | 'stream_cut' | 'bidi_cut' | 'deadline', Outcome>;
  beforeAll(async () => {
    server = await spawnServer(['-workers', '1', '-access_log=false']);
    const run = spawnSync(python, pythonArgs(SCRIPT, ['call', server.address]), { encoding: 'utf8', timeout: 25_000 });
    expect(run.stderr).toBe('');
    results = JSON.parse(run.stdout) as typeof results;
  }, 30_000);
  afterAll(() => server?.stop());

  test('SayHelloStream: every reply in order, the hostname in the headers, OK', () => {
    expect(results.stream).toEqual({ replies: ['Hello py 1', 'Hello py 2', 'Hello py 3'], code: 'OK', details: '', hostname: expect.any(String) });
  });

  test('SayHelloBidi: a reply to each request as it is sent, OK after the client half-closes', () => {
    expect(results.bidi).toMatchObject({ replies: ['Hello a 1', 'Hello b 2', 'Hello c 3'], code: 'OK' });
  });

  test('x-helloworld-fail-after 2: two replies, then the status, both ways', () => {
    const cut = { replies: expect.any(Array), code: 'UNAVAILABLE', details: 'failure requested by x-helloworld-fail-code', hostname: expect.any(String) };
    expect(results.stream_cut).toEqual({ ...cut, replies: ['Hello py 1', 'Hello py 2'] });
    expect(results.bidi_cut).toEqual({ ...cut, replies: ['Hello a 1', 'Hello b 2'] });
  });

  test("a stream longer than the client's deadline: DEADLINE_EXCEEDED after the replies that fit", () => {
    expect(results.deadline.code).toBe('DEADLINE_EXCEEDED');
    expect(results.deadline.replies.length).toBeGreaterThanOrEqual(1);
    expect(results.deadline.replies.length).toBeLessThan(10);
  });
});

describe.skipIf(!hasGrpcio)('our client calling a grpcio GreeterStream', () => {
  let peer: Awaited<ReturnType<typeof startPython>>;
  let address: string;
  beforeAll(async () => {
    peer = await startPython(SCRIPT, ['serve']);
    address = `127.0.0.1:${peer.port}`;
  });
  afterAll(() => stopPython(peer));

  test('-stream server: the replies asked for, -stream_interval apart, from python', async () => {
    const r = await client(['-server_addr', address, '-stream', 'server', '-messages', '3', '-stream_interval', '0.1', '-timeout', '10', '-json', 'Zoë']);
    expect(r.code).toBe(0);
    const doc = r.json();
    expectValid(doc);
    const replies = doc.requests[0]!.messages!;
    expect(replies.map((m) => [m.message, m.hostname])).toEqual([
      ['Hello Zoë 1', 'python'],
      ['Hello Zoë 2', 'python'],
      ['Hello Zoë 3', 'python'],
    ]);
    // the last reply goes out two intervals after the first, which goes out after the stream started
    expect(replies[2]!.ms_since_start).toBeGreaterThanOrEqual(197);
  });

  test('-stream bidi: each request answered', async () => {
    const r = await client(['-server_addr', address, '-stream', 'bidi', '-messages', '4', '-stream_interval', '0.02', '-expect_messages', '4', 'b']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^message 4: Hello b 4 \(from python, /m);
  });

  test('a stream the server aborts after two replies: the line says how far it got, exit 78', async () => {
    const r = await client(['-server_addr', address, '-stream', 'server', '-messages', '5', 'cut']);
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/^stream ended after 2 of 5 messages: UNAVAILABLE: cut by python \(from python, \d+\.\d+ ms\)\n$/);
  });
});

describe.skipIf(!hasGoGrpc)('grpc-go both ways: its client calling our GreeterStream, our client calling its GreeterStream', () => {
  let binary: string;
  let server: SpawnedServer;
  let peer: Awaited<ReturnType<typeof startGoPeer>>;
  let address: string;
  beforeAll(async () => {
    binary = goPeer(); // a cold build takes about 12 s here
    [server, peer] = await Promise.all([spawnServer(['-workers', '1', '-access_log=false']), startGoPeer(binary)]);
    address = `127.0.0.1:${peer.port}`;
  }, 240_000);
  afterAll(async () => {
    peer?.child.kill();
    await server?.stop();
  });

  test('a grpc-go client: SayHelloStream in order, SayHelloBidi answered as sent, a deadline mid-stream DEADLINE_EXCEEDED', () => {
    const run = spawnSync(binary, ['call', server.address], { encoding: 'utf8', timeout: 30_000 });
    expect(run.stderr).toBe('');
    const results = JSON.parse(run.stdout) as Record<'stream' | 'bidi' | 'deadline', Outcome>;
    expect(results.stream).toEqual({ replies: ['Hello go 1', 'Hello go 2', 'Hello go 3'], code: 'OK', details: '', hostname: expect.any(String) });
    expect(results.bidi).toMatchObject({ replies: ['Hello a 1', 'Hello b 2', 'Hello c 3'], code: 'OK' });
    // 10 replies 300 ms apart, a 1 s deadline: grpc-go's own timer ends it after the replies that fit
    expect(results.deadline.code).toBe('DeadlineExceeded');
    expect(results.deadline.replies.length).toBeGreaterThanOrEqual(1);
    expect(results.deadline.replies.length).toBeLessThan(10);
  });

  test('-stream server against grpc-go: the replies asked for, -stream_interval apart, from go', async () => {
    const r = await client(['-server_addr', address, '-stream', 'server', '-messages', '3', '-stream_interval', '0.3', '-timeout', '10', '-json', 'Zoë']);
    expect(r.code).toBe(0);
    const doc = r.json();
    expectValid(doc);
    const replies = doc.requests[0]!.messages!;
    expect(replies.map((m) => [m.message, m.hostname])).toEqual([
      ['Hello Zoë 1', 'go'],
      ['Hello Zoë 2', 'go'],
      ['Hello Zoë 3', 'go'],
    ]);
    // the last reply goes out two intervals after the first, which goes out after the stream started
    expect(replies[2]!.ms_since_start).toBeGreaterThanOrEqual(597);
  });

  test('-stream bidi against grpc-go: each request answered, then OK at the half-close', async () => {
    const r = await client(['-server_addr', address, '-stream', 'bidi', '-messages', '4', '-stream_interval', '0.02', '-expect_messages', '4', 'b']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^message 4: Hello b 4 \(from go, /m);
  });

  test('a grpc-go stream ended with a status after two replies: the line says how far it got, exit 78', async () => {
    const r = await client(['-server_addr', address, '-stream', 'server', '-messages', '5', 'cut']);
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/^stream ended after 2 of 5 messages: UNAVAILABLE: cut by go \(from go, \d+\.\d+ ms\)\n$/);
  });
});

if (!hasGoGrpc) console.warn('stream-interop.test.ts: go or golang-google-grpc-dev not found: the grpc-go stream interop is SKIPPED (.ci/run installs them)');
