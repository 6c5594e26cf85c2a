// helloworld.GreeterStream answered by the front door itself: through grpc-js (greeter-stream.ts, a hop away in
// memory: forward.ts) each message cost ~20 µs of server CPU; here SayHelloStream's replies are encoded by hand
// and written many to a DATA frame while nothing paces them, and SayHelloBidi's requests are read off the DATA
// as they come.
//
// What a client sees is what greeter-stream.ts sends through grpc-js (test/server-stream-fast-path.test.ts
// compares the two): the headers with the hostname at once, each reply's bytes, the delay before every reply
// (-sleep, x-helloworld-delay-ms), the planned failure in place of reply k+1 (-fail_rate, x-helloworld-fail-code,
// x-helloworld-fail-after), INVALID_ARGUMENT for a count, an interval or an override out of range, the
// deadline, the client going away, a shutdown's grace period (server.ts ends every stream still open), and the
// same access-log line. A SayHelloStream is answered here only when its request is one plain message
// (plain-call.ts), decided before anything is answered; anything else is handed to grpc-js. A SayHelloBidi's
// headers alone decide (BidiFastCall says why). Replies are written only as the client's windows and the
// socket let them out (H2Stream.write and onDrain), so a client that does not read holds the server to a
// window's worth.
import { SAY_HELLO_BIDI_PATH, SAY_HELLO_STREAM_PATH } from '../rpc-names.ts';
import { greeterStreamService, type HelloRequest, type HelloStreamRequest } from '../proto.ts';
import { Code } from '../status.ts';
import type { H2Stream } from '../h2/connection.ts';
import type { CallTracker } from './access-log.ts';
import { afterDelay } from './delay.ts';
import { OK_TRAILERS, okHeadersBlock, statusTrailers, trailersOnly } from './fast-path.ts';
import { BadOverride, planStream, type FaultOptions, type StreamPlan } from './faults.ts';
import { DEFAULT_REPLIES, invalidStreamRequest, type OpenStream } from './greeter-stream.ts';
import { helloText } from './greeting.ts';
import { LastRequest } from './last-request.ts';
import { FrontDoorCall, PlainCall, plainHeaders } from './plain-call.ts';

export { SAY_HELLO_BIDI_PATH, SAY_HELLO_STREAM_PATH };

const SAY_HELLO_STREAM = greeterStreamService.SayHelloStream!;
const SAY_HELLO_BIDI = greeterStreamService.SayHelloBidi!;
/** A larger request goes to grpc-js (whose limit is 4 MB). */
const MAX_REQUEST = 16 * 1024;
/** Replies gathered into one write (a DATA frame's worth) while nothing paces them. */
const BATCH_BYTES = 16 * 1024;
/** Replies written in one turn of the event loop before the others (other streams, the socket) get theirs. */
const TURN_BYTES = 256 * 1024;

/** A SayHelloStream this file answers: anything else is grpc-js' job. Asked only of what the front door did not refuse. */
export function qualifiesForStreamFastPath(headers: Readonly<Record<string, string>>, remoteEnded: boolean): boolean {
  return plainHeaders(SAY_HELLO_STREAM_PATH, headers, remoteEnded);
}


/**
 * Ends a stream with this status as greeter-stream.ts through grpc-js does: trailers after the headers, or
 * trailers only, with the `hostname` when the handler's refusal sends one (not grpc-js' own deadline).
 */
function endStream(stream: H2Stream, hostname: string | undefined, code: number, details: string): void {
  if (!stream.headersSent) return stream.respond(trailersOnly(code, details, hostname === undefined ? [] : [['hostname', hostname]]), true);
  stream.finish(code === Code.OK ? OK_TRAILERS : statusTrailers(code, details));
}

/** The stream's faults from its headers, or what a bad override header is answered (INVALID_ARGUMENT). */
function planOf(options: FaultOptions, stream: H2Stream): StreamPlan | string {
  try {
    return planStream(options, (header) => stream.headers[header]);
  } catch (err) {
    if (!(err instanceof BadOverride)) throw err;
    return err.message;
  }
}

/**
 * HelloReply { message: "Hello <name> <i>" }, framed, for any i: protobufjs' bytes of "Hello <name> " (as grpc-js'
 * serializer writes the name, whatever it holds) followed by i's ASCII digits.
 */
class Replies {
  readonly #prefix: Buffer;

