// What the rewrite of the HTTP/2 layer (server and client on one core) must get right, one item at a time,
// each seen from outside over loopback: the server (in-process, src/server/server.ts) from a client that
// writes frames by hand (helpers/raw-h2.ts), nghttp or node:tls; the client (in-process, as dist/client.cjs
// runs it: helpers/client.ts) against node:http2 servers that answer by hand.
//   1. HPACK dynamic table size update after a peer's SETTINGS_HEADER_TABLE_SIZE below 4096
//   2. response metadata of 200 KB (headers, trailers) reaches the client, the handler runs once
//   3. a call lost after it was sent ends UNAVAILABLE at once, not sent again; a REFUSED_STREAM is retried at once
//   4. a header list over the limit on one stream fails that stream only, not the connection
//   5. deadlines past 2^31-1 ms (grpc-go sends 2592000S) are not a 32-bit timer overflow
//   6. SETTINGS_MAX_CONCURRENT_STREAMS fits a signed 32-bit int, and is enforced
//   7. TLS without ALPN is not served
// Every wait is bounded; no test asserts how fast anything is beyond "did not wait for the deadline".
import { spawn, spawnSync } from 'node:child_process';
import { constants, type ServerHttp2Stream } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { CLIENT_PREFACE, encodeFrame, encodeSettings, errorName, Flag, FrameReader, FrameType, Setting } from '../src/h2/frames.ts';
import { encodeHeaders } from '../src/h2/hpack.ts';
import { testCa } from '../src/generated/test-pki.ts';
import { SAY_HELLO_PATH } from '../src/rpc-names.ts';
import { exitCodeForStatus } from '../src/exit-codes.ts';
import { Code } from '../src/status.ts';
import { client, helloReplyFrame, rawH2Server, type RawH2Server } from './helpers/client.ts';
import { grpcFrame, helloRequest } from './helpers/raw-grpc.ts';
import { closeRawH2Connections, RawH2, requestFields, WAIT_MS } from './helpers/raw-h2.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

afterEach(closeRawH2Connections);

/** A test server of the test's own, shut down when the test ends. */
async function ownServer(overrides: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  const server = await startTestServer(overrides);
  onTestFinished(() => server.forceShutdown());
  return server;
}

/** A node:http2 server of the test's own (helpers/client.ts rawH2Server), closed when the test ends. */
async function ownH2Server(...args: Parameters<typeof rawH2Server>): Promise<RawH2Server> {
  const server = await rawH2Server(...args);
  onTestFinished(() => server.close());
  return server;
}

/** A gRPC SayHello answer by hand: 200, application/grpc, one HelloReply, trailers grpc-status 0 (plus `extra` on each). */
function answerHello(stream: ServerHttp2Stream, message: string, extra: { headers?: Record<string, string | string[]>; trailers?: Record<string, string> } = {}): void {
  if (stream.destroyed) return; // the connection went (a client that gave up on it)
  stream.on('error', () => {});
  stream.respond({ ':status': 200, 'content-type': 'application/grpc', ...extra.headers }, { waitForTrailers: true });
  stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', ...extra.trailers }));
  stream.end(helloReplyFrame(message));
}

const HELLO_REPLY = (message: string) => helloRequest(message); // HelloReply { message } encodes as HelloRequest { name }

/** A setting's value in the server's first SETTINGS (undefined: not sent, the protocol's default applies). */
function settingOf(raw: RawH2, id: number): number | undefined {
  const settings = raw.received.find((f) => f.type === FrameType.SETTINGS && !(f.flags & Flag.ACK))!;
  let value: number | undefined;
  for (let at = 0; at + 6 <= settings.payload.length; at += 6) if (settings.payload.readUInt16BE(at) === id) value = settings.payload.readUInt32BE(at + 2);
  return value;
}

/** The status of a stream the server answered: its last header block's grpc-status. */
async function grpcStatusOf(raw: RawH2, streamId: number): Promise<string | undefined> {
  const answer = await raw.finished(streamId);
  return answer.headers.at(-1)?.['grpc-status'];
}

