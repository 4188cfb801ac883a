// One partition as the broker serves it: the storage log plus what the broker derives from its
// batches (derived-state.ts: producer state, stream versions), long-poll waiters, stream reads
// (stream-reader.ts) and push subscriptions (push-subscription.ts). This module is the produce
// path: per-batch work only (validate, key scan, checks, append, the derived-state hook); no
// sockets here. A partition of a memory topic (docs/storage.md, "Memory topics") runs the same log
// on a file system in process memory (storage/memory-storage-fs.ts): nothing under its directory
// exists on disk, its producer state is not snapshotted, and retention runs at every segment roll
// so that the partition stays within retentionBytes + segmentBytes between the broker's periodic
// retention runs.

import type { ProduceResponse, ReadStreamResponse } from '../../protocol/commands/data-types.js';
import { errorOf } from '../../protocol/error-codes.js';
import { validateRecordBatch } from '../../protocol/record-batch.js';
import { createMemoryStorageFs } from '../../storage/memory-storage-fs.js';
import { PartitionLog, type PartitionLogConfig, type StorageObserver } from '../../storage/partition-log.js';
import type { StorageFs } from '../../storage/storage-fs.js';
import type { StreamIndex } from '../../storage/stream-index.js';
import type { ProducerRecovery } from '../producers/producer-recovery.js';
import type { ProducerStateTable, WrittenBatch } from '../producers/producer-state.js';
import { DEFAULT_MEMORY_SEGMENT_BYTES } from '../topics/topic-config.js';
import { DataWaiters } from './data-waiters.js';
import { DerivedState } from './derived-state.js';
import { type PushSink, PushSubscription } from './push-subscription.js';
import { StreamKeys } from './stream-keys.js';
import { StreamReader } from './stream-reader.js';

export type { ProducerRecovery } from '../producers/producer-recovery.js';
export { type PushSink, PushSubscription } from './push-subscription.js';

export interface PartitionLimits {
  maxBatchBytes: number;
  maxDecompressedBytes: number;
  /** Every record needs a key (compacted topics: compaction keeps the latest record per key). */
  keysRequired?: boolean;
}

export type PartitionStorage = 'disk' | 'memory';

export interface ProduceInput {
  batch: Buffer;
  acks: 0 | 1;
  expectedVersion?: number | undefined;
  /** In a cluster: the epoch of this broker's leadership, stamped into the batch. */
  leaderEpoch?: number | undefined;
}

/**
 * A memory log's write is a copy in process memory whatever its size, so it is always made in line,
 * and the slow-write guard (which protects the event loop from a slow disk) never sends it to the
 * thread pool: there a descheduled thread would only add a promise hop to the same copy.
 */
const MEMORY_LOG_WRITES = {
  inlineWriteMaxBytes: Number.MAX_SAFE_INTEGER,
  inlineWriteSlowStreak: Number.MAX_SAFE_INTEGER,
  // Retention is a memory topic's memory bound: a ceiling, not a floor (PartitionLogConfig).
  retentionBytesAs: 'ceiling',
} as const;

export class Partition {
  readonly topic: string;
  readonly index: number;
  readonly log: PartitionLog;
  /** Producer state and stream versions, changed only through its hook (derived-state.ts). */
  readonly derived: DerivedState;
  readonly streams: StreamIndex;
  private limits: PartitionLimits;
  private readonly waiters = new DataWaiters();
  private readonly streamReader: StreamReader;
  private readonly subscriptions = new Set<PushSubscription>();

  /** Where the log is kept: on disk, or in this process's memory (a memory topic). */
  readonly storage: PartitionStorage;

  private constructor(
    topic: string,
    index: number,
    log: PartitionLog,
    limits: PartitionLimits,
    storage: PartitionStorage,
  ) {
    this.topic = topic;
    this.index = index;
    this.log = log;
    this.storage = storage;
    this.streams = log.streams!;
    this.limits = limits;
    const inMemory = storage === 'memory';
    this.derived = new DerivedState(log, this.streams, () => this.limits, !inMemory);
    this.streamReader = new StreamReader(index, log, this.streams, this.waiters, () => this.limits);
    log.onVisible((batches, highWatermark) => this.onVisible(batches, highWatermark));
    log.onRoll(
      inMemory
        ? // Memory is the bound: the sealed segments past retention go at once, not at the next
          // periodic run (a fast producer would hold minutes of messages until then).
          // The producers retention left without a batch go with it.
          () =>
            void log.applyRetention().then(
              () => this.derived.logStartMoved(),
              () => undefined,
            )
        : // The broker's periodic retention moves the log start without telling the partition: the
          // producers it left without a batch go at the next roll, before the snapshot.
          () => {
            this.derived.logStartMoved();
            return this.derived.snapshotInBackground();
          },
    );
    log.onSegmentReplaced((event) =>
      event.phase === 'replacing' ? this.derived.invalidateSnapshotsFrom(event.baseOffset) : undefined,
    );
  }

