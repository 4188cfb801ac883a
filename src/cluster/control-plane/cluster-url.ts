// Parses the `--cluster` setting: `etcd://host:port[,host:port…][/name]`. The name keeps several
// MemoryStreamer clusters apart on one etcd (every key lives under /memorystreamer/<name>/).
// `etcds://` reaches etcd over TLS, checking its certificate against the system CAs or the PEM
// file of `?ca=`, and with `&cert=…&key=…` presents a client certificate (etcd's
// --client-cert-auth): `etcds://10.0.0.5:2379/prod?ca=/etc/ms/etcd-ca.pem&cert=…&key=…`.
// Only parsing and validation here; nothing connects.

import { errorOf } from '../../protocol/error-codes.js';

export interface ClusterAddress {
  /** etcd client endpoints, `http://host:port`. */
  readonly endpoints: readonly string[];
  /** The cluster's name in etcd: `default` unless the URL gives one. */
  readonly name: string;
  /** `etcds://`: TLS to etcd, with these PEM files (none given: the system CAs, no client certificate). */
  readonly tls?: EtcdTlsFiles;
}

export interface EtcdTlsFiles {
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
}

const TLS_PARAMETERS = { ca: 'caFile', cert: 'certFile', key: 'keyFile' } as const;

function tlsFiles(url: string, secure: boolean, query: string | undefined): EtcdTlsFiles | undefined {
  if (query === undefined || query === '') return secure ? {} : undefined;
  if (!secure)
    throw errorOf('INVALID_CONFIG', `cluster "${url}": ca, cert and key are TLS files; use etcds://`);
  const files: { -readonly [K in keyof EtcdTlsFiles]: string } = {};
  for (const [name, value] of new URLSearchParams(query)) {
    if (!(name in TLS_PARAMETERS) || value === '')
      throw errorOf(
        'INVALID_CONFIG',
        `cluster "${url}": "${name}=${value}" is not one of ca=FILE, cert=FILE, key=FILE`,
      );
    files[TLS_PARAMETERS[name as keyof typeof TLS_PARAMETERS]] = value;
  }
  if ((files.certFile === undefined) !== (files.keyFile === undefined))
    throw errorOf('INVALID_CONFIG', `cluster "${url}": cert= and key= go together`);
  return files;
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

export function parseClusterUrl(url: string): ClusterAddress {
  const [location = '', query] = url.trim().split(/\?(.*)/s);
  const match = /^etcd(s?):\/\/([^/]+)(?:\/([^/]*))?$/.exec(location);
  if (match === null)
    throw errorOf(
      'INVALID_CONFIG',
      `cluster "${url}": expected etcd://host:port[,host:port…][/name] (etcds:// for TLS)`,
    );
  const secure = match[1] === 's';
  const tls = tlsFiles(url, secure, query);
  const endpoints = match[2]!.split(',').map((hostPort) => {
    const parts = HOST_PORT.exec(hostPort);
    const port = parts === null ? 0 : Number(parts[2]);
    if (parts === null || port < 1 || port > 65535)
      throw errorOf('INVALID_CONFIG', `cluster "${url}": "${hostPort}" is not host:port`);
    return `${secure ? 'https' : 'http'}://${parts[1]}:${port}`;
  });
  const name = match[3] === undefined || match[3] === '' ? 'default' : match[3];
  if (!NAME.test(name))
    throw errorOf(
      'INVALID_CONFIG',
      `cluster "${url}": name "${name}" must be 1-63 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit`,
    );
  return { endpoints, name, ...(tls !== undefined ? { tls } : {}) };
}
