// Issue 7, client under bad input: dist/client.cjs given every kind of bad flag, file, certificate, address
// and server answers with one clear line on stderr, the documented exit code, within its deadline — no
// hang, no stack trace. One table: each row its expected message fragment and exit code.
import { once } from 'node:events';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createH2Server, type Http2Server } from 'node:http2';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { badPki, type BadPki } from './helpers/bad-pki.ts';
import { cleanEnv, root, runClient, spawnServer, type SpawnedServer } from './helpers/spawn.ts';

const certs = (name: string) => join(root, 'certs', name);
const tmp = mkdtempSync(join(tmpdir(), 'client-bad-input-'));
const file = (name: string, content: string) => {
  const path = join(tmp, name);
  writeFileSync(path, content);
  return path;
};
const unreadable = file('unreadable.pem', 'x');
chmodSync(unreadable, 0o000);
const canChmod = spawnSync('cat', [unreadable], { stdio: 'ignore' }).status !== 0; // root reads anything

interface Targets {
  plain: string;
  tls: string;
  mtls: string;
  expired: string;
  wrongName: string;
  closed: string;
  http1: string;
  h2NotFound: string;
  h2Html: string;
  silent: string;
  slam: string;
  pki: BadPki;
}
let t: Targets;
const servers: SpawnedServer[] = [];
const others: (HttpServer | Http2Server | NetServer)[] = [];
const sockets = new Set<Socket>();

async function listen<S extends HttpServer | Http2Server | NetServer>(server: S): Promise<string> {
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  others.push(server);
  return `127.0.0.1:${(server.address() as { port: number }).port}`;
}

beforeAll(async () => {
  const pki = badPki();
  const [plain, tls, mtls, expired, wrongName] = await Promise.all([
    spawnServer(['-access_log=false']),
    spawnServer(['-tls', '-access_log=false']),
    spawnServer(['-tls', '-client_ca_file', certs('ca.pem'), '-access_log=false']),
    spawnServer(['-tls', '-cert_file', pki.expiredServer.cert, '-key_file', pki.expiredServer.key, '-access_log=false']),
    spawnServer(['-tls', '-cert_file', pki.wrongNameServer.cert, '-key_file', pki.wrongNameServer.key, '-access_log=false']),
  ]);
  servers.push(plain, tls, mtls, expired, wrongName);

  const closedServer = createNetServer().listen(0, '127.0.0.1');
  await once(closedServer, 'listening');
  const closed = `127.0.0.1:${(closedServer.address() as { port: number }).port}`;
  closedServer.close();

  const http1 = await listen(createHttpServer((_req, res) => res.end('<html>hello from HTTP/1.1</html>')));
  const h2NotFound = await listen(
    createH2Server().on('stream', (stream) => {
      stream.respond({ ':status': 404, 'content-type': 'text/html' });
      stream.end('<html>not found</html>');
    }),
  );
  const h2Html = await listen(
    createH2Server().on('stream', (stream) => {
      stream.respond({ ':status': 200, 'content-type': 'text/html; charset=utf-8' });
      stream.end('<!doctype html><title>a web server</title>');
    }),
  );
  const silent = await listen(createNetServer(() => {})); // accepts, never answers
  const slam = await listen(createNetServer((s) => s.destroy())); // accepts, hangs up at once
  t = { plain: plain.address, tls: tls.address, mtls: mtls.address, expired: expired.address, wrongName: wrongName.address, closed, http1, h2NotFound, h2Html, silent, slam, pki };
});

afterAll(() => {
  for (const s of servers) s.child.kill('SIGKILL');
  for (const s of sockets) s.destroy();
  for (const s of others) s.close();
});

const USAGE = 2;
const DEADLINE_EXCEEDED = 64 + 4;
const UNIMPLEMENTED = 64 + 12;
const UNKNOWN = 64 + 2;
/** a server that speaks something else (TLS, plaintext, HTTP/1): not retried */
const UNAVAILABLE = 64 + 14;
const TIMEOUT = ['-timeout', '1.5'];
/** a TLS handshake that fails, on a busy machine with several clients starting at once: the client retries until then */
const TLS_TIMEOUT = ['-timeout', '3'];

type Row = [name: string, args: (t: Targets) => string[], code: number, message: RegExp];

