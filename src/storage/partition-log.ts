// The partition log: an append-only sequence of segments that is its own write-ahead log. Single
// writer, concurrent readers, durability per policy, recovery at open, retention. Knows nothing of
// sockets, topics or producers.
//
// Public API
//   PartitionLog.open({ dir, config, fs?, clock? })      recovers and returns the log
//   log.append(batch) -> { baseOffset, lastOffset, done } assigns offsets now (written into the
//        batch in place); `done` resolves with 'synced' | 'written' when the policy is met
//   log.read(offset, maxBytes) -> { data, nextOffset, highWatermark, logStartOffset }
//   log.reader(offset, maxBytes?) / log.replay(offset)   sequential reads into reused buffers
//   log.offsetForTimestamp(ms) -> first offset whose batch max timestamp is ≥ ms
//   log.onVisible(listener)                              new batches as they become readable
//   log.applyRetention(now?) / log.close() / log.recovery / log.state
//   log.compact(options?) -> CompactionReport             log compaction of the sealed segments
//   log.onSegmentReplaced(listener)                       a sealed segment is rewritten or removed
//   log.onRoll(listener)                                  a segment was sealed and a new one started
// Replicated logs (docs/storage.md, "Replicated logs"):
//   log.append(batch, leaderEpoch)                        a leader's append, stamped with its epoch
//   log.appendReplicated(batches) -> AppendTicket         a follower stores its leader's batches as they are
//   log.truncateTo(offset) -> new log end                 removes every offset at and after a batch start
//   log.setHighWatermark(offset)                          readers see whole batches below it from then on
//   log.logEndOffset / stableOffset / durableOffset / highWatermark / replicatedHighWatermark
//   log.leaderEpochs                                      the leader-epoch checkpoint (leader-epoch-file.ts)
//   log.onTruncated(listener)                             the new log end after a truncation
// Anti-entropy (segment-digest.ts, segment-repair.ts):
//   log.settledSegments / log.repairSegment(base, ranges, target)  sealed segments below the high
//        watermark, and a verified rewrite of byte ranges of one of them
//
// Appends are coalesced: every batch that arrives in one event-loop turn goes out in one positioned
// writev. With durability `always` the loop then fdatasyncs, and batches that arrive while that sync
// runs share the next one (group commit). Readers see data up to the high watermark: with `always`
// only synced bytes, with `interval` and `never` written bytes (docs/storage.md, "Visibility"), and
// in a replicated log only whole batches below the high watermark its owner sets.

import { errorOf } from '../protocol/error-codes.js';
import { splitBatches } from '../protocol/record-batch.js';
import { BATCH_HEADER_SIZE, BATCH_OFFSETS, writeBaseOffset } from '../protocol/record-batch-layout.js';
import { frameBatches, lastOffsetOf, verifyBatches } from './batch-chunk.js';
import {
  type CheckpointRead,
  readHighWatermarkCheckpoint,
  writeHighWatermarkCheckpoint,
} from './high-watermark-file.js';
import { LeaderEpochFile } from './leader-epoch-file.js';
import {
  type CleanerHost,
  type CompactionOptions,
  type CompactionReport,
  LogCleaner,
} from './log-cleaner.js';
import { LogReader } from './log-reader.js';
import { type RecoveryReport, recoverSegments } from './log-recovery.js';
import { budgetedFs, FileRetiredError } from './open-files.js';
import { ReadAhead } from './read-ahead.js';
import { checkReplicatedBatches } from './replicated-batches.js';
import { ReplicatedVisibility, type WrittenBatch } from './replicated-visibility.js';
import type { Segment } from './segment.js';
import { SegmentList, type SegmentReplacedListener } from './segment-list.js';
import { type RepairRange, type RepairResult, type RepairTarget, repairSegment } from './segment-repair.js';
import { storageError } from './storage-error.js';
import { nodeStorageFs, type StorageFs } from './storage-fs.js';
import { StreamIndex } from './stream-index.js';

export type { RecoveryReport } from './log-recovery.js';
export type { SegmentReplacedListener } from './segment-list.js';

export type DurabilityPolicy = 'always' | 'interval' | 'never';
export type AppendDurability = 'synced' | 'written';

export interface PartitionLogConfig {
  segmentBytes: number;
  segmentMs: number;
  indexIntervalBytes: number;
  durability: DurabilityPolicy;
  flushIntervalMs: number;
  /** -1 keeps segments forever. */
  retentionMs: number;
  /** -1 means no size limit. */
  retentionBytes: number;
}

export const DEFAULT_PARTITION_LOG_CONFIG: PartitionLogConfig = {
  segmentBytes: 256 * 1024 * 1024,
  segmentMs: 7 * 24 * 3600 * 1000,
  indexIntervalBytes: 4096,
  durability: 'interval',
  flushIntervalMs: 100,
  retentionMs: -1,
  retentionBytes: -1,
};

export interface AppendTicket {
  baseOffset: bigint;
  lastOffset: bigint;
  done: Promise<AppendDurability>;
}

export interface ReadResult {
  /** Whole batches, the first one holding `offset`; empty at the high watermark. */
  data: Buffer;
  /** Offset after the last batch in `data` (the next offset to ask for). */
  nextOffset: bigint;
  highWatermark: bigint;
  logStartOffset: bigint;
}

export type VisibleListener = (batches: readonly Buffer[], highWatermark: bigint) => void;

interface PendingAppend {
  batch: Buffer;
  lastOffset: bigint;
  maxTimestamp: number;
  resolve: (durability: AppendDurability) => void;
  reject: (error: Error) => void;
}

export interface Clock {
  now(): number;
}

/** Told how long each fdatasync of a log took: storage knows nothing of metrics, the broker listens. */
export interface StorageObserver {
  onSync(seconds: number, cause: 'append' | 'interval'): void;
}

const systemClock: Clock = { now: () => Date.now() };
const ignore = (): void => undefined;

