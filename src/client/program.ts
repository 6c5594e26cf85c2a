// The client as a function: typed options in, lines or a JSON document out, an exit code back. main.ts
// feeds it the command line and the process's streams; tests call it in-process.
//
// Exit codes (exit-codes.ts, ClientExit): OK, or every expectation met; 64 + the gRPC status code of the first
// failed request in request order; FAILED otherwise; USAGE comes from main.
import { ClientExit, exitCodeForStatus } from '../exit-codes.ts';
import { checkExpectations, expectationLine } from './expect.ts';
import type { ClientOptions } from './options.ts';
import { jsonDocument, requestLine, summarize, summaryText } from './report.ts';
import { runRequests, type RequestResult } from './run.ts';

export interface ClientIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** jitter's random numbers (tests pin them) */
  random?: () => number;
}

export async function runClient(options: ClientOptions, io: ClientIo): Promise<number> {
  // streams and keepalive are code a probe never runs: loaded only when asked for
  const { stream } = options;
  const streams = stream ? await import('./stream/exchange.ts') : undefined;
  const { keepaliveMs } = options;
  const keepalive = keepaliveMs === undefined ? undefined : (await import('./h2/keepalive.ts')).keepalive;
  const lineOf = streams?.streamLine ?? requestLine;
  const results = await runRequests(options, {
    ...(options.verbose ? { log: (line: string) => io.stderr(`${line}\n`) } : {}),
    ...(options.json
      ? {}
      : {
          onResult: (r: RequestResult) => {
            const { text, stream: out } = lineOf(r, options);
            io[out](`${text}\n`);
          },
        }),
    ...(streams && stream ? { exchange: streams.streamExchanges({ ...options, stream }, options.json ? undefined : (line) => io.stdout(`${line}\n`)) } : {}),
    ...(keepalive && keepaliveMs !== undefined ? { keepalive: (session) => keepalive(session, keepaliveMs) } : {}),
    ...(io.random ? { random: io.random } : {}),
  });
  const noun = stream ? 'stream' : 'request';
  const expectation = options.expectations ? checkExpectations(results, options.expectations, noun) : undefined;
  const exitCode = expectation ? (expectation.met ? ClientExit.OK : ClientExit.FAILED) : exitCodeForResults(results);
  const wantSummary = options.json || options.count > 1;
  const summary = wantSummary ? await summarize(results, options.call.kind === 'health') : undefined;

  if (options.json) {
    io.stdout(`${JSON.stringify(jsonDocument(options, results, summary!, expectation, exitCode), null, 2)}\n`);
  } else if (summary && options.count > 1) {
    io.stdout(`${summaryText(summary, options)}\n`);
  }
  if (expectation) {
    const line = `${expectationLine(expectation, results.length, noun)}\n`;
    if (expectation.met) {
      if (!options.json) io.stdout(line);
    } else {
      io.stderr(line);
    }
  }
  return exitCode;
}

export function exitCodeForResults(results: readonly RequestResult[]): number {
  const failed = results.find((r) => !r.ok);
  if (!failed) return ClientExit.OK;
  return failed.code !== 0 ? exitCodeForStatus(failed.code) : ClientExit.FAILED;
}
