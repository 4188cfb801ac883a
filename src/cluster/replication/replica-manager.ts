// Runs this broker's replicas as the cluster's metadata says: for every partition assigned here,
// the leader role (LeaderState: followers' positions, ISR proposals, high watermark, acks 'all')
// or the follower role (FollowerState: truncation to the leader's history, then replica fetches),
// driven with real I/O: the partition's log, REPLICA_FETCH and OFFSETS_FOR_LEADER_EPOCH over a
// connection to the leader, ISR changes written to etcd as compare-and-swap on the partition's key.
// The broker core consults it through ReplicaRoles (who may append, when to acknowledge) and hands
// it the other brokers' requests through ReplicaRequestHandler.

import { type BrokerCore, OFFSETS_TOPIC } from '../../broker/broker-core.js';
import type {
  ClusterMetadataView,
  PartitionRoles,
  ReplicaRequestHandler,
  ReplicaRoles,
} from '../../broker/replica-hooks.js';
import { INTERNAL_TOPIC_PREFIX, isValidTopicName } from '../../broker/topics/topic-config.js';
import { type ClientTlsOptions, TcpTransport } from '../../client/tcp-transport.js';
import { MemoryStreamerError } from '../../common/errors.js';
import type { BrokerLogger } from '../../metrics/logger.js';
import type {
  Acks,
  AlterTopicRequest,
  CreateTopicRequest,
  MetadataRequest,
  MetadataResponse,
  TopicMetadata,
  TopicView,
} from '../../protocol/commands/data-types.js';
import {
  epochAnswerOf,
  epochAnswerPartitionOf,
  NO_EPOCH,
  type OffsetsForLeaderEpochRequest,
  type OffsetsForLeaderEpochResponse,
  REPLICATION_COMMANDS,
  type ReplicaFetchedPartition,
  type ReplicaFetchRequest,
  type ReplicaFetchResponse,
  replicaFetchResultOf,
} from '../../protocol/commands/replication-commands.js';
import type {
  VerifyPartitionRequest,
  VerifyPartitionResponse,
} from '../../protocol/commands/verify-partition.js';
import { type ErrorName, errorOf } from '../../protocol/error-codes.js';
import type { PartitionLog } from '../../storage/partition-log.js';
import { ClusterGroupPlacement, type ClusterGroupsOptions } from '../cluster-groups.js';
import type { ClusterMember } from '../cluster-member.js';
import { KEYS } from '../control-plane/metadata-keys.js';
import { encodeRecord, NO_LEADER, type TopicRecord } from '../control-plane/metadata-records.js';
import { ControllerOperations } from '../controller/cluster-operations.js';
import {
  AntiEntropyService,
  antiEntropyHost,
  DEFAULT_ANTI_ENTROPY_INTERVAL_MS,
} from './anti-entropy-service.js';
import { FollowerState } from './follower-state.js';
import { LeaderEpochCache } from './leader-epoch-cache.js';
import { LeaderState } from './leader-state.js';
import type { FollowerAction, LeaderAction } from './messages.js';
import { TopicPresenceCheck } from './topic-presence.js';

export interface ReplicaManagerOptions {
  /** A follower that has not caught up for this long leaves the ISR (Kafka's replica.lag.time.max.ms). */
  readonly replicaLagTimeMs?: number;
  /** How long an acks 'all' produce waits for the ISR before REQUEST_TIMEOUT. */
  readonly ackTimeoutMs?: number;
  /** After an empty replica fetch (which waited on the leader already), the follower asks again after this long. */
  readonly idleFetchBackoffMs?: number;
  /** The cluster's `__consumer_offsets` (consumer groups' committed offsets). */
  readonly groups?: ClusterGroupsOptions;
  /** TLS of the connections to other brokers, read at each new one (inter-broker-tls.ts); none: plain. */
  readonly tls?: () => ClientTlsOptions | undefined;
  /** Followers compare their settled segments with their leaders' this often (0: never). */
  readonly antiEntropyIntervalMs?: number;
}

/** Partitions led here with their followers' lag, and ISR changes applied so far (replicationStats). */
export interface ReplicationStats {
  readonly partitions: ReadonlyArray<{
    readonly topic: string;
    readonly partition: number;
    readonly replicas: readonly number[];
    readonly isr: readonly number[];
    readonly followers: ReadonlyArray<{ brokerId: number; lagMessages: bigint; lagMs: number }>;
    /** Replica fetches answered for the partition since this broker leads it. */
    readonly replicaFetches: number;
  }>;
  readonly isrShrinks: number;
  readonly isrExpands: number;
}

const TICK_MS = 20;
/** The transport's deadline of one broker-to-broker request. */
const REQUEST_TIMEOUT_MS = 5_000;
/**
 * A replica request unanswered this long is sent again (the follower's wait doubles while they
 * time out, and a late answer that continues the log is still used): also how soon a follower
 * retries after its leader could not be reached.
 */
const FOLLOWER_RETRY_MS = 250;
/** A replica fetch with nothing to send waits this long on the leader for new batches (long poll). */
const FETCH_MAX_WAIT_MS = 500;

const keyOf = (topic: string, partition: number) => `${partition}:${topic}`;

/** Makes the log serve what the high watermark covers; the first call switches it to replicated mode. */
function moveHighWatermark(log: PartitionLog, highWatermark: bigint): void {
  const current = log.replicatedHighWatermark;
  if (current === null)
    log.setHighWatermark(highWatermark > log.highWatermark ? highWatermark : log.highWatermark);
  else if (highWatermark > current) log.setHighWatermark(highWatermark);
}

function epochCacheOf(log: PartitionLog): LeaderEpochCache {
  return new LeaderEpochCache(log.leaderEpochs.entries());
}

