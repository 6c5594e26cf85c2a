// The per-connection limits of issue 15 (src/h2/limits.ts), each at a small setting so that it shows in a
// moment: the handshake and idle timeouts, the PING and SETTINGS budgets, the memory budget, the cap on
// streams forwarded to grpc-js, and the header list size. The attacks at scale are in attacks.test.ts; this
// file pins what each limit does at its edge, on one in-process server per case.
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { encodeFrame, encodeRstStream, encodeSettings, ErrorCode, Flag, FrameType, Setting } from '../src/h2/frames.ts';
import { encodeHeaders } from '../src/h2/hpack.ts';
import { FLOOD_BUDGETS } from '../src/h2/limits.ts';
import { HEALTH_CHECK_PATH, SAY_HELLO_PATH } from '../src/rpc-names.ts';
import { grpcFrame, helloRequest } from './helpers/raw-grpc.ts';
import { closeRawH2Connections, RawH2, requestFields } from './helpers/raw-h2.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

afterEach(closeRawH2Connections);

async function server(overrides: Parameters<typeof startTestServer>[0]): Promise<TestServer> {
  const s = await startTestServer(overrides);
  onTestFinished(() => s.forceShutdown());
  return s;
}

/** A SayHello on a connection of its own: the server still serves. */
async function stillServes(port: number): Promise<void> {
  const raw = await RawH2.open(port);
  raw.call(1, requestFields(port), helloRequest('still'));
  const answer = await raw.finished(1);
  expect(answer.headers.at(-1)?.['grpc-status']).toBe('0');
  raw.destroy();
}

describe('timeouts', () => {
  it('a connection that never sends the preface is closed after the handshake timeout', async () => {
    const s = await server({ limits: { handshakeTimeoutMs: 300 } });
    const raw = await RawH2.open(s.port, { preface: false });
    expect(await raw.waitClosed()).toBe(true);
    await stillServes(s.port);
  });

  it('a connection with no stream open for the idle timeout gets GOAWAY NO_ERROR and is closed; one with a stream open is not', async () => {
    const s = await server({ limits: { idleTimeoutMs: 400 } });
    const idle = await RawH2.open(s.port);
    const busy = await RawH2.open(s.port);
    // a call that lasts longer than the idle timeout keeps its connection
    busy.call(1, requestFields(s.port, SAY_HELLO_PATH, [['x-helloworld-delay-ms', '1200']]), helloRequest('busy'));
    expect(await idle.goaway()).toEqual({ lastStreamId: 0, code: 'NO_ERROR' });
    expect(await idle.waitClosed()).toBe(true);
    expect(busy.received.some((f) => f.type === FrameType.GOAWAY)).toBe(false);
    expect((await busy.finished(1)).headers.at(-1)?.['grpc-status']).toBe('0');
  });
});

describe('flood budgets', () => {
  it(`PING past its burst (${FLOOD_BUDGETS.ping.burst}): GOAWAY ENHANCE_YOUR_CALM "too_many_pings"; a few PINGs are answered`, async () => {
    const s = await server({});
    const polite = await RawH2.open(s.port);
    for (let i = 0; i < 5; i++) polite.write(encodeFrame(FrameType.PING, 0, 0, Buffer.alloc(8, i)));
    await polite.until(() => (polite.received.filter((f) => f.type === FrameType.PING && f.flags & Flag.ACK).length === 5 ? true : undefined), '5 PING ACKs');
    const flood = await RawH2.open(s.port);
    const pings = Array.from({ length: FLOOD_BUDGETS.ping.burst * 3 }, (_, i) => encodeFrame(FrameType.PING, 0, 0, Buffer.alloc(8, i)));
    flood.write(Buffer.concat(pings));
    const goaway = await flood.waitFor((f) => f.type === FrameType.GOAWAY, 'GOAWAY');
    expect(goaway.payload.subarray(8).toString()).toBe('too_many_pings');
    expect((await flood.goaway()).code).toBe('ENHANCE_YOUR_CALM');
    await stillServes(s.port);
  });

  it(`a PING after each reply of a stream, as grpc-go's client sends them (its BDP estimator), is no flood: ${FLOOD_BUDGETS.ping.burst * 3} in a row`, async () => {
    const s = await server({});
    const client = await RawH2.open(s.port);
    client.headers(1, requestFields(s.port, '/helloworld.GreeterStream/SayHelloBidi'));
    client.windowUpdate(0, 1 << 24);
    client.windowUpdate(1, 1 << 24);
    const replies = () => client.received.filter((f) => f.streamId === 1 && f.type === FrameType.DATA).length;
    for (let i = 1; i <= FLOOD_BUDGETS.ping.burst * 3; i++) {
      client.data(1, grpcFrame(helloRequest(`r${i}`)), false);
      await client.until(() => (replies() >= i ? true : undefined), `reply ${i}`);
      await client.roundTrip();
    }
    client.data(1, Buffer.alloc(0), true);
    expect((await client.finished(1)).headers.at(-1)?.['grpc-status']).toBe('0');
    expect(client.received.some((f) => f.type === FrameType.GOAWAY)).toBe(false);
  });

  it(`SETTINGS past its burst (${FLOOD_BUDGETS.settings.burst}): GOAWAY ENHANCE_YOUR_CALM`, async () => {
    const s = await server({});
    const flood = await RawH2.open(s.port);
    flood.write(Buffer.concat(Array.from({ length: FLOOD_BUDGETS.settings.burst * 3 }, () => encodeSettings([[Setting.ENABLE_PUSH, 0]]))));
    expect((await flood.goaway()).code).toBe('ENHANCE_YOUR_CALM');
    await stillServes(s.port);
  });
});

