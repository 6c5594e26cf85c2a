// The client's user-agent, as gRPC libraries write theirs (`grpc-go/1.64.0`): the server's access log and
// Envoy's show which client called.
import pkg from '../../package.json' with { type: 'json' };

export const CLIENT_VERSION: string = pkg.version;
export const USER_AGENT = `grpc-helloworld-client/${CLIENT_VERSION}`;
