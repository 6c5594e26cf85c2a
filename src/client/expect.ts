// -expect_code, -expect_min_latency, -expect_max_latency, -expect_answered_by, -expect_messages: the assertion an e2e script
// would otherwise write around the client, built in so a scenario is one command in a pod (`/client -timeout 1
// -expect_code DEADLINE_EXCEEDED`). Every request must meet every expectation given; with only latencies
// expected, requests must also end OK (and, with -health, SERVING). A request that never reached a server
// meets none: a typo'd Service name must not pass for an injected delay.
import { statusName } from '../status.ts';
import type { Expectations } from './options.ts';
import { formatMs } from './milliseconds.ts';
import type { RequestResult } from './run.ts';

export interface ExpectationOutcome {
  met: boolean;
  /** one line per request that missed, e.g. "request 2: ended UNAVAILABLE, expected OK" */
  failures: string[];
}

/** `noun`: what each result is called in the lines (a request, or a stream with -stream). */
export function checkExpectations(results: readonly RequestResult[], e: Expectations, noun = 'request'): ExpectationOutcome {
  const failures: string[] = [];
  const expected = e.codes.map(statusName).join(' or ');
  for (const r of results) {
    const misses: string[] = [];
    if (!r.reached) {
      failures.push(`${noun} ${r.index}: never reached a server (${r.details})`);
      continue;
    }
    if (e.answeredBy !== undefined && r.answeredBy !== e.answeredBy) misses.push(`answered by ${r.answeredBy}, expected ${e.answeredBy}`);
    if (!e.codes.includes(r.code)) misses.push(`ended ${statusName(r.code)}, expected ${expected}`);
    else if (r.code === 0 && !r.ok) misses.push(`answered ${r.message}, expected SERVING`);
    if (e.minLatencyMs !== undefined && r.latencyMs < e.minLatencyMs) {
      misses.push(`took ${formatMs(r.latencyMs)} ms, expected at least ${threshold(e.minLatencyMs)} ms`);
    }
    if (e.maxLatencyMs !== undefined && r.latencyMs > e.maxLatencyMs) {
      misses.push(`took ${formatMs(r.latencyMs)} ms, expected at most ${threshold(e.maxLatencyMs)} ms`);
    }
    const received = r.stream?.received ?? 0;
    if (e.messages !== undefined && received !== e.messages) misses.push(`got ${received} messages, expected ${e.messages}`);
    if (misses.length > 0) failures.push(`${noun} ${r.index}: ${misses.join('; ')}`);
  }
  return { met: failures.length === 0, failures };
}

/** The one line on stderr when expectations are not met. */
export function expectationLine(outcome: ExpectationOutcome, count: number, noun = 'request'): string {
  if (outcome.met) return `expectations met by ${count === 1 ? `the ${noun}` : `all ${count} ${noun}s`}`;
  const more = outcome.failures.length > 1 ? ` (and ${outcome.failures.length - 1} more of ${count})` : '';
  return `expectation not met: ${outcome.failures[0]}${more}`;
}

/** A threshold as it was given: 2000, 250, 0.5 (ms). */
const threshold = (ms: number) => String(Number(ms.toFixed(3)));
