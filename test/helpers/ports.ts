// Ports on loopback for tests, benchmarks and the e2e runner.
import { once } from 'node:events';
import { connect, createServer } from 'node:net';

/**
 * A port on 127.0.0.1 that nothing listens on right now: for a server that starts later (or never), or for a
 * tool that cannot be told to pick its own (HAProxy, h2load targets). The caller retries if it was taken.
 */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** Whether something accepts a TCP connection at host:port now (the connection is closed at once). */
export function accepts(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, host);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
