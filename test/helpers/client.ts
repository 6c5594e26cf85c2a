// The client in-process (the same path as dist/client.cjs: flags -> options -> runClient -> exit code), with
// its output captured and every stderr line time-stamped; and small servers that misbehave on purpose.
import { createServer as createH2Server, type Http2Server, type IncomingHttpHeaders, type ServerHttp2Stream, type ServerOptions as H2ServerOptions, type Settings } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { errorLine, exitCodeForError } from '../../src/cli.ts';
import { clientOptionsFromArgs } from '../../src/client/options.ts';
import { runClient } from '../../src/client/program.ts';
export { freePort } from './ports.ts';

export interface ClientRun {
  code: number;
  stdout: string;
  stderr: string;
  /** stderr lines with performance.now() at the time they were written */
  timeline: Array<{ at: number; line: string }>;
  started: number;
  /** the parsed -json document */
  json<T = JsonDocument>(): T;
}

export interface JsonRequest {
  index: number;
  start: string;
  latency_ms: number;
  attempts: number;
  code: number;
  status: string;
  details: string;
  hostname: string | null;
  mesh_attempt: number | null;
  reached: boolean;
  answered_by: 'server' | 'other' | 'none';
  envoy: boolean;
  message: string | null;
  ok: boolean;
  /** -stream */
  messages?: Array<{ index: number; message: string; hostname: string | null; ms_since_start: number }>;
}

export interface JsonDocument {
  target: string;
  tls: boolean;
  authority: string;
  method: string;
  connections: number;
  stream?: { kind: 'server' | 'bidi'; messages: number; interval_ms: number };
  requests: JsonRequest[];
  summary: {
    count: number;
    ok: number;
    failed: number;
    by_status: Record<string, number>;
    by_serving_status?: Record<string, number>;
    latency_ms: { min: number; p50: number; p90: number; p99: number; max: number };
    by_hostname: Record<string, number>;
    by_mesh_attempt: Record<string, number>;
    messages?: { asked: number; received: number };
  };
  expectations: null | { codes: string[]; met: boolean; failures: string[]; messages?: number | null };
  exit_code: number;
}

export async function client(args: readonly string[], env: Record<string, string> = {}): Promise<ClientRun> {
  let stdout = '';
  let stderr = '';
  const timeline: ClientRun['timeline'] = [];
  const started = performance.now();
  const err = (text: string) => {
    stderr += text;
    for (const line of text.split('\n').filter(Boolean)) timeline.push({ at: performance.now(), line });
  };
  let code: number;
  try {
    const options = clientOptionsFromArgs(args, env);
    if (options === 'help') throw new Error('help in-process');
    code = await runClient(options, { stdout: (t) => (stdout += t), stderr: err });
  } catch (e) {
    err(errorLine('client', e));
    code = exitCodeForError(e);
  }
  return { code, stdout, stderr, timeline, started, json: <T>() => JSON.parse(stdout) as T };
}

export interface RawH2Server {
  port: number;
  address: string;
  /** every request (headers and body), in order */
  requests: Array<{ headers: IncomingHttpHeaders; body: Buffer }>;
  /** connections (HTTP/2 sessions) accepted so far */
  connections(): number;
  close(): Promise<void>;
}

/** A plain node:http2 server that answers however `answer` says: for what a gRPC library would not send. */
export async function rawH2Server(
  answer: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, n: number) => void,
  settings: Settings = {},
  options: Omit<H2ServerOptions, 'settings'> = {},
): Promise<RawH2Server> {
  const requests: RawH2Server['requests'] = [];
  const server: Http2Server = createH2Server({ ...options, settings });
  server.on('stream', (stream, headers) => {
    const request = { headers, body: Buffer.alloc(0) };
    requests.push(request);
    const n = requests.length;
    stream.on('error', () => {});
    // read the request to its end, then answer
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      request.body = Buffer.concat(chunks);
      // a stream the client reset (its deadline) also ends, its request cut short: nothing to answer then
      if (!stream.aborted && !stream.destroyed) answer(stream, headers, n);
    });
  });
  server.on('sessionError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const sessions = new Set<{ destroy(): void }>();
  let connections = 0;
  server.on('session', (s) => {
    connections++;
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  return {
    port,
    address: `127.0.0.1:${port}`,
    requests,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A gRPC answer in frames: the 5-byte prefix, then `0a <len> <text>` (HelloReply.message). */
export function helloReplyFrame(message: string, flag = 0): Buffer {
  const text = Buffer.from(message, 'utf8');
  const body = Buffer.concat([Buffer.from([0x0a, text.length]), text]);
  const prefix = Buffer.alloc(5);
  prefix[0] = flag;
  prefix.writeUInt32BE(body.length, 1);
  return Buffer.concat([prefix, body]);
}
