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
//
// Appends are coalesced: every batch that arrives in one event-loop turn goes out in one positioned
// writev. With durability `always` the loop then fdatasyncs, and batches that arrive while that sync
// runs share the next one (group commit). Readers see data up to the high watermark: with `always`
// only synced bytes, with `interval` and `never` written bytes (docs/storage.md, "Visibility").

import { isMemoryStreamerError } from '../common/errors.js';
import { errorOf } from '../protocol/error-codes.js';
import { BATCH_HEADER_SIZE, BATCH_OFFSETS, writeBaseOffset } from '../protocol/record-batch-layout.js';
import { batchSpan, frameBatches, lastOffsetOf, verifyBatches } from './batch-chunk.js';
import {
  type CleanerHost,
  type CompactionOptions,
  type CompactionReport,
  LogCleaner,
} from './log-cleaner.js';
import { LogReader } from './log-reader.js';
import { budgetedFs, FileRetiredError } from './open-files.js';
import { ReadAhead } from './read-ahead.js';
import { CLEANED_SUFFIX, parseSegmentFileName, type ScanStop, Segment, segmentFileName } from './segment.js';
import { nodeStorageFs, type StorageFs } from './storage-fs.js';
import { type PendingStreamReplacement, StreamIndex, type StreamRecovery } from './stream-index.js';

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

export interface RecoveryReport {
  segments: number;
  /** Segments whose indexes were missing, corrupt or stale and were rebuilt by a scan. */
  rebuiltIndexes: number;
  scannedBytes: number;
  /** Bytes cut from the end of the last segment (a torn or garbage tail). */
  truncatedBytes: number;
  truncation: ScanStop | null;
  /** A bad batch before the end of the log: the log serves nothing at or past this offset. */
  corruption: (ScanStop & { segment: bigint }) | null;
  /**
   * Rebuilt indexes that could not be written back (e.g. the disk is full): they are used from
   * memory and rebuilt again at the next open. Indexes are derivable, so this never stops an open.
   */
  unsavedIndexes: number;
  /** The stream index's open (when the log keeps one). */
  streams?: StreamRecovery;
}

export type VisibleListener = (batches: readonly Buffer[], highWatermark: bigint) => void;

/**
 * A sealed segment the log cleaner replaces. 'replacing' is awaited before the swap is committed:
 * files derived from the segment's bytes (other than its offset and time indexes, which the log
 * rewrites) must be deleted or invalidated there, so that no crash leaves a derived file describing
 * the old bytes beside the new ones. 'replaced' (rewritten) and 'removed' follow the durable swap.
 */
export type SegmentReplacedListener = (event: {
  baseOffset: bigint;
  phase: 'replacing' | 'replaced' | 'removed';
}) => void | Promise<void>;

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

