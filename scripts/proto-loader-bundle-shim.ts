// Stands in for @grpc/proto-loader inside the bundles, for the libraries that load their own .proto files
// from node_modules at import time (grpc-health-check, @grpc/reflection): the same definitions, read from
// the descriptors compiled at build time, so the bundle needs no .proto files beside it.
import { loadFileDescriptorSetFromBuffer, type Options, type PackageDefinition } from '@grpc/proto-loader';
import { descriptorSets } from '../src/generated/descriptors.ts';

export * from '@grpc/proto-loader';

export function loadSync(filename: string | string[], options?: Options): PackageDefinition {
  const name = String(filename).replaceAll('\\', '/');
  const key = Object.keys(descriptorSets).find((k) => name === k || name.endsWith(`/${k}`));
  if (!key) throw new Error(`proto ${name} was not compiled into the bundle (scripts/gen-embedded.mjs)`);
  return loadFileDescriptorSetFromBuffer(Buffer.from(descriptorSets[key]!, 'base64'), options);
}
