// Issue 16, HTTP health on the gRPC port: GET /healthz (200 `ok` while the process serves) and GET /readyz
// (200 `ok`, 503 `draining` once shutdown has begun) for Kubernetes `httpGet` probes and load-balancer health
// checks, over HTTP/1.1 (plaintext: told from the first bytes; TLS: ALPN http/1.1 or none) and over HTTP/2.
// Everything else over HTTP/1.1 is refused in words; HTTP/2 is served as before. Servers in-process
// (test/helpers/server.ts), real sockets on loopback; every wait bounded.
import { spawn } from 'node:child_process';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { testCa } from '../src/generated/test-pki.ts';
import { CLIENT_PREFACE, encodeSettings, FrameType } from '../src/h2/frames.ts';
import { refusal } from '../src/server/refusals.ts';
import { greeterClient, sayHello } from './helpers/grpc-js-client.ts';
import { http1Connection, http1Exchange, http1Request, type Http1Answer } from './helpers/http1.ts';
import { closeRawH2Connections, RawH2 } from './helpers/raw-h2.ts';
import { h2Session } from './helpers/raw-grpc.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

let plain: TestServer;
let secure: TestServer;
beforeAll(async () => {
  [plain, secure] = await Promise.all([startTestServer(), startTestServer({ useTls: true })]);
});
afterAll(() => {
  plain?.forceShutdown();
  secure?.forceShutdown();
});

/** A server of the test's own, ended when the test ends. */
async function ownServer(overrides: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  const server = await startTestServer(overrides);
  onTestFinished(() => server.forceShutdown());
  return server;
}

/** A SayHello on a new connection succeeds: whatever the case did, the server serves. */
async function expectServing(server: TestServer, tls = false): Promise<void> {
  const client = greeterClient(server.address, tls ? {} : undefined);
  try {
    const answer = await sayHello(client, 'still there');
    expect(answer.err).toBeNull();
    expect(answer.reply?.message).toBe('Hello still there');
  } finally {
    client.close();
  }
}

const seen = (a: Http1Answer) => ({ status: a.status, body: a.body, end: a.end, length: a.headers['content-length'], connection: a.headers.connection });

const REFUSED_WORDS = /^This port serves gRPC \(HTTP\/2, content-type application\/grpc\)[^\n]*\nOver HTTP\/1\.1 it answers only GET \/healthz and GET \/readyz\.\n$/;

