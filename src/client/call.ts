// One gRPC unary call over an HTTP/2 connection, as the gRPC-over-HTTP/2 spec has it: a POST with
// `content-type: application/grpc`, `te: trailers`, `grpc-timeout`, the metadata, and one length-prefixed
// message; the answer's status comes from the trailers, or from the headers of a trailers-only response
// (how grpc-js answers errors and how Envoy's fault filter aborts), or, when there is no gRPC status at all,
// from the HTTP status (the spec's HTTP-to-gRPC mapping). Returns the Answer; throws a TransportFailure
// when nothing was answered (the connection failed before the response headers); rejects with the
// signal's reason when the deadline ends the call (the stream is cancelled: RST_STREAM CANCEL).
import { Code } from '../status.ts';
import { frame } from '../grpc-frame.ts';
import { grpcTimeout } from '../grpc-timeout.ts';
import { explainTransportError, type ErrorContext } from './explain.ts';
import { ErrorCode, errorName } from '../h2/frames.ts';
import type { HeaderList } from '../h2/hpack.ts';
import type { ClientStream, H2Session, Headers, StreamEnding } from './h2/session.ts';
import { MAX_MESSAGE_BYTES, MessageReader } from './messages.ts';
import { TransportFailure } from './reconnect.ts';

export { MAX_MESSAGE_BYTES } from './messages.ts';

export interface UnaryRequest {
  /** /package.Service/Method */
  path: string;
  authority: string;
  /** the serialized request message (without the 5-byte prefix) */
  message: Buffer;
  /** [key, value], keys lower case; a key may repeat */
  metadata: ReadonlyArray<readonly [string, string]>;
  userAgent: string;
}

export interface Answer {
  code: number;
  /** grpc-message, percent-decoded; or what the client saw instead of a gRPC status */
  details: string;
  /** the `hostname` metadata of the answer (response headers or trailers) */
  hostname?: string;
  /** the `attempt` metadata of the answer: the retry attempt the server saw counted by Envoy (1 the first, 2 the first retry) */
  attempt?: number;
  /** the response message (without the prefix); only with code OK */
  message?: Buffer;
  /** response headers arrived: something spoke HTTP/2 back (false: the status is the client's own reading) */
  answered: boolean;
  /** Envoy's response headers were seen (`server: envoy`, `x-envoy-*`): a sidecar or gateway was in the path */
  envoy: boolean;
}

export interface CallOptions {
  /** performance.now() time at which the call ends, sent as grpc-timeout */
  deadline: number;
  /** aborts the call: the stream is cancelled and the promise rejects with the reason */
  signal: AbortSignal;
  context: ErrorContext;
}