describe('rapid reset', () => {
  it(`streams reset in the read that opened them: a call never started, and past ${FLOOD_BUDGETS.rapidResets.burst}, GOAWAY ENHANCE_YOUR_CALM`, async () => {
    const s = await server({});
    const few = await RawH2.open(s.port);
    const pair = (id: number) => [encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, id, encodeHeaders(requestFields(s.port))), encodeRstStream(id, ErrorCode.CANCEL)];
    few.write(Buffer.concat([1, 3, 5].flatMap(pair)));
    await few.roundTrip();
    expect(few.received.some((f) => f.type === FrameType.GOAWAY)).toBe(false);
    expect(s.log).toHaveLength(0); // never started: nothing to log
    const flood = await RawH2.open(s.port);
    const ids = Array.from({ length: FLOOD_BUDGETS.rapidResets.burst * 2 }, (_, i) => 2 * i + 1);
    flood.write(Buffer.concat(ids.flatMap(pair)));
    expect((await flood.goaway()).code).toBe('ENHANCE_YOUR_CALM');
    await stillServes(s.port);
  });
});

describe('memory and stream caps', () => {
  it('past the memory budget new streams are refused (REFUSED_STREAM) and the ones taken are answered once the client reads', async () => {
    // answers of 40 KB wait on a zero window: the fourth one takes the connection past 128 KiB
    const s = await server({ limits: { maxConnectionMemory: 128 * 1024 } });
    const raw = await RawH2.open(s.port, { settings: [[Setting.INITIAL_WINDOW_SIZE, 0]] });
    const name = 'm'.repeat(12 * 1024); // fast path: at most 16 KB
    const ids = [1, 3, 5, 7, 9, 11, 13, 15, 17, 19];
    for (const id of ids) {
      raw.call(id, requestFields(s.port), helloRequest(name));
      await raw.roundTrip();
    }
    const refused = ids.filter((id) => raw.received.some((f) => f.type === FrameType.RST_STREAM && f.streamId === id));
    expect(refused.length).toBeGreaterThan(0);
    for (const id of refused) expect(await raw.rstStream(id)).toBe('REFUSED_STREAM');
    const taken = ids.filter((id) => !refused.includes(id));
    expect(taken.length).toBeGreaterThan(0);
    raw.windowUpdate(0, 1 << 20);
    for (const id of taken) raw.windowUpdate(id, 1 << 20);
    for (const id of taken) expect((await raw.finished(id)).headers.at(-1)?.['grpc-status']).toBe('0');
  });

  it('streams forwarded to grpc-js at once are capped (REFUSED_STREAM past it); plain SayHellos are not', async () => {
    const s = await server({ limits: { maxForwardedStreams: 2 } });
    const raw = await RawH2.open(s.port);
    // health Watch streams stay open: the third is refused
    for (const id of [1, 3, 5]) raw.call(id, requestFields(s.port, '/grpc.health.v1.Health/Watch'), Buffer.alloc(0));
    expect(await raw.rstStream(5)).toBe('REFUSED_STREAM');
    raw.call(7, requestFields(s.port), helloRequest('fast'));
    expect((await raw.finished(7)).headers.at(-1)?.['grpc-status']).toBe('0');
  });

  it('a request header list over -max_header_list_size resets its stream only', async () => {
    const s = await server({ limits: { maxHeaderListSize: 8192, maxHeaderBlock: 65_536 } });
    const raw = await RawH2.open(s.port);
    raw.call(1, requestFields(s.port, HEALTH_CHECK_PATH, [['x-big', 'b'.repeat(10_000)]]), Buffer.alloc(0));
    expect(await raw.rstStream(1)).toBe('ENHANCE_YOUR_CALM');
    raw.call(3, requestFields(s.port), helloRequest('small'));
    expect((await raw.finished(3)).headers.at(-1)?.['grpc-status']).toBe('0');
    expect(raw.received.some((f) => f.type === FrameType.GOAWAY)).toBe(false);
  });
});

describe('what the memory budget counts of forwarded calls', () => {
  it('a long bidi stream does not fill it: each client-streamed message counts only until grpc-js has taken it', async () => {
    const s = await server({ limits: { maxConnectionMemory: 128 * 1024 } });
    const raw = await RawH2.open(s.port);
    raw.headers(1, requestFields(s.port, '/helloworld.GreeterStream/SayHelloBidi'));
    raw.windowUpdate(0, 1 << 24); // room for the 300 replies
    raw.windowUpdate(1, 1 << 24);
    // 300 requests of 1 KB: more than twice the budget, had they counted until the stream's end
    for (let i = 0; i < 300; i++) {
      raw.data(1, grpcFrame(helloRequest(`${i}`.padEnd(1024, '.'))), false);
      if (i % 50 === 49) await raw.roundTrip();
    }
    await raw.until(() => (raw.answer(1).data.length >= 300 * 1024 ? true : undefined), 'the 300 replies');
    // the stream still open: a new call on the connection is taken
    raw.call(3, requestFields(s.port), helloRequest('beside'));
    expect((await raw.finished(3)).headers.at(-1)?.['grpc-status']).toBe('0');
    raw.data(1, Buffer.alloc(0), true);
    expect((await raw.finished(1)).headers.at(-1)?.['grpc-status']).toBe('0');
    expect(raw.received.some((f) => f.type === FrameType.RST_STREAM)).toBe(false);
  });
});
