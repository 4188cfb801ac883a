// Topic administration and offsets, as thin typed calls over the transport.
import {
  AclAction,
  type AclEntry,
  aclAlterCommand,
  aclListCommand,
} from '../protocol/commands/acl-commands.js';
import type { CommandCodec } from '../protocol/commands/command.js';
import type { ConfigValue, ConfigVersionView } from '../protocol/commands/config-commands.js';
import type {
  DescribeGroupResponse,
  DescribeTopicResponse,
  GroupSummary,
  MetadataResponse,
  OffsetSpec,
  PartitionOffset,
  TopicView,
} from '../protocol/commands/data-types.js';
import type { DrainBrokerResponse } from '../protocol/commands/drain-commands.js';
import type {
  LeaderMove,
  ReassignmentProgress,
  ReassignmentStarted,
  ReassignmentTarget,
} from '../protocol/commands/reassign-commands.js';
import {
  type AlterTopicRequest,
  assertKnownTopicOptions,
  type CreateTopicRequest,
} from '../protocol/commands/topic-commands.js';
import type { VerifyPartitionResponse } from '../protocol/commands/verify-partition.js';
import { errorOf } from '../protocol/error-codes.js';
import { checkAclEntry } from '../security/acl.js';
import type { RequestOptions, Transport } from './transport.js';

export class Admin {
  constructor(
    private readonly transport: Transport,
    private readonly timeoutMs: number,
    private readonly onTopicChanged: (topic: string) => void,
  ) {}

  /**
   * Creates a topic. Unknown options and configuration keys are refused (INVALID_CONFIG naming
   * them); with `ifNotExists` an existing topic of that name is returned as it is (its settings
   * are not changed) instead of TOPIC_ALREADY_EXISTS. `storage: 'memory'` keeps the topic's log
   * in the broker's memory, bounded by retentionBytes (default 64 MiB per partition), lost on
   * restart, refused by a cluster (docs/storage.md, "Memory topics"); the default is 'disk'.
   */
  async createTopic(request: CreateTopicRequest): Promise<TopicView> {
    assertKnownTopicOptions('createTopic', request);
    return this.transport.request('createTopic', request, { timeoutMs: this.timeoutMs });
  }

  /**
   * Changes partitions (grow only) or configuration. Growing a topic that holds keyed messages is
   * refused (PARTITION_GROWTH_MOVES_KEYS) unless `allowKeyMovement` is set: keys would move to
   * other partitions and their streams restart at version 0 there.
   */
  async alterTopic(request: AlterTopicRequest): Promise<TopicView> {
    assertKnownTopicOptions('alterTopic', request);
    const topic = await this.transport.request('alterTopic', request, { timeoutMs: this.timeoutMs });
    this.onTopicChanged(request.name);
    return topic;
  }

  async deleteTopic(name: string): Promise<void> {
    await this.transport.request('deleteTopic', { name }, { timeoutMs: this.timeoutMs });
    this.onTopicChanged(name);
  }

  async listTopics(): Promise<TopicView[]> {
    return (await this.transport.request('listTopics', {}, { timeoutMs: this.timeoutMs })).topics;
  }

  /**
   * The topic, its configuration and its partitions, each with its offsets, leader, replicas, ISR
   * and leader epoch (broker ids; a broker without a cluster is broker 0 and leads them all).
   */
  describeTopic(name: string): Promise<DescribeTopicResponse> {
    return this.transport.request('describeTopic', { name }, { timeoutMs: this.timeoutMs });
  }

  /**
   * The cluster as the broker sees it: its brokers, the controller, and who leads each partition
   * of `topics` (every topic when not given, internal ones included). A topic that cannot be
   * described carries its error (UNKNOWN_TOPIC, TOPIC_OFFLINE) instead of failing the call.
   */
  metadata(topics?: readonly string[]): Promise<MetadataResponse> {
    return this.transport.request('metadata', topics === undefined ? {} : { topics: [...topics] }, {
      timeoutMs: this.timeoutMs,
    });
  }

  async listGroups(): Promise<GroupSummary[]> {
    return (await this.transport.request('listGroups', {}, { timeoutMs: this.timeoutMs })).groups;
  }