export class PartitionLog {
  readonly dir: string;
  readonly config: PartitionLogConfig;
  recovery!: RecoveryReport;
  /** 'failed' after an fsync error: reads go on, appends are refused until a restart recovers. */
  state: 'open' | 'failed' | 'closed' = 'open';
  private failure: Error | null = null;
  private readonly fs: StorageFs;
  private readonly clock: Clock;
  private readonly observer: StorageObserver | null;
  /** The segments, shared with the log's readers and its cleaner. */
  private readonly segments: SegmentList;
  private nextOffset = 0n;
  /** Readers' bound: the high watermark (docs/storage.md, "Visibility"). */
  private visibleOffset = 0n;
  /** Offsets below this are written here (and synced with `always`): locally stable. */
  private stable = 0n;
  /** Offsets below this were fdatasynced (as far as this process knows after an open). */
  private syncedThrough = 0n;
  /** Set once the owner sets a replicated high watermark; null for a single-node log. */
  private replicated: ReplicatedVisibility | null = null;
  private pending: PendingAppend[] = [];
  private flushing: Promise<void> | null = null;
  private flushScheduled = false;
  private dirty = false;
  private intervalTimer: NodeJS.Timeout | null = null;
  private keepsHighWatermark = false;
  private checkpointedHighWatermark: bigint | null = null;
  /** What the open found of `high-watermark.checkpoint` (a log opened with `keepHighWatermark`). */
  highWatermarkCheckpoint: CheckpointRead['state'] | null = null;
  private intervalSync: Promise<void> | null = null;
  private readonly listeners = new Set<VisibleListener>();
  private readonly truncationListeners = new Set<(logEndOffset: bigint) => void>();
  /** Truncations asked for and not finished: appends are refused meanwhile (LOG_TRUNCATING). */
  private truncating = 0;
  /** Chunks read ahead for sequential readers (read-ahead.ts). */
  private readonly readAhead = new ReadAhead();
  private readonly rollListeners = new Set<(sealedNextOffset: bigint) => void>();
  /** Compaction and retention change the segment list: they run one at a time, in this chain. */
  private maintenance: Promise<unknown> = Promise.resolve();
  private stopMaintenance = false;
  /** Offsets below this are clean (log-cleaner.ts); in memory only, so everything is dirty after open. */
  private cleanedThrough = 0n;
  /** The persisted stream index, when opened with `streams` (docs/storage.md, "Stream index"). */
  readonly streams: StreamIndex | null;
  /**
   * The leader-epoch checkpoint (leader-epoch-file.ts): epochs are assigned by `append` with a
   * leader epoch and by `appendReplicated` from the batches, and written before their first batch.
   */
  readonly leaderEpochs: LeaderEpochFile;

  private constructor(
    dir: string,
    config: PartitionLogConfig,
    fs: StorageFs,
    clock: Clock,
    observer: StorageObserver | null,
    streams: StreamIndex | null,
  ) {
    this.streams = streams;
    this.dir = dir;
    this.config = config;
    this.fs = fs;
    this.clock = clock;
    this.observer = observer;
    this.segments = new SegmentList(fs, dir, config.indexIntervalBytes, streams, this.readAhead);
    this.leaderEpochs = new LeaderEpochFile(fs, dir);
  }

  static async open(options: {
    dir: string;
    config?: Partial<PartitionLogConfig>;
    fs?: StorageFs;
    clock?: Clock;
    observer?: StorageObserver;
    /** Keep a stream index (key → sequence → offset); keys of compressed batches inflate up to this. */
    streams?: { maxDecompressedBytes: number };
    /**
     * A replicated log's high watermark as its owner last knew it: readers see nothing at or past
     * it until `setHighWatermark` moves it on (clamped to the recovered log end).
     */
    highWatermark?: bigint;
    /**
     * A replicated log that keeps its high watermark across restarts: `checkpointHighWatermark`
     * (and `close`) write it to `high-watermark.checkpoint`, and an open without `highWatermark`
     * starts from that file when there is one (high-watermark-file.ts).
     */
    keepHighWatermark?: boolean;
  }): Promise<PartitionLog> {
    // Every descriptor the log uses counts against the process-wide cap (open-files.ts).
    const fs = budgetedFs(options.fs ?? nodeStorageFs);
    const log = new PartitionLog(
      options.dir,
      { ...DEFAULT_PARTITION_LOG_CONFIG, ...options.config },
      fs,
      options.clock ?? systemClock,
      options.observer ?? null,
      options.streams === undefined ? null : new StreamIndex(fs, options.dir, options.streams),
    );
    try {
      await log.recover();
    } catch (error) {
      // Leave no file of this partition open behind a failed open (it would keep the file system
      // busy, e.g. an unmount).
      await log.segments.closeAll();
      await log.streams?.close();
      throw error;
    }
    let highWatermark = options.highWatermark;
    if (options.keepHighWatermark === true) {
      log.keepsHighWatermark = true;
      const checkpoint = await readHighWatermarkCheckpoint(fs, options.dir).catch(
        () => ({ state: 'corrupt' }) as const,
      );
      log.highWatermarkCheckpoint = checkpoint.state;
      if (checkpoint.state === 'ok') {
        log.checkpointedHighWatermark = checkpoint.offset;
        highWatermark ??= checkpoint.offset;
      }
    }
    if (highWatermark !== undefined) {
      try {
        await log.startReplicated(highWatermark);
      } catch (error) {
        await log.close();
        throw error;
      }
    }
    if (log.config.durability === 'interval') {
      log.intervalTimer = setInterval(() => log.syncInterval(), log.config.flushIntervalMs);
      log.intervalTimer.unref();
    }
    return log;
  }

  get logStartOffset(): bigint {
    return this.segments.first.baseOffset;
  }

  /** Offset the next appended record will get. */
  get logEndOffset(): bigint {
    return this.nextOffset;
  }

