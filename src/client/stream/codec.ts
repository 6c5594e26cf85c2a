// The one message only streams send: helloworld.HelloStreamRequest { string name = 1; int32 count = 2;
// int32 interval_ms = 3; }, written as proto-loader (protobufjs) writes it, every field present
// (test/client-codec.test.ts checks it against the real descriptor). Counts and intervals are never negative.
import { encodeStringField1, varint } from '../codec.ts';

export function encodeHelloStreamRequest(request: { name: string; count: number; intervalMs: number }): Buffer {
  return Buffer.concat([encodeStringField1(request.name), Buffer.from([0x10]), varint(request.count), Buffer.from([0x18]), varint(request.intervalMs)]);
}