  static async open(options: {
    topic: string;
    index: number;
    dir: string;
    config: Partial<PartitionLogConfig>;
    limits: PartitionLimits;
    observer?: StorageObserver;
    /** A cluster member's replica: the log keeps its high watermark across restarts. */
    keepHighWatermark?: boolean;
    /** 'memory': the log lives in process memory under `dir` as a name, and starts empty. */
    storage?: PartitionStorage;
    /** The file system of a disk log (tests: one that holds or fails writes); node's by default. */
    fs?: StorageFs;
  }): Promise<Partition> {
    const storage = options.storage ?? 'disk';
    const log = await PartitionLog.open({
      dir: options.dir,
      config: storage === 'memory' ? { ...options.config, ...MEMORY_LOG_WRITES } : options.config,
      // A memory log keeps one segment's worth of the chunks its dropped segments held, for the
      // next segment to fill (memory-storage-fs.ts): the bound of a memory partition has room
      // for one segment beside its retention.
      ...(storage === 'memory'
        ? {
            fs: createMemoryStorageFs({
              recycleLimitBytes: options.config.segmentBytes ?? DEFAULT_MEMORY_SEGMENT_BYTES,
            }),
          }
        : options.fs !== undefined
          ? { fs: options.fs }
          : {}),
      streams: { maxDecompressedBytes: options.limits.maxDecompressedBytes },
      ...(options.observer !== undefined ? { observer: options.observer } : {}),
      ...(options.keepHighWatermark === true ? { keepHighWatermark: true } : {}),
    });
    const partition = new Partition(options.topic, options.index, log, options.limits, storage);
    try {
      await partition.derived.recover();
    } catch (error) {
      // No file of a partition that failed to open stays open behind it (e.g. a corrupt batch).
      await log.close().catch(() => undefined);
      throw error;
    }
    return partition;
  }

  setLimits(limits: PartitionLimits): void {
    this.limits = limits;
  }

  /** The producer table produce checks against (every appended batch). */
  get producers(): ProducerStateTable {
    return this.derived.producers;
  }

  /** How the last open rebuilt the producer table (tests and the partition-open benchmark read it). */
  get producerRecovery(): ProducerRecovery {
    return this.derived.producerRecovery;
  }

  /** Snapshot writes or prunes that failed (they only cost replay time at the next open). */
  get snapshotFailures(): number {
    return this.derived.snapshotFailures;
  }

  /** Settles when the snapshot writes started so far are done (tests wait for it). */
  snapshotsWritten(): Promise<void> {
    return this.derived.snapshotsWritten();
  }