  /**
   * Offsets below this are readable: the replicated high watermark (at a batch boundary, and only
   * what is written here) once the owner sets one, else the locally stable offset.
   */
  get highWatermark(): bigint {
    return this.visibleOffset;
  }

  /** Offsets below this are written here, and fdatasynced with durability `always`. */
  get stableOffset(): bigint {
    return this.stable;
  }

  /** Offsets below this were fdatasynced here (whatever the policy: at syncs and rolls). */
  get durableOffset(): bigint {
    // (bigints: Math.min does not take them)
    const synced = this.syncedThrough;
    const stable = this.stable;
    if (synced < stable) return synced;
    return stable;
  }

  /**
   * Writes the replicated high watermark to `high-watermark.checkpoint` when it moved since the
   * last write (a log opened with `keepHighWatermark`; nothing otherwise).
   */
  async checkpointHighWatermark(): Promise<void> {
    if (!this.keepsHighWatermark || this.replicated === null || this.state === 'closed') return;
    const offset = this.replicated.highWatermark;
    if (offset === this.checkpointedHighWatermark) return;
    await writeHighWatermarkCheckpoint(this.fs, this.dir, offset);
    this.checkpointedHighWatermark = offset;
  }

  /** The high watermark the owner set last; null while none was set (a single-node log). */
  get replicatedHighWatermark(): bigint | null {
    return this.replicated?.highWatermark ?? null;
  }

  /**
   * Sets the replicated high watermark (the smallest log end of the in-sync replicas, or the
   * leader's for a follower): from then on readers and `onVisible` see only whole batches below it
   * that are written here. Monotonic and never past the log end (INVALID_HIGH_WATERMARK); the first
   * call may not go below what readers see already (a log that must start lower is opened with
   * `highWatermark`). A truncation below it lowers it to the new end.
   */
  setHighWatermark(offset: bigint): void {
    if (this.state === 'closed') throw errorOf('PARTITION_CLOSED', this.dir);
    const floor = this.replicated?.highWatermark ?? this.visibleOffset;
    if (offset < floor || offset > this.nextOffset)
      throw errorOf(
        'INVALID_HIGH_WATERMARK',
        `high watermark ${offset}: it is at ${floor} and the log ends at ${this.nextOffset}`,
      );
    if (this.replicated === null) {
      this.replicated = new ReplicatedVisibility(offset);
      this.segments.visibleLimit = this.visibleOffset;
    } else {
      this.replicated.highWatermark = offset;
    }
    this.reveal();
  }

  /** Makes the written batches now below the high watermark readable and tells listeners. */
  private reveal(): void {
    const released = this.replicated!.release();
    if (released.length === 0) return;
    this.visibleOffset = released[released.length - 1]!.lastOffset + 1n;
    this.segments.visibleLimit = this.visibleOffset;
    if (this.listeners.size > 0) {
      const batches = released.map((written) => written.batch);
      for (const listener of this.listeners) listener(batches, this.visibleOffset);
    }
  }

  /**
   * Opens as a replicated log whose high watermark is `highWatermark`: the batches written past it
   * are read into the tail that `setHighWatermark` releases.
   */
  private async startReplicated(highWatermark: bigint): Promise<void> {
    const end = this.visibleOffset;
    let hw = highWatermark > end ? end : highWatermark;
    if (hw < this.logStartOffset) hw = this.logStartOffset;
    const tail: WrittenBatch[] = [];
    let boundary = end;
    for (let at = hw; at < end; ) {
      const result = await this.read(at, 1024 * 1024);
      if (result.data.length === 0) break;
      for (const batch of splitBatches(result.data)) {
        if (tail.length === 0) boundary = batch.readBigInt64BE(BATCH_OFFSETS.baseOffset);
        tail.push({ batch, lastOffset: lastOffsetOf(batch, 0) });
      }
      at = result.nextOffset;
    }
    this.replicated = new ReplicatedVisibility(hw, tail);
    this.visibleOffset = boundary;
    this.segments.visibleLimit = boundary;
  }

  get sizeBytes(): number {
    return this.segments.sizeBytes;
  }

  get segmentCount(): number {
    return this.segments.count;
  }

  private get active(): Segment {
    return this.segments.active;
  }

  /** Segments this log writes to: held open from a write to its sync when the policy syncs. */
  private writable(segment: Segment): Segment {
    segment.holdUntilSynced = this.config.durability !== 'never';
    return segment;
  }

  private async recover(): Promise<void> {
    const report = await recoverSegments(this.fs, this.segments, this.leaderEpochs, this.clock.now());
    this.writable(this.active);
    this.nextOffset = this.active.nextOffset;
    const corruptFrom = this.segments.corruptFrom;
    this.visibleOffset = corruptFrom ?? this.nextOffset;
    this.stable = this.visibleOffset;
    this.syncedThrough = this.visibleOffset;
    this.cleanedThrough = this.logStartOffset;
    if (corruptFrom !== null) {
      this.state = 'failed';
      this.failure = errorOf(
        'CORRUPT_DATA',
        `segment ${report.corruption!.segment} at byte ${report.corruption!.position}: ${report.corruption!.reason}`,
      );
    }
    this.recovery = report;
    // Step: the stream index from its files (a scan of the active segment, rebuilds as needed).
    if (this.streams !== null) report.streams = await this.streams.open(this.segments.all);
  }

