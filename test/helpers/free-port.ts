// A port on 127.0.0.1 that nothing listens on right now: for a server that starts later (or never), or for a
// tool that cannot be told to pick its own (HAProxy, h2load targets). The caller retries if it was taken.
import { once } from 'node:events';
import { createServer } from 'node:net';

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}
