// The client's command line: the flag table (the Go client's names and defaults, then the new ones) and
// its translation into typed ClientOptions. Everything wrong with the command line is a UsageError here
// (exit 2), before any connection is made.
import { parseFlags, UsageError, type FlagTable } from '../flags.ts';
import { parseStatusCode, STATUS_NAMES } from '../status.ts';
import { DEFAULT_SERVER_NAME, loadKeyPair, loadRoots } from '../tls.ts';
import type { Backoff } from './reconnect.ts';

export const ENV_PREFIX = 'HELLO_CLIENT_';
export const SYNOPSIS = 'client [flags] [name]';

export const clientFlags = {
  server_addr: { kind: 'string', default: 'localhost:10000', arg: 'host:port', describe: 'the server: host:port, [IPv6]:port, DNS name:port' },
  tls: { kind: 'boolean', describe: 'use TLS (trusting the bundled TEST-ONLY CA unless -ca_file)' },
  ca_file: { kind: 'string', arg: 'file', describe: 'PEM roots to trust (default: the bundled test CA)' },
  server_host_override: {
    kind: 'string',
    default: DEFAULT_SERVER_NAME,
    arg: 'name',
    describe: 'with -tls: the name verified in the server certificate (and sent as SNI and :authority)',
  },
  cert_file: { kind: 'string', arg: 'file', describe: 'with -tls: PEM client certificate for mTLS' },
  key_file: { kind: 'string', arg: 'file', describe: 'with -tls: PEM private key of -cert_file' },
  timeout: { kind: 'seconds', default: 1, min: 0, max: 99_999_999, describe: 'deadline of each request, connecting included' },
  count: { kind: 'int', default: 1, min: 1, max: 10_000_000, describe: 'number of requests' },
  interval: { kind: 'seconds', default: 0, min: 0, max: 86_400, describe: 'time between the starts of requests' },
  concurrency: { kind: 'int', default: 1, min: 1, max: 10_000, describe: 'requests in flight at once (with -count)' },
  connections: { kind: 'int', default: 1, min: 1, max: 1000, arg: 'n', describe: 'HTTP/2 connections, requests taking turns (an L4 balancer spreads connections, not calls)' },
  H: { kind: 'list', arg: "'key: value'", describe: 'request metadata, repeatable (keys ending in -bin take base64 values)' },
  authority: { kind: 'string', arg: 'host[:port]', describe: 'the :authority header (default: -server_addr, or -server_host_override with -tls)' },
  health: { kind: 'boolean', describe: 'call grpc.health.v1.Health/Check instead of SayHello; succeed only on SERVING' },
  service: { kind: 'string', arg: 'name', describe: 'with -health: the service to check (default "": the whole server)' },
  stream: { kind: 'string', arg: 'server|bidi', describe: 'a stream instead of one call: server (GreeterStream/SayHelloStream) or bidi (SayHelloBidi)' },
  messages: { kind: 'int', min: 1, max: 1_000_000, arg: 'n', describe: 'with -stream: replies asked for (server), requests sent (bidi); default 10' },
  stream_interval: { kind: 'seconds', min: 0, max: 300, describe: 'with -stream: time between the replies asked for (server), between requests (bidi); default 0' },
  keepalive: { kind: 'seconds', min: 0.1, max: 86_400, describe: 'an HTTP/2 PING whenever the server sent nothing for this long; unanswered for 20s, the connection is given up' },
  json: { kind: 'boolean', describe: 'print one JSON document (docs/client-output.schema.json) instead of lines' },
  v: { kind: 'boolean', describe: 'verbose: connection attempts and backoff waits on stderr' },
  backoff_initial: { kind: 'seconds', default: 1, min: 0.001, max: 86_400, describe: 'reconnect: wait before the first retry' },
  backoff_max: { kind: 'seconds', default: 120, min: 0.001, max: 86_400, describe: 'reconnect: longest wait between attempts' },
  backoff_multiplier: { kind: 'number', default: 1.6, min: 1, max: 100, describe: 'reconnect: growth of the wait per attempt' },
  backoff_jitter: { kind: 'number', default: 0.2, min: 0, max: 1, describe: 'reconnect: random spread of each wait (0.2: ±20%)' },
  retry_on: { kind: 'list', arg: 'CODE,...', describe: 'also retry requests answered with these statuses (e.g. UNAVAILABLE)' },
  expect_code: { kind: 'string', arg: 'CODE[,CODE]', describe: 'exit 0 only if every request ends with (one of) these statuses' },
  expect_min_latency: { kind: 'seconds', min: 0, describe: 'exit 0 only if every request takes at least this long' },
  expect_max_latency: { kind: 'seconds', min: 0, describe: 'exit 0 only if every request takes at most this long' },
  expect_answered_by: { kind: 'string', arg: 'server|other|none', describe: 'exit 0 only if every request was answered by a grpc-helloworld server, by something else (a mesh abort, a proxy), or by nothing' },
  expect_messages: { kind: 'int', min: 0, max: 1_000_000, arg: 'n', describe: 'with -stream: exit 0 only if every stream got exactly this many messages' },
} as const satisfies FlagTable;

