// The method paths both programs and the tooling name, once. Nothing to import: the client uses these
// without loading the proto (src/proto.ts re-exports them for the server).
export const GREETER_SERVICE = 'helloworld.Greeter';
/** As it appears on the wire, in Istio's access logs and VirtualService uri matches. */
export const SAY_HELLO_PATH = '/helloworld.Greeter/SayHello';
export const HEALTH_CHECK_PATH = '/grpc.health.v1.Health/Check';
export const GREETER_STREAM_SERVICE = 'helloworld.GreeterStream';
export const SAY_HELLO_STREAM_PATH = '/helloworld.GreeterStream/SayHelloStream';
export const SAY_HELLO_BIDI_PATH = '/helloworld.GreeterStream/SayHelloBidi';
