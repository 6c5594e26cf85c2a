// Every exit code of both programs, named by what it means, and the lists -help prints. The values are an
// interface: README's "Exit codes" sections document them and the CLI tests pin them.
import type { ExitCodeLine } from './flags.ts';
import { STATUS_NAMES } from './status.ts';

/** Both programs: success; anything that went wrong and has no code of its own; a bad flag or configuration (UsageError). */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export const ServerExit = {
  /** shut down gracefully (or -help) */
  SHUT_DOWN: EXIT_OK,
  /** could not serve: port in use, address not available, a worker that died */
  CANNOT_SERVE: EXIT_FAILURE,
  /** a second signal cut the drain short */
  FORCED: EXIT_FAILURE,
  USAGE: EXIT_USAGE,
  /** a SayHello asked it to crash (-crash_rate, x-helloworld-fault: crash; docs/resilience.md) */
  CRASHED: 3,
} as const;

export const ClientExit = {
  /** every request OK, or every expectation met */
  OK: EXIT_OK,
  /** expectations not met, a -health answer other than SERVING, anything unexpected */
  FAILED: EXIT_FAILURE,
  USAGE: EXIT_USAGE,
  /** a failed request exits with this + its gRPC status code, as grpcurl does */
  STATUS_BASE: 64,
} as const;

/** The client's exit code for a request that failed with this gRPC status (68 DEADLINE_EXCEEDED, 78 UNAVAILABLE). */
export function exitCodeForStatus(code: number): number {
  return ClientExit.STATUS_BASE + code;
}

export const SERVER_EXIT_CODES: readonly ExitCodeLine[] = [
  [ServerExit.SHUT_DOWN, 'shut down gracefully (or -help)'],
  [ServerExit.CANNOT_SERVE, 'could not serve (port in use, address not available), or forced by a second signal'],
  [ServerExit.USAGE, 'bad flag or configuration (bad value, unreadable or non-PEM certificate or key, or a mismatched pair)'],
  [ServerExit.CRASHED, 'crashed on purpose: a SayHello drew -crash_rate or sent x-helloworld-fault: crash'],
];

export function clientExitCodes(): ExitCodeLine[] {
  const statuses = STATUS_NAMES.map((name, code) => `${exitCodeForStatus(code)} ${name}`).slice(1);
  const rows = Array.from({ length: Math.ceil(statuses.length / 4) }, (_, i) => statuses.slice(i * 4, i * 4 + 4).join(', '));
  return [
    [ClientExit.OK, 'every request OK (with -health: SERVING); with -expect_*: every expectation met'],
    [`${ClientExit.STATUS_BASE}+N`, `the first failed request, in request order, ended with gRPC status N:\n${rows.join(',\n')}`],
    [ClientExit.FAILED, 'expectations not met; -health answered other than SERVING; anything unexpected'],
    [ClientExit.USAGE, 'usage or configuration: unknown flag, bad value or address, unreadable or non-PEM file'],
  ];
}
