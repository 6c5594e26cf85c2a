// Issue 7, server under bad input: dist/server.js (plaintext and TLS, spawned as users run it) gets bytes
// no gRPC client would send. After each case the process must still be up and a good SayHello on a new
// connection must succeed. The counts (cases, crashes, next-call failures) go in the README.
import { connect as h2connect, constants as h2 } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeHeaders } from '../src/h2/hpack.ts';
import { greeterClient, sayHello } from './helpers/grpc-js-client.ts';
import { http1Exchange } from './helpers/http1.ts';
import { fdCount, settlesAtMost } from './helpers/process-stats.ts';
import {
  grpcFrame,
  grpcHeaders,
  h2Frame,
  h2Session,
  H2_EMPTY_SETTINGS,
  H2_PREFACE,
  helloRequest,
  rawExchange,
  rawRequest,
  splitAddress,
  type RawAnswer,
} from './helpers/raw-grpc.ts';
import { root, spawnServer, type SpawnedServer } from './helpers/spawn.ts';

const ca = readFileSync(`${root}certs/ca.pem`);
const MB = 1024 * 1024;
const GOAWAY = 0x7;

let plain: SpawnedServer;
let secure: SpawnedServer;
const tally = { cases: 0, crashes: 0, nextCallFailures: 0 };

beforeAll(async () => {
  // one process, so the fd counts below are those of the process that serves
  [plain, secure] = await Promise.all([spawnServer(['-workers', '1']), spawnServer(['-tls', '-workers', '1'])]);
});
afterAll(async () => {
  process.stdout.write(`reliability-server: ${tally.cases} cases, ${tally.crashes} crashes, ${tally.nextCallFailures} next-call failures\n`);
  for (const s of [plain, secure]) s?.child.kill('SIGKILL');
});

const alive = (s: SpawnedServer) => s.child.exitCode === null && s.child.signalCode === null;

/** After every case: the process is up and a good SayHello on a fresh connection succeeds. */
async function nextCallSucceeds(s: SpawnedServer): Promise<void> {
  tally.cases++;
  if (!alive(s)) {
    tally.crashes++;
    throw new Error(`server died (exit ${s.child.exitCode}, ${s.child.signalCode}): ${s.stderr()}`);
  }
  const client = greeterClient(s.address, s === secure ? {} : undefined);
  try {
    const answer = await sayHello(client, 'next', { deadlineMs: 5000 });
    if (answer.err || answer.reply?.message !== 'Hello next') tally.nextCallFailures++;
    expect(answer.err).toBeNull();
    expect(answer.reply?.message).toBe('Hello next');
  } finally {
    client.close();
  }
}

/** The HTTP/2 frame types in what a server sent back over a raw connection. */
function frameTypes(bytes: Buffer): number[] {
  const types: number[] = [];
  for (let at = 0; at + 9 <= bytes.length; ) {
    types.push(bytes[at + 3]!);
    at += 9 + bytes.readUIntBE(at, 3);
  }
  return types;
}

async function withSession<T>(s: SpawnedServer, f: (session: Awaited<ReturnType<typeof h2Session>>) => Promise<T>): Promise<T> {
  const session = await h2Session(s.address, s === secure ? { ca } : undefined);
  try {
    return await f(session);
  } finally {
    session.destroy();
  }
}

const call = (s: SpawnedServer, ...args: Parameters<typeof rawRequest> extends [unknown, ...infer R] ? R : never) =>
  withSession(s, (session) => rawRequest(session, ...args));

function expectStatus(answer: RawAnswer, code: number, message?: RegExp): void {
  expect(answer.timedOut, 'the server answered').toBe(false);
  expect(answer.httpStatus).toBe(200);
  expect(answer.grpcStatus).toBe(code);
  if (message) expect(answer.grpcMessage).toMatch(message);
}

type Case = [name: string, target: () => SpawnedServer, run: (s: SpawnedServer) => Promise<void>];