  /** Members with their assigned partitions, and committed offset and lag per partition. */
  /**
   * The group's members, assignment and lag. In a cluster the coordinator reports lag for the
   * partitions whose copy it holds; the others' lag is completed here from their leaders' high
   * watermarks (a partition whose leader cannot answer now is left out).
   */
  async describeGroup(groupId: string): Promise<DescribeGroupResponse> {
    const described = await this.transport.request(
      'describeGroup',
      { groupId },
      { timeoutMs: this.timeoutMs },
    );
    const known = new Set(described.lag.map((entry) => `${entry.topic}\0${entry.partition}`));
    const wanted = new Map<string, { topic: string; partition: number }>();
    for (const member of described.members)
      for (const { topic, partitions } of member.assignment)
        for (const partition of partitions) wanted.set(`${topic}\0${partition}`, { topic, partition });
    const committed = new Map<string, bigint>();
    for (const offset of await this.groupOffsets(groupId)) {
      const key = `${offset.topic}\0${offset.partition}`;
      committed.set(key, offset.offset);
      wanted.set(key, { topic: offset.topic, partition: offset.partition });
    }
    const missing = [...wanted.entries()].filter(([key]) => !known.has(key));
    if (missing.length === 0) return described;
    const completed = await Promise.all(
      missing.map(async ([key, { topic, partition }]) => {
        try {
          const highWatermark = await this.offsetOf(topic, partition, 'latest');
          const at = committed.get(key) ?? -1n;
          return [
            { topic, partition, committed: at, highWatermark, lag: highWatermark - (at < 0n ? 0n : at) },
          ];
        } catch {
          return [];
        }
      }),
    );
    const lag = [...described.lag, ...completed.flat()].sort(
      (a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition,
    );
    return { ...described, lag };
  }

  async groupOffsets(groupId: string): Promise<PartitionOffset[]> {
    return (await this.transport.request('fetchOffsets', { groupId }, { timeoutMs: this.timeoutMs })).offsets;
  }

  /** The offset of a partition at its start, its end, or the first message at or after a time. */
  async offsetOf(topic: string, partition: number, spec: OffsetSpec): Promise<bigint> {
    return (
      await this.transport.request('listOffsets', { topic, partition, spec }, { timeoutMs: this.timeoutMs })
    ).offset;
  }

  /**
   * Sets the brokers' reloadable settings for the whole cluster (keys as in the configuration
   * file, values as written there, e.g. `{ 'server.idle_timeout': '30s' }`); every broker applies
   * them without a restart, over its own file. INVALID_CONFIG for an unknown key or a bad value,
   * CONFIG_NOT_RELOADABLE for a setting that needs a restart, CLUSTER_CONFIG_NEEDS_CLUSTER on a
   * broker without a cluster. Returns the new version.
   */
  configSet(
    settings: Readonly<Record<string, ConfigValue>>,
    options: { changedBy?: string; note?: string } = {},
  ): Promise<ConfigVersionView> {
    const values = Object.fromEntries(Object.entries(settings).map(([key, value]) => [key, String(value)]));
    return this.transport.request(
      'configSet',
      { settings: values, ...options },
      { timeoutMs: this.timeoutMs },
    );
  }

  /**
   * Stops setting `keys` for the cluster: every broker goes back to its own value (file,
   * environment, flags, default) for them. Returns the new version.
   */
  configUnset(
    keys: readonly string[],
    options: { changedBy?: string; note?: string } = {},
  ): Promise<ConfigVersionView> {
    return this.transport.request(
      'configSet',
      { settings: {}, unset: [...keys], ...options },
      { timeoutMs: this.timeoutMs },
    );
  }

  /**
   * The cluster's configuration versions, oldest first, each with what it changed: every version
   * when `topic` is not given, the brokers' settings for `null`, one topic's for its name.
   */
  async configHistory(topic?: string | null): Promise<ConfigVersionView[]> {
    return (
      await this.transport.request('configHistory', topic === undefined ? {} : { topic }, {
        timeoutMs: this.timeoutMs,
      })
    ).versions;
  }

  /**
   * Makes the settings of `version` current again, as a new version (a topic's version is applied
   * to the topic through the controller). UNKNOWN_CONFIG_VERSION when there is no such version.
   */
  configRollback(version: number, options: { changedBy?: string } = {}): Promise<ConfigVersionView> {
    return this.transport.request('configRollback', { version, ...options }, { timeoutMs: this.timeoutMs });
  }

  /**
   * Moves partitions to new replicas (the first is the preferred leader). The controller adds the
   * new replicas, waits until they caught up, then drops the old ones and hands leadership to the
   * first new replica; follow it with `reassignments()`. Refused whole when a target is bad:
   * UNKNOWN_TOPIC, UNKNOWN_PARTITION, UNKNOWN_BROKER, DUPLICATE_REPLICA,
   * REPLICATION_FACTOR_MISMATCH (unless `allowReplicationFactorChange`), REASSIGNMENT_IN_PROGRESS
   * (unless `replace`: a partition under way takes the new target; back to its old replicas
   * cancels a move); NEEDS_CLUSTER on a broker without a cluster.
   */
  async reassignPartitions(
    partitions: readonly ReassignmentTarget[],
    options: { allowReplicationFactorChange?: boolean; replace?: boolean } = {},
  ): Promise<ReassignmentStarted[]> {
    const request = {
      partitions: [...partitions],
      ...(options.allowReplicationFactorChange === true ? { allowReplicationFactorChange: true } : {}),
      ...(options.replace === true ? { replace: true } : {}),
    };
    const started = await this.transport.request('reassignPartitions', request, {
      timeoutMs: this.timeoutMs,
    });
    for (const topic of new Set(partitions.map((p) => p.topic))) this.onTopicChanged(topic);
    return started.partitions;
  }

  /** The reassignments under way: replicas now, target, ISR and leader of each partition. */
  async reassignments(): Promise<ReassignmentProgress[]> {
    return (await this.transport.request('reassignmentStatus', {}, { timeoutMs: this.timeoutMs })).partitions;
  }

  /**
   * Moves leadership of every partition `brokerId` leads to another in-sync replica and keeps it
   * from being elected while drained (before a planned stop). Answers with what moved and what
   * could not (no other live in-sync replica).
   */
  drainBroker(brokerId: number): Promise<DrainBrokerResponse> {
    return this.transport.request(
      'drainBroker',
      { brokerId },
      { timeoutMs: Math.max(this.timeoutMs, 30_000) },
    );
  }

  /** Ends a drain: the broker may be elected leader again (see `electLeaders` to move leadership back). */
  undrainBroker(brokerId: number): Promise<DrainBrokerResponse> {
    return this.transport.request('drainBroker', { brokerId, cancel: true }, { timeoutMs: this.timeoutMs });
  }

  /**
   * Preferred-leader election: each partition of `topics` (every topic when not given) is led by
   * its first replica again where that replica is live, in sync and not drained.
   */
  /**
   * Anti-entropy now: every follower replica of `topic` (or of its `partition`) compares its sealed
   * segments with its leader's by their digests and repairs the bytes that differ; the answer says
   * what each found. A broker without a cluster answers NEEDS_CLUSTER.
   */
  verifyPartitions(topic: string, partition?: number): Promise<VerifyPartitionResponse> {
    return this.transport.request(
      'verifyPartition',
      { topic, partition: partition ?? -1, here: false },
      { timeoutMs: Math.max(this.timeoutMs, 600_000) },
    );
  }

  async electLeaders(topics?: readonly string[]): Promise<LeaderMove[]> {
    const request = topics === undefined ? {} : { topics: [...topics] };
    return (
      await this.transport.request('electLeaders', request, { timeoutMs: Math.max(this.timeoutMs, 30_000) })
    ).moved;
  }

  /**
   * Access control lists of a broker with authorization on (authz.enabled), for super-users and
   * principals allowed `describe` (list) or `alter` (create, delete) on the cluster. Create and
   * delete answer how many entries changed; they apply at once to open connections.
   */
  async listAcls(): Promise<AclEntry[]> {
    return (await this.aclCall(aclListCommand, {})).entries;
  }

  async createAcls(entries: readonly AclEntry[]): Promise<number> {
    const checked = entries.map(checkAclEntry);
    return (await this.aclCall(aclAlterCommand, { action: AclAction.ADD, entries: checked })).changed;
  }

  /** ACL_NOT_FOUND when none of `entries` is there. */
  async deleteAcls(entries: readonly AclEntry[]): Promise<number> {
    const checked = entries.map(checkAclEntry);
    return (await this.aclCall(aclAlterCommand, { action: AclAction.REMOVE, entries: checked })).changed;
  }

  /** ACL requests are answered by a broker's connection, outside the command registry. */
  private aclCall<Q, S>(command: CommandCodec<Q, S>, request: Q): Promise<S> {
    const transport = this.transport as Transport & {
      call?: (command: CommandCodec<Q, S>, request: Q, options: RequestOptions) => Promise<S>;
    };
    if (typeof transport.call !== 'function')
      throw errorOf('UNSUPPORTED_FEATURE', 'ACLs are managed over a TCP connection to a broker');
    return transport.call(command, request, { timeoutMs: this.timeoutMs });
  }
}
