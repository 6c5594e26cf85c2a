// Two in-process servers, one with the fast path and one without (everything to grpc-js), each with a
// node:http2 session open: a file sends both the same request and compares what comes back. Started before
// the file's tests, stopped after them.
import type { ClientHttp2Session } from 'node:http2';
import { afterAll, beforeAll } from 'vitest';
import { h2Session } from './raw-grpc.ts';
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
