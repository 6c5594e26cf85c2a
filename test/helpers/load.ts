// Load for the soak test: h2load (nghttp2-client) sending gRPC-framed SayHello requests, or, where h2load is
// not installed, grpc-js clients with many unary calls in flight. Both bounded in time.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { rmSync, writeFileSync } from 'node:fs';
import { testTmpDir } from './tmp.ts';
import { join } from 'node:path';
import { greeterClient, sayHello } from './grpc-js-client.ts';
import { grpcFrame, helloRequest, SAY_HELLO } from './raw-grpc.ts';
import { spawnServer } from './spawn.ts';

export interface LoadResult {
  tool: 'h2load' | 'grpc-js';
  requests: number;
  /** answered 2xx with exactly one "Hello world" reply (h2load), or OK (grpc-js) */
  ok: number;
  failed: number;
  ms: number;
  detail: string;
}

export const hasH2load = () => spawnSync('h2load', ['--version'], { stdio: 'ignore' }).status === 0;

const REPLY_BYTES = grpcFrame(Buffer.from([0x0a, 11, ...Buffer.from('Hello world')])).length; // 18

/**
 * `requests` SayHello("world") over `clients` connections with `streams` calls in flight on each.
 * h2load checks the HTTP status only; a gRPC error is a 200 with no reply message, so the reply bytes
 * are counted too: every OK answer carries exactly 18 bytes of DATA.
 */
export async function h2load(address: string, requests: number, clients: number, streams: number, timeoutMs: number): Promise<LoadResult> {
  const dir = testTmpDir('soak-');
  const body = join(dir, 'hello.bin');
  writeFileSync(body, grpcFrame(helloRequest('world')));
  const args = ['-n', String(requests), '-c', String(clients), '-m', String(streams), '-t', '1', '-d', body,
    '-H', 'content-type: application/grpc', '-H', 'te: trailers', `http://${address}${SAY_HELLO}`];
  const started = performance.now();
  const child = spawn('h2load', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await once(child, 'close');
  clearTimeout(timer);
  rmSync(dir, { recursive: true, force: true });
  const ms = performance.now() - started;
  const number = (re: RegExp) => Number(re.exec(out)?.[1] ?? Number.NaN);
  const succeeded = number(/(\d+) succeeded/);
  const ok2xx = number(/status codes: (\d+) 2xx/);
  const dataBytes = number(/\((\d+)\) data/);
  const allReplies = dataBytes === requests * REPLY_BYTES;
  const ok = succeeded === requests && ok2xx === requests && allReplies ? requests : Math.min(succeeded || 0, ok2xx || 0, Math.floor((dataBytes || 0) / REPLY_BYTES));
  return { tool: 'h2load', requests, ok, failed: requests - ok, ms, detail: out.split('\n').filter((l) => /finished in|requests:|status codes|traffic:/.test(l)).join('\n') };
}

/** The same with grpc-js clients in this process (slower; used where h2load is not installed). */
export async function grpcJsLoad(address: string, requests: number, clients: number, streams: number, timeoutMs: number): Promise<LoadResult> {
  const conns = Array.from({ length: clients }, () => greeterClient(address));
  const started = performance.now();
  let issued = 0;
  let ok = 0;
  let failed = 0;
  const errors = new Map<string, number>();
  const worker = async (c: (typeof conns)[number]) => {
    while (issued < requests && performance.now() - started < timeoutMs) {
      issued++;
      const answer = await sayHello(c, 'world', { deadlineMs: 10_000 });
      if (!answer.err && answer.reply?.message === 'Hello world') ok++;
      else {
        failed++;
        const key = answer.err ? `${answer.err.code} ${answer.err.details}` : 'wrong reply';
        errors.set(key, (errors.get(key) ?? 0) + 1);
      }
    }
  };
  await Promise.all(conns.flatMap((c) => Array.from({ length: streams }, () => worker(c))));
  for (const c of conns) c.close();
  const ms = performance.now() - started;
  return { tool: 'grpc-js', requests, ok, failed: requests - ok, ms, detail: `${ok} OK, ${failed} failed ${JSON.stringify([...errors])}` };
}

export interface QuietServer {
  child: ChildProcess;
  pid: number;
  address: string;
  /** access-log lines seen so far, and how many of them were not OK */
  logLines(): { total: number; notOk: number };
  exited: Promise<number | null>;
}

/**
 * dist/server.js whose access log (stdout) is counted as it streams by rather than kept, so a soak of
 * hundreds of thousands of RPCs keeps the log on without holding 50 MB of it in the test process.
 */
export async function spawnQuietServer(args: readonly string[]): Promise<QuietServer> {
  let total = 0;
  let notOk = 0;
  const server = await spawnServer(args, {
    onStdoutLine(line) {
      total++;
      if (!line.includes('"code":0,')) notOk++;
    },
  });
  return { child: server.child, pid: server.child.pid!, address: server.address, logLines: () => ({ total, notOk }), exited: server.exited };
}
