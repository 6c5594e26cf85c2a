// Issue 7, security: dist/server.js -tls refuses TLS 1.0 and 1.1 (the server's own "protocol version" alert,
// not the client declining to ask), serves 1.2 and 1.3 with ALPN h2; with -client_ca_file it refuses a TLS
// connection without a client certificate, with a self-signed one and with one from another CA, before any
// gRPC is exchanged. The test PKI says what it is.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { badPki } from './helpers/bad-pki.ts';
import { greeterClient, sayHello } from './helpers/grpc-js-client.ts';
import { grpcFrame, grpcHeaders, helloRequest, rawRequest, splitAddress } from './helpers/raw-grpc.ts';
import { root, spawnServer, type SpawnedServer } from './helpers/spawn.ts';

const certs = (name: string) => `${root}certs/${name}`;
const ca = readFileSync(certs('ca.pem'));

let tls: SpawnedServer;
let mtls: SpawnedServer;
beforeAll(async () => {
  [tls, mtls] = await Promise.all([
    spawnServer(['-tls', '-access_log=false']),
    spawnServer(['-tls', '-client_ca_file', certs('ca.pem')]),
  ]);
});
afterAll(() => {
  for (const s of [tls, mtls]) s?.child.kill('SIGKILL');
});

interface Handshake {
  ok: boolean;
  protocol?: string | null;
  alpn?: string | false | null;
  error?: string;
}

function handshake(address: string, options: ConnectionOptions): Promise<Handshake> {
  const [host, port] = splitAddress(address);
  return new Promise((resolve) => {
    const socket = tlsConnect({ host, port, ca, servername: 'localhost', ALPNProtocols: ['h2'], ...options });
    const timer = setTimeout(() => finish({ ok: false, error: 'timeout' }), 5000);
    function finish(h: Handshake) {
      clearTimeout(timer);
      socket.destroy();
      resolve(h);
    }
    socket.on('secureConnect', () => finish({ ok: true, protocol: socket.getProtocol(), alpn: socket.alpnProtocol }));
    socket.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, error: `${err.code ?? ''} ${err.message}` }));
  });
}

describe('TLS versions: 1.2 minimum', () => {
  // Node 24's OpenSSL will not even offer TLS 1.0/1.1 at its default security level; SECLEVEL=0 lets this
  // client send the old ClientHello so that it is the server that refuses (alert 70, protocol_version).
  it.each(['TLSv1', 'TLSv1.1'] as const)('%s is refused by the server', async (version) => {
    const h = await handshake(tls.address, { minVersion: version, maxVersion: version, ciphers: 'DEFAULT@SECLEVEL=0' });
    expect(h.ok).toBe(false);
    expect(h.error).toMatch(/alert protocol version/);
  });

  it.each(['TLSv1.2', 'TLSv1.3'] as const)('%s is served, with ALPN h2', async (version) => {
    const h = await handshake(tls.address, { minVersion: version, maxVersion: version });
    expect(h).toEqual({ ok: true, protocol: version, alpn: 'h2' });
  });

  it('a client offering 1.0 to 1.3 gets 1.3', async () => {
    const h = await handshake(tls.address, { minVersion: 'TLSv1', maxVersion: 'TLSv1.3', ciphers: 'DEFAULT@SECLEVEL=0' });
    expect(h.protocol).toBe('TLSv1.3');
  });
});

describe('mTLS (-client_ca_file): only client certificates from that CA get an answer', () => {
  const pki = badPki();
  const read = (path: string) => readFileSync(path);
  const cases: [string, { cert?: Buffer; key?: Buffer }][] = [
    ['no client certificate', {}],
    ['a self-signed client certificate', { cert: read(pki.selfSignedClient.cert), key: read(pki.selfSignedClient.key) }],
    ['a client certificate from another CA', { cert: read(pki.wrongCaClient.cert), key: read(pki.wrongCaClient.key) }],
  ];

  it.each(cases)('%s: refused before any gRPC, over TLS 1.3 and 1.2', async (_name, identity) => {
    for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
      const session = h2connect(`https://${mtls.address}`, { ca, servername: 'localhost', minVersion: version, maxVersion: version, ...identity });
      session.on('error', () => {});
      const answer = await rawRequest(session, grpcHeaders(), [grpcFrame(helloRequest('intruder'))], { waitMs: 5000 });
      session.destroy();
      expect(answer.timedOut, version).toBe(false);
      expect(answer.httpStatus, version).toBe(0); // no HTTP/2 response at all
      expect(answer.grpcStatus, version).toBeUndefined();
      expect(answer.error, version).toBeDefined();
    }
    // grpc-js sees the same: UNAVAILABLE, never an answer
    const client = greeterClient(mtls.address, { ...(identity.cert ? { cert: identity.cert, key: identity.key } : {}) });
    const refused = await sayHello(client, 'intruder', { deadlineMs: 3000 });
    client.close();
    expect(refused.err?.code).toBe(14);
    expect(mtls.stdout()).not.toContain('intruder');
  });

  it('over TLS 1.2 the handshake itself does not complete for any of them', async () => {
    // No client certificate: OpenSSL's own alert. A certificate that does not verify: Node checks it when
    // OpenSSL is done and drops the connection (no alert), before the handshake completes for the client.
    const none = await handshake(mtls.address, { maxVersion: 'TLSv1.2' });
    expect(none.ok).toBe(false);
    expect(none.error).toMatch(/handshake failure|certificate required|peer did not return a certificate/i);
    for (const [name, pair] of [['self-signed', pki.selfSignedClient], ['other CA', pki.wrongCaClient]] as const) {
      const h = await handshake(mtls.address, { maxVersion: 'TLSv1.2', cert: read(pair.cert), key: read(pair.key) });
      expect(h.ok, name).toBe(false);
      expect(h.error, name).toMatch(/ECONNRESET|socket disconnected|unknown ca|bad certificate/i);
    }
  });

  it('the test CA\'s client certificate is answered (the control)', async () => {
    const client = greeterClient(mtls.address, { cert: read(certs('client.pem')), key: read(certs('client-key.pem')) });
    const answer = await sayHello(client, 'friend');
    client.close();
    expect(answer.reply?.message).toBe('Hello friend');
  });
});

describe('the test PKI says it is test-only', () => {
  it.each(['ca.pem', 'server.pem', 'client.pem'])('certs/%s: its subject says TEST ONLY', (name) => {
    expect(new X509Certificate(readFileSync(certs(name))).subject).toMatch(/TEST ONLY/);
  });

  it('README, certs/README.md and the image label say so, and the security doc shows how to mount real certificates', () => {
    const readme = readFileSync(`${root}README.md`, 'utf8');
    expect(readme).toMatch(/test-only|TEST-ONLY/);
    expect(readFileSync(certs('README.md'), 'utf8')).toMatch(/TEST-ONLY/);
    expect(readFileSync(`${root}Dockerfile`, 'utf8')).toMatch(/LABEL[\s\S]*TEST-ONLY/);
    const doc = readFileSync(`${root}docs/reliability-and-security.md`, 'utf8');
    const security = /\n## Security\n([\s\S]*?)\n## /.exec(doc)?.[1] ?? '';
    for (const needle of ['secretName', '-cert_file', '-key_file', '-ca_file', '-server_host_override', '-client_ca_file']) {
      expect(security, `docs/reliability-and-security.md ## Security mentions ${needle}`).toContain(needle);
    }
  });
});
