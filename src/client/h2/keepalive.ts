// -keepalive D: an HTTP/2 PING whenever the server has sent nothing for D (on an idle stream, or an idle
// connection between requests), so that a connection the network dropped without a word (a NAT or conntrack
// entry gone, a node gone) is found out: a PING not acknowledged within `ackTimeoutMs` ends the connection,
// and its streams end UNAVAILABLE with words, as grpc-go's keepalive (Time, Timeout) does. Loaded only with
// -keepalive.
import { SessionError, type H2Session } from './session.ts';

/** grpc-go's default keepalive Timeout. */
export const ACK_TIMEOUT_MS = 20_000;

/** Keeps `session` alive until it closes. */
export function keepalive(session: H2Session, everyMs: number, ackTimeoutMs = ACK_TIMEOUT_MS): void {
  const check = () => {
    if (session.closed) return;
    const idle = session.idleMs;
    if (idle < everyMs) return void setTimeout(check, everyMs - idle).unref();
    const dead = setTimeout(() => {
      session.destroy(new SessionError(`keepalive: no answer to a PING within ${ackTimeoutMs / 1000}s (the connection is gone?)`, 'ERR_HTTP2_PING_TIMEOUT'));
    }, ackTimeoutMs).unref();
    session.ping().then(
      () => {
        clearTimeout(dead);
        check();
      },
      () => clearTimeout(dead), // the connection ended anyway
    );
  };
  setTimeout(check, everyMs).unref();
}
