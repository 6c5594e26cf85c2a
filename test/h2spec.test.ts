// HTTP/2 conformance of the server (dist/server.js, as users run it) by h2spec, the RFC 7540/9113 and
// RFC 7541 suite: plaintext (h2c) and TLS, the default request path `/` and SayHello's, the default set and
// strict mode (-S, the RFC's SHOULDs too): 8 runs, each against a server of its own, at most 2 at a time.
// Every run must end with no failed test. h2spec is a static binary kept outside the repository
// (<repo>/../shared/tools/h2spec/h2spec, see its README.md there); without it these tests are skipped.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'vitest';
import { SAY_HELLO_PATH } from '../src/rpc-names.ts';
import { spawnServer } from './helpers/spawn.ts';
import { testTmpDir } from './helpers/tmp.ts';

const H2SPEC = fileURLToPath(new URL('../../shared/tools/h2spec/h2spec', import.meta.url));
const present = existsSync(H2SPEC);
if (!present) console.log(`h2spec tests skipped: no h2spec binary at ${H2SPEC} (see ../shared/tools/h2spec/README.md)`);

/** h2spec's wait for each expected frame (-o, seconds) */
const PER_TEST_TIMEOUT_S = 2;
/** A whole run is killed after this long (test http2/5.1.2 never ends against a server advertising 2^32-1 streams)... */
const HARD_TIMEOUT_MS = 120_000;
/** ...or after this long without a line of output: every test prints within a few of its 2 s waits. */
const IDLE_TIMEOUT_MS = 30_000;
/** h2spec runs at once (a 2-core machine) */
const PARALLEL_RUNS = 2;

interface Run {
  tls: boolean;
  path: string;
  strict: boolean;
}

const runs: Run[] = [];
for (const tls of [false, true]) for (const path of ['/', SAY_HELLO_PATH]) for (const strict of [false, true]) runs.push({ tls, path, strict });

const runName = (r: Run) => `${r.tls ? 'TLS' : 'h2c'}, path ${r.path}, ${r.strict ? 'strict (-S)' : 'default set'}`;

/** At most `n` holders at once. */
function slots(n: number): <T>(work: () => Promise<T>) => Promise<T> {
  let free = n;
  const waiting: Array<() => void> = [];
  return async (work) => {
    if (free > 0) free--;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      return await work();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else free++;
    }
  };
}
const inSlot = slots(PARALLEL_RUNS);

interface Outcome {
  /** what h2spec printed */
  output: string;
  exitCode: number | null;
  /** why the run was killed, if it was */
  timedOut?: string;
}

