// grpc-go as an independent gRPC peer for the stream interop test: go-greeter-stream/main.go, built in GOPATH
// mode from Debian's golang-google-grpc-dev (grpc-go 1.33, no module download), once per source version into
// the system's temp directory. The tests that need it are skipped without go or those sources.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const GOPATH = '/usr/share/gocode';
const source = fileURLToPath(new URL('go-greeter-stream/main.go', import.meta.url));
const go = ['/usr/bin/go', '/usr/lib/go/bin/go', '/usr/local/go/bin/go'].find((p) => existsSync(p));

export const hasGoGrpc = go !== undefined && existsSync(join(GOPATH, 'src/google.golang.org/grpc/server.go'));

/** The built peer (built now if this version of main.go was not built before); throws with go's output. */
export function goPeer(): string {
  const hash = createHash('sha256').update(readFileSync(source)).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'grpc-helloworld-go-peer');
  const binary = join(dir, `go-greeter-stream-${hash}`);
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  const env = { ...process.env, GO111MODULE: 'off', GOPATH, GOCACHE: join(dir, 'cache'), GOFLAGS: '' };
  const built = spawnSync(go!, ['build', '-o', `${binary}.tmp`, source], { env, encoding: 'utf8', timeout: 240_000 });
  if (built.status !== 0) throw new Error(`go build ${source}: ${built.stderr || built.error}`);
  renameSync(`${binary}.tmp`, binary); // whole or not at all, for a test file running beside this one
  return binary;
}

/** Runs the peer as a server; resolves with its port once it listens. */
export async function startGoPeer(binary: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(binary, ['serve'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('go-greeter-stream did not start')), 15_000);
    child.stdout!.setEncoding('utf8').once('data', (d: string) => {
      clearTimeout(timer);
      resolve(Number(/listening on (\d+)/.exec(d)?.[1]));
    });
    child.once('exit', (code) => reject(new Error(`go-greeter-stream exited ${code}`)));
  });
  return { child, port };
}