  /**
   * Appends one producer batch: validation, idempotence, optimistic stream concurrency, offsets
   * and stream sequences, then durability per acks. Everything up to the storage append happens
   * synchronously, so concurrent produces to one partition cannot interleave their checks.
   */
  produce(input: ProduceInput): Promise<ProduceResponse> {
    try {
      return this.produceNow(input);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** The keys of the batch being produced (reset per produce; used only before produceNow returns). */
  private readonly scanned = new StreamKeys();

  /**
   * produce's body: no async function, so a lone message's produce costs one promise (the write's,
   * chained once) rather than an async frame, a `catch` promise and an `await`. Throws what it
   * refuses before appending; produce turns that into a rejection.
   */
  private produceNow(input: ProduceInput): Promise<ProduceResponse> {
    // One pass: every record is validated and its key taken (a compressed batch is inflated once).
    const scanned = this.scanned;
    scanned.reset();
    const header = validateRecordBatch(input.batch, this.limits, scanned.visit);
    const producers = this.derived.producers;
    const check = producers.check(header);
    if (check.kind === 'duplicate') return this.duplicate(check.batch, input.acks);
    const keys = scanned.keys;
    if (this.limits.keysRequired === true && scanned.hasKeyless) {
      throw errorOf(
        'INVALID_REQUEST',
        `topic ${this.topic} is compacted (cleanup=compact): every message needs a key`,
      );
    }
    if (input.expectedVersion !== undefined) {
      const key = keys[0];
      if (key === null || key === undefined || keys.some((k) => k !== key)) {
        throw errorOf(
          'INVALID_REQUEST',
          'an expected-version append needs a batch whose records all have the same key',
        );
      }
      const current = this.streams.version(key);
      if (current !== input.expectedVersion) {
        throw errorOf(
          'STREAM_VERSION_CONFLICT',
          `stream is at version ${current}, expected ${input.expectedVersion}`,
        );
      }
    }
    const ticket = this.log.append(input.batch, input.leaderEpoch);
    // Without any key the reply carries no sequences at all (clients read that as -1 for each).
    const sequences = this.derived.applyAppendedBatch(
      input.batch,
      ticket.baseOffset,
      ticket.lastOffset,
      scanned,
    );
    const { baseOffset, lastOffset } = ticket;
    if (header.producerId >= 0n) {
      // What a retry of this batch is answered with (duplicate below): its completion until it is
      // written, and the stream sequences of this reply.
      const written = producers.latest;
      if (written !== null && written.baseOffset === baseOffset) {
        written.done = ticket.done;
        if (sequences.length > 0) written.streamSequences = compactSequences(sequences);
      }
    }
    // Not written: the log took the offsets back, the derived state forgets the batch too.
    const forget = (error: unknown): Promise<never> =>
      this.derived.truncated(baseOffset).then(() => Promise.reject(error));
    if (input.acks === 0) {
      ticket.done.catch(forget).catch(() => undefined);
      return Promise.resolve({ baseOffset, lastOffset, durability: 'none', duplicate: false, sequences });
    }
    return ticket.done.then(
      (durability): ProduceResponse => ({ baseOffset, lastOffset, durability, duplicate: false, sequences }),
      forget,
    );
  }

  /**
   * The answer to a retry of a batch the producer table holds: the first copy's offsets and stream
   * sequences. While that copy is not written yet (synced with durability `always`), the retry
   * waits for its write as the first produce does, and fails with it: a retry is never acknowledged
   * for a batch the log may still take back.
   */
  private duplicate(batch: WrittenBatch, acks: 0 | 1): Promise<ProduceResponse> {
    const { baseOffset, lastOffset, done } = batch;
    const sequences = replySequences(batch);
    if (acks === 0)
      return Promise.resolve({ baseOffset, lastOffset, durability: 'none', duplicate: true, sequences });
    if (done === undefined || lastOffset < this.log.stableOffset) {
      return Promise.resolve({
        baseOffset,
        lastOffset,
        durability: this.log.config.durability === 'always' ? 'synced' : 'written',
        duplicate: true,
        sequences,
      });
    }
    return done.then(
      (durability): ProduceResponse => ({ baseOffset, lastOffset, durability, duplicate: true, sequences }),
    );
  }

  /** Reads from `offset`, waiting up to `maxWaitMs` for data when there is none yet. */
  async fetch(offset: bigint, maxBytes: number, maxWaitMs: number) {
    if (offset === this.log.highWatermark && maxWaitMs > 0) await this.waiters.wait(maxWaitMs);
    return this.log.read(offset, maxBytes);
  }

  private onVisible(batches: readonly Buffer[], highWatermark: bigint): void {
    this.derived.visible(batches, highWatermark);
    this.waiters.wakeAll();
    for (const subscription of this.subscriptions) subscription.onAppended(batches, highWatermark);
  }

  /** Reads one stream from a sequence (stream-reader.ts). */
  readStream(
    key: Buffer,
    fromSequence: number,
    maxRecords: number,
    maxWaitMs: number,
  ): Promise<ReadStreamResponse> {
    return this.streamReader.read(key, fromSequence, maxRecords, maxWaitMs);
  }

  /** Starts pushing batches from `offset` to `sink`, never more bytes than granted. */
  subscribe(
    offset: bigint,
    credit: number,
    sink: PushSink,
    onError: (error: Error) => void,
  ): PushSubscription {
    const subscription = new PushSubscription(this.log, offset, credit, sink, onError, () =>
      this.subscriptions.delete(subscription),
    );
    this.subscriptions.add(subscription);
    subscription.pump();
    return subscription;
  }

  async close(): Promise<void> {
    for (const subscription of [...this.subscriptions]) subscription.close();
    this.waiters.wakeAll();
    // The snapshot written below holds no producer that retention left without a batch.
    this.derived.logStartMoved();
    await this.log.close();
    // A clean close saves the table as of the log end, so the next open replays nothing.
    await this.derived.snapshotInBackground();
  }
}

/**
 * A reply's stream sequences as the producer table keeps them: the first one when each next one is
 * one more (as when every record has the same key, the usual keyed batch: no array is kept), else
 * the reply's array itself (encoded once, never changed: sharing it costs no copy on the common path).
 */
function compactSequences(sequences: readonly number[]): number | readonly number[] {
  const first = sequences[0]!;
  if (first < 0) return sequences;
  for (let i = 1; i < sequences.length; i++) if (sequences[i] !== first + i) return sequences;
  return first;
}

/** The stream sequences a retry's reply carries: those of the first reply (none for a keyless batch). */
function replySequences(batch: WrittenBatch): number[] {
  const kept = batch.streamSequences;
  if (kept === undefined) return [];
  if (typeof kept !== 'number') return kept.slice();
  const count = Number(batch.lastOffset - batch.baseOffset) + 1;
  const sequences = new Array<number>(count);
  for (let i = 0; i < count; i++) sequences[i] = kept + i;
  return sequences;
}