export interface Target {
  host: string;
  port: number;
  /** host:port as it is written in a URL ([::1]:10000) */
  address: string;
}

export interface ClientTls {
  ca: Buffer;
  /** the name verified in the server certificate and sent as SNI */
  serverName: string;
  cert?: Buffer;
  key?: Buffer;
}

export type CallKind = { kind: 'hello'; name: string } | { kind: 'health'; service: string };

export const STREAM_KINDS = ['server', 'bidi'] as const;
export type StreamKind = (typeof STREAM_KINDS)[number];

/** -stream: SayHelloStream or SayHelloBidi instead of SayHello. */
export interface StreamOptions {
  kind: StreamKind;
  /** -messages: replies asked for (server), requests sent (bidi) */
  messages: number;
  /** -stream_interval, in ms */
  intervalMs: number;
}

export const DEFAULT_STREAM_MESSAGES = 10;

/** Who answered a request (run.ts, RequestResult.answeredBy). */
export const ANSWERED_BY = ['server', 'other', 'none'] as const;
export type AnsweredBy = (typeof ANSWERED_BY)[number];

export interface Expectations {
  /** every request ends with one of these codes (OK when only latencies are expected) */
  codes: number[];
  minLatencyMs?: number;
  maxLatencyMs?: number;
  /** every request was answered by this (a server, something else in between, nothing) */
  answeredBy?: AnsweredBy;
  /** -stream: every stream got exactly this many messages */
  messages?: number;
}

export interface ClientOptions {
  target: Target;
  tls?: ClientTls;
  authority: string;
  timeoutMs: number;
  count: number;
  intervalMs: number;
  concurrency: number;
  /** -connections: HTTP/2 connections the requests take turns on (default 1) */
  connections?: number;
  /** [key, value] in order; keys lower case, -bin values base64 */
  metadata: Array<[string, string]>;
  call: CallKind;
  /** -stream (a SayHello stream; call is then `hello`) */
  stream?: StreamOptions;
  /** -keepalive, in ms */
  keepaliveMs?: number;
  json: boolean;
  verbose: boolean;
  backoff: Backoff;
  /** answered statuses that are retried like transport failures */
  retryOn: ReadonlySet<number>;
  expectations?: Expectations;
}

