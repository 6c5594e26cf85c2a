// The GreeterStream service (proto/helloworld_stream.proto). SayHelloStream sends `count` replies
// "Hello <name> <i>", the first at once, then one every `interval_ms`; SayHelloBidi answers each request
// "Hello <name> <i>" (i: the request's number in the stream), in order. SayHello's faults (faults.ts),
// planned once per stream: the delay (-sleep, x-helloworld-delay-ms) comes before every reply, and a planned
// failure (-fail_rate, x-helloworld-fail-code) takes the place of reply k+1, k from x-helloworld-fail-after
// (default 0: no reply at all). The `hostname` metadata goes out in the response headers at once, so a
// client knows the replica before the first reply.
import { Metadata, status, type ServerDuplexStream, type ServerWritableStream, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { HelloReply, HelloRequest, HelloStreamRequest } from '../proto.ts';
import { afterDelay } from './delay.ts';
import { BadOverride, MAX_DELAY_MS, planStream, type FaultOptions, type StreamPlan } from './faults.ts';
import { headerOf, hostnameMetadata } from './greeter.ts';
import { helloText } from './greeting.ts';

/** SayHelloStream's count when the request leaves it 0 (unset) */
export const DEFAULT_REPLIES = 10;
export const MAX_REPLIES = 1_000_000;
/** bidi requests waiting for their replies before the stream stops reading (HTTP/2 flow control then holds the client) */
const MAX_WAITING = 16;

type Call = ServerWritableStream<HelloStreamRequest, HelloReply> | ServerDuplexStream<HelloRequest, HelloReply>;

/** A GreeterStream stream being served, by grpc-js or by the front door (stream-fast-path.ts). */
export interface OpenStream {
  /** Ends it with this status now (a shutdown's grace period is over). */
  end(code: number, details: string): void;
}

export interface GreeterStreams {
  implementation: UntypedServiceImplementation;
  /** the streams being served, on either path: the front door's join them here */
  tracked: Set<OpenStream>;
  /** streams being served */
  open(): number;
  /** Ends every stream still open with this status (a shutdown's grace period is over). */
  endAll(code: number, details: string): void;
}

/** One stream's replies: paced, counted, failing as planned, then its end. */
class Replies implements OpenStream {
  #sent = 0;
  #over = false;
  #cancelWait: (() => void) | undefined;

  constructor(
    private readonly call: Call,
    readonly plan: StreamPlan,
    private readonly open: Set<OpenStream>,
    hostname: Metadata,
  ) {
    open.add(this);
    // the deadline passed or the client went away: grpc-js has ended the call
    call.on('cancelled', () => this.#stop());
    call.sendMetadata(hostname);
  }

  /** Calls `fn` after `ms` (at once when it is not positive), unless the stream ends first. */
  after(ms: number, fn: () => void): void {
    if (this.#over) return;
    if (ms <= 0) return fn();
    this.#cancelWait = afterDelay(ms, () => {
      this.#cancelWait = undefined;
      if (!this.#over) fn();
    });
  }

  /** Sends the next reply, or the failure planned in its place; then `next` once the call takes more. */
  send(text: string, next: () => void): void {
    if (this.#over) return;
    const fail = this.plan.fail;
    if (fail && this.#sent === fail.afterReplies) return this.end(fail.code, fail.details);
    this.#sent++;
    if (this.call.write({ message: text })) next();
    else this.call.once('drain', () => !this.#over && next());
  }

  end(code: number = status.OK, details = 'OK'): void {
    if (this.#over) return;
    this.#stop();
    if (code === status.OK) this.call.end();
    else this.call.emit('error', { code, details });
  }

  #stop(): void {
    this.#over = true;
    this.#cancelWait?.();
    this.open.delete(this);
  }
}

export function greeterStreams(options: FaultOptions, hostname: string): GreeterStreams {
  const open = new Set<OpenStream>();

  const refuse = (call: Call, details: string): void => {
    call.emit('error', { code: status.INVALID_ARGUMENT, details, metadata: hostnameMetadata(hostname) });
  };

  /** The stream's replies, or undefined when a bad override header has it answered INVALID_ARGUMENT. */
  const start = (call: Call): Replies | undefined => {
    try {
      return new Replies(call, planStream(options, headerOf(call.metadata)), open, hostnameMetadata(hostname));
    } catch (err) {
      if (!(err instanceof BadOverride)) throw err;
      refuse(call, err.message);
      return undefined;
    }
  };

  const implementation: UntypedServiceImplementation = {
    SayHelloStream(call: ServerWritableStream<HelloStreamRequest, HelloReply>) {
      const { name, count, interval_ms: interval } = call.request;
      const invalid = invalidStreamRequest(count, interval);
      if (invalid) return refuse(call, invalid);
      const replies = start(call);
      if (!replies) return;
      const last = count || DEFAULT_REPLIES;
      const reply = (i: number): void =>
        replies.after((i === 1 ? 0 : interval) + replies.plan.delayMs, () =>
          replies.send(helloText(name, i), () => (i < last ? reply(i + 1) : replies.end())),
        );
      reply(1);
    },

    SayHelloBidi(call: ServerDuplexStream<HelloRequest, HelloReply>) {
      const replies = start(call);
      if (!replies) return;
      const waiting: Array<{ text: string; due: number }> = [];
      let received = 0;
      let replying = false;
      let halfClosed = false;
      const next = (): void => {
        replying = false;
        const head = waiting.shift();
        if (call.isPaused() && waiting.length < MAX_WAITING) call.resume();
        if (!head) {
          if (halfClosed) replies.end();
          return;
        }
        replying = true;
        replies.after(head.due - performance.now(), () => replies.send(head.text, next));
      };
      call.on('data', (request: HelloRequest) => {
        waiting.push({ text: helloText(request.name, ++received), due: performance.now() + replies.plan.delayMs });
        if (waiting.length >= MAX_WAITING) call.pause();
        if (!replying) next();
      });
      call.on('end', () => {
        halfClosed = true;
        if (!replying) next();
      });
    },
  };

  return {
    implementation,
    tracked: open,
    open: () => open.size,
    endAll(code, details) {
      for (const replies of [...open]) replies.end(code, details);
    },
  };
}

export function invalidStreamRequest(count: number, interval: number): string | undefined {
  if (count < 0 || count > MAX_REPLIES) return `count: want 0 (for ${DEFAULT_REPLIES}) to ${MAX_REPLIES}, got ${count}`;
  if (interval < 0 || interval > MAX_DELAY_MS) return `interval_ms: want 0 to ${MAX_DELAY_MS}, got ${interval}`;
  return undefined;
}
