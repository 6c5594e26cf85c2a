// What grpc-js answers in its HTTP/2 'stream' handler, before any call exists, sent by the front door
// instead, the same bytes: HTTP 415 for a content type that is not gRPC, and UNIMPLEMENTED for a method that
// no service has. Forwarded, such a stream could take the process down: when the client has already reset
// it, node:http2 destroys it before grpc-js' handler runs, and grpc-js' respond() on a destroyed stream throws
// (ERR_HTTP2_INVALID_STREAM) out of an event handler. For its known methods grpc-js checks first.
import type { HeaderList } from '../h2/hpack.ts';
import { httpDate } from './fast-path.ts';

/** grpc-js' own answer to these headers, when it gives one before any call starts; undefined otherwise. */
export function refusal(headers: Readonly<Record<string, string>>, methodPaths: ReadonlySet<string>): HeaderList | undefined {
  const contentType = headers['content-type'];
  if (contentType === undefined || !contentType.startsWith('application/grpc')) {
    return [
      [':status', '415'],
      ['date', httpDate()],
    ];
  }
  const path = headers[':path'] ?? '';
  if (methodPaths.has(path)) return undefined;
  // (grpc-js sends this message as it is, not percent-encoded)
  return [
    [':status', '200'],
    ['content-type', 'application/grpc+proto'],
    ['grpc-status', '12'],
    ['grpc-message', `The server does not implement the method ${path}`],
    ['date', httpDate()],
  ];
}
