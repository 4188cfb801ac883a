// Parses the `--cluster` setting: `etcd://host:port[,host:port…][/name]`. The name keeps several
// MemoryStreamer clusters apart on one etcd (every key lives under /memorystreamer/<name>/).
// Only parsing and validation here; nothing connects.

import { errorOf } from '../../protocol/error-codes.js';

export interface ClusterAddress {
  /** etcd client endpoints, `http://host:port`. */
  readonly endpoints: readonly string[];
  /** The cluster's name in etcd: `default` unless the URL gives one. */
  readonly name: string;
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

export function parseClusterUrl(url: string): ClusterAddress {
  const match = /^etcd:\/\/([^/]+)(?:\/([^/]*))?$/.exec(url.trim());
  if (match === null)
    throw errorOf('INVALID_CONFIG', `cluster "${url}": expected etcd://host:port[,host:port…][/name]`);
  const endpoints = match[1]!.split(',').map((hostPort) => {
    const parts = HOST_PORT.exec(hostPort);
    const port = parts === null ? 0 : Number(parts[2]);
    if (parts === null || port < 1 || port > 65535)
      throw errorOf('INVALID_CONFIG', `cluster "${url}": "${hostPort}" is not host:port`);
    return `http://${parts[1]}:${port}`;
  });
  const name = match[2] === undefined || match[2] === '' ? 'default' : match[2];
  if (!NAME.test(name))
    throw errorOf(
      'INVALID_CONFIG',
      `cluster "${url}": name "${name}" must be 1-63 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit`,
    );
  return { endpoints, name };
}