function storageError(error: unknown, during: string): Error {
  // Typed already (a file that could not be reopened: out of descriptors, missing).
  if (isMemoryStreamerError(error)) return error;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return errorOf('STORAGE_FULL', during, { cause: error });
  return errorOf('STORAGE_IO', `${during}: ${(error as Error).message}`, { cause: error });
}

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
  private segments: Segment[] = [];
  private nextOffset = 0n;
  private visibleOffset = 0n;
  /** Offsets at or past this are corrupt and never served. */
  private corruptFrom: bigint | null = null;
  private pending: PendingAppend[] = [];
  private flushing: Promise<void> | null = null;
  private flushScheduled = false;
  private dirty = false;
  private intervalTimer: NodeJS.Timeout | null = null;
  private intervalSync: Promise<void> | null = null;
  private readonly listeners = new Set<VisibleListener>();
  /** Chunks read ahead for sequential readers (read-ahead.ts). */
  private readonly readAhead = new ReadAhead();
  private readonly segmentListeners = new Set<SegmentReplacedListener>();
  private readonly rollListeners = new Set<(sealedNextOffset: bigint) => void>();
  /** Compaction and retention change the segment list: they run one at a time, in this chain. */
  private maintenance: Promise<unknown> = Promise.resolve();
  private stopMaintenance = false;
  /** Offsets below this are clean (log-cleaner.ts); in memory only, so everything is dirty after open. */
  private cleanedThrough = 0n;
  /** The persisted stream index, when opened with `streams` (docs/storage.md, "Stream index"). */
  readonly streams: StreamIndex | null;

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
  }

  static async open(options: {
    dir: string;
    config?: Partial<PartitionLogConfig>;
    fs?: StorageFs;
    clock?: Clock;
    observer?: StorageObserver;
    /** Keep a stream index (key → sequence → offset); keys of compressed batches inflate up to this. */
    streams?: { maxDecompressedBytes: number };
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
      for (const segment of log.segments) await segment.close().catch(() => undefined);
      await log.streams?.close();
      throw error;
    }
    if (log.config.durability === 'interval') {
      log.intervalTimer = setInterval(() => log.syncInterval(), log.config.flushIntervalMs);
      log.intervalTimer.unref();
    }
    return log;
  }

  get logStartOffset(): bigint {
    return this.segments[0]!.baseOffset;
  }

  /** Offset the next appended record will get. */
  get logEndOffset(): bigint {
    return this.nextOffset;
  }

  /** Offsets below this are readable (written, or synced with `always`). */
  get highWatermark(): bigint {
    return this.visibleOffset;
  }

  get sizeBytes(): number {
    let total = 0;
    for (const segment of this.segments) total += segment.size;
    return total;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  private get active(): Segment {
    return this.segments[this.segments.length - 1]!;
  }

  /** Segments this log writes to: held open from a write to its sync when the policy syncs. */
  private writable(segment: Segment): Segment {
    segment.holdUntilSynced = this.config.durability !== 'never';
    return segment;
  }

  private async recover(): Promise<void> {
    await this.fs.mkdir(this.dir);
    const report: RecoveryReport = {
      segments: 0,
      rebuiltIndexes: 0,
      scannedBytes: 0,
      truncatedBytes: 0,
      truncation: null,
      corruption: null,
      unsavedIndexes: 0,
    };
    const names = await this.fs.readdir(this.dir);
    const bases = names
      .map(parseSegmentFileName)
      .filter((b): b is bigint => b !== null)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const logs = new Set(bases.map((base) => segmentFileName(base, 'log')));
    // A prepared stream file whose segment's `.log.cleaned` still exists belongs to a compaction
    // that did not commit: it goes first, durably, so that a crash during this cleanup can never
    // leave it without its `.log.cleaned` (an open would then adopt it).
    let uncommitted = 0;
    for (const name of names) {
      const prepared = /^(\d{20})\.streams\.cleaned$/.exec(name);
      if (prepared !== null && names.includes(`${prepared[1]}.log${CLEANED_SUFFIX}`)) {
        await this.fs.unlink(`${this.dir}/${name}`);
        uncommitted++;
      }
    }
    if (uncommitted > 0) await this.fs.syncDirectory(this.dir);
    for (const name of names) {
      // Leftovers of an index write or a compaction that a crash interrupted (a `.cleaned` file is
      // never committed data: committing it is its rename to `<base>.log`), and indexes of a segment
      // whose log file compaction or retention unlinked before the crash.
      // A `<base>.streams.cleaned` is written before its segment's commit rename: with the
      // `<base>.log.cleaned` still present the compaction did not commit and it goes too; without
      // it the compaction committed and the stream index adopts it (stream-index.ts, open).
      const orphanIndex = /^(\d{20})\.(index|timeindex|streams)$/.exec(name);
      const cleanedStreams = /^(\d{20})\.streams\.cleaned$/.exec(name);
      if (
        name.endsWith('.tmp') ||
        (name.endsWith(CLEANED_SUFFIX) && cleanedStreams === null) ||
        (orphanIndex !== null && !logs.has(`${orphanIndex[1]}.log`)) ||
        (cleanedStreams !== null && !logs.has(`${cleanedStreams[1]}.log`))
      )
        await this.fs.unlink(`${this.dir}/${name}`);
    }
    const now = this.clock.now();
    for (let i = 0; i < bases.length; i++) {
      const base = bases[i]!;
      const segment = await Segment.openExisting(
        this.fs,
        this.dir,
        base,
        this.config.indexIntervalBytes,
        now,
      );
      const isLast = i === bases.length - 1;
      this.segments.push(segment);
      if (!isLast && this.corruptFrom === null && (await segment.loadIndexes())) {
        segment.visibleBytes = segment.size;
        continue;
      }
      // Sealed segments may have offset gaps where the log cleaner dropped whole batches.
      const scan = await segment.scan(!isLast);
      report.scannedBytes += scan.validBytes;
      if (!isLast) report.rebuiltIndexes++;
      if (scan.stop !== null && this.corruptFrom === null) {
        if (isLast) {
          report.truncatedBytes = segment.size - scan.validBytes;
          report.truncation = scan.stop;
          await segment.truncateTo(scan.validBytes, scan.nextOffset);
          await segment.datasync();
        } else {
          report.corruption = { ...scan.stop, segment: base };
          this.corruptFrom = scan.stop.offset;
        }
      }
      segment.visibleBytes = scan.validBytes;
      if (!isLast && scan.stop === null) {
        try {
          await segment.persistIndexes();
        } catch {
          report.unsavedIndexes++;
        }
      }
    }
    if (this.segments.length === 0) {
      this.segments.push(await Segment.create(this.fs, this.dir, 0n, this.config.indexIntervalBytes, now));
    }
    this.writable(this.active);
    report.segments = this.segments.length;
    this.nextOffset = this.active.nextOffset;
    this.visibleOffset = this.corruptFrom ?? this.nextOffset;
    this.cleanedThrough = this.logStartOffset;
    if (this.corruptFrom !== null) {
      this.state = 'failed';
      this.failure = errorOf(
        'CORRUPT_DATA',
        `segment ${report.corruption!.segment} at byte ${report.corruption!.position}: ${report.corruption!.reason}`,
      );
    }
    this.recovery = report;
    // Step: the stream index from its files (a scan of the active segment, rebuilds as needed).
    if (this.streams !== null) report.streams = await this.streams.open(this.segments);
  }

  /**
   * Appends one validated record batch. Offsets are assigned now, in call order, and written into
   * the batch; `done` settles when the batch is durable per the policy, or rejects (STORAGE_FULL,
   * STORAGE_IO, STORAGE_FAILED) — in which case it was not acknowledged and is not readable.
   */
  append(batch: Buffer): AppendTicket {
    if (this.state === 'closed') throw errorOf('PARTITION_CLOSED', this.dir);
    if (this.state === 'failed') throw errorOf('STORAGE_FAILED', this.failure?.message);
    if (batch.length < BATCH_HEADER_SIZE) throw errorOf('BAD_RECORD_BATCH', `batch of ${batch.length} bytes`);
    const baseOffset = this.nextOffset;
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
    if (!this.flushScheduled && this.flushing === null) {
      this.flushScheduled = true;
      setImmediate(() => this.startFlush());
    }
    return { baseOffset, lastOffset, done };
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
    // Disk full while rolling (the sealed segment's index files, the new segment file) is the same
    // typed, retriable STORAGE_FULL as during a write: nothing of the group was acknowledged, the
    // log is unchanged, and the next append retries the roll (both steps can be repeated).
    let next: Segment;
    // Step: the sealed segment's stream file, written here and taken into use after the roll.
    let streamFile: Awaited<ReturnType<StreamIndex['writeSealed']>> | null = null;
    try {
      await sealed.persistIndexes();
      if (this.streams !== null) streamFile = await this.streams.writeSealed(sealed);
      next = await Segment.create(
        this.fs,
        this.dir,
        sealed.nextOffset,
        this.config.indexIntervalBytes,
        this.clock.now(),
      );
    } catch (error) {
      await streamFile?.reader.close().catch(() => undefined);
      throw storageError(error, `rolling to a new segment at offset ${sealed.nextOffset}`);
    }
    this.segments.push(this.writable(next));
    if (streamFile !== null) this.streams!.commitSealed(streamFile);
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
    this.visibleOffset = last.lastOffset + 1n;
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const segment = this.segments[i]!;
      if (segment.visibleBytes === segment.size && segment.size > 0) break;
      segment.visibleBytes = segment.size;
    }
    if (this.listeners.size > 0) {
      const batches = group.map((p) => p.batch);
      for (const listener of this.listeners) listener(batches, this.visibleOffset);
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
    this.intervalSync = this.timedSync('interval')
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

  private segmentFor(offset: bigint): Segment | undefined {
    let lo = 0;
    let hi = this.segments.length - 1;
    let found: Segment | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const segment = this.segments[mid]!;
      if (segment.baseOffset <= offset) {
        found = segment;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  /** Whether `segment` is still one of this open log's segments (not deleted, replaced or closed). */
  private holds(segment: Segment): boolean {
    return this.state !== 'closed' && this.segmentFor(segment.baseOffset) === segment;
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
    const { highWatermark, logStartOffset } = this.readBounds(offset);
    const empty = { data: Buffer.alloc(0), nextOffset: offset, highWatermark, logStartOffset };
    const segment = offset === highWatermark ? null : this.segmentHolding(offset);
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
    const { chunk, position, at } = await this.chunkFrom(segment, offset, window, start, (at, length) =>
      segment.read(at, length),
    );
    const { end, lastStart } = frameBatches(chunk, at, maxBytes, position, segment);
    // A sequential reader will ask for the offset after these batches next: start reading its chunk
    // now, so the read overlaps the CRC checks below and whatever the caller does with this data.
    // The key comes from unverified bytes; if the checks end the read earlier, it is cancelled.
    let predicted: bigint | null = null;
    const limit = segment.visibleBytes;
    // Only for a segment still in the log: this read may have waited while retention deleted it.
    if (sequential && lastStart >= 0 && position + end < limit && this.holds(segment)) {
      predicted = lastOffsetOf(chunk, lastStart) + 1n;
      this.readAhead.start(predicted, segment, position + end, Math.min(limit - position - end, window));
    }
    let checked: { verified: number; lastVerified: number };
    try {
      checked = verifyBatches(chunk, at, end, this.corruptFrom, segment);
    } catch (error) {
      if (predicted !== null) this.readAhead.cancel(predicted);
      throw error;
    }
    const { verified, lastVerified } = checked;
    if (verified < end && predicted !== null) this.readAhead.cancel(predicted);
    if (lastVerified < 0) return { ...empty, data: chunk.subarray(at, at) };
    const nextOffset = lastOffsetOf(chunk, lastVerified) + 1n;
    this.readAhead.noteEnd(nextOffset);
    return { data: chunk.subarray(at, verified), nextOffset, highWatermark, logStartOffset };
  }

  /**
   * A sequential reader from `offset` that reads into two buffers of its own, reused from read to
   * read: what each `next()` returns is valid only until the next call (log-reader.ts). For replays
   * that look at the bytes and move on; a reader that keeps or hands on the bytes uses `read`.
   */
  reader(offset: bigint, maxBytes = 1024 * 1024): LogReader {
    const log = this;
    return new LogReader(
      {
        indexIntervalBytes: this.config.indexIntervalBytes,
        get corruptFrom() {
          return log.corruptFrom;
        },
        bounds: (at) => log.readBounds(at),
        segmentHolding: (at) => log.segmentHolding(at),
        holds: (segment) => log.holds(segment),
        chunkFrom: (segment, at, window, start, readAt) => log.chunkFrom(segment, at, window, start, readAt),
      },
      offset,
      maxBytes,
    );
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

  /**
   * The segment with the first visible batch at or past `offset` (the one holding it, or a later one
   * when its batches end earlier or compaction emptied it); null when there is none.
   */
  private segmentHolding(offset: bigint): Segment | null {
    let segment = this.segmentFor(offset);
    if (segment === undefined) return null;
    while (offset >= segment.nextOffset || segment.visibleBytes === 0) {
      const next: Segment | undefined = this.segments[this.segments.indexOf(segment) + 1];
      if (next === undefined) return null;
      segment = next;
    }
    return segment;
  }

  /**
   * A chunk of `segment` whose batch at `at` is the first that ends at or past `offset`, that batch
   * whole in it. Starts from `start` (bytes read ahead) or reads a window at the offset index's
   * position; `readAt` does every file read, so the caller chooses whose memory the bytes go to.
   */
  private async chunkFrom(
    segment: Segment,
    offset: bigint,
    window: number,
    start: { chunk: Buffer; position: number } | null,
    readAt: (position: number, length: number) => Promise<Buffer>,
  ): Promise<{ chunk: Buffer; position: number; at: number }> {
    const limit = segment.visibleBytes;
    let position = start?.position ?? segment.index.floorPosition(Number(offset - segment.baseOffset));
    let chunk = start?.chunk ?? (await readAt(position, Math.min(limit - position, window)));
    let at = 0;
    // Skip batches that end before `offset`.
    for (;;) {
      if (chunk.length - at < BATCH_HEADER_SIZE)
        throw errorOf('CORRUPT_DATA', `short batch at byte ${position + at} of ${segment.path('log')}`);
      const total = batchSpan(chunk, at, position, segment);
      if (lastOffsetOf(chunk, at) >= offset) break;
      at += total;
      if (at >= chunk.length) {
        position += at;
        at = 0;
        chunk = await readAt(position, Math.min(limit - position, window));
      }
    }
    // The first batch whole, even when it alone is larger than the window.
    const first = batchSpan(chunk, at, position, segment);
    if (at + first > chunk.length) {
      position += at;
      at = 0;
      chunk = await readAt(position, first);
    }
    return { chunk, position, at };
  }

  /** First offset whose batch has a timestamp at or after `timestamp`; the high watermark if none. */
  async offsetForTimestamp(timestamp: number): Promise<bigint> {
    for (const segment of this.segments) {
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
    let removed = 0;
    let size = this.sizeBytes;
    let count = 0;
    while (count < this.segments.length - 1) {
      const oldest = this.segments[count]!;
      const expired = this.config.retentionMs >= 0 && oldest.maxTimestamp < now - this.config.retentionMs;
      const oversized = this.config.retentionBytes >= 0 && size - oldest.size >= this.config.retentionBytes;
      if (!expired && !oversized) break;
      size -= oldest.size;
      count++;
    }
    // Step: the stream versions at the new log start are checkpointed before segments go.
    if (count > 0 && this.streams !== null)
      await this.streams.beforeRetention(this.segments.slice(0, count), this.segments[count]!.baseOffset);
    for (; removed < count; removed++) {
      const oldest = this.segments.shift()!;
      this.readAhead.dropSegment(oldest);
      await oldest.delete();
    }
    if (removed > 0) await this.fs.syncDirectory(this.dir);
    return removed;
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
    for (let i = 0; i < this.segments.length - 1; i++) {
      const segment = this.segments[i]!;
      total += segment.size;
      if (segment.nextOffset > this.cleanedThrough) dirty += segment.size;
    }
    return total === 0 ? 0 : dirty / total;
  }

  /** Subscribes to compaction's segment swaps (SegmentReplacedListener); returns the unsubscribe function. */
  onSegmentReplaced(listener: SegmentReplacedListener): () => void {
    this.segmentListeners.add(listener);
    return () => this.segmentListeners.delete(listener);
  }

  private async notifySegment(
    baseOffset: bigint,
    phase: 'replacing' | 'replaced' | 'removed',
  ): Promise<void> {
    for (const listener of this.segmentListeners) await listener({ baseOffset, phase });
  }

  private cleanerHost(): CleanerHost {
    const log = this;
    return {
      get logStartOffset() {
        return log.logStartOffset;
      },
      get cleanedThrough() {
        return log.cleanedThrough;
      },
      keepsEmpty: async (segment) => log.streams !== null && (await log.streams.holdsLastVersions(segment)),
      set cleanedThrough(offset: bigint) {
        log.cleanedThrough = offset;
      },
      async snapshot() {
        const segments = log.segments.slice();
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
      isCurrent: (segment) => log.segments.includes(segment) && segment !== log.active,
      replace: (old, cleaned) => log.replaceSegment(old, cleaned),
      stopping: () => log.stopMaintenance || log.state !== 'open',
    };
  }

  /**
   * The one place a sealed segment's file is replaced (compaction). Order, for crash safety
   * (docs/storage.md, "Compaction"): listeners invalidate derived files; the cleaned file, already
   * fdatasynced, is renamed over `<base>.log` (or the log file is unlinked) and the directory is
   * fsynced — the commit point; the old index files no longer match the log's size, so until the new
   * ones are written a restart rebuilds them by a scan. Readers holding the old segment finish on
   * the old file (its inode lives while open); it is closed when they are done.
   */
  private async replaceSegment(old: Segment, cleaned: Segment | null): Promise<void> {
    const at = this.segments.indexOf(old);
    if (at < 0 || at === this.segments.length - 1)
      throw errorOf('STORAGE_IO', `segment ${old.baseOffset} is not a sealed segment of ${this.dir}`);
    await this.notifySegment(old.baseOffset, 'replacing');
    const unlink = (path: string) =>
      this.fs.unlink(path).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
    const preparedStreams = `${old.path('streams')}${CLEANED_SUFFIX}`;
    let streams: PendingStreamReplacement | null = null;
    try {
      // From here the old files are not reopened by their paths (the cleaned copy is renamed over
      // them): reads holding the old segment finish on the old inode, or find it gone and look
      // the offset up again (open-files.ts, freeze).
      await old.freeze();
      await this.streams?.freezeSealed(old.baseOffset);
      // The segment's stream file, filtered to the records the cleaned copy keeps, is made durable
      // before the commit rename, so a crash on either side of it leaves a matching stream file.
      if (this.streams !== null && cleaned !== null) streams = await this.streams.prepareReplacement(cleaned);
      if (cleaned !== null) {
        // The old indexes go first, durably: a recompressed batch can come out larger than the
        // original, so the cleaned file's size could equal the old one and an old index (valid for
        // that size) would be trusted for the new bytes. Without them a crash here rebuilds by scan.
        await unlink(old.path('index'));
        await unlink(old.path('timeindex'));
        await this.fs.syncDirectory(this.dir);
        await cleaned.commitCleaned();
      } else {
        for (const extension of ['log', 'index', 'timeindex', 'streams'] as const)
          await unlink(old.path(extension));
      }
      await this.fs.syncDirectory(this.dir);
    } catch (error) {
      // Not committed: the old segment stays, and a prepared stream file must not outlive it (an
      // open would take it for a committed compaction's).
      if (this.streams !== null && cleaned !== null) await unlink(preparedStreams).catch(() => undefined);
      old.thaw();
      this.streams?.thawSealed(old.baseOffset);
      throw storageError(error, `replacing segment ${old.path('log')} by its compacted copy`);
    }
    if (cleaned !== null) this.segments[at] = cleaned;
    else this.segments.splice(at, 1);
    this.readAhead.dropSegment(old);
    void old.retire().catch(() => undefined);
    // Committed: what follows is derived state. A failure here must not make the swap look undone
    // (the cleaner would close the now live segment's file); the next open repairs it — it adopts a
    // prepared stream file left behind and rebuilds missing index files by a scan.
    try {
      if (this.streams !== null) {
        if (streams !== null) await this.streams.commitReplacement(streams);
        else if (cleaned === null) await this.streams.removeSealed(old.baseOffset);
      }
      if (cleaned !== null) await cleaned.persistIndexes();
      await this.notifySegment(old.baseOffset, cleaned !== null ? 'replaced' : 'removed');
    } catch {
      // Left to the next open, as above.
    }
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
    this.state = 'closed';
    for (const pending of this.pending) pending.reject(errorOf('PARTITION_CLOSED', this.dir));
    this.pending = [];
    if (wasOpen && this.config.durability !== 'never') await this.active.datasync().catch(() => undefined);
    this.readAhead.clear();
    for (const segment of this.segments) await segment.close();
    await this.streams?.close();
    this.listeners.clear();
  }
}
