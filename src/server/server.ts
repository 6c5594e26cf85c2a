// Builds and runs the gRPC server: Greeter, GreeterStream, standard health (grpc.health.v1, for Kubernetes `grpc:` probes
// and grpc-health-probe), server reflection (for grpcurl), the access log, and graceful shutdown.
// grpc-js serves every call the fast path does not answer; it listens on no port of its own. Connections come in through the front door
// (front-door.ts: our own HTTP/2, which answers plain SayHellos itself) and reach grpc-js in memory.
import { Server, ServerCredentials, status, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { DEFAULT_SERVER_LIMITS, type ServerLimits } from '../h2/limits.ts';
import { ReflectionService } from '@grpc/reflection';
import { GREETER_SERVICE, greeterService, greeterStreamService, reflectedPackages } from '../proto.ts';
import { trackCalls, type AccessLogEntry } from './access-log.ts';
import type { FaultOptions } from './faults.ts';
import { openFrontDoor, type FrontDoorTls } from './front-door.ts';
import { greeterImplementation } from './greeter.ts';
import { greeterStreams } from './greeter-stream.ts';
import { ServerHealth } from './health-check.ts';

export type ServerTls = FrontDoorTls;

export interface ServerOptions extends FaultOptions {
  /** '' listens on all interfaces, IPv4 and IPv6 */
  host: string;
  /** 0 picks a free port */
  port: number;
  tls?: ServerTls;
  hostname: string;
  /** how long shutdown() lets in-flight RPCs finish by default */
  graceMs: number;
  accessLog: ((entry: AccessLogEntry) => void) | null;
  /** answer plain SayHellos, health Checks and SayHelloStreams in the front door (fast-path.ts, health-check.ts, stream-fast-path.ts); default true */
  fastPath?: boolean;
  /** HTTP/2 limits per connection (h2/limits.ts has the defaults) */
  limits?: Partial<ServerLimits>;
}

export interface RunningServer {
  port: number;
  /** whether plain SayHellos and health Checks take the fast path (fast-path.ts, health-check.ts) */
  fastPath: boolean;
  health: ServerHealth;
  /** RPCs being served, unary calls and GreeterStream streams (health Watch and reflection streams are not counted: they end only with their client) */
  inFlight(): number;
  /**
   * Health goes NOT_SERVING; 10 ms later the listener closes and connections are told to go away (no new
   * RPCs), and the RPCs in flight finish. When `graceMs` is over, the GreeterStream streams still open end
   * UNAVAILABLE, and what is still open a moment later is cut. Resolves true when everything finished within
   * `graceMs`; false when something was ended or cut.
   */
  shutdown(graceMs?: number): Promise<boolean>;
  /** Ends every connection and call now. */
  forceShutdown(): void;
}

/** How long health is NOT_SERVING before the listener closes, on a graceful shutdown. */
const NOT_SERVING_HEADSTART_MS = 10;
/** After the grace period: how long the streams ended UNAVAILABLE have to get their status out before everything is cut. */
export const STATUS_FLUSH_MS = 500;
export const SHUTTING_DOWN = 'the server is shutting down: its grace period is over';

/** The services whose health is reported: "" is the whole server. */
export const HEALTH_SERVICES = ['', GREETER_SERVICE] as const;

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const methodPaths = new Set<string>();
  /** streams that end only when their client ends them (health Watch, reflection): a drain does not wait for them */
  const endlessPaths = new Set<string>();
  /** methods whose client streams its messages: grpc-js hands each on, holding none until the call ends */
  const requestStreamPaths = new Set<string>();
  const tracker = trackCalls(options.accessLog, endlessPaths);
  // (channelz stays on: with grpc.enable_channelz 0, grpc-js 1.14's forceShutdown no longer finds the
  // connections to close. Its per-call cost is gone anyway for the calls fast-path.ts answers.)
  const server = new Server({ interceptors: [tracker.interceptor] });
  const add = (service: ServiceDefinition, implementation: UntypedServiceImplementation, endless: boolean) => {
    for (const method of Object.values(service)) {
      methodPaths.add(method.path);
      if (endless && (method.requestStream || method.responseStream)) endlessPaths.add(method.path);
      if (method.requestStream) requestStreamPaths.add(method.path);
    }
    server.addService(service, implementation);
  };
  // The packages add their services themselves, through this: it notes their methods and which stream.
  const registrar: Pick<Server, 'addService'> = { addService: (service, implementation) => add(service, implementation, true) };
  // A planned crash (faults.ts): main.ts ends the process; in-process (tests), every connection ends at once,
  // as they do when the process ends.
  const faults = { ...options, crash: options.crash ?? (() => forceShutdown()) };
  add(greeterService, greeterImplementation(faults, options.hostname), false);
  const streams = greeterStreams(options, options.hostname);
  add(greeterStreamService, streams.implementation, false);

  const health = new ServerHealth(Object.fromEntries(HEALTH_SERVICES.map((s) => [s, 'SERVING'])));
  health.addToServer(registrar);
  new ReflectionService(reflectedPackages()).addToServer(registrar);

  let shuttingDown: Promise<boolean> | undefined;
  const fastPath = options.fastPath !== false;
  const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
  const door = await openFrontDoor({
    host: options.host,
    port: options.port,
    tls: options.tls,
    hostname: options.hostname,
    faults,
    fastPath,
    health,
    openStreams: streams.tracked,
    limits: { ...DEFAULT_SERVER_LIMITS, ...options.limits },
    methodPaths,
    endlessPaths,
    requestStreamPaths,
    tracker,
    injector,
    // health goes NOT_SERVING as shutdown begins: GET /readyz says so too
    draining: () => shuttingDown !== undefined,
  });

  let forced = false;
  const forceShutdown = () => {
    forced = true;
    door.destroy();
    injector.destroy();
    server.forceShutdown();
  };
  const shutdown = (graceMs = options.graceMs) =>
    (shuttingDown ??= new Promise<boolean>((resolve) => {
      for (const service of HEALTH_SERVICES) health.setStatus(service, 'NOT_SERVING');
      // Health watchers learn NOT_SERVING over connections already open, a write away; closing the listener in
      // the same tick let a watcher see the refusal first. The grace period counts from now.
      const headstart = Math.min(NOT_SERVING_HEADSTART_MS, graceMs);
      setTimeout(() => {
        if (forced) return resolve(false);
        let clean = true;
        let cut: NodeJS.Timeout | undefined;
        const graceOver = setTimeout(() => {
          clean = false;
          // streams end with a status their clients can read; whatever is still open a moment later is cut
          const ending = streams.open() > 0;
          streams.endAll(status.UNAVAILABLE, SHUTTING_DOWN);
          cut = setTimeout(() => {
            forceShutdown();
            resolve(false);
          }, ending ? STATUS_FLUSH_MS : 0);
        }, graceMs - headstart);
        void door.stopListening();
        door.drain();
        // Connections end with their last stream, including health Watch streams that never end by
        // themselves: once the calls that end by themselves are answered, end those too. (The front door sees
        // every call, fast or forwarded, until its answer has gone out; grpc-js counts one done when it sends it.)
        void door.callsDone().then(() => door.destroy());
        void door.closed().then(() => {
          clearTimeout(graceOver);
          clearTimeout(cut);
          injector.destroy();
          server.forceShutdown();
          resolve(clean && !forced);
        });
      }, headstart);
    }));

  return { port: door.port, fastPath, health, inFlight: tracker.inFlight, shutdown, forceShutdown };
}
