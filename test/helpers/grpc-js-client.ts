// A grpc-js client for tests of the server: an independent gRPC implementation to check it against.
import { credentials, makeGenericClientConstructor, Metadata, type Client, type ServiceError } from '@grpc/grpc-js';
import { greeterService, type HelloReply } from '../../src/proto.ts';
import { testCa } from '../../src/generated/test-pki.ts';

export interface ClientTls {
  ca?: Buffer;
  serverName?: string;
  cert?: Buffer;
  key?: Buffer;
}

const Greeter = makeGenericClientConstructor(greeterService, 'Greeter');

export function greeterClient(address: string, tls?: ClientTls): Client {
  const creds = tls
    ? credentials.createSsl(tls.ca ?? Buffer.from(testCa), tls.key ?? null, tls.cert ?? null)
    : credentials.createInsecure();
  const options = tls ? { 'grpc.ssl_target_name_override': tls.serverName ?? 'x.test.youtube.com' } : {};
  return new Greeter(address, creds, options);
}

export interface Answer {
  err: ServiceError | null;
  reply?: HelloReply;
  headers?: Metadata;
  trailers?: Metadata;
}

/** One SayHello; resolves with the error instead of rejecting, so tests can look at both. */
export function sayHello(
  client: Client,
  name: string,
  options: { deadlineMs?: number; metadata?: Record<string, string> } = {},
): Promise<Answer> {
  const md = new Metadata();
  for (const [k, v] of Object.entries(options.metadata ?? {})) md.set(k, v);
  return new Promise((resolve) => {
    const answer: Answer = { err: null };
    const call = client.makeUnaryRequest<{ name: string }, HelloReply>(
      '/helloworld.Greeter/SayHello',
      (m) => greeterService.SayHello!.requestSerialize(m),
      (b) => greeterService.SayHello!.responseDeserialize(b) as HelloReply,
      { name },
      md,
      { deadline: Date.now() + (options.deadlineMs ?? 5000) },
      (err, reply) => {
        answer.err = err;
        answer.reply = reply;
        resolve(answer);
      },
    );
    call.on('metadata', (m) => (answer.headers = m));
    call.on('status', (s) => (answer.trailers = s.metadata));
  });
}
