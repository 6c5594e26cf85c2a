// Python's grpcio (gRPC C-core) as an independent gRPC peer: the scripts beside this file, run with the
// system's python3 (.ci/run installs python3-grpcio; the tests that need it are skipped without it).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const python = '/usr/bin/python3';
export const hasGrpcio = spawnSync(python, ['-c', 'import grpc'], { stdio: 'ignore' }).status === 0;

/** A script of this folder; run with -B, so that importing grpc_bytes.py leaves no __pycache__ behind. */
export const pythonArgs = (script: string, args: readonly string[] = []) => ['-B', fileURLToPath(new URL(script, import.meta.url)), ...args];

/** Starts a serving script (it prints its port, then serves until its stdin closes). */
export async function startPython(script: string, args: readonly string[] = []): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(python, pythonArgs(script, args), { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start`)), 15_000);
    child.stdout!.setEncoding('utf8').once('data', (d: string) => {
      clearTimeout(timer);
      resolve(Number(d.trim()));
    });
    child.once('exit', (code) => reject(new Error(`${script} exited ${code}`)));
  });
  return { child, port };
}

/** Ends a serving script. */
export function stopPython(peer: { child: ChildProcess } | undefined): void {
  peer?.child.stdin?.end();
  peer?.child.kill();
}
