// The client's hand-written codec against proto-loader's serializers from the real descriptors: the bytes
// it sends are the bytes grpc-js would send, and it reads what grpc-js would write.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { loadSync, type MethodDefinition } from '@grpc/proto-loader';
import { describe, expect, test } from 'vitest';
import {
  decodeHealthCheckResponse,
  decodeHelloReply,
  encodeHealthCheckRequest,
  encodeHelloRequest,
  SERVING_STATUS_NAMES,
} from '../src/client/codec.ts';
import { encodeHelloStreamRequest } from '../src/client/stream/codec.ts';
import { frame } from '../src/grpc-frame.ts';
import { helloworldPackage } from '../src/proto.ts';

const require = createRequire(import.meta.url);
const healthProto = loadSync('health/v1/health.proto', {
  includeDirs: [join(dirname(require.resolve('grpc-health-check/package.json')), 'proto')],
  keepCase: true,
  defaults: true,
});
type Method = MethodDefinition<object, object>;
const sayHello = (helloworldPackage['helloworld.Greeter'] as Record<string, Method>).SayHello!;
const check = (healthProto['grpc.health.v1.Health'] as Record<string, Method>).Check!;

const names = [
  'world',
  '',
  'é',
  'こんにちは世界',
  '🌍 emoji and a\u0000nul',
  'x'.repeat(127), // one-byte length prefix, the largest
  'x'.repeat(128), // two-byte prefix
  'ü'.repeat(5000), // 10000 bytes of UTF-8
  'long '.repeat(20_000), // 100000 bytes: three-byte prefix
];

describe('HelloRequest / HealthCheckRequest encoding', () => {
  test.each(names.map((n) => [n.length > 40 ? `${n.slice(0, 12)}… (${n.length} chars)` : JSON.stringify(n), n]))('%s: byte-identical with proto-loader', (_, name) => {
    expect(encodeHelloRequest({ name })).toEqual(sayHello.requestSerialize({ name }));
    expect(encodeHealthCheckRequest({ service: name })).toEqual(check.requestSerialize({ service: name }));
  });

  test('proto-loader reads back what the codec wrote', () => {
    for (const name of names) {
      expect(sayHello.requestDeserialize(encodeHelloRequest({ name }))).toEqual({ name });
      expect(check.requestDeserialize(encodeHealthCheckRequest({ service: name }))).toEqual({ service: name });
    }
  });
});

describe('HelloStreamRequest encoding (-stream server)', () => {
  const sayHelloStream = (helloworldPackage['helloworld.GreeterStream'] as Record<string, Method>).SayHelloStream!;
  test.each([
    ['world', 10, 0],
    ['', 1, 1],
    ['ü'.repeat(100), 1_000_000, 300_000],
    ['x', 127, 128],
  ])('%s, count %i, interval_ms %i: byte-identical with proto-loader, and read back', (name, count, intervalMs) => {
    const bytes = encodeHelloStreamRequest({ name, count, intervalMs });
    expect(bytes).toEqual(sayHelloStream.requestSerialize({ name, count, interval_ms: intervalMs }));
    expect(sayHelloStream.requestDeserialize(bytes)).toEqual({ name, count, interval_ms: intervalMs });
  });
});

describe('HelloReply / HealthCheckResponse decoding', () => {
  test.each(names.map((n) => [n.length > 40 ? `${n.slice(0, 12)}… (${n.length} chars)` : JSON.stringify(n), n]))('%s: what proto-loader wrote', (_, message) => {
    expect(decodeHelloReply(sayHello.responseSerialize({ message }))).toEqual({ message });
  });

  test('an empty message (proto3 default: no field at all) is ""', () => {
    expect(decodeHelloReply(Buffer.alloc(0))).toEqual({ message: '' });
  });

  test('every serving status, numbers beyond the enum, and the default', () => {
    SERVING_STATUS_NAMES.forEach((status, n) => {
      expect(decodeHealthCheckResponse(check.responseSerialize({ status }))).toEqual({ status: n });
    });
    expect(decodeHealthCheckResponse(Buffer.from([0x08, 0x07]))).toEqual({ status: 7 });
    expect(decodeHealthCheckResponse(Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]))).toEqual({ status: -1 });
    expect(decodeHealthCheckResponse(Buffer.alloc(0))).toEqual({ status: 0 });
  });

  test('unknown fields of every wire type are skipped; the last occurrence wins', () => {
    const bytes = Buffer.concat([
      Buffer.from([0x0a, 0x03, ...Buffer.from('old')]), // message = "old"
      Buffer.from([0x10, 0x96, 0x01]), // field 2 varint 150
      Buffer.from([0x19, 1, 2, 3, 4, 5, 6, 7, 8]), // field 3 fixed64
      Buffer.from([0x22, 0x02, 0xab, 0xcd]), // field 4 bytes
      Buffer.from([0x2d, 1, 2, 3, 4]), // field 5 fixed32
      Buffer.from([0x0a, 0x03, ...Buffer.from('new')]), // message = "new"
    ]);
    expect(decodeHelloReply(bytes)).toEqual({ message: 'new' });
    expect(decodeHealthCheckResponse(Buffer.from([0x12, 0x01, 0x00, 0x08, 0x02]))).toEqual({ status: 2 });
  });

  test('malformed input is an error, not a guess', () => {
    expect(() => decodeHelloReply(Buffer.from([0x0a, 0x05, 0x61]))).toThrow(/past the end/);
    expect(() => decodeHelloReply(Buffer.from([0x0a]))).toThrow(/truncated/);
    expect(() => decodeHelloReply(Buffer.from([0x08, 0x01]))).toThrow(/wire type 0, want 2/);
    expect(() => decodeHelloReply(Buffer.from([0x0b]))).toThrow(/wire type 3/);
    expect(() => decodeHelloReply(Buffer.from([0x19, 1, 2]))).toThrow(/truncated/);
    expect(() => decodeHealthCheckResponse(Buffer.from([0x0a, 0x00]))).toThrow(/wire type 2, want 0/);
    expect(() => decodeHelloReply(Buffer.from([0x00, 0x00]))).toThrow(/field number 0/);
  });
});

test('frame: flag 0 and a big-endian length before the message', () => {
  expect(frame(Buffer.from([0x0a, 0x05, ...Buffer.from('world')]))).toEqual(Buffer.from([0, 0, 0, 0, 7, 0x0a, 0x05, ...Buffer.from('world')]));
  expect(frame(Buffer.alloc(0))).toEqual(Buffer.from([0, 0, 0, 0, 0]));
  expect(frame(Buffer.alloc(70_000)).subarray(0, 5)).toEqual(Buffer.from([0, 0, 1, 0x11, 0x70]));
});
