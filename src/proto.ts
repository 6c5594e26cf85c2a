// The helloworld package (Greeter and GreeterStream), loaded once for the server (and the tests' grpc-js clients)
// from the descriptor compiled at build time (scripts/gen-embedded.mjs), so nothing parses .proto text at run
// time. The client does not load it: it encodes its messages itself (src/client/codec.ts).
import { loadFileDescriptorSetFromBuffer, type PackageDefinition } from '@grpc/proto-loader';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { descriptorSets } from './generated/descriptors.ts';
import { GREETER_SERVICE, GREETER_STREAM_SERVICE } from './rpc-names.ts';

export { GREETER_SERVICE, GREETER_STREAM_SERVICE, SAY_HELLO_PATH } from './rpc-names.ts';

export interface HelloRequest {
  name: string;
}
export interface HelloReply {
  message: string;
}
export interface HelloStreamRequest {
  name: string;
  count: number;
  interval_ms: number;
}

const load = (file: string): PackageDefinition =>
  loadFileDescriptorSetFromBuffer(Buffer.from(descriptorSets[file]!, 'base64'), { keepCase: true, defaults: true });

/** helloworld_stream.proto and the helloworld.proto it imports: one package, both services. */
export const helloworldPackage = load('helloworld_stream.proto');

/** What server reflection describes: the Greeter, GreeterStream and the standard health service. */
export function reflectedPackages(): PackageDefinition {
  return { ...helloworldPackage, ...load('health/v1/health.proto') };
}

export const greeterService = helloworldPackage[GREETER_SERVICE] as ServiceDefinition;
export const greeterStreamService = helloworldPackage[GREETER_STREAM_SERVICE] as ServiceDefinition;
