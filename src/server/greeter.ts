// The Greeter service: SayHello answers "Hello <name>" after the planned delay (or fails as planned), and
// every answer carries the `hostname` metadata so a client sees which replica answered.
import { Metadata, status, type sendUnaryData, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { HelloReply, HelloRequest } from '../proto.ts';
import { afterDelay } from './delay.ts';
import { BadOverride, planRequest, type FaultOptions, type Plan } from './faults.ts';

/** The `hostname` metadata every answer carries. */
export function hostnameMetadata(hostname: string): Metadata {
  const metadata = new Metadata();
  metadata.set('hostname', hostname);
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
      const metadata = hostnameMetadata(hostname);
      let plan: Plan;
      try {
        plan = planRequest(options, headerOf(call.metadata));
      } catch (err) {
        if (!(err instanceof BadOverride)) throw err;
        callback({ code: status.INVALID_ARGUMENT, details: err.message, metadata });
        return;
      }
      const answer = () => {
        if (plan.fail) {
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
