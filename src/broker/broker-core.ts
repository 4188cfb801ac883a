// The broker's request semantics, independent of any transport: topics, produce, fetch, offsets,
// producer ids, streams and push subscriptions. The TCP server and the in-process transport both
// call `execute` with decoded requests; neither knows what a partition is.

import { randomUUID } from 'node:crypto';
import { realpath } from 'node:fs/promises';
import { join } from 'node:path';
import type { Tracer } from '@opentelemetry/api';
import { isMemoryStreamerError } from '../common/errors.js';
import { BrokerMetrics, type BrokerStateSource } from '../metrics/broker-metrics.js';
import { type BrokerLogger, silentLogger } from '../metrics/logger.js';
import type {
  AlterTopicRequest,
  CreateTopicRequest,
  DescribeTopicResponse,
  ListOffsetsResponse,
  MetadataResponse,
  ReadStreamResponse,
  SubscribeRequest,
  TopicMetadata,
  TopicView,
} from '../protocol/commands/data-types.js';
import type { CommandName, RequestOf, ResponseOf } from '../protocol/commands/registry.js';
import { assertKnownTopicOptions } from '../protocol/commands/topic-commands.js';
import { errorOf } from '../protocol/error-codes.js';
import { partitionForKey } from '../protocol/partitioner.js';
import { encodeRecordBatch, iterateRecords, splitBatches } from '../protocol/record-batch.js';
import { type AuditCaller, adminCommandEvent, isAuditedCommand } from '../security/audit-events.js';
import type { AuditLog } from '../security/audit-log.js';
import type { PartitionLogConfig, StorageObserver } from '../storage/partition-log.js';
import { endRequestSpan, startRequestSpan, TRACED_OPERATIONS, traceDelivery } from './broker-tracing.js';
import {
  CompactionScheduler,
  type CompactionSettings,
  DEFAULT_COMPACTION_SETTINGS,
  type PartitionCompaction,
} from './compaction-scheduler.js';
import { type DataDirLock, dataDirUnusable, lockDataDir } from './data-dir-lock.js';
import type { FdBudget } from './fd-budget.js';
import { GroupCoordinator } from './groups/group-coordinator.js';
import { groupOffsetsPartition, validateGroupId } from './groups/group-placement.js';
import {
  Partition,
  type PartitionLimits,
  type PushSink,
  type PushSubscription,
} from './partitions/partition.js';
import { ProducerIdAllocator } from './producers/producer-id-allocator.js';
import {
  DEFAULT_TOPIC_CONFIG,
  INTERNAL_TOPIC_PREFIX,
  type TopicConfig,
  type TopicDescription,
  validatePartitionCount,
  validateReplicationFactor,
} from './topics/topic-config.js';

/**
 * A file-system error from a topic change that was undone, as a typed error: out of descriptors
 * or space says so; anything else is a storage I/O error. Typed errors pass unchanged.
 */
function undoneError(what: string, error: unknown): unknown {
  if (!(error instanceof Error) || isMemoryStreamerError(error)) return error;
  const code = (error as NodeJS.ErrnoException).code;
  const name =
    code === 'EMFILE' || code === 'ENFILE'
      ? 'FILE_LIMIT_EXCEEDED'
      : code === 'ENOSPC' || code === 'EDQUOT'
        ? 'STORAGE_FULL'
        : 'STORAGE_IO';
  return errorOf(name, `${what} failed and was undone: ${error.message}`, { cause: error });
}

/** Internal topics are written by the broker only. */
function refuseInternal(topic: string): void {
  if (topic.startsWith(INTERNAL_TOPIC_PREFIX)) {
    throw errorOf('INVALID_TOPIC_NAME', `${JSON.stringify(topic)} is internal to the broker`);
  }
}

/** The internal topic holding committed consumer-group offsets (compacted: the latest per key). */
export const OFFSETS_TOPIC = '__consumer_offsets';
/**
 * How `__consumer_offsets` keeps its records: compaction only. A committed offset stays until the
 * group commits another for its partition, however old it is (the topic defaults' retention would
 * delete a quiet group's offsets).
 */
export const OFFSETS_RETENTION = { cleanup: 'compact', retentionMs: -1, retentionBytes: -1 } as const;
/** Partitions of all topics together a broker takes unless configured otherwise (topics.max_partitions). */
export const DEFAULT_MAX_PARTITIONS = 10_000;
/** How often a cluster member writes its partitions' high watermarks to their checkpoint files. */
const HIGH_WATERMARK_CHECKPOINT_MS = 5_000;
/** How long a group request waits for this broker's replica to take the lead the metadata gives it. */
const COORDINATOR_TAKEOVER_WAIT_MS = 5_000;
/** Segment size of the offsets topic: small, because compaction only cleans sealed segments. */
const OFFSETS_SEGMENT_BYTES = 16 * 1024 * 1024;

import type {
  ClusterConfigRequests,
  ClusterGroups,
  ClusterMetadataView,
  ClusterOperations,
  ClusterTopics,
  ReplicaRequestHandler,
  ReplicaRoles,
} from './replica-hooks.js';
import { TopicRegistry } from './topics/topic-registry.js';

export interface BrokerCoreOptions {
  dataDir: string;
  /**
   * This broker's id in METADATA and in the leader, replicas and ISR of its partitions (0 unless
   * given: a broker without a cluster is the only one, and leads every partition).
   */
  brokerId?: number;
  /** Defaults for topics created without explicit settings. */
  topicDefaults?: Partial<TopicConfig>;
  defaultPartitions?: number;
  /** Largest records section a compressed batch may inflate to (decompression-bomb guard). */
  maxDecompressedBytes?: number;
  /** How partition logs make their append writes (storage.inline_write_*; docs/storage.md, "Append path"). */
  storageWrites?: Partial<
    Pick<PartitionLogConfig, 'inlineWriteMaxBytes' | 'inlineWriteSlowMs' | 'inlineWriteCooldownMs'>
  >;
  /** How often retention (and compaction, for compacted topics that are due) runs over every partition. */
  retentionCheckMs?: number;
  /** Log compaction of `cleanup: compact` topics (broker-wide; docs/configuration.md `compaction.*`). */
  compaction?: Partial<CompactionSettings>;
  /** Segment size of `__consumer_offsets` when the broker creates it (default 16 MiB). */
  offsetsSegmentBytes?: number;
  /**
   * A cluster member: committed group offsets live in the cluster's replicated `__consumer_offsets`
   * (its partitions placed like any topic's), and this broker coordinates the groups whose
   * partition it leads; the core then neither creates nor reads a local offsets topic at start.
   * Partition logs keep their replicated high watermark across restarts (a checkpoint file written
   * every few seconds and at close), so a restarted leader shows nothing its followers may lack.
   */
  clusterMember?: boolean;
  /** Longest long-poll a fetch may ask for. */
  maxFetchWaitMs?: number;
  /** Largest fetch or push read. */
  maxFetchBytes?: number;
  /**
   * Partitions of all topics together that this broker takes (default 10,000): each costs memory
   * (docs/operations.md), so a client cannot grow the broker past what the operator sized it for.
   */
  maxPartitions?: number;
  logger?: BrokerLogger;
  /** OpenTelemetry tracer for request and delivery spans; none when not set (and no cost). */
  tracer?: Tracer;
}

/** Commands a transport passes straight to `execute` (subscriptions are per session). */
export type CoreCommand = Exclude<CommandName, 'subscribe' | 'unsubscribe' | 'ping'>;

/** A topic the broker could not open at start: it is offline, the rest of the broker serves. */
export interface OfflineTopic {
  topic: string;
  reason: string;
}

