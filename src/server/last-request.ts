// What the front door read from the last request message, kept with its bytes: a load generator, a probe and
// a bidi stream send one request again and again, and protobufjs need not read it each time.

/** The value `read` gave for the last message; a message of the same bytes gets it again without a read. */
export class LastRequest<T> {
  #bytes: Buffer | undefined;
  #value: T | undefined;

  constructor(private readonly read: (message: Buffer) => T) {}

  /** `read(message)`, or the value kept for the same bytes; what `read` throws is thrown, and nothing is kept. */
  of(message: Buffer): T {
    if (this.#bytes?.equals(message)) return this.#value!;
    const value = this.read(message);
    // a copy: the message is a view of a socket read
    this.#bytes = Buffer.from(message);
    this.#value = value;
    return value;
  }
}
