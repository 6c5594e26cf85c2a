// Transport failures in words a person can act on, not only errno names: "server speaks TLS? try -tls"
// rather than a reset connection, "certificate signed by unknown authority (try -ca_file)" rather than
// UNABLE_TO_VERIFY_LEAF_SIGNATURE.
import { connect as netConnect } from 'node:net';
import { sniFor } from '../tls.ts';
import type { Target } from './options.ts';

export interface ErrorContext {
  target: Target;
  /** the name verified in the server certificate, with -tls */
  serverName?: string;
}

interface NodeError extends Error {
  code?: string;
  address?: string;
  port?: number;
  reason?: string;
  cause?: unknown;
}

const UNKNOWN_AUTHORITY = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
]);

const NOT_TLS = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_RECORD_LAYER_FAILURE', 'ERR_SSL_HTTP_REQUEST']);

/** The innermost error with a code (an error may carry the one that caused it). */
function rootCause(err: unknown): NodeError | undefined {
  let e = err as NodeError | undefined;
  while (e && typeof e === 'object' && e.cause && typeof e.cause === 'object') e = e.cause as NodeError;
  return e && typeof e === 'object' ? e : undefined;
}

export function explainTransportError(err: unknown, ctx: ErrorContext): string {
  const e = rootCause(err);
  const code = e?.code ?? '';
  const where = e?.address ? `${e.address.includes(':') ? `[${e.address}]` : e.address}:${e.port ?? ctx.target.port}` : ctx.target.address;
  switch (code) {
    case 'ECONNREFUSED':
      return `connection refused (${where})`;
    case 'ECONNRESET':
      return `connection reset by the server (${where})`;
    case 'EPIPE':
      return `connection closed by the server while sending (${where})`;
    case 'ETIMEDOUT':
      return `connection timed out (${where})`;
    case 'EHOSTUNREACH':
      return `no route to host (${where})`;
    case 'ENETUNREACH':
      return `network unreachable (${where})`;
    case 'EADDRNOTAVAIL':
      return `cannot connect to ${where}: address not available`;
    case 'ENOTFOUND':
      return `cannot resolve host ${ctx.target.host} (no such name)`;
    case 'EAI_AGAIN':
      return `cannot resolve host ${ctx.target.host} (DNS lookup failed, temporary failure)`;
    case 'EAI_FAIL':
    case 'EAI_NODATA':
    case 'ENODATA':
      return `cannot resolve host ${ctx.target.host}`;
    case 'ERR_TLS_CERT_ALTNAME_INVALID': {
      const names = (e as { cert?: { subjectaltname?: string } }).cert?.subjectaltname;
      return `server certificate is not valid for ${JSON.stringify(ctx.serverName ?? ctx.target.host)}${names ? ` (it is for ${names})` : ''}: set -server_host_override to a name it carries`;
    }
    case 'CERT_HAS_EXPIRED':
      return 'server certificate has expired (or this clock is wrong)';
    case 'CERT_NOT_YET_VALID':
      return 'server certificate is not valid yet (or this clock is wrong)';
    case 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED':
      return 'server requires a client certificate (mTLS): try -cert_file and -key_file';
    case 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA':
      return 'server rejected the client certificate: it does not trust its CA';
    case 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE':
    case 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN':
    case 'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED':
      return 'server rejected the client certificate';
    case 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED':
      return 'server rejected the client certificate: expired';
    case 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL':
      return 'the TLS server does not offer HTTP/2 (ALPN h2): not a gRPC server?';
    case 'ERR_HTTP2_ERROR':
      return `not an HTTP/2 server (${e?.message ?? 'protocol error'}): not a gRPC server?`;
    case 'ERR_HTTP2_GOAWAY_SESSION':
      return 'the server is going away (HTTP/2 GOAWAY) and did not take the request';
    case 'ERR_H2_NOT_HTTP2': {
      const first = (e as { firstBytes?: Buffer }).firstBytes;
      return (first && http1Server(first.toString('latin1'))) ?? e!.message;
    }
    case 'ERR_H2_NO_ALPN': // the client's own HTTP/2 (h2/session.ts): its messages are words already
    case 'ERR_HTTP2_PROTOCOL':
    case 'ERR_HTTP2_GOAWAY_ERROR':
    case 'ERR_HTTP2_PING_TIMEOUT':
      return e!.message;
    case 'ERR_HTTP2_INVALID_SESSION':
      return 'the connection was already closed';
  }
  if (UNKNOWN_AUTHORITY.has(code)) return 'server certificate signed by unknown authority (try -ca_file)';
  if (NOT_TLS.has(code)) return 'server does not speak TLS? try without -tls';
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) return `TLS handshake failed: ${firstLine(e?.reason ?? e?.message)}`;
  if (/^[A-Z_]+$/.test(code) && e?.message && !e.message.includes(code)) return `${firstLine(e.message)} (${code})`;
  return firstLine(e?.message ?? String(err));
}

