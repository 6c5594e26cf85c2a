// The floor for a Node gRPC probe: one SayHello hand-framed over node:net (or node:tls with -tls), nothing
// else (no flags, no HPACK decoding, no flow control, no words for errors). `node bench/floor-client.cjs
// [-tls] HOST:PORT` exits 0 when the server ends stream 1 with a HEADERS frame (the trailers), 1 otherwise.
// With -tls it trusts the repository's test CA (certs/ca.pem) and verifies the name `localhost`, offering
// ALPN h2, as `client -tls` does against the test server. bench/probe.ts runs it beside the client so that
// each table shows what the client costs above what any Node probe must pay.
'use strict';

const tls = process.argv[2] === '-tls';
const [host, port] = (process.argv[tls ? 3 : 2] ?? '127.0.0.1:10000').split(/:(?=\d+$)/);
const frame = (type, flags, payload) => {
  const b = Buffer.alloc(9 + payload.length);
  b.writeUIntBE(payload.length, 0, 3);
  b[3] = type;
  b[4] = flags;
  b.writeUInt32BE(type === 4 ? 0 : 1, 5);
  payload.copy(b, 9);
  return b;
};
// HPACK literal without indexing, new name (RFC 7541 6.2.2), lengths under 127
const field = (name, value) => Buffer.concat([Buffer.from([0, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
const headers = Buffer.concat([
  field(':method', 'POST'),
  field(':scheme', tls ? 'https' : 'http'),
  field(':path', '/helloworld.Greeter/SayHello'),
  field(':authority', `${host}:${port}`),
  field('content-type', 'application/grpc'),
  field('te', 'trailers'),
]);
const message = Buffer.from([0, 0, 0, 0, 7, 0x0a, 5, ...Buffer.from('world')]);
const send = () => socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(4, 0, Buffer.alloc(0)), frame(1, 4, headers), frame(0, 1, message)]));
const socket = tls
  ? require('node:tls').connect(
      { host, port: Number(port), ca: require('node:fs').readFileSync(`${__dirname}/../certs/ca.pem`), servername: 'localhost', ALPNProtocols: ['h2'] },
      send,
    )
  : require('node:net').connect(Number(port), host, send);
let got = Buffer.alloc(0);
let headersSeen = 0;
socket.on('data', (chunk) => {
  got = Buffer.concat([got, chunk]);
  let at = 0;
  while (got.length - at >= 9) {
    const length = got.readUIntBE(at, 3);
    if (got.length - at < 9 + length) break;
    if (got[at + 3] === 1 && got.readUInt32BE(at + 5) === 1 && ++headersSeen === 2) process.exit(0);
    at += 9 + length;
  }
  got = got.subarray(at);
});
socket.on('error', () => process.exit(1));
socket.on('close', () => process.exit(1));
