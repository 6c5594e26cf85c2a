// The client's hand-written HPACK (src/h2/hpack.ts, huffman.ts) against RFC 7541's own examples, against
// hpack.js (an independent implementation, used only here) in both directions, against malformed input, and
// against nghttp2 itself: a node:http2 server spoken to over a raw socket.
import { once } from 'node:events';
import { constants, createServer, type IncomingHttpHeaders } from 'node:http2';
import { createRequire } from 'node:module';
import { connect, type AddressInfo, type Socket } from 'node:net';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { encodeHeaders, HpackDecoder, HpackError, type HeaderList } from '../src/h2/hpack.ts';
import { buildDecodeTree, DECODE_TREE, decodeHuffman, EOS, HUFFMAN_CODE_AND_BITS } from '../src/h2/huffman.ts';

// hpack.js has no types: the little of it used here.
interface HpackJsHeader {
  name: string;
  value: string;
  huffman?: boolean;
  incremental?: boolean;
  neverIndex?: boolean;
}
interface HpackJs {
  // NB the table option is `maxSize`: hpack.js's README says `size`, which leaves the table unbounded
  compressor: { create(options: { table: { maxSize: number } }): HpackJsCompressor };
  decompressor: { create(options: { table: { maxSize: number } }): HpackJsDecompressor };
  encoder: { create(): { encodeBits(bits: number, length: number): void; encodeInt(value: number): void; render(): Buffer[] } };
  huffman: { encode: Array<[bits: number, code: number]> };
  'static-table': { table: Array<{ name: string; value: string }> };
}
interface HpackJsCompressor {
  write(headers: HpackJsHeader[]): void;
  read(): Buffer | null;
  reset(): void;
  _table: { updateSize(size: number): void };
}
interface HpackJsDecompressor {
  write(block: Buffer): void;
  execute(): void;
  read(): { name: string; value: string } | null;
}
const hpack = createRequire(import.meta.url)('hpack.js') as HpackJs;

const hex = (dump: string): Buffer => Buffer.from(dump.replace(/\s+/g, ''), 'hex');
const entrySize = (entries: HeaderList): number => entries.reduce((sum, [name, value]) => sum + name.length + value.length + 32, 0);

/** An HPACK integer (RFC 7541 5.1), written here independently of the code under test. */
function integer(flags: number, prefixBits: number, value: number): number[] {
  const max = 2 ** prefixBits - 1;
  if (value < max) return [flags | value];
  const out = [flags | max];
  for (value -= max; value >= 128; value = Math.floor(value / 128)) out.push((value % 128) + 128);
  out.push(value);
  return out;
}

/** The decoder's dynamic table, newest first, read through the public API: an indexed field (6.1) changes no state. */
function dynamicTable(decoder: HpackDecoder): HeaderList {
  const entries: HeaderList = [];
  for (let index = 62; ; index++) {
    try {
      entries.push(...decoder.decode(Buffer.from(integer(0x80, 7, index))));
    } catch (error) {
      if (error instanceof HpackError && error.message.includes('past the end of the tables')) return entries;
      throw error;
    }
  }
}

/** Decodes and returns the HpackError, checking it is one, with a one-line message. */
function decodeError(block: Uint8Array | number[], decoder = new HpackDecoder()): HpackError {
  try {
    decoder.decode(Uint8Array.from(block));
  } catch (error) {
    expect(error).toBeInstanceOf(HpackError);
    const hpackError = error as HpackError;
    expect(hpackError.name).toBe('HpackError');
    expect(hpackError.message).toMatch(/^[^\n]{10,200}$/);
    return hpackError;
  }
  throw new Error(`decoded without an error: ${Buffer.from(block).toString('hex')}`);
}

/** Decodes, or fails the same way as decodeError when it throws: only HpackError, one line. */
function decodeOrHpackError(decoder: HpackDecoder, block: Uint8Array): HeaderList | HpackError {
  try {
    const headers = decoder.decode(block);
    for (const field of headers) expect(field).toEqual([expect.any(String), expect.any(String)]);
    return headers;
  } catch (error) {
    if (!(error instanceof HpackError)) throw error;
    expect(error.message).toMatch(/^[^\n]{10,200}$/);
    return error;
  }
}

const bitsOf = (symbol: number): string =>
  HUFFMAN_CODE_AND_BITS[2 * symbol]!.toString(2).padStart(HUFFMAN_CODE_AND_BITS[2 * symbol + 1]!, '0');