export class BrokerCore {
  readonly id = randomUUID();
  readonly dataDir: string;
  /**
   * How the file-descriptor limit is split (set by `Broker.start`, reported on the admin API); null
   * where the limit cannot be read or for a core used on its own.
   */
  fileBudget: FdBudget | null = null;
  /** Files that creates and growths under way will open, counted against the budget meanwhile. */
  private readonly realDataDir: string;
  private readonly lock: DataDirLock;
  /** Topics that could not be opened at start, by name, with the reason. */
  private readonly offline = new Map<string, string>();
  /** Partitions of topics being created or grown right now (reservePartitions). */
  private pendingPartitions = 0;
  /**
   * Topics being created or grown: produces to them wait until the change is committed or undone,
   * so nothing is acknowledged in a partition that a failed change removes again, and the check
   * for keyed data before a growth commits sees every message written at the old count.
   */
  private readonly changing = new Map<string, Promise<void>>();
  /** Partitions refusing writes for lack of space (logged once until a write succeeds again). */
  private readonly fullPartitions = new Set<Partition>();
  private readonly registry: TopicRegistry;
  private readonly producerIds: ProducerIdAllocator;
  private readonly partitions = new Map<string, Partition[]>();
  private readonly options: Required<
    Omit<
      BrokerCoreOptions,
      'topicDefaults' | 'logger' | 'tracer' | 'compaction' | 'offsetsSegmentBytes' | 'clusterMember'
    >
  >;
  private readonly groupsInCluster: boolean;
  private readonly offsetsSegmentBytes: number;
  private readonly compaction: CompactionScheduler;
  private readonly tracer: Tracer | null;
  readonly logger: BrokerLogger;
  private retentionTimer: NodeJS.Timeout | null = null;
  private checkpointTimer: NodeJS.Timeout | null = null;
  private closed = false;
  readonly groups: GroupCoordinator;
  readonly metrics = new BrokerMetrics();
  /** Partitions, lag, connections and memory as they are now: read by metrics and the status page. */
  readonly state: BrokerStateSource;
  private readonly storageObserver: StorageObserver = {
    onSync: (seconds, cause) => this.metrics.recordSync(seconds, cause),
  };
  /**
   * Where clients reach this broker over TCP, as METADATA reports it: set by whoever starts the
   * TCP listener once it is bound (the advertised address when one is configured); null for a
   * broker that is reached in process only.
   */
  advertisedListener: { host: string; port: number } | null = null;
  /** Set by a cluster member: who leads each partition, and when a write may be acknowledged. */
  replicaRoles: ReplicaRoles | null = null;
  /** Set by a cluster member: answers other brokers' replica fetches and epoch queries. */
  replicaRequests: ReplicaRequestHandler | null = null;
  /**
   * Set by a cluster member: topics are created through the cluster's controller (the replicas
   * appear on their brokers from the metadata), not in this broker's storage directly.
   */
  clusterTopics: ClusterTopics | null = null;
  /** Set by a cluster member: METADATA and describeTopic answer the cluster's view. */
  clusterMetadata: ClusterMetadataView | null = null;
  /** Set by a cluster member: which broker coordinates a group (FIND_COORDINATOR). */
  clusterGroups: ClusterGroups | null = null;
  /** Set by a cluster member: cluster-wide configuration and its history (none without a cluster). */
  clusterConfig: ClusterConfigRequests | null = null;
  /**
   * Set by a cluster member: whether the controller has not answered this broker's heartbeats for
   * the fencing time (it is self-fenced) and how long it has been silent. A fenced broker
   * coordinates no group, as it leads no partition: the controller may have moved its groups'
   * offsets partitions, and with them the groups, to other brokers.
   */
  selfFence: { readonly selfFenced: boolean; readonly silentForMs: number } | null = null;
  /**
   * In a cluster, the `__consumer_offsets` partitions this broker leads, each with the load of its
   * committed offsets: their groups are coordinated here once it is done.
   */
  private readonly coordinated = new Map<number, { loaded: Promise<void> }>();
  /** Set by a cluster member: reassignment, drain and leader election (NEEDS_CLUSTER without). */
  clusterOperations: ClusterOperations | null = null;
  /** Set by the network server so metrics can report connections and memory use. */
  connectionStats: () => { connections: number; heldBytes: number } = () => ({
    connections: 0,
    heldBytes: 0,
  });

  private constructor(
    options: BrokerCoreOptions,
    registry: TopicRegistry,
    producerIds: ProducerIdAllocator,
    lock: DataDirLock,
    realDataDir: string,
  ) {
    this.dataDir = options.dataDir;
    this.lock = lock;
    this.realDataDir = realDataDir;
    this.registry = registry;
    this.producerIds = producerIds;
    this.logger = options.logger ?? silentLogger;
    this.tracer = options.tracer ?? null;
    this.groupsInCluster = options.clusterMember === true;
    this.groups = new GroupCoordinator({
      // In a cluster the coordinator need not hold a copy of the group's topics.
      // Throws UNKNOWN_TOPIC for a topic that does not exist (the coordinator counts it as 0).
      partitionsOf: (topic) =>
        this.clusterMetadata?.partitionCount(topic) ?? this.registry.require(topic).partitions,
      // In a cluster the coordinator may hold no copy of a deleted topic (so `deleteLocal` never
      // runs here for it): its metadata tells that the topic is gone. A broker alone forgets a
      // topic's offsets when it deletes the topic. Internal topics are each broker's own, not in
      // the cluster's metadata.
      topicExists: (topic) => !this.goneFromCluster(topic),
      highWatermark: (topic, partition) => {
        if (this.clusterMetadata === null) return this.partition(topic, partition).log.highWatermark;
        // In a cluster only a partition's leader knows its high watermark (a follower's lags it,
        // and a broker that is no replica of it holds an empty copy, if any): null elsewhere.
        if (this.registry.get(topic) === undefined) return null;
        try {
          this.replicaRoles?.checkRead(topic, partition);
        } catch {
          return null;
        }
        return this.partition(topic, partition).log.highWatermark;
      },
      store: {
        append: (groupId, offsets) => this.appendOffsets(groupId, offsets),
        // Tombstones (a null value): compaction drops the key, and a restart reads it as gone.
        remove: (groupId, partitions) =>
          this.appendOffsets(
            groupId,
            partitions.map((p) => ({ ...p, offset: null })),
          ),
      },
      logger: this.logger,
    });
    this.state = {
      partitions: () =>
        [...this.partitions.values()].flatMap((list) =>
          list.map((p) => ({
            topic: p.topic,
            partition: p.index,
            logStartOffset: p.log.logStartOffset,
            highWatermark: p.log.highWatermark,
            logEndOffset: p.log.logEndOffset,
            sizeBytes: p.log.sizeBytes,
            inlineWrites: p.log.inlineWrites,
            inlineWriteFallbacks: p.log.inlineWriteFallbacks,
            poolWrites: p.log.writeMode === 'pool',
          })),
        ),
      groupLag: () =>
        this.groups
          .list()
          .flatMap((g) => this.groups.describe(g.groupId).lag.map((l) => ({ group: g.groupId, ...l }))),
      connections: () => this.connectionStats().connections,
      heldBytes: () => this.connectionStats().heldBytes,
      offlineTopics: () => this.offlineTopics(),
    };
    this.metrics.attach(this.state);
    this.options = {
      dataDir: options.dataDir,
      defaultPartitions: options.defaultPartitions ?? 1,
      maxDecompressedBytes: options.maxDecompressedBytes ?? 64 * 1024 * 1024,
      retentionCheckMs: options.retentionCheckMs ?? 60_000,
      maxFetchWaitMs: options.maxFetchWaitMs ?? 30_000,
      maxFetchBytes: options.maxFetchBytes ?? 8 * 1024 * 1024,
      maxPartitions: options.maxPartitions ?? DEFAULT_MAX_PARTITIONS,
      brokerId: options.brokerId ?? 0,
      storageWrites: options.storageWrites ?? {},
    };
    this.offsetsSegmentBytes = options.offsetsSegmentBytes ?? OFFSETS_SEGMENT_BYTES;
    this.compaction = new CompactionScheduler({
      settings: { ...DEFAULT_COMPACTION_SETTINGS, ...options.compaction },
      maxDecompressedBytes: this.options.maxDecompressedBytes,
      compactedPartitions: (topic) =>
        [...this.partitions.entries()]
          .filter(
            ([name]) =>
              (topic === undefined || name === topic) &&
              this.registry.get(name)?.config.cleanup === 'compact',
          )
          .flatMap(([, list]) => list),
      metrics: this.metrics,
      logger: this.logger,
    });
  }

