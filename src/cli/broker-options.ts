// Turns a loaded configuration into the options of a broker node (what `serve` starts). It lives
// with the CLI, the one that starts a node from a configuration; embedded users pass options directly.

import { readFileSync } from 'node:fs';
import type { BrokerNodeOptions } from '../broker/broker-node.js';
import type { SettingKey } from '../broker/config/config-schema.js';
import type { LoadedConfig } from '../broker/config/load-config.js';
import type { ServerTlsOptions, TlsClientAuth } from '../broker/server/tls.js';
import { parseClusterUrl } from '../cluster/control-plane/cluster-url.js';
import { clusterPrefix } from '../cluster/control-plane/metadata-keys.js';
import type { LogLevel } from '../metrics/logger.js';
import { errorOf } from '../protocol/error-codes.js';
import type { BrokerAuthorizationOptions } from '../security/authorizer-service.js';
import type { AuthMechanism, BrokerAuthOptions } from '../security/broker-authenticator.js';
import { EtcdAclStore } from '../security/etcd-acl-store.js';
import { EtcdTenantBackend } from '../security/etcd-tenant-store.js';
import { EtcdUserStore } from '../security/etcd-user-store.js';
import type { TenantBackend } from '../security/tenant-store.js';
import { tokenSettingsFrom } from '../security/token-settings.js';

/** The [auth] and [authz] settings: null when authentication is off (auth.mechanisms empty). */
export function authFrom(
  config: LoadedConfig,
  resolvePath: (path: string) => string = (path) => path,
): BrokerAuthOptions | null {
  const v = config.values;
  const list = (key: 'auth.mechanisms' | 'authz.super_users') =>
    (v[key] as string).split(',').filter((item) => item !== '');
  const mechanisms = list('auth.mechanisms') as AuthMechanism[];
  if (mechanisms.length === 0) return null;
  const etcd = v['cluster.etcd'] as string;
  const common = {
    mechanisms,
    superUsers: list('authz.super_users'),
    scramIterations: v['auth.scram_iterations'] as number,
    failureDelayMs: v['auth.failure_delay'] as number,
    maxFailuresPerMinute: v['auth.max_failures_per_minute'] as number,
    ...(mechanisms.includes('token') ? { token: tokenSettingsFrom(v, resolvePath) } : {}),
  };
  if (etcd === '') return common;
  // In a cluster, replica fetches, heartbeats and anti-entropy come from the other brokers: they
  // authenticate with their TLS certificates (the inter-broker connections present them), and
  // only the principals listed are served those requests. The users are shared in etcd.
  const brokerPrincipals = (v['cluster.broker_principals'] as string).split(',').filter((p) => p !== '');
  if (!mechanisms.includes('mtls') || brokerPrincipals.length === 0)
    throw errorOf(
      'INVALID_CONFIG',
      `auth.mechanisms in a cluster (cluster.etcd) needs "mtls" among the mechanisms and cluster.broker_principals naming the brokers' certificates (e.g. ["User:broker"]): brokers authenticate to each other with their TLS certificates (docs/security.md, "Authentication in a cluster")`,
    );
  const address = parseClusterUrl(etcd);
  return {
    ...common,
    brokerPrincipals,
    openUsers: (_dataDir, onResync) =>
      EtcdUserStore.open({
        address,
        prefix: clusterPrefix(address.name),
        url: etcd,
        ...(onResync !== undefined ? { onResync } : {}),
      }),
  };
}

/** The [authz] settings: null when authorization is off (authz.enabled = false). */
export function authzFrom(config: LoadedConfig): BrokerAuthorizationOptions | null {
  const v = config.values;
  if (v['authz.enabled'] !== 'true') return null;
  const superUsers = (v['authz.super_users'] as string).split(',').filter((item) => item !== '');
  const etcd = v['cluster.etcd'] as string;
  if (etcd === '') return { superUsers };
  // In a cluster the entries are shared in etcd, and the brokers (authenticated by their
  // certificates) may do what replication and forwarding to the controller need: everything.
  if (v['auth.mechanisms'] === '')
    throw errorOf(
      'INVALID_CONFIG',
      'authz.enabled in a cluster (cluster.etcd) needs authentication (auth.mechanisms with "mtls" and cluster.broker_principals): without it brokers and clients are all User:ANONYMOUS and cannot be told apart (docs/security.md, "Authorization in a cluster")',
    );
  const address = parseClusterUrl(etcd);
  return {
    superUsers,
    brokerPrincipals: (v['cluster.broker_principals'] as string).split(',').filter((p) => p !== ''),
    openStore: (onResync) =>
      EtcdAclStore.open({
        address,
        prefix: clusterPrefix(address.name),
        url: etcd,
        ...(onResync !== undefined ? { onResync } : {}),
      }),
  };
}

/** Opens a cluster's tenant registry in etcd: null on a broker alone (its tenants.json). */
export function tenantsFrom(
  config: LoadedConfig,
): ((onResync?: (reason: string) => void) => Promise<TenantBackend>) | null {
  const etcd = config.values['cluster.etcd'] as string;
  if (etcd === '') return null;
  const address = parseClusterUrl(etcd);
  return (onResync) =>
    EtcdTenantBackend.open({
      address,
      prefix: clusterPrefix(address.name),
      url: etcd,
      ...(onResync !== undefined ? { onResync } : {}),
    });
}

