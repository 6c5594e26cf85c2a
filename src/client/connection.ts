// One HTTP/2 connection per run, shared by every request (multiplexed with -concurrency). Requests go out
// as soon as the transport is up (with the client's preface: no round trip for the server's SETTINGS), and
// the connection is ready when the server's HTTP/2 SETTINGS arrived: every failure before that is a
// connection failure, with words (explain.ts), whatever the requests written meanwhile. A connection that
// the server told to go away (GOAWAY), or that closed, is replaced by a new one at the next request.
import { connect as netConnect, type Socket } from 'node:net';
import type { PeerCertificate } from 'node:tls';
import { MIN_TLS_VERSION, sniFor } from '../tls.ts';
import { diagnosePlaintext, explainTransportError, isProtocolMismatch, type ErrorContext } from './explain.ts';
import { H2Session } from './h2/session.ts';
import type { ClientTls, Target } from './options.ts';
import { ProtocolMismatch, TransportFailure } from './reconnect.ts';

interface Attempt {
  session: H2Session;
  /** the transport is up: requests may be written */
  up: Promise<H2Session>;
  /** the server's SETTINGS came */
  promise: Promise<H2Session>;
  state: 'connecting' | 'ready' | 'gone';
  waiters: number;
  abandon(): void;
}

/** How long a failed plaintext connection may spend finding out what listens instead of a gRPC server. */
const DIAGNOSIS_MS = 1000;

export class Connection {
  #current: Attempt | undefined;
  #diagnosis: Promise<string | undefined> | undefined;
  readonly #context: ErrorContext;

  constructor(
    readonly target: Target,
    readonly tls: ClientTls | undefined,
    readonly log?: (line: string) => void,
    /** called with each connection once it is ready (-keepalive) */
    readonly onReady?: (session: H2Session) => void,
  ) {
    this.#context = { target, ...(tls ? { serverName: tls.serverName } : {}) };
  }

  /**
   * A connection to write a request on: the current one, the one coming up (once its transport is up), or a
   * new attempt; `ready` resolves when the server's SETTINGS came. Both reject with a TransportFailure or
   * ProtocolMismatch (the connection failed before the server spoke HTTP/2: what the request saw does not
   * count), or the signal's reason.
   */
  async open(signal: AbortSignal): Promise<{ session: H2Session; ready: Promise<unknown> }> {
    signal.throwIfAborted();
    const current = this.#current;
    if (current?.state === 'ready' && !current.session.closed) return { session: current.session, ready: Promise.resolve() };
    const attempt = current?.state === 'connecting' ? current : this.#connect();
    attempt.waiters++;
    const release = () => {
      // the last request waiting for this attempt gave up (deadline): stop connecting, and let nobody join it
      if (--attempt.waiters === 0 && attempt.state === 'connecting') attempt.abandon();
    };
    let session: H2Session;
    try {
      session = await abortable(attempt.up, signal);
    } catch (err) {
      release();
      throw err;
    }
    return { session, ready: abortable(attempt.promise, signal).finally(release) };
  }

  /** Ends the connection now (a probe does not wait for a graceful close). */
  close(): void {
    this.#current?.session.destroy();
    this.#current = undefined;
  }

  #connect(): Attempt {
    const { target, tls } = this;
    const started = performance.now();
    this.log?.(`connecting to ${target.address}${tls ? ` (TLS, verifying ${JSON.stringify(tls.serverName)})` : ''}`);
    const attempt: Attempt = { session: undefined as never, state: 'connecting', waiters: 0, up: undefined as never, promise: undefined as never, abandon: () => {} };
    let transportUp!: (session: H2Session) => void;
    this.#current = attempt;
    const gone = () => {
      attempt.state = 'gone';
      if (this.#current === attempt) this.#current = undefined;
    };
    attempt.promise = new Promise<H2Session>((resolve, reject) => {
      const hosts = dialHosts(target.host);
      let firstFailure: unknown;
      const open = (next: number): void => {
        let handshakeDone = false;
        const host = hosts[next]!;
        const session = new H2Session(tls ? tlsSocket(host, target.port, tls) : netConnect({ host, port: target.port }), tls !== undefined, {
          connect: () => {
            handshakeDone = true;
            if (attempt.state === 'connecting') transportUp(session);
          },
          ready: () => {
            if (attempt.state !== 'connecting') return;
            attempt.state = 'ready';
            const how = tls ? `${(session.socket as { getProtocol?: () => string | null }).getProtocol?.() ?? 'TLS'}, h2` : 'h2c';
            const via = host === target.host ? '' : `, ${host}`;
            this.log?.(`connected to ${target.address} in ${(performance.now() - started).toFixed(1)} ms (${how}${via})`);
            this.onReady?.(session);
            resolve(session);
          },
          goaway: (errorCode) => {
            if (attempt.state === 'ready') this.log?.(`the server sent GOAWAY (code ${errorCode}): the next request opens a new connection`);
            gone();
          },
          close: (failure) => {
            const wasConnecting = attempt.state === 'connecting';
            if (wasConnecting && !handshakeDone && next + 1 < hosts.length && isUnreachable(failure)) {
              // the next address of the name, in this attempt (as grpc-go's pick_first does), not after a backoff
              firstFailure ??= failure;
              open(next + 1);
              return;
            }
            gone();
            if (!wasConnecting) return;
            // every address unreachable: the first one's failure; otherwise what the last one did
            const unreachable = firstFailure !== undefined && isUnreachable(failure);
            const why = unreachable ? firstFailure : failure;
            void this.#explainFailure(why, handshakeDone, host).then(({ words, mismatch }) => reject(mismatch ? new ProtocolMismatch(words) : new TransportFailure(words)));
          },
        });
        attempt.session = session;
      };
      open(0);
      attempt.abandon = () => {
        gone();
        attempt.session.destroy();
        reject(new TransportFailure('gave up connecting'));
      };
    });
    attempt.up = new Promise<H2Session>((resolve, reject) => {
      transportUp = resolve;
      attempt.promise.catch(reject);
    });
    attempt.promise.catch(() => {}); // nobody may be waiting any more when it fails
    attempt.up.catch(() => {});
    return attempt;
  }

