// Certificates that must be refused, made with openssl into a temporary folder, once per test file:
// another CA, client certificates from it and self-signed, a server certificate that expired, one for
// the wrong name. The good ones are certs/ (the test-only PKI).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { testTmpDir } from './tmp.ts';
import { join } from 'node:path';
import { root } from './spawn.ts';

export interface BadPki {
  dir: string;
  /** a CA that is not the test CA */
  otherCa: string;
  /** clientAuth certificate signed by otherCa */
  wrongCaClient: { cert: string; key: string };
  /** self-signed clientAuth certificate */
  selfSignedClient: { cert: string; key: string };
  /** serverAuth certificate from the test CA with the right names, valid 2020-01-01 to 2021-01-01 */
  expiredServer: { cert: string; key: string };
  /** serverAuth certificate from the test CA for `wrong-name.invalid` only */
  wrongNameServer: { cert: string; key: string };
}

const testCa = join(root, 'certs', 'ca.pem');
const testCaKey = join(root, 'certs', 'ca-key.pem');
const GOOD_SANS = 'DNS:localhost,IP:127.0.0.1,IP:::1,DNS:*.test.youtube.com';

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function keyAndCsr(dir: string, name: string, cn: string): void {
  openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/O=grpc-helloworld TEST ONLY/CN=${cn}`, '-keyout', `${name}-key.pem`, '-out', `${name}.csr`]);
}

function sign(dir: string, name: string, ca: string, caKey: string, extensions: string, serial: number): void {
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', ca, '-CAkey', caKey, '-set_serial', String(serial), '-days', '30', '-extfile', `${name}.ext`, '-out', `${name}.pem`]);
}

let made: BadPki | undefined;

export function badPki(): BadPki {
  if (made) return made;
  const dir = testTmpDir('bad-pki-');
  const pair = (name: string) => ({ cert: join(dir, `${name}.pem`), key: join(dir, `${name}-key.pem`) });
  const clientExt = 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n';
  const serverExt = (sans: string) => `subjectAltName=${sans}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`;

  openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30', '-subj', '/O=grpc-helloworld TEST ONLY/CN=some other CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-keyout', 'other-ca-key.pem', '-out', 'other-ca.pem']);

  keyAndCsr(dir, 'wrong-ca-client', 'client from another CA');
  sign(dir, 'wrong-ca-client', 'other-ca.pem', 'other-ca-key.pem', clientExt, 2);

  writeFileSync(join(dir, 'self-signed-client.ext'), clientExt);
  openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30', '-subj', '/O=grpc-helloworld TEST ONLY/CN=self-signed client', '-addext', 'extendedKeyUsage=clientAuth', '-keyout', 'self-signed-client-key.pem', '-out', 'self-signed-client.pem']);

  keyAndCsr(dir, 'wrong-name-server', 'wrong-name.invalid');
  sign(dir, 'wrong-name-server', testCa, testCaKey, serverExt('DNS:wrong-name.invalid'), 3);

  // expired: `openssl ca` takes explicit dates (openssl 3.0's x509 -req only takes -days)
  keyAndCsr(dir, 'expired-server', 'expired server');
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), '04\n');
  writeFileSync(
    join(dir, 'ca.cnf'),
    [
      '[ca]', 'default_ca = d', '[d]', 'database = index.txt', 'new_certs_dir = .', 'serial = serial', 'default_md = sha256',
      'policy = p', 'copy_extensions = none', 'unique_subject = no', '[p]', 'commonName = supplied',
      '[ext]', serverExt(GOOD_SANS),
    ].join('\n'),
  );
  openssl(dir, ['ca', '-batch', '-notext', '-config', 'ca.cnf', '-cert', testCa, '-keyfile', testCaKey, '-startdate', '20200101000000Z', '-enddate', '20210101000000Z', '-extensions', 'ext', '-in', 'expired-server.csr', '-out', 'expired-server.pem']);

  made = {
    dir,
    otherCa: join(dir, 'other-ca.pem'),
    wrongCaClient: pair('wrong-ca-client'),
    selfSignedClient: pair('self-signed-client'),
    expiredServer: pair('expired-server'),
    wrongNameServer: pair('wrong-name-server'),
  };
  return made;
}
