// The listening socket and its connections: node:net (h2c) or node:tls (h2 by ALPN), each connection an
// HTTP/2 connection of our own in the server role (h2/connection.ts). A stream grpc-js would refuse outright is refused here
// (refusals.ts); one whose headers qualify goes to the fast path; every other stream, and one the fast path
// hands over, goes to grpc-js (forward.ts).
import type { ConnectionInjector } from '@grpc/grpc-js';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { CallTracker } from './access-log.ts';
import type { FaultOptions } from './faults.ts';
import { FastCall, qualifiesForFastPath } from './fast-path.ts';
import { GrpcJsConnection } from './forward.ts';
import { H2Connection, type H2Stream } from '../h2/connection.ts';
import type { ServerLimits } from '../h2/limits.ts';
import { refusal, type Refusal } from './refusals.ts';

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
  limits: ServerLimits;
  /** the paths of every method grpc-js serves */
  methodPaths: ReadonlySet<string>;
  /** the paths of streams that end only when their client ends them (health Watch, reflection): a drain does not wait for them */
  endlessPaths: ReadonlySet<string>;
  tracker: CallTracker;
  injector: ConnectionInjector;
}

export interface FrontDoor {
  port: number;
  /** stops accepting connections */
  stopListening(): Promise<void>;
  /** GOAWAY on every connection: the streams open finish, then each connection ends */
  drain(): void;
  /** calls a drain waits for (all but endless streams) whose answer has not yet gone out to the client */
  callsOpen(): number;
  /** resolves once every connection has ended */
  closed(): Promise<void>;
  /** ends every connection now */
  destroy(): void;
}

export async function openFrontDoor(options: FrontDoorOptions): Promise<FrontDoor> {
  const sessions = new Set<H2Connection>();
  let allClosed: (() => void) | undefined;

  const dispatch = (stream: H2Stream, grpcJs: () => GrpcJsConnection) => {
    const refused = refusal(stream.headers, options.methodPaths);
    if (refused) return refuse(stream, refused);
    if (options.fastPath && qualifiesForFastPath(stream.headers, stream.remoteEnded)) {
      new FastCall(stream, options.faults, options.hostname, options.tracker, (read) => grpcJs().forward(stream, read));
    } else {
      forwardAfterThisRead(stream, grpcJs);
    }
  };

  const accept = (socket: Socket) => {
    let grpcJs: GrpcJsConnection | undefined;
    const session = new H2Connection(
      socket,
      'server',
      {
        onStream: (stream) => dispatch(stream, () => (grpcJs ??= new GrpcJsConnection(options.injector, options.limits.maxForwardedStreams))),
        onClose: () => {
          grpcJs?.close();
          sessions.delete(session);
          if (sessions.size === 0) allClosed?.();
        },
      },
      options.limits,
    );
    sessions.add(session);
  };

  const listener = options.tls ? await tlsListener(options.tls, options.limits.handshakeTimeoutMs, accept) : createNetServer(accept);
  listener.on('error', () => {}); // accept errors (EMFILE) are not the server's end
  const port = await listen(listener, options.host, options.port);
  return {
    port,
    stopListening: () => new Promise((resolve) => listener.close(() => resolve())),
    drain: () => {
      for (const session of sessions) session.drain();
    },
    callsOpen: () => {
      let open = 0;
      for (const session of sessions) for (const stream of session.streams()) if (!options.endlessPaths.has(stream.headers[':path'] ?? '')) open++;
      return open;
    },
    closed: () => (sessions.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => (allClosed = resolve))),
    destroy: () => {
      listener.close();
      for (const session of [...sessions]) session.destroy();
    },
  };
}

async function tlsListener(tls: FrontDoorTls, handshakeTimeoutMs: number, accept: (socket: Socket) => void): Promise<NetServer> {
  const { createServer } = await import('node:tls');
  const mtls = tls.clientCa !== undefined;
  const server = createServer({
    cert: tls.cert,
    key: tls.key,
    ALPNProtocols: ['h2'],
    // (0 is "no limit" for the connection's own handshake timeout; node:tls would read it as at once)
    handshakeTimeout: handshakeTimeoutMs > 0 ? handshakeTimeoutMs : 2 ** 31 - 1,
    ...(mtls ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    // HTTP/2 over TLS is negotiated with ALPN h2 (RFC 9113 §3.2): a client that offers none is not served
    if (socket.alpnProtocol !== 'h2') return socket.destroy();
    accept(socket);
  });
  server.on('tlsClientError', () => {}); // a failed handshake ends that connection only
  return server;
}

/**
 * Hands the stream to grpc-js once the bytes read with its HEADERS have all been handled: a stream the client
 * resets in the same read (HTTP/2 rapid reset, CVE-2023-44487) never costs a grpc-js call.
 */
function forwardAfterThisRead(stream: H2Stream, grpcJs: () => GrpcJsConnection): void {
  const read: Buffer[] = [];
  stream.handler = { onData: (chunk) => read.push(chunk), onEnd: () => {}, onReset: () => {} };
  process.nextTick(() => {
    if (!stream.closed) grpcJs().forward(stream, read);
  });
}

/** Sends a refusal at once; one with a body ends our side once the request has ended (it is still checked until then). */
function refuse(stream: H2Stream, refused: Refusal): void {
  const { fields, body } = refused;
  if (!body) return stream.respond(fields, true);
  stream.respond(fields);
  stream.write(body, stream.remoteEnded);
  stream.handler = { onData: (chunk) => stream.consumed(chunk.length), onEnd: () => stream.write(Buffer.alloc(0), true), onReset: () => {} };
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
