// How a cluster member plugs replication into the broker without the broker knowing the cluster:
// the core asks a `ReplicaRoles` before it appends a producer's batch (is this broker the leader,
// at which epoch) and after (when may it acknowledge, per acks), and hands broker-to-broker
// requests (replica fetch, offsets for leader epoch) to a `ReplicaRequestHandler`. A broker
// without a cluster has neither: it is the only replica of everything, as before.

import type { AntiEntropyRequests } from '../protocol/commands/anti-entropy-commands.js';
import type {
  BrokerHeartbeatRequest,
  BrokerHeartbeatResponse,
} from '../protocol/commands/broker-heartbeat-command.js';
import type {
  ConfigHistoryRequest,
  ConfigHistoryResponse,
  ConfigRollbackRequest,
  ConfigSetRequest,
  ConfigVersionView,
} from '../protocol/commands/config-commands.js';
import type {
  Acks,
  AlterTopicRequest,
  CreateTopicRequest,
  FindCoordinatorResponse,
  MetadataRequest,
  MetadataResponse,
  TopicView,
} from '../protocol/commands/data-types.js';
import type { DrainBrokerRequest, DrainBrokerResponse } from '../protocol/commands/drain-commands.js';
import type {
  ElectLeadersRequest,
  ElectLeadersResponse,
  ReassignmentStatusResponse,
  ReassignPartitionsRequest,
  ReassignPartitionsResponse,
} from '../protocol/commands/reassign-commands.js';
import type {
  OffsetsForLeaderEpochRequest,
  OffsetsForLeaderEpochResponse,
  ReplicaFetchRequest,
  ReplicaFetchResponse,
} from '../protocol/commands/replication-commands.js';
import type {
  VerifyPartitionRequest,
  VerifyPartitionResponse,
} from '../protocol/commands/verify-partition.js';

export interface ReplicaRoles {
  /**
   * Before a producer's batch is appended to `topic`/`partition`: the leader epoch to stamp it
   * with, or throws NOT_LEADER (another broker leads), LEADER_NOT_AVAILABLE (none does now) or
   * NOT_ENOUGH_REPLICAS (acks 'all' with an ISR below the topic's minInsyncReplicas).
   */
  leaderEpochForProduce(topic: string, partition: number, acks: Acks): number;
  /**
   * After the leader appended a batch ending at `lastOffset`: resolves when it may be
   * acknowledged (acks 'all': every ISR member holds it), rejects if it cannot be.
   */
  acknowledged(topic: string, partition: number, lastOffset: bigint, acks: Acks): Promise<void>;
  /** Before a consumer read: throws NOT_LEADER when another broker leads the partition. */
  checkRead(topic: string, partition: number): void;
}

export interface ReplicaRequestHandler {
  replicaFetch(request: ReplicaFetchRequest): Promise<ReplicaFetchResponse>;
  offsetsForLeaderEpoch(request: OffsetsForLeaderEpochRequest): Promise<OffsetsForLeaderEpochResponse>;
  /** Digests and bytes of sealed segments for the followers' anti-entropy, when the member runs it. */
  readonly antiEntropy?: AntiEntropyRequests;
  /** PARTITION_VERIFY: the topic's follower replicas check their segments against their leaders now. */
  verifyPartition?(request: VerifyPartitionRequest): Promise<VerifyPartitionResponse>;
}

/** Who holds and leads a partition in the cluster (what describeTopic shows). */
export interface PartitionRoles {
  leader: number;
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
}

/** The cluster's metadata as this member knows it: what METADATA and describeTopic answer. */
export interface ClusterMetadataView {
  metadata(request: MetadataRequest): MetadataResponse;
  /** Every topic of the cluster, as created (what listTopics answers). */
  topics(): CreateTopicRequest[];
  partitionRoles(topic: string, partition: number): PartitionRoles | undefined;
  /** How many partitions the cluster's `topic` has, as this member knows it (undefined: no such topic here). */
  partitionCount(topic: string): number | undefined;
  /**
   * What to answer for a partition this broker holds no copy of: NOT_LEADER or
   * LEADER_NOT_AVAILABLE when the cluster has the topic (this broker is no replica of it, its copy
   * is still opening, or its metadata has not yet seen a topic etcd holds), UNKNOWN_PARTITION past
   * the topic's partitions, UNKNOWN_TOPIC when the cluster has no such topic.
   */
  missingTopic(topic: string, partition: number): Promise<Error>;
}

/**
 * Topic changes in a cluster go through its controller (the copies on every broker follow the
 * metadata); a broker asked directly passes them on here.
 */
export interface ClusterTopics {
  create(request: CreateTopicRequest): Promise<TopicView>;
  alter(request: AlterTopicRequest & { allowKeyMovement?: boolean }): Promise<TopicView>;
  delete(name: string): Promise<void>;
}

/** Consumer groups in a cluster: a group's coordinator is the leader of its offsets partition. */
export interface ClusterGroups {
  /**
   * The broker coordinating `groupId` (creating the offsets topic first when the cluster has none,
   * which only the controller does: NOT_CONTROLLER elsewhere); COORDINATOR_NOT_AVAILABLE while
   * the group's partition has no leader.
   */
  findCoordinator(groupId: string): Promise<FindCoordinatorResponse>;
}

/**
 * Cluster-wide configuration with its history (CONFIG_SET, CONFIG_HISTORY, CONFIG_ROLLBACK); a
 * topic alter in a cluster runs through `alterTopic` so that its configuration is recorded too.
 */
export interface ClusterConfigRequests {
  set(request: ConfigSetRequest): Promise<ConfigVersionView>;
  history(request: ConfigHistoryRequest): Promise<ConfigHistoryResponse>;
  rollback(request: ConfigRollbackRequest): Promise<ConfigVersionView>;
  alterTopic(request: AlterTopicRequest, alter: () => Promise<TopicView>): Promise<TopicView>;
}

/**
 * Operating a cluster (reassignment, drain, leader election): done by its controller; the
 * controller also takes the other brokers' heartbeats (broker liveness).
 */
export interface ClusterOperations {
  reassignPartitions(request: ReassignPartitionsRequest): Promise<ReassignPartitionsResponse>;
  reassignmentStatus(): Promise<ReassignmentStatusResponse>;
  drainBroker(request: DrainBrokerRequest): Promise<DrainBrokerResponse>;
  electLeaders(request: ElectLeadersRequest): Promise<ElectLeadersResponse>;
  brokerHeartbeat(request: BrokerHeartbeatRequest): Promise<BrokerHeartbeatResponse>;
}
