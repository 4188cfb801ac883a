// Log compaction (`cleanup: compact`): keeps the latest record per key, drops tombstones after a
// delay, rewrites sealed segments one at a time while appends and reads go on. The partition log
// (partition-log.ts) owns the segments and the swap; this file decides what each sealed segment
// keeps and writes the cleaned copy. docs/storage.md ("Compaction") has the layout and the
// crash-safety argument.
//
// One pass:
//  1. Snapshot the segments and the high watermark after an fdatasync of the active segment (so
//     every record that can supersede an older one is durable: a power loss must not take the new
//     value after the cleaner removed the old one).
//  2. Offset map: key → offset of its latest record, over the dirty part of the log
//     [cleanedThrough, high watermark), active segment included, at most `maxMapEntries` keys; when
//     full the map covers [cleanedThrough, mapEnd) and the next pass goes on from there.
//  3. Clean the sealed segments from the log start whose records start below mapEnd and whose newest
//     timestamp is older than minCompactionLagMs, oldest first: a record is dropped when the map
//     holds a later offset for its key, or when it is a tombstone older than deleteRetentionMs that
//     nothing later supersedes and that lies below mapEnd. Each cleaned segment is written to
//     `<base>.log.cleaned`, fdatasynced, and swapped in by the log (rename, directory fsync).
// Oldest first matters: a tombstone is only dropped in a swap after the swaps that dropped the
// values it deleted, so any prefix of a pass's swaps (a crash) still shows the key as deleted.

import { crc32c } from '../protocol/crc32c.js';
import { errorOf } from '../protocol/error-codes.js';
import { forEachKey } from '../protocol/record-batch.js';
import {
  BATCH_CRC_START,
  BATCH_HEADER_SIZE,
  BATCH_LOG_OVERHEAD,
  BATCH_OFFSETS,
} from '../protocol/record-batch-layout.js';
import { isControlBatch, keyId, rebuildBatch, type StoredRecord, storedRecords } from './compaction-batch.js';
import type { Segment } from './segment.js';
import type { SegmentList } from './segment-list.js';

export interface CompactionOptions {
  /** Clock for tombstone expiry and the compaction lag (ms); defaults to the log's clock. */
  now?: number;
  /** Tombstones older than this (record timestamp) are dropped. Default 24 h, like Kafka's. */
  deleteRetentionMs?: number;
  /** Segments holding a record newer than this are not cleaned yet. Default 0. */
  minCompactionLagMs?: number;
  /** Keys in the offset map of one pass (memory bound: ~100 bytes a key). Default 1,000,000. */
  maxMapEntries?: number;
  /** Largest records section a compressed batch may inflate to. Default 64 MiB. */
  maxDecompressedBytes?: number;
}

export interface CompactionReport {
  passes: number;
  /** Sealed segments rewritten (or removed, when nothing was left in them). */
  segmentsCleaned: number;
  segmentsRemoved: number;
  /** Size of the cleaned segments before and after. */
  bytesBefore: number;
  bytesAfter: number;
  recordsRemoved: number;
  tombstonesRemoved: number;
  /** Offsets below this are clean: the next compaction's offset map starts here. */
  cleanedThrough: bigint;
}

export const DEFAULT_DELETE_RETENTION_MS = 24 * 3600 * 1000;
const DEFAULT_MAX_MAP_ENTRIES = 1_000_000;
const READ_CHUNK = 1024 * 1024;
const WRITE_CHUNK = 1024 * 1024;

/** What the cleaner needs of the partition log (implemented by PartitionLog). */
export interface CleanerHost {
  /** The log's segments: the cleaner swaps a sealed one for its cleaned copy through them. */
  readonly segments: SegmentList;
  /** First offset not known to be clean; kept in memory only (after an open everything is dirty). */
  cleanedThrough: bigint;
  /**
   * Segments oldest first (the active one last), each with the bytes to read of it, and the offset
   * bound of the data to consider: readable and durable.
   */
  snapshot(): Promise<{ segments: readonly Segment[]; readableBytes: readonly number[]; bound: bigint }>;
  /** True once the log is closing: stop between segments. */
  stopping(): boolean;
}

