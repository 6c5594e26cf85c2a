// The client in-process against real servers on loopback: the project's server (grpc-js), plain node:http2
// servers that answer what a gRPC library would not, and nothing at all (reconnects). The same path as
// dist/client.cjs from the flags on; test/client-cli.test.ts runs the bundle itself.
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { constants } from 'node:http2';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { UsageError } from '../src/flags.ts';
import { dialHosts } from '../src/client/connection.ts';
import { clientOptionsFromArgs, parseHeader, parseTarget } from '../src/client/options.ts';
import { backoffDelayMs, DEFAULT_BACKOFF } from '../src/client/reconnect.ts';
import { decodeHelloReply, encodeHelloRequest } from '../src/client/codec.ts';
import { frame } from '../src/grpc-frame.ts';
import { percentDecode } from '../src/client/call.ts';
import { exitCodeForStatus } from '../src/exit-codes.ts';
import { Code } from '../src/status.ts';
import { grpcTimeout } from '../src/grpc-timeout.ts';
import { sniFor, testServerKeyPair } from '../src/tls.ts';
import { clientPki } from './helpers/client-pki.ts';
import { client, freePort, helloReplyFrame, rawH2Server, type JsonRequest } from './helpers/client.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const ca = readFileSync(new URL('../certs/ca.pem', import.meta.url));
const certs = (name: string) => new URL(`../certs/${name}`, import.meta.url).pathname;

let plain: TestServer;
let tls: TestServer;
beforeAll(async () => {
  [plain, tls] = await Promise.all([startTestServer({ hostname: 'pod-a' }), startTestServer({ useTls: true, hostname: 'pod-tls' })]);
});
afterAll(() => {
  plain.forceShutdown();
  tls.forceShutdown();
});

/** A test server on ::1 only; the test is skipped (and says so) where there is no IPv6 loopback. */
async function startOnIpv6Loopback(overrides: Parameters<typeof startTestServer>[0], skip: (note?: string) => never): Promise<TestServer> {
  try {
    return await startTestServer({ ...overrides, host: '::1' });
  } catch {
    return skip('no IPv6 loopback here');
  }
}

describe('SayHello', () => {
  test('greets, names the replica and the latency', async () => {
    const r = await client(['-server_addr', plain.address]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Greeting: Hello world \(from pod-a, \d+\.\d+ ms\)\n$/);
    expect(r.stderr).toBe('');
  });

  test('the first positional argument is the name, unicode included', async () => {
    const r = await client(['-server_addr', plain.address, 'こんにちは 🌍']);
    expect(r.stdout).toMatch(/^Greeting: Hello こんにちは 🌍 \(/);
  });

  test('-json: target, tls, method, the request and a summary', async () => {
    const r = await client(['-server_addr', plain.address, '-json', 'json']);
    expect(r.code).toBe(0);
    const doc = r.json();
    expect(doc).toMatchObject({ target: plain.address, tls: false, authority: plain.address, method: '/helloworld.Greeter/SayHello', exit_code: 0, expectations: null });
    expect(doc.requests).toHaveLength(1);
    expect(doc.requests[0]).toMatchObject({ index: 1, attempts: 1, code: 0, status: 'OK', details: '', hostname: 'pod-a', message: 'Hello json', ok: true });
    expect(Date.parse(doc.requests[0]!.start)).toBeGreaterThan(Date.now() - 10_000);
    expect(doc.summary).toMatchObject({ count: 1, ok: 1, failed: 0, by_status: { OK: 1 }, by_hostname: { 'pod-a': 1 } });
    const l = doc.requests[0]!.latency_ms;
    expect(doc.summary.latency_ms).toEqual({ min: l, p50: l, p90: l, p99: l, max: l });
  });

  test('-tls verifies x.test.youtube.com against the bundled CA, and sends it as :authority as grpc-go does', async () => {
    const r = await client(['-server_addr', tls.address, '-tls', '-json']);
    expect(r.code).toBe(0);
    expect(r.json()).toMatchObject({ tls: true, authority: 'x.test.youtube.com', requests: [{ hostname: 'pod-tls', message: 'Hello world' }] });
    expect(tls.log.at(-1)!.authority).toBe('x.test.youtube.com');
  });

  test('-authority sets :authority; the user-agent names the client', async () => {
    const r = await client(['-server_addr', plain.address, '-authority', 'greeter.example:8443']);
    expect(r.code).toBe(0);
    const entry = plain.log.at(-1)!;
    expect(entry.authority).toBe('greeter.example:8443');
    expect(entry.user_agent).toMatch(/^grpc-helloworld-client\/\d+\.\d+\.\d+$/);
  });

  test('server metadata override headers do what they say: the metadata reached the server', async () => {
    const failed = await client(['-server_addr', plain.address, '-H', 'x-helloworld-fail-code: RESOURCE_EXHAUSTED', '-json']);
    expect(failed.code).toBe(64 + 8);
    expect(failed.json().requests[0]).toMatchObject({ status: 'RESOURCE_EXHAUSTED', details: 'failure requested by x-helloworld-fail-code', hostname: 'pod-a', message: null, ok: false });
    const delayed = await client(['-server_addr', plain.address, '-H', 'X-Helloworld-Delay-Ms: 300', '-json']);
    expect(delayed.code).toBe(0);
    expect(delayed.json().requests[0]!.latency_ms).toBeGreaterThanOrEqual(300);
  });

  test('a failure is one line on stderr: could not greet: CODE: details', async () => {
    const r = await client(['-server_addr', plain.address, '-H', 'x-helloworld-fail-code: UNAVAILABLE']);
    expect(r.code).toBe(78);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^could not greet: UNAVAILABLE: failure requested by x-helloworld-fail-code \(from pod-a, [\d.]+ ms\)\n$/);
  });
});

