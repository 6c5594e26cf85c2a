// An in-process server for tests: real sockets on loopback, a free port each, the access log collected.
import { hostname } from 'node:os';
import { afterEach } from 'vitest';
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

/**
 * For a test file whose tests each start their own servers and clients: `server()` starts one, `keep()` notes a
 * client; after each test the clients are closed and the servers stopped.
 */
export function perTest(): { server: typeof startTestServer; keep<C extends { close(): void }>(client: C): C } {
  let servers: TestServer[] = [];
  let clients: Array<{ close(): void }> = [];
  afterEach(() => {
    for (const c of clients) c.close();
    for (const s of servers) s.forceShutdown();
    servers = [];
    clients = [];
  });
  return {
    async server(options = {}) {
      const s = await startTestServer(options);
      servers.push(s);
      return s;
    },
    keep(client) {
      clients.push(client);
      return client;
    },
  };
}