  /**
   * Takes the data directory's lock (one broker per directory: DATA_DIR_LOCKED names the holder),
   * then opens every topic. A topic that cannot be opened is logged, set offline and isolated:
   * the rest of the broker starts and serves.
   */
  static async start(options: BrokerCoreOptions): Promise<BrokerCore> {
    const logger = options.logger ?? silentLogger;
    const lock = await lockDataDir(options.dataDir, { logger });
    let core: BrokerCore | null = null;
    try {
      const usable = <T>(what: string, opening: Promise<T>): Promise<T> =>
        opening.catch((error: unknown) => {
          if (isMemoryStreamerError(error)) throw error;
          throw dataDirUnusable(lock.dataDir, `${what} cannot be opened`, error);
        });
      const registry = await usable(
        'its topics directory',
        TopicRegistry.open(options.dataDir, {
          defaults: { ...DEFAULT_TOPIC_CONFIG, ...options.topicDefaults },
          defaultPartitions: options.defaultPartitions ?? 1,
        }),
      );
      const producerIds = await usable(
        'its producer id file',
        ProducerIdAllocator.open(join(options.dataDir, 'broker')),
      );
      core = new BrokerCore(options, registry, producerIds, lock, await realpath(lock.dataDir));
      for (const [name, reason] of registry.damaged) core.setOffline(name, reason);
      for (const listed of registry.list()) {
        // Repaired before its partitions open: their logs take retention settings at open.
        const topic = listed.name === OFFSETS_TOPIC ? await core.repairOffsetsTopic(listed) : listed;
        if (topic.name === OFFSETS_TOPIC && !core.groupsInCluster) await core.openPartitions(topic, 0);
        else await core.openTopicIsolated(topic);
      }
      if (!core.groupsInCluster) await core.openOffsetsTopic();
      core.retentionTimer = setInterval(() => void core?.maintain(), core.options.retentionCheckMs);
      core.retentionTimer.unref();
      if (core.groupsInCluster) {
        core.checkpointTimer = setInterval(
          () => void core?.checkpointHighWatermarks(),
          HIGH_WATERMARK_CHECKPOINT_MS,
        );
        core.checkpointTimer.unref();
      }
      return core;
    } catch (error) {
      if (core !== null) await core.close().catch(() => undefined);
      else await lock.release();
      throw error;
    }
  }

  /** Opens a topic at start; a failure sets it offline (logged, requests get TOPIC_OFFLINE). */
  private async openTopicIsolated(topic: TopicDescription): Promise<void> {
    try {
      await this.openPartitions(topic, 0);
    } catch (error) {
      await this.closePartitions(topic.name);
      this.setOffline(topic.name, (error as Error).message);
    }
  }

  private setOffline(topic: string, reason: string): void {
    this.offline.set(topic, reason);
    this.logger.error(
      { topic, dir: this.registry.topicDir(topic), reason },
      'topic could not be opened: it is offline until a restart opens it (fix or delete it); the rest of the broker serves',
    );
  }

  /** The data directory as the kernel names it (symlinks resolved): open files are matched on it. */
  get storageDir(): string {
    return this.realDataDir;
  }

  /** Topics that could not be opened at start, with the reason (status page, metrics). */
  offlineTopics(): OfflineTopic[] {
    return [...this.offline].map(([topic, reason]) => ({ topic, reason }));
  }

  private refuseOffline(topic: string): void {
    const reason = this.offline.get(topic);
    if (reason !== undefined) throw errorOf('TOPIC_OFFLINE', `${topic}: ${reason}`);
  }

  private async closePartitions(topic: string, from = 0): Promise<void> {
    const list = this.partitions.get(topic) ?? [];
    for (const partition of list.slice(from)) await partition.close().catch(() => undefined);
    if (from === 0) this.partitions.delete(topic);
    else list.length = Math.min(list.length, from);
  }