const connectionLevel: Case[] = [
  ['raw garbage bytes: GOAWAY and close', () => plain, async (s) => {
    const r = await rawExchange(s.address, Buffer.from('\x00\xff\x13\x37 definitely not HTTP/2 \r\n\r\n'.repeat(20), 'latin1'));
    expect(r.end).not.toBe('timeout');
    expect(frameTypes(r.received)).toContain(GOAWAY);
  }],
  ['an HTTP/1.1 request for anything but health: 505, in words, and close', () => plain, async (s) => {
    const r = await http1Exchange(s.address, `GET / HTTP/1.1\r\nHost: ${s.address}\r\nConnection: keep-alive\r\n\r\n`);
    expect([r.status, r.end]).toEqual([505, 'closed']);
    expect(r.body).toMatch(/^This port serves gRPC/);
  }],
  ['an HTTP/1.1 upgrade to h2c: 505, in words, and close (the upgrade is not taken)', () => plain, async (s) => {
    const r = await http1Exchange(s.address, `GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n`);
    expect([r.status, r.end]).toEqual([505, 'closed']);
    expect(r.body).toMatch(/^This port serves gRPC/);
  }],
  ['an HTTP/1.1 head over 8 KiB: 431 and close', () => plain, async (s) => {
    const r = await http1Exchange(s.address, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(9000)}\r\n\r\n`);
    expect([r.status, r.end]).toEqual([431, 'closed']);
  }],
  ['an HTTP/1.1 head that is not one (a field line without a colon): 400 and close', () => plain, async (s) => {
    const r = await http1Exchange(s.address, 'GET /healthz HTTP/1.1\r\nHost x\r\n\r\n');
    expect([r.status, r.end]).toEqual([400, 'closed']);
  }],
  ['a TLS ClientHello on the plaintext port: the client fails fast', () => plain, async (s) => {
    const [host, port] = splitAddress(s.address);
    const error = await new Promise<string>((resolve) => {
      const socket = tlsConnect({ host, port, ca, servername: 'localhost', ALPNProtocols: ['h2'] });
      const timer = setTimeout(() => resolve('timeout'), 3000);
      socket.on('secureConnect', () => resolve('connected'));
      socket.on('error', (err) => resolve(String(err)));
      socket.on('close', () => clearTimeout(timer));
    });
    expect(error).toMatch(/wrong version number|packet length|ECONNRESET|socket hang up/);
  }],
  ['an HTTP/2 preface followed by junk: GOAWAY "SETTINGS expected"', () => plain, async (s) => {
    const r = await rawExchange(s.address, Buffer.concat([H2_PREFACE, Buffer.from('junk junk junk junk junk junk')]));
    expect(r.end).not.toBe('timeout');
    expect(frameTypes(r.received)).toContain(GOAWAY);
  }],
  ['a preface, SETTINGS, then a frame whose length lies (16 MB announced, 10 bytes sent, then FIN)', () => plain, async (s) => {
    const lie = h2Frame(0x0, 0, 1, Buffer.alloc(10), 0xffffff);
    const r = await rawExchange(s.address, Buffer.concat([H2_PREFACE, H2_EMPTY_SETTINGS, lie]), 1000);
    expect(frameTypes(r.received)).toContain(0x4); // the server's SETTINGS: it read the preface
  }],
  ['a preface, SETTINGS, then DATA on a stream that was never opened: GOAWAY', () => plain, async (s) => {
    const r = await rawExchange(s.address, Buffer.concat([H2_PREFACE, H2_EMPTY_SETTINGS, h2Frame(0x0, 0x1, 3, Buffer.from('hi'))]));
    expect(r.end).not.toBe('timeout');
    expect(frameTypes(r.received)).toContain(GOAWAY);
  }],
  ['plaintext HTTP/2 on the TLS port: no answer, connection closed', () => secure, async (s) => {
    const r = await rawExchange(s.address, Buffer.concat([H2_PREFACE, H2_EMPTY_SETTINGS]));
    expect(r.end).not.toBe('timeout');
    expect(r.received.length === 0 || r.received[0] === 0x15).toBe(true); // nothing, or a TLS alert
    // node:http2 in cleartext (h2c) against the TLS port: the request fails, it does not hang
    const session = h2connect(`http://${s.address}`);
    session.on('error', () => {});
    const answer = await rawRequest(session, grpcHeaders(), [grpcFrame(helloRequest('x'))], { waitMs: 3000 });
    session.destroy();
    expect(answer.timedOut).toBe(false);
    expect(answer.httpStatus).toBe(0);
    expect(answer.error).toBeDefined();
  }],
  ['raw garbage on the TLS port: connection closed', () => secure, async (s) => {
    const r = await rawExchange(s.address, Buffer.from('garbage, not a ClientHello\r\n'.repeat(10)));
    expect(r.end).not.toBe('timeout');
  }],
  ['TLS offering only an ALPN protocol the server lacks (spdy/3.1): refused with "no application protocol"', () => secure, async (s) => {
    const [host, port] = splitAddress(s.address);
    const outcome = await new Promise<string>((resolve) => {
      const socket = tlsConnect({ host, port, ca, servername: 'localhost', ALPNProtocols: ['spdy/3.1'] });
      const timer = setTimeout(() => {
        socket.destroy();
        resolve('timeout');
      }, 3000);
      socket.on('error', (err) => resolve(String(err)));
      socket.on('close', () => {
        clearTimeout(timer);
        resolve('closed');
      });
    });
    expect(outcome).toMatch(/no application protocol|closed/);
  }],
  ['TLS with ALPN http/1.1 only, or none: HTTP/1.1 health, anything else 505 in words', () => secure, async (s) => {
    for (const alpn of [['http/1.1'], undefined]) {
      const health = await http1Exchange(s.address, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', { tls: { alpn } });
      expect([health.status, health.body, health.end]).toEqual([200, 'ok\n', 'closed']);
      const other = await http1Exchange(s.address, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', { tls: { alpn } });
      expect([other.status, other.end]).toEqual([505, 'closed']);
      expect(other.body).toMatch(/^This port serves gRPC/);
    }
  }],
];

const streamLevel: Case[] = [
  ['wrong content-type: HTTP 415', () => plain, async (s) => {
    const answer = await call(s, grpcHeaders(undefined, { 'content-type': 'application/json' }), [Buffer.from('{"name":"x"}')]);
    expect(answer.httpStatus).toBe(415);
  }],
  ['no content-type and GET: HTTP 415', () => plain, async (s) => {
    const answer = await call(s, { ':method': 'GET', ':path': '/helloworld.Greeter/SayHello' });
    expect(answer.httpStatus).toBe(415);
  }],
  ['a truncated gRPC frame (3 of the 5 prefix bytes, then END_STREAM): a status, not a hang', () => plain, async (s) => {
    expectStatus(await call(s, grpcHeaders(), [grpcFrame(helloRequest('x')).subarray(0, 3)]), 12);
  }],
  ['a truncated gRPC message (prefix says 5 bytes, 3 arrive, END_STREAM): a status', () => plain, async (s) => {
    expectStatus(await call(s, grpcHeaders(), [grpcFrame(helloRequest('xyz')).subarray(0, 8)]), 12);
  }],
  ['a length prefix that lies (1000 announced, 3 sent, stream left open): DEADLINE_EXCEEDED at the deadline', () => plain, async (s) => {
    const started = performance.now();
    const answer = await call(s, grpcHeaders(undefined, { 'grpc-timeout': '300m' }), [grpcFrame(helloRequest('x'), { length: 1000 })], { keepOpen: true, waitMs: 5000 });
    expect(answer.grpcStatus).toBe(4);
    expect(performance.now() - started).toBeLessThan(3000);
  }],
  ['a length prefix that lies short (2 announced, the rest read as a 2 GB frame): RESOURCE_EXHAUSTED', () => plain, async (s) => {
    expectStatus(await call(s, grpcHeaders(), [grpcFrame(helloRequest('xyzxyz'), { length: 2 })]), 8, /larger than max/);
  }],
  ['a length prefix of 4 GB: RESOURCE_EXHAUSTED at once, nothing buffered', () => plain, async (s) => {
    expectStatus(await call(s, grpcHeaders(), [grpcFrame(Buffer.alloc(16), { length: 0xffffffff })], { keepOpen: true }), 8, /larger than max/);
  }],
  ['a 5 MB message (over the 4 MB receive limit): RESOURCE_EXHAUSTED, and the access log says so', () => plain, async (s) => {
    expectStatus(await call(s, grpcHeaders(), [grpcFrame(helloRequest(Buffer.alloc(5 * MB, 'a')))]), 8, /larger than max \(\d+ vs 4194304\)/);
    await expect.poll(() => s.stdout()).toMatch(/"code":8,"status":"RESOURCE_EXHAUSTED","details":"Received message larger than max/);
  }],
  ['a 5 MB name from grpc-js: RESOURCE_EXHAUSTED', () => plain, async (s) => {
    const client = greeterClient(s.address);
    const answer = await sayHello(client, 'n'.repeat(5 * MB));
    client.close();
    expect(answer.err?.code).toBe(8);
  }],
  ['a HelloRequest that is not protobuf (a varint cut short): INTERNAL, and the access log says so', () => plain, async (s) => {
    expectStatus(await call(s, grpcHeaders(), [grpcFrame(Buffer.from([0x0a, 0xff, 0xff, 0xff]))]), 13, /deserializing/);
    await expect.poll(() => s.stdout()).toMatch(/"code":13,"status":"INTERNAL","details":"Error deserializing request"/);
  }],
  ['HelloRequests that are not protobuf (bad wire types, unknown groups): INTERNAL', () => plain, async (s) => {
    for (const bytes of [[0x0a], [0x0b], [0x0c], [0x12, 0x05]]) {
      expectStatus(await call(s, grpcHeaders(), [grpcFrame(Buffer.from(bytes))]), 13, /deserializing/);
    }
  }],
  ['HelloRequests that protobufjs reads leniently (a length past the end, a varint where a string belongs): a status', () => plain, async (s) => {
    // grpc-go would answer INTERNAL; protobufjs (under grpc-js) decodes what it can. Either is an answer.
    for (const bytes of [[0x0a, 0xff, 0xff, 0xff, 0x0f], [0x0a, 0x05, 0x41], [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], [0x0f, 0x01]]) {
      const answer = await call(s, grpcHeaders(), [grpcFrame(Buffer.from(bytes))]);
      expect(answer.timedOut).toBe(false);
      expect([0, 13]).toContain(answer.grpcStatus);
    }
  }],
  ['a HelloRequest whose name is not UTF-8: answered (protobuf replaces the bytes)', () => plain, async (s) => {
    const answer = await call(s, grpcHeaders(), [grpcFrame(helloRequest(Buffer.from([0xff, 0xfe, 0xc3])))]);
    expectStatus(answer, 0);
  }],
  ['a 1 MB name: answered OK with the whole name', () => plain, async (s) => {
    const name = 'a'.repeat(MB);
    const answer = await call(s, grpcHeaders(), [grpcFrame(helloRequest(name))]);
    expectStatus(answer, 0);
    expect(answer.data.length).toBe(5 + 1 + 3 + 'Hello '.length + MB); // prefix, tag, 3-byte varint, message
  }],
  ['a 1 MB name over TLS, from grpc-js', () => secure, async (s) => {
    const client = greeterClient(s.address, {});
    const answer = await sayHello(client, 'b'.repeat(MB));
    client.close();
    expect(answer.err).toBeNull();
    expect(answer.reply?.message.length).toBe('Hello '.length + MB);
  }],
  ['two request messages on a unary call: UNIMPLEMENTED', () => plain, async (s) => {
    expectStatus(await call(s, grpcHeaders(), [grpcFrame(helloRequest('a')), grpcFrame(helloRequest('b'))]), 12);
  }],
  ['no request message at all: UNIMPLEMENTED', () => plain, async (s) => {
    expectStatus(await call(s, grpcHeaders(), []), 12);
  }],
  ['an unknown method: UNIMPLEMENTED', () => plain, async (s) => {
    expectStatus(await call(s, grpcHeaders('/helloworld.Greeter/SayGoodbye'), [grpcFrame(helloRequest('x'))]), 12, /does not implement the method \/helloworld.Greeter\/SayGoodbye/);
  }],
  ['an unknown service: UNIMPLEMENTED', () => plain, async (s) => {
    expectStatus(await call(s, grpcHeaders('/nope.Nope/SayHello'), [grpcFrame(helloRequest('x'))]), 12, /does not implement/);
  }],
  ['an unknown method over TLS: UNIMPLEMENTED', () => secure, async (s) => {
    expectStatus(await call(s, grpcHeaders('/helloworld.Greeter/Nope'), [grpcFrame(helloRequest('x'))]), 12);
  }],
  ['a path that is not a gRPC path: UNIMPLEMENTED', () => plain, async (s) => {
    expectStatus(await call(s, grpcHeaders('/../../etc/passwd'), [grpcFrame(helloRequest('x'))]), 12);
  }],
  ['a malformed grpc-timeout: INTERNAL', () => plain, async (s) => {
    expectStatus(await call(s, grpcHeaders(undefined, { 'grpc-timeout': 'soon' }), [grpcFrame(helloRequest('x'))]), 13, /grpc-timeout/);
  }],
  ['a compressed flag with gzip that is not gzip: INTERNAL', () => plain, async (s) => {
    expectStatus(await call(s, grpcHeaders(undefined, { 'grpc-encoding': 'gzip' }), [grpcFrame(Buffer.from('not gzip'), { compressed: true })]), 13, /decompress/);
  }],
  ['a compressed flag with an unsupported encoding: UNIMPLEMENTED', () => plain, async (s) => {
    expectStatus(await call(s, grpcHeaders(undefined, { 'grpc-encoding': 'br' }), [grpcFrame(Buffer.from('x'), { compressed: true })]), 12, /unsupported encoding/);
  }],
  ['a bad per-request override header: INVALID_ARGUMENT', () => plain, async (s) => {
    expectStatus(await call(s, grpcHeaders(undefined, { 'x-helloworld-delay-ms': '-1e309' }), [grpcFrame(helloRequest('x'))]), 3);
  }],
  ['8 KB of metadata: answered', () => plain, async (s) => {
    expectStatus(await call(s, grpcHeaders(undefined, { 'x-big': 'v'.repeat(8192) }), [grpcFrame(helloRequest('x'))]), 0);
  }],
  ['a stream reset by the client mid-message (RST_STREAM CANCEL)', () => plain, async (s) => {
    await withSession(s, async (session) => {
      const stream = session.request(grpcHeaders(), { endStream: false });
      stream.on('error', () => {});
      stream.write(grpcFrame(helloRequest('x'), { length: 100 }));
      await new Promise((r) => setTimeout(r, 50));
      stream.close(h2.NGHTTP2_CANCEL);
      await new Promise((r) => stream.once('close', r));
    });
  }],
  // HEADERS and RST_STREAM in one write: the server has a stream its client has already reset. For a
  // method grpc-js does not serve, forwarded to it, that once took the whole process down (grpc-js answered
  // a stream node:http2 had destroyed, and the throw escaped an event handler).
  ['HEADERS and RST_STREAM at once, 50 each for every kind of call', () => plain, async (s) => {
    const kinds: Array<[path: string, extra: Array<[string, string]>]> = [
      ['/helloworld.Greeter/Nope', []],
      ['/no.Such/Service', []],
      ['/helloworld.Greeter/SayHello', [['content-type', 'text/plain']]],
      ['/helloworld.Greeter/SayHello', []],
      ['/helloworld.Greeter/SayHello', [['grpc-encoding', 'gzip']]],
      ['/helloworld.Greeter/SayHello', [['grpc-timeout', 'soon']]],
      ['/grpc.health.v1.Health/Check', []],
      ['/grpc.health.v1.Health/Watch', []],
      ['/grpc.reflection.v1.ServerReflection/ServerReflectionInfo', []],
    ];
    const frames: Buffer[] = [H2_PREFACE, H2_EMPTY_SETTINGS];
    let id = 1;
    for (const [path, extra] of kinds) {
      const fields = new Map<string, string>([
        [':method', 'POST'],
        [':scheme', 'http'],
        [':path', path],
        [':authority', s.address],
        ['content-type', 'application/grpc'],
        ['te', 'trailers'],
        ...extra,
      ]);
      const block = encodeHeaders([...fields]);
      for (let i = 0; i < 50; i++, id += 2) {
        frames.push(h2Frame(0x1, 0x4, id, block), h2Frame(0x3, 0, id, Buffer.from([0, 0, 0, 8]))); // HEADERS END_HEADERS; RST_STREAM CANCEL
      }
    }
    await rawExchange(s.address, Buffer.concat(frames), 500);
    await new Promise((r) => setTimeout(r, 100)); // what the server does with them happens after the client has gone
  }],
  ['1000 waiting calls on one connection, then the socket destroyed: all 1000 logged CANCELLED', () => plain, async (s) => {
    const cancelled = () => s.stdout().split('"status":"CANCELLED"').length - 1;
    const before = cancelled();
    await withSession(s, async (session) => {
      for (let i = 0; i < 1000; i++) {
        const stream = session.request(grpcHeaders(undefined, { 'x-helloworld-delay-ms': '10000' }), { endStream: false });
        stream.on('error', () => {});
        stream.write(grpcFrame(helloRequest(`s${i}`)));
      }
      // a call after them, answered: the server reads a connection's streams in order, so all 1000 have started
      expect((await rawRequest(session, grpcHeaders(), [grpcFrame(helloRequest('last'))])).trailers['grpc-status']).toBe('0');
      session.socket.destroy();
    });
    await expect.poll(cancelled, { timeout: 20_000 }).toBe(before + 1000);
  }],
];

describe('the server under bad input stays up and serves the next good call', () => {
  for (const [name, target, run] of [...connectionLevel, ...streamLevel]) {
    it(name, async () => {
      const s = target();
      await run(s);
      await nextCallSucceeds(s);
    });
  }

  it('thousands of connections opened and dropped (plaintext and TLS), no socket left behind', { timeout: 60_000 }, async () => {
    const plainBefore = fdCount(plain.child.pid!);
    const secureBefore = fdCount(secure.child.pid!);
    await dropConnections(plain, 3000);
    await dropConnections(secure, 600);
    // every dropped connection's socket is closed on the server's side too
    expect(await settlesAtMost(() => fdCount(plain.child.pid!), plainBefore + 3, 10_000)).toBeLessThanOrEqual(plainBefore + 3);
    expect(await settlesAtMost(() => fdCount(secure.child.pid!), secureBefore + 3, 10_000)).toBeLessThanOrEqual(secureBefore + 3);
    await nextCallSucceeds(plain);
    await nextCallSucceeds(secure);
  });
});

/**
 * `count` connections, 100 at a time, each dropped a different way: right after connecting, after the
 * HTTP/2 preface, with a reset (RST) after the preface, mid-request on a real HTTP/2 session, and for TLS
 * mid-handshake or right after it.
 */
async function dropConnections(s: SpawnedServer, count: number): Promise<void> {
  const [host, port] = splitAddress(s.address);
  const tls = s === secure;
  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, 5000);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      const way = i % 4;
      if (way === 3) {
        const session = tls ? h2connect(`https://${s.address}`, { ca, servername: 'localhost' }) : h2connect(`http://${s.address}`);
        session.on('error', () => {});
        session.on('close', done);
        const stream = session.request(grpcHeaders(), { endStream: false });
        stream.on('error', () => {});
        stream.write(grpcFrame(helloRequest('dropped'), { length: 50 }), () => session.destroy());
        return;
      }
      const socket = tls ? tlsConnect({ host, port, ca, servername: 'localhost', ALPNProtocols: ['h2'] }) : netConnect({ host, port });
      socket.on('error', () => {});
      socket.on('close', done);
      socket.resume(); // read what the server sends, so its FIN is seen and the socket closes
      socket.once(tls ? 'secureConnect' : 'connect', () => {
        if (way === 0) socket.destroy();
        else if (way === 1) socket.end(Buffer.concat([H2_PREFACE, H2_EMPTY_SETTINGS]));
        else socket.write(Buffer.concat([H2_PREFACE, H2_EMPTY_SETTINGS]), () => (tls ? socket.destroy() : socket.resetAndDestroy()));
      });
      if (tls && way === 0) setImmediate(() => socket.destroy()); // mid-handshake
    });
  let next = 0;
  await Promise.all(
    Array.from({ length: 100 }, async () => {
      while (next < count) await one(next++);
    }),
  );
}
