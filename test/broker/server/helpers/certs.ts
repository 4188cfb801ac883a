// Makes a throwaway certificate authority, a broker certificate for 127.0.0.1/localhost and a
// client certificate, with the system's openssl, in a temporary directory the caller removes; also
// an expired broker certificate, and one for the same addresses signed by a second CA (the
// certificate a rotation moves to, or one a client must refuse).

import { execFileSync, spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface TestCertificates {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A second, unrelated CA: certificates it signs must be refused. */
  otherCa: string;
  otherClientCert: string;
  otherClientKey: string;
  /** A broker certificate whose validity ended yesterday (signed by `ca`). */
  expiredServerCert: string;
  expiredServerKey: string;
  /** A broker certificate for 127.0.0.1/localhost signed by `otherCa`. */
  otherServerCert: string;
  otherServerKey: string;
}

export function opensslAvailable(): boolean {
  return spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

function authority(dir: string, name: string): void {
  openssl(
    dir,
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
  );
}

async function leaf(dir: string, ca: string, name: string, extensions: string, days = 2): Promise<void> {
  openssl(
    dir,
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=${name}`,
  );
  await writeFile(join(dir, `${name}.ext`), extensions);
  openssl(
    dir,
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-out',
    `${name}.pem`,
    // Negative: the certificate expired `-days` days ago.
    '-days',
    String(days),
    '-extfile',
    `${name}.ext`,
  );
}

/** Writes a CA, another CA and their certificates into `dir` (a temporary directory of the test). */
export async function makeCertificates(dir: string): Promise<TestCertificates> {
  authority(dir, 'ca');
  authority(dir, 'other-ca');
  // Brokers of a cluster with mutual TLS present their certificate as clients too: both usages.
  const serverExtensions =
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n';
  await leaf(dir, 'ca', 'broker', serverExtensions);
  await leaf(dir, 'ca', 'client', 'extendedKeyUsage=clientAuth\n');
  await leaf(dir, 'other-ca', 'intruder', 'extendedKeyUsage=clientAuth\n');
  await leaf(dir, 'ca', 'broker-expired', serverExtensions, -1);
  await leaf(dir, 'other-ca', 'broker-other', serverExtensions);
  const read = (file: string) => readFile(join(dir, file), 'utf8');
  return {
    dir,
    ca: await read('ca.pem'),
    serverCert: await read('broker.pem'),
    serverKey: await read('broker.key'),
    clientCert: await read('client.pem'),
    clientKey: await read('client.key'),
    otherCa: await read('other-ca.pem'),
    otherClientCert: await read('intruder.pem'),
    otherClientKey: await read('intruder.key'),
    expiredServerCert: await read('broker-expired.pem'),
    expiredServerKey: await read('broker-expired.key'),
    otherServerCert: await read('broker-other.pem'),
    otherServerKey: await read('broker-other.key'),
  };
}
