// HTTP/1.1 on the gRPC port, for what speaks nothing else to it: Kubernetes `httpGet` probes (a new connection
// per probe; over TLS without ALPN) and cloud load-balancer health checks. One request a connection: its head
// is read (at most MAX_HEAD bytes, within the deadline), answered with `Connection: close`, and the connection
// ends. GET or HEAD /healthz and /readyz get health (http-health.ts); anything else is refused in words, with
// 505 as grpc-go's HTTP handler does ("gRPC requires HTTP/2"); a malformed head gets 400.
import type { Socket } from 'node:net';
import { httpDate } from './http-date.ts';
import { healthAnswer } from './http-health.ts';
import { NOT_GRPC } from './refusals.ts';

/** The request line and header fields together, at most (as Go's net/http reads 1 MB and Node 16 KiB: a probe sends ~200 bytes). */
export const MAX_HEAD = 8 * 1024;

/**
 * After the answer, how long what the client still sends is read and dropped before the socket is destroyed:
 * a close with unread bytes resets the connection (TCP RST), and the client could lose the answer.
 */
const LINGER_MS = 2000;

const REFUSED = Buffer.concat([NOT_GRPC, Buffer.from('Over HTTP/1.1 it answers only GET /healthz and GET /readyz.\n')]);

const REASONS: Readonly<Record<number, string>> = {
  200: 'OK',
  400: 'Bad Request',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
  503: 'Service Unavailable',
  505: 'HTTP Version Not Supported',
};

const REQUEST_LINE = /^([A-Z]+) (\S+) HTTP\/(\d)\.\d$/;
const FIELD_LINE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^\r\n]*$/;

export interface Http1Options {
  /** the request head must have come within this (0: no limit) */
  timeoutMs: number;
  /** shutdown has begun: /readyz answers 503 */
  draining: () => boolean;
}

interface Answer {
  status: number;
  body: Buffer;
  /** a HEAD: the body's length is said, the body not sent */
  headOnly?: boolean;
}

/** Serves one HTTP/1.1 request on the socket (its bytes from the first on), then ends the connection. */
export function serveHttp1(socket: Socket, options: Http1Options): void {
  let head: Buffer = Buffer.alloc(0);
  let answered = false;
  let linger: NodeJS.Timeout | undefined;
  const answer = (a: Answer) => {
    answered = true;
    clearTimeout(timer);
    socket.end(response(a));
    linger = setTimeout(() => socket.destroy(), LINGER_MS);
  };
  const timer = options.timeoutMs > 0 ? setTimeout(() => answer({ status: 408, body: REFUSED }), options.timeoutMs) : undefined;
  socket.on('data', (chunk: Buffer) => {
    if (answered) return;
    const scanned = head.length;
    head = scanned === 0 ? chunk : Buffer.concat([head, chunk]);
    const end = headEnd(head, Math.max(0, scanned - 2));
    if (end >= 0) answer(answerTo(head.toString('latin1', 0, end), options.draining));
    else if (head.length >= MAX_HEAD) answer({ status: 431, body: REFUSED });
  });
  socket.on('end', () => {
    if (!answered) socket.destroy();
  });
  socket.on('error', () => socket.destroy());
  socket.once('close', () => {
    clearTimeout(timer);
    clearTimeout(linger);
  });
}

/**
 * Where the head ends (the length of its request and field lines, their last line break excluded), looking
 * from `from` and within MAX_HEAD; -1 if it has not. Lines end with CRLF, or a bare LF (RFC 9112 §2.2 allows it).
 */
function headEnd(bytes: Buffer, from: number): number {
  const LF = 0x0a;
  const CR = 0x0d;
  for (let at = bytes.indexOf(LF, from); at >= 0 && at < MAX_HEAD; at = bytes.indexOf(LF, at + 1)) {
    if (bytes[at + 1] === LF || (bytes[at + 1] === CR && bytes[at + 2] === LF)) return at > 0 && bytes[at - 1] === CR ? at - 1 : at;
  }
  return -1;
}

/** The answer to a request head (its request line and field lines, without the empty line that ends it). */
export function answerTo(head: string, draining: () => boolean): Answer {
  const [requestLine = '', ...fields] = head.split(/\r?\n/);
  const request = REQUEST_LINE.exec(requestLine);
  if (!request || !fields.every((f) => FIELD_LINE.test(f))) return { status: 400, body: REFUSED };
  const [, method = '', target = '', major] = request;
  const health = major === '1' ? healthAnswer(method, target, draining) : undefined;
  if (!health) return { status: 505, body: REFUSED };
  return { ...health, headOnly: method === 'HEAD' };
}

function response({ status, body, headOnly }: Answer): Buffer {
  const head =
    `HTTP/1.1 ${status} ${REASONS[status] ?? ''}\r\n` +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${body.length}\r\n` +
    `Date: ${httpDate()}\r\n` +
    'Connection: close\r\n\r\n';
  return headOnly ? Buffer.from(head, 'latin1') : Buffer.concat([Buffer.from(head, 'latin1'), body]);
}
