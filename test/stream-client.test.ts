// The client's -stream against this project's server: what it prints per reply and at the end, how a stream
// cut by a fault, a deadline or a server's shutdown reads, its exit codes, -expect_messages, -retry_on, and
// the -json document against its schema.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer as createH2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { SHUTTING_DOWN } from '../src/server/server.ts';
import { client, helloReplyFrame, type JsonDocument } from './helpers/client.ts';
import { expectValid, validate } from './helpers/output-schema.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { bundle, cleanEnv, spawnServer } from './helpers/spawn.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ hostname: 'pod-a' });
});
afterAll(() => server?.forceShutdown());

const at = () => ['-server_addr', server.address];
const FAIL_AFTER = (k: number, code = 'UNAVAILABLE') => ['-H', `x-helloworld-fail-code: ${code}`, '-H', `x-helloworld-fail-after: ${k}`];
const messageLine = (i: number, text: string) => new RegExp(`^message ${i}: ${text} \\(from pod-a, \\d+\\.\\d+ ms since start\\)$`);
const lines = (text: string) => text.split('\n').filter(Boolean);

describe('-stream server', () => {
  test('a line per reply as it comes, then how the stream ended; exit 0', async () => {
    const r = await client([...at(), '-stream', 'server', '-messages', '3', '-stream_interval', '0.05', 'Zoë']);
    expect(r.code).toBe(0);
    const out = lines(r.stdout);
    expect(out).toHaveLength(4);
    out.slice(0, 3).forEach((line, i) => expect(line).toMatch(messageLine(i + 1, `Hello Zoë ${i + 1}`)));
    expect(out[3]).toMatch(/^stream ended OK after 3 of 3 messages \(from pod-a, \d+\.\d+ ms\)$/);
    expect(r.stderr).toBe('');
    expect(server.log.at(-1)).toMatchObject({ method: '/helloworld.GreeterStream/SayHelloStream', status: 'OK', messages_received: 1, messages_sent: 3 });
  });

  test('-stream_interval is asked of the server: replies arrive that far apart', async () => {
    const r = await client([...at(), '-stream', 'server', '-messages', '3', '-stream_interval', '0.2', '-timeout', '10', '-json']);
    const ms = r.json().requests[0]!.messages!.map((m) => m.ms_since_start);
    // reply k is sent k intervals after the first, at the earliest (a timer may round a millisecond early);
    // arrival gaps between two replies are not bounded below (the earlier one may have waited in transit)
    ms.forEach((at, k) => expect(at).toBeGreaterThanOrEqual(k * 200 - 5));
    // and not all at the end: the first came before the last was due
    expect(ms[0]!).toBeLessThan(400);
  });
});

