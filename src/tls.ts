// Certificate and key files for both programs: read once, checked up front, and every problem reported as
// one line that names the flag and the file (a UsageError: exit 2), never as a TLS handshake failure later.
import type { KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { UsageError } from './flags.ts';
import { testCa, testServerCert, testServerKey } from './generated/test-pki.ts';

export const MIN_TLS_VERSION = 'TLSv1.2';

/**
 * A TLS client's SNI option for the name it verifies: SNI carries a name, never an IP address (RFC 6066). The
 * regex runs only on what may be an address: node:net's IPv6 regex costs a probe milliseconds to compile.
 */
export function sniFor(name: string): { servername?: string } {
  const mayBeAddress = name.includes(':') || /^[\d.]+$/.test(name);
  return mayBeAddress && isIP(name) !== 0 ? {} : { servername: name };
}

/** The name the original Go client verifies by default; the test certificate carries *.test.youtube.com. */
export const DEFAULT_SERVER_NAME = 'x.test.youtube.com';

function readFile(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : String(code ?? err);
    throw new UsageError(`cannot read -${flag} ${path}: ${why}`);
  }
}

/** The certificates in a PEM file (a chain or a CA bundle); at least one, all parseable. */
export function readCertificates(path: string, flag: string): { pem: Buffer; certs: X509Certificate[] } {
  const pem = readFile(path, flag);
  const blocks = pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  try {
    if (blocks.length === 0) throw new Error('none');
    // node:crypto only when there are certificates to read: a plaintext probe does not pay for loading it
    const { X509Certificate } = process.getBuiltinModule('node:crypto');
    return { pem, certs: blocks.map((b) => new X509Certificate(b)) };
  } catch {
    throw new UsageError(`-${flag} ${path} is not a PEM certificate`);
  }
}

export function readPrivateKey(path: string, flag: string): { pem: Buffer; key: KeyObject } {
  const pem = readFile(path, flag);
  try {
    return { pem, key: process.getBuiltinModule('node:crypto').createPrivateKey(pem) };
  } catch {
    throw new UsageError(`-${flag} ${path} is not a PEM private key (or it is encrypted)`);
  }
}

export interface KeyPair {
  cert: Buffer;
  key: Buffer;
}

/**
 * A certificate and its key from -cert_file / -key_file, checked to belong together. Both or neither:
 * neither gives `fallback` (the bundled test pair for the server, nothing for the client).
 */
export function loadKeyPair(certFile: string | undefined, keyFile: string | undefined): KeyPair | undefined {
  if (!certFile && !keyFile) return undefined;
  if (!certFile || !keyFile) throw new UsageError('-cert_file and -key_file go together: give both or neither');
  const { pem: cert, certs } = readCertificates(certFile, 'cert_file');
  const { pem: key, key: keyObject } = readPrivateKey(keyFile, 'key_file');
  if (!certs[0]!.checkPrivateKey(keyObject)) {
    throw new UsageError(`-cert_file ${certFile} and -key_file ${keyFile} do not match (the key is not the certificate's)`);
  }
  return { cert, key };
}

export function testServerKeyPair(): KeyPair {
  return { cert: Buffer.from(testServerCert), key: Buffer.from(testServerKey) };
}

/** Trusted roots from a file, or the bundled test CA. */
export function loadRoots(caFile: string | undefined, flag = 'ca_file'): Buffer {
  return caFile ? readCertificates(caFile, flag).pem : Buffer.from(testCa);
}