class LeaderReplica {
  private readonly waiters = new Map<
    number,
    { resolve: () => void; reject: (error: Error) => void; lastOffset: bigint; deadlineMs: number }
  >();
  /** Replica fetches waiting for batches past their offset (long poll). */
  private dataWaiters = new Set<() => void>();
  private nextRequestId = 1;
  /**
   * The written end and the high watermark the waiting fetches were last woken for: they are woken
   * again only when one of them moves. A follower can use nothing else, and waking them on every
   * fetch would make the followers of an idle partition release each other's long polls in a loop.
   */
  private wokenForWritten: bigint;
  private wokenForHighWatermark: bigint;
  /** The written end the leader state was last told of. */
  private progressedTo: bigint;
  /** Replica fetches answered for this partition since this broker leads it (replicationStats). */
  replicaFetches = 0;
  /** When this broker started leading at this epoch (follower lag is measured from here at most). */
  readonly leadingSinceMs = Date.now();

  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly log: PartitionLog,
    readonly state: LeaderState,
    private readonly proposeIsr: (isr: readonly number[], isrVersion: number) => void,
    /** The replica set this leader started with (a reassignment changes it: see handOver). */
    readonly replicas: readonly number[] = [],
  ) {
    this.wokenForWritten = log.stableOffset;
    this.progressedTo = log.stableOffset;
    this.wokenForHighWatermark = state.highWatermark;
  }

  run(actions: readonly LeaderAction[]): void {
    for (const action of actions) {
      switch (action.type) {
        case 'high-watermark':
          moveHighWatermark(this.log, action.highWatermark);
          break;
        case 'propose-isr':
          this.proposeIsr(action.isr, action.isrVersion);
          break;
        case 'complete-produce': {
          const waiter = this.waiters.get(action.requestId);
          this.waiters.delete(action.requestId);
          if (action.error === null) waiter?.resolve();
          else waiter?.reject(errorOf(action.error, `${this.topic}/${this.partition}`));
          break;
        }
        case 'write-epoch-checkpoint':
          // The log keeps its own leader-epoch file in step with its batches.
          break;
      }
    }
    // Waiting fetches are answered once the leader wrote more, or its high watermark moved (by an
    // append, a follower's fetch, an ISR change), which the other followers learn from the answer.
    this.wakeIfMoved();
  }

  /** Takes the log's appends into the high watermark, and wakes the waiting fetches when it moved. */
  progress(): void {
    this.progressedTo = this.log.stableOffset;
    this.run(
      this.state.onLocalProgress({ logEndOffset: this.log.logEndOffset, localEnd: this.progressedTo }),
    );
  }

  /**
   * Appends that drove no progress yet: an acks 0 produce is answered before its batch is written,
   * so the replica tick takes it in once the log has written it.
   */
  progressIfWritten(): void {
    if (this.log.stableOffset !== this.progressedTo) this.progress();
  }

  private wakeIfMoved(): void {
    const written = this.log.stableOffset;
    const highWatermark = this.state.highWatermark;
    if (written === this.wokenForWritten && highWatermark === this.wokenForHighWatermark) return;
    this.wokenForWritten = written;
    this.wokenForHighWatermark = highWatermark;
    this.wakeAll();
  }

  private wakeAll(): void {
    if (this.dataWaiters.size === 0) return;
    const waiting = [...this.dataWaiters];
    this.dataWaiters.clear();
    for (const wake of waiting) wake();
  }

  /**
   * The leader state's log start as the log has it now (retention moves it), so that a fetch below
   * it is answered OFFSET_OUT_OF_RANGE with the start the follower restarts at.
   */
  followLogStart(): void {
    this.run(this.state.onLogStartOffset(this.log.logStartOffset));
  }

  /** Where the log's written end and the high watermark are now (see movedSince). */
  mark(): { written: bigint; highWatermark: bigint } {
    return { written: this.log.stableOffset, highWatermark: this.state.highWatermark };
  }

  /** Whether the leader wrote more or its high watermark moved since `mark`. */
  movedSince(mark: { written: bigint; highWatermark: bigint }): boolean {
    return this.log.stableOffset !== mark.written || this.state.highWatermark !== mark.highWatermark;
  }

  /** Resolves when the leader wrote something or its high watermark moved, or after `ms`. */
  awaitData(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.dataWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.dataWaiters.add(done);
    });
  }

  acknowledged(lastOffset: bigint, deadlineMs: number): Promise<void> {
    const requestId = this.nextRequestId++;
    return new Promise<void>((resolve, reject) => {
      this.waiters.set(requestId, { resolve, reject, lastOffset, deadlineMs });
      this.run(this.state.awaitReplication(requestId, lastOffset, deadlineMs));
    });
  }

  /**
   * The replica set changed at the same leader epoch (a reassignment): `next` leads from now on,
   * and the produces waiting for acks 'all' wait on it instead of failing.
   */
  handOver(next: LeaderReplica): void {
    const waiting = [...this.waiters.values()];
    this.waiters.clear();
    this.run(this.state.resign());
    this.wakeAll();
    for (const waiter of waiting)
      next.acknowledged(waiter.lastOffset, waiter.deadlineMs).then(waiter.resolve, waiter.reject);
  }

  resign(): void {
    this.wakeAll();
    this.run(this.state.resign());
    for (const waiter of this.waiters.values())
      waiter.reject(errorOf('NOT_LEADER', `${this.topic}/${this.partition}`));
    this.waiters.clear();
  }
}

