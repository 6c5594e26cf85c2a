// -stream: each request of the run is a stream (stream/call.ts), -messages long. Its replies are printed as
// they come (message 3: Hello world 3 (from pod-a, 301.2 ms since start)), counted, and kept for -json; the
// stream's status is how it ended. A stream is sent again only as a unary call is (run.ts) and, with
// -retry_on, only while no reply has come. Loaded only with -stream.
import { Code } from '../../status.ts';
import { header, viaEnvoy, type Answer } from '../call.ts';
import { decodeHelloReply, encodeHelloRequest } from '../codec.ts';
import type { Headers } from '../h2/session.ts';
import type { ClientOptions, StreamOptions } from '../options.ts';
import { answeredBy, methodPath, type Exchange, type Outcome } from '../run.ts';
import { USER_AGENT } from '../version.ts';
import { encodeHelloStreamRequest } from './codec.ts';
import { streamCall, type StreamRequest } from './call.ts';
import { messageLine } from './report.ts';
import type { ReceivedMessage } from './result.ts';

export { streamLine } from './report.ts';

interface Progress {
  response: Headers | undefined;
  hostname: string | undefined;
  received: number;
  last: string | undefined;
  messages: ReceivedMessage[];
}

const noProgress = (): Progress => ({ response: undefined, hostname: undefined, received: 0, last: undefined, messages: [] });

/** Each request's exchange; `print` takes a line per reply (text output), or nothing (-json). */
export function streamExchanges(options: ClientOptions & { stream: StreamOptions }, print?: (line: string) => void): (index: number) => Exchange {
  const { stream } = options;
  const name = options.call.kind === 'hello' ? options.call.name : '';
  const request: StreamRequest = {
    kind: stream.kind,
    path: methodPath(options),
    authority: options.authority,
    metadata: options.metadata,
    userAgent: USER_AGENT,
    message: stream.kind === 'server' ? encodeHelloStreamRequest({ name, count: stream.messages, intervalMs: stream.intervalMs }) : encodeHelloRequest({ name }),
    count: stream.messages,
    intervalMs: stream.intervalMs,
  };

  return (index) => {
    const started = performance.now();
    let progress = noProgress();
    const stats = () => ({ stream: { asked: stream.messages, received: progress.received, ...(options.json ? { messages: progress.messages } : {}) } });
    const onMessage = (bytes: Buffer) => {
      let text: string;
      try {
        text = decodeHelloReply(bytes).message;
      } catch (err) {
        throw new Error(`cannot decode a HelloReply: ${(err as Error).message}`);
      }
      const message: ReceivedMessage = { index: ++progress.received, text, msSinceStart: performance.now() - started, ...(progress.hostname === undefined ? {} : { hostname: progress.hostname }) };
      progress.last = text;
      if (options.json) progress.messages.push(message);
      print?.(messageLine(message, index, options.count, progress.response !== undefined && viaEnvoy(progress.response)));
    };
    const exchange: Exchange = {
      attempt(session, call) {
        progress = noProgress(); // (an attempt before this one got no reply: retryable() says so)
        const onResponse = (headers: Headers) => {
          progress.response = headers;
          progress.hostname = header(headers, 'hostname');
        };
        return streamCall(session, request, call, { onResponse, onMessage });
      },
      retryable: () => progress.received === 0,
      outcome: (answer: Answer): Outcome => ({
        code: answer.code,
        details: answer.details,
        ...answeredBy({ ...answer, hostname: answer.hostname ?? progress.hostname }),
        ...(progress.last === undefined ? {} : { message: progress.last }),
        ok: answer.code === Code.OK,
      }),
      extra: stats,
      cut(deadlineWords) {
        const { response } = progress;
        if (!response) return undefined;
        return {
          code: Code.DEADLINE_EXCEEDED,
          details: `${deadlineWords}: the stream was still open (-timeout is the deadline of the whole stream)`,
          ...answeredBy({ hostname: progress.hostname, answered: true, envoy: viaEnvoy(response) }),
          ...(progress.last === undefined ? {} : { message: progress.last }),
          ok: false,
        };
      },
    };
    return exchange;
  };
}