function runH2spec(port: number, run: Run, report: string): Promise<Outcome> {
  const args = ['-h', '127.0.0.1', '-p', String(port), '-o', String(PER_TEST_TIMEOUT_S), '-j', report];
  if (run.tls) args.push('-t', '-k');
  if (run.path !== '/') args.push('-P', run.path);
  if (run.strict) args.push('-S');
  return new Promise((resolve, reject) => {
    const child = spawn(H2SPEC, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let timedOut: string | undefined;
    const kill = (why: string) => {
      timedOut ??= why;
      child.kill('SIGKILL');
    };
    const hard = setTimeout(() => kill(`timed out: still running after ${HARD_TIMEOUT_MS / 1000} s`), HARD_TIMEOUT_MS);
    let idle = setTimeout(() => kill(`timed out: no output for ${IDLE_TIMEOUT_MS / 1000} s`), IDLE_TIMEOUT_MS);
    const onOutput = (chunk: string) => {
      output += chunk;
      clearTimeout(idle);
      idle = setTimeout(() => kill(`timed out: no output for ${IDLE_TIMEOUT_MS / 1000} s`), IDLE_TIMEOUT_MS);
    };
    child.stdout.setEncoding('utf8').on('data', onOutput);
    child.stderr.setEncoding('utf8').on('data', onOutput);
    child.on('error', reject);
    child.on('close', (exitCode) => {
      clearTimeout(hard);
      clearTimeout(idle);
      resolve({ output, exitCode, ...(timedOut ? { timedOut } : {}) });
    });
  });
}

interface Problem {
  /** h2spec's id and name: "http2/5.1/2 idle: Sends a RST_STREAM frame" */
  test: string;
  /** "expected: ...; actual: ..." */
  detail: string;
}

function unescapeXml(text: string): string {
  return text.replace(/&(lt|gt|amp|quot|apos|#(\d+)|#x([0-9a-f]+));/gi, (_, name: string, dec?: string, hex?: string) => {
    if (dec) return String.fromCodePoint(Number(dec));
    if (hex) return String.fromCodePoint(parseInt(hex, 16));
    return { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" }[name.toLowerCase()]!;
  });
}

const attributes = (text: string) => Object.fromEntries([...text.matchAll(/([\w:-]+)="([^"]*)"/g)].map(([, k, v]) => [k!, unescapeXml(v!)]));

/** h2spec writes an <error> (or <failure>) per failed test: the expected lines, then the actual one. */
function expectedActual(text: string): string {
  const lines = unescapeXml(text).split('\n').map((l) => l.trim()).filter(Boolean);
  if (lines.length < 2) return lines.join(' ');
  return `expected: ${lines.slice(0, -1).join(' | ')}; actual: ${lines.at(-1)}`;
}

/** The failed and errored tests of h2spec's JUnit report, and how many tests it has. */
function readReport(xml: string): { tests: number; problems: Problem[] } {
  let tests = 0;
  const problems: Problem[] = [];
  for (const suite of xml.matchAll(/<testsuite\b([^>]*)>([\s\S]*?)<\/testsuite>/g)) {
    let index = 0;
    for (const testcase of suite[2]!.matchAll(/<testcase\b([^>]*?)(?:\/>|>([\s\S]*?)<\/testcase>)/g)) {
      index++;
      tests++;
      const { package: pkg, classname } = attributes(testcase[1]!);
      const bad = /<(failure|error)\b[^>]*?(?:\/>|>([\s\S]*?)<\/\1>)/.exec(testcase[2] ?? '');
      if (bad) problems.push({ test: `${pkg}/${index} ${classname}`, detail: `${bad[1]}: ${expectedActual(bad[2] ?? '')}` });
    }
  }
  return { tests, problems };
}

const GROUPS: Record<string, string> = {
  'Generic tests for HTTP/2 server': 'generic',
  'Hypertext Transfer Protocol Version 2 (HTTP/2)': 'http2',
  'HPACK: Header Compression for HTTP/2': 'hpack',
};

/** For a run killed before its report: the failures h2spec printed so far, and the test it was running. */
function readOutput(output: string): { problems: Problem[]; last: string } {
  const problems: Problem[] = [];
  let group = '';
  let section = '';
  let last = '';
  let open: { test: string; lines: string[] } | undefined;
  const close = () => {
    if (open) problems.push({ test: open.test, detail: expectedActual(open.lines.join('\n')) });
    open = undefined;
  };
  for (const raw of output.split('\n')) {
    const line = raw.slice(raw.lastIndexOf('\r') + 1); // a test's line is rewritten in place with its result
    if (line.startsWith('Failures:')) break; // the summary repeats what came before
    if (GROUPS[line.trim()]) group = GROUPS[line.trim()]!;
    const heading = /^\s*(\d+(?:\.\d+)*)\.\s/.exec(line);
    if (heading || GROUPS[line.trim()]) close();
    if (heading) {
      section = heading[1]!;
      continue;
    }
    const test = /^\s*(?:([✔×])\s+)?(\d+):\s+(.*)$/.exec(line);
    if (test) {
      close();
      last = `${group}/${section}/${test[2]} ${test[3]}`;
      if (test[1] === '×') open = { test: last, lines: [] };
      continue;
    }
    const detail = /^\s*(?:Expected:|Actual:)?\s*(.*)$/.exec(line);
    if (open && !/^\s*->/.test(line) && detail?.[1]) open.lines.push(detail[1]);
  }
  close();
  return { problems, last };
}

describe.skipIf(!present)('h2spec against dist/server.js', () => {
  for (const run of runs) {
    // 8 runs, 2 at a time: a test may wait for 3 runs before it, each bounded by HARD_TIMEOUT_MS
    it.concurrent(runName(run), { timeout: 4 * (HARD_TIMEOUT_MS + 30_000) }, async ({ expect }) => {
      await inSlot(async () => {
        const server = await spawnServer(['-workers', '1', ...(run.tls ? ['-tls'] : [])]);
        try {
          const report = join(testTmpDir('h2spec-'), 'report.xml');
          const outcome = await runH2spec(server.port, run, report);
          let problems: Problem[];
          let summary: string;
          if (outcome.timedOut) {
            const seen = readOutput(outcome.output);
            problems = [{ test: seen.last || '(no test started)', detail: `${outcome.timedOut} (killed; this test was running)` }, ...seen.problems];
            summary = `h2spec ${outcome.timedOut}, ${seen.problems.length} failed before that`;
          } else if (!existsSync(report)) {
            throw new Error(`h2spec wrote no report (exit code ${outcome.exitCode}):\n${outcome.output.slice(-2000)}`);
          } else {
            const read = readReport(readFileSync(report, 'utf8'));
            expect(read.tests, 'tests in the report').toBeGreaterThan(100);
            problems = read.problems;
            summary = `${problems.length} of ${read.tests} h2spec tests failed`;
          }
          const message = `${runName(run)}: ${summary}\n${problems.map((p) => `  ${p.test}\n      ${p.detail}`).join('\n')}`;
          expect(problems.length, `${message}\n`).toBe(0);
          expect(outcome.exitCode, `${runName(run)}: h2spec's exit code\n${outcome.output.slice(-2000)}`).toBe(0);
        } finally {
          await server.stop();
        }
      });
    });
  }
});
