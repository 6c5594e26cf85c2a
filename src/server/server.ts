// Builds and runs the gRPC server: Greeter, standard health (grpc.health.v1, for Kubernetes `grpc:` probes
// and grpc-health-probe), server reflection (for grpcurl), the access log, and graceful shutdown.
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import { GREETER_SERVICE, greeterService, reflectedPackages } from '../proto.ts';
import { trackCalls, type AccessLogEntry } from './access-log.ts';
import type { FaultOptions } from './faults.ts';
import { installFastPath } from './fast-path.ts';
import { greeterImplementation } from './greeter.ts';

export interface ServerTls {
  cert: Buffer;
  key: Buffer;
  /** require client certificates signed by these roots (mTLS) */
  clientCa?: Buffer;
}

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
  /** answer plain SayHellos outside grpc-js (fast-path.ts); default true */
  fastPath?: boolean;
}

export interface RunningServer {
  port: number;
  /** whether plain SayHellos take the fast path (fast-path.ts) */
  fastPath: boolean;
  health: HealthImplementation;
  /** unary RPCs being served (streams such as health Watch are not counted: they never end by themselves) */
  inFlight(): number;
  /**
   * Health goes NOT_SERVING; 10 ms later the listener closes and connections are told to go away (no new
   * RPCs), and the RPCs in flight finish. Resolves true when they all did within `graceMs`; false when some were cut.
   */
  shutdown(graceMs?: number): Promise<boolean>;
  /** Ends every connection and call now. */
  forceShutdown(): void;
}

/** How long health is NOT_SERVING before the listener closes, on a graceful shutdown. */
const NOT_SERVING_HEADSTART_MS = 10;

/** The services whose health is reported: "" is the whole server. */
export const HEALTH_SERVICES = ['', GREETER_SERVICE] as const;

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const tracker = trackCalls(options.accessLog);
  // (channelz stays on: with grpc.enable_channelz 0, grpc-js 1.14's forceShutdown no longer finds the
  // connections to close. Its per-call cost is gone anyway for the calls fast-path.ts answers.)
  const server = new Server({ interceptors: [tracker.interceptor] });
  server.addService(greeterService, greeterImplementation(options, options.hostname));

  const health = new HealthImplementation(Object.fromEntries(HEALTH_SERVICES.map((s) => [s, 'SERVING'])));
  health.addToServer(server);
  new ReflectionService(reflectedPackages()).addToServer(server);

  const credentials = options.tls
    ? ServerCredentials.createSsl(
        options.tls.clientCa ?? null,
        [{ cert_chain: options.tls.cert, private_key: options.tls.key }],
        options.tls.clientCa !== undefined,
      )
    : ServerCredentials.createInsecure();

  const port = await bind(server, options.host, options.port, credentials);
  const fastPath = options.fastPath !== false && installFastPath(server, options, tracker);

  let shuttingDown: Promise<boolean> | undefined;
  let forced = false;
  const forceShutdown = () => {
    forced = true;
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
        const cut = setTimeout(() => {
          server.forceShutdown();
          resolve(false);
        }, graceMs - headstart);
        // tryShutdown waits for every call, including health Watch streams that never end by themselves:
        // once the unary calls are done, end those too.
        const poll = setInterval(() => {
          if (tracker.inFlight() === 0) server.forceShutdown();
        }, 20);
        server.tryShutdown(() => {
          clearTimeout(cut);
          clearInterval(poll);
          resolve(true);
        });
      }, headstart);
    }));

  return { port, fastPath, health, inFlight: tracker.inFlight, shutdown, forceShutdown };
}

async function bind(server: Server, host: string, port: number, credentials: ServerCredentials): Promise<number> {
  const bindTo = (address: string) =>
    new Promise<number>((resolve, reject) =>
      server.bindAsync(address, credentials, (err, bound) => (err ? reject(err) : resolve(bound))),
    );
  if (host) return bindTo(`${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`);
  // All interfaces: [::] is dual-stack on Linux; fall back to IPv4 where IPv6 is off.
  try {
    return await bindTo(`[::]:${port}`);
  } catch (err) {
    if (/EADDRINUSE|EACCES/.test(String(err))) throw err;
    return bindTo(`0.0.0.0:${port}`);
  }
}
