// Moving a partition to a new replica set without a moment of fewer copies than before (Kafka's
// reassignment, ours). Pure, so every rule is tested with plain values; the controller writes what
// it decides, each step one compare-and-swap on the revisions it read:
//
//   start   the topic's assignment of the partition becomes old + new replicas, and the target is
//           recorded in `reassigning` (one write on the topic's record). The new replicas create
//           their copy and follow the leader; the leader takes them into the ISR once caught up.
//   finish  once every target replica is in the ISR: the assignment becomes the target, replicas
//           that leave drop out of the ISR, and leadership goes to the first target replica that
//           is live, in sync and not drained (the preferred leader), with a new leader epoch when
//           the leader changes. The topic's record and the partition's state are written in one
//           transaction, so the ISR is never outside the replicas. Replicas that left delete
//           their copy; a leader that stays re-reads its replica set.
//   replace a plan may give a partition under way a new target (`replace`): its replicas become
//           the ones now plus the new target, and it finishes on the new target. Moving back to
//           the old replicas cancels a move whose new broker cannot catch up.

import { errorOf } from '../../protocol/error-codes.js';
import { NO_LEADER, type PartitionState, type TopicRecord } from '../control-plane/metadata-records.js';

export interface ReassignmentTarget {
  readonly topic: string;
  readonly partition: number;
  readonly replicas: readonly number[];
}

export interface ReassignOptions {
  /** Targets may have another replica count (every partition of the topic, the same count). */
  readonly allowReplicationFactorChange?: boolean;
  /** A partition being reassigned takes the new target (else REASSIGNMENT_IN_PROGRESS). */
  readonly replace?: boolean;
}

export interface PlannedTopic {
  /** The topic's record with the reassignments started (write it compare-and-swap). */
  readonly record: TopicRecord;
  readonly started: ReadonlyArray<{ partition: number; from: readonly number[]; to: readonly number[] }>;
}

/**
 * Checks a plan against the topics and live brokers and returns the records that start it, one per
 * topic. Refused whole, with the first problem: UNKNOWN_TOPIC, UNKNOWN_PARTITION, UNKNOWN_BROKER,
 * DUPLICATE_REPLICA, REPLICATION_FACTOR_MISMATCH, REASSIGNMENT_IN_PROGRESS, INVALID_REQUEST.
 */
