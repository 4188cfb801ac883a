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
//   log.truncateFullyAndStartAt(offset)                   empties the log, which starts again at `offset`
//   log.setHighWatermark(offset)                          readers see whole batches below it from then on
//   log.logEndOffset / stableOffset / durableOffset / highWatermark / replicatedHighWatermark
//   log.leaderEpochs                                      the leader-epoch checkpoint (leader-epoch-file.ts)
//   log.onTruncated(listener)                             the new log end after a truncation
// Anti-entropy (segment-digest.ts, segment-repair.ts):
//   log.settledSegments / log.repairSegment(base, ranges, target)  sealed segments below the high
//        watermark, and a verified rewrite of byte ranges of one of them
//
// Appends are coalesced: the batches appended while the log is busy go out together in one
// positioned writev, and an idle log writes at the end of the synchronous run that appended (a
// microtask), not a turn later. A write of at most `inlineWriteMaxBytes` is made in line into the
// page cache (cheaper than the thread-pool round trip; an in-line write slower than
// `inlineWriteSlowMs` sends the log to the thread pool for `inlineWriteCooldownMs`), larger ones on
// the thread pool (docs/storage.md, "Append path"). With durability `always` the loop then
// fdatasyncs, and batches that arrive while that sync runs share the next one (group commit). With
// `interval` and `never` up to `maxWritesInFlight` writes run at once: they are published in order,
// and a failed one takes back itself and everything after it before anything of them is seen.
// Readers see data up to the high watermark: with `always` only synced bytes, with `interval` and
// `never` written bytes (docs/storage.md, "Visibility"), and in a replicated log only whole batches
// below the high watermark its owner sets.

import { join } from 'node:path';
import { errorOf } from '../protocol/error-codes.js';
import { splitBatches } from '../protocol/record-batch.js';
import {
  BATCH_HEADER_SIZE,
  BATCH_OFFSETS,
  readInt64AsNumber,
  writeBaseOffset,
} from '../protocol/record-batch-layout.js';
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
import { removeLogRestart, writeLogRestart } from './log-restart-file.js';
import { budgetedFs, FileRetiredError } from './open-files.js';
import { ReadAhead } from './read-ahead.js';
import { checkReplicatedBatches } from './replicated-batches.js';
import { ReplicatedVisibility, type WrittenBatch } from './replicated-visibility.js';
import type { Segment } from './segment.js';
import { SegmentList, type SegmentReplacedListener, unlinkIfPresent } from './segment-list.js';
import { type RepairRange, type RepairResult, type RepairTarget, repairSegment } from './segment-repair.js';
import { storageError } from './storage-error.js';
import { nodeStorageFs, type StorageFs } from './storage-fs.js';
import { STREAM_CHECKPOINT, StreamIndex } from './stream-index.js';

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
  /**
   * How `retentionBytes` is read. 'floor' (disk logs, as Kafka): the oldest segment goes while the
   * log stays at least `retentionBytes` without it, so the log holds up to retention plus two
   * segments (the sealed ones just short of one more, and the active one). 'ceiling' (memory
   * logs, whose retention is their memory bound): the oldest segments go while the log is larger
   * than `retentionBytes`, so at a roll the sealed segments come down to it, and the log holds at
   * most retention plus the active segment.
   */
  retentionBytesAs: 'floor' | 'ceiling';
  /** A write of at most this many bytes is made in line, into the page cache (0: never). */
  inlineWriteMaxBytes: number;
  /** In-line writes slower than this, `inlineWriteSlowStreak` in a row, send the log to the thread pool. */
  inlineWriteSlowMs: number;
  /**
   * Slow in-line writes in a row that make the switch. Writeback throttling and a slow disk slow
   * every write; one slow write alone is usually the thread being descheduled on a busy machine.
   */
  inlineWriteSlowStreak: number;
  /** How long the log writes on the thread pool after a slow in-line write, before trying again. */
  inlineWriteCooldownMs: number;
  /** Thread-pool writes in flight at once with durability `interval` and `never` (at least 1). */
  maxWritesInFlight: number;
}

