// Consumer groups in a cluster: which broker coordinates a group. A group's committed offsets are
// records of one partition of the replicated internal topic `__consumer_offsets` (by the hash of
// its id), and the leader of that partition coordinates it; so the coordinator moves with that
// partition's leadership, and a new coordinator reads the group's offsets from its own replica.
// The topic is created by the controller the first time a client asks for a coordinator, as
// Kafka does, with as many replicas as the cluster has brokers then (up to the configured three).

import { OFFSETS_RETENTION, OFFSETS_TOPIC } from '../broker/broker-core.js';
import { groupOffsetsPartition } from '../broker/groups/group-placement.js';
import type { ClusterGroups } from '../broker/replica-hooks.js';
import { MemoryStreamerError } from '../common/errors.js';
import type { FindCoordinatorResponse } from '../protocol/commands/data-types.js';
import { errorOf } from '../protocol/error-codes.js';
import type { ClusterMember } from './cluster-member.js';
import { NO_LEADER, type TopicRecord } from './control-plane/metadata-records.js';

export interface ClusterGroupsOptions {
  /** Partitions of `__consumer_offsets` when the cluster creates it (default 8; fixed afterwards). */
  readonly offsetsPartitions?: number;
  /** Its replication factor, capped by the live brokers at creation (default 3). */
  readonly offsetsReplicationFactor?: number;
  /** Segment size of its partitions (default 16 MiB: compaction cleans sealed segments only). */
  readonly offsetsSegmentBytes?: number;
}

/** How long a coordinator lookup waits for a new offsets partition to get its first leader. */
const FIRST_LEADER_WAIT_MS = 10_000;

export class ClusterGroupPlacement implements ClusterGroups {
  constructor(
    private readonly member: ClusterMember,
    private readonly options: ClusterGroupsOptions = {},
  ) {}

  async findCoordinator(groupId: string): Promise<FindCoordinatorResponse> {
    const topic = this.member.metadata.topic(OFFSETS_TOPIC)?.value ?? (await this.createOffsetsTopic());
    const partition = groupOffsetsPartition(groupId, topic.partitions);
    const deadline = Date.now() + FIRST_LEADER_WAIT_MS;
    for (;;) {
      const leader = this.member.metadata.partition(OFFSETS_TOPIC, partition)?.value.leader ?? NO_LEADER;
      const registration = leader === NO_LEADER ? undefined : this.member.metadata.broker(leader);
      if (registration !== undefined) {
        const colon = registration.advertise.lastIndexOf(':');
        return {
          brokerId: leader,
          host: registration.advertise.slice(0, colon).replace(/^\[|\]$/g, ''),
          port: Number(registration.advertise.slice(colon + 1)),
        };
      }
      if (Date.now() >= deadline)
        throw errorOf(
          'COORDINATOR_NOT_AVAILABLE',
          `group ${JSON.stringify(groupId)}: ${OFFSETS_TOPIC}/${partition} has no leader now`,
        );
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  private async createOffsetsTopic(): Promise<TopicRecord> {
    if (!this.member.isController)
      throw errorOf(
        'NOT_CONTROLLER',
        `the cluster has no ${OFFSETS_TOPIC} yet; the controller (broker ${this.member.metadata.controller?.brokerId ?? 'none now'}) creates it`,
      );
    const live = this.member.metadata.brokers().length;
    try {
      return await this.member.controllerService.createTopic({
        name: OFFSETS_TOPIC,
        partitions: this.options.offsetsPartitions ?? 8,
        replicationFactor: Math.max(1, Math.min(this.options.offsetsReplicationFactor ?? 3, live)),
        // Compaction only: the topic defaults' retention would delete a quiet group's offsets.
        config: {
          durability: 'always',
          ...OFFSETS_RETENTION,
          segmentBytes: this.options.offsetsSegmentBytes ?? 16 * 1024 * 1024,
          minInsyncReplicas: 1,
        },
      });
    } catch (error) {
      if (!(error instanceof MemoryStreamerError && error.codeName === 'TOPIC_ALREADY_EXISTS')) throw error;
      // Two lookups at once: the other one created it, and the watch brings it here shortly.
      const deadline = Date.now() + FIRST_LEADER_WAIT_MS;
      for (;;) {
        const existing = this.member.metadata.topic(OFFSETS_TOPIC)?.value;
        if (existing !== undefined) return existing;
        if (Date.now() >= deadline)
          throw errorOf('COORDINATOR_NOT_AVAILABLE', `${OFFSETS_TOPIC} is being created`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  }
}