export function clientOptionsFromArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ClientOptions | 'help' {
  const { flags, positionals, help } = parseFlags(clientFlags, argv, env, ENV_PREFIX);
  if (help) return 'help';
  if (positionals.length > 1) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[1])} (the name is one argument: quote it)`);
  if (flags.health && positionals.length > 0) throw new UsageError(`a name is for SayHello: -health takes -service NAME, not ${JSON.stringify(positionals[0])}`);
  if (flags.service !== undefined && !flags.health) throw new UsageError('-service needs -health');
  if (!flags.tls && (flags.ca_file || flags.cert_file || flags.key_file)) throw new UsageError('-ca_file, -cert_file and -key_file need -tls');
  if (flags.timeout <= 0) throw new UsageError(`invalid value "${flags.timeout}" for -timeout: want more than 0 seconds`);

  const target = parseTarget(flags.server_addr);
  const tls: ClientTls | undefined = flags.tls
    ? { ca: loadRoots(flags.ca_file), serverName: flags.server_host_override, ...loadKeyPair(flags.cert_file, flags.key_file) }
    : undefined;
  if (tls && !tls.serverName) throw new UsageError('-server_host_override must not be empty with -tls');
  const authority = flags.authority ?? (tls ? tls.serverName : target.address);
  // printable ASCII: a header value is octets (an international name goes as its punycode, xn--…)
  if (!/^[!-~]+$/.test(authority) || /[/?#@]/.test(authority)) {
    const flag = flags.authority !== undefined ? '-authority' : tls ? '-server_host_override' : '-server_addr';
    throw new UsageError(`invalid value ${JSON.stringify(authority)} for ${flag}: want host[:port] in ASCII`);
  }

  const expectCodes = flags.expect_code === undefined ? undefined : parseCodes([flags.expect_code], '-expect_code', true);
  const answeredBy = flags.expect_answered_by;
  if (answeredBy !== undefined && !(ANSWERED_BY as readonly string[]).includes(answeredBy)) {
    throw new UsageError(`invalid value ${JSON.stringify(answeredBy)} for -expect_answered_by: want ${ANSWERED_BY.join(', ')}`);
  }
  const stream = streamOptions(flags);
  const expecting =
    expectCodes !== undefined || flags.expect_min_latency !== undefined || flags.expect_max_latency !== undefined || answeredBy !== undefined || flags.expect_messages !== undefined;
  if (flags.expect_min_latency !== undefined && flags.expect_max_latency !== undefined && flags.expect_min_latency > flags.expect_max_latency) {
    throw new UsageError('-expect_min_latency is more than -expect_max_latency: no request can meet both');
  }

  return {
    target,
    ...(tls ? { tls } : {}),
    authority,
    timeoutMs: flags.timeout * 1000,
    count: flags.count,
    intervalMs: flags.interval * 1000,
    concurrency: flags.concurrency,
    ...(flags.connections > 1 ? { connections: flags.connections } : {}),
    metadata: flags.H.map(parseHeader),
    call: flags.health ? { kind: 'health', service: flags.service ?? '' } : { kind: 'hello', name: positionals[0] ?? 'world' },
    ...(stream ? { stream } : {}),
    ...(flags.keepalive !== undefined ? { keepaliveMs: flags.keepalive * 1000 } : {}),
    json: flags.json,
    verbose: flags.v,
    backoff: {
      initialMs: flags.backoff_initial * 1000,
      maxMs: flags.backoff_max * 1000,
      multiplier: flags.backoff_multiplier,
      jitter: flags.backoff_jitter,
    },
    retryOn: new Set(parseCodes(flags.retry_on, '-retry_on', false)),
    ...(expecting
      ? {
          expectations: {
            codes: expectCodes ?? [0],
            ...(flags.expect_min_latency !== undefined ? { minLatencyMs: flags.expect_min_latency * 1000 } : {}),
            ...(flags.expect_max_latency !== undefined ? { maxLatencyMs: flags.expect_max_latency * 1000 } : {}),
            ...(answeredBy !== undefined ? { answeredBy: answeredBy as AnsweredBy } : {}),
            ...(flags.expect_messages !== undefined ? { messages: flags.expect_messages } : {}),
          },
        }
      : {}),
  };
}

/** -stream and the flags that go with it; undefined without -stream (and then those flags are a usage error). */
function streamOptions(flags: ReturnType<typeof parseFlags<typeof clientFlags>>['flags']): StreamOptions | undefined {
  if (flags.stream === undefined) {
    const stray = (['messages', 'stream_interval', 'expect_messages'] as const).find((f) => flags[f] !== undefined);
    if (stray) throw new UsageError(`-${stray} needs -stream server or -stream bidi`);
    return undefined;
  }
  const kind = flags.stream.trim().toLowerCase();
  if (!(STREAM_KINDS as readonly string[]).includes(kind)) throw new UsageError(`invalid value ${JSON.stringify(flags.stream)} for -stream: want ${STREAM_KINDS.join(' or ')}`);
  if (flags.health) throw new UsageError('-stream calls GreeterStream: not with -health');
  return { kind: kind as StreamKind, messages: flags.messages ?? DEFAULT_STREAM_MESSAGES, intervalMs: (flags.stream_interval ?? 0) * 1000 };
}

/**
 * `host:port`, `[IPv6]:port`, `name:port`; also `dns:///host:port` as grpc-go accepts it. An empty host
 * (`:10000`) is localhost, as in Go. No port, or an IPv6 address without brackets: a UsageError.
 */
