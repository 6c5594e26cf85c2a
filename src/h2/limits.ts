// Every limit of our HTTP/2 connections, client and server alike, in one place, each with why. The README's
// limits table lists them with what happens past each; docs/http2.md says how they were chosen.

/** The window every stream and the connection start with (RFC 9113 §6.9.2), before any SETTINGS or WINDOW_UPDATE. */
export const DEFAULT_WINDOW = 65_535;

/** A stream's receive window, sent as SETTINGS_INITIAL_WINDOW_SIZE: a whole 4 MiB gRPC message and its prefix, so a larger one is seen, not stalled. */
export const STREAM_WINDOW = 4 * 1024 * 1024 + 65_536;

/** The connection's receive window (a WINDOW_UPDATE on stream 0 right after the preface raises it from 65,535). */
export const CONNECTION_WINDOW = 16 * 1024 * 1024;

/**
 * A window is opened again (WINDOW_UPDATE) once this fraction of it has been consumed: as grpc-go does, often
 * enough that a sender never waits for a window it is owed, rarely enough to cost nothing.
 */
export const WINDOW_UPDATE_FRACTION = 4;

export interface H2Limits {
  /**
   * SETTINGS_MAX_CONCURRENT_STREAMS we advertise (a server: streams a client may open; a client: none, it
   * accepts no pushed streams). It must fit a signed 32-bit integer: grpc-java (OkHttp) reads 2^32-1 as -1.
   */
  maxConcurrentStreams: number;
  /**
   * SETTINGS_MAX_HEADER_LIST_SIZE we advertise and enforce, in RFC 7541 sizes (name + value + 32 per field).
   * A larger header list resets only its own stream; the connection goes on.
   */
  maxHeaderListSize: number;
  /**
   * The compressed header block (HEADERS + CONTINUATION) we read at most: past it the block cannot be decoded
   * and the HPACK state is lost, so the connection ends (ENHANCE_YOUR_CALM). Never smaller than the list size:
   * a list within maxHeaderListSize is never larger than that compressed.
   */
  maxHeaderBlock: number;
  /** Bytes queued for the socket beyond which a connection stops reading until they have gone (a peer that does not read). */
  maxUnsent: number;
}

export const DEFAULT_LIMITS: H2Limits = {
  // Go's net/http2 server allows 250 and nghttp2 100; a fault-injection load test may hold thousands of delayed
  // calls on one connection, so this is higher (and a client above it is queued, not failed: REFUSED_STREAM)
  maxConcurrentStreams: 10_000,
  // metadata as large as grpc-js on node:http2 took (a 70 KB value, say), with room; grpc-go's client took 200 KB
  maxHeaderListSize: 1024 * 1024,
  maxHeaderBlock: 1024 * 1024 + 65_536,
  maxUnsent: 1024 * 1024,
};

/** A stream's write() says "wait for onDrain" beyond this many bytes queued on it. */
export const STREAM_HIGH_WATER = 64 * 1024;
