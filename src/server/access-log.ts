// One JSON line per RPC, with the fields an Envoy access log shows (start time, method path, peer,
// authority, user agent, gRPC status, duration), so the two can be read side by side; a streaming RPC's line
// also has its message counts. Also counts the RPCs in flight that end by themselves (all but the streams
// that end only with their client: health Watch, reflection), which graceful shutdown and the tests read.
//
// This runs for every RPC, so it is kept lean (README, Performance, has the figures): instead of grpc-js'
// general-purpose ServerInterceptingCall (closures, queues and listener objects per call) each call is
// wrapped in one small delegating object, and lines are written in batches (lineBatcher) rather than one
// write(2) each.
import type { Metadata, ServerInterceptingCallInterface, ServerInterceptor } from '@grpc/grpc-js';
import { statusName } from '../status.ts';
import { callWrapper, onStatusSent, type InterceptingServerListener, type PartialStatusObject } from './grpc-js-internals.ts';
import { ATTEMPT_HEADER, attemptFromHeader } from './faults.ts';

/**
 * The client's address, as the front door saw it, on a call forwarded to grpc-js (forward.ts): the log reads
 * it (grpc-js sees only the in-memory connection) and removes it before the handler sees the metadata. A
 * client's own header of this name is dropped by the front door.
 */
export const PEER_HEADER = 'x-helloworld-forwarded-peer';

export interface AccessLogEntry {
  time: string;
  method: string;
  peer: string;
  authority: string;
  user_agent: string;
  /** the attempt Envoy counted (its x-envoy-attempt-count request header: 2 is the first retry); only when sent */
  attempt?: number;
  code: number;
  status: string;
  details?: string;
  /** streaming methods only: request messages read, reply messages sent */
  messages_received?: number;
  messages_sent?: number;
  duration_ms: number;
}

export interface CallTracker {
  interceptor: ServerInterceptor;
  inFlight(): number;
  /**
   * For a unary call answered outside grpc-js (fast-path.ts): counts it in flight and returns the record
   * whose finish() logs it, exactly as the interceptor does for the others.
   */
  begin(path: string, peer: string, authority: string, userAgent: string): CallRecord;
}

type Log = (entry: AccessLogEntry) => void;

interface Counter {
  inFlight: number;
}

/** One call from its start to its end: counted in flight (but endless streams) and logged once when it ends. */
export class CallRecord {
  readonly started = performance.now();
  private readonly startedAt = Date.now();
  private done = false;
  /** a streaming method's messages so far; undefined for a unary one, whose line has no counts */
  messages: { received: number; sent: number } | undefined;
  /** the request's x-envoy-attempt-count, when it had a valid one */
  attempt: number | undefined = undefined;

  constructor(
    readonly path: string,
    private readonly counter: Counter | null,
    private readonly log: Log | null,
    public peer: string,
    public authority: string,
    public userAgent: string,
  ) {
    if (counter) counter.inFlight++;
  }

  get finished(): boolean {
    return this.done;
  }

  /** Not counted, not logged: the call was handed to grpc-js, whose interceptor records it instead. */
  abandon(): void {
    if (this.done) return;
    this.done = true;
    if (this.counter) this.counter.inFlight--;
  }

  /**
   * Ended by the client going away. A client's own deadline timer fires at the same deadline (its
   * grpc-timeout), so its RST_STREAM usually arrives a moment before the server's timer would end the call:
   * a cancel that close to the deadline is the deadline.
   */
  cancel(msToDeadline: number): void {
    const expired = msToDeadline <= DEADLINE_TOLERANCE_MS;
    this.finish(expired ? 4 : 1, expired ? 'deadline exceeded' : 'cancelled by the client');
  }

  /** The first call logs; later ones (grpc-js reporting the same end twice) do nothing. */
  finish(code: number, details: string | undefined): void {
    if (this.done) return;
    this.done = true;
    if (this.counter) this.counter.inFlight--;
    if (!this.log) return;
    const { path: method, peer, authority, userAgent: user_agent, attempt } = this;
    // built in the documented field order: the attempt (only when Envoy counted one), details (only when not
    // OK), a stream's counts, then duration_ms
    const entry: Partial<AccessLogEntry> = { time: isoTime(this.startedAt), method, peer, authority, user_agent };
    if (attempt !== undefined) entry.attempt = attempt;
    entry.code = code;
    entry.status = statusName(code);
    if (code !== 0 && details) entry.details = details;
    if (this.messages) {
      entry.messages_received = this.messages.received;
      entry.messages_sent = this.messages.sent;
    }
    entry.duration_ms = Math.round((performance.now() - this.started) * 1000) / 1000;
    this.log(entry as AccessLogEntry);
  }
}

