// What an application chooses for a consumer (the public option types) and the settings every part
// of a consumer derives from them.

import type { Tracer } from '@opentelemetry/api';
import type { MemoryStreamerError } from '../../common/errors.js';
import type { AssignmentStrategy } from '../../protocol/commands/data-types.js';
import type { Bytes, Message } from '../message.js';
import type { ConsumerSecurity } from '../message-security.js';

export type StartPosition = 'earliest' | 'latest' | bigint | { timestamp: number };

export interface ConsumerOptions {
  /** Consume every partition of these topics (or only `partitions`). */
  topics?: string[];
  partitions?: number[];
  /** Or consume one stream: the messages of one key, with their stream sequences. */
  stream?: { topic: string; key: string | Bytes };
  /**
   * Share the topics' partitions with the other consumers of this group; start each partition at
   * the group's committed offset (or `from` when it has none).
   */
  group?: string;
  /**
   * How the broker spreads partitions over the group: `range` (default; every rebalance stops all
   * members) or `cooperative-sticky` (partitions stay where they are when possible, and members
   * keep consuming the partitions that do not move).
   */
  assignment?: AssignmentStrategy;
  /** A group member that does not heartbeat for this long is dropped (10 s). */
  sessionTimeoutMs?: number;
  /** Commit delivered offsets automatically (default true), every `autoCommitIntervalMs` (5 s) and on close. */
  autoCommit?: boolean;
  autoCommitIntervalMs?: number;
  /** Where to start: earliest (default), latest, an offset (a stream sequence for streams), or a time. */
  from?: StartPosition | number;
  /** Bytes each partition may have in flight towards this consumer. */
  creditBytes?: number;
  timeoutMs?: number;
  /** Largest size a compressed batch may inflate to. */
  maxDecompressedBytes?: number;
  /**
   * Told of a stored batch whose records cannot be decoded (its CRC is right, its records are not:
   * the broker refuses such batches, but a log may hold one written before it did). The consumer
   * skips the rest of that batch and goes on; without this callback it emits a process warning
   * naming the topic, partition and offsets skipped, so nothing is skipped silently.
   */
  onUndecodableBatch?: (event: UndecodableBatch) => void;
  /** OpenTelemetry tracer: each delivered message that carries a trace context gets a CONSUMER span. */
  tracer?: Tracer;
  /**
   * Check the messages' signatures and/or decrypt their values (what a producer's `security`
   * sealed). A message that fails is not delivered: it is skipped and reported.
   */
  security?: ConsumerSecurity;
  /** Told of a message `security` refused (without it, a process warning names it). */
  onRefusedMessage?: (event: RefusedMessage) => void;
}

export interface RefusedMessage {
  /** The message as it arrived (still sealed). */
  message: Message;
  /** MESSAGE_SIGNATURE_INVALID, MESSAGE_UNSIGNED, MESSAGE_DECRYPTION_FAILED or UNKNOWN_MESSAGE_KEY. */
  error: MemoryStreamerError;
}

export interface UndecodableBatch {
  topic: string;
  partition: number;
  /** The batch's first and last offsets: nothing at or below `lastOffset` is delivered from it. */
  firstOffset: bigint;
  lastOffset: bigint;
  /** Records of the batch decoded before the undecodable one. */
  delivered: number;
  error: MemoryStreamerError;
}

export const DEFAULT_CREDIT_BYTES = 4 * 1024 * 1024;
export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024;
export const DEFAULT_SESSION_TIMEOUT_MS = 10_000;
export const DEFAULT_AUTO_COMMIT_INTERVAL_MS = 5000;