describe('HTTP/1.1, plaintext, on the gRPC port', () => {
  // proves: the kubelet's httpGet request gets 200 `ok` on both paths, with its length, and the server closes the connection
  it.each(['/healthz', '/readyz'])('GET %s: 200 ok, Connection: close', async (path) => {
    const a = await http1Exchange(plain.address, http1Request(path));
    expect(seen(a)).toEqual({ status: 200, body: 'ok\n', end: 'closed', length: '3', connection: 'close' });
    expect(a.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(a.headers.date).toMatch(/ GMT$/);
  });

  // proves: HEAD gets GET's status and length, and no body
  it.each(['/healthz', '/readyz'])('HEAD %s: 200, the length, no body', async (path) => {
    const a = await http1Exchange(plain.address, http1Request(path, 'HEAD'));
    expect(seen(a)).toEqual({ status: 200, body: '', end: 'closed', length: '3', connection: 'close' });
  });

  // proves: what load balancers and people send also works: a query string, HTTP/1.0, bare LF line ends (nc, telnet)
  it('a query string, HTTP/1.0 and bare LF line ends are answered too', async () => {
    for (const request of ['GET /healthz?probe=lb HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /readyz HTTP/1.0\r\n\r\n', 'GET /healthz HTTP/1.1\nHost: x\n\n']) {
      expect({ request, ...seen(await http1Exchange(plain.address, request)) }).toMatchObject({ request, status: 200, body: 'ok\n', end: 'closed' });
    }
  });

  // proves: the request split anywhere, down to one byte a write, is still read whole (the first bytes, then the head)
  it('a request written one byte at a time is answered', async () => {
    const bytes = Buffer.from(http1Request('/healthz'), 'latin1');
    const a = await http1Connection(plain.address, {}, (socket) => {
      let at = 0;
      const next = () => {
        if (at < bytes.length && !socket.destroyed) socket.write(bytes.subarray(at, ++at), next);
      };
      next();
    });
    expect(seen(a)).toMatchObject({ status: 200, body: 'ok\n', end: 'closed' });
  });

  // proves: anything but health over HTTP/1.1 (another path, another method, a gRPC call, an h2c upgrade) is refused in words, 505, and the connection closed
  it.each([
    ['GET /', http1Request('/')],
    ['GET /healthz/', http1Request('/healthz/')],
    ['POST /healthz', http1Request('/healthz', 'POST', 'Content-Length: 0\r\n')],
    ['a gRPC call over HTTP/1.1', 'POST /helloworld.Greeter/SayHello HTTP/1.1\r\nHost: x\r\nContent-Type: application/grpc\r\nContent-Length: 12\r\n\r\n\0\0\0\0\x07\n\x05world'],
    ['an h2c upgrade', 'GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n'],
  ])('%s: 505, in words', async (_what, request) => {
    const a = await http1Exchange(plain.address, request);
    expect([a.status, a.end, a.headers.connection]).toEqual([505, 'closed', 'close']);
    expect(a.body).toMatch(REFUSED_WORDS);
    expect(Number(a.headers['content-length'])).toBe(Buffer.byteLength(a.body));
  });

  // proves: a head that is not HTTP/1 (a field line without a colon, a bad version) is 400, not a guess
  it.each([
    ['a field line without a colon', 'GET /healthz HTTP/1.1\r\nHost x\r\n\r\n'],
    ['a request line with no version', 'GET /healthz\r\n\r\n'],
  ])('%s: 400', async (_what, request) => {
    const a = await http1Exchange(plain.address, request);
    expect([a.status, a.end]).toEqual([400, 'closed']);
    expect(a.body).toMatch(REFUSED_WORDS);
  });

  // proves: garbage, neither the HTTP/2 preface nor an HTTP/1 request line, still gets HTTP/2's GOAWAY PROTOCOL_ERROR
  it('garbage still gets GOAWAY PROTOCOL_ERROR', async () => {
    const client = await RawH2.open(plain.port, { preface: false });
    onTestFinished(closeRawH2Connections);
    client.write(Buffer.from('\x00\xff\x13\x37 not HTTP at all\r\n\r\n', 'latin1'));
    expect(await client.goaway()).toEqual({ lastStreamId: 0, code: 'PROTOCOL_ERROR' });
    await client.waitClosed();
    await expectServing(plain);
  });

  // proves: the HTTP/2 preface cut into single bytes ("P" could begin POST) is still HTTP/2, and served
  it('the HTTP/2 preface written one byte at a time is still HTTP/2', async () => {
    const socket = netConnect({ host: '127.0.0.1', port: plain.port });
    onTestFinished(() => void socket.destroy());
    const bytes = Buffer.concat([CLIENT_PREFACE, encodeSettings([])]);
    let at = 0;
    const next = () => {
      if (at < bytes.length && !socket.destroyed) socket.write(bytes.subarray(at, ++at), next);
    };
    socket.once('connect', next);
    const received: Buffer[] = [];
    socket.on('data', (d: Buffer) => received.push(d));
    socket.on('error', () => {});
    await expect.poll(() => Buffer.concat(received).length >= 9, { timeout: 5000 }).toBe(true);
    expect(Buffer.concat(received)[3]).toBe(FrameType.SETTINGS); // the server's preface
  });

  // proves: a head over 8 KiB is cut with 431, and the server goes on serving
  it('a head over 8 KiB: 431, closed, the server serves the next call', async () => {
    const a = await http1Exchange(plain.address, http1Request('/healthz', 'GET', `X-Big: ${'a'.repeat(9000)}\r\n`));
    expect([a.status, a.end]).toEqual([431, 'closed']);
    await expectServing(plain);
  });

  // proves: a huge request (1 MB, no head end in sight) costs a 431 and a close, not the megabyte held
  it('1 MB of header bytes: 431, closed, the server serves the next call', async () => {
    const a = await http1Exchange(plain.address, `GET /healthz HTTP/1.1\r\nX-Big: ${'a'.repeat(1024 * 1024)}`);
    expect(a.status === 431 || a.end === 'reset').toBe(true);
    expect(a.end).not.toBe('timeout');
    await expectServing(plain);
  });

  // proves: a head that stops coming is cut at the handshake timeout (408), a silent connection closed, and the server serves
  it('a slow head: 408 at the handshake timeout; a silent connection: closed', async () => {
    const server = await ownServer({ limits: { handshakeTimeoutMs: 300 } });
    const [slow, silent] = await Promise.all([
      http1Exchange(server.address, 'GET /healthz HTTP/1.1\r\nHost: x\r\n', { waitMs: 10_000 }),
      http1Exchange(server.address, Buffer.alloc(0), { waitMs: 10_000 }),
    ]);
    expect([slow.status, slow.end]).toEqual([408, 'closed']);
    expect([silent.raw.length, silent.end]).toEqual([0, 'closed']);
    await expectServing(server);
  });

  // proves: connections still on their first bytes or their head are counted: shutdown ends them (with no handshake limit, nothing else would)
  it('shutdown ends HTTP/1 connections and connections that have said nothing yet', async () => {
    const server = await ownServer({ limits: { handshakeTimeoutMs: 0 } });
    let opened = 0;
    const open = (request: string) =>
      http1Connection(server.address, { waitMs: 20_000 }, (socket) => {
        opened++;
        socket.write(request);
      });
    const pending = [open(''), open('G'), open('GET /healthz HTTP/1.1\r\nHost: x\r\n')];
    await expect.poll(() => opened, { timeout: 5000 }).toBe(3);
    await new Promise((resolve) => setTimeout(resolve, 100)); // the server has read what was sent
    expect(await server.shutdown(10_000)).toBe(true);
    for (const a of await Promise.all(pending)) expect(a.end).not.toBe('timeout');
  });

  // proves: the commonest HTTP client of all gets it (skipped, saying so, where curl is missing)
  // (curl runs asynchronously: the server it asks is in this process)
  it('curl --http1.1 http://127.0.0.1:PORT/healthz', async () => {
    const curl = await run('curl', ['--version']);
    if (curl.error) {
      console.warn(`server-http-health.test.ts: curl not found (${curl.error}): SKIPPING the curl check`);
      return;
    }
    const r = await run('curl', ['-sS', '--http1.1', '--max-time', '10', '-w', '\n%{http_code} %{http_version}', `http://${plain.address}/healthz`]);
    expect(r).toEqual({ stdout: 'ok\n\n200 1.1', stderr: '', code: 0 });
  });
});

/** Runs a program to its end (killed after 15 s), without blocking this process' event loop. */
function run(file: string, args: string[]): Promise<{ stdout: string; stderr: string; code: number | null; error?: string }> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 15_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => resolve({ stdout, stderr, code: null, error: err.message }));
    child.on('close', (code) => resolve({ stdout, stderr, code }));
  });
}

