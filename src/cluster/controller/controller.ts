// The controller's work while it holds its term: it reads the metadata cache and writes what the
// rules of leader-election.ts decide, in compare-and-swap batches fenced by its term. A batch that
// lost a race (a partition moved since the cache read it) is not retried blindly: the next
// reconcile, on the next watch event, decides again from fresh values.

import { randomUUID } from 'node:crypto';
import { validatePartitionCount, validateTopicName } from '../../broker/topics/topic-config.js';
import { errorOf } from '../../protocol/error-codes.js';
import {
  type ControlPlane,
  MAX_PARTITION_UPDATES_PER_WRITE,
  type PartitionUpdate,
} from '../control-plane/control-plane.js';
import type { ControllerInfo, MetadataCache } from '../control-plane/metadata-cache.js';
import type { TopicRecord } from '../control-plane/metadata-records.js';
import { decidePartition, electPreferred } from './leader-election.js';
import {
  finishedRecord,
  finishReassignment,
  type PlannedTopic,
  planReassignment,
  type ReassignmentTarget,
  type ReassignOptions,
} from './reassignment.js';
import { assignReplicas } from './replica-assignment.js';

/** A leadership change the controller wrote. */
export interface LeaderChange {
  readonly topic: string;
  readonly partition: number;
  readonly from: number;
  readonly to: number;
  readonly leaderEpoch: number;
}

export interface ReconcileResult {
  /** Partition states written. */
  readonly written: number;
  /** Batches refused because a partition had moved since it was read. */
  readonly conflicts: number;
  /** Leaders elected from outside the ISR (the topic allowed it). */
  readonly uncleanElections: number;
  /** Partitions whose reassignment finished (the new replicas caught up, the old ones left). */
  readonly reassignmentsFinished: number;
}

export interface NewTopic {
  readonly name: string;
  readonly partitions: number;
  readonly replicationFactor: number;
  readonly config: Readonly<Record<string, unknown>>;
}

/**
 * A compare-and-swap found a topic record newer than the cache the controller planned from (the
 * watch had not brought it yet, or another write came between). Not an answer for a client: the
 * service waits for its cache to catch up and plans again.
 */
export class StaleTopicError extends Error {
  readonly topics: readonly string[];
  constructor(topics: readonly string[]) {
    super(`topic ${topics.join(', ')} changed meanwhile`);
    this.name = 'StaleTopicError';
    this.topics = topics;
  }
}

/**
 * The brokers that may lead and stay in ISRs: the registered ones (etcd leases) less those the
 * controller does not count as live now (fenced for missing heartbeats, or shutting down).
 */
function liveBrokers(cache: MetadataCache, notLive: ReadonlySet<number>): Set<number> {
  return new Set(
    cache.brokers().flatMap((broker) => (notLive.has(broker.brokerId) ? [] : [broker.brokerId])),
  );
}

export class Controller {
  readonly term: ControllerInfo;
  private readonly plane: ControlPlane;
  private readonly random: () => number;

  constructor(plane: ControlPlane, term: ControllerInfo, random: () => number = Math.random) {
    this.plane = plane;
    this.term = term;
    this.random = random;
  }

  /** Assigns replicas over the live brokers and writes the topic; leaders follow at the next reconcile. */
  async createTopic(cache: MetadataCache, topic: NewTopic): Promise<TopicRecord> {
    // The name becomes an etcd key segment and a directory on every replica (internal ones allowed:
    // the controller creates the consumer offsets topic itself).
    validateTopicName(topic.name, { allowInternal: true });
    validatePartitionCount(topic.partitions);
    const live = cache.brokers().map((broker) => broker.brokerId);
    const start = Math.floor(this.random() * Math.max(live.length, 1));
    const record: TopicRecord = {
      ...topic,
      id: randomUUID(),
      assignment: assignReplicas(live, topic.partitions, topic.replicationFactor, start),
    };
    await this.plane.createTopic(this.term, record);
    return record;
  }

  /**
   * Changes a topic's configuration or grows its partitions (the new ones get replicas over the
   * live brokers; leaders follow at the next reconcile). Compare-and-swap on the topic's record.
   */
  async alterTopic(
    cache: MetadataCache,
    name: string,
    change: { partitions?: number; config?: Readonly<Record<string, unknown>> },
  ): Promise<TopicRecord> {
    const current = cache.topic(name);
    if (current === undefined) throw errorOf('UNKNOWN_TOPIC', name);
    const topic = current.value;
    // Bounded before anything is planned: a count in the billions would be assigned replica by
    // replica (the broker checks it too; this is the controller's own guard).
    const partitions =
      change.partitions === undefined ? topic.partitions : validatePartitionCount(change.partitions);
    if (partitions < topic.partitions)
      throw errorOf(
        'INVALID_PARTITION_COUNT',
        `partitions=${partitions}: can only grow (now ${topic.partitions})`,
      );
    const live = cache.brokers().map((broker) => broker.brokerId);
    const added =
      partitions > topic.partitions
        ? assignReplicas(
            live,
            partitions - topic.partitions,
            topic.replicationFactor,
            Math.floor(this.random() * Math.max(live.length, 1)),
          )
        : [];
    const record: TopicRecord = {
      ...topic,
      partitions,
      assignment: [...topic.assignment, ...added],
      config: { ...topic.config, ...(change.config ?? {}) },
    };
    if (!(await this.plane.updateTopic(this.term, record, current.modRevision)))
      throw new StaleTopicError([name]);
    return record;
  }

  async deleteTopic(name: string): Promise<void> {
    await this.plane.deleteTopic(this.term, name);
  }

