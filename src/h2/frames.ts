// HTTP/2 frames (RFC 9113 §4, §6): the 9-byte frame header, the types, flags, settings and error codes the
// client's and the server's own HTTP/2 use, and a reader that cuts a byte stream into frames.

export const CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Flag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;

export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

const ERROR_NAMES = Object.keys(ErrorCode);

export function errorName(code: number): string {
  return ERROR_NAMES[code] ?? `0x${code.toString(16)}`;
}

/** The largest frame payload anyone must accept, and the most this client accepts (it never raises it). */
export const DEFAULT_MAX_FRAME_SIZE = 16_384;
export const MAX_WINDOW = 2 ** 31 - 1;

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/** A connection error (RFC 9113 §5.4.1): whoever detects it sends GOAWAY with `h2Code` and closes. */
export class H2ProtocolError extends Error {
  override name = 'H2ProtocolError';
  constructor(
    message: string,
    readonly h2Code: number = ErrorCode.PROTOCOL_ERROR,
  ) {
    super(message);
  }
}

export function encodeFrame(type: number, flags: number, streamId: number, payload?: Uint8Array): Buffer {
  const length = payload?.length ?? 0;
  const out = Buffer.allocUnsafe(9 + length);
  writeFrameHeader(out, 0, length, type, flags, streamId);
  if (payload) out.set(payload, 9);
  return out;
}

function writeFrameHeader(out: Buffer, at: number, length: number, type: number, flags: number, streamId: number): void {
  out.writeUIntBE(length, at, 3);
  out[at + 3] = type;
  out[at + 4] = flags;
  out.writeUInt32BE(streamId & MAX_WINDOW, at + 5);
}

/**
 * The frames a connection writes at its next flush, joined into one buffer then. A frame added by its header's
 * fields and its payload has its header written straight into that buffer: no object for the header, and no
 * copy of the payload but the one into the joined buffer (a server sends three such frames for every call).
 */
export class Outbox {
  /** whole frames, or a frame as three items: type << 8 | flags, the stream id, the payload */
  #items: Array<Buffer | number> = [];
  #bytes = 0;

  get empty(): boolean {
    return this.#items.length === 0;
  }

  add(frame: Buffer): void {
    this.#items.push(frame);
    this.#bytes += frame.length;
  }

  addFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    this.#items.push((type << 8) | flags, streamId, payload);
    this.#bytes += 9 + payload.length;
  }

  /** Everything added since the last take, in order, as one buffer; the outbox is empty after. */
  take(): Buffer {
    const items = this.#items;
    const bytes = this.#bytes;
    this.clear();
    if (items.length === 1) return items[0] as Buffer;
    const out = Buffer.allocUnsafe(bytes);
    let at = 0;
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      if (typeof item !== 'number') {
        at += item.copy(out, at);
        continue;
      }
      const streamId = items[++i] as number;
      const payload = items[++i] as Buffer;
      writeFrameHeader(out, at, payload.length, item >> 8, item & 0xff, streamId);
      at += 9 + payload.copy(out, at + 9);
    }
    return out;
  }

  clear(): void {
    this.#items = [];
    this.#bytes = 0;
  }
}

/** A header block as HEADERS, then CONTINUATION frames for what does not fit in one frame (RFC 9113 §6.10). */
export function encodeHeaderFrames(streamId: number, block: Buffer, maxFrameSize: number, endStream: boolean): Buffer[] {
  const frames: Buffer[] = [];
  for (let at = 0, first = true; first || at < block.length; first = false) {
    const part = block.subarray(at, at + maxFrameSize);
    at += part.length;
    const flags = (at >= block.length ? Flag.END_HEADERS : 0) | (first && endStream ? Flag.END_STREAM : 0);
    frames.push(encodeFrame(first ? FrameType.HEADERS : FrameType.CONTINUATION, flags, streamId, part));
  }
  return frames;
}

export function encodeSettings(settings: ReadonlyArray<readonly [id: number, value: number]>): Buffer {
  const payload = Buffer.allocUnsafe(settings.length * 6);
  settings.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, i * 6);
    payload.writeUInt32BE(value, i * 6 + 2);
  });
  return encodeFrame(FrameType.SETTINGS, 0, 0, payload);
}

export function encodeWindowUpdate(streamId: number, increment: number): Buffer {
  const payload = Buffer.allocUnsafe(4);
  payload.writeUInt32BE(increment, 0);
  return encodeFrame(FrameType.WINDOW_UPDATE, 0, streamId, payload);
}

