// The HPACK Huffman code, RFC 7541 Appendix B, as data, and a decoder for it. Only decoding is needed (our
// encoder never Huffman-codes), with its decode tree written out as data.
// This table is an IETF code component of RFC 7541, under the Simplified BSD licence.

/** Per symbol 0..256 (256 = EOS): the code, right-aligned, then its length in bits. */
export const HUFFMAN_CODE_AND_BITS: readonly number[] = [
  0x1ff8, 13, 0x7fffd8, 23, 0xfffffe2, 28, 0xfffffe3, 28, // 0 1 2 3
  0xfffffe4, 28, 0xfffffe5, 28, 0xfffffe6, 28, 0xfffffe7, 28, // 4 5 6 7
  0xfffffe8, 28, 0xffffea, 24, 0x3ffffffc, 30, 0xfffffe9, 28, // 8 9 10 11
  0xfffffea, 28, 0x3ffffffd, 30, 0xfffffeb, 28, 0xfffffec, 28, // 12 13 14 15
  0xfffffed, 28, 0xfffffee, 28, 0xfffffef, 28, 0xffffff0, 28, // 16 17 18 19
  0xffffff1, 28, 0xffffff2, 28, 0x3ffffffe, 30, 0xffffff3, 28, // 20 21 22 23
  0xffffff4, 28, 0xffffff5, 28, 0xffffff6, 28, 0xffffff7, 28, // 24 25 26 27
  0xffffff8, 28, 0xffffff9, 28, 0xffffffa, 28, 0xffffffb, 28, // 28 29 30 31
  0x14, 6, 0x3f8, 10, 0x3f9, 10, 0xffa, 12, // SP ! " #
  0x1ff9, 13, 0x15, 6, 0xf8, 8, 0x7fa, 11, // $ % & '
  0x3fa, 10, 0x3fb, 10, 0xf9, 8, 0x7fb, 11, // ( ) * +
  0xfa, 8, 0x16, 6, 0x17, 6, 0x18, 6, // , - . /
  0x0, 5, 0x1, 5, 0x2, 5, 0x19, 6, // 0 1 2 3
  0x1a, 6, 0x1b, 6, 0x1c, 6, 0x1d, 6, // 4 5 6 7
  0x1e, 6, 0x1f, 6, 0x5c, 7, 0xfb, 8, // 8 9 : ;
  0x7ffc, 15, 0x20, 6, 0xffb, 12, 0x3fc, 10, // < = > ?
  0x1ffa, 13, 0x21, 6, 0x5d, 7, 0x5e, 7, // @ A B C
  0x5f, 7, 0x60, 7, 0x61, 7, 0x62, 7, // D E F G
  0x63, 7, 0x64, 7, 0x65, 7, 0x66, 7, // H I J K
  0x67, 7, 0x68, 7, 0x69, 7, 0x6a, 7, // L M N O
  0x6b, 7, 0x6c, 7, 0x6d, 7, 0x6e, 7, // P Q R S
  0x6f, 7, 0x70, 7, 0x71, 7, 0x72, 7, // T U V W
  0xfc, 8, 0x73, 7, 0xfd, 8, 0x1ffb, 13, // X Y Z [
  0x7fff0, 19, 0x1ffc, 13, 0x3ffc, 14, 0x22, 6, // \ ] ^ _
  0x7ffd, 15, 0x3, 5, 0x23, 6, 0x4, 5, // ` a b c
  0x24, 6, 0x5, 5, 0x25, 6, 0x26, 6, // d e f g
  0x27, 6, 0x6, 5, 0x74, 7, 0x75, 7, // h i j k
  0x28, 6, 0x29, 6, 0x2a, 6, 0x7, 5, // l m n o
  0x2b, 6, 0x76, 7, 0x2c, 6, 0x8, 5, // p q r s
  0x9, 5, 0x2d, 6, 0x77, 7, 0x78, 7, // t u v w
  0x79, 7, 0x7a, 7, 0x7b, 7, 0x7ffe, 15, // x y z {
  0x7fc, 11, 0x3ffd, 14, 0x1ffd, 13, 0xffffffc, 28, // | } ~ 127
  0xfffe6, 20, 0x3fffd2, 22, 0xfffe7, 20, 0xfffe8, 20, // 128 129 130 131
  0x3fffd3, 22, 0x3fffd4, 22, 0x3fffd5, 22, 0x7fffd9, 23, // 132 133 134 135
  0x3fffd6, 22, 0x7fffda, 23, 0x7fffdb, 23, 0x7fffdc, 23, // 136 137 138 139
  0x7fffdd, 23, 0x7fffde, 23, 0xffffeb, 24, 0x7fffdf, 23, // 140 141 142 143
  0xffffec, 24, 0xffffed, 24, 0x3fffd7, 22, 0x7fffe0, 23, // 144 145 146 147
  0xffffee, 24, 0x7fffe1, 23, 0x7fffe2, 23, 0x7fffe3, 23, // 148 149 150 151
  0x7fffe4, 23, 0x1fffdc, 21, 0x3fffd8, 22, 0x7fffe5, 23, // 152 153 154 155
  0x3fffd9, 22, 0x7fffe6, 23, 0x7fffe7, 23, 0xffffef, 24, // 156 157 158 159
  0x3fffda, 22, 0x1fffdd, 21, 0xfffe9, 20, 0x3fffdb, 22, // 160 161 162 163
  0x3fffdc, 22, 0x7fffe8, 23, 0x7fffe9, 23, 0x1fffde, 21, // 164 165 166 167
  0x7fffea, 23, 0x3fffdd, 22, 0x3fffde, 22, 0xfffff0, 24, // 168 169 170 171
  0x1fffdf, 21, 0x3fffdf, 22, 0x7fffeb, 23, 0x7fffec, 23, // 172 173 174 175
  0x1fffe0, 21, 0x1fffe1, 21, 0x3fffe0, 22, 0x1fffe2, 21, // 176 177 178 179
  0x7fffed, 23, 0x3fffe1, 22, 0x7fffee, 23, 0x7fffef, 23, // 180 181 182 183
  0xfffea, 20, 0x3fffe2, 22, 0x3fffe3, 22, 0x3fffe4, 22, // 184 185 186 187
  0x7ffff0, 23, 0x3fffe5, 22, 0x3fffe6, 22, 0x7ffff1, 23, // 188 189 190 191
  0x3ffffe0, 26, 0x3ffffe1, 26, 0xfffeb, 20, 0x7fff1, 19, // 192 193 194 195
  0x3fffe7, 22, 0x7ffff2, 23, 0x3fffe8, 22, 0x1ffffec, 25, // 196 197 198 199
  0x3ffffe2, 26, 0x3ffffe3, 26, 0x3ffffe4, 26, 0x7ffffde, 27, // 200 201 202 203
  0x7ffffdf, 27, 0x3ffffe5, 26, 0xfffff1, 24, 0x1ffffed, 25, // 204 205 206 207
  0x7fff2, 19, 0x1fffe3, 21, 0x3ffffe6, 26, 0x7ffffe0, 27, // 208 209 210 211
  0x7ffffe1, 27, 0x3ffffe7, 26, 0x7ffffe2, 27, 0xfffff2, 24, // 212 213 214 215
  0x1fffe4, 21, 0x1fffe5, 21, 0x3ffffe8, 26, 0x3ffffe9, 26, // 216 217 218 219
  0xffffffd, 28, 0x7ffffe3, 27, 0x7ffffe4, 27, 0x7ffffe5, 27, // 220 221 222 223
  0xfffec, 20, 0xfffff3, 24, 0xfffed, 20, 0x1fffe6, 21, // 224 225 226 227
  0x3fffe9, 22, 0x1fffe7, 21, 0x1fffe8, 21, 0x7ffff3, 23, // 228 229 230 231
  0x3fffea, 22, 0x3fffeb, 22, 0x1ffffee, 25, 0x1ffffef, 25, // 232 233 234 235
  0xfffff4, 24, 0xfffff5, 24, 0x3ffffea, 26, 0x7ffff4, 23, // 236 237 238 239
  0x3ffffeb, 26, 0x7ffffe6, 27, 0x3ffffec, 26, 0x3ffffed, 26, // 240 241 242 243
  0x7ffffe7, 27, 0x7ffffe8, 27, 0x7ffffe9, 27, 0x7ffffea, 27, // 244 245 246 247
  0x7ffffeb, 27, 0xffffffe, 28, 0x7ffffec, 27, 0x7ffffed, 27, // 248 249 250 251
  0x7ffffee, 27, 0x7ffffef, 27, 0x7fffff0, 27, 0x3ffffee, 26, // 252 253 254 255
  0x3fffffff, 30, // EOS
];