const flags: Row[] = [
  ['unknown flag', () => ['-bogus'], USAGE, /^client: flag provided but not defined: -bogus$/],
  ['-timeout not a number', () => ['-timeout', 'soon'], USAGE, /invalid value "soon" for -timeout: want a duration in seconds/],
  ['-timeout 0', () => ['-timeout', '0'], USAGE, /-timeout: want more than 0 seconds/],
  ['-timeout negative', () => ['-timeout', '-1'], USAGE, /-timeout/],
  ['-timeout with a bad unit', () => ['-timeout', '5 parsecs'], USAGE, /invalid value "5 parsecs" for -timeout/],
  ['-count 0', () => ['-count', '0'], USAGE, /invalid value "0" for -count: want 1 to/],
  ['-count fractional', () => ['-count', '1.5'], USAGE, /invalid value "1.5" for -count: want a whole number/],
  ['-count empty', () => ['-count='], USAGE, /invalid value "" for -count/],
  ['-timeout without its value', () => ['-timeout'], USAGE, /^client: flag needs an argument: -timeout$/],
  ['-interval negative', () => ['-interval', '-0.1'], USAGE, /-interval/],
  ['-concurrency 0', () => ['-concurrency', '0'], USAGE, /invalid value "0" for -concurrency/],
  ['-tls=maybe', () => ['-tls=maybe'], USAGE, /invalid boolean value "maybe" for -tls/],
  ['-server_addr without a port', () => ['-server_addr', '127.0.0.1'], USAGE, /invalid -server_addr "127.0.0.1": missing port/],
  ['-server_addr port out of range', () => ['-server_addr', 'localhost:99999'], USAGE, /port "99999" is not 1 to 65535/],
  ['-server_addr port 0', () => ['-server_addr', 'localhost:0'], USAGE, /port "0" is not 1 to 65535/],
  ['-server_addr a URL', () => ['-server_addr', 'http://localhost:10000'], USAGE, /no scheme, no path/],
  ['-server_addr IPv6 without brackets', () => ['-server_addr', '::1:10000'], USAGE, /an IPv6 address goes in brackets/],
  ['-server_addr empty', () => ['-server_addr', ''], USAGE, /invalid -server_addr "": missing port/],
  ['-server_addr with a space', () => ['-server_addr', 'local host:10000'], USAGE, /invalid -server_addr "local host:10000"/],
  ['-H without a colon', () => ['-H', 'end-user jason'], USAGE, /-H "end-user jason": want 'key: value'/],
  ['-H a pseudo-header', () => ['-H', ':path: /x'], USAGE, /pseudo-headers are not metadata/],
  ['-H a grpc-* header', () => ['-H', 'grpc-timeout: 1S'], USAGE, /grpc-\* headers are reserved/],
  ['-H a non-ASCII value', () => ['-H', 'x-name: Zoë'], USAGE, /a value is printable ASCII/],
  ['-H a -bin key with a non-base64 value', () => ['-H', 'trace-bin: !!!'], USAGE, /a -bin key takes a base64 value/],
  ['-retry_on an unknown code', () => ['-retry_on', 'SOMETIMES'], USAGE, /invalid value "SOMETIMES" for -retry_on/],
  ['-retry_on OK', () => ['-retry_on', 'OK'], USAGE, /OK is not a failure/],
  ['-expect_code an unknown code', () => ['-expect_code', '99'], USAGE, /invalid value "99" for -expect_code/],
  ['-backoff_multiplier below 1', () => ['-backoff_multiplier', '0.5'], USAGE, /-backoff_multiplier: want 1 to 100/],
  ['-backoff_jitter above 1', () => ['-backoff_jitter', '2'], USAGE, /-backoff_jitter: want 0 to 1/],
  ['two names', () => ['alice', 'bob'], USAGE, /unexpected argument "bob"/],
  ['-service without -health', () => ['-service', 'x'], USAGE, /-service needs -health/],
  ['-ca_file without -tls', () => ['-ca_file', certs('ca.pem')], USAGE, /need -tls/],
  ['-tls with an empty -server_host_override', () => ['-tls', '-server_host_override', ''], USAGE, /-server_host_override must not be empty/],
  ['-authority with a space', () => ['-authority', 'a b'], USAGE, /invalid value "a b" for -authority/],
  ['-authority beyond ASCII (not one octet a char)', () => ['-authority', '✓.example'], USAGE, /invalid value "✓.example" for -authority: want host\[:port\] in ASCII/],
  ['-server_host_override beyond ASCII, with -tls', () => ['-tls', '-server_host_override', 'ü.example'], USAGE, /invalid value "ü.example" for -server_host_override/],
  ['a bad value from the environment names the variable', () => ['-timeout', '1'], USAGE, /HELLO_CLIENT_COUNT/], // env set below
];

