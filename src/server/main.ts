// The server's command line: flags -> ServerOptions -> startServer(), signals -> graceful shutdown; with
// -workers N > 1, N worker processes do that and this one supervises them (cluster.ts).
// Exit codes: exit-codes.ts (ServerExit); a bad flag or configuration throws UsageError, which cli.ts maps.
import { hostname } from 'node:os';
import { runMain } from '../cli.ts';
import { SERVER_EXIT_CODES, ServerExit } from '../exit-codes.ts';
import { parseFlags, usage, UsageError, type FlagTable } from '../flags.ts';
import { parseStatusCode } from '../status.ts';
import { loadKeyPair, loadRoots, testServerKeyPair } from '../tls.ts';
import { boundedWriter, jsonLineWriter, lineBatcher } from './access-log.ts';
import { autoWorkers, isWorker, onCommand, report, startWorkers } from './cluster.ts';
import type { RunningServer, ServerOptions } from './server.ts';
import { RUNTIME_V8_FLAGS } from './v8-flags.ts';
import { DEFAULT_SERVER_LIMITS } from '../h2/limits.ts';

const ENV_PREFIX = 'HELLO_SERVER_';

export const serverFlags = {
  port: { kind: 'int', default: 10000, min: 0, max: 65535, describe: 'listen port (0 picks a free one)', arg: 'port' },
  host: { kind: 'string', default: '', describe: 'listen address (default: all interfaces, IPv4 and IPv6)', arg: 'address' },
  tls: { kind: 'boolean', describe: 'serve TLS (the bundled TEST-ONLY certificate unless -cert_file/-key_file)' },
  cert_file: { kind: 'string', describe: 'PEM server certificate (chain)', arg: 'file' },
  key_file: { kind: 'string', describe: 'PEM private key of -cert_file', arg: 'file' },
  client_ca_file: { kind: 'string', describe: 'mTLS: require client certificates signed by these PEM roots', arg: 'file' },
  sleep: { kind: 'seconds', default: 0, min: 0, max: 300, describe: 'wait this long before answering each SayHello (and before each reply of a stream)' },
  grace: { kind: 'seconds', default: 10, min: 0, describe: 'on SIGTERM/SIGINT, how long in-flight RPCs may take to finish (streams still open then end UNAVAILABLE)' },
  fail_rate: { kind: 'number', default: 0, min: 0, max: 1, describe: 'fraction of SayHello calls (and GreeterStream streams) answered with -fail_code', arg: '0..1' },
  fail_code: { kind: 'string', default: 'UNAVAILABLE', describe: 'status for -fail_rate failures (name or number)', arg: 'code' },
  crash_rate: { kind: 'number', default: 0, min: 0, max: 1, describe: 'fraction of SayHello calls that make the server EXIT (code 3) without answering, for retry and outlier tests', arg: '0..1' },
  access_log: { kind: 'boolean', default: true, describe: 'one JSON line per RPC on stdout (-access_log=false: none)' },
  max_concurrent_streams: { kind: 'int', default: DEFAULT_SERVER_LIMITS.maxConcurrentStreams, min: 1, max: 2 ** 31 - 1, describe: 'HTTP/2 streams one connection may have open (past it: REFUSED_STREAM)', arg: 'n' },
  max_header_list_size: { kind: 'int', default: DEFAULT_SERVER_LIMITS.maxHeaderListSize, min: 4096, max: 16 * 1024 * 1024, describe: 'request header list size, bytes (past it the stream is reset)', arg: 'bytes' },
  max_connection_memory: { kind: 'int', default: DEFAULT_SERVER_LIMITS.maxConnectionMemory, min: 65_536, max: 2 ** 31 - 1, describe: 'bytes one connection may hold for its client (past it: new streams refused)', arg: 'bytes' },
  max_forwarded_streams: { kind: 'int', default: DEFAULT_SERVER_LIMITS.maxForwardedStreams, min: 1, max: 2 ** 31 - 1, describe: 'streams of one connection served by grpc-js at once: all but plain SayHello (past it: REFUSED_STREAM)', arg: 'n' },
  handshake_timeout: { kind: 'seconds', default: DEFAULT_SERVER_LIMITS.handshakeTimeoutMs / 1000, min: 0, max: 3600, describe: 'a new connection must finish TLS and start HTTP/2 (or send its HTTP/1.1 request head) within this (0: no limit)' },
  idle_timeout: { kind: 'seconds', default: DEFAULT_SERVER_LIMITS.idleTimeoutMs / 1000, min: 0, max: 2_000_000, describe: 'close a connection (GOAWAY) with no RPC for this long (0: never)' },
  workers: { kind: 'int', default: 0, min: 0, max: 64, describe: 'processes serving the port: 1 serves in this process; 0 one per CPU available (at most 4, and as many as the memory limit holds)', arg: 'n' },
} as const satisfies FlagTable;