describe('HTTP/1.1 over TLS (the kubelet\'s HTTPS probe offers no ALPN)', () => {
  // proves: without ALPN and with ALPN http/1.1, TLS gets HTTP/1.1 health; the ALPN agreed is as expected
  it.each([
    ['no ALPN', undefined, false],
    ['ALPN http/1.1', ['http/1.1'], 'http/1.1'],
  ] as const)('%s: GET and HEAD /healthz and /readyz are 200', async (_what, alpn, agreed) => {
    for (const method of ['GET', 'HEAD']) {
      for (const path of ['/healthz', '/readyz']) {
        const a = await http1Exchange(secure.address, http1Request(path, method), { tls: { alpn: alpn ? [...alpn] : undefined } });
        expect({ method, path, alpn: a.alpn, ...seen(a) }).toEqual({ method, path, alpn: agreed, status: 200, body: method === 'GET' ? 'ok\n' : '', end: 'closed', length: '3', connection: 'close' });
      }
    }
  });

  // proves: over TLS too, anything else over HTTP/1.1 is refused in words
  it('no ALPN, GET /: 505, in words', async () => {
    const a = await http1Exchange(secure.address, http1Request('/'), { tls: {} });
    expect([a.status, a.end]).toEqual([505, 'closed']);
    expect(a.body).toMatch(REFUSED_WORDS);
    await expectServing(secure, true);
  });

  // proves: a client offering h2 and http/1.1 (curl, browsers) gets h2, and HTTP/2 health
  it('ALPN h2 and http/1.1: h2 is chosen, and GET /healthz over it is 200', async () => {
    const session = await h2Session(secure.address, { ca: Buffer.from(testCa) });
    onTestFinished(() => void session.destroy());
    expect(session.alpnProtocol).toBe('h2');
    expect(await h2Get(session, '/healthz')).toEqual({ status: 200, body: 'ok\n', type: 'text/plain; charset=utf-8' });
  });
});

/** GET (or HEAD) `path` over an HTTP/2 session. */
function h2Get(session: ClientHttp2Session, path: string, method = 'GET'): Promise<{ status: number; body: string; type: unknown }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': method, ':path': path }, { endStream: true });
    const timer = setTimeout(() => reject(new Error(`no answer to ${method} ${path}`)), 5000);
    let status = 0;
    let type: unknown;
    let body = '';
    stream.on('response', (h) => {
      status = Number(h[':status']);
      type = h['content-type'];
    });
    stream.setEncoding('utf8').on('data', (d: string) => (body += d));
    stream.on('end', () => {
      clearTimeout(timer);
      resolve({ status, body, type });
    });
    stream.on('error', reject);
  });
}