export function encodeRstStream(streamId: number, code: number): Buffer {
  const payload = Buffer.allocUnsafe(4);
  payload.writeUInt32BE(code, 0);
  return encodeFrame(FrameType.RST_STREAM, 0, streamId, payload);
}

export function encodeGoaway(lastStreamId: number, code: number, debug: string): Buffer {
  const text = Buffer.from(debug, 'utf8');
  const payload = Buffer.allocUnsafe(8 + text.length);
  payload.writeUInt32BE(lastStreamId, 0);
  payload.writeUInt32BE(code, 4);
  text.copy(payload, 8);
  return encodeFrame(FrameType.GOAWAY, 0, 0, payload);
}

/** Cuts the bytes a peer sends into frames; throws H2ProtocolError on a frame larger than it accepts. */
export class FrameReader {
  #pending: Buffer = Buffer.alloc(0);

  constructor(readonly maxFrameSize = DEFAULT_MAX_FRAME_SIZE) {}

  /** The bytes not yet part of a whole frame (for telling what a peer that is not HTTP/2 sent). */
  get pending(): Buffer {
    return this.#pending;
  }

  /**
   * Hands `onFrame` each whole frame the bytes so far hold, in order, until it returns false (a handler that
   * ended the session); the rest waits for the next chunk. A loop, not a generator, and one view of the rest per
   * chunk, not one per frame: a server reads a frame for every call, and each object here is garbage at once.
   */
  read(chunk: Buffer, onFrame: (frame: Frame) => boolean | void): void {
    const buf = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    let at = 0;
    try {
      while (buf.length - at >= 9) {
        const length = buf.readUIntBE(at, 3);
        if (length > this.maxFrameSize) {
          throw new H2ProtocolError(`frame of ${length} bytes is larger than the ${this.maxFrameSize} allowed`, ErrorCode.FRAME_SIZE_ERROR);
        }
        if (buf.length - at < 9 + length) break;
        const frame: Frame = {
          type: buf[at + 3]!,
          flags: buf[at + 4]!,
          streamId: buf.readUInt32BE(at + 5) & MAX_WINDOW,
          payload: buf.subarray(at + 9, at + 9 + length),
        };
        at += 9 + length;
        if (onFrame(frame) === false) break;
      }
    } finally {
      // also when a handler throws or ends the session: what was handed out is gone from the rest
      this.#pending = at === 0 ? buf : buf.subarray(at);
    }
  }
}

/** A frame's payload without its padding (PADDED flag: one length byte first, that many bytes last). */
export function unpadded(frame: Frame): Buffer {
  if (!(frame.flags & Flag.PADDED)) return frame.payload;
  const pad = frame.payload[0];
  if (pad === undefined || pad >= frame.payload.length) throw new H2ProtocolError('padding longer than the frame');
  return frame.payload.subarray(1, frame.payload.length - pad);
}

export interface HeaderBlock {
  streamId: number;
  /** END_STREAM was on the HEADERS frame */
  endStream: boolean;
  /** the HPACK bytes, padding and priority removed */
  block: Buffer;
  /** the HEADERS frame's priority fields named its own stream as its dependency (a stream error, RFC 9113 §5.3.1) */
  selfDependent: boolean;
}

/** CONTINUATION frames one header block may have: a block as large as we take, in 16 KiB frames, and room. */
export const MAX_CONTINUATIONS = 80;

/**
 * Joins a header block sent as HEADERS and CONTINUATION frames (RFC 9113 §6.2, §6.10). A block longer than
 * `maxBlock` or in more than MAX_CONTINUATIONS frames is a flood, not headers: a connection error.
 */
export class HeaderBlockReader {
  #pending: { streamId: number; endStream: boolean; selfDependent: boolean; parts: Buffer[]; length: number; frames: number } | undefined;

  constructor(private readonly maxBlock: number) {}

  /** A block has begun and not ended: only its CONTINUATION frames may come next. */
  get open(): boolean {
    return this.#pending !== undefined;
  }

  /** The stream of the block that has begun, or 0. */
  get streamId(): number {
    return this.#pending?.streamId ?? 0;
  }

