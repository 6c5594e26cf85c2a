// Shared pieces of the bench scripts: tools on the PATH, the peer kit, ports, processes, statistics.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { accepts } from '../test/helpers/ports.ts';
import { BUNDLE_FILES, type Program } from '../scripts/bundles.ts';
export { freePort } from '../test/helpers/ports.ts';

export const root = fileURLToPath(new URL('..', import.meta.url));
export const dist = (name: Program) => join(root, 'dist', BUNDLE_FILES[name]);
/** The Node that runs the bench (the project's Node 24 under npm run) runs every Node program measured. */
export const node = process.execPath;

/** The peer kit (grpc-go and naive grpc-js programs, built by its setup.sh): ../shared/peers or $PEERS_DIR. */
export function peersDir(): string | undefined {
  const dir = resolve(process.env.PEERS_DIR ?? join(root, '..', 'shared', 'peers'));
  return existsSync(join(dir, 'bin', 'go-server')) ? dir : undefined;
}

export function which(tool: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const file = join(dir, tool);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export const fmt = (x: number | undefined, digits = 1) => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(digits));
export const ratio = (x: number | undefined, base: number | undefined) =>
  x === undefined || base === undefined || Number.isNaN(x) || Number.isNaN(base) || base === 0 ? '-' : `${(x / base).toFixed(2)}x`;

export async function waitForPort(port: number, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const until = performance.now() + timeoutMs;
  while (performance.now() < until) {
    if (child && child.exitCode !== null) throw new Error(`exited with code ${child.exitCode} before listening`);
    if (await accepts(port)) return;
    await sleep(20);
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A command line from the user: words split on whitespace, {port} and {addr} substituted. */
export function commandLine(template: string, port: number): string[] {
  return template
    .trim()
    .split(/\s+/)
    .map((w) => w.replaceAll('{port}', String(port)).replaceAll('{addr}', `127.0.0.1:${port}`));
}

export interface Running {
  child: ChildProcess;
  pid: number;
  port: number;
  /** lines seen on stdout (an access log is read and counted, as a container runtime would read it) */
  stdoutLines(): number;
  /** stdout itself, with `keepStdout` */
  stdout(): string;
  stderr(): string;
  stop(): Promise<void>;
}

/**
 * Starts a server command (argv) and waits until its port accepts TCP connections and, with `ready`, until
 * its stderr matches (dist/server.js accepts on the port as soon as its first worker listens).
 */
export async function startServerProcess(
  argv: readonly string[],
  port: number,
  { ready, timeoutMs = 15_000, keepStdout = false }: { ready?: RegExp; timeoutMs?: number; keepStdout?: boolean } = {},
): Promise<Running> {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv() });
  let lines = 0;
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
    if (keepStdout) stdout += chunk.toString('utf8');
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = once(child, 'exit');
  try {
    await waitForPort(port, timeoutMs, child);
    const until = performance.now() + timeoutMs;
    while (ready && !ready.test(stderr)) {
      if (performance.now() > until) throw new Error(`no ${ready} on stderr after ${timeoutMs} ms`);
      await sleep(10);
    }
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${argv.join(' ')}: ${(err as Error).message}\n${stderr}`);
  }
  return {
    child,
    pid: child.pid!,
    port,
    stdoutLines: () => lines,
    stdout: () => stdout,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * The environment the measured programs run in: the image's, as far as it matters. No HELLO_* settings of the
 * developer's (every server and client runs with its defaults and the bench's flags), and no
 * NODE_OPTIONS or NODE_EXTRA_CA_CERTS, which the image does not set: a machine that points NODE_EXTRA_CA_CERTS
 * at its whole CA bundle (this one does) adds ~9 ms of certificate parsing to every -tls run.
 */
export function cleanEnv(): NodeJS.ProcessEnv {
  const dropped = (k: string) => k.startsWith('HELLO_') || k === 'NODE_OPTIONS' || k === 'NODE_EXTRA_CA_CERTS';
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !dropped(k)));
}

/** pid and every descendant (a cluster primary and its workers). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(name));
      children.set(ppid, list);
    } catch {
      // gone
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(pid);
  return out;
}

const CLK_TCK = 100; // Linux reports utime/stime in USER_HZ, 100 on every mainstream kernel

/** CPU seconds (user + system) used so far by these processes. */
export function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // gone
    }
  }
  return ticks / CLK_TCK;
}

/** VmRSS in MB of each process. */
export function rssMb(pids: readonly number[]): number[] {
  return pids.map((pid) => {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m ? Number(m[1]) / 1024 : 0;
    } catch {
      return 0;
    }
  });
}

export function loadAverage(): number {
  try {
    return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  } catch {
    return Number.NaN;
  }
}

export function machine(): string {
  let cpu = '';
  try {
    cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '';
  } catch {
    // not Linux
  }
  const cores = spawnSync('nproc', { encoding: 'utf8' }).stdout?.trim();
  return `${cores} vCPU ${cpu}, Node ${process.version}, load average ${loadAverage()}`;
}

/** gRPC length-prefixed HelloRequest{name}: flag 0, 4-byte big-endian length, then 0a <len> name. */
export function helloRequestFrame(name = 'world'): Buffer {
  const text = Buffer.from(name);
  if (text.length > 127) throw new Error('name too long for a one-byte varint');
  const frame = Buffer.alloc(5 + 2 + text.length);
  frame.writeUInt32BE(2 + text.length, 1);
  frame[5] = 0x0a;
  frame[6] = text.length;
  text.copy(frame, 7);
  return frame;
}

