// The Greeter service in grpc-js: SayHello answers as greeting.ts decides (for calls the fast path did not
// take), and every answer carries the `hostname` metadata so a client sees which replica answered.
import { Metadata, type sendUnaryData, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { HelloReply, HelloRequest } from '../proto.ts';
import { Code } from '../status.ts';
import { afterDelay } from './delay.ts';
import { ATTEMPT_HEADER, attemptFromHeader, crashDetails, type FaultOptions } from './faults.ts';
import { sayHello } from './greeting.ts';

/** The `hostname` metadata every answer carries. */
export function hostnameMetadata(hostname: string): Metadata {
  const metadata = new Metadata();
  metadata.set('hostname', hostname);
  return metadata;
}

/** SayHello's answer metadata: the hostname, and the attempt Envoy counted when the request carries one. */
export function replyMetadata(hostname: string, request: Metadata): Metadata {
  const metadata = hostnameMetadata(hostname);
  const attempt = attemptFromHeader(headerOf(request)(ATTEMPT_HEADER));
  if (attempt !== undefined) metadata.set('attempt', String(attempt));
  return metadata;
}

/** A request header's value as faults.ts asks for it: the first one, as grpc-js' metadata gives it. */
export function headerOf(metadata: Metadata): (name: string) => string | undefined {
  return (name) => {
    const [value] = metadata.get(name);
    return value === undefined ? undefined : String(value);
  };
}

export function greeterImplementation(options: FaultOptions, hostname: string): UntypedServiceImplementation {
  return {
    SayHello(call: ServerUnaryCall<HelloRequest, HelloReply>, callback: sendUnaryData<HelloReply>) {
      const metadata = replyMetadata(hostname, call.metadata);
      const greeting = sayHello(options, call.request.name, headerOf(call.metadata));
      if (greeting.end === 'hang') return; // grpc-js ends the call at its deadline, or when its client goes away
      const answer = () => {
        if (greeting.fail) return callback({ ...greeting.fail, metadata });
        if (greeting.end !== undefined) {
          if (greeting.end !== 'crash') return;
          // the status is recorded (access-log.ts logs it as it goes to grpc-js) but never reaches the client:
          // the crash ends every connection in this same turn of the event loop
          callback({ code: Code.UNAVAILABLE, details: crashDetails(greeting.why), metadata });
          return options.crash?.(greeting.why);
        }
        call.sendMetadata(metadata);
        callback(null, { message: greeting.message });
      };
      if (greeting.delayMs <= 0) return answer();
      // A call whose deadline passes (or whose client goes away) is cancelled: stop waiting, answer nothing.
      call.once('cancelled', afterDelay(greeting.delayMs, answer));
    },
  };
}
