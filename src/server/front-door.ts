// The listening socket and its connections: node:net (h2c) or node:tls (h2 by ALPN), each connection an
// HTTP/2 session of our own (h2/session.ts). A stream grpc-js would refuse outright is refused here
// (refusals.ts); one whose headers qualify goes to the fast path; every other stream, and one the fast path
// hands over, goes to grpc-js (forward.ts).
import type { ConnectionInjector } from '@grpc/grpc-js';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { CallTracker } from './access-log.ts';
import type { FaultOptions } from './faults.ts';
import { FastCall, qualifiesForFastPath } from './fast-path.ts';
import { GrpcJsConnection } from './forward.ts';
import { ServerSession, type ServerStream } from './h2/session.ts';
import { refusal } from './refusals.ts';

export interface FrontDoorTls {
  cert: Buffer;
  key: Buffer;
  /** require client certificates signed by these roots (mTLS) */
  clientCa?: Buffer;
}

export interface FrontDoorOptions {
  host: string;
  port: number;
  tls?: FrontDoorTls;
  hostname: string;
  faults: FaultOptions;
  /** answer qualifying SayHellos here; false sends every call to grpc-js */
  fastPath: boolean;
  /** per connection (h2/session.ts has the default) */
  maxConcurrentStreams?: number;
  /** the paths of every method grpc-js serves */
  methodPaths: ReadonlySet<string>;
  /** the paths of streaming methods (health Watch, reflection): calls that do not end by themselves */
  streamingPaths: ReadonlySet<string>;
  tracker: CallTracker;
  injector: ConnectionInjector;
}

export interface FrontDoor {
  port: number;
  /** stops accepting connections */
  stopListening(): Promise<void>;
  /** GOAWAY on every connection: the streams open finish, then each connection ends */
  drain(): void;
  /** calls of unary methods whose answer has not yet gone out to the client */
  unaryCallsOpen(): number;
  /** resolves once every connection has ended */
  closed(): Promise<void>;
  /** ends every connection now */
  destroy(): void;
}

export async function openFrontDoor(options: FrontDoorOptions): Promise<FrontDoor> {
  const sessions = new Set<ServerSession>();
  let allClosed: (() => void) | undefined;

  const dispatch = (stream: ServerStream, grpcJs: () => GrpcJsConnection) => {
    const refused = refusal(stream.headers, options.methodPaths);
    if (refused) return stream.respond(refused, true);
    if (options.fastPath && qualifiesForFastPath(stream.headers, stream.remoteEnded)) {
      new FastCall(stream, options.faults, options.hostname, options.tracker, (read) => grpcJs().forward(stream, read));
    } else {
      grpcJs().forward(stream, []);
    }
  };

  const accept = (socket: Socket) => {
    let grpcJs: GrpcJsConnection | undefined;
    const session = new ServerSession(socket, {
      ...(options.maxConcurrentStreams ? { maxConcurrentStreams: options.maxConcurrentStreams } : {}),
      onStream: (stream) => dispatch(stream, () => (grpcJs ??= new GrpcJsConnection(options.injector))),
      onClose: () => {
        grpcJs?.close();
        sessions.delete(session);
        if (sessions.size === 0) allClosed?.();
      },
    });
    sessions.add(session);
  };

  const listener = options.tls ? await tlsListener(options.tls, accept) : createNetServer(accept);
  listener.on('error', () => {}); // accept errors (EMFILE) are not the server's end
  const port = await listen(listener, options.host, options.port);
  return {
    port,
    stopListening: () => new Promise((resolve) => listener.close(() => resolve())),
    drain: () => {
      for (const session of sessions) session.drain();
    },
    unaryCallsOpen: () => {
      let open = 0;
      for (const session of sessions) for (const stream of session.streams()) if (!options.streamingPaths.has(stream.headers[':path'] ?? '')) open++;
      return open;
    },
    closed: () => (sessions.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => (allClosed = resolve))),
    destroy: () => {
      listener.close();
      for (const session of [...sessions]) session.destroy();
    },
  };
}

async function tlsListener(tls: FrontDoorTls, accept: (socket: Socket) => void): Promise<NetServer> {
  const { createServer } = await import('node:tls');
  const mtls = tls.clientCa !== undefined;
  const server = createServer({
    cert: tls.cert,
    key: tls.key,
    ALPNProtocols: ['h2'],
    ...(mtls ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    // a client that offers ALPN must have chosen h2; one that offers none is taken at its word
    if (socket.alpnProtocol !== 'h2' && socket.alpnProtocol !== false) return socket.destroy();
    accept(socket);
  });
  server.on('tlsClientError', () => {}); // a failed handshake ends that connection only
  return server;
}

/** Listens on host:port; '' is every interface ([::], dual-stack, or 0.0.0.0 where IPv6 is off). */
async function listen(server: NetServer, host: string, port: number): Promise<number> {
  const on = (address: string) =>
    new Promise<number>((resolve, reject) => {
      const failed = (err: Error) => reject(err);
      server.once('error', failed);
      server.listen({ host: address, port }, () => {
        server.off('error', failed);
        const bound = server.address();
        resolve(typeof bound === 'object' && bound ? bound.port : port);
      });
    });
  if (host) return on(host);
  try {
    return await on('::');
  } catch (err) {
    if (/EADDRINUSE|EACCES/.test(String(err))) throw err;
    return on('0.0.0.0');
  }
}
