// Two in-process servers, one with the fast path and one without (everything to grpc-js), each with a
// node:http2 session open: a file sends both the same request and compares what comes back. Started before
// the file's tests, stopped after them.
import type { ClientHttp2Session, OutgoingHttpHeaders } from 'node:http2';
import { afterAll, beforeAll, expect } from 'vitest';
import { h2Session, rawRequest, type RawAnswer } from './raw-grpc.ts';
import { startTestServer, type TestServer } from './server.ts';

export interface FastAndPlain {
  fast: TestServer;
  plain: TestServer;
  fastSession: ClientHttp2Session;
  plainSession: ClientHttp2Session;
}

export function fastAndPlainServers(): FastAndPlain {
  const s = {} as FastAndPlain;
  beforeAll(async () => {
    [s.fast, s.plain] = await Promise.all([startTestServer(), startTestServer({ fastPath: false })]);
    [s.fastSession, s.plainSession] = await Promise.all([h2Session(s.fast.address), h2Session(s.plain.address)]);
  });
  afterAll(() => {
    for (const session of [s.fastSession, s.plainSession]) session?.destroy();
    for (const server of [s.fast, s.plain]) server?.forceShutdown();
  });
  return s;
}

/** What a client can see of an answer but the date, with the order of the header fields. */
export function seen(a: RawAnswer) {
  const { date: _date, ...headers } = a.headers;
  return { httpStatus: a.httpStatus, headers, order: Object.keys(headers), data: a.data.toString('hex'), trailers: { ...a.trailers }, timedOut: a.timedOut };
}

/** An access-log line but what differs by nature (its times, the ports). */
export function logLine(e: TestServer['log'][number]) {
  const { time: _t, duration_ms: _d, peer: _p, authority: _a, ...rest } = e;
  return rest;
}

/** The same request to both servers: the same answer, and the same access-log line but for times and ports. */
export async function sameAnswers(servers: FastAndPlain, headers: OutgoingHttpHeaders, body: Buffer[], options?: Parameters<typeof rawRequest>[3]): Promise<RawAnswer> {
  const logged = [servers.fast.log.length, servers.plain.log.length];
  const [a, b] = await Promise.all([rawRequest(servers.fastSession, headers, body, options), rawRequest(servers.plainSession, headers, body, options)]);
  // the line is written when the call ends, which can be just after the client saw the end
  await expect.poll(() => [servers.fast.log.length - logged[0]!, servers.plain.log.length - logged[1]!]).toEqual([1, 1]);
  expect(logLine(servers.fast.log.at(-1)!)).toEqual(logLine(servers.plain.log.at(-1)!));
  expect(seen(a)).toEqual(seen(b));
  // the same answer is not enough: both servers could fail alike
  expect(a.httpStatus, a.error).toBe(200);
  return a;
}
