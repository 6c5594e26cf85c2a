// A grpc-js client for tests of the server: an independent gRPC implementation to check it against.
import { credentials, loadPackageDefinition, makeGenericClientConstructor, Metadata, type Client, type GrpcObject, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { greeterService, greeterStreamService, type HelloReply, type HelloStreamRequest } from '../../src/proto.ts';
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

const GreeterStream = makeGenericClientConstructor(greeterStreamService, 'GreeterStream');

export function greeterStreamClient(address: string): Client {
  return new GreeterStream(address, credentials.createInsecure());
}

export interface StreamAnswer {
  /** the replies, with performance.now() ms since the call started */
  replies: Array<{ message: string; at: number }>;
  headers?: Metadata;
  code: number;
  details: string;
  /** ms from the start to the status */
  ms: number;
}

interface StreamCall extends NodeJS.EventEmitter {
  write?(message: unknown): boolean;
  end?(): void;
}

function collect(call: StreamCall & { cancel(): void }, started: number, cancelAfter = Infinity): Promise<StreamAnswer> {
  return new Promise((resolve) => {
    const answer: StreamAnswer = { replies: [], code: -1, details: '', ms: 0 };
    call.on('metadata', (m: Metadata) => (answer.headers = m));
    call.on('data', (r: HelloReply) => {
      if (answer.replies.push({ message: r.message, at: performance.now() - started }) === cancelAfter) call.cancel();
    });
    call.on('error', () => {}); // the status says it
    call.on('status', (s: { code: number; details: string }) => {
      Object.assign(answer, { code: s.code, details: s.details, ms: performance.now() - started });
      resolve(answer);
    });
  });
}

const metadataOf = (entries: Record<string, string> = {}) => {
  const md = new Metadata();
  for (const [k, v] of Object.entries(entries)) md.set(k, v);
  return md;
};

export interface StreamCallOptions {
  metadata?: Record<string, string>;
  deadlineMs?: number;
  /** cancel the call once this many replies came */
  cancelAfter?: number;
}

/** SayHelloStream; resolves with what came and how it ended, never rejects. */
export function sayHelloStream(client: Client, request: HelloStreamRequest, options: StreamCallOptions = {}): Promise<StreamAnswer> {
  const method = greeterStreamService.SayHelloStream!;
  const started = performance.now();
  const call = client.makeServerStreamRequest(method.path, method.requestSerialize, (b) => method.responseDeserialize(b) as HelloReply, request, metadataOf(options.metadata), {
    deadline: Date.now() + (options.deadlineMs ?? 10_000),
  });
  return collect(call, started, options.cancelAfter);
}

/** SayHelloBidi: `names` sent `intervalMs` apart (the first at once), then the request side ends. */
export function sayHelloBidi(client: Client, names: string[], options: StreamCallOptions & { intervalMs?: number; keepOpen?: boolean } = {}): Promise<StreamAnswer> {
  const method = greeterStreamService.SayHelloBidi!;
  const started = performance.now();
  const call = client.makeBidiStreamRequest(method.path, method.requestSerialize, (b) => method.responseDeserialize(b) as HelloReply, metadataOf(options.metadata), {
    deadline: Date.now() + (options.deadlineMs ?? 10_000),
  });
  const answer = collect(call, started, options.cancelAfter);
  let timer: NodeJS.Timeout | undefined;
  const send = (i: number) => {
    if (i === names.length) return options.keepOpen ? undefined : call.end();
    call.write({ name: names[i] });
    timer = setTimeout(() => send(i + 1), options.intervalMs ?? 0);
  };
  send(0);
  return answer.finally(() => clearTimeout(timer));
}

/** A client of server reflection (grpc.reflection.v1), from the package's own .proto. */
export function reflectionClient(address: string): Client {
  const require = createRequire(import.meta.url);
  const dir = join(dirname(require.resolve('@grpc/reflection/package.json')), 'build/proto');
  const pkg = loadPackageDefinition(loadSync('grpc/reflection/v1/reflection.proto', { includeDirs: [dir], keepCase: true }));
  const v1 = (((pkg.grpc as GrpcObject).reflection as GrpcObject).v1 as GrpcObject).ServerReflection as ServiceClientConstructor;
  return new v1(address, credentials.createInsecure());
}

export interface ReflectionAnswer {
  list_services_response?: { service: Array<{ name: string }> };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
}

/** One reflection request on a stream of its own; rejects on an error status. */
export function reflect(client: Client, request: object): Promise<ReflectionAnswer> {
  return new Promise((resolve, reject) => {
    const stream = (client as Client & { ServerReflectionInfo(): NodeJS.ReadWriteStream }).ServerReflectionInfo();
    stream.on('data', resolve);
    stream.on('error', reject);
    stream.write(request as never);
    stream.end();
  });
}
