// What both programs do at the top: run main, turn any failure into one line on stderr and an exit code.
// Never a stack trace: a UsageError exits 2, anything else 1.
import { UsageError } from './flags.ts';

/** Exit codes both programs use (the client also exits 64 + a gRPC status: status.ts). */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
/** The server only: a SayHello asked it to crash (-crash_rate, x-helloworld-fault: crash; docs/resilience.md). */
export const EXIT_CRASH = 3;

export function errorLine(program: string, err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return `${program}: ${message.split('\n')[0]}\n`;
}

export function exitCodeForError(err: unknown): number {
  return err instanceof UsageError ? EXIT_USAGE : EXIT_FAILURE;
}

/** Runs main and exits with its code as soon as it resolves: a probe does no work after the answer. */
export function runMain(program: string, main: () => Promise<number | undefined>): void {
  main().then(
    (code) => {
      if (code !== undefined) exitWhenWritten(code);
    },
    (err: unknown) => {
      process.stderr.write(errorLine(program, err));
      exitWhenWritten(exitCodeForError(err));
    },
  );
}

/**
 * Exits once stdout and stderr have taken everything written to them. A write to a pipe that is full (64 KiB
 * on Linux: a -json document of a few hundred requests) is queued, and process.exit() would drop the rest.
 */
function exitWhenWritten(code: number): void {
  let pending = 2;
  const done = () => {
    if (--pending === 0) process.exit(code);
  };
  // an empty write calls back after every write before it (or with the error of a closed stream)
  process.stdout.write('', done);
  process.stderr.write('', done);
}
