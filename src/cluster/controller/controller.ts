// The controller's work while it holds its term: it reads the metadata cache and writes what the
// rules of leader-election.ts decide, in compare-and-swap batches fenced by its term. A batch that
// lost a race (a partition moved since the cache read it) is not retried blindly: the next
// reconcile, on the next watch event, decides again from fresh values.

import { errorOf } from '../../protocol/error-codes.js';
import {
  type ControlPlane,
  MAX_PARTITION_UPDATES_PER_WRITE,
  type PartitionUpdate,
} from '../control-plane/control-plane.js';
import type { ControllerInfo, MetadataCache } from '../control-plane/metadata-cache.js';
import type { TopicRecord } from '../control-plane/metadata-records.js';
import { decidePartition } from './leader-election.js';
import { assignReplicas } from './replica-assignment.js';

export interface ReconcileResult {
  /** Partition states written. */
  readonly written: number;
  /** Batches refused because a partition had moved since it was read. */
  readonly conflicts: number;
  /** Leaders elected from outside the ISR (the topic allowed it). */
  readonly uncleanElections: number;
}

export interface NewTopic {
  readonly name: string;
  readonly partitions: number;
  readonly replicationFactor: number;
  readonly config: Readonly<Record<string, unknown>>;
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
    const live = cache.brokers().map((broker) => broker.brokerId);
    const start = Math.floor(this.random() * Math.max(live.length, 1));
    const record: TopicRecord = {
      ...topic,
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
    const partitions = change.partitions ?? topic.partitions;
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
      throw errorOf('INVALID_REQUEST', `topic ${name} changed meanwhile; try again`);
    return record;
  }

  async deleteTopic(name: string): Promise<void> {
    await this.plane.deleteTopic(this.term, name);
  }

  /** Brings every partition's leadership and ISR in line with the live brokers. */
  async reconcile(cache: MetadataCache): Promise<ReconcileResult> {
    const live = new Set(cache.brokers().map((broker) => broker.brokerId));
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
    return { written, conflicts, uncleanElections };
  }
}
