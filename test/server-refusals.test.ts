// What the front door refuses itself (src/server/refusals.ts) instead of forwarding it to grpc-js: a content
// type that is not gRPC, a method no service has. Each request goes to the server and to a bare grpc-js
// server on node:http2 with the same services, and the answers must be the same: HTTP status, headers (but
// the date), DATA, trailers; except that our 415 says in words what the port serves.
import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { ClientHttp2Session, OutgoingHttpHeaders } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { greeterService } from '../src/proto.ts';
import { grpcFrame, grpcHeaders, h2Session, helloRequest, rawRequest, type RawAnswer } from './helpers/raw-grpc.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

let ours: TestServer;
let bare: Server;
let oursSession: ClientHttp2Session;
let bareSession: ClientHttp2Session;

beforeAll(async () => {
  ours = await startTestServer();
  bare = new Server();
  bare.addService(greeterService, { SayHello: (_call: unknown, callback: (err: null, reply: { message: string }) => void) => callback(null, { message: 'Hello' }) });
  const port = await new Promise<number>((resolve, reject) =>
    bare.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  [oursSession, bareSession] = await Promise.all([h2Session(ours.address), h2Session(`127.0.0.1:${port}`)]);
});
afterAll(() => {
  for (const s of [oursSession, bareSession]) s?.destroy();
  ours?.forceShutdown();
  bare?.forceShutdown();
});

function seen(a: RawAnswer) {
  const { date, ...headers } = a.headers;
  return { hasDate: date !== undefined, httpStatus: a.httpStatus, headers, data: a.data.toString('hex'), trailers: { ...a.trailers }, timedOut: a.timedOut };
}

const requests: Array<[what: string, headers: OutgoingHttpHeaders]> = [
  ['an unknown method', grpcHeaders('/helloworld.Greeter/SayGoodbye')],
  ['an unknown service', grpcHeaders('/no.Such/Service')],
  ['a path that is not a gRPC path', grpcHeaders('/../../etc/passwd')],
  ['a path with a percent sign', grpcHeaders('/helloworld.Greeter/100%')],
  ['a content type that is not gRPC', grpcHeaders(undefined, { 'content-type': 'text/plain' })],
  ['no content type, GET', { ':method': 'GET', ':path': '/helloworld.Greeter/SayHello' }],
];

describe('what grpc-js refuses before a call starts, the front door refuses alike', () => {
  for (const [what, headers] of requests) {
    it(what, async () => {
      const body = [grpcFrame(helloRequest('x'))];
      const [a, b] = await Promise.all([rawRequest(oursSession, headers, body), rawRequest(bareSession, headers, body)]);
      if (b.httpStatus !== 415) {
        expect(seen(a)).toEqual(seen(b));
        expect(a.grpcStatus).toBe(12);
        return;
      }
      // not gRPC at all: the same status, and (unlike grpc-js) words for whoever sent it
      expect([a.httpStatus, a.headers['content-type'], a.timedOut]).toEqual([415, 'text/plain; charset=utf-8', false]);
      expect(a.data.toString()).toMatch(/^This port serves gRPC/);
    });
  }
});
