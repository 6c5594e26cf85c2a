// The Greeter service: SayHello answers "Hello <name>" after the planned delay (or fails as planned), and
// every answer carries the `hostname` metadata so a client sees which replica answered.
import { Metadata, status, type sendUnaryData, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { HelloReply, HelloRequest } from '../proto.ts';
import { afterDelay } from './delay.ts';
import { ATTEMPT_HEADER, attemptFromHeader, BadOverride, crashDetails, planRequest, type FaultOptions, type Plan } from './faults.ts';

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
      let plan: Plan;
      try {
        plan = planRequest(options, headerOf(call.metadata));
      } catch (err) {
        if (!(err instanceof BadOverride)) throw err;
        callback({ code: status.INVALID_ARGUMENT, details: err.message, metadata });
        return;
      }
      if (plan.end === 'hang') return; // grpc-js ends the call at its deadline, or when its client goes away
      const answer = () => {
        if (plan.end === 'crash') {
          // the status is recorded (access-log.ts logs it as it goes to grpc-js) but never reaches the client:
          // the crash ends every connection in this same turn of the event loop
          const why = plan.endWhy ?? 'crash';
          callback({ code: status.UNAVAILABLE, details: crashDetails(why), metadata });
          options.crash?.(why);
        } else if (plan.fail) {
          callback({ code: plan.fail.code, details: plan.fail.details, metadata });
        } else {
          call.sendMetadata(metadata);
          callback(null, { message: `Hello ${call.request.name}` });
        }
      };
      if (plan.delayMs <= 0) return answer();
      // A call whose deadline passes (or whose client goes away) is cancelled: stop waiting, answer nothing.
      call.once('cancelled', afterDelay(plan.delayMs, answer));
    },
  };
}
