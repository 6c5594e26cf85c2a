// The Greeter proto, loaded once for both programs from the descriptor compiled at build time
// (scripts/gen-embedded.mjs), so nothing parses .proto text at run time.
import { loadFileDescriptorSetFromBuffer, type PackageDefinition } from '@grpc/proto-loader';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { descriptorSets } from './generated/descriptors.ts';

export const GREETER_SERVICE = 'helloworld.Greeter';
export const SAY_HELLO_PATH = '/helloworld.Greeter/SayHello';

export interface HelloRequest {
  name: string;
}
export interface HelloReply {
  message: string;
}

export const helloworldPackage: PackageDefinition = loadFileDescriptorSetFromBuffer(
  Buffer.from(descriptorSets['helloworld.proto']!, 'base64'),
  { keepCase: true, defaults: true },
);

export const greeterService = helloworldPackage[GREETER_SERVICE] as ServiceDefinition;
