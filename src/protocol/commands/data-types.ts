// Request and response shapes of the data-plane commands (topics, produce, fetch, streams,
// producers, groups), shared by the wire codecs, the broker service and the in-process transport.
// Plain data only: no I/O, no classes. Each command's byte layout lives in its own codec file.

import type { ErrorName } from '../error-codes.js';

export type CleanupPolicyName = 'delete' | 'compact';
export type DurabilityPolicyName = 'always' | 'interval' | 'never';

/** Where a topic's partitions keep their log. */
export type TopicStorageName = 'disk' | 'memory';

export interface TopicConfigView {
  retentionMs: number;
  retentionBytes: number;
  cleanup: CleanupPolicyName;
  durability: DurabilityPolicyName;
  flushIntervalMs: number;
  maxMessageBytes: number;
  segmentBytes: number;
  segmentMs: number;
  /**
   * In-sync replicas (the leader included) an `acks: 'all'` produce needs: with fewer the produce is
   * refused with NOT_ENOUGH_REPLICAS. At least 1, at most the topic's replication factor.
   */
  minInsyncReplicas: number;
  /** In a cluster: a replica outside the ISR may lead when none inside is alive (default false). */
  uncleanLeaderElection: boolean;
}

export interface TopicView {
  name: string;
  id: string;
  partitions: number;
  /** Copies of each partition, on as many brokers (1 on a broker that runs without a cluster). */
  replicationFactor: number;
  createdAt: number;
  /** Where the partitions keep their log; 'disk' when absent (docs/storage.md, "Memory topics"). */
  storage?: TopicStorageName;
  config: TopicConfigView;
}

export interface PartitionView {
  partition: number;
  logStartOffset: bigint;
  /** Consumers read offsets below this: what every in-sync replica holds (a broker alone: what is stable here). */
  highWatermark: bigint;
  /** The offset the next appended message gets on the broker that answered: at or above the high watermark. */
  logEndOffset: bigint;
  sizeBytes: number;
  /** Broker id of the partition's leader; -1 while it has none. */
  leader: number;
  /** Broker ids holding a copy, the preferred leader first. */
  replicas: number[];
  /** The in-sync replicas: the leader and the followers that are caught up with it. */
  isr: number[];
  /** Bumped at every leader change; batches written by that leader carry it. */
  leaderEpoch: number;
}

export interface CreateTopicRequest {
  name: string;
  partitions?: number;
  /** Copies of each partition (default 1); more than 1 needs a cluster with as many brokers. */
  replicationFactor?: number;
  /**
   * 'disk' (default) or 'memory': a bounded log in the broker's memory, lost on restart, refused by
   * a cluster (docs/storage.md, "Memory topics").
   */
  storage?: TopicStorageName;
  config?: Partial<TopicConfigView>;
}
export interface AlterTopicRequest {
  name: string;
  partitions?: number;
  config?: Partial<TopicConfigView>;
}
export interface TopicNameRequest {
  name: string;
}
export interface ListTopicsResponse {
  topics: TopicView[];
}
export interface DescribeTopicResponse {
  topic: TopicView;
  partitions: PartitionView[];
}

/** METADATA: the topics to describe; without `topics`, every topic (internal ones included). */
export interface MetadataRequest {
  topics?: string[];
}

/** A broker of the cluster, as clients and other brokers reach it. */
export interface BrokerView {
  id: number;
  /** Where it listens; empty host and port 0 for a broker without a TCP listener (in process only). */
  host: string;
  port: number;
  rack?: string;
}

export interface PartitionMetadata {
  partition: number;
  /** null, or why the partition cannot be served now (LEADER_NOT_AVAILABLE: no leader elected). */
  error: ErrorName | null;
  /** Broker id of the leader; -1 while there is none. */
  leader: number;
  leaderEpoch: number;
  /** Broker ids holding a copy, the preferred leader first. */
  replicas: number[];
  isr: number[];
  /** Replicas on brokers that are not live now. */
  offlineReplicas: number[];
}

export interface TopicMetadata {
  name: string;
  /** null, or why the topic is not described (UNKNOWN_TOPIC, TOPIC_OFFLINE, …); then no partitions. */
  error: ErrorName | null;
  /** The topic's id ('' with an error): a topic deleted and created again has another. */
  id: string;
  /** Internal to the broker (its name starts with `__`, e.g. `__consumer_offsets`). */
  internal: boolean;
  partitions: PartitionMetadata[];
}

export interface MetadataResponse {
  /** The cluster's id; null for a broker that runs without a cluster. */
  clusterId: string | null;
  /** Broker id of the controller; -1 while none is elected. A broker without a cluster names itself. */
  controllerId: number;
  brokers: BrokerView[];
  topics: TopicMetadata[];
}