export const EOS = 256;

// Binary tree over the code, two slots per internal node (bit 0, bit 1): a positive slot is the child node's
// number, a negative one the leaf -(symbol + 1). The code is complete, so every slot gets filled.
export function buildDecodeTree(codeAndBits: readonly number[] = HUFFMAN_CODE_AND_BITS): Int16Array {
  const slots = new Int16Array(2 * EOS); // 257 leaves need 256 internal nodes
  let nodes = 1; // node 0 is the root
  for (let symbol = 0; symbol <= EOS; symbol++) {
    const code = codeAndBits[2 * symbol]!;
    const bits = codeAndBits[2 * symbol + 1]!;
    let node = 0;
    for (let shift = bits - 1; shift > 0; shift--) {
      const slot = 2 * node + ((code >>> shift) & 1);
      if (slots[slot] === 0) slots[slot] = nodes++;
      node = slots[slot]!;
    }
    slots[2 * node + (code & 1)] = -(symbol + 1);
  }
  return slots;
}

// buildDecodeTree()'s result, written out (test/hpack.test.ts checks they are equal): building it at start-up
// made every probe wait for a loop hot enough for V8 to compile it optimized.
export const DECODE_TREE = new Int16Array([
  66, 1, 93, 2, 104, 3, 119, 4, 144, 5, 75, 6, 123, 7, 71, 8,
  77, 9, 73, 10, 11, 13, 12, 102, -1, -37, 127, 14, 128, 15, 98, 16,
  -124, 17, 124, 18, 150, 19, 20, 25, 199, 21, 216, 22, 23, 162, 24, 161,
  -2, -136, 167, 26, 41, 27, 191, 28, 211, 29, 229, 30, 31, 45, 32, 38,
  33, 35, -255, 34, -3, -4, 36, 37, -5, -6, -7, -8, 39, 52, 40, 51,
  -9, -12, 208, 42, 43, 165, -240, 44, -10, -143, 55, 46, 63, 47, 147, 48,
  -250, 49, 50, 59, -11, -14, -13, -15, 53, 54, -16, -17, -18, -19, 56, 60,
  57, 58, -20, -21, -22, -24, -23, -257, 61, 62, -25, -26, -27, -28, 64, 65,
  -29, -30, -31, -32, 85, 67, 68, 82, 143, 69, 70, 81, -33, -38, 72, 79,
  -34, -35, -125, 74, -36, -63, 76, 80, -39, -43, -64, 78, -40, -44, -41, -42,
  -45, -60, -46, -47, 83, 90, 84, 89, -48, -52, 86, 130, 87, 88, -49, -50,
  -51, -98, -53, -54, 91, 92, -55, -56, -57, -58, 99, 94, 138, 95, 142, 96,
  97, 103, -59, -67, -61, -97, 100, 132, 101, 129, -62, -66, -65, -92, -68, -69,
  105, 112, 106, 109, 107, 108, -70, -71, -72, -73, 110, 111, -74, -75, -76, -77,
  113, 116, 114, 115, -78, -79, -80, -81, 117, 118, -82, -83, -84, -85, 120, 136,
  121, 122, -86, -87, -88, -90, -89, -91, 125, 155, 126, 148, -93, -196, -94, -127,
  -95, -126, -96, -99, 131, 135, -100, -102, 133, 134, -101, -103, -104, -105, -106, -112,
  137, 141, -107, -108, 139, 140, -109, -110, -111, -113, -114, -119, -115, -118, -116, -117,
  145, 146, -120, -121, -122, -123, -128, -221, -209, 149, -129, -131, 196, 151, 152, 178,
  153, 158, -231, 154, -130, -133, 156, 175, 157, 204, -132, -163, 159, 160, -134, -135,
  -137, -147, -138, -139, 163, 164, -140, -141, -142, -144, 166, 171, -145, -146, 168, 185,
  169, 173, 170, 172, -148, -150, -149, -160, -151, -152, 174, 181, -153, -156, 241, 176,
  177, 188, -154, -162, 179, 183, 180, 182, -155, -157, -158, -159, -161, -164, 184, 190,
  -165, -170, 186, 194, 187, 189, -166, -167, -168, -173, -169, -175, -171, -174, 192, 218,
  193, 234, -172, -207, 195, 203, -176, -181, 197, 235, 198, 202, -177, -178, 200, 206,
  201, 205, -179, -182, -180, -210, -183, -184, -185, -195, -186, -187, 207, 210, -188, -190,
  209, 215, -189, -192, -191, -197, 212, 224, 213, 222, 214, 221, -193, -194, -198, -232,
  217, 243, -199, -229, 245, 219, 220, 244, -200, -208, -201, -202, 223, 228, -203, -206,
  237, 225, 248, 226, -256, 227, -204, -205, -211, -214, 230, 249, 231, 239, 232, 233,
  -212, -213, -215, -222, -216, -226, 236, 242, -217, -218, 238, 246, -219, -220, 240, 247,
  -223, -224, -225, -227, -228, -230, -233, -234, -235, -236, -237, -238, -239, -241, -242, -245,
  -243, -244, 250, 253, 251, 252, -246, -247, -248, -249, 254, 255, -251, -252, -253, -254,
]);

