// The client against a gRPC server that is not grpc-js: Python's grpcio (gRPC C-core), whose HTTP/2 and
// HPACK (Huffman, dynamic table) and percent-encoding are its own. Skipped when python3-grpcio is absent
// (.ci/run installs it).
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { client } from './helpers/client.ts';
import { hasGrpcio, startPython, stopPython } from './helpers/python.ts';

const certs = (name: string) => fileURLToPath(new URL(`../certs/${name}`, import.meta.url));

describe.skipIf(!hasGrpcio)('against grpcio (gRPC C-core)', () => {
  let plain: Awaited<ReturnType<typeof startPython>>;
  let tls: Awaited<ReturnType<typeof startPython>>;
  beforeAll(async () => {
    [plain, tls] = await Promise.all([startPython('python-greeter.py'), startPython('python-greeter.py', [certs('server.pem'), certs('server-key.pem')])]);
  });
  afterAll(() => {
    stopPython(plain);
    stopPython(tls);
  });

  test('SayHello with metadata: the greeting, the hostname from the headers', async () => {
    const r = await client(['-server_addr', `127.0.0.1:${plain.port}`, '-H', 'end-user: jason', '-json', 'Zoë']);
    expect(r.code).toBe(0);
    expect(r.json().requests[0]).toMatchObject({ message: 'Hello Zoë (end-user=jason)', hostname: 'python', attempts: 1 });
  });

  test('many requests multiplexed on one connection (HPACK dynamic table in use), a long name', async () => {
    const name = 'ü'.repeat(3000);
    const r = await client(['-server_addr', `127.0.0.1:${plain.port}`, '-count', '50', '-concurrency', '10', '-json', name]);
    expect(r.code).toBe(0);
    const doc = r.json();
    expect(doc.summary).toMatchObject({ count: 50, ok: 50, by_hostname: { python: 50 } });
    expect(doc.requests.every((q) => q.message === `Hello ${name} (end-user=None)`)).toBe(true);
  });

  test('an error status with a UTF-8 message: percent-decoded', async () => {
    const r = await client(['-server_addr', `127.0.0.1:${plain.port}`, 'fail']);
    expect(r.code).toBe(64 + 9);
    expect(r.stderr).toMatch(/^could not greet: FAILED_PRECONDITION: échec: 100% sûr \(from python, /);
  });

  test('TLS with the test certificate', async () => {
    const r = await client(['-server_addr', `127.0.0.1:${tls.port}`, '-tls', '-H', 'end-user: tls']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Greeting: Hello world \(end-user=tls\) \(from python, /);
  });

  test('plaintext against its TLS port, and the reverse, in words', async () => {
    const a = await client(['-server_addr', `127.0.0.1:${tls.port}`, '-timeout', '0.5', '-json']);
    expect(a.json().requests[0]!.details).toMatch(/server speaks TLS\? try -tls$/);
    const b = await client(['-server_addr', `127.0.0.1:${plain.port}`, '-tls', '-timeout', '0.5', '-json']);
    expect(b.json().requests[0]!.details).toMatch(/server does not speak TLS\? try without -tls$/);
  });
});