/**
 * acks: 0 = the broker answers before writing (fire and forget), 1 = after the leader wrote it per
 * policy, 'all' = after every in-sync replica holds it (refused with NOT_ENOUGH_REPLICAS when the
 * in-sync replicas are fewer than the topic's minInsyncReplicas; on a broker without a cluster,
 * whose topics have one replica, the same as 1).
 */
export type Acks = 0 | 1 | 'all';

export interface ProduceRequest {
  topic: string;
  partition: number;
  acks: Acks;
  /** One record batch (Kafka v2 layout); base offset 0, assigned by the broker. */
  batch: Buffer;
  /**
   * Optimistic concurrency: the append happens only if the stream of the batch's (single) key is
   * at this version (number of messages in the stream), else STREAM_VERSION_CONFLICT.
   */
  expectedVersion?: number;
}
export interface ProduceResponse {
  baseOffset: bigint;
  lastOffset: bigint;
  /** What the acknowledgement means: 'synced' (fsynced), 'written' (page cache), 'none' (acks=0). */
  durability: 'synced' | 'written' | 'none';
  /** Stream sequence of each record in batch order, -1 for records without key. */
  sequences: number[];
  /** True when the batch was a retry of one already written (idempotent producer). */
  duplicate: boolean;
}

export interface FetchRequest {
  topic: string;
  partition: number;
  offset: bigint;
  maxBytes: number;
  /** Long poll: wait up to this long for data at `offset` when there is none yet. */
  maxWaitMs: number;
}
export interface FetchResponse {
  highWatermark: bigint;
  logStartOffset: bigint;
  /** Whole record batches; the first may start before `offset` (skip records below it). */
  batches: Buffer;
}

export type OffsetSpec = 'earliest' | 'latest' | { timestamp: number };
export interface ListOffsetsRequest {
  topic: string;
  partition: number;
  spec: OffsetSpec;
}
export interface ListOffsetsResponse {
  /** The offset found; for a timestamp, the first offset at or after it (log end if none). */
  offset: bigint;
}

export interface InitProducerIdResponse {
  producerId: bigint;
  producerEpoch: number;
}

export interface ReadStreamRequest {
  topic: string;
  key: Buffer;
  /** First stream sequence to return (0 = the beginning of the stream). */
  fromSequence: number;
  maxRecords: number;
  /** Long poll: wait up to this long when the stream has nothing at `fromSequence` yet. */
  maxWaitMs: number;
}

export interface StreamRecordView {
  offset: bigint;
  sequence: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: Array<{ key: string; value: Buffer | null }>;
}

export interface ReadStreamResponse {
  partition: number;
  /** Number of messages in the stream (the version an expected-version append compares with). */
  version: number;
  records: StreamRecordView[];
}

export interface SubscribeRequest {
  topic: string;
  partition: number;
  /** Offset to start at; -1 = latest (only new messages), -2 = earliest. */
  offset: bigint;
  /** Bytes the broker may push before it waits for more credit. */
  credit: number;
}

export interface SubscribeResponse {
  channelId: number;
  /** The offset the subscription starts at (resolved from latest/earliest). */
  offset: bigint;
}

export interface UnsubscribeRequest {
  channelId: number;
}

export interface TopicPartitions {
  topic: string;
  partitions: number[];
}

export type AssignmentStrategy = 'range' | 'cooperative-sticky';

export interface JoinGroupRequest {
  groupId: string;
  /** Empty on the first join; the broker assigns one. */
  memberId: string;
  topics: string[];
  sessionTimeoutMs: number;
  /** Every member of a group must ask for the same strategy. */
  strategy: AssignmentStrategy;
}

export interface JoinGroupResponse {
  memberId: string;
  generation: number;
  assignment: TopicPartitions[];
}

export interface GroupMemberRequest {
  groupId: string;
  memberId: string;
  generation: number;
}

export interface PartitionOffset {
  topic: string;
  partition: number;
  offset: bigint;
}

export interface CommitOffsetsRequest extends GroupMemberRequest {
  offsets: PartitionOffset[];
}

export interface FetchOffsetsRequest {
  groupId: string;
}

export interface FetchOffsetsResponse {
  offsets: PartitionOffset[];
}

export interface GroupSummary {
  groupId: string;
  state: 'stable' | 'rebalancing' | 'empty';
  generation: number;
  members: number;
}

/** Which broker coordinates a group (in a cluster: the leader of the group's offsets partition). */
export interface FindCoordinatorResponse {
  brokerId: number;
  host: string;
  port: number;
}

export interface ListGroupsResponse {
  groups: GroupSummary[];
}

export interface GroupMemberView {
  memberId: string;
  assignment: TopicPartitions[];
}

export interface GroupLagView {
  topic: string;
  partition: number;
  committed: bigint;
  /** The partition's high watermark: what the group's consumers can read up to. */
  highWatermark: bigint;
  /** highWatermark − committed (− the log start while nothing is committed). */
  lag: bigint;
}

export interface DescribeGroupResponse {
  group: GroupSummary;
  members: GroupMemberView[];
  lag: GroupLagView[];
}
