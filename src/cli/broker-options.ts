// Turns a loaded configuration into the options of a broker node (what `serve` starts). It lives
// with the CLI, the one that starts a node from a configuration; embedded users pass options directly.

import type { BrokerNodeOptions } from '../broker/broker-node.js';
import type { LoadedConfig } from '../broker/config/load-config.js';
import type { LogLevel } from '../metrics/logger.js';

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
  return {
    dataDir: resolvePath(v['storage.data_dir'] as string),
    host: v['server.host'] as string,
    port: n('server.port'),
    defaultPartitions: n('topics.partitions'),
    maxPartitions: n('topics.max_partitions'),
    maxDecompressedBytes: n('storage.max_decompressed_bytes'),
    ...(n('storage.max_open_files') > 0 ? { maxOpenFiles: n('storage.max_open_files') } : {}),
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
      ? { admin: { host: v['admin.host'] as string, port: n('admin.port') } }
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