export function unaryCall(session: H2Session, request: UnaryRequest, options: CallOptions): Promise<Answer> {
  const { signal } = options;
  return new Promise<Answer>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    let response: Headers | undefined;
    let trailers: Headers | undefined;
    const chunks: Buffer[] = [];
    let received = 0;
    let tooLarge = false;
    let stream: ClientStream;
    const onAbort = () => {
      stream.cancel();
      reject(signal.reason as Error);
    };
    try {
      stream = session.request(requestFields(request, session.scheme, options.deadline), frame(request.message), {
        onHeaders: (h) => {
          if (response) trailers = h;
          else response = h;
        },
        onData: (chunk) => {
          received += chunk.length;
          if (received > MAX_MESSAGE_BYTES + 5) {
            tooLarge = true;
            stream.cancel();
          } else {
            chunks.push(chunk);
          }
        },
        onClose: (ending) => {
          signal.removeEventListener('abort', onAbort);
          if (signal.aborted) return; // rejected already
          if (!response || ending.headersTooLarge) {
            const none = noAnswer(ending, options.context);
            return none instanceof TransportFailure ? reject(none) : resolve(none);
          }
          resolve(readAnswer(response, trailers, Buffer.concat(chunks), { ...ending, tooLarge, context: options.context }));
        },
      });
    } catch (err) {
      // the session would not take the request (it is going away or closed): nothing was sent
      return reject(new TransportFailure(explainTransportError(err, options.context), true));
    }
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The end of a call that has no answer to read: headers larger than the client takes, or no response headers at
 * all. A TransportFailure when the server certainly did not process it (to be sent again).
 */
export function noAnswer(ending: StreamEnding, context: ErrorContext): Answer | TransportFailure {
  const unanswered = { answered: false, envoy: false };
  if (ending.headersTooLarge) return { code: Code.RESOURCE_EXHAUSTED, details: ending.error?.message ?? 'response headers too large', ...unanswered };
  const words = ending.error ? explainTransportError(ending.error, context) : closedWithoutAnswer(ending.rstCode);
  // never processed (never written, refused, above a GOAWAY's last stream): sent again at once, as gRPC's transparent retries
  if (!ending.sent) return new TransportFailure(`no answer: ${words}`, true);
  // sent and then lost: the server may have run it, so it is not sent again unless -retry_on says so
  if (ending.connectionLost || ending.rstCode === ErrorCode.NO_ERROR) {
    return { code: Code.UNAVAILABLE, details: `the connection was lost after the request was sent: ${words}`, ...unanswered };
  }
  return { code: rstToGrpcCode(ending.rstCode), details: `no answer: ${words}`, ...unanswered };
}

/** The request's header fields: pseudo-headers, gRPC's, then the metadata (a user's user-agent replaces ours; other repeated keys repeat). */
export function requestFields(request: Pick<UnaryRequest, 'path' | 'authority' | 'metadata' | 'userAgent'>, scheme: string, deadline: number): HeaderList {
  const fields: HeaderList = [
    [':method', 'POST'],
    [':scheme', scheme],
    [':path', request.path],
    [':authority', request.authority],
    ['content-type', 'application/grpc'],
    ['te', 'trailers'],
    ['grpc-timeout', grpcTimeout(deadline - performance.now())],
    ['user-agent', request.userAgent],
  ];
  const replaceable = new Map(fields.map((f, i) => [f[0], i]));
  for (const [key, value] of request.metadata) {
    const at = replaceable.get(key);
    if (at === undefined) {
      fields.push([key, value]);
    } else {
      fields[at] = [key, value];
      replaceable.delete(key);
    }
  }
  return fields;
}

function closedWithoutAnswer(rstCode: number): string {
  if (rstCode === ErrorCode.REFUSED_STREAM) return 'the server refused the stream (REFUSED_STREAM)';
  if (rstCode !== ErrorCode.NO_ERROR) return `the stream was reset (HTTP/2 error ${errorName(rstCode)})`;
  return 'the connection closed before the server answered';
}

/** How the stream ended (h2/session.ts), and what the call saw of it. */
export type Ending = StreamEnding & { tooLarge: boolean; context: ErrorContext };

/** The answer from the response headers, trailers and body; exported for tests of odd servers. */
export function readAnswer(response: Headers, trailers: Headers | undefined, body: Buffer, ending: Ending): Answer {
  const status = readStatus(response, trailers, ending);
  if (status.code !== Code.OK) return status;
  const internal = (details: string): Answer => ({ ...status, code: Code.INTERNAL, details });
  const reader = new MessageReader(header(response, 'grpc-encoding'));
  const messages = reader.push(body);
  if (typeof messages === 'string') return internal(messages);
  const cut = reader.end();
  if (cut !== undefined) return internal(cut);
  if (messages.length !== 1) return internal(`a unary call must answer exactly one message, the server sent ${messages.length}`);
  return { ...status, message: messages[0]! };
}

/**
 * The call's status from the response headers and trailers, or from how the stream ended when they carry none;
 * with who answered. Code OK says nothing yet of the messages, which are the caller's to read.
 */
export function readStatus(response: Headers, trailers: Headers | undefined, ending: Ending): Answer {
  const hostname = header(trailers, 'hostname') ?? header(response, 'hostname');
  const envoy = viaEnvoy(response) || (trailers !== undefined && viaEnvoy(trailers));
  const attemptText = header(trailers, 'attempt') ?? header(response, 'attempt');
  const attempt = attemptText !== undefined && /^[1-9]\d{0,8}$/.test(attemptText) ? Number(attemptText) : undefined;
  const withHost = (a: Omit<Answer, 'answered' | 'envoy'>): Answer => ({
    ...a,
    ...(hostname === undefined ? {} : { hostname }),
    ...(attempt === undefined ? {} : { attempt }),
    answered: true,
    envoy,
  });
  const httpStatus = Number(response[':status']);
  const contentType = header(response, 'content-type') ?? '';
  const isGrpc = /^application\/grpc([+;]|$)/i.test(contentType);
  const statusHeaders = trailers ?? (header(response, 'grpc-status') !== undefined ? response : undefined);

  if (!isGrpc || (httpStatus !== 200 && header(statusHeaders, 'grpc-status') === undefined)) {
    // not a gRPC answer: a proxy's error page, a web server, a load balancer with no backend
    const what = `HTTP ${httpStatus}${contentType ? ` (${contentType})` : ''}`;
    if (httpStatus === 200) return withHost({ code: Code.UNKNOWN, details: `the server answered ${what}, not application/grpc: not a gRPC server?` });
    return withHost({ code: httpToGrpcCode(httpStatus), details: `the server answered ${what} without a gRPC status${isGrpc ? '' : ': not a gRPC server, or a proxy error?'}` });
  }
  if (ending.tooLarge) return withHost({ code: Code.RESOURCE_EXHAUSTED, details: `response message larger than ${MAX_MESSAGE_BYTES} bytes` });
  const rawStatus = header(statusHeaders, 'grpc-status');
  if (rawStatus === undefined) {
    // (RST_STREAM NO_ERROR is how Envoy ends a stream whose answer had begun when its route timeout fired)
    const resetByPeer = ending.rstCode !== ErrorCode.NO_ERROR || (!ending.ended && !ending.error);
    if (resetByPeer && !ending.connectionLost) {
      return withHost({ code: rstToGrpcCode(ending.rstCode), details: `the stream was reset before its status (HTTP/2 error ${errorName(ending.rstCode)})` });
    }
    if (ending.ended && !ending.error && !ending.connectionLost) {
      return withHost({ code: Code.INTERNAL, details: 'the server ended the stream without a gRPC status (no grpc-status trailer)' });
    }
    const why = ending.error ? `: ${explainTransportError(ending.error, ending.context)}` : '';
    return withHost({ code: Code.UNAVAILABLE, details: `the connection was lost before the call's status arrived${why}` });
  }
  const code = /^\d+$/.test(rawStatus.trim()) ? Number(rawStatus) : Code.UNKNOWN;
  const message = percentDecode(header(statusHeaders, 'grpc-message') ?? '');
  if (code !== Code.OK) return withHost({ code, details: /^\d+$/.test(rawStatus.trim()) ? message : `invalid grpc-status ${JSON.stringify(rawStatus)}: ${message}` });
  return withHost({ code: Code.OK, details: '' });
}

/** Envoy's marks on an answer: its `server` header (a fault abort or a local reply) or its `x-envoy-` headers. */
export function viaEnvoy(headers: Headers): boolean {
  if (header(headers, 'server') === 'envoy') return true;
  for (const name in headers) if (name.startsWith('x-envoy-')) return true;
  return false;
}

export function header(headers: Headers | undefined, key: string): string | undefined {
  const v = headers?.[key];
  return Array.isArray(v) ? v[0] : v;
}

/** grpc-message is percent-encoded UTF-8; a malformed escape is kept as it is. */
export function percentDecode(text: string): string {
  if (!text.includes('%')) return text;
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const hex = text.slice(i + 1, i + 3);
    if (text[i] === '%' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(text[i]!, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** The gRPC spec's mapping for answers without a grpc-status. */
export function httpToGrpcCode(httpStatus: number): number {
  switch (httpStatus) {
    case 400:
      return Code.INTERNAL;
    case 401:
      return Code.UNAUTHENTICATED;
    case 403:
      return Code.PERMISSION_DENIED;
    case 404:
      return Code.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return Code.UNAVAILABLE;
    default:
      return Code.UNKNOWN;
  }
}

/** The gRPC spec's mapping for a stream reset before its status (NO_ERROR too is INTERNAL). */
function rstToGrpcCode(rstCode: number): number {
  switch (rstCode) {
    case ErrorCode.REFUSED_STREAM:
      return Code.UNAVAILABLE;
    case ErrorCode.CANCEL:
      return Code.CANCELLED;
    case ErrorCode.ENHANCE_YOUR_CALM:
      return Code.RESOURCE_EXHAUSTED;
    case ErrorCode.INADEQUATE_SECURITY:
      return Code.PERMISSION_DENIED;
    default:
      return Code.INTERNAL;
  }
}