describe('-stream bidi', () => {
  test('-messages requests, -stream_interval apart; each answered in order', async () => {
    const r = await client([...at(), '-stream', 'bidi', '-messages', '4', '-stream_interval', '0.25', '-timeout', '10', '-json', 'b']);
    expect(r.code).toBe(0);
    const doc = r.json();
    expect(doc.requests[0]!.messages!.map((m) => m.message)).toEqual(['Hello b 1', 'Hello b 2', 'Hello b 3', 'Hello b 4']);
    // request k goes k intervals after the first (the client's schedule), so its reply no earlier; and the
    // server answers each request as it comes: the first reply came before the last request was due
    const ms = doc.requests[0]!.messages!.map((m) => m.ms_since_start);
    ms.forEach((at, k) => expect(at).toBeGreaterThanOrEqual(k * 250 - 5));
    expect(ms[0]!).toBeLessThan(750);
    expect(server.log.at(-1)).toMatchObject({ method: '/helloworld.GreeterStream/SayHelloBidi', status: 'OK', messages_received: 4, messages_sent: 4 });
  });

  test('-count 2 -concurrency 2: the lines say which stream; a summary of streams and messages', async () => {
    const r = await client([...at(), '-stream', 'bidi', '-messages', '2', '-count', '2', '-concurrency', '2']);
    expect(r.code).toBe(0);
    const out = lines(r.stdout);
    expect(out.filter((l) => /^stream [12] message [12]: Hello world [12] \(from pod-a, /.test(l))).toHaveLength(4);
    expect(out.filter((l) => /^stream [12] ended OK after 2 of 2 messages \(from pod-a, /.test(l))).toHaveLength(2);
    expect(out.slice(-4)).toEqual([
      `--- /helloworld.GreeterStream/SayHelloBidi on ${server.address}: 2 streams, 2 OK, 0 failed ---`,
      expect.stringMatching(/^duration ms: min /),
      'messages: 4 of 4 received',
      'replicas: pod-a 2',
    ]);
  });
});

describe('a stream cut short', () => {
  test('by a fault after k replies: one line saying so, exit 64 + the status', async () => {
    const r = await client([...at(), '-stream', 'server', '-messages', '10', ...FAIL_AFTER(3)]);
    expect(r.code).toBe(78);
    expect(lines(r.stdout)).toHaveLength(3);
    expect(r.stderr).toMatch(/^stream ended after 3 of 10 messages: UNAVAILABLE: failure requested by x-helloworld-fail-code \(from pod-a, \d+\.\d+ ms\)\n$/);
  });

  test('by the deadline: DEADLINE_EXCEEDED (exit 68), with what had come and who was answering', async () => {
    const r = await client([...at(), '-stream', 'server', '-messages', '10', '-stream_interval', '0.3', '-timeout', '1']);
    expect(r.code).toBe(68);
    const received = lines(r.stdout).length;
    expect(received).toBeGreaterThanOrEqual(1);
    expect(received).toBeLessThan(10);
    expect(r.stderr).toMatch(
      new RegExp(`^stream ended after ${received} of 10 messages: DEADLINE_EXCEEDED: deadline exceeded after 1s: the stream was still open \\(-timeout is the deadline of the whole stream\\) \\(from pod-a, \\d+\\.\\d+ ms\\)\\n$`),
    );
    await expect.poll(() => server.log.at(-1)?.status).toBe('DEADLINE_EXCEEDED');
  });

  test("by the server's shutdown (dist/ bundles): the grace period, then UNAVAILABLE in words, exit 78", async () => {
    const spawned = await spawnServer(['-grace', '0.6', '-workers', '1']);
    const args = ['-server_addr', spawned.address, '-stream', 'server', '-messages', '100', '-stream_interval', '0.05', '-timeout', '20'];
    const child = spawn(process.execPath, [bundle('client'), ...args], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const r = { stdout: '', stderr: '', code: once(child, 'close').then(([code]) => code as number) };
      child.stdout.setEncoding('utf8').on('data', (d: string) => (r.stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (r.stderr += d));
      await expect.poll(() => r.stdout, { timeout: 10_000 }).toContain('message 2:');
      spawned.child.kill('SIGTERM');
      expect(await r.code).toBe(78);
      const received = lines(r.stdout).length;
      expect(received).toBeGreaterThan(1);
      expect(received).toBeLessThan(100);
      expect(r.stderr).toMatch(new RegExp(`^stream ended after ${received} of 100 messages: UNAVAILABLE: ${SHUTTING_DOWN} \\(from ${hostname()}, \\d+\\.\\d+ ms\\)\\n$`));
      expect(await spawned.exited).toBe(0);
      expect(spawned.stdout()).toContain(`"status":"UNAVAILABLE","details":"${SHUTTING_DOWN}","messages_received":1,"messages_sent":${received}`);
    } finally {
      child.kill();
      await spawned.stop();
    }
  });
});

describe('expectations', () => {
  test('-expect_messages: exactly N messages in every stream (and OK, unless -expect_code says otherwise)', async () => {
    const met = await client([...at(), '-stream', 'server', '-messages', '4', '-expect_messages', '4']);
    expect({ code: met.code, last: lines(met.stdout).at(-1) }).toEqual({ code: 0, last: 'expectations met by the stream' });
    const missed = await client([...at(), '-stream', 'server', '-messages', '4', '-expect_messages', '5']);
    expect(missed.code).toBe(1);
    expect(lines(missed.stderr)).toEqual(['expectation not met: stream 1: got 4 messages, expected 5']);
    // a cut stream: how it ended and how far it got, in one command
    const cut = await client([...at(), '-stream', 'bidi', '-messages', '5', ...FAIL_AFTER(2), '-expect_code', 'UNAVAILABLE', '-expect_messages', '2']);
    expect(cut.code).toBe(0);
    const notOk = await client([...at(), '-stream', 'bidi', '-messages', '5', ...FAIL_AFTER(2), '-expect_messages', '2']);
    expect(lines(notOk.stderr).at(-1)).toBe('expectation not met: stream 1: ended UNAVAILABLE, expected OK');
  });

  test('-retry_on sends a stream again only while no reply has come', async () => {
    const backoff = ['-backoff_initial', '0.05', '-backoff_jitter', '0', '-retry_on', 'UNAVAILABLE', '-timeout', '0.5', '-json'];
    const before = await client([...at(), '-stream', 'server', '-messages', '3', ...FAIL_AFTER(0), ...backoff]);
    expect(before.json().requests[0]!.attempts).toBeGreaterThan(1);
    const after = await client([...at(), '-stream', 'server', '-messages', '3', ...FAIL_AFTER(1), ...backoff]);
    expect(after.json().requests[0]).toMatchObject({ attempts: 1, status: 'UNAVAILABLE', messages: [expect.objectContaining({ message: 'Hello world 1' })] });
  });
});

describe('-json', () => {
  test('documents of every stream shape validate against the schema; a stream document without its messages does not', async () => {
    const runs = await Promise.all([
      client([...at(), '-json', '-stream', 'server', '-messages', '3']),
      client([...at(), '-json', '-stream', 'bidi', '-messages', '3', ...FAIL_AFTER(1)]),
      client([...at(), '-json', '-stream', 'server', '-messages', '5', '-stream_interval', '0.6', '-timeout', '1']),
      client([...at(), '-json', '-stream', 'bidi', '-count', '2', '-expect_messages', '10', '-expect_code', 'OK']),
      client(['-server_addr', 'localhost:1', '-json', '-stream', 'server', '-timeout', '0.2']),
    ]);
    const docs = runs.map((r) => r.json());
    for (const doc of docs) expectValid(doc);
    expect(docs.map((d) => d.exit_code)).toEqual([0, 78, 68, 0, 68]);
    expect(docs[0]).toMatchObject({
      method: '/helloworld.GreeterStream/SayHelloStream',
      name: 'world',
      stream: { kind: 'server', messages: 3, interval_ms: 0 },
      summary: { messages: { asked: 3, received: 3 } },
      expectations: null,
    });
    expect(docs[0]!.requests[0]).toMatchObject({ hostname: 'pod-a', answered_by: 'server', message: 'Hello world 3', ok: true });
    expect(docs[0]!.requests[0]!.messages!.map(({ index, message, hostname }) => ({ index, message, hostname }))).toEqual([
      { index: 1, message: 'Hello world 1', hostname: 'pod-a' },
      { index: 2, message: 'Hello world 2', hostname: 'pod-a' },
      { index: 3, message: 'Hello world 3', hostname: 'pod-a' },
    ]);
    expect(docs[2]!.requests[0]).toMatchObject({ status: 'DEADLINE_EXCEEDED', answered_by: 'server', hostname: 'pod-a' });
    expect(docs[3]!.expectations).toMatchObject({ met: true, messages: 10 });
    expect(docs[4]!.requests[0]).toMatchObject({ reached: false, messages: [] });

    const noMessages = structuredClone(docs[0]!) as JsonDocument;
    delete noMessages.requests[0]!.messages;
    expect(validate(noMessages)).toBe(false);
    const unaryWithStream = structuredClone(docs[0]!) as JsonDocument;
    unaryWithStream.method = '/helloworld.Greeter/SayHello';
    expect(validate(unaryWithStream)).toBe(false);
  });
});

describe('a stream a proxy resets once replies have begun (as Envoy does when a route timeout fires)', () => {
  test('RST_STREAM NO_ERROR before any status: INTERNAL, as the gRPC spec maps it, with the replies before it', async () => {
    const h2 = createH2Server();
    h2.on('stream', (stream) => {
      stream.on('error', () => {});
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', hostname: 'up' });
      stream.write(helloReplyFrame('one'));
      setTimeout(() => stream.destroy(), 100); // node:http2 resets with NO_ERROR
    });
    await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
    try {
      const r = await client(['-server_addr', `127.0.0.1:${(h2.address() as AddressInfo).port}`, '-stream', 'server', '-messages', '5', '-timeout', '10']);
      expect(r.code).toBe(64 + 13);
      expect(r.stdout).toMatch(/^message 1: one \(from up, /);
      expect(r.stderr).toMatch(/^stream ended after 1 of 5 messages: INTERNAL: the stream was reset before its status \(HTTP\/2 error NO_ERROR\) \(from up, /);
    } finally {
      await new Promise((resolve) => h2.close(resolve));
    }
  });
});

describe('-keepalive', () => {
  test('PINGs while a stream is quiet (a node:http2 server counts them); none without the flag', async () => {
    // a server that sends one reply, then nothing for 1.2 s, then the second and the status
    const pings: number[] = [];
    const h2 = createH2Server();
    h2.on('session', (session) => session.on('ping', () => pings.push(performance.now())));
    h2.on('stream', (stream) => {
      stream.on('error', () => {});
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', hostname: 'h2' }, { waitForTrailers: true });
      stream.write(helloReplyFrame('one'));
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      setTimeout(() => stream.end(helloReplyFrame('two')), 1200);
    });
    await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
    const address = `127.0.0.1:${(h2.address() as AddressInfo).port}`;
    try {
      const kept = await client(['-server_addr', address, '-stream', 'server', '-messages', '2', '-timeout', '10', '-keepalive', '0.25', '-expect_messages', '2']);
      expect(kept.code).toBe(0);
      expect(pings.length).toBeGreaterThanOrEqual(2);
      pings.length = 0;
      const plain = await client(['-server_addr', address, '-stream', 'server', '-messages', '2', '-timeout', '10']);
      expect(plain.code).toBe(0);
      expect(pings).toEqual([]);
    } finally {
      await new Promise((resolve) => h2.close(resolve));
    }
  });
});

describe('the command line', () => {
  test.each([
    [['-messages', '3'], '-messages needs -stream server or -stream bidi'],
    [['-expect_messages', '3'], '-expect_messages needs -stream server or -stream bidi'],
    [['-stream', 'client'], 'invalid value "client" for -stream: want server or bidi'],
    [['-stream', 'server', '-health'], '-stream calls GreeterStream: not with -health'],
    [['-stream', 'server', '-messages', '0'], 'invalid value "0" for -messages: want 1 to 1000000'],
    [['-keepalive', '0.01'], 'invalid value "0.01" for -keepalive: want 0.1 to 86400'],
  ])('%j: exit 2, %s', async (args, message) => {
    const r = await client(args);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 2, stderr: `client: ${message}\n` });
  });
});
