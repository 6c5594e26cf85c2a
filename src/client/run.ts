// The requests of a run: -count of them, started -interval apart, at most -concurrency in flight, over one
// shared connection (-connections N: N of them, request i on connection i mod N, so that an L4 balancer,
// which balances connections and not calls, has more than one to spread). Each request has its own deadline (-timeout), which bounds everything it does:
// waiting for a connection, the backoff between attempts, and the call itself. What a request is (a unary
// call here, a stream with -stream: stream/exchange.ts) is an Exchange.
import { HEALTH_CHECK_PATH, SAY_HELLO_BIDI_PATH, SAY_HELLO_PATH, SAY_HELLO_STREAM_PATH } from '../rpc-names.ts';
import { afterLongDelay } from '../grpc-timeout.ts';
import { Code, statusName } from '../status.ts';
import { unaryCall, type Answer, type CallOptions, type UnaryRequest } from './call.ts';
import { decodeHealthCheckResponse, decodeHelloReply, encodeHealthCheckRequest, encodeHelloRequest, servingStatusName } from './codec.ts';
import { Connection } from './connection.ts';
import type { H2Session } from './h2/session.ts';
import type { AnsweredBy, ClientOptions } from './options.ts';
import type { StreamResult } from './stream/result.ts';
import { ProtocolMismatch, RetryableStatus, sleep, withRetries } from './reconnect.ts';
import { USER_AGENT } from './version.ts';

export const SERVING = 1;

export type Outcome = Omit<RequestResult, 'index' | 'start' | 'latencyMs' | 'attempts' | 'reached'>;

export interface RequestResult {
  /** 1 for the first request */
  index: number;
  /** wall-clock start */
  start: Date;
  /** monotonic clock, start to outcome */
  latencyMs: number;
  /** calls and connection attempts it took (1 when the first one answered) */
  attempts: number;
  code: number;
  details: string;
  /** the replica that answered (its `hostname` metadata) */
  hostname?: string;
  /** the retry attempt the answering server saw, as Envoy counted it (its `attempt` metadata): 2 = the mesh retried once */
  meshAttempt?: number;
  /** the request went out to a peer that spoke HTTP/2 (a server or a proxy); false: no server was reached at all */
  reached: boolean;
  /**
   * Who answered: `server`, a grpc-helloworld server (its `hostname` metadata); `other`, an HTTP/2 answer
   * without it (a mesh's fault abort, a proxy's own error, another gRPC server, a deadline answered by a
   * server's transport); `none`, no answer (the client's own deadline, a lost connection, nothing reached).
   */
  answeredBy: AnsweredBy;
  /** Envoy's response headers were seen on the answer (a sidecar or gateway was in the path) */
  envoy: boolean;
  /** SayHello: the greeting; -health: the serving status name */
  message?: string;
  /** OK, and for -health SERVING too */
  ok: boolean;
  /** -stream: its messages */
  stream?: StreamResult;
}

/** One request: what it sends on a ready session, and what its answer means. run.ts does the rest (deadline, retries, connection). */
export interface Exchange {
  /** one attempt; rejects with a Retryable to be tried again, or with the signal's reason at the deadline */
  attempt(session: H2Session, options: CallOptions): Promise<Answer>;
  /** whether -retry_on may send again a request that got this answer */
  retryable(answer: Answer): boolean;
  outcome(answer: Answer): Outcome;
  /** what every result of the request carries besides its outcome (a stream's messages) */
  extra(): Pick<RequestResult, 'stream'>;
  /** the outcome of a request the deadline ended after its answer had begun (a stream cut short), if it had */
  cut?(deadlineWords: string): Outcome | undefined;
}

export interface RunHooks {
  /** each request's result as it ends (in the order they end) */
  onResult?: (result: RequestResult) => void;
  /** -v lines */
  log?: (line: string) => void;
  random?: () => number;
  /** each request's exchange (default: the unary call that options say) */
  exchange?: (index: number) => Exchange;
  /** -keepalive: keeps each new connection alive (h2/keepalive.ts) */
  keepalive?: (session: H2Session) => void;
}

