// What makes a header list well-formed in HTTP/2 (RFC 9113 §8.2, §8.3): lower-case names of token characters,
// values without NUL, CR or LF (both checked as the HPACK decoder reads them off the wire), pseudo-header fields
// first, only the defined ones and each once, no connection-specific fields, and `te` only as "trailers". A
// malformed request or response is a stream error of type PROTOCOL_ERROR (§8.1.1). Each list check returns
// why a list is malformed, or undefined when it is not.
/** A header list in order, as HPACK carries it: names and values as octets, one char each (latin1). */
export type HeaderList = Array<readonly [name: string, value: string]>;

const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

/** RFC 9110 §5.6.2 token characters, without upper case (HTTP/2 names are lower case). */
const NAME_CHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") NAME_CHAR[c.charCodeAt(0)] = 1;

/** A field name HTTP/2 does not allow (a pseudo-header's ':' aside). */
export function badFieldName(name: string): boolean {
  if (name.length === 0) return true;
  for (let i = name.charCodeAt(0) === 0x3a && name.length > 1 ? 1 : 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 128 || NAME_CHAR[c] === 0) return true;
  }
  return false;
}

// (White space at either end, which RFC 9113 §8.2.1 also forbids, is let through, as node:http2 and grpc-go do:
// gRPC metadata values with it exist, and grpc-js took them before this front door did.)
/** A field value HTTP/2 does not allow: with NUL, CR or LF. */
export function badFieldValue(value: string): boolean {
  const n = value.length;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c === 0 || c === 0x0a || c === 0x0d) return true;
  }
  return false;
}

/** The checks every header list shares past names and values (checked as they are decoded: hpack.ts): connection-specific fields. */
function regularField(name: string, value: string): string | undefined {
  if (CONNECTION_SPECIFIC.has(name)) return `connection-specific header ${JSON.stringify(name)}`;
  if (name === 'te' && value !== 'trailers') return `te: ${JSON.stringify(value)} (only "trailers" is allowed)`;
  return undefined;
}

/** The request pseudo-headers, each a bit: which were seen is one number (no allocation on the hot path). */
const REQUEST_PSEUDO: Readonly<Record<string, number>> = { ':method': 1, ':scheme': 2, ':path': 4, ':authority': 8 };

/** A request's header list, read in one pass: by name (repeated names joined with ", ", as node:http2 gives them), its size, its content-length. */
export interface Request {
  headers: Record<string, string>;
  /** names and values, in characters (octets) */
  size: number;
  /** undefined when absent */
  contentLength: number | undefined;
}

/** A request's header list (RFC 9113 §8.3.1): the request, or why it is malformed. */
export function readRequest(fields: HeaderList): Request | string {
  let regular = false;
  let seen = 0;
  let connect = false;
  let size = 0;
  const headers: Record<string, string> = {};
  for (const [name, value] of fields) {
    size += name.length + value.length;
    if (name.charCodeAt(0) === 0x3a) {
      if (regular) return `pseudo-header ${name} after a regular header`;
      const bit = REQUEST_PSEUDO[name];
      if (bit === undefined) return `unknown pseudo-header ${name}`;
      if (seen & bit) return `duplicated ${name}`;
      seen |= bit;
      if (bit === 4 && value === '') return 'empty :path';
      if (bit === 1 && value === 'CONNECT') connect = true;
      headers[name] = value;
      continue;
    }
    regular = true;
    const bad = regularField(name, value);
    if (bad) return bad;
    const before = headers[name];
    if (before === undefined) headers[name] = value;
    // (two content-lengths must agree: joined, they are no number)
    else headers[name] = `${before}, ${value}`;
  }
  if (!(seen & 1)) return 'no :method';
  // CONNECT (§8.5) has :authority and neither :scheme nor :path
  if (connect && (seen & 6 || !(seen & 8))) return 'malformed CONNECT';
  if (!connect && !(seen & 2)) return 'no :scheme';
  if (!connect && !(seen & 4)) return 'no :path';
  const length = headers['content-length'];
  let contentLength: number | undefined;
  if (length !== undefined) {
    contentLength = decimalLength(length);
    if (Number.isNaN(contentLength)) return `content-length ${JSON.stringify(length)}`;
  }
  return { headers, size, contentLength };
}

/** A response's header list (RFC 9113 §8.3.2): :status, three digits, and no other pseudo-header. */
export function responseMalformed(fields: HeaderList): string | undefined {
  let regular = false;
  let status = false;
  for (const [name, value] of fields) {
    if (name.charCodeAt(0) === 0x3a) {
      if (regular) return `pseudo-header ${name} after a regular header`;
      if (name !== ':status') return `pseudo-header ${name} in a response`;
      if (status) return 'duplicated :status';
      if (!/^\d{3}$/.test(value)) return `invalid :status ${JSON.stringify(value)}`;
      status = true;
      continue;
    }
    regular = true;
    const bad = regularField(name, value);
    if (bad) return bad;
  }
  return status ? undefined : 'no :status';
}

/** Trailers (RFC 9113 §8.1): no pseudo-header fields. */
export function trailersMalformed(fields: HeaderList): string | undefined {
  for (const [name, value] of fields) {
    if (name.charCodeAt(0) === 0x3a) return `pseudo-header ${name} in trailers`;
    const bad = regularField(name, value);
    if (bad) return bad;
  }
  return undefined;
}

/** A content-length value as a number; NaN when it is not a decimal number. */
function decimalLength(value: string): number {
  return /^\d{1,15}$/.test(value) ? Number(value) : Number.NaN;
}

/** content-length as a number; NaN when present and not a decimal number; undefined when absent. */
export function contentLength(fields: HeaderList): number | undefined {
  let length: number | undefined;
  for (const [name, value] of fields) {
    if (name !== 'content-length') continue;
    const n = decimalLength(value);
    if (length !== undefined && length !== n) return Number.NaN;
    length = n;
  }
  return length;
}