  /**
   * Refuses, before anything is created, a topic or growth that would take the broker past
   * `maxPartitions` (PARTITION_LIMIT_EXCEEDED); else holds the partitions until `release` is called,
   * so concurrent creations cannot pass the limit together.
   */
  private reservePartitions(topic: string, count: number): () => void {
    if (count <= 0) return () => undefined;
    const held = this.registry
      .list()
      .filter((t) => !t.name.startsWith(INTERNAL_TOPIC_PREFIX))
      .reduce((sum, t) => sum + t.partitions, 0);
    const limit = this.options.maxPartitions;
    if (held + this.pendingPartitions + count > limit)
      throw errorOf(
        'PARTITION_LIMIT_EXCEEDED',
        `topic ${topic}: ${count} new partition(s) on top of the ${held + this.pendingPartitions} this broker holds ` +
          `would pass topics.max_partitions = ${limit}; each partition costs memory (docs/operations.md), ` +
          'raise the setting if the broker is sized for more',
      );
    this.pendingPartitions += count;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.pendingPartitions -= count;
    };
  }

  private limitsFor(topic: TopicDescription): PartitionLimits {
    return {
      maxBatchBytes: topic.config.maxMessageBytes,
      maxDecompressedBytes: this.options.maxDecompressedBytes,
      keysRequired: topic.config.cleanup === 'compact',
    };
  }

  private logConfigFor(topic: TopicDescription) {
    return {
      segmentBytes: topic.config.segmentBytes,
      segmentMs: topic.config.segmentMs,
      durability: topic.config.durability,
      flushIntervalMs: topic.config.flushIntervalMs,
      retentionMs: topic.config.retentionMs,
      retentionBytes: topic.config.retentionBytes,
      ...this.options.storageWrites,
    };
  }

  private async openPartitions(topic: TopicDescription, from: number): Promise<void> {
    const list = this.partitions.get(topic.name) ?? [];
    for (let p = from; p < topic.partitions; p++) {
      const partition = await Partition.open({
        topic: topic.name,
        index: p,
        dir: this.registry.partitionDir(topic.name, p),
        config: this.logConfigFor(topic),
        limits: this.limitsFor(topic),
        observer: this.storageObserver,
        keepHighWatermark: this.groupsInCluster,
        storage: topic.storage,
      });
      const recovery = partition.log.recovery;
      const where = { topic: topic.name, partition: p };
      if (partition.log.highWatermarkCheckpoint === 'corrupt')
        this.logger.warn(
          where,
          'high-watermark.checkpoint is corrupt: the partition shows what its log holds until its leader sets the high watermark',
        );
      if (recovery.truncation !== null) {
        this.logger.warn(
          {
            ...where,
            bytes: recovery.truncatedBytes,
            offset: recovery.truncation.offset,
            reason: recovery.truncation.reason,
          },
          'recovery truncated a torn tail',
        );
      }
      if (recovery.corruption !== null) {
        this.logger.error(
          {
            ...where,
            segment: recovery.corruption.segment,
            position: recovery.corruption.position,
            reason: recovery.corruption.reason,
          },
          'corrupt data: the partition serves nothing past it and refuses writes',
        );
      }
      if (recovery.unsavedIndexes > 0) {
        this.logger.warn(
          { ...where, indexes: recovery.unsavedIndexes },
          'rebuilt indexes could not be written (disk full?); they are used from memory and rebuilt at the next start',
        );
      }
      const streams = recovery.streams;
      if (streams !== undefined && streams.unsaved > 0) {
        this.logger.warn(
          { ...where, files: streams.unsaved },
          'rebuilt stream index files could not be written (disk full?); they are used from memory and rebuilt at the next start',
        );
      }
      if (streams?.baseUnknown) {
        this.logger.warn(
          where,
          'stream versions at the log start are unknown (no stream checkpoint): streams with messages before it count their sequences from 0 again',
        );
      }
      list.push(partition);
    }
    this.partitions.set(topic.name, list);
  }

  /**
   * Committed group offsets live in the internal topic `__consumer_offsets` (one partition,
   * durability always). Record key: `<group>\0<topic>\0<partition>`; value: the offset in
   * decimal. At start the topic is read back; the last record per key wins.
   */
  private async openOffsetsTopic(): Promise<void> {
    const existing = this.registry.get(OFFSETS_TOPIC);
    if (existing === undefined) {
      const topic = await this.registry.create(
        {
          name: OFFSETS_TOPIC,
          partitions: 1,
          config: {
            durability: 'always',
            ...OFFSETS_RETENTION,
            segmentBytes: this.offsetsSegmentBytes,
          },
        },
        { internal: true },
      );
      await this.openPartitions(topic, 0);
    }
    for (const entry of await this.readCommittedOffsets(0)) this.groups.restore(entry.groupId, [entry]);
  }

  /**
   * An existing `__consumer_offsets` created by a broker before compaction existed, or with the
   * topic defaults' retention (which deletes committed offsets by age or size): compaction only
   * from now on.
   */
  private async repairOffsetsTopic(existing: TopicDescription): Promise<TopicDescription> {
    const { cleanup, retentionMs, retentionBytes, segmentBytes } = existing.config;
    if (cleanup === 'compact' && retentionMs === -1 && retentionBytes === -1) return existing;
    return this.registry.alter({
      name: OFFSETS_TOPIC,
      config: {
        ...OFFSETS_RETENTION,
        ...(cleanup === 'compact' ? {} : { segmentBytes: Math.min(segmentBytes, this.offsetsSegmentBytes) }),
      },
    });
  }

  /** The committed offsets one `__consumer_offsets` partition holds (the last record per key wins). */
  private async readCommittedOffsets(
    index: number,
  ): Promise<Iterable<{ groupId: string; topic: string; partition: number; offset: bigint }>> {
    const log = this.partition(OFFSETS_TOPIC, index).log;
    const latest = new Map<string, { groupId: string; topic: string; partition: number; offset: bigint }>();
    // Keys and values are copied into strings, so the replay's reused buffers are safe here.
    const collect = (data: Buffer): void => {
      for (const batch of splitBatches(data)) {
        for (const record of iterateRecords(batch, {
          maxDecompressedBytes: this.options.maxDecompressedBytes,
        })) {
          if (record.key === null) continue;
          // A tombstone: the group's offset of a deleted topic, forgotten.
          if (record.value === null) {
            latest.delete(record.key.toString('latin1'));
            continue;
          }
          const [groupId, topic, partition] = record.key.toString('utf8').split('\0');
          if (groupId === undefined || topic === undefined || partition === undefined) continue;
          latest.set(record.key.toString('latin1'), {
            groupId,
            topic,
            partition: Number(partition),
            offset: BigInt(record.value.toString()),
          });
        }
      }
    };
    for await (const { data } of log.replay(log.logStartOffset, 1 << 20)) collect(data);
    // A new leader's high watermark may lag what its log holds (the followers tell it with their
    // next fetch): commits the old coordinator acknowledged are past it, in this log all the same.
    for (let at = log.highWatermark; at < log.logEndOffset; ) {
      const { data, nextOffset } = await log.readForReplica(at, 1 << 20);
      if (data.length === 0) break;
      collect(data);
      at = nextOffset;
    }
    return latest.values();
  }

  /** Writes every partition's moved high watermark to its checkpoint (a cluster member's timer). */
  private async checkpointHighWatermarks(): Promise<void> {
    for (const list of this.partitions.values()) {
      for (const partition of list) {
        await partition.log
          .checkpointHighWatermark()
          .catch((error: unknown) =>
            this.logger.warn(
              { topic: partition.topic, partition: partition.index, reason: (error as Error).message },
              'high watermark checkpoint not written; the next one tries again',
            ),
          );
      }
    }
  }

  /** The `__consumer_offsets` partition that holds `groupId`'s offsets (a broker alone has one). */
  private offsetsPartitionOf(groupId: string): number {
    const topic = this.registry.get(OFFSETS_TOPIC);
    if (topic === undefined)
      throw errorOf('NOT_COORDINATOR', `broker ${this.options.brokerId} holds no group offsets`);
    return groupOffsetsPartition(groupId, topic.partitions);
  }

  /**
   * Before a group request: in a cluster, throws NOT_COORDINATOR unless this broker leads the
   * group's offsets partition and is not fenced, and waits until that partition's committed
   * offsets are loaded.
   */
  private async coordinatorReady(groupId: string): Promise<void> {
    if (!this.groupsInCluster) return;
    const deadline = Date.now() + COORDINATOR_TAKEOVER_WAIT_MS;
    for (;;) {
      this.refuseWhileFenced(groupId);
      const topic = this.registry.get(OFFSETS_TOPIC);
      const index = topic === undefined ? -1 : groupOffsetsPartition(groupId, topic.partitions);
      const entry = this.coordinated.get(index);
      if (entry !== undefined) {
        await entry.loaded;
        // Still coordinated here once the offsets are read (not resigned or fenced meanwhile).
        if (this.coordinated.get(index) !== entry) continue;
        this.refuseWhileFenced(groupId);
        return;
      }
      // The metadata names the new leader a moment before its replica takes the lead: wait for it.
      const view = this.clusterMetadata?.metadata({ topics: [OFFSETS_TOPIC] }).topics[0];
      const count = view?.partitions.length ?? 0;
      const partition = count === 0 ? -1 : groupOffsetsPartition(groupId, count);
      const leader = view?.partitions[partition]?.leader;
      if (leader !== this.options.brokerId || Date.now() >= deadline)
        throw errorOf(
          'NOT_COORDINATOR',
          `group ${JSON.stringify(groupId)} is coordinated by the leader of ${OFFSETS_TOPIC}/${partition} (broker ${leader ?? 'unknown'}), not broker ${this.options.brokerId}`,
        );
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** A self-fenced broker (see `selfFence`) answers every group request NOT_COORDINATOR. */
  private refuseWhileFenced(groupId: string): void {
    const fence = this.selfFence;
    if (fence === null || !fence.selfFenced) return;
    throw errorOf(
      'NOT_COORDINATOR',
      `group ${JSON.stringify(groupId)}: broker ${this.options.brokerId} is fenced (no heartbeat answered by the controller for ${fence.silentForMs} ms)`,
    );
  }

  /**
   * A cluster member became leader of `__consumer_offsets` partition `index`: the groups stored
   * there are coordinated here from now on, once their committed offsets are read back.
   */
  coordinateGroupPartition(index: number): void {
    if (!this.groupsInCluster || this.coordinated.has(index)) return;
    const entry = { loaded: Promise.resolve() };
    entry.loaded = this.readCommittedOffsets(index).then(
      (offsets) => {
        if (this.coordinated.get(index) !== entry) return;
        for (const offset of offsets) this.groups.restore(offset.groupId, [offset]);
        this.logger.info({ partition: index }, 'coordinating the groups of this offsets partition');
      },
      (error: unknown) => {
        if (this.coordinated.get(index) === entry) this.coordinated.delete(index);
        this.logger.error(
          { partition: index, reason: (error as Error).message },
          'group offsets could not be read; their groups are not coordinated here',
        );
        throw errorOf('COORDINATOR_NOT_AVAILABLE', `${OFFSETS_TOPIC}/${index}: ${(error as Error).message}`);
      },
    );
    entry.loaded.catch(() => undefined);
    this.coordinated.set(index, entry);
  }

  /** Leadership of `__consumer_offsets` partition `index` moved away: so do its groups. */
  resignGroupPartition(index: number): void {
    if (!this.coordinated.delete(index)) return;
    const partitions = this.registry.get(OFFSETS_TOPIC)?.partitions ?? 0;
    this.groups.unload((groupId) => groupOffsetsPartition(groupId, partitions) === index);
  }

  private async appendOffsets(
    groupId: string,
    offsets: readonly { topic: string; partition: number; offset: bigint | null }[],
  ): Promise<void> {
    if (offsets.length === 0) return;
    const batch = encodeRecordBatch(
      offsets.map((o) => ({
        key: `${groupId}\0${o.topic}\0${o.partition}`,
        value: o.offset === null ? null : o.offset.toString(),
      })),
    );
    const index = this.offsetsPartitionOf(groupId);
    const partition = this.partition(OFFSETS_TOPIC, index);
    const roles = this.replicaRoles;
    try {
      // In a cluster a commit is acknowledged once every in-sync replica of its partition holds it,
      // so it survives the coordinator's broker.
      let leaderEpoch: number | undefined;
      try {
        leaderEpoch = roles?.leaderEpochForProduce(OFFSETS_TOPIC, index, 'all');
      } catch (error) {
        if (isMemoryStreamerError(error) && ['NOT_LEADER', 'LEADER_NOT_AVAILABLE'].includes(error.codeName))
          throw errorOf('NOT_COORDINATOR', `${groupId}: ${error.message}`);
        throw error;
      }
      const response = await partition.produce({ batch, acks: 1, leaderEpoch });
      if (roles !== null) await roles.acknowledged(OFFSETS_TOPIC, index, response.lastOffset, 'all');
    } catch (error) {
      this.noteStorageFull(partition, error);
      throw error;
    }
    if (this.fullPartitions.size > 0) this.noteWritable(partition);
  }

  /** Defaults for topics created from now on (configuration reload). */
  setTopicDefaults(defaults: Partial<TopicConfig>, defaultPartitions: number): void {
    this.registry.setDefaults({ ...DEFAULT_TOPIC_CONFIG, ...defaults }, defaultPartitions);
  }

  /**
   * Refuses growth of a topic that holds keyed messages: a key's partition is its hash modulo the
   * partition count, so most keys would move, and their streams would restart at version 0 in the
   * new partition (an `expectedVersion` written before would fail, a stale one would pass).
   */
  private refuseKeyMovement(topic: TopicDescription, partitions: number): void {
    const keyed = (this.partitions.get(topic.name) ?? [])
      .filter((p) => p.streams.size > 0)
      .map((p) => p.index);
    if (keyed.length === 0) return;
    throw errorOf(
      'PARTITION_GROWTH_MOVES_KEYS',
      `topic ${topic.name} has keyed messages (partition${keyed.length > 1 ? 's' : ''} ${keyed.slice(0, 10).join(', ')}` +
        `${keyed.length > 10 ? ', …' : ''}); growing it from ${topic.partitions} to ${partitions} partitions sends most ` +
        'keys to another partition, where their streams start again at version 0 without their history, and ' +
        'expectedVersion checks compare against the new partition. To grow anyway, pass allowKeyMovement: true ' +
        '(CLI: --allow-key-movement); producers started before the growth keep the old key placement until they reconnect',
    );
  }

  /** Makes produces to `topic` wait until the returned function is called. */
  private holdProduces(topic: string): () => void {
    let done = (): void => undefined;
    this.changing.set(topic, new Promise<void>((resolve) => (done = resolve)));
    return () => {
      this.changing.delete(topic);
      done();
    };
  }

  /** Logs once per episode why a partition refuses writes for lack of space. */
  private noteStorageFull(partition: Partition, error: unknown): void {
    if (!isMemoryStreamerError(error) || error.codeName !== 'STORAGE_FULL') return;
    if (this.fullPartitions.has(partition)) return;
    this.fullPartitions.add(partition);
    this.logger.warn(
      { topic: partition.topic, partition: partition.index, path: partition.log.dir, reason: error.message },
      'storage full: writes to this partition are refused with STORAGE_FULL (retriable); they resume when space returns',
    );
  }

  private noteWritable(partition: Partition): void {
    if (!this.fullPartitions.delete(partition)) return;
    this.logger.info(
      { topic: partition.topic, partition: partition.index, path: partition.log.dir },
      'storage has space again: writes to this partition resumed',
    );
  }

  partition(topic: string, index: number): Partition {
    const list = this.partitions.get(topic);
    if (list === undefined) {
      this.refuseOffline(topic);
      throw errorOf('UNKNOWN_TOPIC', JSON.stringify(topic));
    }
    const partition = list[index];
    if (partition === undefined) {
      throw errorOf('UNKNOWN_PARTITION', `${topic} has partitions 0..${list.length - 1}, asked for ${index}`);
    }
    return partition;
  }

  /** The partition a client request names, when this broker holds it (no promise on this path). */
  private heldPartition(topic: string, index: number): Partition | undefined {
    return this.partitions.get(topic)?.[index];
  }

  /**
   * A partition this broker does not hold: its error. In a cluster the topic is looked up in the
   * cluster before the answer (a topic created a moment ago through another broker is
   * LEADER_NOT_AVAILABLE here, which the client retries, not UNKNOWN_TOPIC).
   */
  private async requestedPartition(topic: string, index: number): Promise<Partition> {
    try {
      return this.partition(topic, index);
    } catch (error) {
      if (
        this.clusterMetadata === null ||
        !isMemoryStreamerError(error) ||
        error.codeName !== 'UNKNOWN_TOPIC'
      )
        throw error;
      throw await this.clusterMetadata.missingTopic(topic, index);
    }
  }

  /**
   * A produce in general: the topic may be changing (wait for it), the partition may not be held
   * here (the cluster's answer), and in a cluster the leader stamps its epoch and acks 'all' waits
   * for the ISR.
   */
  private async produceAnywhere(request: RequestOf<'produce'>): Promise<ResponseOf<'produce'>> {
    if (this.changing.size > 0) await this.changing.get(request.topic);
    const partition =
      this.heldPartition(request.topic, request.partition) ??
      (await this.requestedPartition(request.topic, request.partition));
    const roles = this.replicaRoles;
    let response: ResponseOf<'produce'>;
    try {
      // Without a cluster, one broker holds one copy of every partition (topics with more cannot
      // be created here): the ISR is this broker alone, so acks 'all' is acknowledged as acks 1 is.
      const leaderEpoch =
        roles === null
          ? undefined
          : roles.leaderEpochForProduce(request.topic, request.partition, request.acks);
      response = await partition.produce({
        batch: request.batch,
        acks: request.acks === 0 ? 0 : 1,
        expectedVersion: request.expectedVersion,
        leaderEpoch,
      });
      if (roles !== null && request.acks !== 0)
        await roles.acknowledged(request.topic, request.partition, response.lastOffset, request.acks);
      // acks 0 waits for nothing, but the leader still takes the append into its high watermark and
      // wakes its followers; that it stopped leading meanwhile is no answer an acks 0 produce waits for.
      else if (roles !== null)
        roles.acknowledged(request.topic, request.partition, response.lastOffset, 0).catch(() => undefined);
    } catch (error) {
      this.noteStorageFull(partition, error);
      throw error;
    }
    return this.produced(partition, request, response);
  }

  /** After an append: a partition that was full takes writes again; the produce is counted. */
  private produced(
    partition: Partition,
    request: RequestOf<'produce'>,
    response: ResponseOf<'produce'>,
  ): ResponseOf<'produce'> {
    if (this.fullPartitions.size > 0) this.noteWritable(partition);
    if (!response.duplicate) {
      this.metrics.recordProduce(Number(response.lastOffset - response.baseOffset) + 1, request.batch.length);
    }
    return response;
  }

  private ensureOpen(): void {
    if (this.closed) throw errorOf('SHUTTING_DOWN');
  }

  /** This broker's id: the leader, the only replica and the ISR of every partition it holds. */
  get brokerId(): number {
    return this.options.brokerId;
  }

  private view(topic: TopicDescription): TopicView {
    return {
      name: topic.name,
      id: topic.id,
      partitions: topic.partitions,
      replicationFactor: topic.replicationFactor,
      createdAt: topic.createdAt,
      storage: topic.storage,
      config: { ...topic.config },
    };
  }

  private get inflateLimits(): { maxDecompressedBytes: number } {
    return { maxDecompressedBytes: this.options.maxDecompressedBytes };
  }

  /** Where administrative changes are recorded (null: no audit log). */
  audit: AuditLog | null = null;

  /**
   * Runs one request/response command (`caller`: who asked, for the audit log). Not an async
   * function: the handler's promise is chained once (a lone message's produce is on this path).
   */
  execute<K extends CoreCommand>(
    name: K,
    request: RequestOf<K>,
    caller?: AuditCaller,
  ): Promise<ResponseOf<K>> {
    const done = this.metrics.start(name);
    let span: ReturnType<typeof startRequestSpan> | null = null;
    let pending: Promise<ResponseOf<K>>;
    try {
      // The span is started inside: a tracer that throws fails the request, it does not escape.
      if (this.tracer !== null && TRACED_OPERATIONS.has(name))
        span = startRequestSpan(this.tracer, name, request as object, this.inflateLimits);
      this.ensureOpen();
      const handler = this.handlers[name] as (request: RequestOf<K>) => Promise<ResponseOf<K>>;
      pending = handler(request);
    } catch (error) {
      pending = Promise.reject(error);
    }
    return pending.then(
      (response) => {
        done();
        if (span !== null) endRequestSpan(span);
        if (this.audit !== null && isAuditedCommand(name))
          this.audit.record(adminCommandEvent(name, request, caller));
        return response;
      },
      (error: unknown) => {
        done(error as { codeName?: string });
        if (this.audit !== null && isAuditedCommand(name))
          this.audit.record(adminCommandEvent(name, request, caller, error));
        if (span !== null) endRequestSpan(span, error);
        throw error;
      },
    );
  }

  /**
   * Creates a topic in this broker's storage: all or nothing (the partitions open before
   * topic.json is written; a failure closes what opened and removes the directory).
   */
  private async createLocal(
    input: CreateTopicRequest,
    ifNotExists: boolean,
    internal = false,
    id?: string,
  ): Promise<TopicView> {
    if (this.offline.has(input.name)) {
      throw errorOf(
        'TOPIC_ALREADY_EXISTS',
        `${JSON.stringify(input.name)} exists but is offline (${this.offline.get(input.name)}); delete it to create it again`,
      );
    }
    const existing = this.registry.get(input.name);
    if (existing !== undefined && ifNotExists && !input.name.startsWith(INTERNAL_TOPIC_PREFIX))
      return this.view(existing);
    if (this.changing.has(input.name))
      throw errorOf('TOPIC_ALREADY_EXISTS', `${input.name} is being created`);
    const release =
      existing === undefined && !input.name.startsWith(INTERNAL_TOPIC_PREFIX)
        ? this.reservePartitions(
            input.name,
            validatePartitionCount(input.partitions ?? this.registry.defaultPartitionCount),
          )
        : () => undefined;
    const changed = existing === undefined ? this.holdProduces(input.name) : () => undefined;
    try {
      // All or nothing: the partitions open before topic.json is written; a failure closes
      // what opened and removes the directory, so the topic is never listed half-created.
      const topic = await this.registry.create(input, {
        internal,
        ...(id !== undefined ? { id } : {}),
        open: async (description) => {
          try {
            await this.openPartitions(description, 0);
          } catch (error) {
            await this.closePartitions(description.name);
            throw error;
          }
        },
      });
      return this.view(topic);
    } catch (error) {
      throw undoneError(`creating topic ${input.name}`, error);
    } finally {
      release();
      changed();
    }
  }

  /**
   * A cluster member keeps its replicas here: the topic as the controller recorded it, created in
   * this broker's storage when missing (its other copies are on other brokers, so the replication
   * factor is not refused as on a broker alone), with the id the controller gave it when it has one.
   */
  async ensureReplicaTopic(input: CreateTopicRequest, id?: string): Promise<TopicView> {
    this.ensureOpen();
    const existing = this.registry.get(input.name);
    if (existing !== undefined) return this.view(existing);
    // The cluster's `__consumer_offsets` is the one internal topic a cluster places on brokers;
    // its copies keep offsets by compaction only, whatever the topic defaults' retention here.
    if (input.name === OFFSETS_TOPIC)
      return this.createLocal(
        { ...input, config: { ...input.config, ...OFFSETS_RETENTION } },
        true,
        this.groupsInCluster,
        id,
      );
    return this.createLocal(input, true, false, id);
  }

  /**
   * An internal topic of one partition that the broker writes itself (the audit topic), created
   * when missing: `append` adds records to it in call order, `lastValue` reads its newest record.
   */
  async internalTopic(name: string): Promise<{
    append(records: readonly { key: string; value: string }[]): Promise<void>;
    lastValue(): Promise<Buffer | null>;
  }> {
    this.ensureOpen();
    if (this.registry.get(name) === undefined) await this.createLocal({ name, partitions: 1 }, true, true);
    const log = () => this.partition(name, 0).log;
    return {
      append: async (records) => {
        await this.partition(name, 0).produce({ batch: encodeRecordBatch(records), acks: 1 });
      },
      lastValue: async () => {
        const { highWatermark, logStartOffset } = log();
        if (highWatermark <= logStartOffset) return null;
        const { data } = await log().read(highWatermark - 1n, 1 << 20);
        let last: Buffer | null = null;
        for (const batch of splitBatches(data))
          for (const record of iterateRecords(batch, {
            maxDecompressedBytes: this.options.maxDecompressedBytes,
          }))
            if (record.value !== null) last = Buffer.from(record.value);
        return last;
      },
    };
  }

  /**
   * Checks an alteration of a cluster's topic as a broker alone checks one, against the topic as
   * the cluster records it, before the controller is asked (it writes what it is given to etcd).
   * A topic the metadata does not hold is left to the controller (UNKNOWN_TOPIC).
   */
  private checkClusterAlteration(request: AlterTopicRequest): void {
    const current = this.clusterMetadata?.topics().find((topic) => topic.name === request.name);
    if (current === undefined) return;
    const view = this.viewOfNewTopic(current);
    TopicRegistry.validateAlteration(request, { ...view, storage: 'disk' });
  }

  /** How a topic created with `input` looks (for a cluster's topic this broker holds no copy of). */
  viewOfNewTopic(input: CreateTopicRequest): TopicView {
    return {
      name: input.name,
      id: '',
      partitions: input.partitions ?? this.registry.defaultPartitionCount,
      replicationFactor: input.replicationFactor ?? 1,
      createdAt: 0,
      config: { ...this.registry.defaultConfig, ...input.config },
    };
  }

  /** Names of the topics in this broker's storage (internal ones left out). */
  localTopicNames(): string[] {
    return this.registry
      .list()
      .map((topic) => topic.name)
      .filter((name) => !name.startsWith(INTERNAL_TOPIC_PREFIX));
  }

  /**
   * The cluster's id of this broker's copy of `name`: undefined when there is no copy (or it is
   * offline), or when the copy was made before topics had cluster ids (its id is its own).
   */
  clusterIdOfCopy(name: string): string | undefined {
    const topic = this.registry.get(name);
    return topic?.idFromCluster === true ? topic.id : undefined;
  }

  /** The topic as this broker holds it, or undefined. */
  localTopic(name: string): TopicView | undefined {
    const topic = this.registry.get(name);
    return topic === undefined ? undefined : this.view(topic);
  }

  /** Alters a topic in this broker's storage (configuration; partitions grow only). */
  private async alterLocal(request: AlterTopicRequest & { allowKeyMovement?: boolean }): Promise<TopicView> {
    const { allowKeyMovement, ...input } = request;
    const before = this.registry.require(input.name);
    const growth =
      input.partitions === undefined
        ? 0
        : Math.max(0, validatePartitionCount(input.partitions) - before.partitions);
    if (growth > 0 && allowKeyMovement !== true) this.refuseKeyMovement(before, input.partitions!);
    if (this.changing.has(input.name))
      throw errorOf('INVALID_REQUEST', `topic ${input.name} is being changed`);
    const release = this.reservePartitions(input.name, growth);
    const changed = growth > 0 ? this.holdProduces(input.name) : () => undefined;
    try {
      const topic = await this.registry.alter(input, {
        open: async (next, from) => {
          if (next.partitions === from) return;
          if (allowKeyMovement !== true) this.refuseKeyMovement(before, next.partitions);
          try {
            await this.openPartitions(next, from);
          } catch (error) {
            await this.closePartitions(next.name, from);
            throw error;
          }
        },
      });
      if (growth > 0 && allowKeyMovement === true) {
        this.logger.warn(
          { topic: topic.name, from: before.partitions, to: topic.partitions },
          'partitions grown with allowKeyMovement: keys that moved start new streams at version 0 in their new partition',
        );
      }
      // Settings that the open logs read at append time take effect now; segment and durability
      // settings take effect when the partitions reopen (documented in docs/operations.md).
      for (const partition of this.partitions.get(topic.name) ?? [])
        partition.setLimits(this.limitsFor(topic));
      return this.view(topic);
    } catch (error) {
      throw undoneError(`growing topic ${input.name}`, error);
    } finally {
      release();
      changed();
    }
  }

  /**
   * Deletes a topic from this broker's storage. `recreated`: a cluster member's copy of a topic
   * deleted and created again under its name (its id changed); its groups' offsets go as for a
   * deleted topic.
   */
  async deleteLocal(name: string, recreated = false): Promise<void> {
    if (this.offline.has(name)) {
      // The way out for a topic that could not be opened: its directory goes.
      await this.registry.delete(name);
      this.offline.delete(name);
      this.logger.info({ topic: name }, 'offline topic deleted');
      await this.forgetGroupOffsets(name, recreated);
      return;
    }
    const topic = this.registry.require(name);
    const list = this.partitions.get(topic.name) ?? [];
    this.partitions.delete(topic.name);
    for (const partition of list) await partition.close();
    await this.registry.delete(topic.name);
    await this.forgetGroupOffsets(name, recreated);
  }

  /**
   * The groups coordinated here forget their committed offsets of a deleted topic, so a topic
   * created next under its name starts without them.
   */
  private async forgetGroupOffsets(name: string, recreated = false): Promise<void> {
    if (this.clusterMetadata === null) {
      await this.groups.forgetTopic(name);
      return;
    }
    // A cluster member's copy also goes when the topic moves to other brokers (and a stale
    // `__consumer_offsets` from before it joined goes): the offsets stay then. The tombstones are
    // not awaited: their replication must not hold up the member's reconciliation (forgetTopic
    // logs a failure; the offsets are gone from memory at once).
    if (recreated || this.goneFromCluster(name)) void this.groups.forgetTopic(name);
  }

  /**
   * A cluster topic deleted and created again under its name (its id changed): the groups
   * coordinated here forget their offsets of the old topic, as of a deleted one, so the new topic
   * starts without them (also where this broker holds no copy of it).
   */
  forgetRecreatedTopic(name: string): void {
    void this.groups.forgetTopic(name);
  }

  /** Whether this cluster member's metadata says the cluster has no topic `name` (false alone). */
  private goneFromCluster(name: string): boolean {
    return (
      this.clusterMetadata !== null &&
      !name.startsWith(INTERNAL_TOPIC_PREFIX) &&
      this.clusterMetadata.partitionCount(name) === undefined
    );
  }

  /**
   * A cluster member keeps its copy of a topic as the controller records it: growth of the
   * partitions (the keys were checked where the growth was asked for) and configuration.
   */
  async followReplicaTopic(input: {
    name: string;
    partitions: number;
    config: AlterTopicRequest['config'];
  }): Promise<void> {
    const local = this.registry.get(input.name);
    if (local === undefined) return;
    const grows = input.partitions > local.partitions;
    const config = input.config ?? {};
    const changed = Object.entries(config).some(
      ([key, value]) => (local.config as unknown as Record<string, unknown>)[key] !== value,
    );
    if (!grows && !changed) return;
    await this.alterLocal({
      name: input.name,
      ...(grows ? { partitions: input.partitions } : {}),
      ...(changed ? { config } : {}),
      allowKeyMovement: true,
    });
  }

  private requireClusterConfig(): ClusterConfigRequests {
    if (this.clusterConfig === null)
      throw errorOf(
        'CLUSTER_CONFIG_NEEDS_CLUSTER',
        'this broker runs alone: change its settings in its configuration file and reload (SIGHUP)',
      );
    return this.clusterConfig;
  }

  /** Throws PARTITION_GROWTH_MOVES_KEYS when this broker's copy of the topic holds keyed messages. */
  checkKeyMovement(name: string, partitions: number): void {
    const topic = this.registry.get(name);
    if (topic !== undefined) this.refuseKeyMovement(topic, partitions);
  }

  private operations(what: string): ClusterOperations {
    if (this.clusterOperations !== null) return this.clusterOperations;
    throw errorOf('NEEDS_CLUSTER', `${what}: this broker runs alone`);
  }

  private readonly handlers: { [K in CoreCommand]: (request: RequestOf<K>) => Promise<ResponseOf<K>> } = {
    reassignPartitions: (request) => this.operations('partition reassign').reassignPartitions(request),
    reassignmentStatus: () => this.operations('reassignment status').reassignmentStatus(),
    drainBroker: (request) => this.operations('broker drain').drainBroker(request),
    electLeaders: (request) => this.operations('leader election').electLeaders(request),
    verifyPartition: async (request) => {
      const verify = this.replicaRequests?.verifyPartition?.bind(this.replicaRequests);
      if (verify === undefined) throw errorOf('NEEDS_CLUSTER', 'partition verify: this broker runs alone');
      return verify(request);
    },
    brokerHeartbeat: (request) => this.operations('broker heartbeat').brokerHeartbeat(request),
    createTopic: async (request) => {
      assertKnownTopicOptions('createTopic', request);
      if (this.clusterTopics !== null) {
        if (request.storage === 'memory') throw errorOf('MEMORY_TOPIC_NOT_REPLICATED', request.name);
        // Checked here as a broker alone checks it: the controller writes what it is given to etcd,
        // and every broker makes a directory of the name.
        const { name, partitions, replicationFactor } = this.registry.validateNew(request);
        const existing = this.registry.get(name);
        if (existing !== undefined && request.ifNotExists === true) return this.view(existing);
        return this.clusterTopics.create({ ...request, name, partitions, replicationFactor });
      }
      const { ifNotExists, ...input } = request;
      // A broker without a cluster is the only broker: one copy is all it can keep.
      if (input.replicationFactor !== undefined && validateReplicationFactor(input.replicationFactor) > 1)
        throw errorOf(
          'NOT_ENOUGH_BROKERS',
          `topic ${input.name}: replicationFactor ${input.replicationFactor} needs ${input.replicationFactor} brokers, ` +
            'and this broker runs alone, without a cluster (start brokers with serve --cluster to replicate)',
        );
      return this.createLocal(input, ifNotExists === true);
    },
    alterTopic: async (request) => {
      assertKnownTopicOptions('alterTopic', request);
      refuseInternal(request.name);
      this.refuseOffline(request.name);
      const { clusterTopics, clusterConfig } = this;
      if (clusterTopics === null) return this.alterLocal(request);
      this.checkClusterAlteration(request);
      if (clusterConfig === null || request.config === undefined) return clusterTopics.alter(request);
      return clusterConfig.alterTopic(request, () => clusterTopics.alter(request));
    },
    deleteTopic: async (request) => {
      refuseInternal(request.name);
      if (this.clusterTopics !== null && !this.offline.has(request.name)) {
        await this.clusterTopics.delete(request.name);
        return {};
      }
      await this.deleteLocal(request.name);
      return {};
    },
    listTopics: async () => ({
      topics:
        this.clusterMetadata !== null
          ? this.clusterMetadata
              .topics()
              .map((topic) => this.localTopic(topic.name) ?? this.viewOfNewTopic(topic))
          : this.registry
              .list()
              .filter((t) => !t.name.startsWith(INTERNAL_TOPIC_PREFIX))
              .map((t) => this.view(t)),
    }),
    describeTopic: async (request): Promise<DescribeTopicResponse> => {
      this.refuseOffline(request.name);
      const topic = this.registry.require(request.name);
      const self = this.options.brokerId;
      const cluster = this.clusterMetadata;
      const partitions = (this.partitions.get(topic.name) ?? []).map((p) => ({
        partition: p.index,
        logStartOffset: p.log.logStartOffset,
        highWatermark: p.log.highWatermark,
        logEndOffset: p.log.logEndOffset,
        sizeBytes: p.log.sizeBytes,
        ...(cluster?.partitionRoles(topic.name, p.index) ?? {
          leader: self,
          replicas: [self],
          isr: [self],
          leaderEpoch: 0,
        }),
      }));
      return { topic: this.view(topic), partitions };
    },
    metadata: async (request): Promise<MetadataResponse> => {
      if (this.clusterMetadata !== null) return this.clusterMetadata.metadata(request);
      const self = this.options.brokerId;
      const names = request.topics ?? this.registry.list().map((t) => t.name);
      const topics = names.map((name): TopicMetadata => {
        const internal = name.startsWith(INTERNAL_TOPIC_PREFIX);
        const unavailable = (error: 'UNKNOWN_TOPIC' | 'TOPIC_OFFLINE') => ({
          name,
          error,
          id: '',
          internal,
          partitions: [],
        });
        if (this.offline.has(name)) return unavailable('TOPIC_OFFLINE');
        const topic = this.registry.get(name);
        if (topic === undefined) return unavailable('UNKNOWN_TOPIC');
        const partitions = Array.from({ length: topic.partitions }, (_, partition) => ({
          partition,
          error: null,
          leader: self,
          leaderEpoch: 0,
          replicas: [self],
          isr: [self],
          offlineReplicas: [],
        }));
        return { name, error: null, id: topic.id, internal, partitions };
      });
      const listener = this.advertisedListener;
      return {
        clusterId: null,
        controllerId: self,
        brokers: [{ id: self, host: listener?.host ?? '', port: listener?.port ?? 0 }],
        topics,
      };
    },
    produce: (request) => {
      refuseInternal(request.topic);
      // A single broker's produce to a partition it holds, with no topic change under way: the
      // partition's promise chained once, no async frame (the lone message's path).
      const held =
        this.changing.size === 0 && this.replicaRoles === null
          ? this.heldPartition(request.topic, request.partition)
          : undefined;
      if (held === undefined) return this.produceAnywhere(request);
      return held
        .produce({
          batch: request.batch,
          acks: request.acks === 0 ? 0 : 1,
          expectedVersion: request.expectedVersion,
        })
        .then(
          (response) => this.produced(held, request, response),
          (error: unknown) => {
            this.noteStorageFull(held, error);
            throw error;
          },
        );
    },
    fetch: async (request) => {
      const partition =
        this.heldPartition(request.topic, request.partition) ??
        (await this.requestedPartition(request.topic, request.partition));
      this.replicaRoles?.checkRead(request.topic, request.partition);
      const maxBytes = Math.min(Math.max(request.maxBytes, 1), this.options.maxFetchBytes);
      const result = await partition.fetch(
        request.offset,
        maxBytes,
        Math.min(request.maxWaitMs, this.options.maxFetchWaitMs),
      );
      this.metrics.recordFetch(result.data.length);
      return {
        highWatermark: result.highWatermark,
        logStartOffset: result.logStartOffset,
        batches: result.data,
      };
    },
    listOffsets: async (request): Promise<ListOffsetsResponse> => {
      const log = (
        this.heldPartition(request.topic, request.partition) ??
        (await this.requestedPartition(request.topic, request.partition))
      ).log;
      if (request.spec === 'earliest') return { offset: log.logStartOffset };
      if (request.spec === 'latest') return { offset: log.highWatermark };
      return { offset: await log.offsetForTimestamp(request.spec.timestamp) };
    },
    // The broker id in the high 32 bits: in a cluster every broker hands out ids of its own, and a
    // producer's state moves with a partition's leadership (a broker without a cluster is id 0).
    initProducerId: async () => ({
      producerId: (BigInt(this.options.brokerId) << 32n) | (await this.producerIds.allocate()),
      producerEpoch: 0,
    }),
    joinGroup: async (request) => {
      await this.coordinatorReady(request.groupId);
      return this.groups.join(request);
    },
    heartbeat: async (request) => {
      await this.coordinatorReady(request.groupId);
      this.groups.heartbeat(request);
      return {};
    },
    leaveGroup: async (request) => {
      await this.coordinatorReady(request.groupId);
      this.groups.leave(request);
      return {};
    },
    commitOffsets: async (request) => {
      await this.coordinatorReady(request.groupId);
      await this.groups.commit(request);
      return {};
    },
    fetchOffsets: async (request) => {
      await this.coordinatorReady(request.groupId);
      return { offsets: this.groups.fetchOffsets(request.groupId) };
    },
    // In a cluster: the groups this broker coordinates (a client asks every broker); none while
    // it is fenced.
    listGroups: async () => ({ groups: this.selfFence?.selfFenced === true ? [] : this.groups.list() }),
    describeGroup: async (request) => {
      await this.coordinatorReady(request.groupId);
      return this.groups.describe(request.groupId);
    },
    findCoordinator: async (request) => {
      validateGroupId(request.groupId);
      if (this.clusterGroups !== null) return this.clusterGroups.findCoordinator(request.groupId);
      const listener = this.advertisedListener;
      return { brokerId: this.options.brokerId, host: listener?.host ?? '', port: listener?.port ?? 0 };
    },
    configSet: async (request) => this.requireClusterConfig().set(request),
    configHistory: async (request) => this.requireClusterConfig().history(request),
    configRollback: async (request) => this.requireClusterConfig().rollback(request),
    readStream: async (request): Promise<ReadStreamResponse> => {
      if (request.key.length === 0) throw errorOf('INVALID_STREAM_KEY', 'a stream key is at least one byte');
      // In a cluster this broker may hold no copy of the topic: the key's partition is the cluster's.
      const partitions =
        this.registry.get(request.topic)?.partitions ?? this.clusterMetadata?.partitionCount(request.topic);
      if (partitions === undefined)
        throw this.clusterMetadata === null
          ? errorOf('UNKNOWN_TOPIC', JSON.stringify(request.topic))
          : await this.clusterMetadata.missingTopic(request.topic, 0);
      const index = partitionForKey(request.key, partitions);
      const partition =
        this.heldPartition(request.topic, index) ?? (await this.requestedPartition(request.topic, index));
      return partition.readStream(
        request.key,
        request.fromSequence,
        Math.max(1, request.maxRecords),
        Math.min(request.maxWaitMs, this.options.maxFetchWaitMs),
      );
    },
  };

  /**
   * Opens a push subscription. The sink gets whole batches within the credit; `grant` adds credit.
   * Offsets -1 and -2 mean latest and earliest.
   */
  subscribe(
    request: SubscribeRequest,
    sink: PushSink,
    onError: (error: Error) => void,
  ): { subscription: PushSubscription; offset: bigint } {
    this.ensureOpen();
    const partition = this.partition(request.topic, request.partition);
    const log = partition.log;
    let offset = request.offset;
    if (offset === -1n) offset = log.highWatermark;
    else if (offset === -2n) offset = log.logStartOffset;
    // A memory topic's log starts empty after a restart: an offset past its end (a group's commit
    // from before) reads the messages it has since (docs/storage.md, "Memory topics").
    else if (offset > log.highWatermark && partition.storage === 'memory') offset = log.logStartOffset;
    if (offset < log.logStartOffset || offset > log.highWatermark) {
      throw errorOf(
        'OFFSET_OUT_OF_RANGE',
        `offset ${offset}; log holds ${log.logStartOffset}..${log.highWatermark}`,
      );
    }
    // Pushed bytes count as fetched bytes, like those of fetch requests.
    const tracer = this.tracer;
    const traced: PushSink = (batches, highWatermark) => {
      let bytes = 0;
      for (const batch of batches) bytes += batch.length;
      this.metrics.recordFetch(bytes);
      if (tracer !== null)
        traceDelivery(tracer, request.topic, request.partition, batches, this.inflateLimits);
      sink(batches, highWatermark);
    };
    return { subscription: partition.subscribe(offset, request.credit, traced, onError), offset };
  }

  async applyRetention(): Promise<number> {
    let removed = 0;
    for (const list of this.partitions.values()) {
      for (const partition of list) {
        if (partition.log.state === 'open') removed += await partition.log.applyRetention().catch(() => 0);
      }
    }
    return removed;
  }

  /** Compacts the partitions of compacted topics: those that are due, or all with `force`. */
  compact(options: { topic?: string; force?: boolean } = {}): Promise<PartitionCompaction[]> {
    return this.compaction.run(options);
  }

  /** The periodic maintenance: retention everywhere, then compaction where it is due. */
  private async maintain(): Promise<void> {
    if (this.closed) return;
    await this.applyRetention();
    if (!this.closed) await this.compaction.run();
  }

  topicNames(): string[] {
    return [...this.partitions.keys()];
  }

  /** Closes every log, then gives up the data directory's lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.groups.close();
    if (this.retentionTimer !== null) clearInterval(this.retentionTimer);
    if (this.checkpointTimer !== null) clearInterval(this.checkpointTimer);
    try {
      for (const list of this.partitions.values()) for (const partition of list) await partition.close();
      this.partitions.clear();
    } finally {
      await this.lock.release();
    }
  }
}
