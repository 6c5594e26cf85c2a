// Go-style flags for both programs: `-flag value`, `-flag=value` and `--flag` all work, `-tls` is one flag
// (not -t -l -s), a repeated flag keeps its last value (a list flag keeps them all), and every flag can also
// come from an environment variable (`<PREFIX><FLAG IN CAPITALS>`); a flag on the command line wins.
// Parsing is yargs' own parser (yargs-parser, imported directly: `yargs/helpers` re-exports it but also loads
// yargs' platform shims -- cliui, y18n, assert, util --, which a probe would load at every start),
// configured to behave like Go's flag package. Its `browser` entry: the same parser without the Node mixins for
// config files (fs, node:module's createRequire, path, util), which a probe paid for at every start.
import Parser from 'yargs-parser/browser';

export type FlagKind = 'boolean' | 'string' | 'list' | 'number' | 'int' | 'seconds';

export interface FlagSpec {
  kind: FlagKind;
  describe: string;
  default?: boolean | string | number | readonly string[];
  /** the value's placeholder in the usage text, e.g. `host:port` */
  arg?: string;
  /** lower and upper bound for numeric kinds, inclusive */
  min?: number;
  max?: number;
}

export type FlagTable = Record<string, FlagSpec>;

type ValueOf<S extends FlagSpec> = S['kind'] extends 'boolean'
  ? boolean
  : S['kind'] extends 'list'
    ? string[]
    : S['kind'] extends 'string'
      ? S extends { default: string } ? string : string | undefined
      : S extends { default: number } ? number : number | undefined;

export type FlagValues<T extends FlagTable> = { -readonly [K in keyof T]: ValueOf<T[K]> };

export interface ParsedFlags<T extends FlagTable> {
  flags: FlagValues<T>;
  positionals: string[];
  help: boolean;
}

/** A bad command line or configuration: the CLI prints the message and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

const HELP_FLAGS = new Set(['h', 'help']);

const parserConfiguration = {
  'short-option-groups': false,
  'camel-case-expansion': false,
  'dot-notation': false,
  'parse-numbers': false,
  'parse-positional-numbers': false,
  'duplicate-arguments-array': true,
  'flatten-duplicate-arrays': true,
  'boolean-negation': false,
  'greedy-arrays': false,
} as const;

export function parseFlags<T extends FlagTable>(
  table: T,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = {},
  envPrefix = '',
): ParsedFlags<T> {
  const names = Object.keys(table);
  const booleans = names.filter((n) => table[n]!.kind === 'boolean');
  // yargs reads only `=true` as true for a boolean; Go also takes 1, t, T, TRUE, ...: keep those values ourselves.
  const booleanValues = new Map<string, string>();
  const rest: string[] = [];
  for (const [i, arg] of argv.entries()) {
    if (arg === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    const m = /^--?([^=]+)=(.*)$/s.exec(arg);
    if (m && booleans.includes(m[1]!)) booleanValues.set(m[1]!, m[2]!);
    else rest.push(arg);
    const bare = /^--?([^=-][^=]*)$/s.exec(arg)?.[1];
    if (bare !== undefined && Object.hasOwn(table, bare) && !booleans.includes(bare) && !takesValue(argv[i + 1])) {
      throw new UsageError(`flag needs an argument: -${bare}`);
    }
  }
  const given = rest.length === 0 ? { _: [] } : parse(rest, names, booleans, table);

  for (const key of Object.keys(given)) {
    if (key !== '_' && key !== '--' && !Object.hasOwn(table, key) && !HELP_FLAGS.has(key)) {
      throw new UsageError(`flag provided but not defined: -${key}`);
    }
  }

  const flags: Record<string, unknown> = {};
  for (const name of names) {
    const spec = table[name]!;
    const envName = `${envPrefix}${name.toUpperCase()}`;
    let raw: unknown = booleanValues.get(name) ?? given[name];
    let source = `-${name}`;
    // yargs-parser reports every declared boolean (false when absent): only argv tells whether it was given
    const onCommandLine = spec.kind === 'boolean' ? mentions(argv, name) : raw !== undefined;
    if (!onCommandLine && envPrefix && env[envName] !== undefined) {
      raw = spec.kind === 'list' ? env[envName]!.split('\n').filter(Boolean) : env[envName];
      source = envName;
    } else if (!onCommandLine) {
      raw = undefined;
    }
    flags[name] = raw === undefined ? defaultOf(spec) : convert(spec, raw, source);
  }
  return {
    flags: flags as FlagValues<T>,
    positionals: (given['_'] as unknown[]).map(String),
    help: [...HELP_FLAGS].some((h) => given[h] === true),
  };
}

/**
 * yargs-parser's reading of the command line. Not run for an empty one (a bare `/client` probe): its cold start
 * would cost every such probe CPU to find nothing.
 */
function parse(rest: string[], names: string[], booleans: string[], table: FlagTable): Record<string, unknown> {
  const parsed = Parser.detailed(rest, {
    boolean: [...booleans, ...HELP_FLAGS],
    string: names.filter((n) => table[n]!.kind !== 'boolean'),
    array: names.filter((n) => table[n]!.kind === 'list'),
    configuration: parserConfiguration,
  });
  if (parsed.error) throw new UsageError(parsed.error.message);
  return parsed.argv as Record<string, unknown>;
}

