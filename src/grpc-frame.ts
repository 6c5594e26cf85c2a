// gRPC's length-prefixed message, as the client sends requests and the server's fast path sends answers.

/** A message behind the 5-byte gRPC prefix: compressed flag 0, then the length (big-endian). */
export function frame(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  message.copy(out, 5);
  return out;
}