export function parseTarget(text: string): Target {
  const bad = (why: string) => new UsageError(`invalid -server_addr ${JSON.stringify(text)}: ${why}`);
  const t = text.trim().replace(/^dns:(\/\/\/)?/, '');
  if (t.includes('/')) throw bad('want host:port, e.g. localhost:10000 (no scheme, no path)');
  let host: string;
  let port: string | undefined;
  const bracketed = /^\[([0-9A-Fa-f:.]+(?:%[\w.-]+)?)\](?::(.*))?$/.exec(t);
  if (bracketed) {
    host = bracketed[1]!;
    port = bracketed[2];
  } else {
    const colon = t.lastIndexOf(':');
    if (colon >= 0 && t.indexOf(':') !== colon) throw bad('an IPv6 address goes in brackets, e.g. [::1]:10000');
    host = colon >= 0 ? t.slice(0, colon) : t;
    port = colon >= 0 ? t.slice(colon + 1) : undefined;
    if (host === '') host = 'localhost';
    if (!/^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_.])?$/.test(host)) throw bad('want host:port, e.g. localhost:10000');
  }
  if (port === undefined || port === '') throw bad('missing port, want host:port, e.g. localhost:10000');
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) throw bad(`port ${JSON.stringify(port)} is not 1 to 65535`);
  return { host, port: Number(port), address: `${host.includes(':') ? `[${host}]` : host}:${Number(port)}` };
}

/** Keys that HTTP/2 or gRPC own: a user value would break the call or be silently dropped. */
const RESERVED_HEADERS = new Set(['content-type', 'te', 'host', 'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

/** `-H 'key: value'`: the key lower case; `-bin` keys carry base64 (sent unpadded, as gRPC says to). */
export function parseHeader(text: string): [string, string] {
  if (text.trimStart().startsWith(':')) throw new UsageError(`-H ${JSON.stringify(text)}: pseudo-headers are not metadata (use -authority for :authority)`);
  const colon = text.indexOf(':');
  if (colon < 0) throw new UsageError(`-H ${JSON.stringify(text)}: want 'key: value'`);
  const key = text.slice(0, colon).trim().toLowerCase();
  const value = text.slice(colon + 1).trim();
  if (!/^[0-9a-z_.-]+$/.test(key)) throw new UsageError(`-H ${JSON.stringify(text)}: a metadata key is letters, digits, '-', '_' and '.'`);
  if (key.startsWith('grpc-')) throw new UsageError(`-H ${JSON.stringify(text)}: grpc-* headers are reserved for gRPC itself (use -timeout for grpc-timeout)`);
  if (RESERVED_HEADERS.has(key)) {
    throw new UsageError(`-H ${JSON.stringify(text)}: ${key} is reserved for HTTP/2 and gRPC${key === 'host' ? ' (use -authority)' : ''}`);
  }
  if (key.endsWith('-bin')) {
    const b64 = value.replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
    if (!/^[A-Za-z0-9+/]*$/.test(b64) || b64.length % 4 === 1) {
      throw new UsageError(`-H ${JSON.stringify(text)}: a -bin key takes a base64 value`);
    }
    return [key, b64];
  }
  if (!/^[\x20-\x7e]*$/.test(value)) {
    throw new UsageError(`-H ${JSON.stringify(text)}: a value is printable ASCII (binary or UTF-8 values need a key ending in -bin, base64-encoded)`);
  }
  return [key, value];
}

function parseCodes(values: readonly string[], flag: string, allowOk: boolean): number[] {
  const codes: number[] = [];
  for (const part of values.flatMap((v) => v.split(',')).map((s) => s.trim()).filter(Boolean)) {
    const code = parseStatusCode(part);
    if (code === undefined) throw new UsageError(`invalid value ${JSON.stringify(part)} for ${flag}: want gRPC status names or numbers (${STATUS_NAMES.join(', ')})`);
    if (code === 0 && !allowOk) throw new UsageError(`invalid value ${JSON.stringify(part)} for ${flag}: OK is not a failure`);
    if (!codes.includes(code)) codes.push(code);
  }
  if (allowOk && codes.length === 0) throw new UsageError(`${flag} needs a status name or number`);
  return codes;
}
