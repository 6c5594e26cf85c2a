// HPACK (RFC 7541) for our own HTTP/2: a full decoder for what peers send, and the simplest valid encoder for
// what we send. The encoder never adds to the peer's dynamic table, so it keeps no state; the one thing it owes
// a peer is a dynamic table size update when that peer's SETTINGS_HEADER_TABLE_SIZE is below the 4,096 it
// starts from (§4.2): the connection then starts its next header block with TABLE_SIZE_ZERO. Header names and
// values are octets, mapped to JS strings one octet per char (latin1) both ways, as node:http2 does.
import { badFieldName, badFieldValue, type HeaderList } from './fields.ts';
import { decodeHuffman } from './huffman.ts';

export type { HeaderList };

export class HpackError extends Error {
  override name = 'HpackError';
}

/**
 * A table entry: its field, which every decoded list that refers to the entry holds itself (a client that
 * indexes its headers costs no new array per header per request), and whether the name or the value is invalid
 * in HTTP/2 (checked once, when it came off the wire).
 */
interface Entry {
  readonly field: readonly [name: string, value: string];
  readonly nameBad: boolean;
  readonly valueBad: boolean;
}

/** RFC 7541 Appendix A; index i is entry i + 1. */
const STATIC_FIELDS: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

const STATIC_TABLE: readonly Entry[] = STATIC_FIELDS.map((field) => ({ field, nameBad: false, valueBad: false }));

const ENTRY_OVERHEAD = 32; // RFC 7541 4.1
const MAX_INTEGER = 0xffff_ffff;
const MAX_CONTINUATION_OCTETS = 5; // 35 bits: room for 2^32 - 1 above any prefix, and a bound on the loop
const EMPTY = Buffer.alloc(0);

export class HpackDecoder {
  readonly #maxTableSize: number;
  readonly #maxHeaderListSize: number;
  /** the dynamic table's current maximum size, lowered or raised by the encoder's size updates */
  #capacity: number;
  #size = 0;
  /** the dynamic table, oldest entry first (RFC index 62 is the last element) */
  readonly #entries: Entry[] = [];
  #invalid: string | undefined;
  #block: Buffer = EMPTY;
  #pos = 0;

  constructor(options: { maxTableSize?: number; maxHeaderListSize?: number } = {}) {
    this.#maxTableSize = limit('maxTableSize', options.maxTableSize ?? 4096);
    this.#maxHeaderListSize = limit('maxHeaderListSize', options.maxHeaderListSize ?? 65536);
    this.#capacity = this.#maxTableSize;
  }

  /** Decodes one complete header block (HEADERS + CONTINUATION payloads joined). Throws HpackError on any malformed input; the dynamic table state persists across blocks (one decoder per connection). */
  decode(block: Uint8Array): HeaderList {
    return this.#decode(block, true)!;
  }

  /**
   * Why the last block decoded is not a valid HTTP/2 field list (RFC 9113 §8.2.1: a name that is not lower-case
   * token characters, a value with NUL, CR or LF), or undefined. Each name and value is checked once, as it comes
   * off the wire, and a table entry keeps its verdict: a block that refers to one large entry many times (an
   * HPACK bomb) costs its references, not their decoded size.
   */
  get invalidField(): string | undefined {
    return this.#invalid;
  }

  /**
   * Decodes a block as decode() does, except that a header list larger than maxHeaderListSize is read to its
   * end (the dynamic table stays in step with the encoder's) and dropped: undefined. The connection goes on;
   * only the stream the block belongs to fails.
   */
  decodeWithinLimit(block: Uint8Array): HeaderList | undefined {
    return this.#decode(block, false);
  }