  constructor(name: string) {
    const one = SAY_HELLO_STREAM.responseSerialize({ message: helloText(name, 1) });
    // field 1's tag, the length varint, the text; "1" is its last byte
    let at = 1;
    while (one[at]! & 0x80) at++;
    this.#prefix = one.subarray(at + 1, one.length - 1);
  }

  framed(i: number): Buffer {
    const digits = String(i);
    const length = this.#prefix.length + digits.length;
    let varintBytes = 1;
    for (let n = length; n >= 0x80; n = Math.floor(n / 128)) varintBytes++;
    const out = Buffer.allocUnsafe(5 + 1 + varintBytes + length);
    out[0] = 0;
    out.writeUInt32BE(1 + varintBytes + length, 1);
    out[5] = 0x0a;
    let at = 6;
    for (let n = length; ; n = Math.floor(n / 128)) {
      if (n < 0x80) {
        out[at++] = n;
        break;
      }
      out[at++] = (n % 128) | 0x80;
    }
    at += this.#prefix.copy(out, at);
    out.write(digits, at, 'latin1');
    return out;
  }
}

export class StreamFastCall extends PlainCall implements OpenStream {
  private request: HelloStreamRequest | undefined;
  private plan: StreamPlan = { delayMs: 0 };
  private replies: Replies | undefined;
  /** the reply to send next, and the last one */
  private next = 1;
  private last = 0;
  private interval = 0;
  /** the wait before reply `next` is over */
  private waited = false;
  private cancelWait: (() => void) | undefined;
  private readonly counts = { received: 0, sent: 0 };

  constructor(
    stream: H2Stream,
    private readonly options: FaultOptions,
    private readonly hostname: string,
    tracker: CallTracker,
    /** the streams being served (a shutdown ends those still open) */
    private readonly open: Set<OpenStream>,
    toGrpcJs: (read: Buffer[]) => void,
  ) {
    super(stream, SAY_HELLO_STREAM_PATH, tracker, MAX_REQUEST, toGrpcJs);
    this.record.messages = this.counts;
  }

  protected override read(message: Buffer): boolean {
    this.request = SAY_HELLO_STREAM.requestDeserialize(message) as HelloStreamRequest;
    this.counts.received = 1;
    return true;
  }

  protected override noMessage(): void {
    this.handOver([]); // grpc-js words that error
  }

  protected override stopWaiting(): void {
    this.cancelWait?.();
    this.stream.onDrain = undefined;
    this.open.delete(this);
  }

  protected override onDeadline(): void {
    this.end(Code.DEADLINE_EXCEEDED, 'Deadline exceeded');
  }

  private refuse(code: number, details: string): void {
    endStream(this.stream, this.hostname, code, details);
    this.finish(code, details);
  }

  protected override answer(): void {
    const { name, count, interval_ms: interval } = this.request!;
    this.request = undefined;
    const invalid = invalidStreamRequest(count, interval);
    if (invalid) return this.refuse(Code.INVALID_ARGUMENT, invalid);
    const plan = planOf(this.options, this.stream);
    if (typeof plan === 'string') return this.refuse(Code.INVALID_ARGUMENT, plan);
    this.plan = plan;
    this.last = count || DEFAULT_REPLIES;
    this.interval = interval;
    this.replies = new Replies(name);
    this.open.add(this);
    this.stream.respond(okHeadersBlock(this.hostname));
    this.run();
  }

  /** Ends the stream with this status after the replies written so far. */
  end(code: number, details: string): void {
    if (this.record.finished || this.stream.closed) return;
    endStream(this.stream, undefined, code, details);
    this.finish(code, details);
  }

