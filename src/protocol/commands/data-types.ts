// Request and response shapes of the data-plane commands (topics, produce, fetch, streams,
// producers, groups), shared by the wire codecs, the broker service and the in-process transport.
// Plain data only: no I/O, no classes. Each command's byte layout lives in its own codec file.

export type CleanupPolicyName = 'delete' | 'compact';
export type DurabilityPolicyName = 'always' | 'interval' | 'never';

export interface TopicConfigView {
  retentionMs: number;
  retentionBytes: number;
  cleanup: CleanupPolicyName;
  durability: DurabilityPolicyName;
  flushIntervalMs: number;
  maxMessageBytes: number;
  segmentBytes: number;
  segmentMs: number;
}

export interface TopicView {
  name: string;
  id: string;
  partitions: number;
  createdAt: number;
  config: TopicConfigView;
}

export interface PartitionView {
  partition: number;
  logStartOffset: bigint;
  logEndOffset: bigint;
  sizeBytes: number;
}

export interface CreateTopicRequest {
  name: string;
  partitions?: number;
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

/** acks: 0 = the broker answers before writing (fire and forget), 1 = after the leader wrote it per policy. */
export type Acks = 0 | 1;

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
  logEndOffset: bigint;
  lag: bigint;
}

export interface DescribeGroupResponse {
  group: GroupSummary;
  members: GroupMemberView[];
  lag: GroupLagView[];
}