  /** A HEADERS frame: the whole block when it carries END_HEADERS, else undefined (CONTINUATION follows). */
  headers(frame: Frame): HeaderBlock | undefined {
    if (frame.streamId === 0) throw new H2ProtocolError('HEADERS on stream 0');
    let block = unpadded(frame);
    let selfDependent = false;
    if (frame.flags & Flag.PRIORITY) {
      if (block.length < 5) throw new H2ProtocolError('HEADERS shorter than its priority fields', ErrorCode.FRAME_SIZE_ERROR);
      selfDependent = (block.readUInt32BE(0) & MAX_WINDOW) === frame.streamId;
      block = block.subarray(5);
    }
    const endStream = (frame.flags & Flag.END_STREAM) !== 0;
    this.#check(block.length, 0);
    if (frame.flags & Flag.END_HEADERS) return { streamId: frame.streamId, endStream, block, selfDependent };
    this.#pending = { streamId: frame.streamId, endStream, selfDependent, parts: [Buffer.from(block)], length: block.length, frames: 0 };
    return undefined;
  }

  /** A CONTINUATION frame: the whole block once END_HEADERS arrives, else undefined. */
  continuation(frame: Frame): HeaderBlock | undefined {
    const pending = this.#pending;
    if (!pending || frame.streamId !== pending.streamId) throw new H2ProtocolError('CONTINUATION without a header block to continue');
    pending.length += frame.payload.length;
    this.#check(pending.length, ++pending.frames);
    if (frame.payload.length > 0) pending.parts.push(Buffer.from(frame.payload));
    if (!(frame.flags & Flag.END_HEADERS)) return undefined;
    this.#pending = undefined;
    const { streamId, endStream, selfDependent, parts } = pending;
    return { streamId, endStream, selfDependent, block: parts.length === 1 ? parts[0]! : Buffer.concat(parts) };
  }

  #check(length: number, continuations: number): void {
    if (length > this.maxBlock) throw new H2ProtocolError(`a header block longer than ${this.maxBlock} bytes`, ErrorCode.ENHANCE_YOUR_CALM);
    if (continuations > MAX_CONTINUATIONS) throw new H2ProtocolError(`a header block in more than ${MAX_CONTINUATIONS} CONTINUATION frames`, ErrorCode.ENHANCE_YOUR_CALM);
  }
}

/** A SETTINGS frame's parameters, each checked (RFC 9113 §6.5); undefined for an ACK. */
export function readSettings(frame: Frame): Array<[id: number, value: number]> | undefined {
  if (frame.streamId !== 0) throw new H2ProtocolError('SETTINGS on a stream');
  if (frame.flags & Flag.ACK) {
    if (frame.payload.length !== 0) throw new H2ProtocolError('SETTINGS ACK with a payload', ErrorCode.FRAME_SIZE_ERROR);
    return undefined;
  }
  if (frame.payload.length % 6 !== 0) throw new H2ProtocolError('SETTINGS length not a multiple of 6', ErrorCode.FRAME_SIZE_ERROR);
  const settings: Array<[number, number]> = [];
  for (let at = 0; at < frame.payload.length; at += 6) {
    const id = frame.payload.readUInt16BE(at);
    const value = frame.payload.readUInt32BE(at + 2);
    if (id === Setting.MAX_FRAME_SIZE && (value < DEFAULT_MAX_FRAME_SIZE || value > 16_777_215)) throw new H2ProtocolError(`invalid SETTINGS_MAX_FRAME_SIZE ${value}`);
    if (id === Setting.INITIAL_WINDOW_SIZE && value > MAX_WINDOW) throw new H2ProtocolError(`invalid SETTINGS_INITIAL_WINDOW_SIZE ${value}`, ErrorCode.FLOW_CONTROL_ERROR);
    if (id === Setting.ENABLE_PUSH && value > 1) throw new H2ProtocolError(`invalid SETTINGS_ENABLE_PUSH ${value}`);
    settings.push([id, value]);
  }
  return settings;
}

/** A PING frame's payload, checked (stream 0, 8 bytes); undefined for an ACK. */
export function pingToAnswer(frame: Frame): Buffer | undefined {
  if (frame.streamId !== 0) throw new H2ProtocolError('PING on a stream');
  if (frame.payload.length !== 8) throw new H2ProtocolError('PING length not 8', ErrorCode.FRAME_SIZE_ERROR);
  return frame.flags & Flag.ACK ? undefined : frame.payload;
}

/** A WINDOW_UPDATE frame's increment (its length checked; 0 is the caller's to judge, per stream or connection). */
export function windowIncrement(frame: Frame): number {
  if (frame.payload.length !== 4) throw new H2ProtocolError('WINDOW_UPDATE length not 4', ErrorCode.FRAME_SIZE_ERROR);
  return frame.payload.readUInt32BE(0) & MAX_WINDOW;
}