const files: Row[] = [
  ['-ca_file missing', () => ['-tls', '-ca_file', '/nonexistent/ca.pem'], USAGE, /^client: cannot read -ca_file \/nonexistent\/ca.pem: no such file$/],
  ['-ca_file a directory', () => ['-tls', '-ca_file', tmp], USAGE, /cannot read -ca_file .*: is a directory/],
  ['-ca_file empty', () => ['-tls', '-ca_file', file('empty.pem', '')], USAGE, /is not a PEM certificate/],
  ['-ca_file not PEM', () => ['-tls', '-ca_file', file('notes.txt', 'just some text\n')], USAGE, /is not a PEM certificate/],
  ['-ca_file a PEM block that is not a certificate', () => ['-tls', '-ca_file', file('bad-block.pem', '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n')], USAGE, /is not a PEM certificate/],
  ['-ca_file a private key', () => ['-tls', '-ca_file', certs('client-key.pem')], USAGE, /is not a PEM certificate/],
  ['-cert_file without -key_file', () => ['-tls', '-cert_file', certs('client.pem')], USAGE, /-cert_file and -key_file go together/],
  ['-cert_file missing', () => ['-tls', '-cert_file', '/nonexistent.pem', '-key_file', certs('client-key.pem')], USAGE, /cannot read -cert_file \/nonexistent.pem: no such file/],
  ['-key_file not PEM', () => ['-tls', '-cert_file', certs('client.pem'), '-key_file', file('junk.key', 'junk')], USAGE, /-key_file .* is not a PEM private key/],
  ['-key_file not the certificate\'s key', () => ['-tls', '-cert_file', certs('client.pem'), '-key_file', certs('server-key.pem')], USAGE, /do not match/],
  ...(canChmod ? ([['-ca_file unreadable', () => ['-tls', '-ca_file', unreadable], USAGE, /cannot read -ca_file .*: permission denied/]] as Row[]) : []),
];

