// Topic names and per-topic configuration: validation with errors that name the key, the value and
// what is allowed. Knows nothing of files; topic-registry.ts persists what this file validates.

import { errorOf } from '../../protocol/error-codes.js';

/**
 * Cleanup policies: `delete` removes whole old segments by retention time and size; `compact`
 * (docs/storage.md, "Compaction") also keeps only the latest record per key in sealed segments
 * and drops tombstones after the broker's compaction.delete_retention. Retention settings apply
 * to both.
 */
export const CLEANUP_POLICIES = ['delete', 'compact'] as const;
export type CleanupPolicy = 'delete' | 'compact';
export const DURABILITY_POLICIES = ['always', 'interval', 'never'] as const;
export type DurabilityPolicy = (typeof DURABILITY_POLICIES)[number];
/**
 * Where a topic's partitions keep their log: `disk` (files under the data directory) or `memory`
 * (docs/storage.md, "Memory topics": a bounded log in process memory, lost on restart). Fixed at
 * creation.
 */
export const TOPIC_STORAGES = ['disk', 'memory'] as const;
export type TopicStorage = (typeof TOPIC_STORAGES)[number];
/** A memory topic's retentionBytes when it names none: each partition holds about this much. */
export const DEFAULT_MEMORY_RETENTION_BYTES = 64 * 1024 * 1024;
/** A memory topic's segmentBytes when it names none: an eighth of its retention, at most this. */
export const DEFAULT_MEMORY_SEGMENT_BYTES = 8 * 1024 * 1024;
const MIN_SEGMENT_BYTES = 4096;

export interface TopicConfig {
  /** Delete whole segments older than this; -1 keeps data forever. */
  retentionMs: number;
  /** Delete the oldest segments while a partition is larger than this; -1 means no limit. */
  retentionBytes: number;
  cleanup: CleanupPolicy;
  durability: DurabilityPolicy;
  /** Period of the background fdatasync for durability `interval`. */
  flushIntervalMs: number;
  /** Largest record batch a producer may send to this topic, in bytes. */
  maxMessageBytes: number;
  /** The active segment rolls when it reaches this size. */
  segmentBytes: number;
  /** The active segment rolls when it is older than this. */
  segmentMs: number;
  /**
   * In-sync replicas (the leader included) an `acks: 'all'` produce needs; at most the topic's
   * replication factor (checkReplication).
   */
  minInsyncReplicas: number;
  /**
   * In a cluster: when no in-sync replica is alive, a live replica outside the ISR may lead (the
   * partition comes back, and acknowledged records it lacks are lost). Off by default.
   */
  uncleanLeaderElection: boolean;
}

export interface TopicDescription {
  name: string;
  /** Random id given at creation, so that a topic deleted and created again is a different topic. */
  id: string;
  /**
   * True when `id` is the cluster's (the controller's, for a cluster member's copy), not drawn by
   * this broker: only then does a differing id in the cluster's record mean the topic was deleted
   * and created again (a copy made before topics had cluster ids has an id of its own).
   */
  idFromCluster?: true;
  partitions: number;
  /** Copies of each partition; fixed at creation (topic.json written before it existed holds 1). */
  replicationFactor: number;
  createdAt: number;
  /** Fixed at creation; a topic.json without it describes a disk topic. */
  storage: TopicStorage;
  config: TopicConfig;
}

export const DEFAULT_TOPIC_CONFIG: TopicConfig = {
  retentionMs: -1,
  retentionBytes: -1,
  cleanup: 'delete',
  durability: 'interval',
  flushIntervalMs: 100,
  maxMessageBytes: 1024 * 1024,
  segmentBytes: 256 * 1024 * 1024,
  segmentMs: 7 * 24 * 3600 * 1000,
  minInsyncReplicas: 1,
  uncleanLeaderElection: false,
};

export const MAX_PARTITIONS = 10_000;
/** Largest replication factor (and minInsyncReplicas) a topic may ask for. */
export const MAX_REPLICATION_FACTOR = 100;
export const MAX_TOPIC_NAME_LENGTH = 200;
const TOPIC_NAME_PATTERN = /^[A-Za-z0-9._-]+$/;
/** Names starting with this prefix belong to the broker (consumer offsets, producer state). */
export const INTERNAL_TOPIC_PREFIX = '__';

