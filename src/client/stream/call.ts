// A streaming call, as call.ts's unary one but for many messages: SayHelloStream sends its one request with
// END_STREAM; SayHelloBidi writes its requests over time (-stream_interval apart) and then ends its side.
// Each reply is handed over as it arrives; the status comes as for a unary call (call.ts: the trailers, a
// trailers-only answer, or how the stream ended). The deadline cancels the stream (RST_STREAM CANCEL) and
// rejects with the signal's reason; what had arrived by then is the caller's, from onMessage.
import { frame } from '../../grpc-frame.ts';
import { Code } from '../../status.ts';
import { header, noAnswer, readStatus, requestFields, type Answer, type CallOptions, type UnaryRequest } from '../call.ts';
import { explainTransportError } from '../explain.ts';
import type { ClientStream, H2Session, Headers, RequestStream, StreamHandlers } from '../h2/session.ts';
import { MessageReader } from '../messages.ts';
import { TransportFailure } from '../reconnect.ts';

export interface StreamRequest extends Omit<UnaryRequest, 'message'> {
  /** server: `message` once, with END_STREAM; bidi: `message` `count` times, `intervalMs` apart, then END_STREAM */
  kind: 'server' | 'bidi';
  /** the request message, serialized (without the 5-byte prefix) */
  message: Buffer;
  count: number;
  intervalMs: number;
}

export interface StreamEvents {
  /** the response headers: who answers */
  onResponse(headers: Headers): void;
  /** a reply (without its prefix); throwing says it is malformed: the stream is cancelled and ends INTERNAL with the words */
  onMessage(message: Buffer): void;
}

export function streamCall(session: H2Session, request: StreamRequest, options: CallOptions, events: StreamEvents): Promise<Answer> {
  const { signal } = options;
  return new Promise<Answer>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    let response: Headers | undefined;
    let trailers: Headers | undefined;
    let reader: MessageReader | undefined;
    /** what is wrong with the replies (the stream was cancelled for it) */
    let wrong: { code: number; details: string } | undefined;
    let sender: Sender | undefined;
    let stream: ClientStream;
    const onAbort = () => {
      sender?.stop();
      stream.cancel();
      reject(signal.reason as Error);
    };
    const fail = (code: number, details: string) => {
      wrong = { code, details };
      stream.cancel();
    };
    const handlers: StreamHandlers = {
      onHeaders: (h) => {
        if (response) return void (trailers = h);
        response = h;
        reader = new MessageReader(header(h, 'grpc-encoding'));
        events.onResponse(h);
      },
      onData: (chunk) => {
        if (wrong || !reader) return;
        const messages = reader.push(chunk);
        if (typeof messages === 'string') return fail(reader.tooLarge ? Code.RESOURCE_EXHAUSTED : Code.INTERNAL, messages);
        try {
          for (const message of messages) events.onMessage(message);
        } catch (err) {
          fail(Code.INTERNAL, (err as Error).message);
        }
      },
      onClose: (ending) => {
        sender?.stop();
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) return; // rejected already
        if (!response || ending.headersTooLarge) {
          const none = noAnswer(ending, options.context);
          return none instanceof TransportFailure ? reject(none) : resolve(none);
        }
        const status = readStatus(response, trailers, { ...ending, tooLarge: false, context: options.context });
        const cut = status.code === Code.OK ? reader?.end() : undefined;
        if (cut !== undefined) wrong ??= { code: Code.INTERNAL, details: cut };
        resolve(wrong ? { ...status, ...wrong } : status);
      },
      onDrain: () => sender?.drained(),
    };
    const fields = requestFields(request, session.scheme, options.deadline);
    try {
      if (request.kind === 'server') {
        stream = session.request(fields, frame(request.message), handlers);
      } else {
        const open = session.open(fields, handlers);
        stream = open;
        sender = sendOverTime(open, frame(request.message), request.count, request.intervalMs);
      }
    } catch (err) {
      // the session would not take the request (it is going away or closed): nothing was sent
      return reject(new TransportFailure(explainTransportError(err, options.context), true));
    }
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

interface Sender {
  stop(): void;
  /** the stream took what waited for the server's window */
  drained(): void;
}

/** Writes `framed` `count` times, the i-th (from 0) at i × `intervalMs` from now, then ends the request side. */
function sendOverTime(stream: RequestStream, framed: Buffer, count: number, intervalMs: number): Sender {
  const started = performance.now();
  let sent = 0;
  let stopped = false;
  let blocked = false;
  let timer: NodeJS.Timeout | undefined;
  const next = () => {
    timer = undefined;
    while (!stopped) {
      if (sent === count) return stream.end();
      const wait = started + sent * intervalMs - performance.now();
      if (wait > 0) return void (timer = setTimeout(next, wait));
      sent++;
      if (!stream.write(framed)) return void (blocked = true);
    }
  };
  next();
  return {
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
    drained: () => {
      if (!blocked) return;
      blocked = false;
      next();
    },
  };
}
