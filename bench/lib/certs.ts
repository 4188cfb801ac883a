// A throwaway certificate authority and a broker certificate for 127.0.0.1/localhost (ECDSA P-256,
// valid for a day), made with the system's openssl in a directory the caller removes: what the
// TLS benchmark serves and trusts. Nothing here is ever committed.

import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface BenchCertificates {
  caFile: string;
  certFile: string;
  keyFile: string;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export function makeBenchCertificates(dir: string): BenchCertificates {
  openssl(
    dir,
    'req',
    '-x509',
    ...EC,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '1',
    '-subj',
    '/CN=bench-ca',
  );
  openssl(dir, 'req', ...EC, '-keyout', 'broker.key', '-out', 'broker.csr', '-subj', '/CN=broker');
  writeFileSync(join(dir, 'broker.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(
    dir,
    'x509',
    '-req',
    '-in',
    'broker.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'broker.pem',
    '-days',
    '1',
    '-extfile',
    'broker.ext',
  );
  return { caFile: join(dir, 'ca.pem'), certFile: join(dir, 'broker.pem'), keyFile: join(dir, 'broker.key') };
}