function firstLine(text: string | undefined): string {
  // OpenSSL messages come as "40ED…:error:0A00010B:SSL routines:fn:reason:file:line:": keep the reason
  const line = (text ?? 'unknown error').split('\n')[0]!;
  const ssl = /:SSL routines:[^:]*:([^:]+):/.exec(line);
  return ssl ? ssl[1]! : line;
}

/** The server speaks something else than the client asked for: plaintext to TLS, HTTP/1, TLS without h2. */
export function isProtocolMismatch(err: unknown): boolean {
  const e = err as { code?: string; firstBytes?: Buffer } | undefined;
  const code = e?.code ?? '';
  if (NOT_TLS.has(code) || code === 'ERR_H2_NO_ALPN' || code === 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL') return true;
  return code === 'ERR_H2_NOT_HTTP2' && e?.firstBytes !== undefined && http1Server(e.firstBytes.toString('latin1')) !== undefined;
}

/**
 * A plaintext connection that the server closed, or answered with something that is not HTTP/2: look at
 * what listens there, once, within `ms`. A TLS handshake that completes: the server speaks TLS. Otherwise
 * the first bytes it answers to the HTTP/2 preface: "HTTP/1.x" is an HTTP/1 server. `host` is the address
 * the failed connection went to (localhost's 127.0.0.1 or ::1); the name stays the SNI.
 */
export async function diagnosePlaintext(target: Target, ms: number, host: string): Promise<string | undefined> {
  if (ms <= 0) return undefined;
  const until = performance.now() + ms;
  const { connect: tlsConnect } = process.getBuiltinModule('node:tls');
  const speaksTls = await new Promise<boolean>((resolve) => {
    const socket = tlsConnect({
      host,
      port: target.port,
      rejectUnauthorized: false,
      ALPNProtocols: ['h2', 'http/1.1'],
      ...sniFor(target.host),
    });
    const done = (yes: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(yes);
    };
    const timer = setTimeout(() => done(false), Math.max(1, until - performance.now()));
    socket.once('secureConnect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('close', () => done(false));
  });
  if (speaksTls) return 'server speaks TLS? try -tls';
  const first = await new Promise<string>((resolve) => {
    let got = '';
    const socket = netConnect({ host, port: target.port });
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(got);
    };
    const timer = setTimeout(done, Math.max(1, until - performance.now()));
    socket.once('connect', () => socket.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00'));
    socket.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.length >= 8) done();
    });
    socket.once('error', done);
    socket.once('close', done);
  });
  return http1Server(first);
}

/** Words for a server whose first bytes (to the HTTP/2 preface) are an HTTP/1 status line. */
export function http1Server(first: string): string | undefined {
  return first.startsWith('HTTP/') ? `the server speaks ${first.slice(0, 8)}, not HTTP/2: not a gRPC server?` : undefined;
}
