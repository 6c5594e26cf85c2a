// The Greeter service in grpc-js: SayHello answers as greeting.ts decides (for calls the fast path did not
// take), and every answer carries the `hostname` metadata so a client sees which replica answered.
import { Metadata, type sendUnaryData, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { HelloReply, HelloRequest } from '../proto.ts';
import { afterDelay } from './delay.ts';
import type { FaultOptions } from './faults.ts';
import { sayHello } from './greeting.ts';

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
      const { delayMs, message, fail } = sayHello(options, call.request.name, headerOf(call.metadata));
      const answer = () => {
        if (fail) return callback({ ...fail, metadata });
        call.sendMetadata(metadata);
        callback(null, { message });
      };
      if (delayMs <= 0) return answer();
      // A call whose deadline passes (or whose client goes away) is cancelled: stop waiting, answer nothing.
      call.once('cancelled', afterDelay(delayMs, answer));
    },
  };
}
