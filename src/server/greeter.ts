// The Greeter service: SayHello answers "Hello <name>" after the planned delay (or fails as planned), and
// every answer carries the `hostname` metadata so a client sees which replica answered.
import { Metadata, status, type sendUnaryData, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { HelloReply, HelloRequest } from '../proto.ts';
import { afterDelay } from './delay.ts';
import { BadOverride, planRequest, type FaultOptions, type Plan } from './faults.ts';

export function greeterImplementation(options: FaultOptions, hostname: string): UntypedServiceImplementation {
  return {
    SayHello(call: ServerUnaryCall<HelloRequest, HelloReply>, callback: sendUnaryData<HelloReply>) {
      const metadata = new Metadata();
      metadata.set('hostname', hostname);
      let plan: Plan;
      try {
        plan = planRequest(options, (name) => {
          const [value] = call.metadata.get(name);
          return value === undefined ? undefined : String(value);
        });
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
