// dist/client.cjs as users run it: the Go image's invocations against dist/server.js, the deadline against a
// slow server, every exit code, the usage text, and the -json document against its JSON Schema.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, exitCodeForStatus } from '../src/exit-codes.ts';
import { clientFlags } from '../src/client/options.ts';
import { STATUS_NAMES } from '../src/status.ts';
import { client, type JsonDocument } from './helpers/client.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { expectValid, validate } from './helpers/output-schema.ts';
import { bundle, cleanEnv, root, runClient, spawnServer, type SpawnedServer } from './helpers/spawn.ts';

let plain: SpawnedServer;
let tls: SpawnedServer;
let slow: SpawnedServer;
let inProcess: TestServer;
beforeAll(async () => {
  [plain, tls, slow, inProcess] = await Promise.all([
    spawnServer([]),
    spawnServer(['-tls']),
    spawnServer(['-sleep', '3']),
    startTestServer({ hostname: 'in-process' }),
  ]);
});
afterAll(async () => {
  inProcess.forceShutdown();
  await Promise.all([plain, tls, slow].map((s) => s?.stop()));
});

const at = (s: { port: number }) => `localhost:${s.port}`;
const envFor = (s: { port: number }, extra: Record<string, string> = {}) => cleanEnv({ HELLO_CLIENT_SERVER_ADDR: at(s), ...extra });
const greeting = /^Greeting: Hello world \(from [^,]+, \d+\.\d+ ms\)\n$/;

