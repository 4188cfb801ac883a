// The TLS credentials of a connection to etcd (`etcds://…?ca=&cert=&key=`), files read at once:
// one reader for the control plane and for the users kept in etcd, so both present the same
// certificate and fail the same way.

import { readFileSync } from 'node:fs';
import type { IOptions } from 'etcd3';
import { errorOf } from '../protocol/error-codes.js';

/** PEM files of TLS to etcd (none given: the system CAs, no client certificate). */
export interface EtcdTlsFiles {
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
}

/**
 * etcd3's `credentials` for these files (INVALID_CONFIG naming the file when one cannot be read).
 * Without files, https endpoints are checked against the system CAs by etcd3.
 */
export function etcdCredentials(files: EtcdTlsFiles | undefined): { credentials?: IOptions['credentials'] } {
  if (files === undefined || (files.caFile === undefined && files.certFile === undefined)) return {};
  const read = (what: string, file: string | undefined) => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(file);
    } catch (error) {
      throw errorOf('INVALID_CONFIG', `etcd TLS ${what} ${file}: ${(error as Error).message}`);
    }
  };
  const ca = read('CA file', files.caFile);
  const cert = read('certificate', files.certFile);
  const key = read('key', files.keyFile);
  return {
    credentials: {
      // grpc's createSsl takes null for "the system CAs"; etcd3's type insists on a Buffer.
      rootCertificate: ca ?? (null as unknown as Buffer),
      ...(key !== undefined ? { privateKey: key } : {}),
      ...(cert !== undefined ? { certChain: cert } : {}),
    },
  };
}