  /**
   * Appends one validated record batch. Offsets are assigned now, in call order, and written into
   * the batch; `done` settles when the batch is durable per the policy, or rejects (STORAGE_FULL,
   * STORAGE_IO, STORAGE_FAILED) — in which case it was not acknowledged and is not readable.
   */
  append(batch: Buffer, leaderEpoch?: number): AppendTicket {
    this.checkWritable();
    if (batch.length < BATCH_HEADER_SIZE) throw errorOf('BAD_RECORD_BATCH', `batch of ${batch.length} bytes`);
    const baseOffset = this.nextOffset;
    if (leaderEpoch !== undefined) {
      // Outside the CRC: stamping the epoch leaves the batch's checksum valid.
      if (leaderEpoch !== this.leaderEpochs.latestEpoch) this.leaderEpochs.assign(leaderEpoch, baseOffset);
      batch.writeInt32BE(leaderEpoch, BATCH_OFFSETS.partitionLeaderEpoch);
    }
    const lastOffset = baseOffset + BigInt(batch.readInt32BE(BATCH_OFFSETS.lastOffsetDelta));
    writeBaseOffset(batch, baseOffset);
    this.nextOffset = lastOffset + 1n;
    let resolve!: (durability: AppendDurability) => void;
    let reject!: (error: Error) => void;
    const done = new Promise<AppendDurability>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.pending.push({
      batch,
      lastOffset,
      maxTimestamp: Number(batch.readBigInt64BE(BATCH_OFFSETS.maxTimestamp)),
      resolve,
      reject,
    });
    this.scheduleFlush();
    return { baseOffset, lastOffset, done };
  }

  /**
   * A replica's append: stores its leader's record batches (one or more, back to back) as they are
   * — same offsets, same leader epochs, same bytes and CRCs — through the same queue, group commit,
   * durability policy, rolls and indexes as `append`, and counts their keyed records in the stream
   * index. The first batch must start at the log end offset and each next one where the previous
   * ended; a torn, malformed or corrupt batch, a gap or offsets going backwards refuse the whole
   * call (BAD_RECORD_BATCH, BAD_BATCH_CRC, REPLICA_OFFSET_MISMATCH) and nothing of it is appended.
   * The buffer is stored by reference: the caller must not change it until `done` settles.
   * `done` settles with the last batch (a failure rejects it and takes back the batches not written).
   */
  appendReplicated(batches: Buffer): AppendTicket {
    this.checkWritable();
    if (batches.length === 0) throw errorOf('BAD_RECORD_BATCH', 'no batch to append');
    const checked = checkReplicatedBatches(batches, this.nextOffset);
    const baseOffset = checked[0]!.baseOffset;
    // Epochs never go back along the log (batches without one, -1, are not counted).
    let latestEpoch = this.leaderEpochs.latestEpoch;
    for (const { leaderEpoch, baseOffset: at } of checked) {
      if (leaderEpoch < 0 || leaderEpoch === latestEpoch) continue;
      if (leaderEpoch < latestEpoch)
        throw errorOf(
          'LEADER_EPOCH_REGRESSION',
          `batch at offset ${at} has epoch ${leaderEpoch} after ${latestEpoch}`,
        );
      latestEpoch = leaderEpoch;
    }
    if (this.streams !== null) {
      try {
        for (const { batch } of checked) this.streams.addBatch(batch);
      } catch (error) {
        this.streams.takeBack(Number(baseOffset));
        throw error;
      }
    }
    let resolve!: (durability: AppendDurability) => void;
    let reject!: (error: Error) => void;
    const done = new Promise<AppendDurability>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    for (const { leaderEpoch, baseOffset: at } of checked)
      if (leaderEpoch > this.leaderEpochs.latestEpoch) this.leaderEpochs.assign(leaderEpoch, at);
    const last = checked.length - 1;
    for (let i = 0; i <= last; i++) {
      const { batch, lastOffset, maxTimestamp } = checked[i]!;
      // Only the last batch settles the ticket: a failure rejects it with every batch after the
      // failed one, and batches before it are then whole in the log.
      this.pending.push(
        i === last
          ? { batch, lastOffset, maxTimestamp, resolve, reject }
          : { batch, lastOffset, maxTimestamp, resolve: ignore, reject: ignore },
      );
    }
    const lastOffset = checked[last]!.lastOffset;
    this.nextOffset = lastOffset + 1n;
    // The stream entries of batches that do not make it are taken back with their offsets (a failed
    // write has set the log end back to where the written batches end).
    if (this.streams !== null) done.catch(() => this.streams?.takeBack(Number(this.nextOffset)));
    this.scheduleFlush();
    return { baseOffset, lastOffset, done };
  }

  private checkWritable(): void {
    if (this.state === 'closed') throw errorOf('PARTITION_CLOSED', this.dir);
    if (this.state === 'failed') throw errorOf('STORAGE_FAILED', this.failure?.message);
    if (this.truncating > 0) throw errorOf('LOG_TRUNCATING', this.dir);
  }

  /**
   * Removes every offset at and after `offset` (a replica whose history diverged from its new
   * leader's): whole segments after it are deleted, the segment holding it is cut where the batch at
   * `offset` starts, and its indexes, the stream index and the leader-epoch checkpoint follow.
   * `offset` must be where a batch starts (TRUNCATION_INSIDE_BATCH otherwise, and nothing changes);
   * at or past the log end nothing happens; below the log start is OFFSET_OUT_OF_RANGE. Queued
   * appends finish first; appends made while it runs are refused (LOG_TRUNCATING). Resolves with the
   * new log end: `offset`, or the end of the last batch kept when compaction removed the batches
   * just before it. Crash-safe: a crash recovers a prefix of the log ending at or after `offset`
   * (segment-list.ts). An I/O error after the first file changed fails the log (STORAGE_FAILED):
   * the next open recovers such a prefix.
   *
   * Readers: the high watermark drops to the new end when it was past it; a read or a reader
   * positioned past the new end gets OFFSET_OUT_OF_RANGE, and a reader below it never serves bytes
   * read before the truncation from past it. `onTruncated` listeners are told the new end.
   */
  truncateTo(offset: bigint): Promise<bigint> {
    this.checkWritable();
    this.truncating++;
    const run = this.exclusive(() => this.truncate(offset));
    const done = () => {
      this.truncating--;
    };
    run.then(done, done);
    return run;
  }

