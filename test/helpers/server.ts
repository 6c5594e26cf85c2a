// An in-process server for tests: real sockets on loopback, a free port each, the access log collected.
import { hostname } from 'node:os';
import type { AccessLogEntry } from '../../src/server/access-log.ts';
import { startServer, type RunningServer, type ServerOptions } from '../../src/server/server.ts';
import { testServerKeyPair } from '../../src/tls.ts';

export interface TestServer extends RunningServer {
  address: string;
  log: AccessLogEntry[];
}

export async function startTestServer(overrides: Partial<ServerOptions> & { useTls?: boolean } = {}): Promise<TestServer> {
  const log: AccessLogEntry[] = [];
  const { useTls, ...rest } = overrides;
  const server = await startServer({
    host: '127.0.0.1',
    port: 0,
    sleepMs: 0,
    failRate: 0,
    failCode: 14,
    graceMs: 10_000,
    hostname: hostname(),
    accessLog: (entry) => log.push(entry),
    ...(useTls ? { tls: testServerKeyPair() } : {}),
    ...rest,
  });
  return Object.assign(server, { address: `127.0.0.1:${server.port}`, log });
}
