// The records the control plane keeps in etcd, and their JSON decoders. Every value read from etcd
// is checked field by field: a record another version (or a hand edit) got wrong becomes
// INVALID_CLUSTER_METADATA naming the key and the field, never a broker acting on a half-read value.

import { errorOf } from '../../protocol/error-codes.js';

/** A live broker, as it registered itself. */
export interface BrokerRegistration {
  readonly brokerId: number;
  /** host:port clients and other brokers use to reach it. */
  readonly advertise: string;
  readonly startedAtMs: number;
}

export interface TopicRecord {
  readonly name: string;
  /**
   * The topic's id, a UUID the controller draws when it creates the topic and that its later
   * changes keep. A topic deleted and created again under its name gets a new one, so a broker
   * tells its copy of the old topic from the new (a delete and a create can both arrive before it
   * looks). Every replica's local copy carries it as its id. Absent in records written without it.
   */
  readonly id?: string;
  readonly partitions: number;
  readonly replicationFactor: number;
  /** Replica broker ids per partition, the preferred leader first. Written with the topic, atomically. */
  readonly assignment: readonly (readonly number[])[];
  /** Topic settings (durability, retention, …) as the broker's topic configuration names them. */
  readonly config: Readonly<Record<string, unknown>>;
  /**
   * Partitions being reassigned (partition index → target replicas, the preferred leader first).
   * While a partition is here its assignment is the old replicas plus the targets, so its replica
   * count may differ from the replication factor; the controller finishes it (controller/reassignment.ts).
   */
  readonly reassigning?: Readonly<Record<string, readonly number[]>>;
}

/**
 * One partition's leadership, written only by the controller. Its replicas are the topic's
 * assignment; a partition without a state key has not had a leader elected yet.
 */
export interface PartitionState {
  /** Broker id of the leader; -1 while the partition has none. */
  readonly leader: number;
  /** Bumped by the controller at every leader change; batches carry it, followers fence on it. */
  readonly leaderEpoch: number;
  /** In-sync replicas; the leader is always one of them. */
  readonly isr: readonly number[];
}

export const NO_LEADER = -1;

type Json = Record<string, unknown>;

function invalid(key: string, detail: string): never {
  throw errorOf('INVALID_CLUSTER_METADATA', `${key}: ${detail}`);
}

function parseObject(key: string, bytes: Buffer | string): Json {
  let value: unknown;
  try {
    value = JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8'));
  } catch {
    invalid(key, 'not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid(key, 'not a JSON object');
  return value as Json;
}

function integer(key: string, record: Json, field: string, min: number): number {
  const value = record[field];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min)
    invalid(key, `${field} must be an integer ≥ ${min}`);
  return value;
}

function brokerIds(key: string, value: unknown, field: string): number[] {
  if (!Array.isArray(value)) invalid(key, `${field} must be an array of broker ids`);
  const ids = value.map((id) => {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0)
      invalid(key, `${field} holds a bad broker id`);
    return id;
  });
  if (new Set(ids).size !== ids.length) invalid(key, `${field} names a broker twice`);
  return ids;
}

export function decodeBrokerRegistration(key: string, bytes: Buffer | string): BrokerRegistration {
  const record = parseObject(key, bytes);
  const advertise = record.advertise;
  if (typeof advertise !== 'string' || !/^.+:\d{1,5}$/.test(advertise))
    invalid(key, 'advertise must be host:port');
  return {
    brokerId: integer(key, record, 'brokerId', 0),
    advertise,
    startedAtMs: integer(key, record, 'startedAtMs', 0),
  };
}

export function decodeTopicRecord(key: string, bytes: Buffer | string): TopicRecord {
  const record = parseObject(key, bytes);
  const name = record.name;
  if (typeof name !== 'string' || name.length === 0) invalid(key, 'name must be a non-empty string');
  const config = record.config;
  if (typeof config !== 'object' || config === null || Array.isArray(config))
    invalid(key, 'config must be an object');
  const partitions = integer(key, record, 'partitions', 1);
  const replicationFactor = integer(key, record, 'replicationFactor', 1);
  const assignment = record.assignment;
  if (!Array.isArray(assignment) || assignment.length !== partitions)
    invalid(key, `assignment must list the replicas of each of the ${partitions} partitions`);
  const reassigning = decodeReassigning(key, record.reassigning, partitions);
  const id = record.id;
  if (id !== undefined && (typeof id !== 'string' || id.length === 0))
    invalid(key, 'id must be a non-empty string');
  const replicas = assignment.map((_, partition) => {
    const ids = brokerIds(key, assignment[partition], `assignment[${partition}]`);
    if (ids.length !== replicationFactor && reassigning?.[partition] === undefined)
      invalid(
        key,
        `partition ${partition} has ${ids.length} replicas, the replication factor is ${replicationFactor}`,
      );
    return ids;
  });
  return {
    name,
    ...(id !== undefined ? { id } : {}),
    partitions,
    replicationFactor,
    assignment: replicas,
    config: config as Record<string, unknown>,
    ...(reassigning !== undefined ? { reassigning } : {}),
  };
}

function decodeReassigning(
  key: string,
  value: unknown,
  partitions: number,
): Record<string, number[]> | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    invalid(key, 'reassigning must be an object');
  const targets: Record<string, number[]> = {};
  for (const [partition, target] of Object.entries(value)) {
    const index = Number(partition);
    if (!Number.isSafeInteger(index) || index < 0 || index >= partitions || String(index) !== partition)
      invalid(key, `reassigning names partition ${partition}, not one of the ${partitions}`);
    const ids = brokerIds(key, target, `reassigning[${partition}]`);
    if (ids.length === 0) invalid(key, `reassigning[${partition}] has no replicas`);
    targets[partition] = ids;
  }
  return targets;
}

export function decodePartitionState(key: string, bytes: Buffer | string): PartitionState {
  const record = parseObject(key, bytes);
  const isr = brokerIds(key, record.isr, 'isr');
  const leader = integer(key, record, 'leader', NO_LEADER);
  if (leader !== NO_LEADER && !isr.includes(leader)) invalid(key, `leader ${leader} is not in the isr`);
  return { leader, leaderEpoch: integer(key, record, 'leaderEpoch', 0), isr };
}

/** The partition state is consistent with the topic's assignment: every ISR member is a replica. */
export function checkPartitionState(key: string, state: PartitionState, replicas: readonly number[]): void {
  for (const id of state.isr) if (!replicas.includes(id)) invalid(key, `isr member ${id} is not a replica`);
}

export function encodeRecord(record: BrokerRegistration | TopicRecord | PartitionState): string {
  return JSON.stringify(record);
}