describe('1. HPACK: a dynamic table size update after SETTINGS_HEADER_TABLE_SIZE below 4096 (RFC 7541 §4.2, §6.3)', () => {
  const nghttp = spawnSync('nghttp', ['--version'], { encoding: 'utf8' });
  const nghttpMissing = nghttp.error ? `nghttp is not installed (Debian's nghttp2-client): ${nghttp.error.message}` : undefined;
  if (nghttpMissing) console.log(`h2-items: the nghttp test is skipped: ${nghttpMissing}`);

  // proves: nghttp2's decoder (which enforces §4.2) accepts the server's header blocks after it asked for a table of 0
  it('the server: nghttp -c 0 completes a request without COMPRESSION_ERROR', async ({ skip }) => {
    if (nghttpMissing) return skip(nghttpMissing);
    const server = await ownServer();
    const child = spawn('nghttp', ['-c', '0', '-v', `http://127.0.0.1:${server.port}/`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearTimeout(timer);
    // nghttp exits 0 even when it ended the connection with COMPRESSION_ERROR: read what it says
    const said = `nghttp -c 0 -v said, at the end:\n${output.slice(-1200)}`;
    expect(/COMPRESSION_ERROR/.test(output), said).toBe(false);
    expect(/Some requests were not processed/.test(output), said).toBe(false);
    expect(output, said).toMatch(/recv \(stream_id=\d+\) :status: \d{3}/); // the response's headers, decoded
    expect(output, said).toMatch(/recv HEADERS frame/);
    expect(code).toBe(0);
  });

  // proves: the first header block after the client's SETTINGS_HEADER_TABLE_SIZE=0 opens with a size update to ≤ 0
  it('the server: its first response header block starts with a table size update (0x20 prefix) to at most the setting', async () => {
    const server = await ownServer();
    const raw = await RawH2.open(server.port, { settings: [[Setting.HEADER_TABLE_SIZE, 0]] }); // returns once the server ACKed it
    raw.call(1, requestFields(server.port), helloRequest('small table'));
    expect(await grpcStatusOf(raw, 1)).toBe('0');
    const first = raw.received.find((f) => f.type === FrameType.HEADERS)!;
    const updates = leadingTableSizeUpdates(first.payload);
    expect(updates.length, `no table size update at the start of the first response header block (it starts 0x${first.payload.subarray(0, 8).toString('hex')})`).toBeGreaterThan(0);
    expect(Math.min(...updates)).toBeLessThanOrEqual(0);
  });

  // proves: the client sends the size update a node:http2 server (nghttp2) requires after headerTableSize 0
  it('the client: a node:http2 server with settings { headerTableSize: 0 } gets a call it answers: OK', async () => {
    const server = await ownH2Server((stream) => answerHello(stream, 'Hello small table'), { headerTableSize: 0 });
    const r = await client(['-server_addr', server.address, '-timeout', '5', '-json']);
    expect(r.json().requests[0], r.stderr).toMatchObject({ status: 'OK', message: 'Hello small table' });
    expect(r.code).toBe(0);
  });
});

/** The values of the dynamic table size updates (001xxxxx, a 5-bit-prefix integer) at the start of an HPACK block. */
function leadingTableSizeUpdates(block: Buffer): number[] {
  const values: number[] = [];
  let at = 0;
  while (at < block.length && (block[at]! & 0xe0) === 0x20) {
    let value = block[at++]! & 0x1f;
    if (value === 0x1f) {
      for (let shift = 0; at < block.length; shift += 7) {
        const octet = block[at++]!;
        value += (octet & 0x7f) * 2 ** shift;
        if (!(octet & 0x80)) break;
      }
    }
    values.push(value);
  }
  return values;
}

/** An HPACK integer (RFC 7541 §5.1): `flags` in the bits above a `prefixBits`-bit prefix. */
function hpackInteger(flags: number, prefixBits: number, value: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([flags | value]);
  const octets = [flags | max];
  let rest = value - max;
  for (; rest >= 128; rest = Math.floor(rest / 128)) octets.push((rest % 128) | 0x80);
  octets.push(rest);
  return Buffer.from(octets);
}

describe('2. Response metadata of 200 KB', () => {
  const BIG = 'x'.repeat(200_000);
  // node:http2 sends no header block over 64 KiB unless told it may
  const sendBig = { maxSendHeaderBlockLength: 4 * 1024 * 1024 };

  // proves: 200 KB of response headers are read, not taken for an error, and the call is not sent again
  it('in the response headers: the client gets OK, and the server handler ran once', async () => {
    const server = await ownH2Server((stream) => answerHello(stream, 'Hello big headers', { headers: { 'x-big': BIG } }), { maxHeaderListSize: 4 * 1024 * 1024 }, sendBig);
    const r = await client(['-server_addr', server.address, '-timeout', '5', '-json']);
    expect(r.json().requests[0], r.stderr).toMatchObject({ status: 'OK', message: 'Hello big headers' });
    expect(server.requests).toHaveLength(1);
  });

  // proves: 200 KB of trailers are read, and the call is not sent again
  it('in the trailers: the client gets OK, and the server handler ran once', async () => {
    const server = await ownH2Server((stream) => answerHello(stream, 'Hello big trailers', { trailers: { 'x-big': BIG } }), { maxHeaderListSize: 4 * 1024 * 1024 }, sendBig);
    const r = await client(['-server_addr', server.address, '-timeout', '5', '-json']);
    expect(r.json().requests[0], r.stderr).toMatchObject({ status: 'OK', message: 'Hello big trailers' });
    expect(server.requests).toHaveLength(1);
  });
});

describe('3. A call lost after it was sent', () => {
  // proves: the connection dropped under a call that reached the server ends it UNAVAILABLE at once, not sent again
  it('ends UNAVAILABLE (exit 78) well before the deadline, and the server handler ran once', async () => {
    const server = await ownH2Server((stream) => stream.session?.destroy()); // the request arrived whole: drop the connection
    const started = performance.now();
    const r = await client(['-server_addr', server.address, '-timeout', '10', '-json']);
    const tookMs = performance.now() - started;
    expect(r.json().requests[0], r.stderr).toMatchObject({ status: 'UNAVAILABLE', attempts: 1 });
    expect(r.code).toBe(exitCodeForStatus(Code.UNAVAILABLE));
    expect(r.code).toBe(78);
    expect(tookMs, 'it waited for the 10 s deadline').toBeLessThan(5000);
    expect(server.requests).toHaveLength(1);
  });

  // proves: -retry_on UNAVAILABLE opts in to sending it again, and the second answer counts
  it('with -retry_on UNAVAILABLE it may be sent again: the second attempt, answered, is OK', async () => {
    const server = await ownH2Server((stream, _headers, n) => (n === 1 ? stream.session?.destroy() : answerHello(stream, 'Hello again')));
    const r = await client(['-server_addr', server.address, '-timeout', '10', '-backoff_initial', '0.1', '-retry_on', 'UNAVAILABLE', '-json']);
    expect(r.json().requests[0], r.stderr).toMatchObject({ status: 'OK', message: 'Hello again', attempts: 2 });
    expect(server.requests).toHaveLength(2);
  });

  // proves (contrast): REFUSED_STREAM means the server did not take the call: retried at once, without a backoff wait
  it('a REFUSED_STREAM is retried transparently (no backoff: -backoff_initial 30 > -timeout 10) and then OK', async () => {
    const server = await ownH2Server((stream, _headers, n) => (n === 1 ? stream.close(constants.NGHTTP2_REFUSED_STREAM) : answerHello(stream, 'Hello after a refusal')));
    const r = await client(['-server_addr', server.address, '-timeout', '10', '-backoff_initial', '30', '-json']);
    expect(r.json().requests[0], r.stderr).toMatchObject({ status: 'OK', message: 'Hello after a refusal' });
    expect(server.requests).toHaveLength(2); // the refused stream, then the one answered
  });
});

describe('4. A header list over the limit on one stream resets that stream only', () => {
  /**
   * A request header block of a few KB that decodes to more than 16 MiB (past any sane list limit; grpc-go's
   * is 16 MiB, the server's today 1 MiB): one ~4 KB value inserted into the dynamic table (which holds 4096
   * bytes), then referenced 4200 times. The block is well within any block cap, so the connection's HPACK
   * state is intact and nothing forces a connection error.
   */
  function oversizedRequestBlock(port: number): { block: Buffer; decodedBytes: number } {
    const name = 'x-big';
    const value = 'v'.repeat(4000); // entry: 5 + 4000 + 32 = 4037 bytes, fits a 4096-byte table
    const REFERENCES = 4200;
    const literal = Buffer.concat([
      Buffer.from([0x40, name.length]), // literal with incremental indexing, new name (RFC 7541 §6.2.1), name length < 127
      Buffer.from(name, 'latin1'),
      hpackInteger(0x00, 7, value.length), // H = 0, 7-bit prefix length
      Buffer.from(value, 'latin1'),
    ]);
    const references = Buffer.alloc(REFERENCES, 0x80 | 62); // indexed header field, index 62: the newest dynamic entry
    const block = Buffer.concat([encodeHeaders(requestFields(port)), literal, references]);
    return { block, decodedBytes: (REFERENCES + 1) * (name.length + value.length + 32) };
  }

  // proves: the server refuses one stream's oversized header list with a stream error and serves the next one on the same connection
  it('the server: stream 1 gets RST_STREAM or an error status (no GOAWAY), stream 3 on the same connection gets grpc-status 0', async () => {
    const server = await ownServer();
    const raw = await RawH2.open(server.port);
    const tableSize = settingOf(raw, Setting.HEADER_TABLE_SIZE) ?? 4096;
    expect(tableSize, "the server's HPACK table must hold the 4037-byte entry this test indexes").toBeGreaterThanOrEqual(4096);
    const { block, decodedBytes } = oversizedRequestBlock(server.port);
    expect(block.length).toBeLessThan(16_384); // one HEADERS frame
    expect(decodedBytes).toBeGreaterThan(16 * 1024 * 1024);
    raw.write(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, 1, block));
    raw.data(1, grpcFrame(helloRequest('oversized'))); // (a server that reset stream 1 ignores this, RFC 9113 §5.1)
    raw.call(3, requestFields(server.port), helloRequest('next'));

    const first = await raw.finished(1).catch(async (err: Error) => {
      const goaway = raw.received.some((f) => f.type === FrameType.GOAWAY) ? await raw.goaway() : undefined;
      throw goaway ? new Error(`the server ended the connection: GOAWAY ${goaway.code} (${err.message})`) : err;
    });
    // refused: reset, or answered with an error (a gRPC status other than OK, or an HTTP error such as 431)
    const status = first.headers.at(-1)?.['grpc-status'];
    const httpStatus = first.headers[0]?.[':status'];
    const refused = first.rstCode !== undefined || (status !== undefined && status !== '0') || (httpStatus !== undefined && httpStatus !== '200');
    expect(refused, `stream 1 was not refused: ${JSON.stringify(first.headers)}`).toBe(true);
    const next = await raw.finished(3);
    expect(next.rstCode, 'stream 3 was reset').toBeUndefined();
    expect(next.headers.at(-1)?.['grpc-status']).toBe('0');
    expect(next.data.subarray(5)).toEqual(HELLO_REPLY('Hello next'));
    await raw.roundTrip(); // anything the server sent after, it sent before this PING's ACK
    expect(raw.received.filter((f) => f.type === FrameType.GOAWAY)).toEqual([]);
    expect(raw.closed).toBe(false);
  });

  // proves: the client fails only the call whose response headers are too large, keeps the connection for the other, and retries neither
  it('the client: of two calls on one connection, the one answered with oversized headers fails (RESOURCE_EXHAUSTED or INTERNAL), the other is OK', async () => {
    // node:http2 (nghttp2) puts a header of up to ~3000 bytes into the client's table (4096 bytes unless the
    // client's SETTINGS say less) and refers to it after that: 6000 copies decode to 18 MB in a block of ~9 KB
    const copies = Array.from({ length: 6000 }, () => 'v'.repeat(3000));
    const waiting: ServerHttp2Stream[] = [];
    const server = await ownH2Server(
      (stream) => {
        waiting.push(stream);
        if (waiting.length > 2) return answerHello(stream, 'Hello again'); // a call sent again
        if (waiting.length < 2) return;
        // both calls are in: the oversized answer goes first, then the normal one on the same connection
        const [big, normal] = waiting as [ServerHttp2Stream, ServerHttp2Stream];
        answerHello(big, 'Hello oversized', { headers: { 'x-big': copies } });
        answerHello(normal, 'Hello normal');
      },
      { maxHeaderListSize: 0xffff_ffff },
      { maxSendHeaderBlockLength: 64 * 1024 * 1024 },
    );
    const r = await client(['-server_addr', server.address, '-count', '2', '-concurrency', '2', '-timeout', '5', '-json']);
    const results = r.json().requests;
    const seen = `${results.map((q) => `${q.status} after ${q.attempts} attempt(s): ${q.details}`).join('; ')}; the server received ${server.requests.length} calls on ${server.connections()} connection(s)`;
    const statuses = results.map((q) => q.status).sort();
    expect(statuses.filter((s) => s === 'OK'), seen).toHaveLength(1);
    expect(statuses.filter((s) => s === 'INTERNAL' || s === 'RESOURCE_EXHAUSTED'), seen).toHaveLength(1);
    expect(results.map((q) => q.attempts), seen).toEqual([1, 1]);
    expect(server.requests.length, seen).toBe(2); // a retry would send one again
    expect(server.connections(), seen).toBe(1);
  });
});

describe('5. Deadlines longer than 2^31-1 ms (24.8 days)', () => {
  // proves: grpc-timeout 2592000S (30 days, what grpc-go sends for "no deadline") does not expire at once
  it('the server: grpc-timeout 2592000S on a SayHello delayed 0.2 s is answered OK', async () => {
    const server = await ownServer({ sleepMs: 200 });
    const raw = await RawH2.open(server.port);
    raw.call(1, requestFields(server.port, SAY_HELLO_PATH, [['grpc-timeout', '2592000S']]), helloRequest('patient'));
    const answer = await raw.finished(1);
    expect(['', 'OK']).toContain(answer.headers.at(-1)?.['grpc-message'] ?? ''); // (grpc-js, and so the fast path, say OK)
    expect(answer.headers.at(-1)?.['grpc-status']).toBe('0');
    expect(answer.data.subarray(5)).toEqual(HELLO_REPLY('Hello patient'));
  });

  // proves: the client takes a 30-day -timeout and its call is answered, not ended at once
  it('the client: -timeout 2592000 (30 days) against a normal server is OK', async () => {
    const server = await ownServer();
    const r = await client(['-server_addr', server.address, '-timeout', '2592000', '-json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json().requests[0]).toMatchObject({ status: 'OK', message: 'Hello world' });
  });
});

describe('6. SETTINGS_MAX_CONCURRENT_STREAMS', () => {
  // proves: the advertised limit is a value every peer can hold (≤ 2^31-1), and the stream past it is refused
  it('the server advertises at most 2^31-1, and refuses the stream past it with REFUSED_STREAM', async () => {
    const server = await ownServer(); // the defaults, as dist/server.js runs
    const raw = await RawH2.open(server.port);
    const limit = settingOf(raw, Setting.MAX_CONCURRENT_STREAMS);
    expect(limit, 'SETTINGS_MAX_CONCURRENT_STREAMS in the server\'s SETTINGS (absent: unlimited)').toBeDefined();
    expect(limit).toBeLessThanOrEqual(2 ** 31 - 1);
    expect(limit, 'a limit this test can open one stream past').toBeLessThanOrEqual(100_000);
    const streams = limit! + 1;
    const fields = encodeHeaders(requestFields(server.port));
    const frames: Buffer[] = [];
    // requests that never finish: HEADERS without END_STREAM, and no DATA
    for (let i = 0; i < streams; i++) frames.push(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, 2 * i + 1, fields));
    raw.write(Buffer.concat(frames));
    const extra = 2 * limit! + 1;
    const rst = await raw.until(() => raw.received.find((f) => f.type === FrameType.RST_STREAM && f.streamId === extra), `RST_STREAM on stream ${extra}`, 30_000);
    expect(errorName(rst.payload.readUInt32BE(0))).toBe('REFUSED_STREAM');
    await raw.roundTrip();
    expect(raw.received.filter((f) => f.type === FrameType.RST_STREAM).map((f) => f.streamId)).toEqual([extra]);
  }, 60_000);
});

describe('7. TLS without ALPN', () => {
  /** Connects with node:tls (`alpn` offered, or no ALPN extension at all), sends the preface and a SayHello, and collects the frames that come back. */
  async function tlsCall(port: number, alpn: string[] | undefined) {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: testCa, servername: 'localhost', ...(alpn ? { ALPNProtocols: alpn } : {}) });
    onTestFinished(() => void socket.destroy());
    const reader = new FrameReader();
    const frames: Array<{ type: number; flags: number; streamId: number }> = [];
    let handshake: string = 'pending';
    let readError: string | undefined;
    socket.on('data', (chunk: Buffer) => {
      try {
        reader.read(chunk, (f) => void frames.push({ type: f.type, flags: f.flags, streamId: f.streamId }));
      } catch (err) {
        readError = String(err);
      }
    });
    const closed = new Promise<string>((resolve) => {
      socket.on('error', (err) => {
        if (handshake === 'pending') handshake = `failed: ${err.message}`;
      });
      socket.on('close', () => resolve('closed'));
    });
    socket.once('secureConnect', () => {
      handshake = `done, ALPN ${JSON.stringify(socket.alpnProtocol)}`;
      socket.write(
        Buffer.concat([
          CLIENT_PREFACE,
          encodeSettings([]),
          encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, 1, encodeHeaders([[':method', 'POST'], [':scheme', 'https'], [':path', SAY_HELLO_PATH], [':authority', 'localhost'], ['content-type', 'application/grpc'], ['te', 'trailers']])),
          encodeFrame(FrameType.DATA, Flag.END_STREAM, 1, grpcFrame(helloRequest('no alpn'))),
        ]),
      );
    });
    return { socket, frames, closed, handshake: () => handshake, readError: () => readError };
  }

  const answered = (frames: Array<{ type: number; streamId: number }>) => frames.some((f) => f.type === FrameType.HEADERS && f.streamId === 1);

  // proves: a TLS client that offers no ALPN gets no HTTP/2 from the server: the handshake fails or the connection closes unanswered
  it('a client offering no ALPN is not served: the connection closes (or the handshake fails) and no answer comes', async () => {
    const server = await ownServer({ useTls: true });
    const call = await tlsCall(server.port, undefined);
    const outcome = await Promise.race([call.closed, new Promise<string>((resolve) => setTimeout(() => resolve('still open'), WAIT_MS))]);
    const seen = `handshake ${call.handshake()}; frames from the server: ${call.frames.map((f) => `${f.type}@${f.streamId}`).join(' ') || 'none'}`;
    expect(answered(call.frames), `the server answered the SayHello (${seen})`).toBe(false);
    expect(outcome, seen).toBe('closed');
  });

  // proves (control): the same client offering ALPN h2 is served
  it('a client offering ALPN h2 is served (control)', async () => {
    const server = await ownServer({ useTls: true });
    const call = await tlsCall(server.port, ['h2']);
    const ended = () => call.frames.some((f) => f.streamId === 1 && f.type === FrameType.HEADERS && (f.flags & Flag.END_STREAM) !== 0);
    await expect.poll(ended, { timeout: WAIT_MS }).toBe(true);
    expect(call.handshake()).toBe('done, ALPN "h2"');
    expect(call.readError()).toBeUndefined();
  });
});