/** Marks the abort at a request's deadline. */
class DeadlineReached extends Error {
  override name = 'DeadlineReached';
}

export function methodPath(options: Pick<ClientOptions, 'call' | 'stream'>): string {
  if (options.stream) return options.stream.kind === 'server' ? SAY_HELLO_STREAM_PATH : SAY_HELLO_BIDI_PATH;
  return options.call.kind === 'health' ? HEALTH_CHECK_PATH : SAY_HELLO_PATH;
}

/** The unary call the options say: SayHello or Health/Check. */
function unaryExchange(options: ClientOptions): Exchange {
  const request: UnaryRequest = {
    path: methodPath(options),
    authority: options.authority,
    message: options.call.kind === 'health' ? encodeHealthCheckRequest(options.call) : encodeHelloRequest(options.call),
    metadata: options.metadata,
    userAgent: USER_AGENT,
  };
  return {
    attempt: (session, call) => unaryCall(session, request, call),
    retryable: () => true,
    outcome: (answer) => fromAnswer(answer, options),
    extra: () => ({}),
  };
}

/** Runs every request; the results are in request order. */
export async function runRequests(options: ClientOptions, hooks: RunHooks = {}): Promise<RequestResult[]> {
  const connections = Array.from({ length: options.connections ?? 1 }, () => new Connection(options.target, options.tls, hooks.log, hooks.keepalive));
  let exchangeFor = hooks.exchange;
  if (!exchangeFor) {
    const unary = unaryExchange(options);
    exchangeFor = () => unary;
  }
  const results: RequestResult[] = new Array<RequestResult>(options.count);
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < options.count) {
      const i = next++;
      const wait = started + i * options.intervalMs - performance.now();
      if (wait > 0) await sleep(wait);
      const result = await oneRequest(i + 1, options, connections[i % connections.length]!, exchangeFor(i + 1), hooks);
      results[i] = result;
      hooks.onResult?.(result);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(options.concurrency, options.count) }, worker));
  } finally {
    for (const connection of connections) connection.close();
  }
  return results;
}

