// The only place the server reaches below grpc-js' public API, for the access log (access-log.ts). Both reaches
// depend on how grpc-js is built inside, which is why package.json pins it to one exact version: check them
// (test/reliability-server.test.ts reads the access log of its own answers; test/server-fast-path.test.ts
// compares the fast path's bytes with its answers) before moving it.
//
// 1. grpc-js answers some calls itself, below the interceptors: a message over the receive limit
//    (RESOURCE_EXHAUSTED), one that does not decompress or deserialize or a malformed grpc-timeout (INTERNAL),
//    a passed deadline. It tells the interceptors only "cancelled", so the status it really sent is read off
//    its base call object, whose own answers all go out through its sendStatus() method.
// 2. An interceptor's public type asks for grpc-js' ServerInterceptingCall class, whose private fields no
//    other object can have; grpc-js itself needs only the ServerInterceptingCallInterface of what it gets
//    back. The access log returns one small delegating object per call instead of that class (closures,
//    queues and listener objects per call), since it runs for every forwarded RPC.
import type { ServerInterceptingCall, ServerInterceptingCallInterface, ServerInterceptor, ServerMethodDefinition } from '@grpc/grpc-js';

/** What start() gets (grpc-js does not export this type by name). */
export type InterceptingServerListener = Parameters<ServerInterceptingCallInterface['start']>[0];
/** What sendStatus() gets (likewise). */
export type PartialStatusObject = Parameters<ServerInterceptingCallInterface['sendStatus']>[0];

/** Calls `onStatus` with every status the call sends, grpc-js' own answers included (1. above). */
export function onStatusSent(call: ServerInterceptingCallInterface, onStatus: (status: PartialStatusObject) => void): void {
  const sendStatus = call.sendStatus;
  call.sendStatus = (status) => {
    onStatus(status);
    sendStatus.call(call, status);
  };
}

/** An interceptor that wraps each call in an object of its own making (2. above). */
export function callWrapper(wrap: (method: ServerMethodDefinition<unknown, unknown>, call: ServerInterceptingCallInterface) => ServerInterceptingCallInterface): ServerInterceptor {
  return (method, call) => wrap(method, call) as unknown as ServerInterceptingCall;
}
