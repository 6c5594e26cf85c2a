// Runs a built bundle (dist/server.js, dist/client.cjs) as users do, on the test's Node (the image's major).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { BUNDLE_FILES, type Program } from '../../scripts/bundles.ts';
import { SERVER_NODE_FLAGS } from '../../src/server/v8-flags.ts';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const bundle = (name: Program) => `${root}dist/${BUNDLE_FILES[name]}`;

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs to completion (killed after `timeoutMs`, which fails loudly through the result's signal). */
export async function run(
  file: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {},
): Promise<RunResult> {
  const started = performance.now();
  const child = spawn(process.execPath, [file, ...args], {
    env: options.env ?? cleanEnv(),
    cwd: options.cwd ?? root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  return { code, signal, stdout, stderr, ms: performance.now() - started };
}

export const runClient = (args: readonly string[], options?: Parameters<typeof run>[2]) => run(bundle('client'), args, options);
export const runServer = (args: readonly string[], options?: Parameters<typeof run>[2]) => run(bundle('server'), args, options);

/** The environment without any HELLO_* variables of the developer's shell. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HELLO_')));
  return { ...env, ...extra };
}

export interface SpawnedServer {
  child: ChildProcess;
  port: number;
  address: string;
  stdout: () => string;
  stderr: () => string;
  /** resolves with the exit code when the process ends */
  exited: Promise<number | null>;
  stop(): Promise<number | null>;
}

/**
 * Starts dist/server.js (or another entry) as the image's /server does (its V8 flags, and `nodeFlags`), with
 * `-port 0` unless a port is given, and waits for its Listening line. With `onStdoutLine`, each stdout line
 * goes there instead of being kept (for long runs: a soak's access log would otherwise fill the test's memory).
 */
export async function spawnServer(
  args: readonly string[] = [],
  options: { env?: NodeJS.ProcessEnv; file?: string; onStdoutLine?: (line: string) => void; nodeFlags?: readonly string[] } = {},
): Promise<SpawnedServer> {
  const withPort = args.some((a) => /^--?port(=|$)/.test(a)) ? args : ['-port', '0', '-host', '127.0.0.1', ...args];
  // with the image's V8 flags (its /server shebang): the process measured is the one that is deployed
  const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, ...(options.nodeFlags ?? []), options.file ?? bundle('server'), ...withPort], {
    env: options.env ?? cleanEnv(),
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const { onStdoutLine } = options;
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    if (!onStdoutLine) return void (stdout += d);
    const lines = (partial + d).split('\n');
    partial = lines.pop()!;
    for (const line of lines) if (line) onStdoutLine(line);
  });
  const exited = once(child, 'close').then(([code]) => code as number | null);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), 15_000);
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      const m = /Listening \S*:(\d+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    void exited.then((code) => reject(new Error(`server exited ${code}: ${stderr}`)));
  });
  return {
    child,
    port,
    address: `127.0.0.1:${port}`,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
