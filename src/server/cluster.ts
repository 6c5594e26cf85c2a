// -workers N > 1: N worker processes (node:cluster) share the listening port, so the server uses more than
// one core (README, Performance, has the figures). The primary serves nothing itself: it starts the workers,
// prints the Listening line once every worker listens, and on SIGTERM/SIGINT asks every worker to drain
// (health NOT_SERVING, listener closed, calls in flight finished within -grace) and exits when they have.
// A second signal forces every worker out. Workers ignore signals: Ctrl-C reaches the whole process group,
// and only the primary decides. A worker that dies on its own takes the server down (exit 1; a planned crash,
// ServerExit.CRASHED, is passed on as it is), as a crashed single process would; a primary that dies takes its workers with it (node:cluster exits a worker whose
// IPC channel closes).
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism, totalmem } from 'node:os';
import { SERVER_NODE_FLAGS } from './v8-flags.ts';

/** Primary -> worker. */
export type Command = { cmd: 'drain'; graceMs: number } | { cmd: 'force' };
/** Worker -> primary. */
export type Report =
  | { evt: 'listening'; port: number }
  | { evt: 'failed'; message: string }
  | { evt: 'draining'; inFlight: number }
  | { evt: 'drained'; clean: boolean }
  | { evt: 'forcing'; inFlight: number };

/** -workers 0 never starts more than this: beyond it a load test measures the load generator, not us. */
export const MAX_AUTO_WORKERS = 4;
/** What one worker may take under load (RSS, with SERVER_NODE_FLAGS), and the primary: README, Performance. */
const WORKER_BUDGET = 160 * 1024 * 1024;
const PRIMARY_BUDGET = 64 * 1024 * 1024;

/**
 * -workers 0: one worker per CPU the process may use (os.availableParallelism() counts cgroup CPU limits),
 * at most MAX_AUTO_WORKERS, and no more than a cgroup memory limit holds; 1 means no workers at all.
 */
export function autoWorkers(cpus = availableParallelism(), memoryLimit = process.constrainedMemory(), total = totalmem()): number {
  let n = Math.min(cpus, MAX_AUTO_WORKERS);
  if (memoryLimit > 0 && memoryLimit < total) n = Math.min(n, Math.floor((memoryLimit - PRIMARY_BUDGET) / WORKER_BUDGET));
  return Math.max(1, n);
}

export const isWorker = (): boolean => cluster.isWorker;

export function report(message: Report, then?: () => void): void {
  if (process.send) process.send(message, undefined, {}, () => then?.());
  else then?.();
}

export function onCommand(handle: (command: Command) => void): void {
  process.on('message', (m: Command) => {
    if (m && typeof m === 'object' && 'cmd' in m) handle(m);
  });
}

/**
 * Sends a command to a worker unless its IPC channel has closed (it is exiting on its own: the caller's wait
 * ends on its 'exit'). A channel that closes as the command goes out reports to the callback: without one,
 * node:child_process emits an 'error' event, and an unhandled one crashed the primary (a second signal that
 * found a worker already drained).
 */
function tell(w: Worker, command: Command): void {
  if (w.isConnected()) w.send(command, undefined, undefined, () => {});
}

export interface Primary {
  port: number;
  /** every worker drains; resolves with the total in flight when they started, then `done` when all exited */
  drain(graceMs: number): Promise<{ inFlight: number; done: Promise<boolean> }>;
  /** every worker cuts its calls and exits; resolves with the total that were in flight */
  force(): Promise<number>;
  /** a worker exited on its own while serving (`code`: its exit code, null when a signal ended it) */
  onWorkerDeath(handle: (why: string, code: number | null) => void): void;
}

/**
 * Starts `count` workers running this same program with the same arguments (plus `execArgv`) and waits until
 * each listens. Rejects with the first worker's startup failure (after stopping the others).
 */
export function startWorkers(count: number, execArgv: readonly string[] = SERVER_NODE_FLAGS): Promise<Primary> {
  cluster.setupPrimary({ execArgv: [...process.execArgv, ...execArgv] });
  const workers: Worker[] = [];
  const reports = new Map<Worker, (r: Report) => void>();
  let stopping = false;
  let deathHandler: ((why: string, code: number | null) => void) | undefined;

  const each = <T>(send: Command | null, want: Report['evt'], timeoutMs: number, pick: (r: Report) => T, fallback: T) =>
    Promise.all(
      workers
        .filter((w) => !w.isDead())
        .map(
          (w) =>
            new Promise<T>((resolve) => {
              const timer = setTimeout(() => resolve(fallback), timeoutMs);
              const prev = reports.get(w);
              reports.set(w, (r) => {
                prev?.(r);
                if (r.evt === want) {
                  clearTimeout(timer);
                  resolve(pick(r));
                }
              });
              w.once('exit', () => {
                clearTimeout(timer);
                resolve(fallback);
              });
              if (send) tell(w, send);
            }),
        ),
    );

  return new Promise<Primary>((resolve, reject) => {
    let listening = 0;
    let port = 0;
    let failed = false;
    for (let i = 0; i < count; i++) {
      const w = cluster.fork();
      workers.push(w);
      w.on('message', (r: Report) => {
        reports.get(w)?.(r);
        if (r.evt === 'listening') {
          port = r.port;
          if (++listening === count) resolve(primary);
        } else if (r.evt === 'failed' && !failed) {
          failed = true;
          stopping = true;
          for (const other of workers) if (other !== w) other.process.kill('SIGKILL');
          reject(new Error(r.message)); // the primary exits as the worker did: ServerExit.CANNOT_SERVE (cli.ts)
        }
      });
      w.on('exit', (code, signal) => {
        if (stopping) return;
        const why = `worker ${w.id} (pid ${w.process.pid}) exited ${signal ? `on ${signal}` : `with code ${code}`}`;
        if (listening < count) {
          stopping = true;
          for (const other of workers) if (other !== w) other.process.kill('SIGKILL');
          reject(new Error(why));
        } else {
          deathHandler?.(why, code);
        }
      });
    }

    const primary: Primary = {
      get port() {
        return port;
      },
      async drain(graceMs) {
        stopping = true;
        const exited = Promise.all(workers.map((w) => (w.isDead() ? undefined : new Promise((r) => w.once('exit', r)))));
        const cleanAll = each(null, 'drained', graceMs + 5000, (r) => (r.evt === 'drained' ? r.clean : false), false);
        const counts = await each({ cmd: 'drain', graceMs }, 'draining', 1000, (r) => (r.evt === 'draining' ? r.inFlight : 0), 0);
        const done = Promise.all([cleanAll, exited]).then(([clean]) => clean.every(Boolean));
        return { inFlight: counts.reduce((a, b) => a + b, 0), done };
      },
      async force() {
        stopping = true;
        const counts = await each({ cmd: 'force' }, 'forcing', 500, (r) => (r.evt === 'forcing' ? r.inFlight : 0), 0);
        // a worker that has not gone within a moment is killed
        const kill = setTimeout(() => workers.forEach((w) => w.isDead() || w.process.kill('SIGKILL')), 1000);
        await Promise.all(workers.map((w) => (w.isDead() ? undefined : new Promise((r) => w.once('exit', r)))));
        clearTimeout(kill);
        return counts.reduce((a, b) => a + b, 0);
      },
      onWorkerDeath(handle) {
        deathHandler = handle;
      },
    };
  });
}