  #decode(block: Uint8Array, throwOnOversize: boolean): HeaderList | undefined {
    const bytes = Buffer.isBuffer(block) ? block : Buffer.from(block.buffer, block.byteOffset, block.byteLength);
    this.#block = bytes;
    this.#pos = 0;
    const headers: HeaderList = [];
    let listSize = 0;
    this.#invalid = undefined;
    try {
      while (this.#pos < bytes.length) {
        const at = this.#pos;
        const first = bytes[at]!;
        let entry: Entry;
        if (first & 0x80) {
          // 6.1 indexed header field
          entry = this.#entry(this.#integer(7), at);
        } else if (first & 0x40) {
          // 6.2.1 literal with incremental indexing
          entry = this.#literal(6, at);
          this.#insert(entry);
        } else if (first & 0x20) {
          // 6.3 dynamic table size update
          if (headers.length > 0) throw new HpackError(`dynamic table size update after a header field (octet ${at}); it may only start a block`);
          this.#resize(this.#integer(5), at);
          continue;
        } else {
          // 6.2.2 literal without indexing (0000), 6.2.3 never indexed (0001): the same to a decoder
          entry = this.#literal(4, at);
        }
        const { field, nameBad, valueBad } = entry;
        const [name, value] = field;
        if ((nameBad || valueBad) && this.#invalid === undefined) this.#invalid = `invalid ${nameBad ? 'header name' : 'value for header'} ${JSON.stringify(name.slice(0, 64))}`;
        listSize += name.length + value.length + ENTRY_OVERHEAD;
        if (listSize <= this.#maxHeaderListSize) headers.push(field);
        else if (throwOnOversize) throw new HpackError(`header list larger than ${this.#maxHeaderListSize} bytes`);
      }
    } finally {
      this.#block = EMPTY;
    }
    return listSize > this.#maxHeaderListSize ? undefined : headers;
  }

  #entry(index: number, at: number): Entry {
    if (index === 0) throw new HpackError(`header field index 0 (octet ${at}); indices start at 1`);
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]!;
    const fromNewest = index - STATIC_TABLE.length - 1;
    const entries = this.#entries;
    if (fromNewest < entries.length) return entries[entries.length - 1 - fromNewest]!;
    throw new HpackError(
      `header field index ${index} (octet ${at}) is past the end of the tables (${STATIC_TABLE.length} static + ${entries.length} dynamic entries)`,
    );
  }

  #literal(prefixBits: number, at: number): Entry {
    const nameIndex = this.#integer(prefixBits);
    let name: string;
    let nameBad: boolean;
    if (nameIndex === 0) {
      name = this.#string();
      nameBad = badFieldName(name);
    } else {
      const named = this.#entry(nameIndex, at);
      name = named.field[0];
      nameBad = named.nameBad;
    }
    const value = this.#string();
    return { field: [name, value], nameBad, valueBad: badFieldValue(value) };
  }

  /** RFC 7541 4.4: evict from the old end until the entry fits; one larger than the table empties it. */
  #insert(entry: Entry): void {
    const size = entry.field[0].length + entry.field[1].length + ENTRY_OVERHEAD;
    while (this.#entries.length > 0 && this.#size + size > this.#capacity) this.#evictOldest();
    if (size <= this.#capacity) {
      this.#entries.push(entry);
      this.#size += size;
    }
  }

  #resize(capacity: number, at: number): void {
    if (capacity > this.#maxTableSize) {
      throw new HpackError(`dynamic table size update to ${capacity} (octet ${at}) is above the ${this.#maxTableSize} allowed`);
    }
    this.#capacity = capacity;
    while (this.#size > capacity) this.#evictOldest();
  }

  #evictOldest(): void {
    const [name, value] = this.#entries.shift()!.field;
    this.#size -= name.length + value.length + ENTRY_OVERHEAD;
  }

  /** RFC 7541 5.1, from the current octet, whose top (8 - prefixBits) bits belong to the caller. */
  #integer(prefixBits: number): number {
    const block = this.#block;
    const at = this.#pos;
    if (at >= block.length) throw new HpackError(`header block ends where an integer should start (octet ${at})`);
    const max = (1 << prefixBits) - 1;
    let value = block[this.#pos++]! & max;
    if (value < max) return value;
    for (let octets = 1, scale = 1; ; octets++, scale *= 128) {
      if (this.#pos >= block.length) throw new HpackError(`header block ends inside the integer at octet ${at}`);
      const octet = block[this.#pos++]!;
      value += (octet & 0x7f) * scale;
      if ((octet & 0x80) === 0) break;
      if (octets === MAX_CONTINUATION_OCTETS) {
        throw new HpackError(`integer at octet ${at} has more than ${MAX_CONTINUATION_OCTETS} continuation octets`);
      }
    }
    if (value > MAX_INTEGER) throw new HpackError(`integer at octet ${at} is larger than 2^32-1`);
    return value;
  }

  /** RFC 7541 5.2 */
  #string(): string {
    const block = this.#block;
    const at = this.#pos;
    if (at >= block.length) throw new HpackError(`header block ends where a string literal should start (octet ${at})`);
    const huffman = (block[at]! & 0x80) !== 0;
    const length = this.#integer(7);
    const start = this.#pos;
    if (length > block.length - start) {
      throw new HpackError(`string literal at octet ${at} needs ${length} octets; the header block has ${block.length - start} left`);
    }
    const end = (this.#pos = start + length);
    if (!huffman) return block.toString('latin1', start, end);
    try {
      return decodeHuffman(block, start, end);
    } catch (error) {
      throw new HpackError(`${(error as Error).message} (string literal at octet ${at})`);
    }
  }
}

function limit(option: string, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > MAX_INTEGER) throw new RangeError(`HpackDecoder: ${option} must be an integer from 0 to 2^32-1, not ${value}`);
  return value;
}

