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
  /**
   * Memory one connection may hold on its peer's behalf: answers waiting for the peer's windows, the header
   * lists of its open streams, what their owners hold for them (a forwarded call's request, in grpc-js), and
   * what waits unsent. Past it, new streams are refused (REFUSED_STREAM); a peer that goes on opening them
   * gets GOAWAY ENHANCE_YOUR_CALM. As node:http2's maxSessionMemory.
   */
  maxConnectionMemory: number;
  /** A server: the client preface and first SETTINGS must have come within this (0: no limit). */
  handshakeTimeoutMs: number;
  /** A server: a connection with no stream open for this long is closed with GOAWAY (0: never). */
  idleTimeoutMs: number;
}

export const DEFAULT_LIMITS: H2Limits = {
  // Go's net/http2 server allows 250 and nghttp2 100; a fault-injection load test may hold thousands of delayed
  // calls on one connection, so this is higher (a client above it is queued, not failed). At ~4.5 KB an open
  // stream (STREAM_OVERHEAD), 4,096 are ~18 MB: within maxConnectionMemory, so the number advertised is the
  // number taken (the memory budget bites on large headers and answers, not on the stream count)
  maxConcurrentStreams: 4096,
  // metadata as large as grpc-js on node:http2 took (a 70 KB value, say), and grpc-go's client takes (200 KB),
  // with room; a forwarded request's headers are held several times over (node:http2, grpc-js), so not more
  maxHeaderListSize: 256 * 1024,
  maxHeaderBlock: 256 * 1024 + 65_536,
  maxUnsent: 1024 * 1024,
  // every stream maxConcurrentStreams allows and then some, a 4 MiB message forwarded to grpc-js, or ~1,200
  // answers of 15 KB waiting on a zero window; measured, an attack at the budget stays under +64 MB RSS
  maxConnectionMemory: 24 * 1024 * 1024,
  // grpc-go gives a new connection 120 s; a client that has not said HTTP/2 in 10 s on loopback or in a
  // cluster is not going to (and each waiting TLS handshake holds ~55 KB)
  handshakeTimeoutMs: 10_000,
  // as Envoy's and Istio's connection idle timeout (1 h): a sidecar keeps its connections, an abandoned one goes
  idleTimeoutMs: 3_600_000,
};

/** The server's limits: the HTTP/2 connection's, and how many streams of one connection may be forwarded to grpc-js at once. */
export interface ServerLimits extends H2Limits {
  /**
   * Streams of one connection handed to grpc-js at once (health, reflection, all but the SayHello fast path).
   * Each costs a node:http2 stream and a grpc-js call (~80 KB); past it the stream is refused (REFUSED_STREAM).
   */
  maxForwardedStreams: number;
}

// (measured: 1,000 health streams held open on one connection took ~80 MB of RSS, node:http2 and grpc-js each
// keeping a stream; a client needs a few: a health Watch, a reflection stream, a compressed SayHello)
export const DEFAULT_SERVER_LIMITS: ServerLimits = { ...DEFAULT_LIMITS, maxForwardedStreams: 100 };

/**
 * What an open stream costs beyond its header list and queued bytes, counted in maxConnectionMemory: measured,
 * 10,000 open SayHello streams on one connection took 45 MB of RSS (~4.5 KB each, the header list included).
 */
export const STREAM_OVERHEAD = 4096;

/**
 * Answers waiting for their peers' flow-control windows, all connections of the process together. Past it, a
 * connection that has such answers waiting gets no new streams (REFUSED_STREAM), one whose peer reads does:
 * twenty clients that never read would otherwise hold twenty connections' budgets, and one client that does
 * not read cannot starve the others.
 */
export const MAX_QUEUED_IN_PROCESS = 12 * 1024 * 1024;

/** Refused streams in a row past maxConnectionMemory before a connection that keeps opening them gets GOAWAY. */
export const REFUSALS_BEFORE_GOAWAY = 100;

/**
 * Frames that cost us work or a reply and carry nothing a well-behaved peer needs many of: each a budget of a
 * burst and a rate (a token bucket), past which the connection gets GOAWAY ENHANCE_YOUR_CALM. The rates are
 * far above any gRPC client's (grpc-go's keepalive pings at most every 10 s), and far below a flood's.
 */
export const FLOOD_BUDGETS = {
  /** PING (grpc-go ends such a connection with "too_many_pings") */
  ping: { burst: 100, perSecond: 10 },
  /** SETTINGS: each one must be acknowledged */
  settings: { burst: 100, perSecond: 10 },
  /** RST_STREAM we send because of the peer: its stream errors, malformed requests, frames on closed streams */
  streamErrors: { burst: 1000, perSecond: 100 },
  /** DATA without a byte and without END_STREAM, HEADERS and CONTINUATION without a byte (CVE-2019-9518) */
  emptyFrames: { burst: 1000, perSecond: 100 },
  /**
   * Streams the client resets in the same read that opened them (HTTP/2 rapid reset, CVE-2023-44487): never
   * waited for, so no deadline cancels them; a client's deadline cancels a call in a later read, unbudgeted.
   */
  rapidResets: { burst: 1000, perSecond: 100 },
} as const;

/** A stream's write() says "wait for onDrain" beyond this many bytes queued on it. */
export const STREAM_HIGH_WATER = 64 * 1024;