export interface ServerCliOptions extends ServerOptions {
  /** processes serving the port (1: this one; 0 resolved to the CPUs available) */
  workers: number;
}

/** How far the access log's reader may fall behind before lines are dropped (and counted on stderr). */
const ACCESS_LOG_BACKLOG = 4 * 1024 * 1024;

/** The access log goes out in batches (one write per event-loop turn); flushed before every exit. */
const stdoutLines = lineBatcher(
  boundedWriter(process.stdout, ACCESS_LOG_BACKLOG, (n) => process.stderr.write(`access log: ${n} lines dropped while stdout was more than ${ACCESS_LOG_BACKLOG >> 20} MiB behind\n`)),
);
process.on('exit', () => stdoutLines.flush());

export function serverOptionsFromArgs(argv: readonly string[], env: NodeJS.ProcessEnv): ServerCliOptions | 'help' {
  const { flags, positionals, help } = parseFlags(serverFlags, argv, env, ENV_PREFIX);
  if (help) return 'help';
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const failCode = parseStatusCode(flags.fail_code);
  if (failCode === undefined || failCode === 0) {
    throw new UsageError(`invalid value ${JSON.stringify(flags.fail_code)} for -fail_code: want a gRPC status code other than OK`);
  }
  if (!flags.tls && (flags.cert_file || flags.key_file || flags.client_ca_file)) {
    throw new UsageError('-cert_file, -key_file and -client_ca_file need -tls');
  }
  return {
    host: flags.host,
    port: flags.port,
    tls: flags.tls
      ? {
          ...(loadKeyPair(flags.cert_file, flags.key_file) ?? testServerKeyPair()),
          ...(flags.client_ca_file ? { clientCa: loadRoots(flags.client_ca_file, 'client_ca_file') } : {}),
        }
      : undefined,
    sleepMs: flags.sleep * 1000,
    graceMs: flags.grace * 1000,
    failRate: flags.fail_rate,
    failCode,
    crashRate: flags.crash_rate,
    crash: crashProcess,
    hostname: hostname(),
    accessLog: flags.access_log ? jsonLineWriter(stdoutLines.write) : null,
    workers: flags.workers === 0 ? autoWorkers() : flags.workers,
    limits: {
      maxConcurrentStreams: flags.max_concurrent_streams,
      maxHeaderListSize: flags.max_header_list_size,
      // a block within the list size, and room for HPACK's own bytes
      maxHeaderBlock: flags.max_header_list_size + 65_536,
      maxConnectionMemory: flags.max_connection_memory,
      maxForwardedStreams: flags.max_forwarded_streams,
      handshakeTimeoutMs: flags.handshake_timeout * 1000,
      idleTimeoutMs: flags.idle_timeout * 1000,
    },
  };
}

/**
 * A planned crash: the serving process ends at once, every call in flight with it (their connections close
 * unanswered), exit code ServerExit.CRASHED; with -workers the primary then stops every other worker and exits with
 * the same code. The access log is flushed first (the crashing call's own line included).
 */
function crashProcess(why: string): void {
  process.stderr.write(`server: CRASH on purpose (${why}): exiting with code ${ServerExit.CRASHED} without answering\n`);
  stdoutLines.flush();
  process.exit(ServerExit.CRASHED);
}

function describeListen(options: ServerOptions, port: number): string {
  const where = options.host ? `${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}` : `:${port}`;
  const mode = !options.tls ? 'plaintext' : options.tls.clientCa ? 'TLS, client certificates required (mTLS)' : 'TLS';
  return `Listening ${where} (${mode})`;
}

function listenError(err: unknown, options: ServerOptions): Error {
  const text = String(err);
  const where = `${options.host || ''}:${options.port}`;
  if (/EADDRINUSE/.test(text)) return new Error(`cannot listen on ${where}: address already in use`);
  if (/EACCES/.test(text)) return new Error(`cannot listen on ${where}: permission denied`);
  if (/EADDRNOTAVAIL|ENOTFOUND|EAI_/.test(text)) return new Error(`cannot listen on ${where}: no such local address`);
  return new Error(`cannot listen on ${where}: ${text.split('\n')[0]}`);
}

/**
 * grpc-js and everything that serves is loaded only by the process that serves: a primary supervising
 * workers, -help and a bad flag do without (esbuild keeps a dynamically imported module's initialisation
 * lazy inside the one bundle), which halves the time to Listening with workers.
 */
