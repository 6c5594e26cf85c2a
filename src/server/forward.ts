// Every call the fast path does not answer is grpc-js' job, unchanged: Greeter calls that ask for a fault,
// a sleep or compression, health (Check and Watch), reflection, malformed requests. The front door passes
// such a stream through, byte for byte, to the grpc-js server of this process over an in-memory connection
// (grpc-js' ConnectionInjector, and memoryPair below): no port, no socket.
//
// Each front-door connection gets its own in-memory connection, opened at its first such call, so that
// grpc-js sees one connection per client as before. Flow control carries through: request bytes are given
// back to the client's window once grpc-js has taken them, and the answer's bytes are read from grpc-js only
// as fast as the client's window lets them out.
import type { ConnectionInjector } from '@grpc/grpc-js';
import type { ClientHttp2Session, ClientHttp2Stream, IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import { Duplex } from 'node:stream';
import { ErrorCode, Flag } from '../h2/frames.ts';
import { DEFAULT_LIMITS } from '../h2/limits.ts';
import { MAX_TIMER_MS, parseGrpcTimeout } from '../grpc-timeout.ts';
import type { HeaderList } from '../h2/hpack.ts';
import { PEER_HEADER } from './access-log.ts';
import type { H2Stream, StreamHandler } from '../h2/connection.ts';

/** Header fields HTTP/2 forbids (RFC 9113 §8.2.2) and node:http2 refuses to send: dropped, as a proxy does. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', PEER_HEADER]);

export class GrpcJsConnection {
  #session: ClientHttp2Session | undefined;
  /** streams forwarded and not yet closed */
  #open = 0;

  constructor(
    private readonly injector: ConnectionInjector,
    /** streams forwarded at once, at most (limits.ts, maxForwardedStreams) */
    private readonly maxStreams: number,
    /** methods whose client streams its messages */
    private readonly requestStreamPaths: ReadonlySet<string>,
  ) {}

  #connect(): ClientHttp2Session {
    if (this.#session && !this.#session.closed && !this.#session.destroyed) return this.#session;
    const [ours, theirs] = memoryPair();
    this.injector.injectConnection(theirs);
    // (node:http2 is looked up here, not imported: an ES module import would load it, and node:tls and
    // node:crypto with it, in every process that starts from the bundle, -help included)
    const http2 = process.getBuiltinModule('node:http2');
    // (its own cap on a header block it sends, 64 KiB by default, would refuse metadata grpc-js takes)
    const session = http2.connect('http://localhost', { createConnection: () => ours, settings: { enablePush: false }, maxSendHeaderBlockLength: DEFAULT_LIMITS.maxHeaderBlock });
    session.on('error', noop); // each stream learns of it through its 'close'
    this.#session = session;
    return session;
  }

  /**
   * Hands `stream` to grpc-js: its headers, the request bytes read so far (`read`, not yet given back to the
   * client's window), and from now on whatever else comes.
   */
  forward(stream: H2Stream, read: Buffer[]): void {
    // (not processed: a gRPC client sends it again, elsewhere or later)
    if (this.#open >= this.maxStreams) return stream.reset(ErrorCode.REFUSED_STREAM);
    let upstream: ClientHttp2Stream;
    try {
      upstream = this.#connect().request(outgoingHeaders(stream.fields, stream.peer), { endStream: stream.remoteEnded && read.length === 0 });
    } catch {
      // a header node:http2 will not send (an invalid name or value): what nghttp2 answers it with
      return stream.reset(ErrorCode.PROTOCOL_ERROR);
    }
    this.#open++;
    upstream.once('close', () => this.#open--);
    // its headers too are held again by node:http2 and grpc-js (the connection counted them once already)
    stream.retain(stream.headerSize * (FORWARDED_COPIES - 1));
    const passed = new PassThrough(stream, upstream, !this.requestStreamPaths.has(stream.headers[':path'] ?? ''));
    stream.handler = passed;
    for (const chunk of read) passed.onData(chunk);
    if (stream.remoteEnded && read.length > 0) upstream.end();
  }

  /** Ends the in-memory connection (its calls are cancelled, as on a lost connection). */
  close(): void {
    this.#session?.destroy();
    this.#session = undefined;
  }
}

/** Copies of a forwarded request's bytes the process holds while its call runs: the hop, grpc-js' message, its answer. */
const FORWARDED_COPIES = 4;

class PassThrough implements StreamHandler {
  #clientGone = false;
  #ended = false;
  /** answer DATA that came before node:http2 emitted 'response' (it emits headers a tick late, data at once) */
  #early: Buffer[] | undefined = [];

  constructor(
    private readonly stream: H2Stream,
    private readonly upstream: ClientHttp2Stream,
    /** grpc-js holds the request until the call ends (a unary or server-streaming method): counted as held */
    private readonly heldUntilEnd: boolean,
  ) {
    // The answer goes out as headers, DATA, trailers, in that order, whatever order node:http2 emits them in:
    // the headers a tick after DATA may have come, the trailers as they arrive even while DATA before them
    // still waits in the paused stream (the client is slow to open its window); 'end' follows the last DATA.
    let trailers: HeaderList | undefined;
    let dataDone = false;
    const endWithTrailers = () => {
      if (!trailers || !dataDone || this.#early) return;
      this.#ended = true;
      stream.finish(trailers);
    };
    upstream.on('error', noop); // 'close' follows, with the reset code
    upstream.on('response', (headers, flags) => {
      const endStream = (flags & Flag.END_STREAM) !== 0;
      if (endStream) this.#ended = true;
      stream.respond(fieldsOf(headers), endStream);
      const early = this.#early ?? [];
      this.#early = undefined;
      for (const chunk of early) this.#answer(chunk);
      endWithTrailers();
    });
    upstream.on('data', (chunk: Buffer) => {
      if (this.#early) this.#early.push(chunk);
      else this.#answer(chunk);
    });
    stream.onDrain = () => upstream.resume();
    upstream.on('trailers', (headers) => {
      trailers = fieldsOf(headers);
      endWithTrailers();
    });
    upstream.on('end', () => {
      dataDone = true;
      endWithTrailers(); // (no trailers: a trailers-only answer ended at 'response', or 'close' resets)
    });
    upstream.on('close', () => {
      if (this.#clientGone || this.#ended || stream.closed) return;
      // grpc-js reset the stream, or the in-memory connection ended under it
      stream.reset(upstream.rstCode && upstream.rstCode !== ErrorCode.NO_ERROR ? upstream.rstCode : ErrorCode.INTERNAL_ERROR);
    });
  }

  #answer(chunk: Buffer): void {
    if (!this.stream.write(chunk)) this.upstream.pause();
  }

  onData(chunk: Buffer): void {
    // grpc-js holds such a request until the call ends, decoded, and its answer in the hop until the client
    // reads it: the connection's memory counts that (measured: a 1 MB SayHello held ~5 MB until it ended).
    // A client-streamed message is handed on at once: counted as held until consumed, as any DATA.
    if (this.heldUntilEnd) this.stream.retain(chunk.length * FORWARDED_COPIES);
    this.upstream.write(chunk, () => this.stream.consumed(chunk.length));
  }

  onEnd(): void {
    this.upstream.end();
  }

  onReset(): void {
    this.#clientGone = true;
    // (not close(): node:http2 half-closes a stream before it resets it, and grpc-js would answer that)
    this.upstream.destroy();
  }
}

function outgoingHeaders(fields: HeaderList, peer: string): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of fields) {
    if (CONNECTION_SPECIFIC.has(name)) continue;
    // grpc-js keeps a deadline in a 32-bit timer: one of 24.8 days or more (grpc-go sends 720 h) would expire at once
    if (name === 'grpc-timeout' && parseGrpcTimeout(value) > MAX_TIMER_MS) {
      headers[name] = `${Math.floor(MAX_TIMER_MS / 1000)}S`;
      continue;
    }
    const existing = headers[name];
    if (existing === undefined) headers[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else headers[name] = [String(existing), value];
  }
  headers[PEER_HEADER] = peer;
  return headers;
}

/** node:http2's headers object back to fields: :status first, repeated names as they came. */
function fieldsOf(headers: IncomingHttpHeaders): HeaderList {
  const fields: HeaderList = [];
  const status = headers[':status'];
  if (status !== undefined) fields.push([':status', String(status)]);
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(':') || value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) fields.push([name, v]);
    else fields.push([name, String(value)]);
  }
  return fields;
}

function noop() {}

/**
 * Two connected in-memory streams whose writes complete at once, as a socket's do while the kernel has room.
 * Not node:stream's duplexPair: there a write completes only when the other side reads, and node:http2 stops
 * reading a connection while its own write is pending, so two sessions writing at once (requests one way,
 * answers the other, more than a window's worth) each waited for the other for ever. What this buffers is
 * bounded as a socket's is: by the HTTP/2 windows of both sessions.
 */
function memoryPair(): [Duplex, Duplex] {
  const side = (other: () => Duplex) =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        other().push(Buffer.from(chunk)); // a copy: a writer may reuse its chunk once the write has called back
        callback();
      },
      final(callback) {
        other().push(null);
        callback();
      },
      destroy(err, callback) {
        if (!other().destroyed) other().destroy();
        callback(err);
      },
    });
  const a: Duplex = side(() => b);
  const b: Duplex = side(() => a);
  return [a, b];
}
