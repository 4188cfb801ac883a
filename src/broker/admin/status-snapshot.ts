// What the status page shows, as one JSON document (GET /api/status): running totals and
// cumulative histograms rather than rates, so the page derives rates and interval percentiles
// from two snapshots and the broker keeps no per-viewer state.

import { memoryUsage } from 'node:process';
import type { MetricsSnapshot } from '../../metrics/broker-metrics.js';
import type { BrokerCore } from '../broker-core.js';

export interface TopicStatus {
  name: string;
  partitions: number;
  /** Sum over partitions of (end offset - start offset): messages stored now. */
  messages: number;
  /** Sum of the partitions' end offsets: grows by one per message appended, for rates. */
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
    topic.messages += Number(p.logEndOffset - p.logStartOffset);
    topic.endOffsets += Number(p.logEndOffset);
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
  };
}
