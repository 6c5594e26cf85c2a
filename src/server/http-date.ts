// The `date` header of every answer the server writes itself (the fast path, the front door's refusals, HTTP/1.1
// health): node:http2 adds one to every response grpc-js sends, and the fast path's answers match those byte
// for byte. Formatted once a second.
let dateSecond = -1;
let dateValue = '';

export function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateValue = new Date(now).toUTCString();
  }
  return dateValue;
}
