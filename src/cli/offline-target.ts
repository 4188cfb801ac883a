// Where an offline `user`, `acl` or `tenant` command makes its change, from its flags:
//   --data-dir DIR          the files of that data directory (a broker alone)
//   --cluster etcd://…      the registry the brokers of that cluster share in etcd
//   --config FILE           the broker configuration's cluster.etcd when it has one, else its
//                           storage.data_dir
//   none of them            null: the command goes over the wire to a broker.
// The commands open their own store on the target (users, ACLs, tenants).

import { resolve } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { type LoadedConfig, loadConfig } from '../broker/config/load-config.js';
import { parseClusterUrl } from '../cluster/control-plane/cluster-url.js';
import { clusterPrefix } from '../cluster/control-plane/metadata-keys.js';
import type { EtcdRegistryOptions } from '../security/etcd-session.js';

export interface OfflineFlags {
  dataDir?: string;
  config?: string;
  cluster?: string;
}

/** How long an offline command waits for an unreachable etcd before it gives up. */
const CLI_ETCD_CONNECT_TIMEOUT_MS = 5000;

export type OfflineTarget =
  /** A broker alone: the files of its data directory. */
  | { readonly kind: 'data-dir'; readonly dataDir: string; readonly config: LoadedConfig }
  /** A cluster: the registry in etcd (`etcd` opens any of the stores kept there). */
  | {
      readonly kind: 'cluster';
      readonly url: string;
      readonly etcd: EtcdRegistryOptions;
      readonly config: LoadedConfig;
    };

/**
 * The target of an offline command, or null for one over the wire. `what` names what the command
 * manages ("users", "ACLs", "tenants"), for the refusal of --data-dir with --cluster.
 */
export async function offlineTargetOf(
  flags: OfflineFlags,
  env: NodeJS.ProcessEnv,
  what: string,
): Promise<OfflineTarget | null> {
  if (flags.dataDir === undefined && flags.config === undefined && flags.cluster === undefined) return null;
  if (flags.dataDir !== undefined && flags.cluster !== undefined)
    throw new InvalidArgumentError(
      `--data-dir and --cluster: a broker alone keeps its ${what} in its data directory, a cluster in etcd; give one`,
    );
  const config = await loadConfig({ file: flags.config ?? null, env });
  const url = flags.cluster ?? (flags.dataDir === undefined ? (config.values['cluster.etcd'] as string) : '');
  if (url !== '') {
    const address = parseClusterUrl(url);
    return {
      kind: 'cluster',
      url,
      etcd: {
        address,
        prefix: clusterPrefix(address.name),
        url,
        connectTimeoutMs: CLI_ETCD_CONNECT_TIMEOUT_MS,
      },
      config,
    };
  }
  return {
    kind: 'data-dir',
    dataDir: resolve(flags.dataDir ?? (config.values['storage.data_dir'] as string)),
    config,
  };
}