export const DEFAULT_PARTITION_LOG_CONFIG: PartitionLogConfig = {
  segmentBytes: 256 * 1024 * 1024,
  segmentMs: 7 * 24 * 3600 * 1000,
  indexIntervalBytes: 4096,
  durability: 'interval',
  flushIntervalMs: 100,
  retentionMs: -1,
  retentionBytes: -1,
  retentionBytesAs: 'floor',
  inlineWriteMaxBytes: 256 * 1024,
  inlineWriteSlowMs: 2,
  inlineWriteSlowStreak: 2,
  inlineWriteCooldownMs: 5000,
  maxWritesInFlight: 4,
};

/** How a log makes its writes now (PartitionLog.writeMode). */
export type WriteMode = 'inline' | 'pool';

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

/**
 * One write of the `interval`/`never` pipeline: the batches of `appends`, at `position` of `segment`.
 * Units are tracked and published in the order they were issued, whatever order they end in.
 */
interface WriteUnit {
  appends: PendingAppend[];
  segment: Segment;
  position: number;
  bytes: number;
  state: 'writing' | 'written' | 'failed';
  error: Error | null;
  /** Settles (never rejects) once the write ended and its state is set. */
  ended: Promise<void>;
}

const ended: Promise<void> = Promise.resolve();

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
  private readonly startFlushSoon = (): void => this.startFlush();
  /** Set by a microtask flush until the turn ends (scheduleFlush). */
  private flushedThisTurn = false;
  private readonly endTurn = (): void => {
    this.flushedThisTurn = false;
  };
  /** Writes issued and not yet published (`interval`, `never`), in log order. */
  private inFlight: WriteUnit[] = [];
  /** Set when a write of the pipeline or a step between writes failed: the loop takes back. */
  private writeFailure: Error | null = null;
  /** While set (clock ms), writes go to the thread pool: an in-line write was slow. */
  private poolUntil: number | null = null;
  private readonly slowInlineMs: number;
  private inlineWriteCount = 0;
  private inlineFallbackCount = 0;
  /** Slow in-line writes in a row so far. */
  private slowStreak = 0;
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
    this.slowInlineMs = config.inlineWriteSlowMs;
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
      this.tell(released.map((written) => written.batch));
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
    const lastOffsetDelta = batch.readInt32BE(BATCH_OFFSETS.lastOffsetDelta);
    const lastOffset = lastOffsetDelta === 0 ? baseOffset : baseOffset + BigInt(lastOffsetDelta);
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
      maxTimestamp: readInt64AsNumber(batch, BATCH_OFFSETS.maxTimestamp),
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

  /**
   * Empties the log and starts it again at `offset` (≥ 0): a follower whose log ends below its
   * leader's log start, which cannot fetch what retention removed there (Kafka's
   * truncateFullyAndStartAt). Every segment goes and an empty one at `offset` takes their place;
   * the log end, the high watermark (and its checkpoint), the stable and synced ends are `offset`,
   * the read-ahead cache is dropped, the stream index (and its checkpoint) starts empty and the
   * leader-epoch checkpoint is emptied. Queued appends finish first; appends made while it runs are
   * refused (LOG_TRUNCATING). `onTruncated` listeners are told the new end.
   *
   * Crash-safe through a restart record (log-restart-file.ts), written durably before any file of
   * the old log changes and removed once the new log is durable: a crash before it leaves the old
   * log, a crash after it is finished by the next open, which leaves the new empty log. An I/O error
   * before the record is durable changes nothing; after it, the log fails (STORAGE_FAILED) and the
   * next open finishes the restart.
   */
  truncateFullyAndStartAt(offset: bigint): Promise<void> {
    this.checkWritable();
    if (offset < 0n) throw errorOf('OFFSET_OUT_OF_RANGE', `a log cannot start at ${offset}`);
    this.truncating++;
    const run = this.exclusive(() => this.restartAt(offset));
    const done = () => {
      this.truncating--;
    };
    run.then(done, done);
    return run;
  }

  private async restartAt(offset: bigint): Promise<void> {
    await this.appendsSettled();
    this.checkOpen();
    try {
      await writeLogRestart(this.fs, this.dir, offset);
    } catch (error) {
      throw storageError(error, `restarting ${this.dir} at ${offset}`);
    }
    try {
      // Committed: from here the next open finishes what a failure leaves undone.
      await this.segments.restartAt(offset, this.clock.now(), this.config.durability !== 'never');
      this.writable(this.active);
      this.nextOffset = offset;
      this.visibleOffset = offset;
      this.stable = offset;
      this.syncedThrough = offset;
      this.cleanedThrough = offset;
      this.readAhead.clear();
      if (this.replicated !== null) {
        this.replicated = new ReplicatedVisibility(offset);
        this.segments.visibleLimit = offset;
      }
      // The checkpoint holds the stream versions at the old log start: the new log has none.
      await unlinkIfPresent(this.fs, join(this.dir, STREAM_CHECKPOINT));
      await this.fs.syncDirectory(this.dir);
      if (this.streams !== null) await this.streams.reopen(this.segments.all);
      this.leaderEpochs.clear();
      await this.leaderEpochs.write();
      await removeLogRestart(this.fs, this.dir);
      // An open clamps an older checkpoint into the new log anyway; this one says where it is.
      if (this.keepsHighWatermark && this.replicated !== null) await this.checkpointHighWatermark();
    } catch (error) {
      this.state = 'failed';
      this.failure = errorOf(
        'STORAGE_FAILED',
        `restarting ${this.dir} at ${offset}: ${(error as Error).message}`,
        { cause: error },
      );
      throw this.failure;
    }
    for (const listener of this.truncationListeners) {
      try {
        listener(offset);
      } catch {
        // A listener's failure (derived state) is not the restart's.
      }
    }
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
    await this.writesSettled();
    while (this.intervalSync !== null) {
      await this.intervalSync;
      await this.writesSettled();
    }
  }

  /** Waits until no flush is scheduled or running and no write is in flight. */
  private async writesSettled(): Promise<void> {
    while (this.flushing !== null || this.flushScheduled || this.inFlight.length > 0) {
      if (this.flushing !== null) await this.flushing;
      else if (this.inFlight.some((unit) => unit.state === 'writing'))
        await Promise.all(this.inFlight.map((unit) => unit.ended));
      else await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /**
   * The first flush of an event-loop turn on an idle log starts at the end of the synchronous run
   * that appended (a microtask: the appends of that run still share one write) instead of a turn
   * later. Later flushes of the same turn, and a log with writes in flight, wait for the turn's end
   * (setImmediate), so that the appends of one turn share the next write, and a loop that appends
   * and awaits each acknowledgement (which may settle within microtasks) still yields to the event
   * loop (timers, sockets, the `interval` fdatasync) once per turn.
   */
  private scheduleFlush(): void {
    if (this.flushScheduled || this.flushing !== null) return;
    this.flushScheduled = true;
    if (this.inFlight.length === 0 && !this.flushedThisTurn) {
      this.flushedThisTurn = true;
      setImmediate(this.endTurn);
      queueMicrotask(this.startFlushSoon);
    } else {
      setImmediate(this.startFlushSoon);
    }
  }

  private startFlush(): void {
    this.flushScheduled = false;
    if (this.flushing !== null) return;
    if (this.flushedInLine()) return;
    this.flushing = this.flushLoop().finally(() => {
      this.flushing = null;
      if (this.writeFailure !== null) this.startFlush();
      else if (this.pending.length > 0 && this.state === 'open') this.scheduleFlush();
    });
  }

  /**
   * The common flush of `interval` and `never` done without the flush loop: no failure to take
   * back, no epoch to write first, a free write slot, and every queued append fits the active
   * segment, so writePipelined would issue one write and return without waiting. Issuing it here
   * spares a lone append the loop's async frames and promises (about half a kilobyte of garbage per
   * append). Returns false, having changed nothing, when any of that does not hold; true when the
   * queue was written or the write is in flight (a failure of an in-line write starts the loop,
   * which takes it back).
   */
  private flushedInLine(): boolean {
    if (
      this.writeFailure !== null ||
      this.state !== 'open' ||
      this.config.durability === 'always' ||
      this.leaderEpochs.dirty ||
      this.inFlight.length >= this.config.maxWritesInFlight
    )
      return false;
    const group = this.pending;
    if (group.length === 0) return true;
    const position = this.writeEnd;
    if (this.chunkEnd(group, 0, position) !== group.length || this.segmentTooOld(position)) return false;
    this.pending = [];
    this.issueWrite(group, position);
    if (this.writeFailure !== null) this.startFlush();
    return true;
  }

  private async flushLoop(): Promise<void> {
    for (;;) {
      // A failed write is taken back whatever the state (its appends must be rejected).
      if (this.writeFailure !== null) {
        await this.takeBack();
        continue;
      }
      if (this.pending.length === 0 || this.state !== 'open') return;
      const group = this.pending;
      this.pending = [];
      if (this.config.durability !== 'always') {
        // One group per run: appends made meanwhile are scheduled anew (scheduleFlush), so that a
        // loop appending and awaiting each acknowledgement still yields to the event loop.
        await this.writePipelined(group);
        if (this.writeFailure === null) return;
        continue;
      }
      try {
        await this.writeGroup(group);
      } catch (error) {
        await this.failGroup(group, error);
        return;
      }
    }
  }

  /** Durability `always`: writes the group (rolling where a segment fills), fdatasyncs, publishes. */
  private async writeGroup(group: PendingAppend[]): Promise<void> {
    await this.writeEpochs();
    let start = 0;
    while (start < group.length) {
      const end = this.chunkEnd(group, start, this.active.size);
      if (end === start || this.segmentTooOld(this.active.size)) {
        await this.roll();
        continue;
      }
      await this.writeToActive(group, start, end);
      start = end;
    }
    try {
      await this.timedSync('append');
    } catch (error) {
      this.enterFailed(error);
      throw this.failure!;
    }
    this.publish(group);
  }

  /** A new leader epoch is durable before its first batch is written (leader-epoch-file.ts). */
  private async writeEpochs(): Promise<void> {
    if (!this.leaderEpochs.dirty) return;
    try {
      await this.leaderEpochs.write();
    } catch (error) {
      throw storageError(error, `writing the leader-epoch checkpoint of ${this.dir}`);
    }
  }

  /** The end of the batches from `start` that fit the active segment when it holds `size` bytes. */
  private chunkEnd(group: PendingAppend[], start: number, size: number): number {
    let end = start;
    let bytes = 0;
    while (end < group.length) {
      const length = group[end]!.batch.length;
      const overflow = size + bytes + length > this.config.segmentBytes;
      // A batch larger than a whole segment goes alone into an empty one.
      if (overflow && (size > 0 || bytes > 0)) break;
      bytes += length;
      end++;
    }
    return end;
  }

  private segmentTooOld(size: number): boolean {
    return size > 0 && this.clock.now() - this.active.createdAt >= this.config.segmentMs;
  }

  private async writeToActive(group: PendingAppend[], start: number, end: number): Promise<void> {
    const segment = this.active;
    const buffers: Buffer[] = [];
    let bytes = 0;
    for (let i = start; i < end; i++) {
      buffers.push(group[i]!.batch);
      bytes += group[i]!.batch.length;
    }
    const position = segment.size;
    const during = `writing ${buffers.length} batches to ${segment.path('log')}`;
    let inline: boolean;
    try {
      inline = this.writeInline(segment, buffers, position, bytes);
    } catch (error) {
      // The failed in-line write may have landed in part: the file ends on a whole batch again.
      await segment.cutBack(position);
      throw storageError(error, during);
    }
    if (!inline) {
      try {
        await segment.write(buffers, position);
      } catch (error) {
        throw storageError(error, during);
      }
    }
    let at = position;
    for (let i = start; i < end; i++) {
      const pending = group[i]!;
      segment.track(at, pending.batch.length, pending.lastOffset, pending.maxTimestamp);
      at += pending.batch.length;
    }
    segment.size = at;
  }

  /**
   * Writes `bytes` in line (synchronously, into the page cache) when the log may: the write is
   * small enough, the log is not cooling down after slow ones, and the file is open. Each in-line
   * write is timed: `inlineWriteSlowStreak` in a row slower than `inlineWriteSlowMs` (writeback
   * throttling, a slow disk) send the log to thread-pool writes for `inlineWriteCooldownMs`. False
   * when nothing was written; throws the file system's error (part of the write may have landed).
   */
  private writeInline(segment: Segment, buffers: Buffer[], position: number, bytes: number): boolean {
    if (bytes > this.config.inlineWriteMaxBytes) return false;
    if (this.poolUntil !== null) {
      if (this.clock.now() < this.poolUntil) return false;
      this.poolUntil = null;
    }
    // performance.now(), not hrtime.bigint(): no BigInts per write, and µs are enough against ms.
    const started = performance.now();
    if (!segment.writeInline(buffers, position)) return false;
    const took = performance.now() - started;
    this.inlineWriteCount++;
    if (took <= this.slowInlineMs) {
      this.slowStreak = 0;
    } else if (++this.slowStreak >= this.config.inlineWriteSlowStreak) {
      this.slowStreak = 0;
      this.inlineFallbackCount++;
      this.poolUntil = this.clock.now() + this.config.inlineWriteCooldownMs;
    }
    return true;
  }

  /** Writes made in line since the open. */
  get inlineWrites(): number {
    return this.inlineWriteCount;
  }

  /** Times slow in-line writes sent the log to thread-pool writes since the open. */
  get inlineWriteFallbacks(): number {
    return this.inlineFallbackCount;
  }

  /** 'pool' while the log cools down after a slow in-line write, or when in-line writes are off. */
  get writeMode(): WriteMode {
    if (this.config.inlineWriteMaxBytes <= 0) return 'pool';
    return this.poolUntil !== null && this.clock.now() < this.poolUntil ? 'pool' : 'inline';
  }

  /**
   * Durability `interval` and `never`: issues the group's writes without waiting for them (up to
   * `maxWritesInFlight` on the thread pool; in-line ones end at once). They are tracked and published
   * in order as they end (settleWrites). Rolls and epoch writes wait for the writes in flight. On a
   * failure, what was not issued goes back to the queue and the loop takes back (takeBack).
   */
  private async writePipelined(group: PendingAppend[]): Promise<void> {
    let start = 0;
    try {
      // (Awaited only when there is something to wait for: the common path stays synchronous.)
      if (this.leaderEpochs.dirty) await this.writeEpochs();
      while (start < group.length) {
        if (this.inFlight.length >= this.config.maxWritesInFlight) await this.writeSlot();
        if (this.writeFailure !== null) break;
        const position = this.writeEnd;
        const end = this.chunkEnd(group, start, position);
        if (end === start || this.segmentTooOld(position)) {
          await this.writesEnded();
          if (this.writeFailure !== null) break;
          await this.roll();
          continue;
        }
        this.issueWrite(group.slice(start, end), position);
        start = end;
      }
    } catch (error) {
      this.writeFailure ??= error instanceof Error ? error : new Error(String(error));
    }
    if (start < group.length) this.pending = group.slice(start).concat(this.pending);
  }

  /** Where the next write goes in the active segment: after the writes in flight. */
  private get writeEnd(): number {
    const last = this.inFlight[this.inFlight.length - 1];
    return last === undefined ? this.active.size : last.position + last.bytes;
  }

  /** Waits until fewer than `maxWritesInFlight` writes run (or one failed). */
  private async writeSlot(): Promise<void> {
    const max = Math.max(1, this.config.maxWritesInFlight);
    while (this.writeFailure === null) {
      const writing = this.inFlight.filter((unit) => unit.state === 'writing');
      if (writing.length < max) return;
      await writing[0]!.ended;
    }
  }

  /** Waits until no write is in flight. */
  private async writesEnded(): Promise<void> {
    while (this.inFlight.some((unit) => unit.state === 'writing'))
      await Promise.all(this.inFlight.map((unit) => unit.ended));
  }

  private issueWrite(appends: PendingAppend[], position: number): void {
    const segment = this.active;
    const buffers = appends.map((pending) => pending.batch);
    let bytes = 0;
    for (const buffer of buffers) bytes += buffer.length;
    // Behind writes in flight it is published in order (settleWrites), whichever way it is written.
    const unit = this.inFlight.length > 0 ? this.track(appends, segment, position, bytes) : null;
    let inline: boolean;
    try {
      inline = this.writeInline(segment, buffers, position, bytes);
    } catch (error) {
      this.writeFailed(unit ?? this.track(appends, segment, position, bytes), error);
      return;
    }
    if (inline) {
      // Published outside the write's try: what happens after the bytes are in the file is not a
      // failed write (and publish keeps a listener's failure to itself).
      if (unit === null) this.written(segment, appends, position);
      else {
        unit.state = 'written';
        this.settleWrites();
      }
      return;
    }
    const tracked = unit ?? this.track(appends, segment, position, bytes);
    tracked.ended = segment.write(buffers, position, false).then(
      () => {
        tracked.state = 'written';
        this.settleWrites();
      },
      (error: unknown) => {
        this.writeFailed(tracked, error);
        // The loop takes back; start it when it is not running.
        if (this.flushing === null) this.startFlush();
      },
    );
  }

  /** A write unit at the end of the pipeline. */
  private track(appends: PendingAppend[], segment: Segment, position: number, bytes: number): WriteUnit {
    const unit: WriteUnit = { appends, segment, position, bytes, state: 'writing', error: null, ended };
    this.inFlight.push(unit);
    return unit;
  }

  /** Marks a unit failed; the flush loop takes it and everything after it back (takeBack). */
  private writeFailed(unit: WriteUnit, error: unknown): void {
    unit.state = 'failed';
    unit.error = storageError(error, `writing ${unit.appends.length} batches to ${unit.segment.path('log')}`);
    this.writeFailure ??= unit.error;
  }

  /** Indexes a written run of batches at `position` of `segment` and publishes it. */
  private written(segment: Segment, appends: PendingAppend[], position: number): void {
    let at = position;
    for (const pending of appends) {
      segment.track(at, pending.batch.length, pending.lastOffset, pending.maxTimestamp);
      at += pending.batch.length;
    }
    segment.size = at;
    this.dirty = true;
    this.publish(appends);
  }

  /** Tracks and publishes the written units at the head of the pipeline, in order. */
  private settleWrites(): void {
    while (this.inFlight.length > 0 && this.inFlight[0]!.state === 'written') {
      const unit = this.inFlight.shift()!;
      this.written(unit.segment, unit.appends, unit.position);
    }
  }

  /**
   * After a failure in the pipeline: waits for every write in flight, then cuts the file back to
   * where the first failed write started (writes after it may have landed), sets the log end back to
   * the last published batch, and rejects the failed write, every write after it and every queued
   * append with the failed write's error. Writes before it were published as they ended.
   */
  private async takeBack(): Promise<void> {
    await this.writesEnded();
    const failed = this.inFlight;
    this.inFlight = [];
    const error = failed[0]?.error ?? this.writeFailure!;
    if (failed.length > 0) await failed[0]!.segment.cutBack(failed[0]!.position);
    this.writeFailure = null;
    this.nextOffset = this.active.nextOffset;
    // Epochs assigned for batches taken back go with them (rewritten before the next batch).
    this.leaderEpochs.truncateFromEnd(this.nextOffset);
    const queued = this.pending;
    this.pending = [];
    for (const unit of failed) for (const pending of unit.appends) pending.reject(error);
    for (const pending of queued) pending.reject(error);
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
        this.tell(group.map((p) => p.batch));
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

  /**
   * Tells every visibility listener. A listener that throws (derived state, a push sink and what it
   * calls) neither stops the others nor undoes anything: the batches are written, indexed and
   * readable, and the log goes on to acknowledge them. Its error is its own to handle, as a roll
   * listener's is.
   */
  private tell(batches: readonly Buffer[]): void {
    for (const listener of this.listeners) {
      try {
        listener(batches, this.visibleOffset);
      } catch {
        // Not the log's failure (see above).
      }
    }
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
      const oversized =
        this.config.retentionBytes >= 0 &&
        (this.config.retentionBytesAs === 'ceiling'
          ? size > this.config.retentionBytes
          : size - oldest.size >= this.config.retentionBytes);
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
    await this.writesSettled();
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