// Many calls start within the same millisecond under load: format each millisecond once.
let lastMs = -1;
let lastIso = '';
function isoTime(ms: number): string {
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

/** How close to its deadline a client's cancel is taken for the deadline itself (client and server clocks race). */
const DEADLINE_TOLERANCE_MS = 50;

/** The call as the handler sees it, passed through unchanged except that its end is recorded. */
class TrackedCall implements ServerInterceptingCallInterface {
  #metadataSeen = false;

  constructor(
    private readonly next: ServerInterceptingCallInterface,
    readonly record: CallRecord,
  ) {}

  start(listener: InterceptingServerListener): void {
    this.next.start(new TrackedListener(listener, this));
    // grpc-js' call hands the metadata over inside start(), unless the client had already reset the stream:
    // then it starts nothing and tells no listener (a cancel between the interceptor and start was never
    // counted out)
    if (!this.#metadataSeen) this.cancelled();
  }
  sendMetadata(metadata: Metadata): void {
    this.next.sendMetadata(metadata);
  }
  sendMessage(message: unknown, callback: () => void): void {
    if (this.record.messages) this.record.messages.sent++;
    this.next.sendMessage(message, callback);
  }
  sendStatus(status: PartialStatusObject): void {
    this.next.sendStatus(status); // recorded by the base call's sendStatus, see trackCalls
  }
  startRead(): void {
    this.next.startRead();
  }
  getPeer(): string {
    return this.next.getPeer();
  }
  getDeadline() {
    return this.next.getDeadline();
  }
  getHost(): string {
    return this.next.getHost();
  }
  getAuthContext() {
    return this.next.getAuthContext();
  }
  getConnectionInfo() {
    return this.next.getConnectionInfo();
  }
  getMetricsRecorder() {
    return this.next.getMetricsRecorder();
  }

  received(metadata: Metadata): void {
    this.#metadataSeen = true;
    const [peer] = metadata.get(PEER_HEADER);
    if (peer !== undefined) {
      this.record.peer = String(peer);
      metadata.remove(PEER_HEADER);
    }
    const [ua] = metadata.get('user-agent');
    if (ua !== undefined) this.record.userAgent = String(ua);
    const [attempt] = metadata.get(ATTEMPT_HEADER);
    this.record.attempt = attemptFromHeader(attempt === undefined ? undefined : String(attempt));
  }

  cancelled(): void {
    // grpc-js ends the call itself when its deadline passes or the client goes away
    const deadline = this.next.getDeadline();
    this.record.cancel((deadline instanceof Date ? deadline.getTime() : deadline) - Date.now());
  }
}

class TrackedListener implements InterceptingServerListener {
  constructor(
    private readonly next: InterceptingServerListener,
    private readonly call: TrackedCall,
  ) {}
  onReceiveMetadata(metadata: Metadata): void {
    this.call.received(metadata);
    this.next.onReceiveMetadata(metadata);
  }
  onReceiveMessage(message: unknown): void {
    const counts = this.call.record.messages;
    if (counts) counts.received++;
    this.next.onReceiveMessage(message);
  }
  onReceiveHalfClose(): void {
    this.next.onReceiveHalfClose();
  }
  onCancel(): void {
    this.call.cancelled();
    this.next.onCancel();
  }
}

/**
 * `log` null: count calls, write nothing. `endless`: the paths of streams that end only when their client ends
 * them (health Watch, reflection), not counted in flight (filled before the first call).
 */
export function trackCalls(log: Log | null, endless: ReadonlySet<string>): CallTracker {
  const counter: Counter = { inFlight: 0 };
  const interceptor = callWrapper((method, call) => {
    const record = new CallRecord(method.path, endless.has(method.path) ? null : counter, log, peerOf(call), call.getHost(), '');
    if (method.requestStream || method.responseStream) record.messages = { received: 0, sent: 0 };
    // the status grpc-js really sent, its own answers below the interceptors included
    onStatusSent(call, (status) => record.finish(status.code, status.details));
    return new TrackedCall(call, record);
  });
  return {
    interceptor,
    inFlight: () => counter.inFlight,
    begin: (path, peer, authority, userAgent) => new CallRecord(path, counter, log, peer, authority, userAgent),
  };
}

/** What grpc-js' getPeer() says, from the addresses it already read when the call started. */
function peerOf(call: ServerInterceptingCallInterface): string {
  const { remoteAddress, remotePort } = call.getConnectionInfo();
  return remoteAddress ? (remotePort ? `${remoteAddress}:${remotePort}` : remoteAddress) : 'unknown';
}

/** One JSON line per entry, the fields in the documented order. */
export function formatLine(entry: AccessLogEntry): string {
  return `${JSON.stringify(entry)}\n`;
}

export function jsonLineWriter(write: (line: string) => void): Log {
  return (entry) => write(formatLine(entry));
}

/**
 * Writes chunks of lines to `stream` unless more than `maxBacklog` bytes already wait in it: a reader that
 * fell behind (a slow log pipeline, or a flood of cancelled calls each logged) would otherwise make the
 * server hold the log in memory without bound. Those chunks are dropped and their lines counted; `report`
 * gets the count at the next write that goes out.
 */
export function boundedWriter(stream: { writableLength: number; write(chunk: string): unknown }, maxBacklog: number, report: (droppedLines: number) => void): (chunk: string) => void {
  let dropped = 0;
  return (chunk) => {
    if (stream.writableLength > maxBacklog) {
      for (let i = chunk.indexOf('\n'); i !== -1; i = chunk.indexOf('\n', i + 1)) dropped++;
      return;
    }
    if (dropped > 0) {
      report(dropped);
      dropped = 0;
    }
    stream.write(chunk);
  };
}

export interface LineBatcher {
  write(line: string): void;
  /** writes what is pending now (before exiting) */
  flush(): void;
}

/**
 * Collects the lines written during one turn of the event loop and writes them in one go, in chunks of
 * at most `maxBytes` whole lines: writes of at most PIPE_BUF (4096) bytes to a pipe are atomic, so the
 * lines of several worker processes sharing one stdout never interleave mid-line.
 */
export function lineBatcher(write: (chunk: string) => void, maxBytes = 4096): LineBatcher {
  let pending = '';
  let pendingBytes = 0;
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (pendingBytes === 0) return;
    const chunk = pending;
    pending = '';
    pendingBytes = 0;
    write(chunk);
  };
  return {
    write(line) {
      const bytes = Buffer.byteLength(line);
      if (pendingBytes + bytes > maxBytes) flush();
      pending += line;
      pendingBytes += bytes;
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    flush,
  };
}