/** Where the TLS files are, paths resolved: null for plain TCP. */
export interface TlsFiles {
  cert: string;
  key: string;
  ca: string | null;
  clientAuth: TlsClientAuth;
  /** The admin endpoint serves HTTPS with the same certificate. */
  admin: boolean;
}

/**
 * The TLS settings: the `[tls]` section, or its older names `server.tls_*` (a configuration uses
 * one form or the other; problems are said in the form it uses). Null for plain TCP.
 */
export function tlsFilesFrom(config: LoadedConfig, resolvePath: (path: string) => string): TlsFiles | null {
  const v = config.values;
  const fields = ['cert_file', 'key_file', 'ca_file', 'client_auth'] as const;
  const newer = fields.some((f) => config.sources[`tls.${f}`] !== 'default');
  const older = fields.some((f) => config.sources[`server.tls_${f}`] !== 'default');
  if (newer && older)
    throw errorOf(
      'INVALID_CONFIG',
      'TLS is set both in [tls] and with the server.tls_* keys; keep one (the [tls] section)',
    );
  const name = (f: (typeof fields)[number]) => (older ? `server.tls_${f}` : `tls.${f}`) as SettingKey;
  const certFile = v[name('cert_file')] as string;
  const keyFile = v[name('key_file')] as string;
  const caFile = v[name('ca_file')] as string;
  const clientAuth = v[name('client_auth')] as TlsClientAuth;
  if (certFile === '' && keyFile === '') {
    if (caFile !== '' || clientAuth !== 'none')
      throw errorOf(
        'INVALID_CONFIG',
        `${name('ca_file')} and ${name('client_auth')} need ${name('cert_file')}`,
      );
    return null;
  }
  if (certFile === '' || keyFile === '')
    throw errorOf('INVALID_CONFIG', `${name('cert_file')} and ${name('key_file')} go together`);
  return {
    cert: resolvePath(certFile),
    key: resolvePath(keyFile),
    ca: caFile === '' ? null : resolvePath(caFile),
    clientAuth,
    admin: v['tls.admin'] === 'true',
  };
}

/** Reads the TLS files (INVALID_CONFIG naming the setting when one cannot be read). */
export function readTlsFiles(files: TlsFiles, older = false): ServerTlsOptions {
  const read = (field: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      const key = older ? `server.tls_${field}` : `tls.${field}`;
      throw errorOf('INVALID_CONFIG', `${key}: cannot read ${file}: ${(error as Error).message}`);
    }
  };
  return {
    cert: read('cert_file', files.cert),
    key: read('key_file', files.key),
    ...(files.ca !== null ? { ca: read('ca_file', files.ca) } : {}),
    clientAuth: files.clientAuth,
  };
}

/** The TLS settings, files read (INVALID_CONFIG naming the key when one cannot be): null for plain TCP. */
function tlsFrom(config: LoadedConfig, resolvePath: (path: string) => string): ServerTlsOptions | null {
  const files = tlsFilesFrom(config, resolvePath);
  if (files === null) return null;
  const older = config.sources['server.tls_cert_file'] !== 'default';
  return readTlsFiles(files, older);
}

/** The cluster settings, checked: null for a broker without a cluster. */
export interface ClusterSettings {
  etcd: string;
  brokerId: number;
  advertise: string;
  leaseTtlSeconds: number;
  replicaLagTimeMs: number;
  antiEntropyIntervalMs: number;
  fencingTimeMs: number;
  heartbeatIntervalMs: number;
}

export function clusterSettingsFrom(config: LoadedConfig): ClusterSettings | null {
  const v = config.values;
  const etcd = v['cluster.etcd'] as string;
  const brokerId = v['cluster.broker_id'] as number;
  const advertise = v['cluster.advertise'] as string;
  if (etcd === '') {
    if (brokerId !== -1 || advertise !== '')
      throw errorOf(
        'INVALID_CONFIG',
        'cluster.broker_id and cluster.advertise need cluster.etcd (--cluster)',
      );
    return null;
  }
  if (brokerId < 0) throw errorOf('INVALID_CONFIG', 'cluster.etcd needs cluster.broker_id (--broker-id)');
  if (advertise === '')
    throw errorOf('INVALID_CONFIG', 'cluster.etcd needs cluster.advertise (--advertise host:port)');
  const fencingTimeMs = v['cluster.fencing_time'] as number;
  const heartbeatIntervalMs = v['cluster.heartbeat_interval'] as number;
  if (heartbeatIntervalMs * 2 > fencingTimeMs)
    throw errorOf(
      'INVALID_CONFIG',
      `cluster.heartbeat_interval ${heartbeatIntervalMs} ms: at most half of cluster.fencing_time (${fencingTimeMs} ms)`,
    );
  return {
    etcd,
    brokerId,
    advertise,
    leaseTtlSeconds: Math.ceil((v['cluster.lease_ttl'] as number) / 1000),
    replicaLagTimeMs: v['cluster.replica_lag_time'] as number,
    antiEntropyIntervalMs: v['cluster.anti_entropy_interval'] as number,
    fencingTimeMs,
    heartbeatIntervalMs,
  };
}