describe('what the server receives (a plain HTTP/2 server looks at the request)', () => {
  test('POST, content-type, te, grpc-timeout, user-agent, :authority, metadata and the framed message', async () => {
    const raw = await rawH2Server((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(helloReplyFrame('Hello raw'));
    });
    try {
      const r = await client([
        '-server_addr', raw.address, '-timeout', '2.5',
        '-H', 'end-user: jason', '-H', 'X-Multi: a', '-H', 'x-multi:b', '-H', 'trace-bin: AAEC/w==', '-H', 'empty:',
        'Jason',
      ]);
      expect(r.stdout).toMatch(/^Greeting: Hello raw \(answer without a hostname, \d/);
      const { headers, body } = raw.requests[0]!;
      expect(headers[':method']).toBe('POST');
      expect(headers[':path']).toBe('/helloworld.Greeter/SayHello');
      expect(headers[':scheme']).toBe('http');
      expect(headers[':authority']).toBe(raw.address);
      expect(headers['content-type']).toBe('application/grpc');
      expect(headers.te).toBe('trailers');
      expect(headers['user-agent']).toMatch(/^grpc-helloworld-client\//);
      const timeout = /^(\d+)m$/.exec(String(headers['grpc-timeout']));
      expect(Number(timeout?.[1])).toBeGreaterThan(1500);
      expect(Number(timeout?.[1])).toBeLessThanOrEqual(2500);
      expect(headers['end-user']).toBe('jason');
      expect(headers['x-multi']).toBe('a, b');
      expect(headers['trace-bin']).toBe('AAEC/w');
      expect(headers.empty).toBe('');
      expect(body).toEqual(frame(encodeHelloRequest({ name: 'Jason' })));
    } finally {
      await raw.close();
    }
  });

  test('-health sends a HealthCheckRequest for -service to grpc.health.v1.Health/Check', async () => {
    const raw = await rawH2Server((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc+proto' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(Buffer.from([0, 0, 0, 0, 2, 0x08, 0x01]));
    });
    try {
      const r = await client(['-server_addr', raw.address, '-health', '-service', 'helloworld.Greeter']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^status: SERVING service "helloworld.Greeter" \(/);
      expect(raw.requests[0]!.headers[':path']).toBe('/grpc.health.v1.Health/Check');
      expect(raw.requests[0]!.body).toEqual(frame(Buffer.from([0x0a, 18, ...Buffer.from('helloworld.Greeter')])));
    } finally {
      await raw.close();
    }
  });
});

describe('answers a gRPC library would not give', () => {
  let raw: Awaited<ReturnType<typeof rawH2Server>>;
  beforeAll(async () => {
    raw = await rawH2Server((stream, headers) => {
      const scenario = String(headers['x-scenario']);
      const ok = (frames: Buffer[], trailers: Record<string, string> = { 'grpc-status': '0' }, extra: Record<string, string> = {}) => {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc', ...extra }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers(trailers));
        stream.end(Buffer.concat(frames));
      };
      switch (scenario) {
        case 'envoy-abort': // trailers-only, as Envoy's fault filter aborts
          stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14', 'grpc-message': 'fault filter abort' }, { endStream: true });
          return;
        case 'http-503':
          stream.respond({ ':status': 503, 'content-type': 'text/plain' });
          stream.end('upstream connect error or disconnect/reset before headers');
          return;
        case 'http-404':
          stream.respond({ ':status': 404 }, { endStream: true });
          return;
        case 'http-401':
          stream.respond({ ':status': 401, 'content-type': 'text/plain' }, { endStream: true });
          return;
        case 'http-429':
          stream.respond({ ':status': 429 }, { endStream: true });
          return;
        case 'html':
          stream.respond({ ':status': 200, 'content-type': 'text/html' });
          stream.end('<html>hello</html>');
          return;
        case 'percent':
          ok([], { 'grpc-status': '9', 'grpc-message': 'caf%C3%A9 %E2%9C%93 100%25 %zz%' });
          return;
        case 'compressed':
          ok([helloReplyFrame('Hello zipped', 1)], { 'grpc-status': '0' }, { 'grpc-encoding': 'gzip' });
          return;
        case 'two-messages':
          ok([helloReplyFrame('one'), helloReplyFrame('two')]);
          return;
        case 'no-message':
          ok([]);
          return;
        case 'garbage-message':
          ok([Buffer.from([0, 0, 0, 0, 2, 0x0a, 0x09])]);
          return;
        case 'truncated':
          ok([helloReplyFrame('Hello').subarray(0, 8)]);
          return;
        case 'reset':
          stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
          stream.write(helloReplyFrame('half'));
          setTimeout(() => stream.close(constants.NGHTTP2_INTERNAL_ERROR), 20);
          return;
        case 'lost':
          stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
          stream.write(helloReplyFrame('half'));
          setTimeout(() => stream.session?.destroy(), 20);
          return;
        case 'no-trailers':
          stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
          stream.end(helloReplyFrame('no status'));
          return;
        case 'hostname-in-trailers':
          ok([], { 'grpc-status': '5', 'grpc-message': 'no such greeting', hostname: 'pod-t' });
          return;
        default:
          ok([helloReplyFrame(`Hello ${scenario}`)]);
      }
    });
  });
  afterAll(() => raw.close());

  const run = async (scenario: string, ...args: string[]) => {
    const r = await client(['-server_addr', raw.address, '-json', '-H', `x-scenario: ${scenario}`, ...args]);
    return { code: r.code, request: r.json().requests[0]! };
  };

  test("Envoy's fault abort (trailers-only): the status from the headers, not retried", async () => {
    const { code, request } = await run('envoy-abort');
    expect(code).toBe(78);
    expect(request).toMatchObject({ status: 'UNAVAILABLE', details: 'fault filter abort', hostname: null, attempts: 1 });
  });

  test.each([
    ['http-503', 'UNAVAILABLE', /HTTP 503 \(text\/plain\) without a gRPC status: not a gRPC server, or a proxy error\?/],
    ['http-404', 'UNIMPLEMENTED', /HTTP 404/],
    ['http-401', 'UNAUTHENTICATED', /HTTP 401/],
    ['http-429', 'UNAVAILABLE', /HTTP 429/],
    ['html', 'UNKNOWN', /HTTP 200 \(text\/html\), not application\/grpc: not a gRPC server\?/],
  ])('%s: mapped to %s as the gRPC spec says', async (scenario, status, details) => {
    const { request } = await run(scenario);
    expect(request.status).toBe(status);
    expect(request.details).toMatch(details);
  });

  test('grpc-message is percent-decoded UTF-8; a malformed escape stays as it is', async () => {
    const { code, request } = await run('percent');
    expect(code).toBe(64 + 9);
    expect(request).toMatchObject({ status: 'FAILED_PRECONDITION', details: 'café ✓ 100% %zz%' });
  });

  test.each([
    ['compressed', /compressed message \(grpc-encoding gzip\)/],
    ['two-messages', /exactly one message, the server sent 2/],
    ['no-message', /exactly one message, the server sent 0/],
    ['garbage-message', /cannot decode the HelloReply: length-delimited field runs past the end/],
    ['truncated', /truncated message/],
  ])('%s: INTERNAL, saying why', async (scenario, details) => {
    const { code, request } = await run(scenario);
    expect(code).toBe(64 + 13);
    expect(request).toMatchObject({ status: 'INTERNAL', message: null });
    expect(request.details).toMatch(details);
  });

  test.each([
    // Node's client sees a reset after the response headers as the stream's end (rstCode 0): either way INTERNAL
    ['reset', 'INTERNAL', /reset before its status \(HTTP\/2 error INTERNAL_ERROR\)|ended the stream without a gRPC status/],
    ['no-trailers', 'INTERNAL', /^the server ended the stream without a gRPC status \(no grpc-status trailer\)$/],
    ['lost', 'UNAVAILABLE', /^the connection was lost before the call's status arrived/],
  ])('an answer that stops before its status (%s): %s', async (scenario, status, details) => {
    const { request } = await run(scenario, '-backoff_initial', '0.05');
    expect(request).toMatchObject({ status, attempts: 1 });
    expect(request.details).toMatch(details);
  });

  test('the hostname may come in the trailers', async () => {
    const { request } = await run('hostname-in-trailers');
    expect(request).toMatchObject({ status: 'NOT_FOUND', details: 'no such greeting', hostname: 'pod-t' });
  });
});

describe.concurrent('deadlines', () => {
  // The server ends the call at the same deadline (grpc-timeout), counted from a moment later: the client's
  // own timer comes first, unless a busy machine runs it late and the server's DEADLINE_EXCEEDED is read first.
  const deadlineWords = (timeout: string) =>
    new RegExp(`^deadline exceeded after ${timeout.replace('.', '\\.')}: (no answer from the server yet|the server answered DEADLINE_EXCEEDED: Deadline exceeded)$`);

  test('the deadline ends a call the server is slow to answer: DEADLINE_EXCEEDED after ≈ the timeout', async ({ expect }) => {
    const r = await client(['-server_addr', plain.address, '-timeout', '0.5', '-H', 'x-helloworld-delay-ms: 3000', '-json']);
    expect(r.code).toBe(68);
    const request = r.json().requests[0]!;
    expect(request.status).toBe('DEADLINE_EXCEEDED');
    expect(request.details).toMatch(deadlineWords('0.5s'));
    expect(request.latency_ms).toBeGreaterThanOrEqual(500);
    expect(request.latency_ms).toBeLessThan(1500);
  });

  test('fractions and Go durations: -timeout 250ms', async ({ expect }) => {
    const r = await client(['-server_addr', plain.address, '-timeout', '250ms', '-H', 'x-helloworld-delay-ms: 2000', '-json']);
    const request = r.json().requests[0]!;
    expect(request.details).toMatch(deadlineWords('0.25s'));
    expect(request.latency_ms).toBeGreaterThanOrEqual(250);
    expect(request.latency_ms).toBeLessThan(1500);
  });

  test('grpc-timeout rounds up and switches units beyond 8 digits', () => {
    expect(grpcTimeout(999.2)).toBe('1000m');
    expect(grpcTimeout(0.1)).toBe('1m');
    expect(grpcTimeout(99_999_999)).toBe('99999999m');
    expect(grpcTimeout(100_000_000)).toBe('100000S');
  });
});

describe('a failure read after the deadline', () => {
  // grpc-go servers end a call whose deadline passed with `UNKNOWN: context deadline exceeded`. When that
  // answer is read after the client's own deadline but before its timer runs (a busy event loop), the call
  // has still run past the deadline the user gave. Made to happen for sure: a node:http2 server in a worker
  // thread answers while this thread is held in a timer callback (timers run before I/O), until past the
  // deadline; then the client reads the answer before its own timer's turn.
  const WORKER = `
    const { workerData, parentPort } = require('node:worker_threads');
    const flags = new Int32Array(workerData);
    const server = require('node:http2').createServer();
    server.on('stream', (stream) => {
      stream.on('error', () => {});
      stream.resume();
      stream.on('end', () => {
        Atomics.store(flags, 0, 1); // request read
        Atomics.wait(flags, 1, 0, 20000); // until the client's thread is held
        stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '2', 'grpc-message': 'context deadline exceeded', hostname: 'go-pod' }, { endStream: true });
        stream.on('close', () => setTimeout(() => { Atomics.store(flags, 2, 1); Atomics.notify(flags, 2); }, 50)); // sent
      });
    });
    server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));`;

  test('is DEADLINE_EXCEEDED (exit 68), with the server\'s words in the details', { timeout: 60_000 }, async () => {
    const flags = new Int32Array(new SharedArrayBuffer(12));
    const worker = new Worker(WORKER, { eval: true, workerData: flags.buffer });
    const timeoutMs = 2000;
    let held = false;
    try {
      const [port] = (await once(worker, 'message')) as [number];
      const hold = setInterval(() => {
        if (Atomics.load(flags, 0) === 0) return;
        clearInterval(hold);
        const seen = performance.now(); // the request started before: its deadline is before seen + timeoutMs
        Atomics.store(flags, 1, 1);
        Atomics.notify(flags, 1);
        held = Atomics.wait(flags, 2, 0, 20_000) !== 'timed-out';
        while (performance.now() < seen + timeoutMs + 50);
      }, 5);
      const r = await client(['-server_addr', `127.0.0.1:${port}`, '-timeout', String(timeoutMs / 1000), '-json']);
      expect(held).toBe(true);
      expect(r.code).toBe(68);
      expect(r.json().requests[0]).toMatchObject({
        status: 'DEADLINE_EXCEEDED',
        details: 'deadline exceeded after 2s: the server answered UNKNOWN: context deadline exceeded',
        hostname: 'go-pod',
        ok: false,
      });
      expect(r.json().requests[0]!.latency_ms).toBeGreaterThanOrEqual(timeoutMs);
    } finally {
      await worker.terminate();
    }
  });
});

describe.concurrent('reconnect with backoff', () => {
  test('the schedule: initial 1 s exact, then ×1.6 with ±20 % jitter, capped at 120 s', () => {
    expect(backoffDelayMs(1, DEFAULT_BACKOFF, () => 0)).toBe(1000);
    expect(backoffDelayMs(2, DEFAULT_BACKOFF, () => 0)).toBeCloseTo(1600 * 0.8);
    expect(backoffDelayMs(2, DEFAULT_BACKOFF, () => 1)).toBeCloseTo(1600 * 1.2);
    expect(backoffDelayMs(3, DEFAULT_BACKOFF, () => 0.5)).toBeCloseTo(2560);
    expect(backoffDelayMs(30, DEFAULT_BACKOFF, () => 0.5)).toBe(120_000);
    expect(backoffDelayMs(30, DEFAULT_BACKOFF, () => 1)).toBeCloseTo(144_000); // jitter applies after the cap, as in grpc-go
  });

  test('client first, server 2.5 s later: attempts follow the default schedule, then the request succeeds', async ({ expect }) => {
    const port = await freePort();
    const running = client(['-server_addr', `127.0.0.1:${port}`, '-timeout', '10', '-v', '-json']);
    await sleep(2500);
    const server = await startTestServer({ port, hostname: 'late' });
    const upAt = performance.now();
    try {
      const r = await running;
      expect(r.code).toBe(0);
      const request = r.json().requests[0]!;
      expect(request).toMatchObject({ ok: true, hostname: 'late', message: 'Hello world' });
      const starts = r.timeline.filter((l) => l.line.startsWith(`connecting to 127.0.0.1:${port}`)).map((l) => l.at);
      expect(starts.length).toBe(request.attempts);
      expect(request.attempts === 3 || request.attempts === 4).toBe(true);
      // each wait from the previous attempt's start: 1000 exact, then 1600 ±20 %, 2560 ±20 % (+ timer slack)
      const gaps = starts.slice(1).map((t, i) => t - starts[i]!);
      const bounds = [[1000, 1000], [1280, 1920], [2048, 3072]];
      gaps.forEach((gap, i) => {
        expect(gap).toBeGreaterThanOrEqual(bounds[i]![0]! - 5);
        expect(gap).toBeLessThanOrEqual(bounds[i]![1]! + 250);
      });
      // the failed attempts were refused; the last one came after the server was up and succeeded
      const failures = r.timeline.filter((l) => /^attempt \d failed/.test(l.line));
      expect(failures).toHaveLength(request.attempts - 1);
      for (const f of failures) expect(f.line).toMatch(new RegExp(`connection refused \\(127\\.0\\.0\\.1:${port}\\); next attempt in \\d`));
      expect(starts.at(-1)!).toBeGreaterThan(upAt - 5);
      expect(starts.at(-2)!).toBeLessThan(upAt);
    } finally {
      server.forceShutdown();
    }
  });

  test('the deadline ends the retries: DEADLINE_EXCEEDED with the attempts and the last failure', async ({ expect }) => {
    const port = await freePort();
    const r = await client([
      '-server_addr', `127.0.0.1:${port}`, '-timeout', '1.1', '-v', '-json',
      '-backoff_initial', '0.1', '-backoff_multiplier', '2', '-backoff_max', '0.3', '-backoff_jitter', '0',
    ]);
    expect(r.code).toBe(68);
    const request = r.json().requests[0]!;
    // attempts at 0, 100, 300, 600, 900 ms; the next (1200) would be after the deadline (1100)
    expect(request.details).toMatch(new RegExp(`^deadline exceeded after 1\\.1s: [45] attempts, last failure: connection refused \\(127\\.0\\.0\\.1:${port}\\)$`));
    expect(request.latency_ms).toBeGreaterThanOrEqual(1100);
    expect(request.latency_ms).toBeLessThan(1600);
    const starts = r.timeline.filter((l) => l.line.startsWith('connecting to')).map((l) => l.at);
    const gaps = starts.slice(1).map((t, i) => t - starts[i]!);
    [100, 200, 300, 300].slice(0, gaps.length).forEach((want, i) => {
      expect(gaps[i]).toBeGreaterThanOrEqual(want - 5);
      expect(gaps[i]).toBeLessThan(want + 150);
    });
    expect(r.timeline.at(-2)!.line).toMatch(/the deadline \(in [\d.]+s\) comes before the next attempt$/);
  });

  test('a server that goes away (GOAWAY) and comes back: later requests reconnect', async ({ expect }) => {
    const port = await freePort();
    const a = await startTestServer({ port, hostname: 'replica-a' });
    const running = client(['-server_addr', `127.0.0.1:${port}`, '-count', '4', '-interval', '0.5', '-timeout', '3', '-json', '-backoff_initial', '0.1']);
    await sleep(150);
    await a.shutdown(1000);
    const b = await startTestServer({ port, hostname: 'replica-b' });
    try {
      const r = await running;
      expect(r.code).toBe(0);
      expect(r.json().requests.map((q: JsonRequest) => q.hostname)).toEqual(['replica-a', 'replica-b', 'replica-b', 'replica-b']);
    } finally {
      b.forceShutdown();
    }
  });

  test('a refused stream (REFUSED_STREAM) is a transport failure: retried, then answered', async ({ expect }) => {
    const raw = await rawH2Server((stream, _headers, n) => {
      if (n === 1) return stream.close(constants.NGHTTP2_REFUSED_STREAM);
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(helloReplyFrame('Hello again'));
    });
    try {
      const r = await client(['-server_addr', raw.address, '-json', '-v', '-backoff_initial', '0.05']);
      expect(r.code).toBe(0);
      expect(r.json().requests[0]).toMatchObject({ attempts: 2, message: 'Hello again' });
      expect(r.stderr).toMatch(/attempt 1 failed: no answer: .*REFUSED_STREAM/);
    } finally {
      await raw.close();
    }
  });
});

describe.concurrent('localhost', () => {
  test('localhost and *.localhost are loopback, not looked up (RFC 6761); other names and addresses go as given', ({ expect }) => {
    for (const name of ['localhost', 'LocalHost', 'localhost.', 'pod.localhost']) expect(dialHosts(name)).toEqual(['127.0.0.1', '::1']);
    for (const name of ['localhost.example.com', 'mylocalhost', 'svc', '127.0.0.1', '::1']) expect(dialHosts(name)).toEqual([name]);
  });

  test('a server on ::1 only: reached in the first attempt, IPv4 refused and IPv6 tried at once', async ({ expect, skip }) => {
    const server = await startOnIpv6Loopback({ hostname: 'v6-only' }, skip);
    try {
      // a backoff wait (1 s) after the refusal would not fit in the deadline
      const r = await client(['-server_addr', `localhost:${server.port}`, '-timeout', '0.5', '-json', '-v']);
      expect(r.code).toBe(0);
      expect(r.json().requests[0]).toMatchObject({ ok: true, hostname: 'v6-only', attempts: 1 });
      expect(r.stderr).toMatch(/\(h2c, ::1\)\n$/);
    } finally {
      server.forceShutdown();
    }
  });

  test('a TLS server on ::1 only: -tls reaches it; plaintext is diagnosed where it failed (::1)', async ({ expect, skip }) => {
    const server = await startOnIpv6Loopback({ useTls: true, hostname: 'v6-tls' }, skip);
    try {
      const ok = await client(['-tls', '-server_addr', `localhost:${server.port}`, '-timeout', '0.5', '-json']);
      expect(ok.json().requests[0]).toMatchObject({ ok: true, hostname: 'v6-tls', attempts: 1 });
      const r = await client(['-server_addr', `localhost:${server.port}`, '-timeout', '0.5', '-json']);
      expect(r.json().requests[0]!.details).toBe('server speaks TLS? try -tls');
    } finally {
      server.forceShutdown();
    }
  });

  test('nothing listening: the failure names the IPv4 loopback it tried first', async ({ expect }) => {
    const port = await freePort();
    const r = await client(['-server_addr', `localhost:${port}`, '-timeout', '0.3', '-json']);
    expect(r.code).toBe(68);
    expect(r.json().requests[0]!.details).toMatch(new RegExp(`: 1 attempt, last failure: connection refused \\(127\\.0\\.0\\.1:${port}\\)$`));
  });

  test('-tls to localhost verifies -server_host_override, not the address it connected to', async ({ expect }) => {
    const r = await client(['-tls', '-server_addr', `localhost:${tls.port}`, '-json']);
    expect(r.code).toBe(0);
    expect(r.json().requests[0]).toMatchObject({ ok: true, hostname: 'pod-tls' });
  });
});

describe('-retry_on', () => {
  test('an answered UNAVAILABLE is reported, not retried, by default', async () => {
    const before = plain.log.length;
    const r = await client(['-server_addr', plain.address, '-H', 'x-helloworld-fail-code: UNAVAILABLE', '-json']);
    expect(r.code).toBe(78);
    expect(r.json().requests[0]).toMatchObject({ attempts: 1, status: 'UNAVAILABLE' });
    expect(plain.log.length - before).toBe(1);
  });

  test('-retry_on UNAVAILABLE retries it with backoff until the deadline', async () => {
    const before = plain.log.length;
    const r = await client([
      '-server_addr', plain.address, '-H', 'x-helloworld-fail-code: UNAVAILABLE', '-json',
      '-retry_on', 'UNAVAILABLE,RESOURCE_EXHAUSTED', '-timeout', '1', '-backoff_initial', '0.15', '-backoff_multiplier', '1', '-backoff_jitter', '0',
    ]);
    expect(r.code).toBe(68);
    const request = r.json().requests[0]!;
    expect(request.attempts).toBeGreaterThanOrEqual(5); // at 0, 150, ... 900 ms
    expect(request.details).toMatch(/^deadline exceeded after 1s: (no answer from the server yet \()?\d+ attempts, last failure: UNAVAILABLE: failure requested by x-helloworld-fail-code\)?$/);
    expect(plain.log.length - before).toBe(request.attempts);
  });

  test('-retry_on succeeds when a retry is answered OK', async () => {
    const flaky = await startTestServer({ failRate: 0.5, failCode: 14, hostname: 'flaky' });
    try {
      const r = await client(['-server_addr', flaky.address, '-count', '20', '-json', '-retry_on', '14', '-timeout', '5', '-backoff_initial', '0.01']);
      expect(r.code).toBe(0);
      const doc = r.json();
      expect(doc.summary).toMatchObject({ count: 20, ok: 20, failed: 0 });
      expect(doc.requests.reduce((n: number, q: JsonRequest) => n + q.attempts, 0)).toBe(flaky.log.length);
      expect(flaky.log.length).toBeGreaterThan(20);
    } finally {
      flaky.forceShutdown();
    }
  });
});

describe('-count, -interval, -concurrency', () => {
  test('one HTTP/2 connection for the whole run, requests multiplexed on it', async () => {
    const server = await startTestServer({ hostname: 'mux' });
    try {
      const r = await client(['-server_addr', server.address, '-count', '6', '-concurrency', '3', '-H', 'x-helloworld-delay-ms: 300', '-json']);
      expect(r.code).toBe(0);
      expect(server.log).toHaveLength(6);
      expect(new Set(server.log.map((e) => e.peer)).size).toBe(1);
      // three in flight at once: the second three start when the first three end
      const starts = r.json().requests.map((q: JsonRequest) => Date.parse(q.start));
      expect(Math.max(...starts.slice(0, 3)) - Math.min(...starts.slice(0, 3))).toBeLessThan(150);
      expect(Math.min(...starts.slice(3)) - Math.min(...starts.slice(0, 3))).toBeGreaterThanOrEqual(290);
    } finally {
      server.forceShutdown();
    }
  });

  test("more in flight than the server's MAX_CONCURRENT_STREAMS: queued on the connection, not failed", async () => {
    let inFlight = 0;
    let most = 0;
    const raw = await rawH2Server((stream) => {
      most = Math.max(most, ++inFlight);
      setTimeout(() => {
        inFlight--;
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(helloReplyFrame('queued'));
      }, 100);
    }, { maxConcurrentStreams: 2 });
    try {
      const r = await client(['-server_addr', raw.address, '-count', '6', '-concurrency', '6', '-json', '-timeout', '5']);
      expect(r.code).toBe(0);
      expect(most).toBe(2);
      // the wait for a stream counts in the latency, as in grpc-go: three rounds of 100 ms
      const latencies = r.json().requests.map((q: JsonRequest) => q.latency_ms).sort((a: number, b: number) => a - b);
      expect(latencies[5]).toBeGreaterThanOrEqual(300);
      expect(r.json().requests.every((q: JsonRequest) => q.attempts === 1)).toBe(true);
    } finally {
      await raw.close();
    }
  });

  test('-interval spaces the starts of requests', async () => {
    const r = await client(['-server_addr', plain.address, '-count', '3', '-interval', '0.25', '-json']);
    const starts = r.json().requests.map((q: JsonRequest) => Date.parse(q.start));
    expect(starts[1]! - starts[0]!).toBeGreaterThanOrEqual(240);
    expect(starts[1]! - starts[0]!).toBeLessThan(600);
    expect(starts[2]! - starts[0]!).toBeGreaterThanOrEqual(490);
  });

  test('the summary: OK and failed by status, latency percentiles, requests per replica', async () => {
    const server = await startTestServer({ hostname: 'pod-b', failRate: 0.3, failCode: 14 });
    try {
      const r = await client(['-server_addr', server.address, '-count', '40', '-concurrency', '4']);
      const failed = server.log.filter((e) => e.code !== 0).length;
      expect(r.code).toBe(failed > 0 ? 78 : 0);
      const lines = r.stdout.trim().split('\n');
      expect(lines.filter((l) => l.startsWith('Greeting: Hello world (from pod-b, '))).toHaveLength(40 - failed);
      expect(r.stderr.trim().split('\n').filter(Boolean)).toHaveLength(failed);
      expect(lines.at(-3)).toBe(
        `--- /helloworld.Greeter/SayHello on ${server.address}: 40 requests, ${40 - failed} OK, ${failed} failed${failed ? ` (UNAVAILABLE ${failed})` : ''} ---`,
      );
      expect(lines.at(-2)).toMatch(/^latency ms: min [\d.]+, p50 [\d.]+, p90 [\d.]+, p99 [\d.]+, max [\d.]+$/);
      expect(lines.at(-1)).toBe('replicas: pod-b 40');
    } finally {
      server.forceShutdown();
    }
  });

  test('-json summary: percentiles ordered and within min..max; by status and hostname', async () => {
    const r = await client(['-server_addr', plain.address, '-count', '30', '-concurrency', '5', '-json', '-H', 'x-helloworld-delay-ms: 5']);
    const { summary, requests } = r.json();
    const l = summary.latency_ms;
    expect(l.min).toBe(Math.min(...requests.map((q: JsonRequest) => q.latency_ms)));
    expect(l.max).toBe(Math.max(...requests.map((q: JsonRequest) => q.latency_ms)));
    expect([l.min, l.p50, l.p90, l.p99, l.max]).toEqual([...[l.min, l.p50, l.p90, l.p99, l.max]].sort((a, b) => a - b));
    expect(l.min).toBeGreaterThanOrEqual(5);
    expect(summary).toMatchObject({ count: 30, ok: 30, by_status: { OK: 30 }, by_hostname: { 'pod-a': 30 } });
    expect(requests.map((q: JsonRequest) => q.index)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  });
});

describe('-health', () => {
  test('SERVING: status line, exit 0', async () => {
    const r = await client(['-server_addr', plain.address, '-health']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^status: SERVING \(answer without a hostname, [\d.]+ ms\)\n$/); // grpc-health-check sends no hostname
  });

  test('NOT_SERVING: exit 1 with a clear line; -json says so', async () => {
    const server = await startTestServer({ hostname: 'draining' });
    server.health.setStatus('helloworld.Greeter', 'NOT_SERVING');
    try {
      const r = await client(['-server_addr', server.address, '-health', '-service', 'helloworld.Greeter']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^health check failed: service "helloworld.Greeter" status NOT_SERVING, want SERVING \(/);
      const j = await client(['-server_addr', server.address, '-health', '-service', 'helloworld.Greeter', '-json']);
      expect(j.json()).toMatchObject({
        method: '/grpc.health.v1.Health/Check',
        service: 'helloworld.Greeter',
        requests: [{ code: 0, status: 'OK', message: 'NOT_SERVING', ok: false }],
        summary: { ok: 0, failed: 1, by_status: { OK: 1 }, by_serving_status: { NOT_SERVING: 1 } },
        exit_code: 1,
      });
      expect((await client(['-server_addr', server.address, '-health'])).code).toBe(0); // "" is still SERVING
    } finally {
      server.forceShutdown();
    }
  });

  test('an unknown service: the server answers NOT_FOUND, exit 69', async () => {
    const r = await client(['-server_addr', plain.address, '-health', '-service', 'no.Such']);
    expect(r.code).toBe(69);
    expect(r.stderr).toMatch(/^could not check health: NOT_FOUND: /);
  });
});

describe('expectations', () => {
  test('-expect_code DEADLINE_EXCEEDED is met by a call that hit its deadline: exit 0', async () => {
    const r = await client(['-server_addr', plain.address, '-timeout', '1', '-H', 'x-helloworld-delay-ms: 10000', '-expect_code', 'DEADLINE_EXCEEDED']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^could not greet: DEADLINE_EXCEEDED: /);
    expect(r.stdout).toBe('expectations met by the request\n');
  });

  test('not met: exit 1 and one line that says why', async () => {
    const r = await client(['-server_addr', plain.address, '-expect_code', 'unavailable']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('expectation not met: request 1: ended OK, expected UNAVAILABLE\n');
  });

  test('latency bounds, in seconds or Go durations; with only latencies, requests must also be OK', async () => {
    const delayed = ['-server_addr', plain.address, '-H', 'x-helloworld-delay-ms: 300'];
    expect((await client([...delayed, '-expect_min_latency', '0.25', '-expect_max_latency', '5s'])).code).toBe(0);
    const tooFast = await client([...delayed, '-expect_min_latency', '2']);
    expect(tooFast.code).toBe(1);
    expect(tooFast.stderr).toMatch(/^expectation not met: request 1: took [\d.]+ ms, expected at least 2000 ms$/m);
    const tooSlow = await client([...delayed, '-expect_max_latency', '100ms', '-count', '2', '-json']);
    expect(tooSlow.code).toBe(1);
    expect(tooSlow.stderr).toMatch(/^expectation not met: request 1: took [\d.]+ ms, expected at most 100 ms \(and 1 more of 2\)$/m);
    expect(tooSlow.json().expectations).toMatchObject({ codes: ['OK'], min_latency_ms: null, max_latency_ms: 100, met: false });
    const failing = await client(['-server_addr', plain.address, '-H', 'x-helloworld-fail-code: 14', '-expect_max_latency', '5']);
    expect(failing.code).toBe(1);
    expect(failing.stderr).toMatch(/request 1: ended UNAVAILABLE, expected OK/);
  });

  // issue 18: the README's one-line fault check must not pass for a typo'd Service name or a dead pod
  test('a request that never reached a server meets no expectation, DEADLINE_EXCEEDED included', async () => {
    for (const addr of ['no-such-service.invalid:10000', `127.0.0.1:${await freePort()}`]) {
      const r = await client(['-server_addr', addr, '-timeout', '1', '-expect_code', 'DEADLINE_EXCEEDED', '-expect_min_latency', '0.9', '-json']);
      expect(r.code, addr).toBe(1);
      expect(r.json().requests[0]).toMatchObject({ status: 'DEADLINE_EXCEEDED', reached: false, answered_by: 'none' });
      expect(r.stderr).toMatch(/^expectation not met: request 1: never reached a server \(deadline exceeded after 1s: /m);
    }
  });

  test('a deadline met while the server holds the call: reached, answered by none', async () => {
    const r = await client(['-server_addr', plain.address, '-timeout', '1', '-H', 'x-helloworld-delay-ms: 10000', '-json', '-expect_code', 'DEADLINE_EXCEEDED', '-expect_answered_by', 'none']);
    expect(r.code).toBe(0);
    expect(r.json().requests[0]).toMatchObject({ reached: true, answered_by: 'none', envoy: false });
  });

  test('who answered: this server, or something in between (an Envoy fault abort, imitated)', async () => {
    const ours = await client(['-server_addr', plain.address, '-json', '-expect_answered_by', 'server']);
    expect(ours.code).toBe(0);
    expect(ours.json().requests[0]).toMatchObject({ reached: true, answered_by: 'server', hostname: 'pod-a', envoy: false });
    // what Envoy's fault filter sends for an abort: trailers-only, with its own `server` header, no hostname
    const envoy = await rawH2Server((stream) =>
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14', 'grpc-message': 'fault filter abort', server: 'envoy' }, { endStream: true }),
    );
    try {
      const r = await client(['-server_addr', envoy.address, '-json', '-expect_code', 'UNAVAILABLE', '-expect_answered_by', 'other']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.json().requests[0]).toMatchObject({ status: 'UNAVAILABLE', reached: true, answered_by: 'other', hostname: null, envoy: true });
      const text = await client(['-server_addr', envoy.address]);
      expect(text.stderr).toMatch(/^could not greet: UNAVAILABLE: fault filter abort \(answer without a hostname via Envoy, [\d.]+ ms\)$/m);
      const wrong = await client(['-server_addr', envoy.address, '-expect_code', 'UNAVAILABLE', '-expect_answered_by', 'server']);
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toMatch(/^expectation not met: request 1: answered by other, expected server$/m);
    } finally {
      await envoy.close();
    }
  });

  test('-expect_answered_by takes server, other or none', async () => {
    const r = await client(['-server_addr', plain.address, '-expect_answered_by', 'mesh']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/invalid value "mesh" for -expect_answered_by: want server, other, none/);
  });

  test('several codes: any of them', async () => {
    const r = await client(['-server_addr', plain.address, '-H', 'x-helloworld-fail-code: 14', '-expect_code', 'OK,UNAVAILABLE', '-json']);
    expect(r.code).toBe(0);
    expect(r.json().expectations).toEqual({ codes: ['OK', 'UNAVAILABLE'], min_latency_ms: null, max_latency_ms: null, answered_by: null, met: true, failures: [] });
  });
});

/** long enough for one TLS handshake to fail, and say why, on a busy machine: the client retries until then */
const TLS_FAILURE_TIMEOUT = '1.5';

describe.concurrent('TLS and mTLS', () => {
  let mtls: TestServer;
  beforeAll(async () => {
    mtls = await startTestServer({ tls: { ...testServerKeyPair(), clientCa: ca }, hostname: 'pod-mtls' });
    clientPki(); // made here, not inside a test: its openssl runs block this process while the other tests' deadlines run
  });
  afterAll(() => mtls.forceShutdown());

  test('mTLS: with -cert_file/-key_file the call succeeds', async ({ expect }) => {
    const r = await client(['-server_addr', mtls.address, '-tls', '-cert_file', certs('client.pem'), '-key_file', certs('client-key.pem')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Greeting: Hello world \(from pod-mtls/);
  });

  test('mTLS: without a client certificate, the words say so', async ({ expect }) => {
    const r = await client(['-server_addr', mtls.address, '-tls', '-timeout', TLS_FAILURE_TIMEOUT, '-json']);
    expect(r.code).toBe(68);
    expect(r.json().requests[0]!.details).toMatch(/last failure: server requires a client certificate \(mTLS\): try -cert_file and -key_file$/);
  });

  test('mTLS: a client certificate from another CA is rejected, in words', async ({ expect }) => {
    const pki = clientPki();
    const r = await client(['-server_addr', mtls.address, '-tls', '-timeout', TLS_FAILURE_TIMEOUT, '-json', '-cert_file', pki.otherCaClient.cert, '-key_file', pki.otherCaClient.key]);
    // Node's TLS server checks it after the handshake and closes without an alert
    expect(r.json().requests[0]!.details).toMatch(/the server closed the connection after the TLS handshake \(127.0.0.1:\d+\): it does not accept this client certificate\?$/);
  });

  test('a CA that did not sign the server certificate: "unknown authority (try -ca_file)"', async ({ expect }) => {
    const r = await client(['-server_addr', tls.address, '-tls', '-timeout', TLS_FAILURE_TIMEOUT, '-json', '-ca_file', clientPki().otherCa]);
    expect(r.json().requests[0]!.details).toMatch(/last failure: server certificate signed by unknown authority \(try -ca_file\)$/);
  });

  test('a name the certificate does not carry: mentions -server_host_override', async ({ expect }) => {
    const r = await client(['-server_addr', tls.address, '-tls', '-timeout', TLS_FAILURE_TIMEOUT, '-json', '-server_host_override', 'other.example.com']);
    const details = r.json().requests[0]!.details;
    expect(details).toMatch(/server certificate is not valid for "other.example.com" \(it is for DNS:localhost, .*\): set -server_host_override/);
  });

  test('-server_host_override may be an IP address the certificate carries (no SNI then)', async ({ expect }) => {
    const r = await client(['-server_addr', tls.address, '-tls', '-server_host_override', '127.0.0.1']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(''); // no DeprecationWarning from Node for an IP address as SNI
  });

  test('SNI is a name, never an IP address (sniFor, for the connection and for the plaintext diagnosis)', ({ expect }) => {
    for (const name of ['x.test.youtube.com', 'localhost', '1.2.3', '10.0.0.1.example']) expect(sniFor(name)).toEqual({ servername: name });
    for (const address of ['127.0.0.1', '::1', '2001:db8::1']) expect(sniFor(address)).toEqual({});
  });

  test('an expired server certificate: says expired', async ({ expect }) => {
    const pki = clientPki();
    const expired = await startTestServer({ tls: { cert: readFileSync(pki.expiredServer.cert), key: readFileSync(pki.expiredServer.key) } });
    try {
      const r = await client(['-server_addr', expired.address, '-tls', '-timeout', TLS_FAILURE_TIMEOUT, '-json']);
      expect(r.json().requests[0]!.details).toMatch(/server certificate has expired/);
    } finally {
      expired.forceShutdown();
    }
  });
});

describe.concurrent('transport failures in words', () => {
  // a server that speaks something else will not change its mind: UNAVAILABLE at once, not retried until the
  // deadline (-timeout 10 would otherwise wait 10 s), and no expectation can be met by it
  test('plaintext client, TLS server: "server speaks TLS? try -tls", UNAVAILABLE at once', async ({ expect }) => {
    const r = await client(['-server_addr', tls.address, '-timeout', '10', '-json']);
    expect(r.code).toBe(exitCodeForStatus(Code.UNAVAILABLE));
    expect(r.json().requests[0]).toMatchObject({ details: 'server speaks TLS? try -tls', attempts: 1, reached: false, answered_by: 'none' });
    expect(r.json().requests[0]!.latency_ms).toBeLessThan(5000);
    // no server reached: an expectation of that very status is not met
    const expected = await client(['-server_addr', tls.address, '-timeout', '10', '-expect_code', 'UNAVAILABLE']);
    expect(expected.code).toBe(1);
    expect(expected.stderr).toMatch(/expectation not met: request 1: never reached a server \(server speaks TLS\? try -tls\)/);
  });

  test('TLS client, plaintext server: "server does not speak TLS? try without -tls", UNAVAILABLE at once', async ({ expect }) => {
    const r = await client(['-server_addr', plain.address, '-tls', '-timeout', '10', '-json']);
    expect(r.code).toBe(exitCodeForStatus(Code.UNAVAILABLE));
    expect(r.json().requests[0]).toMatchObject({ details: 'server does not speak TLS? try without -tls', attempts: 1 });
    expect(r.json().requests[0]!.latency_ms).toBeLessThan(5000);
  });

  test('an HTTP/1 server: says so, UNAVAILABLE at once', async ({ expect }) => {
    const web = createHttpServer((_, res) => res.end('hello'));
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
    try {
      const r = await client(['-server_addr', `127.0.0.1:${(web.address() as AddressInfo).port}`, '-timeout', '10', '-json']);
      expect(r.code).toBe(exitCodeForStatus(Code.UNAVAILABLE));
      expect(r.json().requests[0]!.details).toBe('the server speaks HTTP/1.1, not HTTP/2: not a gRPC server?');
    } finally {
      web.close();
    }
  });

  test('a name that does not resolve: "cannot resolve host"', async ({ expect }) => {
    // room for a slow resolver on a busy machine: the words need one lookup to have failed before the deadline
    const r = await client(['-server_addr', 'no-such-host.invalid:10000', '-timeout', '3', '-json']);
    expect(r.json().requests[0]!.details).toMatch(/last failure: cannot resolve host no-such-host.invalid/);
  });

  test('nothing listening: "connection refused (address)"', async ({ expect }) => {
    const port = await freePort();
    const r = await client(['-server_addr', `localhost:${port}`, '-timeout', '0.3', '-json']);
    expect(r.json().requests[0]!.details).toMatch(new RegExp(`last failure: connection refused \\((127\\.0\\.0\\.1|\\[::1\\]):${port}\\)$`));
  });

  test('a server that accepts and never speaks: the deadline ends the wait; waiting requests share one attempt', async ({ expect }) => {
    const sockets: Socket[] = [];
    const silent = createNetServer((socket) => {
      sockets.push(socket.resume()); // read (and ignore) what comes, so the client's close is seen
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as AddressInfo).port;
    try {
      const r = await client(['-server_addr', `127.0.0.1:${port}`, '-timeout', '0.4', '-count', '3', '-concurrency', '2', '-json']);
      expect(r.code).toBe(68);
      const requests = r.json().requests;
      for (const q of requests) {
        expect(q.details).toBe(`deadline exceeded after 0.4s: still connecting to 127.0.0.1:${port}`);
        expect(q.latency_ms).toBeLessThan(1000);
      }
      // all three waited on one connection attempt (request 3 joined it when request 1 gave up), closed at the end
      expect(sockets).toHaveLength(1);
      await new Promise((resolve) => (sockets[0]!.closed ? resolve(null) : sockets[0]!.once('close', resolve)));
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  test('IPv6 literal addresses work', async ({ expect, skip }) => {
    const server = await startOnIpv6Loopback({ hostname: 'v6' }, skip);
    try {
      const r = await client(['-server_addr', `[::1]:${server.port}`]);
      expect(r.stdout).toMatch(/^Greeting: Hello world \(from v6/);
    } finally {
      server.forceShutdown();
    }
  });
});

describe('command line', () => {
  const parse = (...args: string[]) => clientOptionsFromArgs(args, {});
  const usage = (args: string[], message: RegExp) => expect(() => parse(...args)).toThrow(message);

  test('the Go client defaults', () => {
    const o = parse();
    expect(o).toMatchObject({
      target: { host: 'localhost', port: 10000, address: 'localhost:10000' },
      authority: 'localhost:10000',
      timeoutMs: 1000,
      count: 1,
      intervalMs: 0,
      concurrency: 1,
      metadata: [],
      call: { kind: 'hello', name: 'world' },
      json: false,
      verbose: false,
      backoff: DEFAULT_BACKOFF,
    });
    expect(o).not.toHaveProperty('tls');
    expect(o).not.toHaveProperty('expectations');
    expect(parse('-tls')).toMatchObject({ tls: { serverName: 'x.test.youtube.com' }, authority: 'x.test.youtube.com' });
  });

  test('Go-style spellings and the environment (HELLO_CLIENT_*; the command line wins)', () => {
    expect(parse('-timeout=10', '--count', '3', '-tls=true', 'bob')).toMatchObject({ timeoutMs: 10_000, count: 3, call: { name: 'bob' }, tls: {} });
    const env = { HELLO_CLIENT_SERVER_ADDR: 'svc:1', HELLO_CLIENT_TLS: 'true', HELLO_CLIENT_H: 'a: 1\nb: 2', HELLO_CLIENT_TIMEOUT: '3' };
    expect(clientOptionsFromArgs(['-timeout', '4'], env)).toMatchObject({ target: { address: 'svc:1' }, tls: {}, timeoutMs: 4000, metadata: [['a', '1'], ['b', '2']] });
  });

  test('-server_addr forms', () => {
    expect(parseTarget('[::1]:10000')).toEqual({ host: '::1', port: 10000, address: '[::1]:10000' });
    expect(parseTarget('grpc-helloworld-service.default.svc.cluster.local:10000').host).toBe('grpc-helloworld-service.default.svc.cluster.local');
    expect(parseTarget('dns:///svc:80')).toEqual({ host: 'svc', port: 80, address: 'svc:80' });
    expect(parseTarget(':10000').address).toBe('localhost:10000');
    expect(() => parseTarget('localhost')).toThrow(/missing port/);
    expect(() => parseTarget('localhost:')).toThrow(/missing port/);
    expect(() => parseTarget('::1:10000')).toThrow(/brackets/);
    expect(() => parseTarget('host:99999')).toThrow(/not 1 to 65535/);
    expect(() => parseTarget('host:http')).toThrow(/not 1 to 65535/);
    expect(() => parseTarget('http://host:1')).toThrow(/want host:port/);
    expect(() => parseTarget('a b:1')).toThrow(/want host:port/);
  });

  test('-H: lower-case keys, reserved headers refused, -bin values base64', () => {
    expect(parseHeader('End-User: jason')).toEqual(['end-user', 'jason']);
    expect(parseHeader('x:  spaced value ')).toEqual(['x', 'spaced value']);
    expect(parseHeader('x: a:b')).toEqual(['x', 'a:b']);
    expect(parseHeader('user-agent: probe')).toEqual(['user-agent', 'probe']);
    expect(parseHeader('t-bin: AAEC/w==')).toEqual(['t-bin', 'AAEC/w']);
    expect(parseHeader('t-bin: AAEC_w')).toEqual(['t-bin', 'AAEC/w']);
    for (const bad of [':path: /x', 'content-type: text/plain', 'te: gzip', 'grpc-timeout: 1S', 'Grpc-Status: 0', 'host: x', 'connection: close']) {
      expect(() => parseHeader(bad)).toThrow(UsageError);
    }
    expect(() => parseHeader('novalue')).toThrow(/want 'key: value'/);
    expect(() => parseHeader('bad key: v')).toThrow(/letters, digits/);
    expect(() => parseHeader('x: caf\u00e9')).toThrow(/-bin/);
    expect(() => parseHeader('t-bin: not base64!')).toThrow(/base64/);
    expect(() => parseHeader('host: x')).toThrow(/-authority/);
  });

  test.each([
    [['-nope'], /flag provided but not defined: -nope/],
    [['-timeout', 'soon'], /invalid value "soon" for -timeout/],
    [['-timeout', '0'], /more than 0 seconds/],
    [['-count', '0'], /-count/],
    [['-count', '1.5'], /whole number/],
    [['-concurrency', '0'], /-concurrency/],
    [['-server_addr', 'localhost'], /missing port/],
    [['a', 'b'], /unexpected argument "b"/],
    [['-service', 'x'], /-service needs -health/],
    [['-health', 'bob'], /-health takes -service/],
    [['-ca_file', 'x.pem'], /need -tls/],
    [['-tls', '-ca_file', '/nonexistent.pem'], /cannot read -ca_file \/nonexistent.pem: no such file/],
    [['-tls', '-cert_file', '/nonexistent.pem'], /go together/],
    [['-retry_on', 'SOMETIMES'], /invalid value "SOMETIMES" for -retry_on/],
    [['-retry_on', 'OK'], /OK is not a failure/],
    [['-expect_code', 'maybe'], /-expect_code/],
    [['-expect_min_latency', '2', '-expect_max_latency', '1'], /no request can meet both/],
    [['-backoff_jitter', '2'], /-backoff_jitter/],
    [['-backoff_multiplier', '0.5'], /-backoff_multiplier/],
    [['-authority', 'a/b'], /-authority/],
  ])('%j is a usage error', (args, message) => {
    usage(args, message);
  });

  test('usage errors exit 2 with one line', async () => {
    const r = await client(['-server_addr', 'nowhere']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('client: invalid -server_addr "nowhere": missing port, want host:port, e.g. localhost:10000\n');
  });

  test('percent-decoding of grpc-message', () => {
    expect(percentDecode('plain')).toBe('plain');
    expect(percentDecode('%41%e2%82%ac')).toBe('A€');
    expect(percentDecode('100%')).toBe('100%');
  });
});

describe('flow control against a server with any windows (fast-check)', () => {
  // node:http2 servers with small windows and frames of any allowed size, answering in pieces of random
  // size: every request of up to 200 KB goes out within the server's windows, and every answer comes back
  // whole. Bounded: 25 runs, 20 s.
  // The work is bounded too, so that a correct transfer always fits its deadline: a window of W bytes lets
  // W bytes go per round trip (the server's WINDOW_UPDATE), about 40 µs here, and a 1-byte window with a
  // 95 KB request took 10-12 s on a busy 2-core machine. So a run sends at most ROUND_TRIPS windows' worth
  // and the answer comes in at most PIECES pieces: a fraction of a second here, against -timeout 30.
  const ROUND_TRIPS = 4000;
  const PIECES = 10_000;
  test('every request goes out and every answer comes back whole', { timeout: 60_000 }, async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 65_535 }),
        fc.integer({ min: 16_384, max: 65_535 }),
        fc.integer({ min: 0, max: 200 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 70_000 }),
        async (initialWindowSize, maxFrameSize, nameKb, count, pieceSize) => {
          runs++;
          const name = 'w'.repeat(Math.min(nameKb * 1024, Math.floor((ROUND_TRIPS * initialWindowSize) / count)));
          const piece = Math.max(pieceSize, Math.ceil((name.length + 20) / PIECES));
          const raw = await rawH2Server(
            (stream, _headers, n) => {
              const sent = decodeHelloReply(raw.requests[n - 1]!.body.subarray(5)).message; // HelloRequest: the same field 1
              const answer = frame(encodeHelloRequest({ name: `Hello ${sent}` }));
              stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
              stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
              for (let at = 0; at < answer.length; at += piece) stream.write(answer.subarray(at, at + piece));
              stream.end();
            },
            { initialWindowSize, maxFrameSize },
          );
          try {
            const r = await client(['-server_addr', raw.address, '-count', String(count), '-concurrency', String(count), '-timeout', '30', '-json', name]);
            expect(r.code, r.stderr).toBe(0);
            const requests = r.json<{ requests: JsonRequest[] }>().requests;
            expect(requests).toHaveLength(count);
            for (const q of requests) expect(q.message === `Hello ${name}`).toBe(true);
          } finally {
            await raw.close();
          }
        },
      ),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 25), interruptAfterTimeLimit: Number(process.env.FUZZ_MS ?? 20_000) },
    );
    expect(runs).toBeGreaterThan(0);
  });
});