  /** Words for a failed connection; `mismatch` when the server speaks something else (TLS, plaintext, HTTP/1): trying again will not help. */
  async #explainFailure(failure: unknown, handshakeDone: boolean, host: string): Promise<{ words: string; mismatch: boolean }> {
    const code = (failure as { code?: string } | undefined)?.code;
    const suspicious = failure === undefined || code === 'ERR_H2_NOT_HTTP2' || code === 'ECONNRESET';
    if (!this.tls && suspicious) {
      // closed before any HTTP/2 from the server, or answered with something else: look once what listens there
      const diagnosis = (this.#diagnosis ??= diagnosePlaintext(this.target, DIAGNOSIS_MS, host).catch(() => undefined));
      const words = await diagnosis;
      if (words) return { words, mismatch: true };
      if (this.#diagnosis === diagnosis) this.#diagnosis = undefined; // nothing found: look again next time
    }
    if ((failure === undefined || code === 'ECONNRESET') && this.tls && handshakeDone) {
      // Node's TLS servers check a client certificate after the handshake and close without an alert, or
      // with one the reset loses (the server closes with our HTTP/2 preface unread: RST, not FIN)
      const hint = this.tls.cert ? 'it does not accept this client certificate?' : 'it requires a client certificate? try -cert_file and -key_file';
      return { words: `the server closed the connection after the TLS handshake (${this.target.address}): ${hint}`, mismatch: false };
    }
    if (failure === undefined) {
      return { words: `connection closed by the server before HTTP/2 started (${this.target.address})${this.tls ? '' : ': a TLS server? try -tls'}`, mismatch: false };
    }
    return { words: explainTransportError(failure, this.#context), mismatch: isProtocolMismatch(failure) };
  }
}

/**
 * The hosts to connect to, in order. `localhost` and `*.localhost` are loopback (RFC 6761, as curl and browsers
 * treat them) and are not looked up: for an exec probe (`/client`, localhost:10000) Node's lookup of the name is a
 * visible part of the run, most of it node:net compiling its IPv6-address regex on first use. Any other name goes
 * to node:net as given, which resolves it.
 */
export function dialHosts(host: string): string[] {
  const name = host.toLowerCase().replace(/\.$/, '');
  return name === 'localhost' || name.endsWith('.localhost') ? ['127.0.0.1', '::1'] : [host];
}

/** A connect failure that says this address cannot be reached at all, so the next one may be tried at once. */
function isUnreachable(failure: unknown): boolean {
  const code = (failure as { code?: string } | undefined)?.code;
  return code === 'ECONNREFUSED' || code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT' || code === 'ENETUNREACH' || code === 'EHOSTUNREACH';
}

/** A TLS connection offering HTTP/2 (ALPN h2) that verifies the server certificate against `tls.serverName`. */
function tlsSocket(host: string, port: number, tls: ClientTls): Socket {
  // node:tls only with -tls: loading it costs a plaintext probe as much as starting Node
  const { connect, checkServerIdentity } = process.getBuiltinModule('node:tls');
  const serverName = tls.serverName;
  return connect({
    host,
    port,
    ca: tls.ca,
    ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
    minVersion: MIN_TLS_VERSION,
    ALPNProtocols: ['h2'],
    // the certificate is checked against the name, whether or not it goes as SNI
    ...sniFor(serverName),
    checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(serverName, cert),
  });
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e as Error);
      },
    );
  });
}