export function brokerOptionsFrom(
  config: LoadedConfig,
  resolvePath: (path: string) => string,
): BrokerNodeOptions & {
  shutdownDeadlineMs: number;
  logLevel: LogLevel;
  logFormat: 'auto' | 'json' | 'pretty';
} {
  const v = config.values;
  const n = (key: keyof typeof v) => v[key] as number;
  const tls = tlsFrom(config, resolvePath);
  const cluster = clusterSettingsFrom(config);
  const auth = authFrom(config, resolvePath);
  const authz = authzFrom(config);
  const openTenants = auth !== null ? tenantsFrom(config) : null;
  return {
    ...(auth !== null ? { auth } : {}),
    ...(authz !== null ? { authz } : {}),
    ...(openTenants !== null ? { openTenants } : {}),
    audit: auditFrom(config, resolvePath),
    ...(cluster !== null ? { brokerId: cluster.brokerId } : {}),
    ...(tls !== null ? { tls } : {}),
    dataDir: resolvePath(v['storage.data_dir'] as string),
    host: v['server.host'] as string,
    port: n('server.port'),
    defaultPartitions: n('topics.partitions'),
    maxPartitions: n('topics.max_partitions'),
    maxDecompressedBytes: n('storage.max_decompressed_bytes'),
    ...(n('storage.max_open_files') > 0 ? { maxOpenFiles: n('storage.max_open_files') } : {}),
    storageWrites: {
      inlineWriteMaxBytes: n('storage.inline_write_max_bytes'),
      inlineWriteSlowMs: n('storage.inline_write_slow'),
      inlineWriteCooldownMs: n('storage.inline_write_cooldown'),
    },
    topicDefaults: {
      durability: v['topics.durability'] as 'always' | 'interval' | 'never',
      flushIntervalMs: n('topics.flush_interval'),
      retentionMs: n('topics.retention'),
      retentionBytes: n('topics.retention_bytes'),
      maxMessageBytes: n('topics.max_message_bytes'),
      segmentBytes: n('topics.segment_bytes'),
      segmentMs: n('topics.segment_age'),
    },
    compaction: {
      minCleanableDirtyRatio: n('compaction.min_dirty_percent') / 100,
      deleteRetentionMs: n('compaction.delete_retention'),
      minCompactionLagMs: n('compaction.min_lag'),
      maxMapEntries: n('compaction.max_map_entries'),
    },
    limits: {
      maxConnections: n('server.max_connections'),
      maxConnectionsPerAddress: n('server.max_connections_per_address'),
      handshakeTimeoutMs: n('server.handshake_timeout'),
      idleTimeoutMs: n('server.idle_timeout'),
      maxPayloadBytes: n('server.max_payload_bytes'),
      maxControlPayloadBytes: n('server.max_control_payload_bytes'),
      connectionBudgetBytes: n('server.connection_budget'),
      globalBudgetBytes: n('server.global_budget'),
      maxOutboundBytes: n('server.max_outbound'),
      frameTimeoutMs: n('server.frame_timeout'),
      writeStallTimeoutMs: n('server.write_stall_timeout'),
      maxInFlightRequests: n('server.max_in_flight_requests'),
      maxFetchBytes: n('server.max_fetch_bytes'),
      maxSubscriptionCreditBytes: n('server.max_subscription_credit'),
    },
    ...(v['admin.enabled'] === 'true'
      ? {
          admin: {
            host: v['admin.host'] as string,
            port: n('admin.port'),
            ...(tls !== null && v['tls.admin'] === 'false' ? { tls: false } : {}),
          },
        }
      : {}),
    metrics: v['admin.metrics'] === 'true',
    ...(v['tracing.otlp_endpoint'] !== ''
      ? {
          tracing: {
            endpoint: v['tracing.otlp_endpoint'] as string,
            serviceName: v['tracing.service_name'] as string,
          },
        }
      : {}),
    shutdownDeadlineMs: n('server.shutdown_deadline'),
    logLevel: v['log.level'] as LogLevel,
    logFormat: v['log.format'] as 'auto' | 'json' | 'pretty',
  };
}

/** The [audit] settings as the broker node's options (paths resolved with `resolvePath`). */
export function auditFrom(
  config: LoadedConfig,
  resolvePath: (path: string) => string,
): NonNullable<BrokerNodeOptions['audit']> {
  const v = config.values;
  const enabled = v['audit.enabled'] as string;
  const dir = v['audit.dir'] as string;
  const topic = v['audit.topic'] as string;
  return {
    ...(enabled === 'auto' ? {} : { enabled: enabled === 'true' }),
    ...(dir !== '' ? { dir: resolvePath(dir) } : {}),
    maxFileBytes: v['audit.max_file_size'] as number,
    fsyncIntervalMs: v['audit.fsync_interval'] as number,
    ...(topic !== '' ? { topic } : {}),
  };
}
