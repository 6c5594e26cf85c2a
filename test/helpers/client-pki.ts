// Certificates the client must refuse or be refused with, made by openssl once per test file into a
// temporary folder: a CA that is not the test CA, a client certificate from it, and a server certificate
// from the test CA (right names) that expired in 2021.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { testTmpDir } from './tmp.ts';
import { join } from 'node:path';
import { root } from './spawn.ts';

export interface ClientPki {
  otherCa: string;
  otherCaClient: { cert: string; key: string };
  expiredServer: { cert: string; key: string };
}

let made: ClientPki | undefined;

export function clientPki(): ClientPki {
  if (made) return made;
  const dir = testTmpDir('client-pki-');
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const subject = (cn: string) => ['-subj', `/O=grpc-helloworld TEST ONLY/CN=${cn}`];

  openssl('req', '-x509', ...newKey, '-days', '30', ...subject('another CA'), '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign', '-keyout', 'other-ca-key.pem', '-out', 'other-ca.pem');
  openssl('req', ...newKey, ...subject('client of another CA'), '-keyout', 'client-key.pem', '-out', 'client.csr');
  writeFileSync(join(dir, 'client.ext'), 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');
  openssl('x509', '-req', '-in', 'client.csr', '-CA', 'other-ca.pem', '-CAkey', 'other-ca-key.pem', '-set_serial', '2', '-days', '30',
    '-extfile', 'client.ext', '-out', 'client.pem');

  // openssl 3.0's x509 -req takes no explicit dates: `openssl ca` does
  openssl('req', ...newKey, ...subject('expired server'), '-keyout', 'expired-key.pem', '-out', 'expired.csr');
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), '03\n');
  writeFileSync(join(dir, 'ca.cnf'), [
    '[ca]', 'default_ca = d', '[d]', 'database = index.txt', 'new_certs_dir = .', 'serial = serial', 'default_md = sha256',
    'policy = p', 'unique_subject = no', '[p]', 'commonName = supplied',
    '[ext]', 'subjectAltName = DNS:localhost,IP:127.0.0.1,DNS:*.test.youtube.com', 'extendedKeyUsage = serverAuth',
  ].join('\n'));
  openssl('ca', '-batch', '-notext', '-config', 'ca.cnf', '-cert', join(root, 'certs/ca.pem'), '-keyfile', join(root, 'certs/ca-key.pem'),
    '-startdate', '20200101000000Z', '-enddate', '20210101000000Z', '-extensions', 'ext', '-in', 'expired.csr', '-out', 'expired.pem');

  made = {
    otherCa: join(dir, 'other-ca.pem'),
    otherCaClient: { cert: join(dir, 'client.pem'), key: join(dir, 'client-key.pem') },
    expiredServer: { cert: join(dir, 'expired.pem'), key: join(dir, 'expired-key.pem') },
  };
  return made;
}