  private async truncate(offset: bigint): Promise<bigint> {
    await this.appendsSettled();
    this.checkOpen();
    if (offset >= this.nextOffset) return this.nextOffset;
    if (offset < this.logStartOffset)
      throw errorOf(
        'OFFSET_OUT_OF_RANGE',
        `truncation to ${offset}; the log starts at ${this.logStartOffset}`,
      );
    const generation = this.segments.generation;
    let end: bigint;
    try {
      end = await this.segments.truncateFrom(offset, this.config.durability !== 'never');
      this.nextOffset = end;
      if (this.visibleOffset > end) this.visibleOffset = end;
      if (this.stable > end) this.stable = end;
      if (this.syncedThrough > end) this.syncedThrough = end;
      if (this.replicated !== null) {
        this.replicated.truncate(end);
        this.segments.visibleLimit = this.visibleOffset;
      }
      if (this.cleanedThrough > end) this.cleanedThrough = end;
      this.readAhead.clear();
      // The stream versions are counted again from the segments as they are now.
      if (this.streams !== null) await this.streams.reopen(this.segments.all);
      // Epochs that start at or past the new end go (an open does the same after a crash here).
      this.leaderEpochs.truncateFromEnd(end);
      await this.leaderEpochs.write();
    } catch (error) {
      // Nothing changed yet (the offset is inside a batch, or reading its segment failed).
      if (this.segments.generation === generation) throw storageError(error, `truncating ${this.dir}`);
      this.state = 'failed';
      this.failure = errorOf(
        'STORAGE_FAILED',
        `truncating ${this.dir} to ${offset}: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
      throw this.failure;
    }
    for (const listener of this.truncationListeners) {
      try {
        listener(end);
      } catch {
        // A listener's failure (derived state) is not the truncation's.
      }
    }
    return end;
  }

  /** Subscribes to truncations: called with the new log end once one is done. */
  onTruncated(listener: (logEndOffset: bigint) => void): () => void {
    this.truncationListeners.add(listener);
    return () => this.truncationListeners.delete(listener);
  }

  private checkOpen(): void {
    if (this.state === 'closed') throw errorOf('PARTITION_CLOSED', this.dir);
    if (this.state === 'failed') throw errorOf('STORAGE_FAILED', this.failure?.message);
  }

  /** Waits until every queued append is written (or failed) and no interval sync runs. */
  private async appendsSettled(): Promise<void> {
    while (this.flushing !== null || this.flushScheduled || this.intervalSync !== null) {
      if (this.flushing !== null) await this.flushing;
      else if (this.intervalSync !== null) await this.intervalSync;
      else await new Promise((resolve) => setImmediate(resolve));
    }
  }

  private scheduleFlush(): void {
    if (!this.flushScheduled && this.flushing === null) {
      this.flushScheduled = true;
      setImmediate(() => this.startFlush());
    }
  }

  private startFlush(): void {
    this.flushScheduled = false;
    if (this.flushing !== null) return;
    this.flushing = this.flushLoop().finally(() => {
      this.flushing = null;
      if (this.pending.length > 0 && this.state === 'open') this.startFlush();
    });
  }

  private async flushLoop(): Promise<void> {
    while (this.pending.length > 0 && this.state === 'open') {
      const group = this.pending;
      this.pending = [];
      try {
        await this.writeGroup(group);
      } catch (error) {
        await this.failGroup(group, error);
        return;
      }
    }
  }

  private async writeGroup(group: PendingAppend[]): Promise<void> {
    // A new leader epoch is durable before its first batch is written (leader-epoch-file.ts).
    if (this.leaderEpochs.dirty) {
      try {
        await this.leaderEpochs.write();
      } catch (error) {
        throw storageError(error, `writing the leader-epoch checkpoint of ${this.dir}`);
      }
    }
    let start = 0;
    while (start < group.length) {
      // Take batches until one would overflow the active segment; roll there.
      let end = start;
      let bytes = 0;
      const activeSize = this.active.size;
      while (end < group.length) {
        const length = group[end]!.batch.length;
        const overflow = activeSize + bytes + length > this.config.segmentBytes;
        if (overflow && (activeSize > 0 || bytes > 0)) break;
        bytes += length;
        end++;
      }
      if (end === start) {
        await this.roll();
        continue;
      }
      if (activeSize > 0 && this.clock.now() - this.active.createdAt >= this.config.segmentMs) {
        await this.roll();
        continue;
      }
      await this.writeToActive(group, start, end);
      start = end;
      if (start < group.length) await this.roll();
    }
    if (this.config.durability === 'always') {
      try {
        await this.timedSync('append');
      } catch (error) {
        this.enterFailed(error);
        throw this.failure!;
      }
    } else {
      this.dirty = true;
    }
    this.publish(group);
  }

  private async writeToActive(group: PendingAppend[], start: number, end: number): Promise<void> {
    const segment = this.active;
    const buffers: Buffer[] = [];
    for (let i = start; i < end; i++) buffers.push(group[i]!.batch);
    const position = segment.size;
    try {
      await segment.write(buffers, position);
    } catch (error) {
      throw storageError(error, `writing ${buffers.length} batches to ${segment.path('log')}`);
    }
    let at = position;
    for (let i = start; i < end; i++) {
      const pending = group[i]!;
      segment.track(at, pending.batch.length, pending.lastOffset, pending.maxTimestamp);
      at += pending.batch.length;
    }
    segment.size = at;
  }

  /** Seals the active segment (synced unless `never`, indexes persisted) and starts a new one. */
  private async roll(): Promise<void> {
    const sealed = this.active;
    // Synced whatever the durability policy, `never` included (one fdatasync per segment): the
    // sealed segment's indexes are written durably next and the next segment starts after it, so
    // a power loss must not leave an empty or torn sealed segment behind a newer one — recovery
    // trusts sealed segments through their indexes and only scans the last one
    // (test/storage/crash-states.test.ts found exactly that hole).
    try {
      await sealed.datasync();
    } catch (error) {
      this.enterFailed(error);
      throw this.failure!;
    }
    if (sealed.nextOffset > this.syncedThrough) this.syncedThrough = sealed.nextOffset;
    // Disk full while rolling (the sealed segment's index files, the new segment file) is the same
    // typed, retriable STORAGE_FULL as during a write: nothing of the group was acknowledged, the
    // log is unchanged, and the next append retries the roll (both steps can be repeated).
    try {
      await this.segments.roll(this.clock.now(), this.config.durability !== 'never');
    } catch (error) {
      throw storageError(error, `rolling to a new segment at offset ${sealed.nextOffset}`);
    }
    for (const listener of this.rollListeners) {
      try {
        listener(sealed.nextOffset);
      } catch {
        // A listener's failure (derived state, e.g. a producer snapshot) is not the roll's.
      }
    }
  }

  /**
   * Subscribes to rolls: called synchronously after a segment was sealed (synced, indexes written)
   * and the next one created at `sealedNextOffset`, while the write that rolled is in progress (its
   * batches are not yet visible). Returns the unsubscribe function.
   */
  onRoll(listener: (sealedNextOffset: bigint) => void): () => void {
    this.rollListeners.add(listener);
    return () => this.rollListeners.delete(listener);
  }

  /** Makes a written group readable and tells listeners, then acknowledges it. */
  private publish(group: PendingAppend[]): void {
    const last = group[group.length - 1]!;
    this.stable = last.lastOffset + 1n;
    if (this.config.durability === 'always') this.syncedThrough = this.stable;
    const segments = this.segments.all;
    for (let i = segments.length - 1; i >= 0; i--) {
      const segment = segments[i]!;
      if (segment.visibleBytes === segment.size && segment.size > 0) break;
      segment.visibleBytes = segment.size;
    }
    if (this.replicated !== null) {
      // Readable once the high watermark passes them (reveal); acknowledged now, as written here.
      this.replicated.written(group);
      this.reveal();
    } else {
      this.visibleOffset = this.stable;
      if (this.listeners.size > 0) {
        const batches = group.map((p) => p.batch);
        for (const listener of this.listeners) listener(batches, this.visibleOffset);
      }
    }
    const durability: AppendDurability = this.config.durability === 'always' ? 'synced' : 'written';
    for (const pending of group) pending.resolve(durability);
  }

  /**
   * A write or sync failed. When the failure was a write (disk full, I/O error), batches of the
   * group that reached an earlier segment before a roll are complete and are acknowledged; the
   * rest, and everything queued behind them, is rejected and its offsets are taken back. When an
   * fsync failed, nothing of the group is acknowledged and the log is failed.
   */
  private async failGroup(group: PendingAppend[], error: unknown): Promise<void> {
    const rejected = this.pending;
    this.pending = [];
    this.nextOffset = this.active.nextOffset;
    // Epochs assigned for batches taken back go with them (rewritten before the next batch).
    this.leaderEpochs.truncateFromEnd(this.nextOffset);
    let written = 0;
    if (this.state === 'open') {
      while (written < group.length && group[written]!.lastOffset < this.nextOffset) written++;
    }
    if (written > 0) this.publish(group.slice(0, written));
    const reason = error instanceof Error ? error : new Error(String(error));
    for (const pending of group.slice(written)) pending.reject(reason);
    for (const pending of rejected) pending.reject(reason);
  }

  private enterFailed(error: unknown): void {
    // An fsync error means the kernel may have dropped dirty pages: nothing after the last good
    // sync can be trusted, and retrying the fsync could report success for lost data. Stop writing.
    this.state = 'failed';
    this.failure = errorOf(
      'STORAGE_FAILED',
      `fdatasync of ${this.active.path('log')} failed: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }

  /** fdatasync of the active segment, timed for the observer (durability's cost, as a histogram). */
  private async timedSync(cause: 'append' | 'interval'): Promise<void> {
    if (this.observer === null) return this.active.datasync();
    const started = performance.now();
    await this.active.datasync();
    try {
      this.observer.onSync((performance.now() - started) / 1000, cause);
    } catch {
      // A failing observer (metrics) must never look like a failed fdatasync.
    }
  }

  private syncInterval(): void {
    if (!this.dirty || this.intervalSync !== null || this.state !== 'open') return;
    this.dirty = false;
    const upTo = this.stable;
    this.intervalSync = this.timedSync('interval')
      .then(() => {
        if (upTo > this.syncedThrough) this.syncedThrough = upTo;
      })
      .catch((error: unknown) => this.enterFailed(error))
      .finally(() => {
        this.intervalSync = null;
      });
  }

  /** Subscribes to batches as they become readable; returns the unsubscribe function. */
  onVisible(listener: VisibleListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Read-ahead chunks held, and reads served from one (for tests and metrics). */
  get readAheadStats(): { entries: number; hits: number } {
    return { entries: this.readAhead.size, hits: this.readAhead.hits };
  }

  /**
   * Reads whole batches starting with the one that holds `offset`, up to `maxBytes` (at least one
   * batch, so a consumer always makes progress). Each batch's CRC is checked before it is served.
   * The data is a new buffer the caller may keep; `reader()` reads into reused buffers instead.
   */
  async read(offset: bigint, maxBytes: number): Promise<ReadResult> {
    // A segment closed while idle and then deleted or replaced cannot be reopened: the read looks
    // its offset up again in the log as it is now (open-files.ts, FileRetiredError).
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.readOnce(offset, maxBytes);
      } catch (error) {
        if (!(error instanceof FileRetiredError) || attempt >= 3) throw error;
      }
    }
  }

  private async readOnce(offset: bigint, maxBytes: number): Promise<ReadResult> {
    const generation = this.segments.generation;
    const { highWatermark, logStartOffset } = this.readBounds(offset);
    const empty = { data: Buffer.alloc(0), nextOffset: offset, highWatermark, logStartOffset };
    const segment = offset === highWatermark ? null : this.segments.holding(offset);
    if (segment === null) return empty;
    const window = Math.max(maxBytes, 64 * 1024) + this.config.indexIntervalBytes;
    // A read that continues where an earlier one ended may find its bytes already read (or being
    // read) ahead; it verifies them like any other chunk.
    const sequential = this.readAhead.isSequential(offset);
    let start: { chunk: Buffer; position: number } | null = null;
    const ahead = sequential ? this.readAhead.take(offset, segment) : undefined;
    if (ahead !== undefined) {
      const data = await ahead.data;
      if (data !== null && data.length >= BATCH_HEADER_SIZE)
        start = { chunk: data, position: ahead.position };
    }
    const { chunk, position, at } = await this.segments.chunkFrom(
      segment,
      offset,
      window,
      start,
      (at, length) => segment.read(at, length),
    );
    const { end, lastStart } = frameBatches(chunk, at, maxBytes, position, segment);
    // A sequential reader will ask for the offset after these batches next: start reading its chunk
    // now, so the read overlaps the CRC checks below and whatever the caller does with this data.
    // The key comes from unverified bytes; if the checks end the read earlier, it is cancelled.
    let predicted: bigint | null = null;
    const limit = segment.visibleBytes;
    // Only for a segment still in the log: this read may have waited while retention deleted it.
    if (sequential && lastStart >= 0 && position + end < limit && this.segments.holds(segment)) {
      predicted = lastOffsetOf(chunk, lastStart) + 1n;
      this.readAhead.start(predicted, segment, position + end, Math.min(limit - position - end, window));
    }
    let checked: { verified: number; lastVerified: number };
    try {
      checked = verifyBatches(chunk, at, end, this.segments.servedBelow, segment);
    } catch (error) {
      if (predicted !== null) this.readAhead.cancel(predicted);
      throw error;
    }
    const { verified, lastVerified } = checked;
    if (verified < end && predicted !== null) this.readAhead.cancel(predicted);
    if (lastVerified < 0) return { ...empty, data: chunk.subarray(at, at) };
    // A truncation while this read waited may have cut (and a later append rewritten) what it
    // read: it reads again from the log as it is now.
    if (this.segments.generation !== generation) return this.readOnce(offset, maxBytes);
    const nextOffset = lastOffsetOf(chunk, lastVerified) + 1n;
    this.readAhead.noteEnd(nextOffset);
    return { data: chunk.subarray(at, verified), nextOffset, highWatermark, logStartOffset };
  }

  /**
   * What a follower fetches: whole batches from `offset` (a batch start), up to `maxBytes` (at least
   * one batch), also past the replicated high watermark up to what is written here (the leader's
   * batches above it wait in memory for the followers that move it). `nextOffset` is where the next
   * fetch starts.
   */
  async readForReplica(offset: bigint, maxBytes: number): Promise<{ data: Buffer; nextOffset: bigint }> {
    if (offset < this.visibleOffset) {
      const result = await this.read(offset, maxBytes);
      return { data: result.data, nextOffset: result.nextOffset };
    }
    if (offset > this.nextOffset)
      throw errorOf('OFFSET_OUT_OF_RANGE', `offset ${offset}; the log ends at ${this.nextOffset}`);
    const held = this.replicated?.from(offset, maxBytes) ?? [];
    if (held.length === 0) return { data: Buffer.alloc(0), nextOffset: offset };
    const last = held[held.length - 1]!;
    return { data: held.length === 1 ? last : Buffer.concat(held), nextOffset: lastOffsetOf(last, 0) + 1n };
  }

  /**
   * A sequential reader from `offset` that reads into two buffers of its own, reused from read to
   * read: what each `next()` returns is valid only until the next call (log-reader.ts). For replays
   * that look at the bytes and move on; a reader that keeps or hands on the bytes uses `read`.
   */
  reader(offset: bigint, maxBytes = 1024 * 1024): LogReader {
    return new LogReader({ segments: this.segments, bounds: (at) => this.readBounds(at) }, offset, maxBytes);
  }

  /**
   * Every batch from `offset` to the high watermark as the replay runs, in chunks of at most
   * `maxBytes` read into reused buffers: a chunk is valid only until the loop asks for the next one.
   */
  async *replay(offset: bigint, maxBytes = 1024 * 1024): AsyncGenerator<ReadResult, void, undefined> {
    const reader = this.reader(offset, maxBytes);
    try {
      for (;;) {
        const result = await reader.next();
        if (result.data.length === 0) return;
        yield result;
      }
    } finally {
      reader.close();
    }
  }

  /** The log's readable range, refusing a closed log and an offset outside it. */
  private readBounds(offset: bigint): { highWatermark: bigint; logStartOffset: bigint } {
    if (this.state === 'closed') throw errorOf('PARTITION_CLOSED', this.dir);
    const highWatermark = this.visibleOffset;
    const logStartOffset = this.logStartOffset;
    if (offset < logStartOffset || offset > highWatermark) {
      throw errorOf('OFFSET_OUT_OF_RANGE', `offset ${offset}; log holds ${logStartOffset}..${highWatermark}`);
    }
    return { highWatermark, logStartOffset };
  }

  /** First offset whose batch has a timestamp at or after `timestamp`; the high watermark if none. */
  async offsetForTimestamp(timestamp: number): Promise<bigint> {
    for (const segment of this.segments.all) {
      if (segment.maxTimestamp < timestamp) continue;
      const relative = segment.timeIndex.firstAtOrAfter(timestamp);
      if (relative >= 0) {
        const offset = segment.baseOffset + BigInt(relative);
        return offset < this.visibleOffset ? offset : this.visibleOffset;
      }
    }
    return this.visibleOffset;
  }

  /**
   * Deletes whole sealed segments past the retention time or size. The active segment is never
   * deleted. Returns the number of segments removed.
   */
  applyRetention(now = this.clock.now()): Promise<number> {
    // One at a time (with compaction too): each run decides which segments go, checkpoints their
    // streams, then deletes them; two interleaved runs would delete segments the other one's
    // checkpoint does not hold.
    return this.exclusive(() => this.retain(now));
  }

  private async retain(now: number): Promise<number> {
    let size = this.sizeBytes;
    let count = 0;
    const segments = this.segments.all;
    while (count < segments.length - 1) {
      const oldest = segments[count]!;
      // A replicated log keeps what is not below its high watermark yet (a replica may still need it).
      if (this.replicated !== null && oldest.nextOffset > this.visibleOffset) break;
      const expired = this.config.retentionMs >= 0 && oldest.maxTimestamp < now - this.config.retentionMs;
      const oversized = this.config.retentionBytes >= 0 && size - oldest.size >= this.config.retentionBytes;
      if (!expired && !oversized) break;
      size -= oldest.size;
      count++;
    }
    // The stream versions at the new log start are checkpointed before segments go.
    await this.segments.removeOldest(count);
    // Epochs that ended before the new log start go; a failed write is left to the next append.
    if (count > 0 && this.leaderEpochs.truncateFromStart(this.logStartOffset))
      await this.leaderEpochs.write().catch(() => undefined);
    return count;
  }

  /** Sealed segments wholly below the high watermark, oldest first: what anti-entropy compares. */
  get settledSegments(): readonly Segment[] {
    const all = this.segments.all;
    const settled: Segment[] = [];
    for (let i = 0; i < all.length - 1 && all[i]!.nextOffset <= this.visibleOffset; i++)
      settled.push(all[i]!);
    return settled;
  }

  /**
   * Rewrites byte ranges of the settled segment at `baseOffset` with bytes from another replica,
   * by a verified copy swapped in like a compaction (segment-repair.ts); SEGMENT_NOT_FOUND when no
   * settled segment starts there. One at a time with compaction, retention and truncation.
   */
  repairSegment(
    baseOffset: bigint,
    ranges: readonly RepairRange[],
    target: RepairTarget,
  ): Promise<RepairResult> {
    return this.exclusive(() => {
      this.checkOpen();
      const segment = this.settledSegments.find((settled) => settled.baseOffset === baseOffset);
      if (segment === undefined)
        throw errorOf('SEGMENT_NOT_FOUND', `no settled segment starts at ${baseOffset} in ${this.dir}`);
      return repairSegment(this.segments, segment, ranges, target);
    });
  }

  /** Runs `task` after every compaction or retention run before it (they change the segment list). */
  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.maintenance.then(task, task);
    this.maintenance = run.catch(() => undefined);
    return run;
  }

