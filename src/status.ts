// gRPC status codes by name and number, shared by the server's -fail_code, the client's -expect_code and
// -retry_on, and the client's exit codes (exit-codes.ts). Kept here (not imported from grpc-js) so the client's probe path
// does not load grpc-js just for a table of 17 names.
export const STATUS_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

export type StatusName = (typeof STATUS_NAMES)[number];

export const Code = Object.fromEntries(STATUS_NAMES.map((name, i) => [name, i])) as {
  readonly [K in StatusName]: number;
};

export function statusName(code: number): string {
  return STATUS_NAMES[code] ?? `CODE_${code}`;
}

/** A code from its name ("UNAVAILABLE", "unavailable") or number ("14"); undefined if it is neither. */
export function parseStatusCode(text: string): number | undefined {
  const t = text.trim();
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    return n < STATUS_NAMES.length ? n : undefined;
  }
  const i = STATUS_NAMES.indexOf(t.toUpperCase() as StatusName);
  return i >= 0 ? i : undefined;
}