export function planReassignment(
  topics: ReadonlyMap<string, TopicRecord>,
  liveBrokers: ReadonlySet<number>,
  plan: readonly ReassignmentTarget[],
  options: ReassignOptions = {},
): PlannedTopic[] {
  const allowReplicationFactorChange = options.allowReplicationFactorChange === true;
  if (plan.length === 0) throw errorOf('INVALID_REQUEST', 'the plan names no partition');
  const byTopic = new Map<string, Map<number, readonly number[]>>();
  for (const { topic, partition, replicas } of plan) {
    const record = topics.get(topic);
    if (record === undefined) throw errorOf('UNKNOWN_TOPIC', topic);
    if (!Number.isSafeInteger(partition) || partition < 0 || partition >= record.partitions)
      throw errorOf(
        'UNKNOWN_PARTITION',
        `${topic}/${partition}: the topic has ${record.partitions} partition(s)`,
      );
    const where = `${topic}/${partition}`;
    if (replicas.length === 0) throw errorOf('INVALID_REQUEST', `${where}: no replicas given`);
    const twice = replicas.find((id, i) => replicas.indexOf(id) !== i);
    if (twice !== undefined) throw errorOf('DUPLICATE_REPLICA', `${where}: broker ${twice} is named twice`);
    const unknown = replicas.find((id) => !liveBrokers.has(id));
    if (unknown !== undefined)
      throw errorOf(
        'UNKNOWN_BROKER',
        `${where}: broker ${unknown}; the live brokers are ${[...liveBrokers].sort((a, b) => a - b).join(', ') || 'none'}`,
      );
    if (replicas.length !== record.replicationFactor && !allowReplicationFactorChange)
      throw errorOf(
        'REPLICATION_FACTOR_MISMATCH',
        `${where}: ${replicas.length} replica(s) for replication factor ${record.replicationFactor} (allow a replication factor change to change it)`,
      );
    if (record.reassigning?.[String(partition)] !== undefined && options.replace !== true)
      throw errorOf(
        'REASSIGNMENT_IN_PROGRESS',
        `${where}: moving to ${record.reassigning[String(partition)]!.join(',')} already`,
      );
    const targets = byTopic.get(topic) ?? new Map<number, readonly number[]>();
    if (targets.has(partition)) throw errorOf('INVALID_REQUEST', `${where} is named twice in the plan`);
    targets.set(partition, replicas);
    byTopic.set(topic, targets);
  }
  const planned: PlannedTopic[] = [];
  for (const [name, targets] of byTopic) {
    const record = topics.get(name)!;
    let replicationFactor = record.replicationFactor;
    const counts = new Set([...targets.values()].map((replicas) => replicas.length));
    if (!counts.has(record.replicationFactor) || counts.size > 1) {
      // Only reached with allowReplicationFactorChange: the whole topic changes its factor at once.
      if (counts.size > 1 || targets.size !== record.partitions)
        throw errorOf(
          'REPLICATION_FACTOR_MISMATCH',
          `${name}: a new replication factor needs every one of its ${record.partitions} partition(s) in the plan, each with the same number of replicas`,
        );
      if (Object.keys(record.reassigning ?? {}).length > 0)
        throw errorOf('REASSIGNMENT_IN_PROGRESS', `${name}: partitions of it are being reassigned`);
      replicationFactor = [...counts][0]!;
    }
    const assignment = record.assignment.map((replicas) => [...replicas]);
    const reassigning: Record<string, readonly number[]> = { ...(record.reassigning ?? {}) };
    const started: Array<{ partition: number; from: readonly number[]; to: readonly number[] }> = [];
    for (const [partition, target] of [...targets].sort(([a], [b]) => a - b)) {
      // Replacing a reassignment under way: every replica that holds a copy now stays until the
      // new target caught up (`from` is then the replicas now, the old and the previous target).
      const from = record.assignment[partition]!;
      assignment[partition] = [...from, ...target.filter((id) => !from.includes(id))];
      reassigning[String(partition)] = [...target];
      started.push({ partition, from: [...from], to: [...target] });
    }
    planned.push({ record: { ...record, replicationFactor, assignment, reassigning }, started });
  }
  return planned;
}

export interface FinishInput {
  /** The partition's replicas now (old + new while the reassignment runs). */
  readonly replicas: readonly number[];
  readonly target: readonly number[];
  readonly state: PartitionState | undefined;
  readonly live: ReadonlySet<number>;
  readonly drained: ReadonlySet<number>;
}

/**
 * The finishing step of one partition's reassignment, or null while it must wait: no leader yet,
 * or a target replica not in the ISR (still catching up).
 */
export function finishReassignment(input: FinishInput): PartitionState | null {
  const { target, state, live, drained } = input;
  if (state === undefined || state.leader === NO_LEADER) return null;
  if (!target.every((id) => state.isr.includes(id))) return null;
  const isr = target.filter((id) => state.isr.includes(id));
  const eligible = isr.filter((id) => live.has(id));
  const leader =
    eligible.find((id) => !drained.has(id)) ??
    (target.includes(state.leader) && live.has(state.leader) ? state.leader : eligible[0]);
  if (leader === undefined) return null;
  return {
    leader,
    leaderEpoch: leader === state.leader ? state.leaderEpoch : state.leaderEpoch + 1,
    isr,
  };
}

/** The record once `partitions` finished: their assignment is the target, their entry gone. */
export function finishedRecord(record: TopicRecord, partitions: readonly number[]): TopicRecord {
  const assignment = record.assignment.map((replicas) => [...replicas]);
  const reassigning: Record<string, readonly number[]> = { ...(record.reassigning ?? {}) };
  for (const partition of partitions) {
    assignment[partition] = [...reassigning[String(partition)]!];
    delete reassigning[String(partition)];
  }
  const { reassigning: _previous, ...rest } = record;
  return Object.keys(reassigning).length === 0
    ? { ...rest, assignment }
    : { ...rest, assignment, reassigning };
}