/** Whether `name` could name a topic, internal ones included (what validateTopicName accepts). */
export function isValidTopicName(name: string): boolean {
  return (
    name.length > 0 &&
    name.length <= MAX_TOPIC_NAME_LENGTH &&
    TOPIC_NAME_PATTERN.test(name) &&
    name !== '.' &&
    name !== '..'
  );
}

/**
 * A topic name becomes a directory name, so it is checked strictly: only [A-Za-z0-9._-], 1 to 200
 * characters, never `.` or `..`. That rules out `/`, `\`, NUL and control characters, so no name
 * can reach outside the data directory.
 */
export function validateTopicName(name: unknown, options: { allowInternal?: boolean } = {}): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw errorOf('INVALID_TOPIC_NAME', 'a topic name is a non-empty string');
  }
  if (name.length > MAX_TOPIC_NAME_LENGTH) {
    throw errorOf(
      'INVALID_TOPIC_NAME',
      `"${name.slice(0, 40)}…" is ${name.length} characters; at most ${MAX_TOPIC_NAME_LENGTH}`,
    );
  }
  if (!TOPIC_NAME_PATTERN.test(name) || name === '.' || name === '..') {
    throw errorOf(
      'INVALID_TOPIC_NAME',
      `${JSON.stringify(name)}: allowed are letters, digits, ".", "_" and "-", and not "." or ".."`,
    );
  }
  if (!options.allowInternal && name.startsWith(INTERNAL_TOPIC_PREFIX)) {
    throw errorOf(
      'INVALID_TOPIC_NAME',
      `${JSON.stringify(name)}: names starting with "__" are reserved for the broker`,
    );
  }
  return name;
}

export function validatePartitionCount(partitions: unknown): number {
  if (
    typeof partitions !== 'number' ||
    !Number.isInteger(partitions) ||
    partitions < 1 ||
    partitions > MAX_PARTITIONS
  ) {
    throw errorOf(
      'INVALID_PARTITION_COUNT',
      `partitions=${String(partitions)}: an integer from 1 to ${MAX_PARTITIONS}`,
    );
  }
  return partitions;
}

export function validateReplicationFactor(replicationFactor: unknown): number {
  return integerInRange('replicationFactor', replicationFactor, 1, MAX_REPLICATION_FACTOR);
}

/**
 * A topic's minInsyncReplicas cannot exceed its replication factor: an `acks: 'all'` produce could
 * never be acknowledged (INVALID_CONFIG naming both).
 */
export function checkReplication(replicationFactor: number, config: TopicConfig): void {
  if (config.minInsyncReplicas > replicationFactor)
    throw errorOf(
      'INVALID_CONFIG',
      `minInsyncReplicas=${config.minInsyncReplicas} is more than replicationFactor=${replicationFactor}: ` +
        `an acks 'all' produce could never be acknowledged`,
    );
}

export function validateStorage(storage: unknown): TopicStorage {
  return oneOf('storage', storage, TOPIC_STORAGES);
}

/**
 * The base a memory topic's settings resolve over: the broker's defaults with a retention size
 * (DEFAULT_MEMORY_RETENTION_BYTES) and durability `never` (nothing goes to disk). Its segmentBytes,
 * unless given, is an eighth of its retention, between 4 KiB and DEFAULT_MEMORY_SEGMENT_BYTES, so
 * that retention, which removes whole sealed segments, keeps the partition near its bound.
 */
export function memoryTopicBase(
  defaults: TopicConfig,
  input: Partial<Record<keyof TopicConfig, unknown>> | undefined,
): TopicConfig {
  const retentionBytes =
    typeof input?.retentionBytes === 'number' && input.retentionBytes > 0
      ? input.retentionBytes
      : DEFAULT_MEMORY_RETENTION_BYTES;
  const segmentBytes = Math.min(
    DEFAULT_MEMORY_SEGMENT_BYTES,
    Math.max(MIN_SEGMENT_BYTES, Math.floor(retentionBytes / 8)),
  );
  return { ...defaults, retentionBytes, segmentBytes, durability: 'never' };
}