/** Whole, CRC-checked batches of `segment` from byte 0 to `limit`. */
async function* batchesOf(segment: Segment, limit: number): AsyncGenerator<Buffer> {
  let position = 0;
  while (position < limit) {
    let chunk = await segment.read(position, Math.min(READ_CHUNK, limit - position));
    let at = 0;
    for (;;) {
      if (chunk.length - at < BATCH_LOG_OVERHEAD) break;
      const total = chunk.readInt32BE(at + BATCH_OFFSETS.batchLength) + BATCH_LOG_OVERHEAD;
      if (total < BATCH_HEADER_SIZE || position + at + total > limit)
        throw errorOf(
          'CORRUPT_DATA',
          `batch at byte ${position + at} of ${segment.path('log')} declares ${total} bytes`,
        );
      if (at + total > chunk.length) {
        if (at > 0) break;
        // One batch larger than the chunk: read it whole.
        chunk = await segment.read(position, total);
      }
      const batch = chunk.subarray(at, at + total);
      if (crc32c(batch.subarray(BATCH_CRC_START)) !== batch.readUInt32BE(BATCH_OFFSETS.crc))
        throw errorOf(
          'CORRUPT_DATA',
          `batch at byte ${position + at} of ${segment.path('log')} fails its CRC`,
        );
      yield batch;
      at += total;
    }
    if (at === 0) throw errorOf('CORRUPT_DATA', `short batch at byte ${position} of ${segment.path('log')}`);
    position += at;
  }
}

