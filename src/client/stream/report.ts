// What -stream prints: a line per reply as it comes, and a line for how each stream ended (its counts, its
// status, who answered and how long it took).
import { statusName } from '../../status.ts';
import { formatMs } from '../milliseconds.ts';
import { from } from '../report.ts';
import type { RequestResult } from '../run.ts';
import type { ReceivedMessage } from './result.ts';

/** "message 3: Hello world 3 (from pod-a, 301.2 ms since start)", "stream 2 message 3: …" with -count > 1. */
export function messageLine(m: ReceivedMessage, stream: number, count: number, envoy: boolean): string {
  const who = m.hostname !== undefined ? `from ${m.hostname}` : 'answer without a hostname';
  return `${count > 1 ? `stream ${stream} ` : ''}message ${m.index}: ${m.text} (${who}${envoy ? ' via Envoy' : ''}, ${formatMs(m.msSinceStart)} ms since start)`;
}

/**
 * "stream ended OK after 10 of 10 messages (from pod-a, 1001.2 ms)" on stdout, or on stderr
 * "stream ended after 12 of 100 messages: UNAVAILABLE: … (from pod-a, 1203.2 ms)".
 */
export function streamLine(r: RequestResult, options: { count: number }): { text: string; stream: 'stdout' | 'stderr' } {
  const which = options.count > 1 ? `stream ${r.index} ` : 'stream ';
  const counts = `${r.stream?.received ?? 0} of ${r.stream?.asked ?? 0} messages`;
  if (r.ok) return { text: `${which}ended OK after ${counts} ${from(r)}`, stream: 'stdout' };
  return { text: `${which}ended after ${counts}: ${statusName(r.code)}: ${r.details} ${from(r)}`, stream: 'stderr' };
}
