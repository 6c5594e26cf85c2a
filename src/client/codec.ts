// The protobuf messages the client sends and reads, encoded by hand: all four have a single field 1, so a
// general protobuf runtime (protobufjs, ~100 KB of code to load at every probe) buys nothing here.
//   helloworld.HelloRequest         { string name = 1; }
//   helloworld.HelloReply           { string message = 1; }
//   grpc.health.v1.HealthCheckRequest  { string service = 1; }
//   grpc.health.v1.HealthCheckResponse { ServingStatus status = 1; }
// The encoder writes what proto-loader (protobufjs) writes, byte for byte, including an empty string as
// `0a 00` (Go omits it; both are valid proto3); test/client-codec.test.ts checks it against the real
// descriptors. The decoder is a real proto3 reader: unknown fields of every wire type are skipped, the last
// occurrence of a field wins, and malformed input is an error, never a guess.

/** A message whose only field is `string <field 1>` (HelloRequest.name, HealthCheckRequest.service). */
export function encodeStringField1(value: string): Buffer {
  const length = Buffer.byteLength(value, 'utf8');
  const prefix = varint(length);
  const out = Buffer.allocUnsafe(1 + prefix.length + length);
  out[0] = 0x0a; // field 1, wire type 2 (length-delimited)
  prefix.copy(out, 1);
  out.write(value, 1 + prefix.length, 'utf8');
  return out;
}

export const encodeHelloRequest = (request: { name: string }): Buffer => encodeStringField1(request.name);
export const encodeHealthCheckRequest = (request: { service: string }): Buffer => encodeStringField1(request.service);

export function decodeHelloReply(bytes: Uint8Array): { message: string } {
  return { message: readField1(bytes, 'HelloReply.message', 2, (reader) => reader.string(), '') };
}

export const SERVING_STATUS_NAMES = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'] as const;

export function servingStatusName(status: number): string {
  return SERVING_STATUS_NAMES[status] ?? `SERVING_STATUS_${status}`;
}

export function decodeHealthCheckResponse(bytes: Uint8Array): { status: number } {
  return { status: readField1(bytes, 'HealthCheckResponse.status', 0, (reader) => reader.int32(), 0) };
}

/** Field 1 of a message, the only field read, which must have `wireType`; `absent` when the message has none. */
function readField1<T>(bytes: Uint8Array, what: string, wireType: number, read: (reader: Reader) => T, absent: T): T {
  let value = absent;
  readFields(bytes, (field, type, reader) => {
    if (field !== 1) return false;
    if (type !== wireType) throw new Error(`${what} has wire type ${type}, want ${wireType}`);
    value = read(reader);
    return true;
  });
  return value;
}

export function varint(n: number): Buffer {
  const bytes: number[] = [];
  while (n > 0x7f) {
    bytes.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  bytes.push(n);
  return Buffer.from(bytes);
}

interface Reader {
  string(): string;
  int32(): number;
}

/** Calls `onField` for every field; it reads the value it knows (returns true) or leaves it to be skipped. */
function readFields(bytes: Uint8Array, onField: (field: number, wireType: number, reader: Reader) => boolean): void {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const readVarint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (at >= buf.length) throw new Error('truncated varint');
      const b = buf[at++]!;
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return result;
    }
    throw new Error('varint longer than 10 bytes');
  };
  const readLength = (): number => {
    const n = readVarint();
    if (n > BigInt(buf.length - at)) throw new Error('length-delimited field runs past the end of the message');
    return Number(n);
  };
  const reader: Reader = {
    string() {
      const n = readLength();
      const s = buf.toString('utf8', at, at + n);
      at += n;
      return s;
    },
    int32() {
      return Number(BigInt.asIntN(32, readVarint()));
    },
  };
  while (at < buf.length) {
    const key = readVarint();
    const field = Number(key >> 3n);
    const wireType = Number(key & 7n);
    if (field === 0) throw new Error('field number 0');
    if (onField(field, wireType, reader)) continue;
    switch (wireType) {
      case 0:
        readVarint();
        break;
      case 1:
        at += 8;
        break;
      case 2: {
        const n = readLength(); // before `at +=`, which would read `at` before the length is consumed
        at += n;
        break;
      }
      case 5:
        at += 4;
        break;
      default:
        throw new Error(`unsupported wire type ${wireType} (field ${field})`);
    }
    if (at > buf.length) throw new Error('truncated field');
  }
}