async function serve(options: ServerOptions): Promise<RunningServer> {
  process.getBuiltinModule('node:v8').setFlagsFromString(RUNTIME_V8_FLAGS); // before any code is hot
  const [grpc, { startServer }] = await Promise.all([import('@grpc/grpc-js'), import('./server.ts')]);
  // grpc-js writes its own error lines (e.g. on a failed bind) next to ours; GRPC_VERBOSITY brings them back.
  if (!process.env.GRPC_VERBOSITY) grpc.setLogVerbosity(grpc.logVerbosity.NONE);
  return startServer(options);
}


async function main(): Promise<number | undefined> {
  const options = serverOptionsFromArgs(process.argv.slice(2), process.env);
  if (options === 'help') {
    process.stdout.write(`${usage(serverFlags, 'server [flags]', ENV_PREFIX, SERVER_EXIT_CODES)}\n`);
    return ServerExit.SHUT_DOWN;
  }
  if (isWorker()) return serveAsWorker(options);
  if (options.crashRate) {
    process.stderr.write(`server: WARNING -crash_rate ${options.crashRate}: that fraction of SayHello calls ENDS THIS SERVER (exit ${ServerExit.CRASHED}) without answering\n`);
  }
  if (options.workers > 1) return superviseWorkers(options);

  const server = await serve(options).catch((err: unknown) => {
    throw listenError(err, options);
  });

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      process.stderr.write(`${signal} again: forcing exit with ${server.inFlight()} RPCs in flight\n`);
      server.forceShutdown();
      process.exit(ServerExit.FORCED);
    }
    process.stderr.write(`${signal}: NOT_SERVING, draining ${server.inFlight()} RPCs in flight (grace ${options.graceMs / 1000}s)\n`);
    void server.shutdown().then((clean) => {
      process.stderr.write(clean ? 'drained, exiting\n' : `grace period over: cut the RPCs still in flight, exiting\n`);
      process.exit(ServerExit.SHUT_DOWN);
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // only now: whoever waits for this line may signal at once, and a signal before the handlers kills outright
  process.stderr.write(`${describeListen(options, server.port)}\n`);
  return undefined; // keep serving
}

async function superviseWorkers(options: ServerCliOptions): Promise<undefined> {
  const primary = await startWorkers(options.workers);
  primary.onWorkerDeath((why, code) => {
    process.stderr.write(`server: ${why}: stopping\n`);
    void primary.force().then(() => process.exit(code === ServerExit.CRASHED ? ServerExit.CRASHED : ServerExit.CANNOT_SERVE));
  });

  let signals = 0;
  const onSignal = async (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      const inFlight = await primary.force();
      process.stderr.write(`${signal} again: forcing exit with ${inFlight} RPCs in flight\n`);
      process.exit(ServerExit.FORCED);
    }
    const { inFlight, done } = await primary.drain(options.graceMs);
    if (signals > 1) return;
    process.stderr.write(`${signal}: NOT_SERVING, draining ${inFlight} RPCs in flight (grace ${options.graceMs / 1000}s)\n`);
    const clean = await done;
    if (signals > 1) return;
    process.stderr.write(clean ? 'drained, exiting\n' : `grace period over: cut the RPCs still in flight, exiting\n`);
    process.exit(ServerExit.SHUT_DOWN);
  };
  process.on('SIGTERM', (s) => void onSignal(s));
  process.on('SIGINT', (s) => void onSignal(s));
  process.stderr.write(`${describeListen(options, primary.port)}, ${options.workers} workers\n`); // after the handlers, as above
  return undefined;
}

/** A worker: serves, tells the primary when it listens, drains or cuts when the primary says so. */
async function serveAsWorker(options: ServerCliOptions): Promise<undefined> {
  const ignore = () => {}; // the primary relays signals (Ctrl-C reaches the whole process group)
  process.on('SIGTERM', ignore);
  process.on('SIGINT', ignore);
  const exitAfter = (message: Parameters<typeof report>[0], code: number) => {
    stdoutLines.flush();
    report(message, () => process.exit(code));
  };
  const server = await serve(options).catch((err: unknown) => {
    exitAfter({ evt: 'failed', message: listenError(err, options).message }, ServerExit.CANNOT_SERVE);
    return new Promise<never>(() => {});
  });
  onCommand((command) => {
    if (command.cmd === 'drain') {
      report({ evt: 'draining', inFlight: server.inFlight() });
      void server.shutdown(command.graceMs).then((clean) => exitAfter({ evt: 'drained', clean }, ServerExit.SHUT_DOWN));
    } else {
      const inFlight = server.inFlight();
      server.forceShutdown();
      exitAfter({ evt: 'forcing', inFlight }, ServerExit.FORCED);
    }
  });
  report({ evt: 'listening', port: server.port });
  return undefined;
}

runMain('server', main);
