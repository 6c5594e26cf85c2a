// The listening socket and its connections: node:net or node:tls. A connection that speaks HTTP/2 (plaintext:
// the preface, or bytes that are no HTTP/1 request; TLS: ALPN h2) is an HTTP/2 connection of our own in the
// server role (h2/connection.ts). A stream grpc-js would refuse outright is refused here (refusals.ts); one
// whose headers qualify is answered here (a SayHello: fast-path.ts; a health Check: health-check.ts; a
// GreeterStream stream: stream-fast-path.ts); every
// other stream, and one the fast path hands over, goes to grpc-js (forward.ts). A connection that speaks
// HTTP/1 (plaintext: its request line; TLS: ALPN http/1.1 or none) gets one answer, health or a refusal
// (http1.ts): HTTP/2 is never served over TLS without ALPN h2.
import type { ConnectionInjector } from '@grpc/grpc-js';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { CallTracker } from './access-log.ts';
import type { FaultOptions } from './faults.ts';
import { FastCall, qualifiesForFastPath } from './fast-path.ts';
import { readFirstBytes } from './first-bytes.ts';
import { GrpcJsConnection } from './forward.ts';
import type { OpenStream } from './greeter-stream.ts';
import { HealthCheckCall, qualifiesForHealthCheck, type ServerHealth } from './health-check.ts';
import { serveHttp1 } from './http1.ts';
import { H2Connection, type H2Stream, type StreamHandler } from '../h2/connection.ts';
import type { ServerLimits } from '../h2/limits.ts';
import { refusal, type Refusal } from './refusals.ts';
import { BidiFastCall, qualifiesForBidiFastPath, qualifiesForStreamFastPath, StreamFastCall } from './stream-fast-path.ts';

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
  /** answer qualifying SayHellos, health Checks and SayHelloStreams here; false sends every call to grpc-js */
  fastPath: boolean;
  /** the statuses health Checks answer (health-check.ts) */
  health: Pick<ServerHealth, 'statusOf'>;
  /** the GreeterStream streams being served (a shutdown's grace period ends them): those answered here join them */
  openStreams: Set<OpenStream>;
  limits: ServerLimits;
  /** the paths of every method grpc-js serves */
  methodPaths: ReadonlySet<string>;
  /** the paths of streams that end only when their client ends them (health Watch, reflection): a drain does not wait for them */
  endlessPaths: ReadonlySet<string>;
  /** the paths of methods whose client streams its messages (forward.ts counts what grpc-js holds differently) */
  requestStreamPaths: ReadonlySet<string>;
  tracker: CallTracker;
  injector: ConnectionInjector;
  /** shutdown has begun (health NOT_SERVING): GET /readyz answers 503 */
  draining: () => boolean;
}

export interface FrontDoor {
  port: number;
  /** stops accepting connections */
  stopListening(): Promise<void>;
  /** GOAWAY on every connection: the streams open finish, then each connection ends */
  drain(): void;
  /**
   * Resolves once no call a drain waits for (all but endless streams) still has its answer to send: at once if
   * none has, else when the last such stream or its connection ends. One waiter at a time.
   */
  callsDone(): Promise<void>;
  /** resolves once every connection has ended */
  closed(): Promise<void>;
  /** ends every connection now */
  destroy(): void;
}