/** Huffman-codes latin1 `text` and appends `padding` (a string of 0/1) as given, to make bad endings too. */
function huffman(text: string, padding?: string): Buffer {
  let bits = [...text].map((char) => bitsOf(char.charCodeAt(0))).join('');
  bits += padding ?? '1'.repeat((8 - (bits.length % 8)) % 8);
  if (bits.length % 8 !== 0) throw new Error('padding does not end the string on an octet');
  return Buffer.from((bits.match(/.{8}/g) ?? []).map((byte) => parseInt(byte, 2)));
}

/** A literal without indexing (6.2.2) of static name `:path` (index 4) with a Huffman-coded value. */
const pathWithHuffmanValue = (coded: Buffer): Buffer => Buffer.from([0x04, ...integer(0x80, 7, coded.length), ...coded]);

interface Example {
  id: string;
  dump: string;
  headers: HeaderList;
  /** the dynamic table after it, newest first, and its size, as the RFC prints them */
  table: HeaderList;
  size: number;
}

// RFC 7541 Appendix C, hex dumps and tables as printed there.
const requests = (dumps: [string, string, string], c: 'C.3' | 'C.4'): Example[] => [
  {
    id: `${c}.1`,
    dump: dumps[0],
    headers: [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']],
    table: [[':authority', 'www.example.com']],
    size: 57,
  },
  {
    id: `${c}.2`,
    dump: dumps[1],
    headers: [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'], ['cache-control', 'no-cache']],
    table: [['cache-control', 'no-cache'], [':authority', 'www.example.com']],
    size: 110,
  },
  {
    id: `${c}.3`,
    dump: dumps[2],
    headers: [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value']],
    table: [['custom-key', 'custom-value'], ['cache-control', 'no-cache'], [':authority', 'www.example.com']],
    size: 164,
  },
];
const date1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
const date2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
const location = 'https://www.example.com';
const cookie = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
const responses = (dumps: [string, string, string], c: 'C.5' | 'C.6'): Example[] => [
  {
    id: `${c}.1`,
    dump: dumps[0],
    headers: [[':status', '302'], ['cache-control', 'private'], ['date', date1], ['location', location]],
    table: [['location', location], ['date', date1], ['cache-control', 'private'], [':status', '302']],
    size: 222,
  },
  {
    id: `${c}.2`,
    dump: dumps[1],
    headers: [[':status', '307'], ['cache-control', 'private'], ['date', date1], ['location', location]],
    table: [[':status', '307'], ['location', location], ['date', date1], ['cache-control', 'private']],
    size: 222,
  },
  {
    id: `${c}.3`,
    dump: dumps[2],
    headers: [[':status', '200'], ['cache-control', 'private'], ['date', date2], ['location', location], ['content-encoding', 'gzip'], ['set-cookie', cookie]],
    table: [['set-cookie', cookie], ['content-encoding', 'gzip'], ['date', date2]],
    size: 215,
  },
];
const sequences: Array<{ name: string; maxTableSize: number; examples: Example[] }> = [
  {
    name: 'C.3 requests without Huffman coding',
    maxTableSize: 4096,
    examples: requests(
      [
        '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
        '8286 84be 5808 6e6f 2d63 6163 6865',
        '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
      ],
      'C.3',
    ),
  },
  {
    name: 'C.4 requests with Huffman coding',
    maxTableSize: 4096,
    examples: requests(
      [
        '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
        '8286 84be 5886 a8eb 1064 9cbf',
        '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
      ],
      'C.4',
    ),
  },
  {
    name: 'C.5 responses without Huffman coding, 256-octet table (evictions)',
    maxTableSize: 256,
    examples: responses(
      [
        '4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133' +
          '2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
        '4803 3330 37c1 c0bf',
        '88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d' +
          '54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049' +
          '5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31',
      ],
      'C.5',
    ),
  },
  {
    name: 'C.6 responses with Huffman coding, 256-octet table (evictions)',
    maxTableSize: 256,
    examples: responses(
      [
        '4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6' +
          '2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3',
        '4883 640e ffc1 c0bf',
        '88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab' +
          '77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f' +
          '9587 3160 65c0 03ed 4ee5 b106 3d50 07',
      ],
      'C.6',
    ),
  },
];

describe('RFC 7541 Appendix C', () => {
  test.each<[string, string, HeaderList, HeaderList, number]>([
    ['C.2.1 literal with indexing', '400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572', [['custom-key', 'custom-header']], [['custom-key', 'custom-header']], 55],
    ['C.2.2 literal without indexing', '040c 2f73 616d 706c 652f 7061 7468', [[':path', '/sample/path']], [], 0],
    ['C.2.3 literal never indexed', '1008 7061 7373 776f 7264 0673 6563 7265 74', [['password', 'secret']], [], 0],
    ['C.2.4 indexed', '82', [[':method', 'GET']], [], 0],
  ])('%s', (_, dump, headers, table, size) => {
    const decoder = new HpackDecoder();
    expect(decoder.decode(hex(dump))).toEqual(headers);
    expect(dynamicTable(decoder)).toEqual(table);
    expect(entrySize(table)).toBe(size);
  });

  test.each(sequences.map((s) => [s.name, s] as const))('%s: three blocks on one connection', (_, { maxTableSize, examples }) => {
    const decoder = new HpackDecoder({ maxTableSize });
    for (const { id, dump, headers, table, size } of examples) {
      expect(decoder.decode(hex(dump)), id).toEqual(headers);
      expect(dynamicTable(decoder), id).toEqual(table);
      expect(entrySize(table), id).toBe(size);
    }
  });

  test('C.1 integers: 10 and 1337 with a 5-bit prefix (read as table size updates)', () => {
    expect(new HpackDecoder().decode(hex('2a 82'))).toEqual([[':method', 'GET']]); // 001 01010: update to 10
    expect(new HpackDecoder({ maxTableSize: 1337 }).decode(hex('3f 9a 0a 82'))).toEqual([[':method', 'GET']]);
    expect(decodeError(hex('3f 9a 0a'), new HpackDecoder({ maxTableSize: 1336 })).message).toContain('size update to 1337');
  });

  test('the static table (Appendix A): all 61 entries, as hpack.js has them', () => {
    const decoder = new HpackDecoder();
    const expected = hpack['static-table'].table.map(({ name, value }) => [name, value]);
    expect(expected).toHaveLength(61);
    expect(decoder.decode(Buffer.from(expected.map((_, i) => 0x80 | (i + 1))))).toEqual(expected);
    expect(dynamicTable(decoder)).toEqual([]);
  });
});

describe('Huffman code (RFC 7541 Appendix B)', () => {
  const symbols = Array.from({ length: EOS + 1 }, (_, symbol) => ({ symbol, code: HUFFMAN_CODE_AND_BITS[2 * symbol]!, bits: HUFFMAN_CODE_AND_BITS[2 * symbol + 1]! }));

  test('257 symbols, EOS = 0x3fffffff in 30 bits, every code within its length', () => {
    expect(HUFFMAN_CODE_AND_BITS).toHaveLength(2 * 257);
    expect(symbols[EOS]).toEqual({ symbol: 256, code: 0x3fffffff, bits: 30 });
    for (const { code, bits } of symbols) {
      expect(bits).toBeGreaterThanOrEqual(5);
      expect(bits).toBeLessThanOrEqual(30);
      expect(code).toBeLessThan(2 ** bits);
    }
  });

  test('prefix-free, and complete: the Kraft sum is exactly 1', () => {
    const codes = symbols.map(({ symbol }) => bitsOf(symbol)).sort();
    for (let i = 1; i < codes.length; i++) expect(codes[i]!.startsWith(codes[i - 1]!), `${codes[i - 1]} is a prefix of ${codes[i]}`).toBe(false);
    expect(symbols.reduce((sum, { bits }) => sum + 2 ** (30 - bits), 0)).toBe(2 ** 30);
  });

  test('the decode tree written out in huffman.ts is the one the table builds', () => {
    expect(Array.from(DECODE_TREE)).toEqual(Array.from(buildDecodeTree()));
  });

  test("the same codes as hpack.js's copy of the table", () => {
    expect(hpack.huffman.encode).toHaveLength(257);
    expect(symbols.map(({ code, bits }) => [bits, code])).toEqual(hpack.huffman.encode);
  });

  test('every octet decodes, alone and all together', () => {
    for (let octet = 0; octet < 256; octet++) {
      const coded = huffman(String.fromCharCode(octet));
      expect(decodeHuffman(coded, 0, coded.length)).toBe(String.fromCharCode(octet));
    }
    const all = String.fromCharCode(...Array.from({ length: 256 }, (_, i) => 255 - i));
    const coded = Buffer.concat([Buffer.from([9, 9]), huffman(all), Buffer.from([9])]);
    expect(decodeHuffman(coded, 2, coded.length - 1)).toBe(all);
    expect(decodeHuffman(coded, 2, 2)).toBe('');
  });
});

describe('encodeHeaders', () => {
  test('literal without indexing, static name index when there is one (C.2.2 byte for byte), else a literal name', () => {
    expect(encodeHeaders([[':path', '/sample/path']])).toEqual(hex('040c 2f73 616d 706c 652f 7061 7468'));
    // C.2.3's field, but "without indexing" (0000) rather than "never indexed" (0001)
    expect(encodeHeaders([['password', 'secret']])).toEqual(hex('0008 7061 7373 776f 7264 0673 6563 7265 74'));
    // :method is index 2 (its first entry); www-authenticate is 61 = 15 + 46, past the 4-bit prefix
    expect(encodeHeaders([[':method', 'POST'], ['www-authenticate', '']])).toEqual(hex('02 04 504f5354 0f2e 00'));
    expect(encodeHeaders([])).toEqual(Buffer.alloc(0));
  });

  test('string lengths past the 7-bit prefix; latin1 octets', () => {
    for (const [length, prefix] of [[126, '7e'], [127, '7f00'], [128, '7f01'], [300, '7fad01'], [16_511, '7f8080 01']] as const) {
      const value = 'v'.repeat(length);
      expect(encodeHeaders([['x', value]])).toEqual(Buffer.concat([hex(`00 01 78 ${prefix}`), Buffer.from(value)]));
    }
    expect(encodeHeaders([['x-bytes', '\u0000\u007f\u0080\u00e9\u00ff']]).subarray(-6)).toEqual(hex('05 007f80e9ff'));
  });

  test('a character that is not one octet is an HpackError, not a silently wrong octet', () => {
    expect(() => encodeHeaders([['x-name', 'caf\u0113']])).toThrow(HpackError);
    expect(() => encodeHeaders([['x-\u2603', 'v']])).toThrow(/above U\+00FF/);
  });
});

// fast-check models of header lists: lower-case token names (and static-table names, so name indices occur),
// latin1 values of any octet, empty, long, and repeated.
const tokenChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789!#$%&\'*+-.^_`|~');
const latin1Char = fc.integer({ min: 0, max: 255 }).map((code) => String.fromCharCode(code));
const staticNames = [...new Set(hpack['static-table'].table.map(({ name }) => name))];
const headerName = fc.oneof(
  { arbitrary: fc.string({ unit: tokenChar, minLength: 1, maxLength: 16 }), weight: 4 },
  { arbitrary: fc.constantFrom(...staticNames), weight: 2 },
  { arbitrary: fc.constantFrom('x-a', 'x-b'), weight: 2 },
);
const headerValue = fc.oneof(
  { arbitrary: fc.string({ unit: latin1Char, maxLength: 24 }), weight: 6 },
  { arbitrary: fc.constantFrom('', 'GET', '200', 'gzip, deflate', 'same'), weight: 2 },
  { arbitrary: fc.string({ unit: latin1Char, minLength: 120, maxLength: 700 }), weight: 1 },
);
const headerList = fc.array(fc.tuple(headerName, headerValue), { maxLength: 12 });
// hpack.js's compressor looks names and values up in plain objects: a 'constructor' or '__proto__' (which
// fast-check does draw) becomes a bogus index or a crash there
const hpackJsCanCompress = (...texts: string[]): boolean => texts.every((text) => !(text in Object.prototype));

describe('against hpack.js', () => {
  test('what its compressor writes (Huffman on and off, all literal kinds, table size changes, several blocks per connection) decodes to the same list', () => {
    const header = fc
      .record({ name: headerName, value: headerValue, huffman: fc.boolean(), incremental: fc.boolean(), neverIndex: fc.boolean() })
      .filter(({ name, value }) => hpackJsCanCompress(name, value));
    const block = fc.record({
      headers: fc.oneof(fc.array(header, { maxLength: 12 }), fc.constant('repeat the previous block' as const)),
      resize: fc.option(fc.nat(), { freq: 3 }),
      reset: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
    });
    fc.assert(
      fc.property(fc.constantFrom(4096, 4096, 256, 100, 0), fc.array(block, { minLength: 1, maxLength: 6 }), (maxSize, blocks) => {
        const compressor = hpack.compressor.create({ table: { maxSize } });
        const decoder = new HpackDecoder({ maxTableSize: maxSize, maxHeaderListSize: 2 ** 32 - 1 });
        let previous: HpackJsHeader[] = [];
        for (const { headers: drawn, resize, reset } of blocks) {
          const headers = drawn === 'repeat the previous block' ? previous : drawn;
          previous = headers;
          const parts: Buffer[] = [];
          if (reset) compressor.reset(); // two size updates: 0, then back
          if (resize !== null) {
            // compressor.updateTableSize() only writes an update that returns to the maximum: write it here
            const size = resize % (maxSize + 1);
            const update = hpack.encoder.create();
            update.encodeBits(1, 3); // 001: dynamic table size update
            update.encodeInt(size);
            parts.push(compressor.read() ?? Buffer.alloc(0), ...update.render());
            compressor._table.updateSize(size);
          }
          compressor.write(headers);
          parts.push(compressor.read() ?? Buffer.alloc(0));
          expect(decoder.decode(Buffer.concat(parts))).toEqual(headers.map(({ name, value }) => [name, value]));
        }
      }),
      { numRuns: 150 },
    );
  });

  test('what encodeHeaders writes, its decompressor reads back; so does ours, and the dynamic table stays empty', () => {
    fc.assert(
      fc.property(headerList, (headers) => {
        const block = encodeHeaders(headers);
        const decompressor = hpack.decompressor.create({ table: { maxSize: 4096 } });
        if (block.length > 0) decompressor.write(block);
        decompressor.execute();
        const theirs: HeaderList = [];
        for (let field = decompressor.read(); field !== null; field = decompressor.read()) theirs.push([field.name, field.value]);
        expect(theirs).toEqual(headers);
        const decoder = new HpackDecoder({ maxHeaderListSize: 2 ** 32 - 1 });
        expect(decoder.decode(block)).toEqual(headers);
        expect(dynamicTable(decoder)).toEqual([]);
      }),
      { numRuns: 100 },
    );
  });
});

describe('malformed input: an HpackError that says what is wrong', () => {
  test.each<[string, number[], RegExp]>([
    ['indexed field with index 0', [0x80], /index 0 /],
    ['index past the static table, dynamic table empty', [0xbe], /index 62 .*past the end of the tables \(61 static \+ 0 dynamic/],
    ['literal whose name index is past the tables', [0x7e, 0x00], /index 62 .*past the end/],
    ['index past the tables, multi-octet', [0xff, 0x80, 0x80, 0x80, 0x80, 0x00], /index 127 /], // zero-padded integer: allowed, 5 continuation octets
    ['integer above 2^32-1', [0xff, 0xff, 0xff, 0xff, 0xff, 0x0f], /larger than 2\^32-1/],
    ['integer with 6 continuation octets', [0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], /more than 5 continuation octets/],
    ['block ends inside an integer', [0xff], /ends inside the integer at octet 0/],
    ['block ends inside a string length', [0x82, 0x00, 0x7f, 0x80], /ends inside the integer at octet 2/],
    ['block ends before the name', [0x40], /ends where a string literal should start/],
    ['block ends before the value', [0x41], /ends where a string literal should start \(octet 1\)/],
    ['string length past the end of the block', [0x00, 0x05, 0x61], /string literal at octet 1 needs 5 octets; the header block has 1 left/],
    ['Huffman string length past the end', [0x04, 0x83, 0x1f], /string literal at octet 1 needs 3 octets; the header block has 1 left/],
    ['size update above maxTableSize (4097 > 4096)', [0x3f, 0xe2, 0x1f], /size update to 4097 .*above the 4096 allowed/],
    ['size update after a header field', [0x82, 0x20], /size update after a header field \(octet 1\)/],
    ['EOS inside a Huffman string', [...pathWithHuffmanValue(huffman('a', '1'.repeat(30) + '11111'))], /contains the EOS symbol .*octet 1/],
    ['Huffman padding of 8 bits', [...pathWithHuffmanValue(huffman('', '11111111'))], /8 bits of padding/],
    ['Huffman padding of 11 bits', [...pathWithHuffmanValue(huffman('a', '11111111111'))], /11 bits of padding/],
    ['Huffman padding of zeros', [...pathWithHuffmanValue(huffman('a', '000'))], /padding that is not all ones/],
    ['Huffman padding with a zero last', [...pathWithHuffmanValue(huffman('a', '110'))], /padding that is not all ones/],
  ])('%s', (_, block, message) => {
    expect(decodeError(block).message).toMatch(message);
  });

  test('the valid neighbours of those decode', () => {
    const decoder = new HpackDecoder();
    expect(decoder.decode(Buffer.alloc(0))).toEqual([]);
    expect(decoder.decode(pathWithHuffmanValue(huffman('a', '111')))).toEqual([[':path', 'a']]);
    expect(decoder.decode(pathWithHuffmanValue(huffman('', '')))).toEqual([[':path', '']]);
    expect(decoder.decode(hex('3fe11f 20 3fe11f 82'))).toEqual([[':method', 'GET']]); // several size updates at the start
    expect(decoder.decode(hex('20 82'))).toEqual([[':method', 'GET']]); // at the start of a later block
    const max = new HpackDecoder({ maxTableSize: 2 ** 32 - 1 });
    expect(max.decode(Buffer.from(integer(0x20, 5, 2 ** 32 - 1)))).toEqual([]);
    expect(decodeError(integer(0x20, 5, 2 ** 32), max).message).toMatch(/larger than 2\^32-1/);
  });

  test('header list size: name + value + 32 per field, up to maxHeaderListSize and not one byte more', () => {
    const block = hex('00 01 61 01 62'.repeat(3)); // a: b, 34 bytes, three times
    expect(new HpackDecoder({ maxHeaderListSize: 102 }).decode(block)).toHaveLength(3);
    expect(decodeError(block, new HpackDecoder({ maxHeaderListSize: 101 })).message).toBe('header list larger than 101 bytes');
    expect(decodeError(hex('82'.repeat(1561)), new HpackDecoder()).message).toBe('header list larger than 65536 bytes'); // 42 each
  });

  test('random octets, alone and as several blocks on one connection: a list or an HpackError, never anything else', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 80 }), { minLength: 1, maxLength: 4 }), fc.constantFrom(4096, 64, 0), (blocks, maxTableSize) => {
        const decoder = new HpackDecoder({ maxTableSize, maxHeaderListSize: 1000 });
        for (const block of blocks) decodeOrHpackError(decoder, block);
      }),
      { numRuns: 200 },
    );
  });

  test('valid blocks cut short or with octets changed: a list or an HpackError', () => {
    const edit = fc.record({ at: fc.nat(), octet: fc.integer({ min: 0, max: 255 }), cut: fc.boolean() });
    fc.assert(
      fc.property(headerList.filter((headers) => headers.every(([name, value]) => hpackJsCanCompress(name, value))), fc.array(edit, { minLength: 1, maxLength: 3 }), fc.boolean(), (headers, edits, useHuffman) => {
        const compressor = hpack.compressor.create({ table: { maxSize: 4096 } });
        compressor.write(headers.map(([name, value]) => ({ name, value, huffman: useHuffman })));
        const block = Buffer.from(compressor.read() ?? Buffer.alloc(0));
        let broken: Buffer = block;
        for (const { at, octet, cut } of edits) {
          if (broken.length === 0) break;
          broken = cut ? broken.subarray(0, at % broken.length) : Buffer.from(broken.map((b, i) => (i === at % broken.length ? octet : b)));
        }
        decodeOrHpackError(new HpackDecoder(), broken);
      }),
      { numRuns: 100 },
    );
  });

  test('1 MB blocks end quickly', () => {
    const megabyte = 1 << 20;
    const started = performance.now();
    expect(decodeError(Buffer.alloc(megabyte, 0xff)).message).toMatch(/more than 5 continuation octets/);
    expect(decodeError(Buffer.alloc(megabyte, 0x00)).message).toBe('header list larger than 65536 bytes'); // empty literals
    expect(decodeError(Buffer.alloc(megabyte, 0x82)).message).toBe('header list larger than 65536 bytes');
    // one value of 2^20 - 1 Huffman-coded octets, all zero: 1677720 times '0' (00000), no padding
    const huge = Buffer.concat([Buffer.from([0x04, ...integer(0x80, 7, megabyte - 1)]), Buffer.alloc(megabyte - 1, 0x00)]);
    expect(decodeError(huge).message).toBe('header list larger than 65536 bytes');
    const [[, value]] = new HpackDecoder({ maxHeaderListSize: 2 ** 32 - 1 }).decode(huge) as [[string, string]];
    expect(value).toBe('0'.repeat(((megabyte - 1) * 8) / 5));
    expect(performance.now() - started).toBeLessThan(2000);
  });
});

