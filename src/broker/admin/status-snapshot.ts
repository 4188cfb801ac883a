// What the status page shows, as one JSON document (GET /api/status): running totals and
// cumulative histograms rather than rates, so the page derives rates and interval percentiles
// from two snapshots and the broker keeps no per-viewer state.

import { memoryUsage } from 'node:process';
import type { MetricsSnapshot } from '../../metrics/broker-metrics.js';
import type { BrokerCore } from '../broker-core.js';
import type { ClusterMetadataView } from '../replica-hooks.js';

export interface TopicStatus {
  name: string;
  partitions: number;
  /** Sum over partitions of (high watermark - start offset): messages consumers can read now. */
  messages: number;
  /** Sum of the partitions' high watermarks: grows by one per message made readable, for rates. */
  endOffsets: number;
  sizeBytes: number;
}

export interface GroupStatus {
  groupId: string;
  state: string;
  members: number;
  generation: number;
  lag: number;
}

/** One broker of the cluster: registered ones are live; a replica's broker that is not, is not. */
export interface ClusterBrokerStatus {
  id: number;
  /** host:port it advertises; null for a broker that is not registered now. */
  address: string | null;
  live: boolean;
  controller: boolean;
}

/** One partition's replication, as the cluster metadata says. */
export interface PartitionReplicationStatus {
  topic: string;
  partition: number;
  /** -1 while the partition has no leader. */
  leader: number;
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
  /** Fewer in-sync replicas than replicas. */
  underReplicated: boolean;
  /** No leader: produces and reads fail until an ISR member returns. */
  offline: boolean;
}

/** A cluster member's view of the cluster; null on a broker without one. */
export interface ClusterStatus {
  clusterId: string | null;
  /** -1 while no controller is elected. */
  controllerId: number;
  brokers: ClusterBrokerStatus[];
  partitions: PartitionReplicationStatus[];
  underReplicated: number;
  offline: number;
}

export interface StatusSnapshot {
  brokerId: string;
  /** Milliseconds since the epoch when the snapshot was taken. */
  time: number;
  uptimeSeconds: number;
  connections: number;
  memory: { heldBytes: number; rssBytes: number; heapUsedBytes: number };
  metrics: MetricsSnapshot;
  topics: TopicStatus[];
  /** Topics that could not be opened at start, with the reason. */
  offlineTopics: Array<{ topic: string; reason: string }>;
  groups: GroupStatus[];
  cluster: ClusterStatus | null;
}

export async function statusSnapshot(core: BrokerCore, startedAt: number): Promise<StatusSnapshot> {
  const topics = new Map<string, TopicStatus>();
  for (const p of core.state.partitions()) {
    if (p.topic.startsWith('__')) continue;
    let topic = topics.get(p.topic);
    if (topic === undefined) {
      topic = { name: p.topic, partitions: 0, messages: 0, endOffsets: 0, sizeBytes: 0 };
      topics.set(p.topic, topic);
    }
    topic.partitions++;
    topic.messages += Number(p.highWatermark - p.logStartOffset);
    topic.endOffsets += Number(p.highWatermark);
    topic.sizeBytes += p.sizeBytes;
  }
  const lag = new Map<string, number>();
  for (const l of core.state.groupLag()) lag.set(l.group, (lag.get(l.group) ?? 0) + Number(l.lag));
  const memory = memoryUsage();
  const now = Date.now();
  return {
    brokerId: core.id,
    time: now,
    uptimeSeconds: (now - startedAt) / 1000,
    connections: core.state.connections(),
    memory: { heldBytes: core.state.heldBytes(), rssBytes: memory.rss, heapUsedBytes: memory.heapUsed },
    metrics: await core.metrics.snapshot(),
    topics: [...topics.values()].sort((a, b) => a.name.localeCompare(b.name)),
    offlineTopics: core.offlineTopics(),
    groups: core.groups.list().map((g) => ({ ...g, lag: lag.get(g.groupId) ?? 0 })),
    cluster: core.clusterMetadata === null ? null : clusterStatus(core.clusterMetadata),
  };
}

/** Brokers and every partition's leader, replicas and ISR, from this member's metadata. */
export function clusterStatus(view: ClusterMetadataView): ClusterStatus {
  const metadata = view.metadata({});
  const brokers = new Map<number, ClusterBrokerStatus>();
  for (const broker of metadata.brokers)
    brokers.set(broker.id, {
      id: broker.id,
      address: `${broker.host.includes(':') ? `[${broker.host}]` : broker.host}:${broker.port}`,
      live: true,
      controller: broker.id === metadata.controllerId,
    });
  const partitions: PartitionReplicationStatus[] = [];
  for (const topic of metadata.topics)
    for (const p of topic.partitions) {
      for (const id of p.replicas)
        if (!brokers.has(id)) brokers.set(id, { id, address: null, live: false, controller: false });
      partitions.push({
        topic: topic.name,
        partition: p.partition,
        leader: p.leader,
        leaderEpoch: p.leaderEpoch,
        replicas: p.replicas,
        isr: p.isr,
        underReplicated: p.isr.length < p.replicas.length,
        offline: p.leader < 0,
      });
    }
  partitions.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
  return {
    clusterId: metadata.clusterId,
    controllerId: metadata.controllerId,
    brokers: [...brokers.values()].sort((a, b) => a.id - b.id),
    partitions,
    underReplicated: partitions.filter((p) => p.underReplicated).length,
    offline: partitions.filter((p) => p.offline).length,
  };
}