/**
 * Decodes the Huffman-coded octets bytes[start, end) to a latin1 string (one char per octet). Throws a plain
 * Error naming the fault, per RFC 7541 5.2: an EOS symbol in the data, or padding that is longer than 7 bits
 * or is not the most significant bits of EOS (all ones).
 */
export function decodeHuffman(bytes: Uint8Array, start: number, end: number): string {
  const slots = DECODE_TREE;
  const out = Buffer.allocUnsafe(Math.floor(((end - start) * 8) / 5)); // the shortest code has 5 bits
  let length = 0;
  let node = 0;
  let pendingBits = 0; // bits read since the last complete symbol
  let pendingAllOnes = true;
  for (let i = start; i < end; i++) {
    const byte = bytes[i]!;
    for (let shift = 7; shift >= 0; shift--) {
      const bit = (byte >>> shift) & 1;
      const next = slots[2 * node + bit]!;
      if (next < 0) {
        const symbol = -next - 1;
        if (symbol === EOS) throw new Error('Huffman-coded string contains the EOS symbol');
        out[length++] = symbol;
        node = 0;
        pendingBits = 0;
        pendingAllOnes = true;
      } else {
        node = next;
        pendingBits++;
        if (bit === 0) pendingAllOnes = false;
      }
    }
  }
  if (pendingBits > 7) throw new Error(`Huffman-coded string ends in ${pendingBits} bits of padding (at most 7 allowed)`);
  if (!pendingAllOnes) throw new Error('Huffman-coded string ends in padding that is not all ones (the start of EOS)');
  return out.toString('latin1', 0, length);
}
