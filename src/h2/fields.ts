// What makes a header list well-formed in HTTP/2 (RFC 9113 §8.2, §8.3): lower-case names of token characters,
// values without NUL, CR or LF (both checked as the HPACK decoder reads them off the wire), pseudo-header fields
// first, only the defined ones and each once, no connection-specific fields, and `te` only as "trailers". A
// malformed request or response is a stream error of type PROTOCOL_ERROR (§8.1.1). Each list check returns
// why a list is malformed, or undefined when it is not.
import type { HeaderList } from './hpack.ts';

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

const REQUEST_PSEUDO = new Set([':method', ':scheme', ':path', ':authority']);

/** A request's header list (RFC 9113 §8.3.1). */
export function requestMalformed(fields: HeaderList): string | undefined {
  let regular = false;
  const seen = new Set<string>();
  for (const [name, value] of fields) {
    if (name.charCodeAt(0) === 0x3a) {
      if (regular) return `pseudo-header ${name} after a regular header`;
      if (!REQUEST_PSEUDO.has(name)) return `unknown pseudo-header ${name}`;
      if (seen.has(name)) return `duplicated ${name}`;
      seen.add(name);
      if (name === ':path' && value === '') return 'empty :path';
      continue;
    }
    regular = true;
    const bad = regularField(name, value);
    if (bad) return bad;
  }
  if (!seen.has(':method')) return 'no :method';
  // CONNECT (§8.5) has :authority and neither :scheme nor :path
  const connect = fields.some(([n, v]) => n === ':method' && v === 'CONNECT');
  if (connect) return seen.has(':scheme') || seen.has(':path') || !seen.has(':authority') ? 'malformed CONNECT' : undefined;
  if (!seen.has(':scheme')) return 'no :scheme';
  if (!seen.has(':path')) return 'no :path';
  return undefined;
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

/** content-length as a number; NaN when present and not a decimal number; undefined when absent. */
export function contentLength(fields: HeaderList): number | undefined {
  let length: number | undefined;
  for (const [name, value] of fields) {
    if (name !== 'content-length') continue;
    const n = /^\d{1,15}$/.test(value) ? Number(value) : Number.NaN;
    if (length !== undefined && length !== n) return Number.NaN;
    length = n;
  }
  return length;
}
