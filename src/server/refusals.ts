// What the front door answers itself, before any call exists, instead of handing the stream to grpc-js:
// UNIMPLEMENTED for a method no service has (the bytes grpc-js sends), health over plain HTTP (GET /healthz
// and /readyz, http-health.ts), and HTTP 415 for any other request that is not gRPC at all. Forwarded, such a stream could take the process down: when the client has already reset
// it, node:http2 destroys it before grpc-js' handler runs, and grpc-js' respond() on a destroyed stream throws
// (ERR_HTTP2_INVALID_STREAM) out of an event handler. For its known methods grpc-js checks first.
//
// The 415 differs from grpc-js' on purpose: it says in a body what this port is, for the person who pointed
// curl or a browser at it, and it ends only with the request (which is still checked as HTTP/2 asks until
// then, content-length and flow control included).
import type { HeaderList } from '../h2/hpack.ts';
import { httpDate } from './http-date.ts';
import { healthAnswer } from './http-health.ts';

export interface Refusal {
  fields: HeaderList;
  /** the answer's body; the answer then ends with the request */
  body?: Buffer;
}

export const NOT_GRPC = Buffer.from('This port serves gRPC (HTTP/2, content-type application/grpc): use a gRPC client, such as this image\'s /client.\n');

/**
 * The answer to these headers, when the front door gives one before any call starts; undefined otherwise.
 * `draining`: shutdown has begun (health NOT_SERVING), for GET /readyz.
 */
export function refusal(headers: Readonly<Record<string, string>>, methodPaths: ReadonlySet<string>, draining: () => boolean): Refusal | undefined {
  const contentType = headers['content-type'];
  if (contentType === undefined || !contentType.startsWith('application/grpc')) {
    const method = headers[':method'] ?? '';
    const health = healthAnswer(method, headers[':path'] ?? '', draining);
    if (health) {
      return {
        fields: [
          [':status', String(health.status)],
          ['content-type', 'text/plain; charset=utf-8'],
          ['content-length', String(health.body.length)],
          ['date', httpDate()],
        ],
        ...(method === 'HEAD' ? {} : { body: health.body }),
      };
    }
    return {
      fields: [
        [':status', '415'],
        ['content-type', 'text/plain; charset=utf-8'],
        ['date', httpDate()],
      ],
      body: NOT_GRPC,
    };
  }
  const path = headers[':path'] ?? '';
  if (methodPaths.has(path)) return undefined;
  // (grpc-js sends this message as it is, not percent-encoded)
  return {
    fields: [
      [':status', '200'],
      ['content-type', 'application/grpc+proto'],
      ['grpc-status', '12'],
      ['grpc-message', `The server does not implement the method ${path}`],
      ['date', httpDate()],
    ],
  };
}