  /**
   * Compacts the sealed segments (log-cleaner.ts): keeps the latest record per key, drops expired
   * tombstones. Runs in the background of appends and reads; one run at a time per log.
   */
  compact(options: CompactionOptions = {}): Promise<CompactionReport> {
    return this.exclusive(async () => {
      if (this.state === 'closed') throw errorOf('PARTITION_CLOSED', this.dir);
      if (this.state === 'failed') throw errorOf('STORAGE_FAILED', this.failure?.message);
      return new LogCleaner(this.cleanerHost(), { ...options, now: options.now ?? this.clock.now() }).run();
    });
  }

  /**
   * Bytes of sealed segments not yet cleaned since the open, over all sealed bytes (0 when there
   * is no sealed segment): the broker compacts a log once this reaches minCleanableDirtyRatio.
   */
  get dirtyRatio(): number {
    let dirty = 0;
    let total = 0;
    const segments = this.segments.all;
    for (let i = 0; i < segments.length - 1; i++) {
      const segment = segments[i]!;
      total += segment.size;
      if (segment.nextOffset > this.cleanedThrough) dirty += segment.size;
    }
    return total === 0 ? 0 : dirty / total;
  }

  /** Subscribes to compaction's segment swaps (SegmentReplacedListener); returns the unsubscribe function. */
  onSegmentReplaced(listener: SegmentReplacedListener): () => void {
    return this.segments.onReplaced(listener);
  }