class FollowerReplica {
  private timer: NodeJS.Timeout;
  /** Actions run one after the other (a truncation must finish before the next append). */
  private queue: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly leaderEpoch: number,
    private readonly core: BrokerCore,
    private readonly log: PartitionLog,
    private readonly state: FollowerState,
    private readonly link: TcpTransport,
    private readonly logger: BrokerLogger,
    /** The follower cannot go on at this epoch (its leader is not leading yet, or no longer). */
    private readonly onGiveUp: (reason: string) => void,
  ) {
    this.timer = setInterval(() => this.enqueue(this.state.poll(Date.now())), TICK_MS);
    this.timer.unref();
    this.enqueue(this.state.poll(Date.now()));
  }

  /**
   * Stops; resolves once the action under way (a truncation, an append) has ended. A role taken
   * next reads the log after that: a leader state built while a truncation still runs would start
   * from a log end and an epoch start the truncation then takes away.
   */
  stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    return this.queue;
  }

  private enqueue(actions: readonly FollowerAction[]): void {
    if (actions.length === 0 || this.stopped) return;
    this.queue = this.queue
      .then(() => this.perform(actions))
      .catch((error: unknown) => {
        // A failed append or truncation leaves the state machine ahead of the log: this follower
        // stops, and the manager starts a new one from what the log holds.
        if (this.stopped) return;
        void this.stop();
        this.onGiveUp(`failed step: ${(error as Error).message}`);
      });
  }

  private async perform(actions: readonly FollowerAction[]): Promise<void> {
    const partition = this.core.partition(this.topic, this.partition);
    for (const action of actions) {
      if (this.stopped) return;
      switch (action.type) {
        case 'send-fetch': {
          const { requestId, request } = action;
          void this.link
            .call(
              REPLICATION_COMMANDS.replicaFetch,
              {
                replicaId: request.replicaId,
                maxWaitMs: FETCH_MAX_WAIT_MS,
                minBytes: 0,
                maxBytes: 4 * 1024 * 1024,
                partitions: [
                  {
                    topic: this.topic,
                    partition: this.partition,
                    leaderEpoch: request.leaderEpoch,
                    lastFetchedEpoch: this.log.leaderEpochs.latestEpoch ?? NO_EPOCH,
                    fetchOffset: request.fetchOffset,
                    stableOffset: request.stableOffset,
                    maxBytes: 1024 * 1024,
                  },
                ],
              },
              { timeoutMs: REQUEST_TIMEOUT_MS },
            )
            .then(
              (response) => {
                const entry = response.partitions[0];
                const result =
                  entry === undefined
                    ? { error: 'NOT_LEADER' as ErrorName }
                    : entry.error === 'OFFSET_OUT_OF_RANGE' && entry.logStartOffset >= 0n
                      ? { error: entry.error, logStartOffset: entry.logStartOffset }
                      : replicaFetchResultOf(entry);
                this.enqueue(this.state.onFetchResponse(requestId, result, Date.now()));
              },
              (error: unknown) => this.failed(requestId, error, 'fetch'),
            );
          break;
        }
        case 'send-epoch-query': {
          const { requestId, query } = action;
          void this.link
            .call(
              REPLICATION_COMMANDS.offsetsForLeaderEpoch,
              {
                replicaId: query.replicaId,
                partitions: [
                  {
                    topic: this.topic,
                    partition: this.partition,
                    leaderEpoch: query.leaderEpoch,
                    queryEpoch: query.queryEpoch,
                  },
                ],
              },
              { timeoutMs: REQUEST_TIMEOUT_MS },
            )
            .then(
              (response) => {
                const entry = response.partitions[0];
                const answer =
                  entry === undefined ? { error: 'NOT_LEADER' as ErrorName } : epochAnswerOf(entry);
                this.enqueue(this.state.onEpochAnswer(requestId, answer, Date.now()));
              },
              (error: unknown) => this.failed(requestId, error, 'epoch'),
            );
          break;
        }
        case 'truncate':
          await this.log.truncateTo(action.offset);
          await partition.derived.truncated(action.offset);
          break;
        case 'truncate-fully':
          this.logger.info(
            { topic: this.topic, partition: this.partition, from: this.log.logEndOffset, to: action.offset },
            "replica log below the leader's log start: emptied, starts again there",
          );
          await this.log.truncateFullyAndStartAt(action.offset);
          // Producer tables as an open of the emptied log builds them (none: every batch they knew
          // lies below the new log start); the log restarted the stream index itself.
          await partition.derived.recover();
          break;
        case 'append': {
          const bytes = Buffer.from(
            action.batch.bytes.buffer,
            action.batch.bytes.byteOffset,
            action.batch.bytes.byteLength,
          );
          const ticket = this.log.appendReplicated(bytes);
          partition.derived.applyReplicatedBatch(bytes, ticket.baseOffset, ticket.lastOffset);
          await ticket.done;
          this.state.onLocalStable(this.log.stableOffset);
          break;
        }
        case 'high-watermark':
          moveHighWatermark(this.log, action.highWatermark);
          break;
        case 'write-epoch-checkpoint':
          // appendReplicated and truncateTo keep the log's leader-epoch file.
          break;
        case 'refresh-metadata':
          // The leader does not lead at this epoch (yet, or any more): the manager looks again.
          void this.stop();
          this.onGiveUp(action.reason);
          return;
      }
    }
  }

  /** A request that got no answer: the state machine resends after its timeout. */
  private failed(_requestId: number, error: unknown, what: string): void {
    if (this.stopped) return;
    if (!(error instanceof MemoryStreamerError && error.retriable))
      this.logger.warn(
        { topic: this.topic, partition: this.partition, what, reason: (error as Error).message },
        'replica request failed',
      );
  }
}

/** How long the id of a deleted topic is remembered (noticeRecreatedTopics): past every sweep. */
const SEEN_TOPIC_ID_KEEP_MS = 60_000;

export class ReplicaManager implements ReplicaRoles, ReplicaRequestHandler, ClusterMetadataView {
  private readonly leaders = new Map<string, LeaderReplica>();
  private readonly followers = new Map<string, FollowerReplica>();
  private readonly links = new Map<number, { advertise: string; link: TcpTransport }>();
  private readonly tick: NodeJS.Timeout;
  private reconciling: Promise<void> = Promise.resolve();
  /**
   * The id of every cluster topic as the last reconcile saw it, kept a minute after the topic went
   * (`goneAt`): a topic created again under the name shows as another id, also when the delete and
   * the create came between two reconciles.
   */
  private readonly seenTopicIds = new Map<string, { id: string; goneAt: number | null }>();
  private stopped = false;
  /** A controlled shutdown began: this broker follows nobody any more (it is leaving the ISRs). */
  private leaving = false;
  private readonly replicaLagTimeMs: number;
  private readonly ackTimeoutMs: number;
  private readonly idleFetchBackoffMs: number;
  private readonly groupsOptions: ClusterGroupsOptions;
  private readonly tlsOf: () => ClientTlsOptions | undefined;
  /** Followers' segment comparisons with their leaders, and the leaders' answers (anti-entropy-service.ts). */
  readonly antiEntropy: AntiEntropyService;

  constructor(
    private readonly core: BrokerCore,
    private readonly member: ClusterMember,
    private readonly logger: BrokerLogger,
    options: ReplicaManagerOptions = {},
  ) {
    this.replicaLagTimeMs = options.replicaLagTimeMs ?? 10_000;
    this.ackTimeoutMs = options.ackTimeoutMs ?? 30_000;
    this.idleFetchBackoffMs = options.idleFetchBackoffMs ?? 0;
    this.groupsOptions = options.groups ?? {};
    this.tlsOf = options.tls ?? (() => undefined);
    this.tick = setInterval(() => {
      const now = Date.now();
      for (const leader of this.leaders.values()) {
        leader.progressIfWritten();
        leader.run(leader.state.tick(now));
      }
    }, TICK_MS);
    this.tick.unref();
    this.antiEntropy = new AntiEntropyService(
      antiEntropyHost(core, member, {
        followers: () => this.followers.values(),
        leader: (topic, partition) => this.leaders.get(keyOf(topic, partition)),
        linkTo: (brokerId) => this.linkTo(brokerId),
      }),
      logger,
      { intervalMs: options.antiEntropyIntervalMs ?? DEFAULT_ANTI_ENTROPY_INTERVAL_MS },
    );
  }