describe("the Go client's invocations", () => {
  test('node dist/client.cjs (localhost:10000, mapped to the test server through HELLO_CLIENT_SERVER_ADDR)', async () => {
    const r = await runClient([], { env: envFor(plain) });
    expect(r.stdout).toMatch(greeting);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  test('node dist/client.cjs -tls', async () => {
    const r = await runClient(['-tls'], { env: envFor(tls) });
    expect(r.stdout).toMatch(greeting);
    expect(r.code).toBe(0);
  });

  test('node dist/client.cjs -server_addr localhost:PORT -timeout 10', async () => {
    const r = await runClient(['-server_addr', at(plain), '-timeout', '10']);
    expect(r.stdout).toMatch(greeting);
    expect(r.code).toBe(0);
  });

  test('Go spellings: -timeout=10, --server_addr=…, -tls=true, a name', async () => {
    const r = await runClient([`--server_addr=${at(tls)}`, '-timeout=10', '-tls=true', 'gopher']);
    expect(r.stdout).toMatch(/^Greeting: Hello gopher \(/);
  });

  test('the environment: HELLO_CLIENT_TLS, HELLO_CLIENT_TIMEOUT', async () => {
    const r = await runClient([], { env: envFor(tls, { HELLO_CLIENT_TLS: 'true', HELLO_CLIENT_TIMEOUT: '5' }) });
    expect(r.code).toBe(0);
  });
});

describe('deadline against a server that sleeps 3 s', () => {
  test('-timeout 1: DEADLINE_EXCEEDED (exit 68) after about 1 s, not after the sleep', async () => {
    const r = await runClient(['-server_addr', at(slow), '-timeout', '1', '-json']);
    expect(r.code).toBe(68);
    const doc = JSON.parse(r.stdout) as JsonDocument;
    expectValid(doc);
    // (the server's own DEADLINE_EXCEEDED, at the same deadline counted from later, is read first only when this one runs late)
    expect(doc.requests[0]).toMatchObject({
      status: 'DEADLINE_EXCEEDED',
      code: 4,
      details: expect.stringMatching(/^deadline exceeded after 1s: (no answer from the server yet|the server answered DEADLINE_EXCEEDED: Deadline exceeded)$/),
    });
    expect(doc.requests[0]!.latency_ms).toBeGreaterThanOrEqual(1000);
    expect(doc.requests[0]!.latency_ms).toBeLessThan(1500);
    expect(r.ms).toBeLessThan(2900);
    expect(r.stderr).toBe(''); // -json: the document says it all
  });

  test('-timeout 10: OK after about 3 s, latency reported ≥ 3000 ms', async () => {
    const r = await runClient(['-server_addr', at(slow), '-timeout', '10', '-json']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as JsonDocument;
    expect(doc.requests[0]!.ok).toBe(true);
    expect(doc.requests[0]!.latency_ms).toBeGreaterThanOrEqual(3000);
    expect(doc.requests[0]!.latency_ms).toBeLessThan(4500);
  });
});

describe('exit codes', () => {
  test.each([
    ['0: OK', [], 0, /^$/],
    ['2: an unknown flag', ['-bogus'], 2, /^client: flag provided but not defined: -bogus\n$/],
    ['2: a bad address', ['-server_addr', 'localhost'], 2, /^client: invalid -server_addr "localhost": missing port/],
    ['2: an unreadable file', ['-tls', '-ca_file', '/nonexistent/ca.pem'], 2, /^client: cannot read -ca_file \/nonexistent\/ca.pem: no such file\n$/],
    ['2: a file that is not PEM', ['-tls', '-ca_file', `${root}package.json`], 2, /is not a PEM certificate\n$/],
    ['78: UNAVAILABLE', ['-H', 'x-helloworld-fail-code: UNAVAILABLE'], 78, /^could not greet: UNAVAILABLE: /],
    ['80: UNAUTHENTICATED', ['-H', 'x-helloworld-fail-code: 16'], 80, /^could not greet: UNAUTHENTICATED: /],
    ['65: CANCELLED', ['-H', 'x-helloworld-fail-code: CANCELLED'], 65, /^could not greet: CANCELLED: /],
    ['67: INVALID_ARGUMENT (a bad override header)', ['-H', 'x-helloworld-delay-ms: soon'], 67, /^could not greet: INVALID_ARGUMENT: x-helloworld-delay-ms: want milliseconds/],
    ['69: NOT_FOUND (health of an unknown service)', ['-health', '-service', 'no.Such'], 69, /^could not check health: NOT_FOUND: /],
    ['1: an expectation not met', ['-expect_code', 'DEADLINE_EXCEEDED'], 1, /^expectation not met: request 1: ended OK, expected DEADLINE_EXCEEDED\n$/],
  ])('%s', async (_, args, code, stderr) => {
    const r = await runClient(args as string[], { env: envFor(plain) });
    expect(r.stderr).toMatch(stderr);
    expect(r.code).toBe(code);
    expect(r.stderr).not.toMatch(/\n\s+at /); // never a stack trace
    expect(r.stderr.split('\n').filter(Boolean).length).toBeLessThanOrEqual(1);
  });

  test('68: DEADLINE_EXCEEDED, nothing listening; the deadline bounds the reconnects', async () => {
    const r = await runClient(['-server_addr', 'localhost:1', '-timeout', '0.5', '-v']);
    expect(r.code).toBe(68);
    expect(r.stderr).toMatch(/^connecting to localhost:1\nattempt 1 failed: connection refused \(.*:1\); the deadline \(in [\d.]+s\) comes before the next attempt\n/);
    expect(r.stderr).toMatch(/could not greet: DEADLINE_EXCEEDED: deadline exceeded after 0.5s: 1 attempt, last failure: connection refused/);
  });

  test('1: -health answered NOT_SERVING', async () => {
    inProcess.health.setStatus('', 'NOT_SERVING');
    try {
      const r = await runClient(['-server_addr', inProcess.address, '-health']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^health check failed: status NOT_SERVING, want SERVING \(/);
    } finally {
      inProcess.health.setStatus('', 'SERVING');
    }
  });

  test('the first failed request decides, in request order', async () => {
    // request 1 OK, 2 UNAVAILABLE would be 78; here every request fails the same way
    const r = await runClient(['-count', '3', '-H', 'x-helloworld-fail-code: ABORTED'], { env: envFor(plain) });
    expect(r.code).toBe(64 + 10);
    expect(r.stdout).toMatch(/3 requests, 0 OK, 3 failed \(ABORTED 3\)/);
  });

  test('-h: the usage text on stdout, every flag listed, exit 0', async () => {
    const r = await runClient(['-h']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: client \[flags\] \[name\]/);
    for (const flag of Object.keys(clientFlags)) expect(r.stdout).toContain(`  -${flag}`);
    expect(r.stdout).toContain('HELLO_CLIENT_');
  });

  test('-h lists the exit codes, every status code among them', async () => {
    const r = await runClient(['-h']);
    const codes = r.stdout.slice(r.stdout.indexOf('\nExit codes:\n'));
    for (const code of [EXIT_OK, EXIT_FAILURE, EXIT_USAGE]) expect(codes).toMatch(new RegExp(`^  ${code} +\\w`, 'm'));
    expect(codes).toMatch(/^  64\+N +the first failed request/m);
    STATUS_NAMES.slice(1).forEach((name, i) => expect(codes).toContain(`${exitCodeForStatus(i + 1)} ${name}`));
    expect(codes).toContain('68 DEADLINE_EXCEEDED');
  });
});

describe('-json document and its schema (docs/client-output.schema.json)', () => {
  test('real documents of every shape validate; broken ones do not', async () => {
    const a = inProcess.address;
    const runs = await Promise.all([
      client(['-server_addr', a, '-json']),
      client(['-server_addr', a, '-json', '-count', '5', '-concurrency', '2', '-H', 'x-helloworld-fail-code: 14']),
      client(['-server_addr', a, '-json', '-health']),
      client(['-server_addr', a, '-json', '-health', '-service', 'nope']),
      client(['-server_addr', a, '-json', '-expect_code', 'OK', '-expect_max_latency', '5']),
      // a deadline with room to reach the server first (-expect_* is never met by a call that reached none)
      client(['-server_addr', a, '-json', '-timeout', '2', '-H', 'x-helloworld-delay-ms: 10000', '-expect_code', '4']),
      client(['-server_addr', 'localhost:1', '-json', '-timeout', '0.2']),
    ]);
    const spawned = await runClient(['-json', '-tls', '-count', '3', '-interval', '0.05'], { env: envFor(tls) });
    const docs = [...runs.map((r) => r.json()), JSON.parse(spawned.stdout) as JsonDocument];
    for (const doc of docs) expectValid(doc);
    expect(docs.map((d) => d.exit_code)).toEqual([0, 78, 0, 69, 0, 0, 68, 0]);

    const broken = structuredClone(docs[0]!) as unknown as Record<string, unknown> & JsonDocument;
    broken.extra = 1;
    expect(validate(broken)).toBe(false);
    const badStatus = structuredClone(docs[0]!);
    badStatus.requests[0]!.status = 'FINE';
    expect(validate(badStatus)).toBe(false);
    const noSummary = structuredClone(docs[0]!) as Partial<JsonDocument>;
    delete noSummary.summary;
    expect(validate(noSummary)).toBe(false);
  });

  test('a document larger than a pipe holds (64 KiB): the process exits only when all of it is written', async () => {
    // a real pipe(2), as in `client -json | jq`: Node's own child pipes are socket pairs with larger buffers
    const command = `"${process.execPath}" "${bundle('client')}" -json -count 600 -concurrency 20 | cat; exit "\${PIPESTATUS:-0}"`;
    const { stdout } = await promisify(execFile)('bash', ['-c', command], { env: envFor(plain), maxBuffer: 16 * 1024 * 1024 });
    expect(stdout.length).toBeGreaterThan(2 * 65_536);
    expect((JSON.parse(stdout) as JsonDocument).requests).toHaveLength(600);
  });

  test('stdout holds only the document; -v lines go to stderr', async () => {
    const r = await runClient(['-json', '-v'], { env: envFor(plain) });
    expect(() => JSON.parse(r.stdout) as unknown).not.toThrow();
    expect(r.stderr).toMatch(/^connecting to localhost:\d+\nconnected to localhost:\d+ in [\d.]+ ms \(h2c, 127\.0\.0\.1\)\n$/);
  });
});