  private cleanerHost(): CleanerHost {
    const log = this;
    return {
      segments: this.segments,
      get cleanedThrough() {
        return log.cleanedThrough;
      },
      set cleanedThrough(offset: bigint) {
        log.cleanedThrough = offset;
      },
      async snapshot() {
        const segments = log.segments.all.slice();
        const readableBytes = segments.map((segment) => segment.visibleBytes);
        const bound = log.visibleOffset;
        // Records of the active segment may supersede older ones: make them durable first, or a
        // power loss could take the new value after the cleaner removed the old one.
        if (log.config.durability !== 'always') {
          try {
            await segments[segments.length - 1]!.datasync();
          } catch (error) {
            log.enterFailed(error);
            throw log.failure!;
          }
        }
        return { segments, readableBytes, bound };
      },
      stopping: () => log.stopMaintenance || log.state !== 'open',
    };
  }

  /** Finishes queued appends, syncs, closes the files (the active segment's indexes are rebuilt at open). */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    // A compaction in progress stops after the segment it is writing.
    this.stopMaintenance = true;
    await this.maintenance;
    while (this.flushing !== null || this.flushScheduled) {
      if (this.flushing !== null) await this.flushing;
      else await new Promise((resolve) => setImmediate(resolve));
    }
    if (this.intervalTimer !== null) clearInterval(this.intervalTimer);
    if (this.intervalSync !== null) await this.intervalSync;
    const wasOpen = this.state === 'open';
    if (wasOpen) await this.checkpointHighWatermark().catch(() => undefined);
    this.state = 'closed';
    this.segments.closed = true;
    for (const pending of this.pending) pending.reject(errorOf('PARTITION_CLOSED', this.dir));
    this.pending = [];
    if (wasOpen && this.config.durability !== 'never') await this.active.datasync().catch(() => undefined);
    this.readAhead.clear();
    for (const segment of this.segments.all) await segment.close();
    await this.streams?.close();
    this.listeners.clear();
  }
}
