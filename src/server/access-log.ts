// One JSON line per RPC, with the fields an Envoy access log shows (start time, method path, peer,
// authority, user agent, gRPC status, duration), so the two can be read side by side. Also counts the
// unary RPCs in flight, which graceful shutdown and the tests read.
import { ServerInterceptingCall, type ServerInterceptor } from '@grpc/grpc-js';
import { statusName } from '../status.ts';

export interface AccessLogEntry {
  time: string;
  method: string;
  peer: string;
  authority: string;
  user_agent: string;
  code: number;
  status: string;
  details?: string;
  duration_ms: number;
}

export interface CallTracker {
  interceptor: ServerInterceptor;
  inFlight(): number;
}

/** `log` null: count calls, write nothing. */
export function trackCalls(log: ((entry: AccessLogEntry) => void) | null): CallTracker {
  let inFlight = 0;
  const interceptor: ServerInterceptor = (method, call) => {
    const started = performance.now();
    const time = new Date().toISOString();
    let userAgent = '';
    const counted = !method.requestStream && !method.responseStream;
    if (counted) inFlight++;
    let done = false;
    const finish = (code: number, details: string | undefined) => {
      if (done) return;
      done = true;
      if (counted) inFlight--;
      log?.({
        time,
        method: method.path,
        peer: call.getPeer(),
        authority: call.getHost(),
        user_agent: userAgent,
        code,
        status: statusName(code),
        ...(code !== 0 && details ? { details } : {}),
        duration_ms: Math.round((performance.now() - started) * 1000) / 1000,
      });
    };
    // grpc-js answers some calls itself, below the interceptors: a message over the receive limit
    // (RESOURCE_EXHAUSTED), one that does not decompress or deserialize or a malformed grpc-timeout
    // (INTERNAL), a passed deadline. It then reports them to the interceptors only as cancelled, so log the
    // status it really sent (`call` is grpc-js' own call object, whose internal answers go through this).
    const sendStatus = call.sendStatus.bind(call);
    call.sendStatus = (status) => {
      finish(status.code, status.details);
      sendStatus(status);
    };
    return new ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(metadata, mdNext) {
            userAgent = String(metadata.get('user-agent')[0] ?? '');
            mdNext(metadata);
          },
          onCancel() {
            // grpc-js ends the call itself when its deadline passes or the client goes away
            const deadline = call.getDeadline();
            const expired = (deadline instanceof Date ? deadline.getTime() : deadline) <= Date.now();
            finish(expired ? 4 : 1, expired ? 'deadline exceeded' : 'cancelled by the client');
          },
        });
      },
      sendStatus(status, next) {
        finish(status.code, status.details);
        next(status);
      },
    });
  };
  return { interceptor, inFlight: () => inFlight };
}

export function jsonLineWriter(write: (line: string) => void): (entry: AccessLogEntry) => void {
  return (entry) => write(`${JSON.stringify(entry)}\n`);
}