describe('HTTP/2 (h2c) on the gRPC port', () => {
  let session: ClientHttp2Session;
  beforeAll(() => {
    session = h2connect(`http://${plain.address}`);
    session.on('error', () => {});
  });
  afterAll(() => session?.destroy());

  // proves: node:http2's GET /healthz and /readyz get 200 `ok` where any other non-gRPC request gets 415
  it.each(['/healthz', '/readyz'])('GET %s: 200 ok', async (path) => {
    expect(await h2Get(session, path)).toEqual({ status: 200, body: 'ok\n', type: 'text/plain; charset=utf-8' });
  });

  it('HEAD /healthz: 200, no body; GET / is still refused (415, in words)', async () => {
    expect(await h2Get(session, '/healthz', 'HEAD')).toEqual({ status: 200, body: '', type: 'text/plain; charset=utf-8' });
    const other = await h2Get(session, '/');
    expect(other.status).toBe(415);
    expect(other.body).toMatch(/^This port serves gRPC/);
  });

  // proves: the front door's answer to HTTP/2 GET /readyz follows the draining state (over a real connection the
  // state only shows in the 10 ms between NOT_SERVING and GOAWAY, too short to hit on purpose)
  it('GET /readyz is 503 draining once shutdown has begun; /healthz stays 200; a gRPC call to /readyz is not health', () => {
    const body = (draining: boolean, headers: Record<string, string>) => {
      const r = refusal({ ':method': 'GET', ...headers }, new Set(), () => draining);
      return [r?.fields.find(([n]) => n === ':status')?.[1], r?.body?.toString()];
    };
    expect(body(false, { ':path': '/readyz' })).toEqual(['200', 'ok\n']);
    expect(body(true, { ':path': '/readyz' })).toEqual(['503', 'draining\n']);
    expect(body(true, { ':path': '/healthz' })).toEqual(['200', 'ok\n']);
    expect(body(false, { ':path': '/readyz', 'content-type': 'application/grpc' })).toEqual(['200', undefined]); // UNIMPLEMENTED
  });
});

describe('during a drain', () => {
  // proves: once shutdown has begun (health NOT_SERVING), /readyz answers 503 `draining` over HTTP/1.1 while
  // /healthz stays 200, on connections accepted before the listener closed; the call in flight still finishes
  it('/readyz is 503 draining, /healthz 200, while a long call finishes', async () => {
    const server = await ownServer();
    const before = await http1Exchange(server.address, http1Request('/readyz'));
    expect(seen(before)).toMatchObject({ status: 200, body: 'ok\n' });

    const client = greeterClient(server.address);
    onTestFinished(() => client.close());
    const long = sayHello(client, 'long', { metadata: { 'x-helloworld-delay-ms': '3000' }, deadlineMs: 20_000 });
    await expect.poll(() => server.inFlight(), { timeout: 5000 }).toBe(1);

    // connections open before shutdown: one has sent nothing yet, one half its head; each sends the rest after
    const rests: Array<() => void> = [];
    const probe = (first: string, rest: string) =>
      http1Connection(server.address, { waitMs: 10_000 }, (socket) => {
        socket.write(first);
        rests.push(() => socket.write(rest));
      });
    const answers = Promise.all([probe('', http1Request('/readyz')), probe('GET /readyz HTTP/1.1\r\n', 'Host: x\r\n\r\n'), probe('', http1Request('/healthz'))]);
    await expect.poll(() => rests.length, { timeout: 5000 }).toBe(3);
    await new Promise((resolve) => setTimeout(resolve, 100)); // the server has read what was sent

    const shutdown = server.shutdown(10_000);
    await new Promise((resolve) => setTimeout(resolve, 50)); // past NOT_SERVING's head start: the listener is closed, GOAWAY sent
    for (const rest of rests) rest();
    const [readyIdle, readyHalf, healthy] = await answers;
    expect(seen(readyIdle)).toMatchObject({ status: 503, body: 'draining\n', end: 'closed' });
    expect(seen(readyHalf)).toMatchObject({ status: 503, body: 'draining\n', end: 'closed' });
    expect(seen(healthy)).toMatchObject({ status: 200, body: 'ok\n', end: 'closed' });

    const answer = await long;
    expect(answer.err).toBeNull();
    expect(answer.reply?.message).toBe('Hello long');
    expect(await shutdown).toBe(true);
  });
});