async function oneRequest(index: number, options: ClientOptions, connection: Connection, exchange: Exchange, hooks: RunHooks): Promise<RequestResult> {
  const start = new Date();
  const t0 = performance.now();
  const deadline = t0 + options.timeoutMs;
  const controller = new AbortController();
  const cancelTimer = afterLongDelay(options.timeoutMs, () => controller.abort(new DeadlineReached()));
  const tag = options.count > 1 ? `request ${index}: ` : '';
  const log = hooks.log;
  let attempts = 0;
  let phase = 'connecting' as 'connecting' | 'waiting for the answer' | 'backing off'; // set by the attempts
  let lastFailure: string | undefined;
  let reached = false;
  const context = { target: options.target, ...(options.tls ? { serverName: options.tls.serverName } : {}) };
  const after = `deadline exceeded after ${seconds(options.timeoutMs)}`;

  const finish = (outcome: Outcome): RequestResult => ({
    index,
    start,
    latencyMs: performance.now() - t0,
    attempts,
    reached,
    ...exchange.extra(),
    ...outcome,
  });

  try {
    const answer = await withRetries<Answer>(
      async (n) => {
        attempts = n;
        phase = 'connecting';
        const { session, ready } = await connection.open(controller.signal);
        // written at once, with the client's preface; until the server's SETTINGS come, a failure is the
        // connection's (its words, its retries), not the request's
        const answering = exchange.attempt(session, { deadline, signal: controller.signal, context });
        answering.catch(() => {});
        await ready;
        phase = 'waiting for the answer';
        reached = true; // the peer spoke HTTP/2 (its SETTINGS came)
        const a = await answering;
        if (a.code !== Code.OK && options.retryOn.has(a.code) && exchange.retryable(a)) throw new RetryableStatus(`${statusName(a.code)}: ${a.details}`);
        return a;
      },
      {
        backoff: options.backoff,
        signal: controller.signal,
        deadline,
        ...(hooks.random ? { random: hooks.random } : {}),
        onRetry: ({ attempt, error, waitMs, pastDeadline }) => {
          lastFailure = error.message;
          phase = 'backing off';
          const next = pastDeadline
            ? `the deadline (in ${seconds(deadline - performance.now())}) comes before the next attempt`
            : waitMs > 0
              ? `next attempt in ${seconds(waitMs)}`
              : 'retrying at once on a new connection';
          log?.(`${tag}attempt ${attempt} failed: ${error.message}; ${next}`);
        },
      },
    );
    const outcome = exchange.outcome(answer);
    // A failure read after the deadline (say a grpc-go server's own "UNKNOWN: context deadline exceeded" that
    // reached the event loop before our timer) ends a call that has run past the deadline the user gave.
    if (answer.code === Code.OK || performance.now() < deadline) return finish(outcome);
    return finish({ ...outcome, code: Code.DEADLINE_EXCEEDED, details: `${after}: the server answered ${statusName(answer.code)}: ${answer.details}` });
  } catch (err) {
    if (err instanceof ProtocolMismatch) {
      log?.(`${tag}${err.message}`);
      return finish({ code: Code.UNAVAILABLE, details: err.message, ok: false, answeredBy: 'none', envoy: false });
    }
    if (!(controller.signal.aborted && err === controller.signal.reason)) throw err;
    const cut = exchange.cut?.(after);
    if (cut) {
      log?.(`${tag}${cut.details}`);
      return finish(cut);
    }
    const earlier = lastFailure === undefined ? '' : `${attempts} attempt${attempts === 1 ? '' : 's'}, last failure: ${lastFailure}`;
    let details: string;
    if (phase === 'waiting for the answer') details = `${after}: no answer from the server yet${earlier ? ` (${earlier})` : ''}`;
    else if (phase === 'connecting' && lastFailure === undefined) details = `${after}: still connecting to ${options.target.address}`;
    else if (phase === 'connecting') details = `${after}: still connecting (${earlier})`;
    else details = `${after}: ${earlier}`;
    log?.(`${tag}${details}`);
    return finish({ code: Code.DEADLINE_EXCEEDED, details, ok: false, answeredBy: 'none', envoy: false });
  } finally {
    cancelTimer();
  }
}

/** Who answered, from what the answer carried. */
export function answeredBy(answer: Pick<Answer, 'hostname' | 'answered' | 'envoy' | 'attempt'>): Pick<RequestResult, 'hostname' | 'meshAttempt' | 'answeredBy' | 'envoy'> {
  const by: AnsweredBy = answer.hostname !== undefined ? 'server' : answer.answered ? 'other' : 'none';
  return {
    ...(answer.hostname === undefined ? {} : { hostname: answer.hostname }),
    ...(answer.attempt === undefined ? {} : { meshAttempt: answer.attempt }),
    answeredBy: by,
    envoy: answer.envoy,
  };
}

function fromAnswer(answer: Answer, options: ClientOptions): Outcome {
  const host = answeredBy(answer);
  if (answer.code !== Code.OK || !answer.message) return { code: answer.code, details: answer.details, ok: false, ...host };
  try {
    if (options.call.kind === 'health') {
      const { status } = decodeHealthCheckResponse(answer.message);
      return { code: Code.OK, details: '', message: servingStatusName(status), ok: status === SERVING, ...host };
    }
    return { code: Code.OK, details: '', message: decodeHelloReply(answer.message).message, ok: true, ...host };
  } catch (err) {
    const what = options.call.kind === 'health' ? 'HealthCheckResponse' : 'HelloReply';
    return { code: Code.INTERNAL, details: `cannot decode the ${what}: ${(err as Error).message}`, ok: false, ...host };
  }
}

/** 1s, 0.25s, 2.5s: as the flags are written. */
export function seconds(ms: number): string {
  return `${Number((Math.max(0, ms) / 1000).toFixed(3))}s`;
}