  /**
   * Starts moving partitions to new replicas (reassignment.ts: refused whole when a target is
   * bad); the reconciles after it finish each partition once its new replicas caught up. Returns
   * what started and the etcd revision that started it.
   */
  async reassign(
    cache: MetadataCache,
    plan: readonly ReassignmentTarget[],
    options: ReassignOptions = {},
  ): Promise<{ planned: PlannedTopic[]; revision: bigint }> {
    const topics = new Map(cache.topics().map(({ value }) => [value.name, value]));
    const live = new Set(cache.brokers().map((broker) => broker.brokerId));
    const planned = planReassignment(topics, live, plan, options);
    const updates = planned.map(({ record }) => ({
      topic: record,
      expectedModRevision: cache.topic(record.name)!.modRevision,
    }));
    const revision = await this.plane.updateTopics(this.term, updates);
    if (revision === null) throw new StaleTopicError(planned.map(({ record }) => record.name));
    return { planned, revision };
  }

  /** Preferred-leader election over `topics` (every topic when not given); returns what moved. */
  async electPreferredLeaders(
    cache: MetadataCache,
    drained: ReadonlySet<number>,
    topics?: readonly string[],
    notLive: ReadonlySet<number> = new Set(),
  ): Promise<LeaderChange[]> {
    const live = liveBrokers(cache, notLive);
    const names = topics ?? cache.topics().map(({ value }) => value.name);
    const updates: PartitionUpdate[] = [];
    const moves: LeaderChange[] = [];
    for (const name of names) {
      const topic = cache.topic(name)?.value;
      if (topic === undefined) throw errorOf('UNKNOWN_TOPIC', name);
      for (let partition = 0; partition < topic.partitions; partition++) {
        // A partition being reassigned gets its leader when the reassignment finishes.
        if (topic.reassigning?.[String(partition)] !== undefined) continue;
        const current = cache.partition(name, partition);
        const state = electPreferred(topic.assignment[partition]!, current?.value, live, drained);
        if (state === null || current === undefined) continue;
        updates.push({ topic: name, partition, expectedModRevision: current.modRevision, state });
        moves.push({
          topic: name,
          partition,
          from: current.value.leader,
          to: state.leader,
          leaderEpoch: state.leaderEpoch,
        });
      }
    }
    const written: LeaderChange[] = [];
    for (let i = 0; i < updates.length; i += MAX_PARTITION_UPDATES_PER_WRITE)
      if (
        await this.plane.writePartitionStates(
          this.term,
          updates.slice(i, i + MAX_PARTITION_UPDATES_PER_WRITE),
        )
      )
        written.push(...moves.slice(i, i + MAX_PARTITION_UPDATES_PER_WRITE));
    return written;
  }

  /**
   * Brings every partition's leadership and ISR in line with the live brokers (passing over
   * drained ones), then finishes the reassignments whose new replicas caught up. `notLive` are
   * registered brokers not to count as live (fenced, or in a controlled shutdown): their
   * partitions get new leaders from the ISR and they leave the ISRs.
   */
  async reconcile(
    cache: MetadataCache,
    drained: ReadonlySet<number> = new Set(),
    notLive: ReadonlySet<number> = new Set(),
  ): Promise<ReconcileResult> {
    const live = liveBrokers(cache, notLive);
    const updates: PartitionUpdate[] = [];
    const unclean = new Set<PartitionUpdate>();
    for (const { value: topic } of cache.topics()) {
      const uncleanElectionAllowed = topic.config.uncleanLeaderElection === true;
      for (let partition = 0; partition < topic.partitions; partition++) {
        const current = cache.partition(topic.name, partition);
        const decision = decidePartition({
          replicas: topic.assignment[partition]!,
          state: current?.value,
          live,
          uncleanElectionAllowed,
          drained,
        });
        if (decision === null) continue;
        const update = {
          topic: topic.name,
          partition,
          expectedModRevision: current?.modRevision ?? 0n,
          state: decision.state,
        };
        updates.push(update);
        if (decision.unclean) unclean.add(update);
      }
    }
    let written = 0;
    let conflicts = 0;
    let uncleanElections = 0;
    for (let i = 0; i < updates.length; i += MAX_PARTITION_UPDATES_PER_WRITE) {
      const batch = updates.slice(i, i + MAX_PARTITION_UPDATES_PER_WRITE);
      if (await this.plane.writePartitionStates(this.term, batch)) {
        written += batch.length;
        uncleanElections += batch.filter((update) => unclean.has(update)).length;
      } else conflicts++;
    }
    // Reassignments: partitions written just now are at a new revision; the next reconcile (on the
    // watch event of that write) looks at them again.
    const touched = new Set(updates.map((update) => `${update.partition}:${update.topic}`));
    let reassignmentsFinished = 0;
    for (const { value: topic, modRevision } of cache.topics()) {
      const finishing: PartitionUpdate[] = [];
      for (const [key, target] of Object.entries(topic.reassigning ?? {})) {
        const partition = Number(key);
        if (touched.has(`${partition}:${topic.name}`)) continue;
        const current = cache.partition(topic.name, partition);
        const state = finishReassignment({
          replicas: topic.assignment[partition]!,
          target,
          state: current?.value,
          live,
          drained,
        });
        if (state !== null && current !== undefined)
          finishing.push({ topic: topic.name, partition, expectedModRevision: current.modRevision, state });
      }
      if (finishing.length === 0) continue;
      const batch = finishing.slice(0, MAX_PARTITION_UPDATES_PER_WRITE - 1);
      const record = finishedRecord(
        topic,
        batch.map((update) => update.partition),
      );
      if (await this.plane.updateTopicAndPartitions(this.term, record, modRevision, batch)) {
        written += batch.length;
        reassignmentsFinished += batch.length;
      } else conflicts++;
    }
    return { written, conflicts, uncleanElections, reassignmentsFinished };
  }
}