describe('dynamic table edge cases', () => {
  test('an entry larger than the table empties it and is not added; a size update evicts; 0 disables indexing', () => {
    const decoder = new HpackDecoder({ maxTableSize: 64 });
    decoder.decode(Buffer.from([0x40, 0x01, 0x61, 0x01, 0x62])); // a: b (34)
    expect(dynamicTable(decoder)).toEqual([['a', 'b']]);
    const big = 'v'.repeat(31); // 1 + 31 + 32 = 64: fits exactly, evicting a: b
    decoder.decode(Buffer.from([0x40, 0x01, 0x63, 0x1f, ...Buffer.from(big)]));
    expect(dynamicTable(decoder)).toEqual([['c', big]]);
    expect(decoder.decode(Buffer.from([0x40, 0x01, 0x64, 0x20, ...Buffer.from(big + 'v')]))).toEqual([['d', big + 'v']]); // 65
    expect(dynamicTable(decoder)).toEqual([]);
    decoder.decode(Buffer.from([0x40, 0x01, 0x61, 0x01, 0x62, 0x40, 0x01, 0x63, 0x01, 0x64])); // a: b, c: d (68 > 64: a: b goes)
    expect(dynamicTable(decoder)).toEqual([['c', 'd']]);
    decoder.decode(Buffer.from([0x20])); // size 0
    expect(dynamicTable(decoder)).toEqual([]);
    decoder.decode(Buffer.from([0x40, 0x01, 0x61, 0x01, 0x62]));
    expect(dynamicTable(decoder)).toEqual([]);
    decoder.decode(Buffer.from([0x3f, 0x21, 0x40, 0x01, 0x61, 0x01, 0x62])); // back to 64, then a: b
    expect(dynamicTable(decoder)).toEqual([['a', 'b']]);
    decoder.decode(Buffer.from([0x3f, 0x02])); // 33: too small for a: b
    expect(dynamicTable(decoder)).toEqual([]);
  });

  test('a new entry may name the entry its insertion evicts (RFC 7541 4.4)', () => {
    const decoder = new HpackDecoder({ maxTableSize: 60 });
    decoder.decode(Buffer.from([0x40, 0x0a, ...Buffer.from('custom-key'), 0x02, ...Buffer.from('v1')])); // 44
    expect(decoder.decode(Buffer.from([0x7e, 0x02, ...Buffer.from('v2')]))).toEqual([['custom-key', 'v2']]); // name: index 62
    expect(dynamicTable(decoder)).toEqual([['custom-key', 'v2']]);
  });

  test('index 62 is the newest entry; the table persists across blocks', () => {
    const decoder = new HpackDecoder();
    decoder.decode(hex('400161 0131 400161 0132 400161 0133')); // a: 1, a: 2, a: 3
    expect(decoder.decode(hex('be bf c0'))).toEqual([['a', '3'], ['a', '2'], ['a', '1']]);
    expect(decodeError(hex('c1'), decoder).message).toMatch(/index 65 .*61 static \+ 3 dynamic/);
  });
});