/** Whether yargs-parser takes `next` as the preceding flag's value: it takes a flag (but a negative number) for the next flag. */
function takesValue(next: string | undefined): boolean {
  return next !== undefined && next !== '--' && !/^-(?![\d.])/.test(next);
}

function mentions(argv: readonly string[], name: string): boolean {
  for (const arg of argv) {
    if (arg === '--') return false;
    const bare = arg.startsWith('--') ? arg.slice(2) : arg.startsWith('-') ? arg.slice(1) : undefined;
    if (bare === name || bare?.startsWith(`${name}=`)) return true;
  }
  return false;
}

function defaultOf(spec: FlagSpec): unknown {
  if (spec.kind === 'list') return [...((spec.default as readonly string[] | undefined) ?? [])];
  if (spec.kind === 'boolean') return spec.default ?? false;
  return spec.default;
}

function convert(spec: FlagSpec, raw: unknown, source: string): unknown {
  if (spec.kind === 'list') return (Array.isArray(raw) ? raw : [raw]).map(String);
  const value = Array.isArray(raw) ? raw[raw.length - 1] : raw; // Go: the last one wins
  switch (spec.kind) {
    case 'boolean':
      return parseBoolean(value, source);
    case 'string':
      return String(value);
    case 'number':
    case 'int':
    case 'seconds': {
      const n = spec.kind === 'seconds' ? parseSeconds(String(value)) : Number(String(value).trim());
      const what = spec.kind === 'seconds' ? 'a duration in seconds (e.g. 1, 0.25, 500ms, 2m)' : 'a number';
      if (String(value).trim() === '' || !Number.isFinite(n)) {
        throw new UsageError(`invalid value ${JSON.stringify(String(value))} for ${source}: want ${what}`);
      }
      if (spec.kind === 'int' && !Number.isInteger(n)) {
        throw new UsageError(`invalid value ${JSON.stringify(String(value))} for ${source}: want a whole number`);
      }
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        throw new UsageError(`invalid value ${JSON.stringify(String(value))} for ${source}: ${range(spec)}`);
      }
      return n;
    }
  }
}

function range(spec: FlagSpec): string {
  if (spec.min !== undefined && spec.max !== undefined) return `want ${spec.min} to ${spec.max}`;
  return spec.min !== undefined ? `want at least ${spec.min}` : `want at most ${spec.max}`;
}

function parseBoolean(value: unknown, source: string): boolean {
  if (typeof value === 'boolean') return value;
  const text = String(value).trim().toLowerCase();
  if (['1', 't', 'true', 'yes', 'on'].includes(text)) return true;
  if (['0', 'f', 'false', 'no', 'off', ''].includes(text)) return false;
  throw new UsageError(`invalid boolean value ${JSON.stringify(String(value))} for ${source}`);
}

const DURATION_UNITS: Record<string, number> = { ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };

/**
 * Seconds as a plain number ("10", "0.25"), as the original image's flags take them, or a Go duration
 * ("500ms", "1m30s"). NaN when it is neither.
 */
export function parseSeconds(text: string): number {
  const t = text.trim();
  if (/^\d+(\.\d*)?$|^\.\d+$/.test(t)) return Number(t);
  const part = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let at = 0;
  while (at < t.length) {
    part.lastIndex = at;
    const m = part.exec(t);
    if (!m) return Number.NaN;
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    at = part.lastIndex;
  }
  return at > 0 ? total : Number.NaN;
}

/** An exit code (or a range, e.g. "64+N") and what it means, for the usage text. */
export type ExitCodeLine = readonly [code: number | string, meaning: string];

/** The usage text: one line a flag, Go's `-flag value` spelling, with default and environment variable; then the exit codes. */
export function usage(table: FlagTable, synopsis: string, envPrefix: string, exitCodes: readonly ExitCodeLine[] = []): string {
  const lines = [`Usage: ${synopsis}`, '', 'Flags (-flag value, -flag=value or --flag):'];
  for (const [name, spec] of Object.entries(table)) {
    const arg = spec.kind === 'boolean' ? '' : ` ${spec.arg ?? (spec.kind === 'seconds' ? 'seconds' : spec.kind)}`;
    const shown = spec.kind === 'list' ? undefined : spec.default;
    const dflt = shown === undefined || shown === false || shown === '' ? '' : ` (default ${shown})`;
    lines.push(`  -${name}${arg}`, `      ${spec.describe}${dflt}`);
  }
  lines.push('', `Every flag can also be set by the environment variable ${envPrefix}<FLAG>, e.g. ${envPrefix}TLS=true.`);
  if (exitCodes.length > 0) lines.push('', 'Exit codes:', ...exitCodes.map(([code, meaning]) => `  ${String(code).padEnd(6)}${meaning.replaceAll('\n', `\n${' '.repeat(8)}`)}`));
  return lines.join('\n');
}