  /** Plugs the manager into the core and follows the metadata from now on. */
  start(): void {
    this.core.replicaRoles = this;
    this.core.replicaRequests = this;
    this.core.clusterTopics = {
      create: (request) => this.createTopic(request),
      alter: (request) => this.alterTopic(request),
      delete: (name) => this.deleteTopic(name),
    };
    this.core.clusterMetadata = this;
    this.core.clusterGroups = new ClusterGroupPlacement(this.member, this.groupsOptions);
    this.core.clusterOperations = new ControllerOperations(this.member, (id) => this.linkTo(id));
    this.core.selfFence = this.member;
    this.reconcile();
    this.antiEntropy.start();
  }

  /** Call whenever the metadata changed (the member's watch). */
  reconcile(): void {
    this.reconciling = this.reconciling
      .then(() => this.reconcileNow())
      .catch((error: unknown) =>
        this.logger.error({ reason: (error as Error).message }, 'replica reconcile failed'),
      );
  }

  /**
   * A controlled shutdown begins: the followers stop fetching, so that the leaders do not take
   * this broker back into their ISRs while the controller moves it out of them.
   */
  beginShutdown(): void {
    this.leaving = true;
    for (const key of [...this.followers.keys()]) void this.stopFollower(key);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.tick);
    this.antiEntropy.stop();
    await this.reconciling;
    for (const leader of this.leaders.values()) leader.resign();
    await Promise.all([...this.followers.values()].map((follower) => follower.stop()));
    this.leaders.clear();
    this.followers.clear();
    for (const { link } of this.links.values()) await link.close();
    this.links.clear();
    this.core.replicaRoles = null;
    this.core.replicaRequests = null;
    this.core.clusterTopics = null;
    this.core.clusterMetadata = null;
    this.core.clusterGroups = null;
    this.core.clusterOperations = null;
    this.core.selfFence = null;
  }

  /**
   * This broker fenced itself, or is heard again (ClusterMember's `onSelfFence`). While fenced it
   * coordinates no group (the core answers NOT_COORDINATOR), and the groups of the offsets
   * partitions it leads are dropped here, as when leadership moves away (`resignGroupPartition`):
   * the controller may have moved those partitions already, so another broker may be coordinating
   * the same groups, and every member that asked here meanwhile was told NOT_COORDINATOR, which
   * makes it join again under a new member id. Kept, that membership would be stale once the
   * broker is heard again: members that will never come back would hold up the next rebalance
   * until their session timeouts, and a pending join would wait here instead of moving on.
   * Heard again, the reconcile coordinates the partitions it still leads afresh, from the
   * committed offsets in their logs, and the members join again.
   */
  selfFenceChanged(state: 'fenced' | 'unfenced'): void {
    if (this.stopped) return;
    if (state === 'unfenced') {
      this.reconcile();
      return;
    }
    for (const leader of this.leaders.values())
      if (leader.topic === OFFSETS_TOPIC) this.core.resignGroupPartition(leader.partition);
  }

  private async reconcileNow(): Promise<void> {
    if (this.stopped) return;
    const me = this.member.brokerId;
    const cache = this.member.metadata;
    const wanted = new Set<string>();
    // Copies of topics the cluster no longer has, or no longer places here, go.
    // A data directory's `__consumer_offsets` from before it joined (a broker alone keeps one) is
    // not the cluster's: it goes like any copy the cluster does not place here.
    const offsets = this.core.localTopic(OFFSETS_TOPIC);
    const stale =
      offsets !== undefined && offsets.partitions !== cache.topic(OFFSETS_TOPIC)?.value.partitions
        ? [OFFSETS_TOPIC]
        : [];
    // Topics deleted and created again whose groups' offsets were forgotten here already.
    const forgotten = new Set<string>();
    for (const local of [...this.core.localTopicNames(), ...stale]) {
      const topic = cache.topic(local)?.value;
      // A copy of a topic deleted and created again under its name (both can arrive before this
      // reconcile runs) carries the old topic's id: it goes, and the new topic's copy is made
      // below, empty, as on a broker that never held the old one.
      // A copy that could not be opened (offline), or made before topics had cluster ids, has no
      // cluster id to compare and is left as it is.
      const localId = this.core.clusterIdOfCopy(local);
      const recreated = topic?.id !== undefined && localId !== undefined && localId !== topic.id;
      if (
        stale.includes(local) ||
        topic === undefined ||
        recreated ||
        !topic.assignment.some((replicas) => replicas.includes(me))
      ) {
        await this.stopReplicasOf(local);
        await this.core.deleteLocal(local, recreated);
        if (recreated) forgotten.add(local);
        this.logger.info(
          { topic: local },
          recreated
            ? 'replica of a topic deleted and created again removed'
            : 'replica of a deleted or moved topic removed',
        );
      }
    }
    this.noticeRecreatedTopics(forgotten);
    for (const { value: topic } of cache.topics()) {
      const mine = topic.assignment.some((replicas) => replicas.includes(me));
      if (!mine) continue;
      // Deleted and created again since the loop above looked (the cache moves on while this
      // reconcile awaits): the old topic's copy is not taken for the new one; the reconcile that
      // change queued replaces it.
      const copyId = this.core.clusterIdOfCopy(topic.name);
      if (topic.id !== undefined && copyId !== undefined && copyId !== topic.id) continue;
      await this.core.ensureReplicaTopic(this.localTopicOf(topic), topic.id);
      await this.core.followReplicaTopic({
        name: topic.name,
        partitions: topic.partitions,
        config: topic.config as CreateTopicRequest['config'],
      });
      for (let p = 0; p < topic.partitions; p++) {
        const replicas = topic.assignment[p] ?? [];
        if (!replicas.includes(me)) continue;
        const state = cache.partition(topic.name, p);
        if (state === undefined || state.value.leader === NO_LEADER) continue;
        const key = keyOf(topic.name, p);
        wanted.add(key);
        const { leader, leaderEpoch, isr } = state.value;
        if (leader === me) {
          // A truncation the follower had under way ends before the leader state reads the log.
          await this.stopFollower(key);
          const current = this.leaders.get(key);
          const sameReplicas =
            current !== undefined &&
            current.replicas.length === replicas.length &&
            current.replicas.every((id) => replicas.includes(id));
          if (current !== undefined && current.state.leaderEpoch === leaderEpoch && sameReplicas) {
            // The topic's settings as they are now (an alter changes them at the same epoch), and
            // the ISR as the controller (or this leader's own proposal) wrote it.
            current.state.setMinInsyncReplicas(this.minInsyncReplicasOf(topic));
            const before = current.state.isr;
            current.run(current.state.applyIsr(isr, Number(state.modRevision), Date.now()));
            this.countIsrChange(before, current.state.isr);
            // Groups dropped while this broker was fenced are coordinated here again (a no-op
            // while they still are).
            if (topic.name === OFFSETS_TOPIC && !this.member.selfFenced)
              this.core.coordinateGroupPartition(p);
            continue;
          }
          // A reassignment changes the replicas without a new leader epoch (the log's history is
          // the same): the leader starts again at its epoch with the new set.
          const handOver =
            current !== undefined && current.state.leaderEpoch === leaderEpoch ? current : null;
          if (handOver === null) current?.resign();
          this.becomeLeader(topic, p, replicas, leaderEpoch, isr, Number(state.modRevision), handOver);
        } else {
          this.resignLeader(key);
          if (this.leaving) continue;
          const current = this.followers.get(key);
          if (current !== undefined && current.leaderEpoch === leaderEpoch) continue;
          await current?.stop();
          this.becomeFollower(topic.name, p, leader, leaderEpoch);
        }
      }
    }
    for (const key of [...this.leaders.keys()]) if (!wanted.has(key)) this.resignLeader(key);
    for (const key of [...this.followers.keys()]) if (!wanted.has(key)) await this.stopFollower(key);
    await this.dropMovedPartitions(me);
  }

  /** A partition reassigned away from this broker (its topic still has others here) loses its copy. */
  private async dropMovedPartitions(me: number): Promise<void> {
    for (const { value: topic } of this.member.metadata.topics()) {
      const local = this.core.localTopic(topic.name)?.partitions ?? 0;
      for (let p = 0; p < Math.min(local, topic.partitions); p++) {
        if (topic.assignment[p]?.includes(me) !== false) continue;
        const partition = this.core.partition(topic.name, p);
        const start = partition.log.logStartOffset;
        if (partition.log.logEndOffset === start) continue;
        await partition.log.truncateTo(start);
        await partition.derived.truncated(start);
        this.logger.info({ topic: topic.name, partition: p }, 'replica of a moved partition removed');
      }
    }
  }

  /** ISR members removed and added by the changes applied to partitions led here (for metrics). */
  private readonly isrChanges = { shrinks: 0, expands: 0 };
  private readonly topicPresence = new TopicPresenceCheck({
    stored: async (topic) => (await this.member.controlPlane.read(KEYS.topic(topic))).value !== null,
  });

  private countIsrChange(before: readonly number[], after: readonly number[]): void {
    this.isrChanges.shrinks += before.filter((id) => !after.includes(id)).length;
    this.isrChanges.expands += after.filter((id) => !before.includes(id)).length;
  }

  /** What this broker leads, how far each follower is behind, and the ISR changes so far. */
  replicationStats(nowMs = Date.now()): ReplicationStats {
    const partitions: ReplicationStats['partitions'][number][] = [];
    for (const leader of this.leaders.values()) {
      const replicas = this.member.metadata.topic(leader.topic)?.value.assignment[leader.partition] ?? [];
      const logEnd = leader.log.logEndOffset;
      const followers = replicas
        .filter((id) => id !== this.member.brokerId)
        .map((brokerId) => {
          const progress = leader.state.follower(brokerId);
          const position = progress?.position ?? null;
          const caughtUp = position !== null && position >= logEnd;
          const since = Math.max(
            progress?.lastCaughtUpTimeMs ?? Number.NEGATIVE_INFINITY,
            leader.leadingSinceMs,
          );
          return {
            brokerId,
            lagMessages:
              position === null ? logEnd - leader.log.logStartOffset : caughtUp ? 0n : logEnd - position,
            lagMs: caughtUp ? 0 : Math.max(0, nowMs - since),
          };
        });
      partitions.push({
        topic: leader.topic,
        partition: leader.partition,
        replicas: [...replicas],
        isr: [...leader.state.isr],
        followers,
        replicaFetches: leader.replicaFetches,
      });
    }
    return { partitions, isrShrinks: this.isrChanges.shrinks, isrExpands: this.isrChanges.expands };
  }

  private async stopReplicasOf(topic: string): Promise<void> {
    for (const key of [...this.leaders.keys()])
      if (this.leaders.get(key)!.topic === topic) this.resignLeader(key);
    for (const key of [...this.followers.keys()])
      if (this.followers.get(key)!.topic === topic) await this.stopFollower(key);
  }

  /**
   * The groups coordinated here forget their offsets of a topic deleted and created again under its
   * name (its id changed since the last reconcile), as of a deleted topic, also where this broker
   * holds no copy of it: their coordinator's sweep forgets those of a topic it finds gone, but a
   * delete and a create between two sweeps leave it nothing to find. `forgotten`: topics whose
   * local copy went as recreated, which forgot them already.
   */
  private noticeRecreatedTopics(forgotten: ReadonlySet<string>): void {
    const now = Date.now();
    const present = new Set<string>();
    for (const { value: topic } of this.member.metadata.topics()) {
      if (topic.id === undefined) continue;
      present.add(topic.name);
      const seen = this.seenTopicIds.get(topic.name);
      if (seen !== undefined && seen.id !== topic.id && !forgotten.has(topic.name))
        this.core.forgetRecreatedTopic(topic.name);
      this.seenTopicIds.set(topic.name, { id: topic.id, goneAt: null });
    }
    for (const [name, seen] of this.seenTopicIds) {
      if (present.has(name)) continue;
      if (seen.goneAt === null) seen.goneAt = now;
      else if (now - seen.goneAt > SEEN_TOPIC_ID_KEEP_MS) this.seenTopicIds.delete(name);
    }
  }

  private localTopicOf(topic: TopicRecord): CreateTopicRequest {
    return {
      name: topic.name,
      partitions: topic.partitions,
      replicationFactor: topic.replicationFactor,
      config: topic.config as CreateTopicRequest['config'],
    };
  }

  private minInsyncReplicasOf(topic: TopicRecord): number {
    const value = topic.config.minInsyncReplicas;
    return typeof value === 'number' ? value : 1;
  }

  private becomeLeader(
    topic: TopicRecord,
    partition: number,
    replicas: readonly number[],
    leaderEpoch: number,
    isr: readonly number[],
    isrVersion: number,
    previous: LeaderReplica | null = null,
  ): void {
    const log = this.core.partition(topic.name, partition).log;
    const { leader, actions } = LeaderState.become(
      {
        brokerId: this.member.brokerId,
        leaderEpoch,
        replicas,
        isr,
        isrVersion,
        replicaLagTimeMs: this.replicaLagTimeMs,
        minInsyncReplicas: this.minInsyncReplicasOf(topic),
        isrProposalRetryMs: 1_000,
      },
      epochCacheOf(log),
      {
        logStartOffset: log.logStartOffset,
        logEndOffset: log.logEndOffset,
        localEnd: log.stableOffset,
        highWatermark: log.replicatedHighWatermark ?? log.highWatermark,
        nowMs: Date.now(),
      },
    );
    const replica = new LeaderReplica(
      topic.name,
      partition,
      log,
      leader,
      (proposed, version) => this.writeIsr(topic.name, partition, leaderEpoch, proposed, version),
      [...replicas],
    );
    this.leaders.set(keyOf(topic.name, partition), replica);
    replica.run(actions);
    previous?.handOver(replica);
    if (topic.name === OFFSETS_TOPIC) this.core.coordinateGroupPartition(partition);
    this.logger.info(
      { topic: topic.name, partition, leaderEpoch, brokerId: this.member.brokerId },
      'leading partition',
    );
  }

  private becomeFollower(topic: string, partition: number, leaderId: number, leaderEpoch: number): void {
    const link = this.linkTo(leaderId);
    if (link === null) {
      // The leader's registration is not in this broker's metadata yet: look again shortly.
      setTimeout(() => this.reconcile(), FOLLOWER_RETRY_MS).unref();
      return;
    }
    const log = this.core.partition(topic, partition).log;
    const state = new FollowerState(
      {
        brokerId: this.member.brokerId,
        leaderId,
        leaderEpoch,
        reportStableOffset: this.core.localTopic(topic)?.config.durability === 'always',
        // A fetch may wait FETCH_MAX_WAIT_MS on the leader before its answer.
        requestTimeoutMs: FETCH_MAX_WAIT_MS + FOLLOWER_RETRY_MS,
        idleFetchBackoffMs: this.idleFetchBackoffMs,
        errorBackoffMs: 100,
      },
      epochCacheOf(log),
      {
        logEndOffset: log.logEndOffset,
        stableOffset: log.stableOffset,
        highWatermark: log.replicatedHighWatermark ?? 0n,
        nowMs: Date.now(),
      },
    );
    const key = keyOf(topic, partition);
    const follower = new FollowerReplica(
      topic,
      partition,
      leaderEpoch,
      this.core,
      log,
      state,
      link,
      this.logger,
      (reason) => {
        if (this.followers.get(key) !== follower) return;
        this.followers.delete(key);
        this.logger.info({ topic, partition, leader: leaderId, leaderEpoch, reason }, 'follower restarts');
        setTimeout(() => this.reconcile(), FOLLOWER_RETRY_MS).unref();
      },
    );
    this.followers.set(key, follower);
    this.logger.info({ topic, partition, leader: leaderId, leaderEpoch }, 'following partition');
  }

  private resignLeader(key: string): void {
    const leader = this.leaders.get(key);
    if (leader === undefined) return;
    leader.resign();
    this.leaders.delete(key);
    if (leader.topic === OFFSETS_TOPIC) this.core.resignGroupPartition(leader.partition);
  }

  /** Stops the partition's follower; resolves once its action under way has ended. */
  private stopFollower(key: string): Promise<void> {
    const follower = this.followers.get(key);
    this.followers.delete(key);
    return follower === undefined ? Promise.resolve() : follower.stop();
  }

  /** One connection per leader broker, at the address it registered. */
  private linkTo(brokerId: number): TcpTransport | null {
    const registration = this.member.metadata.broker(brokerId);
    if (registration === undefined) return null;
    const known = this.links.get(brokerId);
    if (known !== undefined && known.advertise === registration.advertise) return known.link;
    void known?.link.close();
    const [host, port] = [
      registration.advertise.slice(0, registration.advertise.lastIndexOf(':')),
      Number(registration.advertise.slice(registration.advertise.lastIndexOf(':') + 1)),
    ];
    const tls = this.tlsOf();
    const link = new TcpTransport({
      brokers: [{ host: host.replace(/^\[|\]$/g, ''), port }],
      clientId: `broker-${this.member.brokerId}`,
      ...(tls !== undefined ? { tls } : {}),
    });
    this.links.set(brokerId, { advertise: registration.advertise, link });
    return link;
  }

  /** A leader's ISR change: compare-and-swap on the partition's key, at this leader's epoch. */
  private writeIsr(
    topic: string,
    partition: number,
    leaderEpoch: number,
    isr: readonly number[],
    isrVersion: number,
  ): void {
    // A fenced leader changes no ISR (the leader state proposes again later).
    if (this.member.selfFenced) return;
    const key = KEYS.partition(topic, partition);
    const plane = this.member.controlPlane;
    void plane
      .writeIfUnchanged(key, BigInt(isrVersion), [
        [key, encodeRecord({ leader: this.member.brokerId, leaderEpoch, isr: [...isr] })],
      ])
      .then((written) => {
        if (!written)
          this.logger.info({ topic, partition }, 'ISR change lost a race; the next metadata decides');
      })
      .catch((error: unknown) =>
        this.logger.warn({ topic, partition, reason: (error as Error).message }, 'ISR change not written'),
      );
  }

  /** Topic changes are made on the controller: elsewhere NOT_CONTROLLER names it. */
  private requireController(): void {
    if (this.member.isController) return;
    const controller = this.member.metadata.controller;
    const where =
      controller === null
        ? 'none is elected now'
        : `broker ${controller.brokerId} at ${this.member.metadata.broker(controller.brokerId)?.advertise ?? '?'}`;
    throw errorOf('NOT_CONTROLLER', `topics are created, altered and deleted on the controller (${where})`);
  }

  private async alterTopic(request: AlterTopicRequest & { allowKeyMovement?: boolean }): Promise<TopicView> {
    this.requireController();
    const current = this.member.metadata.topic(request.name)?.value;
    if (current === undefined) throw errorOf('UNKNOWN_TOPIC', request.name);
    if (
      request.partitions !== undefined &&
      request.partitions > current.partitions &&
      request.allowKeyMovement !== true
    ) {
      // Keys would move between partitions: refused when this broker's copy holds keyed messages,
      // and when it has no copy to look at (the caller says allowKeyMovement when that is wanted).
      if (this.core.localTopic(request.name) === undefined)
        throw errorOf(
          'PARTITION_GROWTH_MOVES_KEYS',
          `${request.name}: the controller holds no copy to check for keyed messages; pass allowKeyMovement (--allow-key-movement) to grow it`,
        );
      this.core.checkKeyMovement(request.name, request.partitions);
    }
    const record = await this.member.controllerService.alterTopic(request.name, {
      ...(request.partitions !== undefined ? { partitions: request.partitions } : {}),
      ...(request.config !== undefined ? { config: request.config } : {}),
    });
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const local = this.core.localTopic(record.name);
      if (local === undefined || local.partitions === record.partitions) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return this.core.localTopic(record.name) ?? this.viewOf(record);
  }

  private async deleteTopic(name: string): Promise<void> {
    this.requireController();
    if (this.member.metadata.topic(name) === undefined) throw errorOf('UNKNOWN_TOPIC', name);
    await this.member.controllerService.deleteTopic(name);
  }

  /** A topic this broker holds no copy of, as the cluster records it. */
  private viewOf(record: TopicRecord): TopicView {
    const view = this.core.viewOfNewTopic(this.localTopicOf(record));
    return record.id === undefined ? view : { ...view, id: record.id };
  }

  private async createTopic(request: CreateTopicRequest): Promise<TopicView> {
    const service = this.member.controllerService;
    this.requireController();
    const record = await service.createTopic({
      name: request.name,
      partitions: request.partitions ?? 1,
      replicationFactor: request.replicationFactor ?? 1,
      config: request.config ?? {},
    });
    // The replicas appear from the metadata; this broker answers once its own copy (if any) is open.
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const local = this.core.localTopic(record.name);
      if (local !== undefined) return local;
      if (!record.assignment.some((replicas) => replicas.includes(this.member.brokerId))) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return this.core.localTopic(record.name) ?? this.viewOf(record);
  }

  // ClusterMetadataView

  metadata(request: MetadataRequest): MetadataResponse {
    const cache = this.member.metadata;
    const brokers = cache.brokers();
    const live = new Set(brokers.map((broker) => broker.brokerId));
    const names = request.topics ?? cache.topics().map((topic) => topic.value.name);
    const topics = names.map((name): TopicMetadata => {
      const topic = cache.topic(name)?.value;
      if (topic === undefined)
        return { name, error: 'UNKNOWN_TOPIC', id: '', internal: name.startsWith('__'), partitions: [] };
      return {
        name,
        error: null,
        id: this.core.localTopic(name)?.id ?? topic.id ?? '',
        internal: name.startsWith('__'),
        partitions: Array.from({ length: topic.partitions }, (_, partition) => {
          const replicas = [...(topic.assignment[partition] ?? [])];
          const state = cache.partition(name, partition)?.value;
          const leader = state?.leader ?? NO_LEADER;
          return {
            partition,
            error: leader === NO_LEADER ? 'LEADER_NOT_AVAILABLE' : null,
            leader,
            leaderEpoch: state?.leaderEpoch ?? -1,
            replicas,
            isr: [...(state?.isr ?? [])],
            offlineReplicas: replicas.filter((id) => !live.has(id)),
          };
        }),
      };
    });
    return {
      clusterId: this.member.clusterId,
      controllerId: cache.controller?.brokerId ?? -1,
      brokers: brokers.map((broker) => {
        const colon = broker.advertise.lastIndexOf(':');
        return {
          id: broker.brokerId,
          host: broker.advertise.slice(0, colon).replace(/^\[|\]$/g, ''),
          port: Number(broker.advertise.slice(colon + 1)),
        };
      }),
      topics,
    };
  }

  topics(): CreateTopicRequest[] {
    return this.member.metadata
      .topics()
      .filter(({ value }) => !value.name.startsWith('__'))
      .map(({ value }) => this.localTopicOf(value));
  }

  partitionRoles(topic: string, partition: number): PartitionRoles | undefined {
    const cache = this.member.metadata;
    const record = cache.topic(topic)?.value;
    if (record === undefined) return undefined;
    const state = cache.partition(topic, partition)?.value;
    return {
      leader: state?.leader ?? NO_LEADER,
      leaderEpoch: state?.leaderEpoch ?? -1,
      replicas: [...(record.assignment[partition] ?? [])],
      isr: [...(state?.isr ?? [])],
    };
  }

  // ReplicaRoles

  leaderEpochForProduce(topic: string, partition: number, acks: Acks): number {
    const leader = this.leaders.get(keyOf(topic, partition));
    if (leader === undefined) throw this.notLeader(topic, partition);
    // Self-fencing: the controller may have elected another leader in this broker's place.
    if (this.member.selfFenced)
      throw errorOf(
        'NOT_LEADER',
        `${topic}/${partition}: broker ${this.member.brokerId} is fenced (no heartbeat answered by the controller for ${this.member.silentForMs} ms)`,
      );
    const refused = leader.state.checkAppend(acks);
    if (refused !== null) throw errorOf(refused, `${topic}/${partition}`);
    return leader.state.leaderEpoch;
  }

  acknowledged(topic: string, partition: number, lastOffset: bigint, acks: Acks): Promise<void> {
    const leader = this.leaders.get(keyOf(topic, partition));
    if (leader === undefined) return Promise.reject(this.notLeader(topic, partition));
    leader.progress();
    if (acks !== 'all') return Promise.resolve();
    return leader.acknowledged(lastOffset, Date.now() + this.ackTimeoutMs);
  }

  checkRead(topic: string, partition: number): void {
    if (!this.leaders.has(keyOf(topic, partition))) throw this.notLeader(topic, partition);
  }

  partitionCount(topic: string): number | undefined {
    // Internal topics are the brokers' own, as in topics().
    if (topic.startsWith(INTERNAL_TOPIC_PREFIX)) return undefined;
    return this.member.metadata.topic(topic)?.value.partitions;
  }

  async missingTopic(topic: string, partition: number): Promise<Error> {
    const known = this.member.metadata.topic(topic)?.value;
    if (known === undefined) {
      // A name no topic can have is not worth an etcd read (a client spraying made-up names).
      if (!isValidTopicName(topic)) return errorOf('UNKNOWN_TOPIC', JSON.stringify(topic));
      switch (await this.topicPresence.check(topic)) {
        case 'stored':
          return errorOf(
            'LEADER_NOT_AVAILABLE',
            `${topic}/${partition}: broker ${this.member.brokerId} has not yet seen the topic (its metadata lags etcd)`,
          );
        case 'failed':
          return errorOf(
            'CONTROL_PLANE_UNAVAILABLE',
            `${topic}: broker ${this.member.brokerId} does not know the topic and could not ask etcd whether it exists`,
          );
        case 'unchecked':
          // Every lookup slot is taken (etcd answers slowly, or a client sprays names): whether
          // the topic exists is not known, and UNKNOWN_TOPIC would be taken as final.
          return errorOf(
            'CONTROL_PLANE_UNAVAILABLE',
            `${topic}: broker ${this.member.brokerId} does not know the topic and its etcd lookups are all taken; try again`,
          );
        case 'absent':
          return errorOf('UNKNOWN_TOPIC', JSON.stringify(topic));
      }
    }
    if (partition < 0 || partition >= known.partitions)
      return errorOf(
        'UNKNOWN_PARTITION',
        `${topic} has partitions 0..${known.partitions - 1}, asked for ${partition}`,
      );
    return this.notLeader(topic, partition);
  }

  private notLeader(topic: string, partition: number): Error {
    const state = this.member.metadata.partition(topic, partition)?.value;
    if (state === undefined || state.leader === NO_LEADER)
      return errorOf('LEADER_NOT_AVAILABLE', `${topic}/${partition}`);
    const address = this.member.metadata.broker(state.leader)?.advertise ?? '?';
    return errorOf('NOT_LEADER', `${topic}/${partition} is led by broker ${state.leader} at ${address}`);
  }

  // ReplicaRequestHandler

  verifyPartition(request: VerifyPartitionRequest): Promise<VerifyPartitionResponse> {
    return this.antiEntropy.verify(request);
  }

  async replicaFetch(request: ReplicaFetchRequest): Promise<ReplicaFetchResponse> {
    for (const entry of request.partitions) {
      const leader = this.leaders.get(keyOf(entry.topic, entry.partition));
      if (leader !== undefined) leader.replicaFetches++;
    }
    const leaders = request.partitions
      .map((entry) => this.leaders.get(keyOf(entry.topic, entry.partition)))
      .filter((leader): leader is LeaderReplica => leader !== undefined);
    // A write or a high-watermark move while the read below runs wakes no one (this fetch does
    // not wait yet): it is looked for before waiting, or it would sit out the whole long poll.
    const marks = leaders.map((leader) => leader.mark());
    const first = await this.replicaFetchOnce(request);
    if (request.maxWaitMs <= 0 || first.partitions.some((p) => p.error !== null || p.batches.length > 0))
      return first;
    if (leaders.length === 0) return first;
    if (leaders.some((leader, i) => leader.movedSince(marks[i]!))) return this.replicaFetchOnce(request);
    // Nothing to send: wait until one of these leaders writes or moves its high watermark (or the
    // wait ends), once.
    await Promise.race(
      leaders.map((leader) => leader.awaitData(Math.min(request.maxWaitMs, FETCH_MAX_WAIT_MS))),
    );
    return this.replicaFetchOnce(request);
  }

  private async replicaFetchOnce(request: ReplicaFetchRequest): Promise<ReplicaFetchResponse> {
    const partitions: ReplicaFetchedPartition[] = [];
    let budget = request.maxBytes;
    for (const entry of request.partitions) {
      const leader = this.leaders.get(keyOf(entry.topic, entry.partition));
      const refuse = (
        error: ErrorName,
        leaderEpoch: number,
        logStartOffset = -1n,
      ): ReplicaFetchedPartition => ({
        topic: entry.topic,
        partition: entry.partition,
        error,
        highWatermark: -1n,
        logStartOffset,
        leaderEpoch,
        divergingEpoch: null,
        batches: Buffer.alloc(0),
      });
      if (leader === undefined) {
        partitions.push(refuse('NOT_LEADER', NO_EPOCH));
        continue;
      }
      // Progress of the leader's own appends and its retention first, so the answer's range is current.
      leader.progress();
      leader.followLogStart();
      const { answer, actions } = leader.state.handleFetch(
        {
          replicaId: request.replicaId,
          leaderEpoch: entry.leaderEpoch,
          fetchOffset: entry.fetchOffset,
          stableOffset: entry.stableOffset,
        },
        Date.now(),
      );
      leader.run(actions);
      if (answer.error !== null) {
        partitions.push(refuse(answer.error, answer.leaderEpoch, answer.logStartOffset));
        continue;
      }
      let read: { data: Buffer; nextOffset: bigint };
      try {
        read =
          answer.fetchOffset < answer.endOffset && budget > 0
            ? await leader.log.readForReplica(answer.fetchOffset, Math.min(entry.maxBytes, budget))
            : { data: Buffer.alloc(0), nextOffset: answer.fetchOffset };
      } catch (error) {
        // Retention removed the offset while this read waited: this partition's answer says where
        // the log starts now; the others are answered as usual.
        if (!(error instanceof MemoryStreamerError && error.codeName === 'OFFSET_OUT_OF_RANGE')) throw error;
        partitions.push(refuse('OFFSET_OUT_OF_RANGE', answer.leaderEpoch, leader.log.logStartOffset));
        continue;
      }
      budget -= read.data.length;
      partitions.push({
        topic: entry.topic,
        partition: entry.partition,
        error: null,
        highWatermark: leader.state.highWatermark,
        logStartOffset: answer.logStartOffset,
        leaderEpoch: answer.leaderEpoch,
        divergingEpoch: null,
        batches: read.data,
      });
    }
    return { partitions };
  }

  async offsetsForLeaderEpoch(request: OffsetsForLeaderEpochRequest): Promise<OffsetsForLeaderEpochResponse> {
    return {
      partitions: request.partitions.map((entry) => {
        const leader = this.leaders.get(keyOf(entry.topic, entry.partition));
        if (leader === undefined)
          return epochAnswerPartitionOf(entry.topic, entry.partition, { error: 'NOT_LEADER' });
        return epochAnswerPartitionOf(
          entry.topic,
          entry.partition,
          leader.state.handleEpochQuery({
            replicaId: request.replicaId,
            leaderEpoch: entry.leaderEpoch,
            queryEpoch: entry.queryEpoch,
          }),
        );
      }),
    };
  }
}
