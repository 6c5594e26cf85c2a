// Which protocol a plaintext connection speaks, told from its first bytes: an HTTP/1.x request line
// (`GET /healthz HTTP/1.1`) is HTTP/1; the HTTP/2 preface (`PRI * HTTP/2.0…`), and any other bytes, are
// HTTP/2's to judge (garbage gets its GOAWAY PROTOCOL_ERROR there, as before). At most 8 bytes are waited for:
// the longest method and its space.
import type { Socket } from 'node:net';

export type FirstBytes = 'h2' | 'http1';

const HTTP1_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'CONNECT'];
const STARTS: ReadonlyArray<[Buffer, FirstBytes]> = [
  [Buffer.from('PRI ', 'latin1'), 'h2'],
  ...HTTP1_METHODS.map((m): [Buffer, FirstBytes] => [Buffer.from(`${m} `, 'latin1'), 'http1']),
];

/** The protocol these first bytes speak, or undefined while they could still begin either. */
export function classify(seen: Buffer): FirstBytes | undefined {
  let undecided = false;
  for (const [start, protocol] of STARTS) {
    if (seen.length >= start.length ? seen.subarray(0, start.length).equals(start) : start.subarray(0, seen.length).equals(seen)) {
      if (seen.length >= start.length) return protocol;
      undecided = true;
    }
  }
  return undecided ? undefined : 'h2';
}

/**
 * Reads the socket's first bytes until they tell the protocol, puts them back (unshift) and calls `decided`,
 * which sets up the reader of that protocol on the socket; the socket then flows again. A socket that
 * ends before that is destroyed; one still undecided after `timeoutMs` (0: no limit) too.
 */
export function readFirstBytes(socket: Socket, timeoutMs: number, decided: (protocol: FirstBytes) => void): void {
  let seen: Buffer = Buffer.alloc(0);
  const timer = timeoutMs > 0 ? setTimeout(() => socket.destroy(), timeoutMs) : undefined;
  const done = () => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.off('close', done);
  };
  const onEnd = () => {
    done();
    socket.destroy();
  };
  const onData = (chunk: Buffer) => {
    seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
    const protocol = classify(seen);
    if (protocol === undefined) return;
    done();
    socket.pause();
    socket.unshift(seen);
    decided(protocol);
    socket.resume();
  };
  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('close', done);
}
