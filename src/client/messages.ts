// gRPC's length-prefixed messages out of a response body that comes in pieces: a unary answer's body whole, a
// stream's DATA as it arrives. A message is handed over once it is complete; the pieces are joined only then,
// so a large message arriving in many DATA frames is copied once, not once a frame.

/** gRPC's default limit on a received message. */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

export class MessageReader {
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** bytes that complete the next message (its prefix, then the whole of it) */
  #need = 5;
  #error: string | undefined;
  /** the error is a message above MAX_MESSAGE_BYTES (gRPC's RESOURCE_EXHAUSTED) */
  tooLarge = false;

  /** `encoding`: the answer's grpc-encoding, for words about a compressed message */
  constructor(private readonly encoding: string | undefined) {}

  /** The messages (without their prefix) that `chunk` completes, or what is wrong with the body (then and from then on). */
  push(chunk: Buffer): Buffer[] | string {
    if (this.#error !== undefined) return this.#error;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    if (this.#buffered < this.#need) return [];
    const body = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#buffered);
    const out: Buffer[] = [];
    let at = 0;
    this.#need = 5;
    while (body.length - at >= 5) {
      const flag = body[at]!;
      const length = body.readUInt32BE(at + 1);
      const wrong =
        flag === 1
          ? `the server sent a compressed message (grpc-encoding ${this.encoding ?? 'none'}), but this client asks for none and reads none`
          : flag !== 0
            ? `invalid message flag ${flag} in the response`
            : length > MAX_MESSAGE_BYTES
              ? `response message of ${length} bytes is larger than ${MAX_MESSAGE_BYTES}`
              : undefined;
      if (wrong !== undefined) {
        this.tooLarge = flag === 0;
        return (this.#error = wrong);
      }
      if (body.length - at - 5 < length) {
        this.#need = 5 + length;
        break;
      }
      out.push(body.subarray(at + 5, at + 5 + length));
      at += 5 + length;
    }
    const rest = body.subarray(at);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#buffered = rest.length;
    return out;
  }

  /** What is wrong with a body that ends here: a message cut short. */
  end(): string | undefined {
    if (this.#error !== undefined) return this.#error;
    if (this.#buffered === 0) return undefined;
    return this.#buffered < 5 ? 'truncated message prefix in the response' : 'truncated message in the response';
  }
}
