// An HTTP/1.1 client of a few lines, on node:net or node:tls (with the ALPN offered, or none at all, as the
// kubelet's HTTPS probes): writes a request as given and reads what comes back until the server closes.
// Every wait is bounded.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { testCa } from '../../src/generated/test-pki.ts';
import { collectAnswer, splitAddress } from './raw-grpc.ts';

export interface Http1Answer {
  /** the status code; 0 if no status line came */
  status: number;
  /** header fields, names lower-cased */
  headers: Record<string, string>;
  body: string;
  /** everything the server sent */
  raw: Buffer;
  /** how the connection ended: 'closed' by the server, 'reset', 'timeout' (still open after waitMs) */
  end: 'closed' | 'reset' | 'timeout';
  /** the ALPN protocol TLS agreed on (false: none); undefined for plaintext */
  alpn?: string | false;
}

export interface Http1Options {
  /** TLS, offering these ALPN protocols (undefined: no ALPN extension at all) */
  tls?: { alpn?: string[] };
  waitMs?: number;
}

/** Opens a connection to `address`, with `onOpen` writing to it; resolves when the server closes it (or after waitMs). */
export async function http1Connection(address: string, options: Http1Options, onOpen: (socket: Socket) => void): Promise<Http1Answer> {
  const [host, port] = splitAddress(address);
  const { tls } = options;
  const socket: Socket = tls
    ? tlsConnect({ host, port, ca: testCa, servername: 'localhost', ...(tls.alpn ? { ALPNProtocols: tls.alpn } : {}) })
    : netConnect({ host, port });
  const { received, end } = await collectAnswer(socket, tls ? 'secureConnect' : 'connect', onOpen, options.waitMs ?? 5000);
  const alpn = tls ? (socket as TLSSocket).alpnProtocol : undefined;
  return { ...parseHttp1(received), end, ...(alpn !== undefined ? { alpn: alpn ?? false } : {}) };
}

/** Writes `request` (a string is sent as latin1) and reads the answer. */
export function http1Exchange(address: string, request: string | Buffer, options: Http1Options = {}): Promise<Http1Answer> {
  return http1Connection(address, options, (socket) => socket.write(typeof request === 'string' ? Buffer.from(request, 'latin1') : request));
}

/** `GET path` (or another method), as the kubelet sends it. */
export const http1Request = (path: string, method = 'GET', extra = '') =>
  `${method} ${path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: kube-probe/1.30\r\nAccept: */*\r\nConnection: close\r\n${extra}\r\n`;

export function parseHttp1(raw: Buffer): Pick<Http1Answer, 'status' | 'headers' | 'body' | 'raw'> {
  const text = raw.toString('latin1');
  const split = text.indexOf('\r\n\r\n');
  const [statusLine = '', ...fields] = (split < 0 ? text : text.slice(0, split)).split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3}) /.exec(statusLine)?.[1];
  const headers: Record<string, string> = {};
  for (const f of fields) {
    const colon = f.indexOf(':');
    if (colon > 0) headers[f.slice(0, colon).toLowerCase()] = f.slice(colon + 1).trim();
  }
  return { status: status ? Number(status) : 0, headers, body: split < 0 ? '' : text.slice(split + 4), raw };
}