  /** Writes the replies due, as many as the windows take; waits for a delay or for the client to read. */
  private readonly run = (): void => {
    this.cancelWait = undefined;
    const { stream, replies, plan } = this;
    if (this.record.finished || stream.closed || !replies) return;
    const batch: Buffer[] = [];
    let batched = 0;
    let turn = 0;
    /** writes the batch; false: wait for onDrain */
    const flush = (): boolean => {
      if (batch.length === 0) return true;
      const ok = stream.write(batch.length === 1 ? batch[0]! : Buffer.concat(batch, batched));
      turn += batched;
      batch.length = 0;
      batched = 0;
      return ok;
    };
    for (;;) {
      if (this.next > this.last) {
        flush();
        return this.end(Code.OK, 'OK');
      }
      const wait = (this.next === 1 ? 0 : this.interval) + plan.delayMs;
      if (wait > 0 && !this.waited) {
        // (as grpc-js' handler: the wait begins once the replies before have been taken)
        if (!flush()) return this.waitForDrain();
        this.waited = true;
        this.cancelWait = afterDelay(wait, this.run);
        return;
      }
      this.waited = false;
      const fail = plan.fail;
      if (fail && this.counts.sent === fail.afterReplies) {
        flush();
        return this.end(fail.code, fail.details);
      }
      const reply = replies.framed(this.next++);
      this.counts.sent++;
      batch.push(reply);
      batched += reply.length;
      if (batched < BATCH_BYTES) continue;
      if (!flush()) return this.waitForDrain();
      if (turn >= TURN_BYTES) {
        const immediate = setImmediate(this.run);
        this.cancelWait = () => clearImmediate(immediate);
        return;
      }
    }
  };

  private waitForDrain(): void {
    this.stream.onDrain = () => {
      this.stream.onDrain = undefined;
      this.run();
    };
  }
}

/** bidi requests waiting for their replies before the stream stops giving back window (as greeter-stream.ts pauses) */
const MAX_WAITING = 16;
/** bidi replies written in one turn of the event loop before the others (other streams, the socket) get theirs */
const TURN_REPLIES = 1024;
/** grpc-js' limit on a received message */
const MAX_RECEIVE = 4 * 1024 * 1024;

/** A SayHelloBidi this file answers: its headers alone decide, as grpc-js answers them at once. */
export function qualifiesForBidiFastPath(headers: Readonly<Record<string, string>>, remoteEnded: boolean): boolean {
  return plainHeaders(SAY_HELLO_BIDI_PATH, headers, remoteEnded);
}

/**
 * SayHelloBidi: the headers go out at once, as greeter-stream.ts' handler sends them, so nothing can be handed
 * to grpc-js after them; what grpc-js does with an unusual message is done here: a compressed flag is ignored
 * (the encoding is identity), a message protobuf rejects ends the stream INTERNAL, one over 4 MB
 * RESOURCE_EXHAUSTED, with grpc-js' words.
 */
export class BidiFastCall extends FrontDoorCall implements OpenStream {
  /** request bytes not read yet */
  private readonly reader = new MessageReader();
  /** requests waiting for their replies, in order: reply `index` of `replies` */
  private readonly waiting: Array<{ replies: Replies; index: number; due: number }> = [];
  /** the replies to the last request: a stream's requests usually repeat, and each is then neither decoded nor encoded again */
  private readonly replies = new LastRequest((message) => new Replies((SAY_HELLO_BIDI.requestDeserialize(message) as HelloRequest).name));
  private replying = false;
  private halfClosed = false;
  private plan: StreamPlan = { delayMs: 0 };
  private cancelWait: (() => void) | undefined;
  private readonly counts = { received: 0, sent: 0 };

  constructor(
    stream: H2Stream,
    options: FaultOptions,
    hostname: string,
    tracker: CallTracker,
    private readonly open: Set<OpenStream>,
  ) {
    super(stream, SAY_HELLO_BIDI_PATH, tracker);
    this.record.messages = this.counts;
    const plan = planOf(options, stream);
    if (typeof plan === 'string') {
      endStream(stream, hostname, Code.INVALID_ARGUMENT, plan);
      this.finish(Code.INVALID_ARGUMENT, plan);
      return;
    }
    this.plan = plan;
    open.add(this);
    stream.respond(okHeadersBlock(hostname));
  }

  onData(chunk: Buffer): void {
    if (this.record.finished) return this.stream.consumed(chunk.length);
    const kept = this.reader.buffered > 0;
    // (a copy when it is kept: a view would keep a whole socket read alive)
    this.reader.push(kept ? Buffer.from(chunk) : chunk);
    this.serve();
    if (!kept) this.reader.own();
  }