export async function openFrontDoor(options: FrontDoorOptions): Promise<FrontDoor> {
  // every connection until its socket closes, whatever it speaks; the HTTP/2 ones with their H2Connection
  const connections = new Map<Socket, H2Connection | undefined>();
  /** drain() was called: a connection that turns out to speak HTTP/2 after it is told to go away at once */
  let goingAway = false;
  let allClosed: (() => void) | undefined;
  let callsDone: (() => void) | undefined;
  const callsOpen = () => {
    let open = 0;
    for (const session of connections.values()) {
      if (session) for (const stream of session.streams()) if (!options.endlessPaths.has(stream.headers[':path'] ?? '')) open++;
    }
    return open;
  };
  const checkCallsDone = () => {
    if (callsDone && callsOpen() === 0) {
      callsDone();
      callsDone = undefined;
    }
  };
  const { handshakeTimeoutMs } = options.limits;

  const dispatch = ({ stream, endedOnHeaders, read }: Arrival, grpcJs: () => GrpcJsConnection) => {
    const refused = refusal(stream.headers, options.methodPaths, options.draining);
    if (refused) {
      for (const chunk of read) stream.consumed(chunk.length);
      return refuse(stream, refused);
    }
    // what came with the HEADERS is handed to a call answered here; if it hands the stream over to grpc-js
    // meanwhile, grpc-js gets what the call had read and the rest of it
    let next = 0;
    const toGrpcJs = (bytes: Buffer[]) => grpcJs().forward(stream, [...bytes, ...read.splice(next)]);
    const start = (call: StreamHandler) => {
      while (next < read.length && stream.handler === call) call.onData(read[next++]!);
      if (stream.remoteEnded && stream.handler === call) call.onEnd();
    };
    if (options.fastPath && qualifiesForFastPath(stream.headers, endedOnHeaders)) {
      start(new FastCall(stream, options.faults, options.hostname, options.tracker, toGrpcJs));
    } else if (options.fastPath && qualifiesForHealthCheck(stream.headers, endedOnHeaders)) {
      start(new HealthCheckCall(stream, options.health, options.tracker, toGrpcJs));
    } else if (options.fastPath && qualifiesForStreamFastPath(stream.headers, endedOnHeaders)) {
      start(new StreamFastCall(stream, options.faults, options.hostname, options.tracker, options.openStreams, toGrpcJs));
    } else if (options.fastPath && qualifiesForBidiFastPath(stream.headers, endedOnHeaders)) {
      start(new BidiFastCall(stream, options.faults, options.hostname, options.tracker, options.openStreams));
    } else {
      grpcJs().forward(stream, read);
    }
  };

  const track = (socket: Socket) => {
    connections.set(socket, undefined);
    socket.on('error', () => socket.destroy()); // whatever it turns out to speak, an error ends this connection only
    socket.once('close', () => {
      connections.delete(socket);
      checkCallsDone();
      if (connections.size === 0) allClosed?.();
    });
  };

  /** `timeoutMs`: what is left of the handshake time (0: no limit) */
  const serveH2 = (socket: Socket, timeoutMs: number) => {
    let grpcJs: GrpcJsConnection | undefined;
    // Streams opened by the read being handled are dispatched once it is: one the client resets in the same
    // read (HEADERS + RST_STREAM, HTTP/2 "rapid reset") costs no call, no access-log line, no grpc-js stream.
    const arrivals: Arrival[] = [];
    const openGrpcJs = () => (grpcJs ??= new GrpcJsConnection(options.injector, options.limits.maxForwardedStreams, options.requestStreamPaths));
    const session = new H2Connection(
      socket,
      'server',
      {
        onStream: (stream) => {
          const arrival = new Arrival(stream);
          stream.handler = arrival;
          arrivals.push(arrival);
        },
        onReceived: () => {
          for (const arrival of arrivals.splice(0)) if (!arrival.stream.closed) dispatch(arrival, openGrpcJs);
        },
        onStreamClosed: checkCallsDone,
        onClose: () => grpcJs?.close(),
      },
      { ...options.limits, handshakeTimeoutMs: timeoutMs },
    );
    connections.set(socket, session);
    if (goingAway) session.drain();
  };
  const answerHttp1 = (socket: Socket, timeoutMs: number) => serveHttp1(socket, { timeoutMs, draining: options.draining });

  const acceptPlain = (socket: Socket) => {
    track(socket);
    const deadline = performance.now() + handshakeTimeoutMs;
    // the handshake time counts from here, whichever protocol the first bytes turn out to be
    const left = () => (handshakeTimeoutMs > 0 ? Math.max(1, Math.ceil(deadline - performance.now())) : 0);
    readFirstBytes(socket, handshakeTimeoutMs, (protocol) => (protocol === 'h2' ? serveH2 : answerHttp1)(socket, left()));
  };
  const acceptTls = (socket: TLSSocket) => {
    track(socket);
    // HTTP/2 over TLS is negotiated with ALPN h2 (RFC 9113 §3.3): without it (kubelet's HTTPS probes offer
    // none), the connection gets HTTP/1.1
    (socket.alpnProtocol === 'h2' ? serveH2 : answerHttp1)(socket, handshakeTimeoutMs);
  };

  const listener = options.tls ? await tlsListener(options.tls, handshakeTimeoutMs, acceptTls) : createNetServer(acceptPlain);
  listener.on('error', () => {}); // accept errors (EMFILE) are not the server's end
  const port = await listen(listener, options.host, options.port);
  const sessions = function* () {
    for (const session of connections.values()) if (session) yield session;
  };
  return {
    port,
    stopListening: () => new Promise((resolve) => listener.close(() => resolve())),
    // (an HTTP/1 connection ends after its one answer, a connection still to speak within the handshake time)
    drain: () => {
      goingAway = true;
      for (const session of sessions()) session.drain();
    },
    callsDone: () =>
      new Promise<void>((resolve) => {
        callsDone = resolve;
        checkCallsDone();
      }),
    closed: () => (connections.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => (allClosed = resolve))),
    destroy: () => {
      listener.close();
      for (const [socket, session] of [...connections]) session ? session.destroy() : socket.destroy();
    },
  };
}

async function tlsListener(tls: FrontDoorTls, handshakeTimeoutMs: number, accept: (socket: TLSSocket) => void): Promise<NetServer> {
  const { createServer } = await import('node:tls');
  const mtls = tls.clientCa !== undefined;
  const server = createServer({
    cert: tls.cert,
    key: tls.key,
    ALPNProtocols: ['h2', 'http/1.1'],
    // (0 is "no limit" for the connection's own handshake timeout; node:tls would read it as at once)
    handshakeTimeout: handshakeTimeoutMs > 0 ? handshakeTimeoutMs : 2 ** 31 - 1,
    ...(mtls ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
  });
  server.on('secureConnection', accept);
  server.on('tlsClientError', () => {}); // a failed handshake ends that connection only
  return server;
}

/** A stream as the read that opened it left it: its DATA so far, and whether its HEADERS ended it (no message at all). */
class Arrival implements StreamHandler {
  readonly endedOnHeaders: boolean;
  readonly read: Buffer[] = [];

  constructor(readonly stream: H2Stream) {
    this.endedOnHeaders = stream.remoteEnded;
  }

  onData(chunk: Buffer): void {
    this.read.push(chunk);
  }

  onEnd(): void {}

  onReset(): void {}
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
