// gRPC below the library: hand-made frames and requests over node:http2 (and raw bytes over node:net), so
// the reliability tests can send what no well-behaved client would. Every wait is bounded.
import { connect, constants, type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { Socket, connect as netConnect } from 'node:net';
import { SAY_HELLO_PATH } from '../../src/rpc-names.ts';

/** A gRPC message frame: compressed flag, 4-byte big-endian length, payload. `length` may lie. */
export function grpcFrame(payload: Buffer, options: { compressed?: boolean; length?: number } = {}): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt8(options.compressed ? 1 : 0, 0);
  prefix.writeUInt32BE(options.length ?? payload.length, 1);
  return Buffer.concat([prefix, payload]);
}

/** protobuf varint */
export function varint(n: number): Buffer {
  const bytes: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    bytes.push(b);
  } while (n > 0);
  return Buffer.from(bytes);
}

/** HelloRequest { string name = 1 } encoded by hand. */
export function helloRequest(name: string | Buffer): Buffer {
  const bytes = typeof name === 'string' ? Buffer.from(name, 'utf8') : name;
  return Buffer.concat([Buffer.from([0x0a]), varint(bytes.length), bytes]);
}

export const SAY_HELLO = SAY_HELLO_PATH;

export interface RawAnswer {
  /** the HTTP :status, 0 when no response headers came */
  httpStatus: number;
  headers: IncomingHttpHeaders;
  trailers: IncomingHttpHeaders;
  data: Buffer;
  /** grpc-status from the trailers (or a trailers-only response), undefined when there was none */
  grpcStatus?: number;
  grpcMessage?: string;
  /** the stream ended by RST_STREAM / a session error instead of a status */
  error?: string;
  /** the wait ran out: the server neither answered nor reset the stream */
  timedOut: boolean;
}

export const grpcHeaders = (path = SAY_HELLO, extra: OutgoingHttpHeaders = {}): OutgoingHttpHeaders => ({
  ':method': 'POST',
  ':path': path,
  'content-type': 'application/grpc',
  te: 'trailers',
  ...extra,
});

/**
 * One request on `session`: the headers, then each chunk of `body` written as is, then END_STREAM unless
 * `keepOpen`. Resolves with whatever came back, or `timedOut` after `waitMs`.
 */
export function rawRequest(
  session: ClientHttp2Session,
  headers: OutgoingHttpHeaders,
  body: Buffer[] = [],
  options: { keepOpen?: boolean; waitMs?: number } = {},
): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const answer: RawAnswer = { httpStatus: 0, headers: {}, trailers: {}, data: Buffer.alloc(0), timedOut: false };
    const chunks: Buffer[] = [];
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      answer.data = Buffer.concat(chunks);
      const status = answer.trailers['grpc-status'] ?? answer.headers['grpc-status'];
      if (status !== undefined) answer.grpcStatus = Number(status);
      const message = answer.trailers['grpc-message'] ?? answer.headers['grpc-message'];
      if (message !== undefined) answer.grpcMessage = percentDecode(String(message));
      if (!stream.destroyed) stream.close(constants.NGHTTP2_CANCEL);
      resolve(answer);
    };
    const timer = setTimeout(() => {
      answer.timedOut = true;
      settle();
    }, options.waitMs ?? 5000);
    let stream: ReturnType<ClientHttp2Session['request']>;
    try {
      stream = session.request(headers, { endStream: false });
    } catch (err) {
      clearTimeout(timer);
      resolve({ ...answer, error: String(err) });
      return;
    }
    stream.on('response', (h) => {
      answer.headers = h;
      answer.httpStatus = Number(h[':status']);
    });
    stream.on('trailers', (t) => (answer.trailers = t));
    stream.on('data', (d: Buffer) => chunks.push(d));
    // the server's side is complete (trailers, or a trailers-only response), even if ours is still open
    stream.on('end', settle);
    stream.on('error', (err) => {
      answer.error = String(err);
      settle();
    });
    stream.on('close', () => {
      if (stream.rstCode && stream.rstCode !== constants.NGHTTP2_NO_ERROR && !answer.error) answer.error = `RST_STREAM ${stream.rstCode}`;
      settle();
    });
    for (const chunk of body) stream.write(chunk);
    if (!options.keepOpen) stream.end();
  });
}

/** grpc-message is percent-encoded; a malformed encoding is kept as it came. */
function percentDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** An HTTP/2 session over cleartext (or TLS with `tls`), connected or failed within `waitMs`. */
export async function h2Session(
  address: string,
  tls?: { ca: Buffer | string; servername?: string; cert?: Buffer; key?: Buffer },
  waitMs = 5000,
): Promise<ClientHttp2Session> {
  const session = tls
    ? connect(`https://${address}`, { ca: tls.ca, servername: tls.servername ?? 'localhost', cert: tls.cert, key: tls.key })
    : connect(`http://${address}`);
  session.on('error', () => {}); // callers look at streams and at 'close'
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no HTTP/2 session with ${address} after ${waitMs} ms`)), waitMs);
    session.once('connect', () => {
      clearTimeout(timer);
      resolve();
    });
    session.once('close', () => {
      clearTimeout(timer);
      reject(new Error(`HTTP/2 session with ${address} closed before it connected`));
    });
  });
  return session;
}

export interface RawExchange {
  /** bytes the server sent back */
  received: Buffer;
  /** how the connection ended: 'closed' by the server, 'reset', 'timeout' (still open after waitMs) */
  end: 'closed' | 'reset' | 'timeout';
  ms: number;
}

/** Opens a TCP connection, writes `bytes`, and collects what comes back until the server closes or `waitMs`. */
export function rawExchange(address: string, bytes: Buffer, waitMs = 3000): Promise<RawExchange> {
  const [host, port] = splitAddress(address);
  return collectAnswer(netConnect({ host, port }), 'connect', (socket) => socket.write(bytes), waitMs);
}

/** Once `socket` is up (`open`: 'connect', or 'secureConnect' for TLS), `onOpen` writes; what comes back is collected until the server closes or `waitMs`. */
export function collectAnswer(socket: Socket, open: 'connect' | 'secureConnect', onOpen: (socket: Socket) => void, waitMs: number): Promise<RawExchange> {
  const started = performance.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (end: RawExchange['end']) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ received: Buffer.concat(chunks), end, ms: performance.now() - started });
    };
    const timer = setTimeout(() => finish('timeout'), waitMs);
    socket.once(open, () => onOpen(socket));
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', (err: NodeJS.ErrnoException) => finish(err.code === 'ECONNRESET' ? 'reset' : 'closed'));
    socket.on('close', () => finish('closed'));
  });
}

export function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i).replace(/^\[|\]$/g, ''), Number(address.slice(i + 1))];
}

/** The HTTP/2 connection preface a client sends first. */
export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** An HTTP/2 frame: 3-byte length, type, flags, 31-bit stream id, payload. */
export function h2Frame(type: number, flags: number, streamId: number, payload: Buffer, lengthOverride?: number): Buffer {
  const header = Buffer.alloc(9);
  const length = lengthOverride ?? payload.length;
  header.writeUIntBE(length & 0xffffff, 0, 3);
  header.writeUInt8(type & 0xff, 3);
  header.writeUInt8(flags & 0xff, 4);
  header.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([header, payload]);
}

/** An empty SETTINGS frame: what a client sends right after the preface. */
export const H2_EMPTY_SETTINGS = h2Frame(0x4, 0, 0, Buffer.alloc(0));