  /**
   * Reads the requests that have come, one at a time, each replied to as soon as the one before has been
   * (as greeter-stream.ts' handler gets them from grpc-js); while a reply waits for its delay or for the client
   * to read, the requests go on being read, until MAX_WAITING wait: the rest stay bytes, held against the
   * client's window and the connection's memory (a request read is an object, ten times its bytes).
   */
  private serve(): void {
    for (let sent = 0; !this.record.finished; ) {
      if (!this.replying && this.waiting.length > 0) {
        const head = this.waiting.shift()!;
        this.replying = true;
        const wait = head.due - performance.now();
        if (wait > 0) {
          this.cancelWait = afterDelay(wait, () => this.send(head) && this.replied());
          continue;
        }
        if (!this.send(head)) continue;
        this.replying = false;
        if (++sent >= TURN_REPLIES) {
          // the others (streams, the socket) get their turn
          this.replying = true;
          const immediate = setImmediate(() => this.replied());
          this.cancelWait = () => clearImmediate(immediate);
          return;
        }
        continue;
      }
      if (!this.readRequest()) break;
    }
    if (this.halfClosed && !this.replying && this.waiting.length === 0) this.end(Code.OK, 'OK');
  }

  private replied(): void {
    this.replying = false;
    this.serve();
  }

  /** Reads one request, when one is here whole and fewer than MAX_WAITING wait; false when none was read. */
  private readRequest(): boolean {
    if (this.waiting.length >= MAX_WAITING) return false;
    const length = this.reader.nextLength();
    if (length === undefined) return false;
    if (length > MAX_RECEIVE) {
      this.end(Code.RESOURCE_EXHAUSTED, `Received message larger than max (${length} vs ${MAX_RECEIVE})`);
      return false;
    }
    const message = this.reader.next(length);
    if (!message) return false;
    this.stream.consumed(5 + length);
    let replies: Replies;
    try {
      replies = this.replies.of(message);
    } catch {
      this.end(Code.INTERNAL, 'Error deserializing request');
      return false;
    }
    this.waiting.push({ replies, index: ++this.counts.received, due: performance.now() + this.plan.delayMs });
    return true;
  }

  onEnd(): void {
    this.halfClosed = true;
    if (!this.replying && !this.record.finished) this.serve();
  }

  protected override onDeadline(): void {
    this.end(Code.DEADLINE_EXCEEDED, 'Deadline exceeded');
  }

  protected override stopWaiting(): void {
    this.cancelWait?.();
    this.stream.onDrain = undefined;
    this.open.delete(this);
  }

  end(code: number, details: string): void {
    if (this.record.finished || this.stream.closed) return;
    endStream(this.stream, undefined, code, details);
    this.finish(code, details);
  }

  /** Writes a reply, or the failure planned in its place; true when the next may follow at once. */
  private send(reply: { replies: Replies; index: number }): boolean {
    this.cancelWait = undefined;
    if (this.record.finished || this.stream.closed) return false;
    const fail = this.plan.fail;
    if (fail && this.counts.sent === fail.afterReplies) {
      this.end(fail.code, fail.details);
      return false;
    }
    this.counts.sent++;
    if (this.stream.write(reply.replies.framed(reply.index))) return true;
    this.stream.onDrain = () => {
      this.stream.onDrain = undefined;
      this.replied();
    };
    return false;
  }
}

/** gRPC messages out of DATA as it comes: each handed out whole, without its prefix, once all of it is here. */
class MessageReader {
  #chunks: Buffer[] = [];
  buffered = 0;

  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** Copies the one chunk left (a view of a socket read) so that the read can go. */
  own(): void {
    if (this.#chunks.length === 1) this.#chunks[0] = Buffer.from(this.#chunks[0]!);
  }

  /** the next message's length, once its prefix is here */
  nextLength(): number | undefined {
    return this.buffered < 5 ? undefined : this.#front(5).readUInt32BE(1);
  }

  /** the next message (of `length`, from nextLength), once all of it is here */
  next(length: number): Buffer | undefined {
    if (this.buffered < 5 + length) return undefined;
    const message = this.#front(5 + length).subarray(5, 5 + length);
    let left = 5 + length;
    this.buffered -= left;
    while (left > 0) {
      const first = this.#chunks[0]!;
      if (first.length > left) {
        this.#chunks[0] = first.subarray(left);
        break;
      }
      this.#chunks.shift();
      left -= first.length;
    }
    return message;
  }

  /** The first `n` bytes in one piece: the chunks they span joined (and no more). */
  #front(n: number): Buffer {
    const first = this.#chunks[0]!;
    if (first.length >= n) return first;
    let spanned = 0;
    let count = 0;
    while (spanned < n) spanned += this.#chunks[count++]!.length;
    const joined = Buffer.concat(this.#chunks.slice(0, count), spanned);
    this.#chunks.splice(0, count, joined);
    return joined;
  }
}