let staticNameIndex: Map<string, number> | undefined;

function nameIndex(name: string): number {
  if (!staticNameIndex) {
    staticNameIndex = new Map();
    // the first index of each name: a literal needs only the name
    for (let i = STATIC_TABLE.length - 1; i >= 0; i--) staticNameIndex.set(STATIC_TABLE[i]!.field[0], i + 1);
  }
  return staticNameIndex.get(name) ?? 0;
}

const NOT_ONE_OCTET = /[^\x00-\xff]/;

/** A dynamic table size update to 0 (§6.3): our encoder's table is then empty for good, within any peer's setting. */
export const TABLE_SIZE_ZERO = Buffer.from([0x20]);

/** Stateless: every field as "literal without indexing", name as a static-table index when the static table has that name, else a literal name; no Huffman; never touches a dynamic table. */
export function encodeHeaders(headers: HeaderList): Buffer {
  let length = 0;
  for (const [name, value] of headers) {
    if (NOT_ONE_OCTET.test(name) || NOT_ONE_OCTET.test(value)) {
      throw new HpackError(`header ${JSON.stringify(name)} has a character above U+00FF, which is not one octet`);
    }
    const index = nameIndex(name);
    length += integerLength(index, 4) + (index === 0 ? stringLength(name) : 0) + stringLength(value);
  }
  const out = Buffer.allocUnsafe(length);
  let pos = 0;
  for (const [name, value] of headers) {
    const index = nameIndex(name);
    pos = writeInteger(out, pos, 0x00, 4, index); // 6.2.2: 0000 + name index (0: a literal name follows)
    if (index === 0) pos = writeString(out, pos, name);
    pos = writeString(out, pos, value);
  }
  return out;
}

function integerLength(value: number, prefixBits: number): number {
  let rest = value - ((1 << prefixBits) - 1);
  if (rest < 0) return 1;
  let length = 2;
  for (; rest >= 128; rest = Math.floor(rest / 128)) length++;
  return length;
}

function writeInteger(out: Buffer, pos: number, flags: number, prefixBits: number, value: number): number {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out[pos++] = flags | value;
    return pos;
  }
  out[pos++] = flags | max;
  let rest = value - max;
  while (rest >= 128) {
    out[pos++] = (rest % 128) | 0x80;
    rest = Math.floor(rest / 128);
  }
  out[pos++] = rest;
  return pos;
}

function stringLength(text: string): number {
  return integerLength(text.length, 7) + text.length;
}

function writeString(out: Buffer, pos: number, text: string): number {
  pos = writeInteger(out, pos, 0x00, 7, text.length); // H = 0: raw octets
  return pos + out.write(text, pos, 'latin1');
}