describe('nghttp2 as the peer (a node:http2 server over a raw socket)', () => {
  interface Frame {
    type: number;
    flags: number;
    stream: number;
    payload: Buffer;
  }
  const HEADERS = 1, RST_STREAM = 3, SETTINGS = 4, GOAWAY = 7, CONTINUATION = 9;
  const END_STREAM = 0x1, END_HEADERS = 0x4, PADDED = 0x8, PRIORITY = 0x20, ACK = 0x1;

  const frame = (type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer => {
    const header = Buffer.alloc(9);
    header.writeUIntBE(payload.length, 0, 3);
    header[3] = type;
    header[4] = flags;
    header.writeUInt32BE(stream, 5);
    return Buffer.concat([header, payload]);
  };

  function onFrames(socket: Socket, handle: (frame: Frame) => void): void {
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 9 && buffered.length >= 9 + buffered.readUIntBE(0, 3)) {
        const length = buffered.readUIntBE(0, 3);
        handle({ type: buffered[3]!, flags: buffered[4]!, stream: buffered.readUInt32BE(5) & 0x7fffffff, payload: buffered.subarray(9, 9 + length) });
        buffered = buffered.subarray(9 + length);
      }
    });
  }

  /** The header block fragment of a HEADERS frame: without its padding and priority fields. */
  function fragment({ flags, payload }: Frame): Buffer {
    let start = 0;
    let end = payload.length;
    if (flags & PADDED) {
      end -= payload[0]!;
      start = 1;
    }
    if (flags & PRIORITY) start += 5;
    return payload.subarray(start, end);
  }

  test('it reads our HEADERS; its Huffman-coded, dynamically indexed responses decode to what it was given', async () => {
    const repeated = 'the same value on every stream, so that nghttp2 indexes it once and refers to it after';
    const sent = { 'content-type': 'application/grpc+proto', 'x-repeated': repeated, 'x-latin1': 'caf\u00e9 \u00ff\u0080', 'grpc-encoding': 'identity' };
    const received: IncomingHttpHeaders[] = [];
    const server = createServer({ paddingStrategy: constants.PADDING_STRATEGY_MAX });
    server.on('stream', (stream, headers) => {
      received.push(headers);
      stream.respond({ ':status': 200, ...sent, 'x-path': headers[':path'], 'x-echo': headers['x-client'] }, { endStream: true });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const socket = connect(port, '127.0.0.1');
    try {
      const blocks = new Promise<Array<{ stream: number; block: Buffer; padded: boolean }>>((resolve, reject) => {
        const done: Array<{ stream: number; block: Buffer; padded: boolean }> = [];
        let open: { stream: number; parts: Buffer[]; padded: boolean } | undefined;
        const timer = setTimeout(() => reject(new Error(`only ${done.length} responses in 5 s`)), 5000);
        socket.on('error', reject);
        onFrames(socket, (f) => {
          if (f.type === SETTINGS && !(f.flags & ACK)) socket.write(frame(SETTINGS, ACK, 0));
          if (f.type === GOAWAY || f.type === RST_STREAM) reject(new Error(`the server sent frame type ${f.type}: ${f.payload.toString('hex')}`));
          if (f.type === HEADERS) open = { stream: f.stream, parts: [fragment(f)], padded: (f.flags & PADDED) !== 0 };
          if (f.type === CONTINUATION) open?.parts.push(f.payload);
          if ((f.type === HEADERS || f.type === CONTINUATION) && f.flags & END_HEADERS && open) {
            done.push({ stream: open.stream, block: Buffer.concat(open.parts), padded: open.padded });
            open = undefined;
            if (done.length === 3) {
              clearTimeout(timer);
              resolve(done);
            }
          }
        });
      });
      socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(SETTINGS, 0, 0)]));
      const request = (stream: number): HeaderList => [
        [':method', 'GET'],
        [':scheme', 'http'],
        [':authority', `127.0.0.1:${port}`],
        [':path', `/stream/${stream}`],
        ['user-agent', 'hpack.test.ts'],
        ['x-long', `${stream}`.repeat(300)], // lengths past the 7-bit prefix
        ['x-client', `caf\u00e9 \u00ff #${stream}`],
      ];
      for (const stream of [1, 3, 5]) socket.write(frame(HEADERS, END_STREAM | END_HEADERS, stream, encodeHeaders(request(stream))));

      const decoder = new HpackDecoder();
      const responses = await blocks;
      for (const { stream, block } of responses) {
        const headers = decoder.decode(block);
        const sentRequest = Object.fromEntries(request(stream));
        expect(headers[0]).toEqual([':status', '200']);
        expect(headers).toEqual(expect.arrayContaining([...Object.entries(sent), ['x-path', sentRequest[':path']], ['x-echo', sentRequest['x-client']]]));
        expect(headers.map(([name]) => name).sort()).toEqual([':status', ...Object.keys(sent), 'date', 'x-echo', 'x-path'].sort());
      }
      expect(responses.map(({ stream }) => stream).sort()).toEqual([1, 3, 5]);
      // nghttp2 Huffman-coded the long value, and later responses referred to its dynamic table entries
      expect(responses[0]!.block.includes(Buffer.from(repeated))).toBe(false);
      expect(responses[1]!.block.length).toBeLessThan(responses[0]!.block.length / 2);
      expect(responses[2]!.block.length).toBeLessThan(responses[0]!.block.length / 2);
      expect(responses.some(({ padded }) => padded)).toBe(true);
      // and nghttp2 read our literals: what the server was given is what we encoded
      expect(received.map((headers) => [headers[':path'], headers[':authority'], headers['x-client'], headers['user-agent'], headers['x-long']])).toEqual(
        [1, 3, 5].map((stream) => {
          const sentRequest = Object.fromEntries(request(stream));
          return [sentRequest[':path'], sentRequest[':authority'], sentRequest['x-client'], sentRequest['user-agent'], sentRequest['x-long']];
        }),
      );
    } finally {
      socket.destroy();
      server.close();
    }
  });
});