const network: Row[] = [
  ['closed port', (t) => ['-server_addr', t.closed, ...TIMEOUT], DEADLINE_EXCEEDED, /^could not greet: DEADLINE_EXCEEDED: deadline exceeded after 1.5s: \d attempts?, last failure: connection refused \(127.0.0.1:\d+\)/],
  ['unresolvable host (.invalid)', () => ['-server_addr', 'no-such-host.invalid:10000', ...TIMEOUT], DEADLINE_EXCEEDED, /last failure: cannot resolve host no-such-host.invalid/],
  ['a server that accepts and never answers', (t) => ['-server_addr', t.silent, ...TIMEOUT], DEADLINE_EXCEEDED, /deadline exceeded after 1.5s/],
  ['a server that hangs up at once', (t) => ['-server_addr', t.slam, ...TIMEOUT], DEADLINE_EXCEEDED, /deadline exceeded after 1.5s: \d attempts?, last failure: /],
  ['plaintext client, TLS server', (t) => ['-server_addr', t.tls, ...TIMEOUT], UNAVAILABLE, /server speaks TLS\? try -tls/],
  ['TLS client, plaintext server', (t) => ['-server_addr', t.plain, '-tls', ...TIMEOUT], UNAVAILABLE, /server does not speak TLS\? try without -tls/],
  ['wrong CA', (t) => ['-server_addr', t.tls, '-tls', '-ca_file', t.pki.otherCa, ...TLS_TIMEOUT], DEADLINE_EXCEEDED, /server certificate signed by unknown authority \(try -ca_file\)/],
  ['expired server certificate', (t) => ['-server_addr', t.expired, '-tls', '-ca_file', certs('ca.pem'), ...TLS_TIMEOUT], DEADLINE_EXCEEDED, /server certificate has expired/],
  ['server certificate for another name', (t) => ['-server_addr', t.wrongName, '-tls', ...TLS_TIMEOUT], DEADLINE_EXCEEDED, /server certificate is not valid for "x.test.youtube.com" \(it is for DNS:wrong-name.invalid\)/],
  ['-server_host_override not in the certificate', (t) => ['-server_addr', t.tls, '-tls', '-server_host_override', 'other.example', ...TLS_TIMEOUT], DEADLINE_EXCEEDED, /not valid for "other.example".*set -server_host_override/],
  ['mTLS server, no client certificate', (t) => ['-server_addr', t.mtls, '-tls', ...TLS_TIMEOUT], DEADLINE_EXCEEDED, /server requires a client certificate \(mTLS\): try -cert_file and -key_file/],
  ['mTLS server, client certificate from another CA', (t) => ['-server_addr', t.mtls, '-tls', '-cert_file', t.pki.wrongCaClient.cert, '-key_file', t.pki.wrongCaClient.key, ...TLS_TIMEOUT], DEADLINE_EXCEEDED, /the server closed the connection after the TLS handshake \(127.0.0.1:\d+\): it does not accept this client certificate\?/],
  ['mTLS server, self-signed client certificate', (t) => ['-server_addr', t.mtls, '-tls', '-cert_file', t.pki.selfSignedClient.cert, '-key_file', t.pki.selfSignedClient.key, ...TLS_TIMEOUT], DEADLINE_EXCEEDED, /the server closed the connection after the TLS handshake \(127.0.0.1:\d+\): it does not accept this client certificate\?/],
  ['an HTTP/1.1 server (node:http)', (t) => ['-server_addr', t.http1, ...TIMEOUT], UNAVAILABLE, /the server speaks HTTP\/1.1, not HTTP\/2: not a gRPC server\?/],
  ['an HTTP/2 server answering 404 (text/html)', (t) => ['-server_addr', t.h2NotFound, ...TIMEOUT], UNIMPLEMENTED, /^could not greet: UNIMPLEMENTED: the server answered HTTP 404 \(text\/html\) without a gRPC status/],
  ['an HTTP/2 server answering an HTML page', (t) => ['-server_addr', t.h2Html, ...TIMEOUT], UNKNOWN, /^could not greet: UNKNOWN: the server answered HTTP 200 \(text\/html; charset=utf-8\), not application\/grpc: not a gRPC server\?/],
];

const envFor: Record<string, NodeJS.ProcessEnv> = { 'a bad value from the environment names the variable': { HELLO_CLIENT_COUNT: 'many' } };
const outcomes: { name: string; code: number | null; ms: number }[] = [];

describe.concurrent('client under bad input: one line on stderr, the documented exit code, within the deadline', () => {
  for (const [group, rows, limitMs] of [['flags', flags, 5000], ['files', files, 5000], ['network and servers', network, 3000 + 4000]] as const) {
    describe(group, () => {
      for (const [name, args, code, message] of rows) {
        it(name, async () => {
          const env = envFor[name] ? cleanEnv(envFor[name]) : undefined;
          const r = await runClient(args(t), { timeoutMs: 20_000, ...(env ? { env } : {}) });
          outcomes.push({ name, code: r.code, ms: Math.round(r.ms) });
          expect(r.signal, 'killed: it hung').toBeNull();
          expect(r.code, r.stderr).toBe(code);
          const lines = r.stderr.split('\n').filter(Boolean);
          expect(lines, r.stderr).toHaveLength(1);
          expect(lines[0]).toMatch(message);
          expect(r.stderr).not.toMatch(/\n\s+at |Error: |node:internal/);
          expect(r.stdout).toBe('');
          expect(r.ms).toBeLessThan(limitMs);
        });
      }
    });
  }
});

afterAll(() => {
  const byCode = outcomes.reduce<Record<string, number>>((m, o) => ((m[String(o.code)] = (m[String(o.code)] ?? 0) + 1), m), {});
  process.stdout.write(`reliability-client: ${outcomes.length} bad inputs, exit codes ${JSON.stringify(byCode)}, slowest ${Math.max(...outcomes.map((o) => o.ms))} ms\n`);
});
