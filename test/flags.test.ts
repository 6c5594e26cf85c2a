// Go-style flag parsing shared by both programs.
import { describe, expect, it } from 'vitest';
import { parseFlags, parseSeconds, usage, UsageError, type FlagTable } from '../src/flags.ts';

const table = {
  tls: { kind: 'boolean', describe: 'tls' },
  server_addr: { kind: 'string', default: 'localhost:10000', describe: 'addr' },
  timeout: { kind: 'seconds', default: 1, min: 0, describe: 'timeout' },
  count: { kind: 'int', default: 1, min: 1, describe: 'count' },
  rate: { kind: 'number', default: 0, min: 0, max: 1, describe: 'rate' },
  H: { kind: 'list', describe: 'header' },
} as const satisfies FlagTable;

const parse = (argv: string[], env: Record<string, string> = {}) => parseFlags(table, argv, env, 'T_');

describe('parseFlags', () => {
  it('applies defaults', () => {
    const defaults = { tls: false, server_addr: 'localhost:10000', timeout: 1, count: 1, rate: 0, H: [] };
    // an empty command line skips the parser; what is left after `-tls=…` values does not, and both agree
    expect(parse([])).toEqual({ flags: defaults, positionals: [], help: false });
    expect(parse(['--'])).toEqual({ flags: defaults, positionals: [], help: false });
  });

  it('takes -flag value, -flag=value and --flag, and -tls as one flag', () => {
    const { flags, positionals } = parse(['-tls', '-server_addr', 'svc:10000', '-timeout=10', '--count', '3', 'bob']);
    expect(flags).toMatchObject({ tls: true, server_addr: 'svc:10000', timeout: 10, count: 3 });
    expect(positionals).toEqual(['bob']);
  });

  it('keeps the last of a repeated flag, and every value of a list flag', () => {
    const { flags } = parse(['-count', '2', '-count', '5', '-H', 'a: 1', '-H', 'b: 2', 'name']);
    expect(flags.count).toBe(5);
    expect(flags.H).toEqual(['a: 1', 'b: 2']);
  });

  it('reads booleans as Go does: -tls=false, -tls=1', () => {
    expect(parse(['-tls=false']).flags.tls).toBe(false);
    expect(parse(['-tls=1']).flags.tls).toBe(true);
    expect(() => parse(['-tls=maybe'])).toThrow(/invalid boolean value "maybe" for -tls/);
  });

  it('reads the environment, and the command line wins', () => {
    expect(parse([], { T_TLS: 'true', T_COUNT: '7' }).flags).toMatchObject({ tls: true, count: 7 });
    expect(parse(['-count', '2', '-tls=false'], { T_TLS: 'true', T_COUNT: '7' }).flags).toMatchObject({ tls: false, count: 2 });
    expect(() => parse([], { T_COUNT: 'many' })).toThrow(/T_COUNT/);
  });

  it('rejects unknown flags, bad numbers and out-of-range values with a UsageError', () => {
    expect(() => parse(['-bogus'])).toThrow(new UsageError('flag provided but not defined: -bogus'));
    expect(() => parse(['-count', '1.5'])).toThrow(/want a whole number/);
    expect(() => parse(['-count', '0'])).toThrow(/want at least 1/);
    expect(() => parse(['-rate', '2'])).toThrow(/want 0 to 1/);
    expect(() => parse(['-timeout', 'soon'])).toThrow(/invalid value "soon" for -timeout/);
    expect(() => parse(['-timeout', ''])).toThrow(UsageError);
  });

  it('names a flag given without its value, as Go does (an empty value given is a bad value)', () => {
    for (const argv of [['-timeout'], ['--timeout'], ['-count', '2', '-timeout'], ['-timeout', '-count', '3'], ['-timeout', '--'], ['-H']]) {
      const name = argv.includes('-H') ? 'H' : 'timeout';
      expect(() => parse(argv), JSON.stringify(argv)).toThrow(new UsageError(`flag needs an argument: -${name}`));
    }
    expect(() => parse(['-count', '-5'])).toThrow(/invalid value "-5" for -count: want at least 1/);
    expect(() => parse(['-timeout='])).toThrow(/invalid value "" for -timeout/);
    expect(parse(['-tls']).flags.tls).toBe(true); // a boolean needs none
    expect(() => parse(['-constructor'])).toThrow(new UsageError('flag provided but not defined: -constructor'));
  });

  it('recognises -h, -help and --help', () => {
    for (const h of ['-h', '-help', '--help']) expect(parse([h]).help).toBe(true);
  });

  it('leaves what follows -- as positionals', () => {
    expect(parse(['--', '-tls']).positionals).toEqual(['-tls']);
    expect(parse(['--', '-tls']).flags.tls).toBe(false);
  });
});

describe('parseSeconds', () => {
  it.each([
    ['10', 10],
    ['0.25', 0.25],
    ['.5', 0.5],
    ['500ms', 0.5],
    ['1m30s', 90],
    ['2h', 7200],
    ['1.5s', 1.5],
    ['250us', 0.00025],
  ])('%s = %s s', (text, seconds) => expect(parseSeconds(text)).toBeCloseTo(seconds, 9));

  it.each(['', 'abc', '10x', '-1', 's', '1s2'])('%j is not a duration', (text) => expect(parseSeconds(text)).toBeNaN());
});

it('usage lists every flag with its default and the environment prefix', () => {
  const text = usage(table, 'prog [flags]', 'T_');
  for (const name of Object.keys(table)) expect(text).toContain(`-${name}`);
  expect(text).toContain('(default localhost:10000)');
  expect(text).toContain('T_<FLAG>');
  expect(text).not.toContain('Exit codes');
  expect(usage(table, 'prog', 'T_', [[0, 'fine'], ['64+N', 'status N:\n65 A']]).split('\n').slice(-4)).toEqual(['Exit codes:', '  0     fine', '  64+N  status N:', '        65 A']);
});