function later(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

function earlier(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

function lastOffsetOf(batch: Buffer): bigint {
  return (
    batch.readBigInt64BE(BATCH_OFFSETS.baseOffset) + BigInt(batch.readInt32BE(BATCH_OFFSETS.lastOffsetDelta))
  );
}

export class LogCleaner {
  private readonly now: number;
  private readonly deleteRetentionMs: number;
  private readonly minCompactionLagMs: number;
  private readonly maxMapEntries: number;
  private readonly maxDecompressedBytes: number;
  private readonly report: CompactionReport;

  constructor(
    private readonly host: CleanerHost,
    options: CompactionOptions & { now: number },
  ) {
    this.now = options.now;
    this.deleteRetentionMs = options.deleteRetentionMs ?? DEFAULT_DELETE_RETENTION_MS;
    this.minCompactionLagMs = options.minCompactionLagMs ?? 0;
    this.maxMapEntries = Math.max(1, options.maxMapEntries ?? DEFAULT_MAX_MAP_ENTRIES);
    this.maxDecompressedBytes = options.maxDecompressedBytes ?? 64 * 1024 * 1024;
    this.report = {
      passes: 0,
      segmentsCleaned: 0,
      segmentsRemoved: 0,
      bytesBefore: 0,
      bytesAfter: 0,
      recordsRemoved: 0,
      tombstonesRemoved: 0,
      cleanedThrough: host.cleanedThrough,
    };
  }

  async run(): Promise<CompactionReport> {
    while (!this.host.stopping()) {
      this.report.passes++;
      if (!(await this.pass())) break;
    }
    this.report.cleanedThrough = this.host.cleanedThrough;
    return this.report;
  }

  /** One pass; true when the offset map was full and a further pass has work left. */
  private async pass(): Promise<boolean> {
    const { segments, readableBytes, bound } = await this.host.snapshot();
    const firstDirty = later(this.host.cleanedThrough, this.host.segments.first.baseOffset);
    // Key → offset of its latest record in [firstDirty, mapEnd).
    const latest = new Map<string, bigint>();
    // Producer id → base offset of its last batch: that batch is kept, even empty, so the
    // idempotence state rebuilt at open still knows the producer's last sequence.
    const lastBatchOf = new Map<bigint, bigint>();
    let mapEnd = bound;
    let full = false;
    for (let i = 0; i < segments.length; i++) {
      for await (const batch of batchesOf(segments[i]!, readableBytes[i]!)) {
        const base = batch.readBigInt64BE(BATCH_OFFSETS.baseOffset);
        if (base >= bound) break;
        const producerId = batch.readBigInt64BE(BATCH_OFFSETS.producerId);
        if (producerId >= 0n) lastBatchOf.set(producerId, base);
        if (full || lastOffsetOf(batch) < firstDirty || isControlBatch(batch)) continue;
        // Keys and offsets only: no record objects for the map (forEachKey walks the records).
        forEachKey(batch, { maxDecompressedBytes: this.maxDecompressedBytes }, (key, offsetDelta) => {
          const offset = base + BigInt(offsetDelta);
          if (full || offset < firstDirty || key === null) return;
          const id = keyId(key);
          if (!latest.has(id) && latest.size >= this.maxMapEntries) {
            full = true;
            mapEnd = offset;
            return;
          }
          latest.set(id, offset);
        });
      }
    }
    const horizon = this.now - this.minCompactionLagMs;
    const cleanable: Segment[] = [];
    for (let i = 0; i < segments.length - 1; i++) {
      const segment = segments[i]!;
      if (segment.baseOffset >= mapEnd || segment.maxTimestamp > horizon) break;
      cleanable.push(segment);
    }
    const tombstoneHorizon = this.now - this.deleteRetentionMs;
    const keep = (record: StoredRecord): 'keep' | 'superseded' | 'tombstone' => {
      if (record.key === null) return 'keep';
      const newest = latest.get(keyId(record.key));
      if (newest !== undefined && newest > record.offset) return 'superseded';
      if (record.tombstone && record.offset < mapEnd && record.timestamp <= tombstoneHorizon)
        return 'tombstone';
      return 'keep';
    };
    for (const segment of cleanable) {
      if (this.host.stopping()) return false;
      if (!this.host.segments.isSealed(segment)) continue;
      const end = segment.nextOffset;
      await this.clean(segment, keep, lastBatchOf);
      const through = earlier(end, mapEnd);
      if (through > this.host.cleanedThrough) this.host.cleanedThrough = through;
    }
    return full && this.host.cleanedThrough > firstDirty;
  }

  /** Writes the cleaned copy of one sealed segment and has the log swap it in (when anything changed). */
  private async clean(
    segment: Segment,
    keep: (record: StoredRecord) => 'keep' | 'superseded' | 'tombstone',
    lastBatchOf: ReadonlyMap<bigint, bigint>,
  ): Promise<void> {
    const cleaned = await segment.createCleaned();
    let committed = false;
    try {
      let changed = false;
      let removed = 0;
      let tombstones = 0;
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      const flush = async (): Promise<void> => {
        if (pending.length === 0) return;
        const position = cleaned.size;
        await cleaned.write(pending, position);
        let at = position;
        for (const batch of pending) {
          cleaned.track(
            at,
            batch.length,
            lastOffsetOf(batch),
            Number(batch.readBigInt64BE(BATCH_OFFSETS.maxTimestamp)),
          );
          at += batch.length;
        }
        cleaned.size = at;
        pending = [];
        pendingBytes = 0;
      };
      for await (const batch of batchesOf(segment, segment.size)) {
        let out: Buffer | null = batch;
        if (!isControlBatch(batch)) {
          const records = storedRecords(batch, this.maxDecompressedBytes);
          const kept: StoredRecord[] = [];
          for (const record of records) {
            const verdict = keep(record);
            if (verdict === 'keep') kept.push(record);
            else if (verdict === 'tombstone') tombstones++;
            else removed++;
          }
          if (kept.length < records.length || kept.length === 0) {
            const producerId = batch.readBigInt64BE(BATCH_OFFSETS.producerId);
            const producersLast =
              producerId >= 0n &&
              lastBatchOf.get(producerId) === batch.readBigInt64BE(BATCH_OFFSETS.baseOffset);
            if (kept.length > 0 || producersLast) {
              if (kept.length < records.length) {
                out = rebuildBatch(batch, kept);
                changed = true;
              }
            } else {
              out = null;
              changed = true;
            }
          }
        }
        if (out === null) continue;
        pending.push(out);
        pendingBytes += out.length;
        if (pendingBytes >= WRITE_CHUNK) await flush();
      }
      await flush();
      if (!changed) return;
      this.report.segmentsCleaned++;
      this.report.bytesBefore += segment.size;
      this.report.bytesAfter += cleaned.size;
      this.report.recordsRemoved += removed + tombstones;
      this.report.tombstonesRemoved += tombstones;
      // An emptied segment goes, except the first (the log start offset stays where it was, so a
      // consumer's committed offset inside it still reads on from the next record) and except in a
      // segment whose stream file holds the only record of a key's version.
      if (
        cleaned.size === 0 &&
        segment.baseOffset !== this.host.segments.first.baseOffset &&
        !(await this.host.segments.keepsEmpty(segment))
      ) {
        committed = true;
        await cleaned.discardCleaned();
        await this.host.segments.replace(segment, null);
        this.report.segmentsRemoved++;
        return;
      }
      await cleaned.datasync();
      cleaned.visibleBytes = cleaned.size;
      await this.host.segments.replace(segment, cleaned);
      committed = true;
    } finally {
      if (!committed) await cleaned.discardCleaned();
    }
  }
}