/**
 * A memory topic's settings must bound its memory: a retention size (each partition holds at most
 * about retentionBytes + segmentBytes, since retention removes whole sealed segments, checked at
 * every segment roll) of at least one segment, and no durability but `never`.
 */
export function checkStorage(storage: TopicStorage, config: TopicConfig): void {
  if (storage !== 'memory') return;
  if (config.retentionBytes < 1)
    throw errorOf(
      'MEMORY_TOPIC_UNBOUNDED',
      `retentionBytes=${config.retentionBytes}: give a size in bytes (default ${DEFAULT_MEMORY_RETENTION_BYTES})`,
    );
  if (config.segmentBytes > config.retentionBytes)
    throw errorOf(
      'MEMORY_TOPIC_UNBOUNDED',
      `segmentBytes=${config.segmentBytes} is more than retentionBytes=${config.retentionBytes}: ` +
        'the partition would hold a whole segment past its retention',
    );
  if (config.durability !== 'never')
    throw errorOf('MEMORY_TOPIC_NO_DURABILITY', `durability=${config.durability}`);
}

function integerInRange(
  key: string,
  value: unknown,
  min: number,
  max: number,
  allowMinusOne = false,
): number {
  if (
    typeof value === 'number' &&
    Number.isInteger(value) &&
    ((value >= min && value <= max) || (allowMinusOne && value === -1))
  ) {
    return value;
  }
  const allowed = `an integer from ${min} to ${max}${allowMinusOne ? ', or -1 for no limit' : ''}`;
  throw errorOf('INVALID_CONFIG', `${key}=${JSON.stringify(value)}: ${allowed}`);
}

function oneOf<T extends string>(key: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  throw errorOf('INVALID_CONFIG', `${key}=${JSON.stringify(value)}: one of ${allowed.join(', ')}`);
}

const DAY_MS = 24 * 3600 * 1000;

/** Validates a partial configuration (create or alter) and merges it over `base`. Unknown keys are errors. */
export function resolveTopicConfig(
  input: Partial<Record<keyof TopicConfig, unknown>> | undefined,
  base: TopicConfig,
): TopicConfig {
  const result: TopicConfig = { ...base };
  if (input === undefined) return result;
  for (const [key, value] of Object.entries(input)) {
    if (value === undefined) continue;
    switch (key) {
      case 'retentionMs':
        result.retentionMs = integerInRange(key, value, 1, 100_000 * DAY_MS, true);
        break;
      case 'retentionBytes':
        result.retentionBytes = integerInRange(key, value, 1, Number.MAX_SAFE_INTEGER, true);
        break;
      case 'cleanup':
        result.cleanup = oneOf(key, value, CLEANUP_POLICIES);
        break;
      case 'durability':
        result.durability = oneOf(key, value, DURABILITY_POLICIES);
        break;
      case 'flushIntervalMs':
        result.flushIntervalMs = integerInRange(key, value, 1, 3_600_000);
        break;
      case 'maxMessageBytes':
        result.maxMessageBytes = integerInRange(key, value, 64, 256 * 1024 * 1024);
        break;
      case 'segmentBytes':
        result.segmentBytes = integerInRange(key, value, 4096, 2 ** 31 - 1);
        break;
      case 'segmentMs':
        result.segmentMs = integerInRange(key, value, 1000, 100_000 * DAY_MS);
        break;
      case 'minInsyncReplicas':
        result.minInsyncReplicas = integerInRange(key, value, 1, MAX_REPLICATION_FACTOR);
        break;
      case 'uncleanLeaderElection':
        if (typeof value !== 'boolean')
          throw errorOf('INVALID_CONFIG', `${key}=${JSON.stringify(value)}: true or false`);
        result.uncleanLeaderElection = value;
        break;
      default:
        throw errorOf('INVALID_CONFIG', `unknown topic configuration key ${JSON.stringify(key)}`);
    }
  }
  return result;
}
