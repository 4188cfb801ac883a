// One segment of a partition log: the `<base offset>.log` file of whole record batches and its two
// sparse indexes. Knows how to append bookkeeping, read byte ranges, scan and verify its batches,
// and persist its indexes. Decides nothing about rolling, durability or retention (partition-log.ts).
// Its log file is a CachedFile (open-files.ts): every use leases it, so an idle segment's descriptor
// can be closed under the process-wide cap and is reopened by its next use.

import { join } from 'node:path';
import { crc32cRange } from '../protocol/crc32c.js';
import { errorOf } from '../protocol/error-codes.js';
import {
  BATCH_CRC_START,
  BATCH_HEADER_SIZE,
  BATCH_LOG_OVERHEAD,
  BATCH_MAGIC,
  BATCH_OFFSETS,
} from '../protocol/record-batch-layout.js';
import { wholeBatches } from './batch-chunk.js';
import { OffsetIndex, TimeIndex } from './offset-index.js';
import { CachedFile } from './open-files.js';
import type { StorageFile, StorageFs } from './storage-fs.js';

/** Segment files are named by their base offset, zero-padded to 20 digits so names sort as numbers. */
export function segmentFileName(
  baseOffset: bigint,
  extension: 'log' | 'index' | 'timeindex' | 'streams',
): string {
  return `${baseOffset.toString().padStart(20, '0')}.${extension}`;
}

/** Suffix of a segment file being written by the log cleaner; renamed over the segment to commit. */
export const CLEANED_SUFFIX = '.cleaned';

export function parseSegmentFileName(name: string): bigint | null {
  const match = /^(\d{20})\.log$/.exec(name);
  return match ? BigInt(match[1]!) : null;
}

/** Why a scan stopped before the end of the file. */
export interface ScanStop {
  position: number;
  offset: bigint;
  reason: string;
}

export interface ScanResult {
  /** Bytes of valid, contiguous batches from the start of the file. */
  validBytes: number;
  nextOffset: bigint;
  maxTimestamp: number;
  stop: ScanStop | null;
}

const SCAN_CHUNK = 1024 * 1024;

export class Segment {
  readonly baseOffset: bigint;
  readonly dir: string;
  /** Bytes written to the file (all of them whole batches). */
  size = 0;
  /** Bytes readers may see: up to the high watermark. */
  visibleBytes = 0;
  /** Offset after the last batch written. */
  nextOffset: bigint;
  maxTimestamp = Number.NEGATIVE_INFINITY;
  /** When this segment took its first batch (ms), for rolling by age. */
  createdAt: number;
  index = new OffsetIndex();
  timeIndex = new TimeIndex();
  private bytesSinceIndexEntry = 0;
  private deleted = false;
  /**
   * Set by a log whose durability syncs what it wrote (`always`, `interval`): the file then stays
   * open (leased) from a write until an fdatasync that began after it, so the sync runs on the
   * descriptor the bytes were written through and the cap cannot close the file in between.
   */
  holdUntilSynced = false;
  private heldForSync = false;
  /** Writes so far; a sync releases the hold only when no write came after it began. */
  private writes = 0;

  private constructor(
    dir: string,
    baseOffset: bigint,
    /** The `.log` file (or, for a compacted copy before its commit, the `.log.cleaned` file). */
    private readonly file: CachedFile,
    private readonly fs: StorageFs,
    private readonly indexIntervalBytes: number,
    now: number,
  ) {
    this.dir = dir;
    this.baseOffset = baseOffset;
    this.nextOffset = baseOffset;
    this.createdAt = now;
  }

  static async create(
    fs: StorageFs,
    dir: string,
    baseOffset: bigint,
    indexIntervalBytes: number,
    now: number,
  ): Promise<Segment> {
    const file = await CachedFile.open(fs, join(dir, segmentFileName(baseOffset, 'log')), 'create');
    try {
      await file.with((handle) => handle.truncate(0));
      await fs.syncDirectory(dir);
    } catch (error) {
      // A roll that fails here is retried by the next append: leave no handle behind each try.
      await file.dispose();
      throw error;
    }
    return new Segment(dir, baseOffset, file, fs, indexIntervalBytes, now);
  }

  /**
   * A new, empty `<base>.log.cleaned` that will replace this sealed segment (log-cleaner.ts). Its
   * `path('log')` is the segment's own name: `commitCleaned` renames the file there.
   */
  async createCleaned(): Promise<Segment> {
    const file = await CachedFile.open(this.fs, `${this.path('log')}${CLEANED_SUFFIX}`, 'create');
    try {
      await file.with((handle) => handle.truncate(0));
    } catch (error) {
      await file.dispose();
      throw error;
    }
    return new Segment(this.dir, this.baseOffset, file, this.fs, this.indexIntervalBytes, this.createdAt);
  }

  /** Renames the cleaned file over the segment's log file (not yet durable: sync the directory). */
  async commitCleaned(): Promise<void> {
    await this.fs.rename(`${this.path('log')}${CLEANED_SUFFIX}`, this.path('log'));
    this.file.renamed(this.path('log'));
  }

  /** Closes and unlinks a cleaned file that will not be committed. */
  async discardCleaned(): Promise<void> {
    await this.file.dispose();
    await this.fs.unlink(`${this.path('log')}${CLEANED_SUFFIX}`).catch(() => undefined);
  }

  static async openExisting(
    fs: StorageFs,
    dir: string,
    baseOffset: bigint,
    indexIntervalBytes: number,
    now: number,
  ): Promise<Segment> {
    const file = await CachedFile.open(fs, join(dir, segmentFileName(baseOffset, 'log')), 'read-write');
    const segment = new Segment(dir, baseOffset, file, fs, indexIntervalBytes, now);
    try {
      segment.size = await file.with((handle) => handle.size());
    } catch (error) {
      await file.dispose();
      throw error;
    }
    return segment;
  }

  path(extension: 'log' | 'index' | 'timeindex' | 'streams'): string {
    return join(this.dir, segmentFileName(this.baseOffset, extension));
  }

  /** Bookkeeping for a batch written at `position`: indexes, next offset, timestamps. */
  track(position: number, length: number, lastOffset: bigint, maxTimestamp: number): void {
    const relativeOffset = Number(lastOffset - this.baseOffset);
    if (this.index.count === 0 || this.bytesSinceIndexEntry >= this.indexIntervalBytes) {
      // The entry names the batch's first offset and points at its start: a floor lookup for any
      // later offset lands at or before the batch that holds it.
      this.index.add(Number(this.nextOffset - this.baseOffset), position);
      this.bytesSinceIndexEntry = 0;
    }
    this.bytesSinceIndexEntry += length;
    if (maxTimestamp > this.timeIndex.lastTimestamp)
      this.timeIndex.add(maxTimestamp, Number(this.nextOffset - this.baseOffset));
    if (maxTimestamp > this.maxTimestamp) this.maxTimestamp = maxTimestamp;
    this.nextOffset = this.baseOffset + BigInt(relativeOffset) + 1n;
  }

  /**
   * Reads and verifies batches from the start of the file, rebuilding the indexes. Stops at the
   * first batch that is torn, fails its CRC, or breaks offset order: each batch must start where
   * the previous one ended, or — with `allowGaps`, for sealed segments, which the log cleaner may
   * have rewritten without some batches — anywhere after that.
   */
  async scan(allowGaps = false): Promise<ScanResult> {
    this.index = new OffsetIndex();
    this.timeIndex = new TimeIndex();
    this.bytesSinceIndexEntry = 0;
    this.nextOffset = this.baseOffset;
    this.maxTimestamp = Number.NEGATIVE_INFINITY;
    // Leased for the whole scan: its reads overlap (one runs ahead), all on this one file.
    return this.file.with((file) => this.scanFile(file, allowGaps));
  }

  private async scanFile(file: StorageFile, allowGaps: boolean): Promise<ScanResult> {
    const fileSize = await file.size();
    let chunk = Buffer.allocUnsafe(SCAN_CHUNK);
    // The next chunk is read into `spare` while this one's CRCs are checked (the read runs on the
    // threadpool), starting where this chunk's whole batches end by their length fields. It is used
    // when the checks end there too; otherwise (a problem, or a batch larger than the chunk) it is
    // awaited and dropped.
    let spare = Buffer.allocUnsafe(SCAN_CHUNK);
    let ahead: { position: number; read: Promise<number> } | null = null;
    let position = 0;
    let stop: ScanStop | null = null;
    while (position < fileSize) {
      let read: number;
      if (ahead !== null && ahead.position === position) {
        read = await ahead.read;
        [chunk, spare] = [spare, chunk];
      } else {
        if (ahead !== null) await ahead.read.catch(() => 0);
        read = await file.read(chunk, 0, Math.min(chunk.length, fileSize - position), position);
      }
      ahead = null;
      const wholeEnd = wholeBatches(chunk.subarray(0, read), 0, Number.POSITIVE_INFINITY).end;
      if (wholeEnd > 0 && position + wholeEnd < fileSize) {
        const nextPosition: number = position + wholeEnd;
        const pending: Promise<number> = file.read(
          spare,
          0,
          Math.min(spare.length, fileSize - nextPosition),
          nextPosition,
        );
        // Handled now, so a failure of a read nobody ends up using is not an unhandled rejection.
        pending.catch(() => undefined);
        ahead = { position: nextPosition, read: pending };
      }
      let at = 0;
      let needMore = false;
      while (at < read) {
        if (read - at < BATCH_HEADER_SIZE) {
          needMore = true;
          break;
        }
        const total = chunk.readInt32BE(at + BATCH_OFFSETS.batchLength) + BATCH_LOG_OVERHEAD;
        const problem = this.checkBatch(chunk, at, read, total, fileSize - position - at, allowGaps);
        if (problem === 'need-more') {
          needMore = true;
          break;
        }
        if (problem !== null) {
          stop = { position: position + at, offset: this.nextOffset, reason: problem };
          break;
        }
        const lastOffset =
          chunk.readBigInt64BE(at + BATCH_OFFSETS.baseOffset) +
          BigInt(chunk.readInt32BE(at + BATCH_OFFSETS.lastOffsetDelta));
        this.track(
          position + at,
          total,
          lastOffset,
          Number(chunk.readBigInt64BE(at + BATCH_OFFSETS.maxTimestamp)),
        );
        at += total;
      }
      if (stop !== null) break;
      if (needMore && at === 0) {
        // One batch larger than the chunk: grow the chunk to hold it.
        const total = chunk.readInt32BE(BATCH_OFFSETS.batchLength) + BATCH_LOG_OVERHEAD;
        if (read < BATCH_HEADER_SIZE || total <= chunk.length) {
          stop = { position, offset: this.nextOffset, reason: 'torn batch at the end of the file' };
          break;
        }
        chunk = Buffer.allocUnsafe(total);
        continue;
      }
      position += at;
    }
    if (ahead !== null) await ahead.read.catch(() => 0);
    const validBytes = stop === null ? fileSize : stop.position;
    return { validBytes, nextOffset: this.nextOffset, maxTimestamp: this.maxTimestamp, stop };
  }

  /** null when the batch at `at` is valid; 'need-more' when it continues past the chunk; else why not. */
  private checkBatch(
    chunk: Buffer,
    at: number,
    read: number,
    total: number,
    leftInFile: number,
    allowGaps: boolean,
  ): string | null {
    if (total < BATCH_HEADER_SIZE) return `batch length ${total} is below the header size`;
    if (total > leftInFile) return 'torn batch at the end of the file';
    if (at + total > read) return 'need-more';
    if (chunk.readInt8(at + BATCH_OFFSETS.magic) !== BATCH_MAGIC) return 'bad magic';
    if (crc32cRange(chunk, at + BATCH_CRC_START, at + total) !== chunk.readUInt32BE(at + BATCH_OFFSETS.crc)) {
      return 'CRC mismatch';
    }
    const baseOffset = chunk.readBigInt64BE(at + BATCH_OFFSETS.baseOffset);
    if (allowGaps ? baseOffset < this.nextOffset : baseOffset !== this.nextOffset)
      return `base offset ${baseOffset} where ${this.nextOffset} was expected`;
    const lastOffsetDelta = chunk.readInt32BE(at + BATCH_OFFSETS.lastOffsetDelta);
    if (lastOffsetDelta < 0) return `negative lastOffsetDelta ${lastOffsetDelta}`;
    return null;
  }

  /**
   * Loads persisted indexes when they describe exactly this file; false when they are missing,
   * corrupt or stale (then the caller scans).
   */
  async loadIndexes(): Promise<boolean> {
    try {
      const offsetBytes = await this.fs.readFile(this.path('index'));
      const timeBytes = await this.fs.readFile(this.path('timeindex'));
      const index = OffsetIndex.decode(offsetBytes, this.size);
      const timeIndex = TimeIndex.decode(timeBytes, this.size);
      if (index === null || timeIndex === null || this.size === 0) return false;
      this.index = index;
      this.timeIndex = timeIndex;
      this.maxTimestamp = timeIndex.lastTimestamp;
      this.nextOffset = await this.file.with((file) => this.readNextOffset(file));
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    }
  }

  /** The offset after the last batch, found by walking from the last index entry. */
  private async readNextOffset(file: StorageFile): Promise<bigint> {
    let position = this.index.floorPosition(0xffffffff);
    let next = this.baseOffset;
    const header = Buffer.allocUnsafe(BATCH_HEADER_SIZE);
    while (position < this.size) {
      const read = await file.read(header, 0, BATCH_HEADER_SIZE, position);
      if (read < BATCH_HEADER_SIZE) break;
      next =
        header.readBigInt64BE(BATCH_OFFSETS.baseOffset) +
        BigInt(header.readInt32BE(BATCH_OFFSETS.lastOffsetDelta)) +
        1n;
      position += header.readInt32BE(BATCH_OFFSETS.batchLength) + BATCH_LOG_OVERHEAD;
    }
    return next;
  }

  /** Calls `visit` with the base offset and leader epoch of every batch, in file order (headers only). */
  async forEachBatchHeader(visit: (baseOffset: bigint, leaderEpoch: number) => void): Promise<void> {
    const header = Buffer.allocUnsafe(BATCH_HEADER_SIZE);
    let position = 0;
    while (position < this.visibleBytes) {
      const read = await this.file.with((file) => file.read(header, 0, BATCH_HEADER_SIZE, position));
      if (read < BATCH_HEADER_SIZE) return;
      visit(
        header.readBigInt64BE(BATCH_OFFSETS.baseOffset),
        header.readInt32BE(BATCH_OFFSETS.partitionLeaderEpoch),
      );
      position += header.readInt32BE(BATCH_OFFSETS.batchLength) + BATCH_LOG_OVERHEAD;
    }
  }

  /** Writes both index files durably (temporary name, fdatasync, rename). */
  async persistIndexes(): Promise<void> {
    for (const [extension, data] of [
      ['index', this.index.encode(this.size)],
      ['timeindex', this.timeIndex.encode(this.size)],
    ] as const) {
      const path = this.path(extension);
      await this.fs.writeFile(`${path}.tmp`, data);
      await this.fs.rename(`${path}.tmp`, path);
    }
    await this.fs.syncDirectory(this.dir);
  }

  async truncateTo(bytes: number, nextOffset: bigint): Promise<void> {
    await this.file.with((file) => file.truncate(bytes));
    this.size = bytes;
    this.visibleBytes = Math.min(this.visibleBytes, bytes);
    this.index.truncateToPosition(bytes);
    this.timeIndex.truncateToOffset(Number(nextOffset - this.baseOffset));
    this.nextOffset = nextOffset;
    // The time index keeps an entry whenever the largest timestamp grows: its last kept entry is
    // the largest timestamp of the batches kept.
    this.maxTimestamp = this.timeIndex.lastTimestamp;
  }

  /**
   * Where the batch starting at `offset` starts in the file (the file's size for the offset after
   * the last batch), and the offset after the batch before it. TRUNCATION_INSIDE_BATCH when no batch
   * starts there (the offset is inside one, or in a gap compaction left).
   */
  async batchStart(offset: bigint): Promise<{ position: number; previousEnd: bigint }> {
    // From an index entry strictly before `offset`, so that the batch before it is walked too.
    const relative = Number(offset - this.baseOffset);
    let position = relative > 0 ? this.index.floorPosition(relative - 1) : 0;
    let previousEnd = this.baseOffset;
    const header = Buffer.allocUnsafe(BATCH_HEADER_SIZE);
    while (position < this.size) {
      const read = await this.file.with((file) => file.read(header, 0, BATCH_HEADER_SIZE, position));
      if (read < BATCH_HEADER_SIZE) break;
      const base = header.readBigInt64BE(BATCH_OFFSETS.baseOffset);
      const last = base + BigInt(header.readInt32BE(BATCH_OFFSETS.lastOffsetDelta));
      if (base === offset) return { position, previousEnd };
      if (base > offset) break;
      if (last >= offset)
        throw errorOf('TRUNCATION_INSIDE_BATCH', `offset ${offset} is inside the batch ${base}..${last}`);
      previousEnd = last + 1n;
      position += header.readInt32BE(BATCH_OFFSETS.batchLength) + BATCH_LOG_OVERHEAD;
    }
    if (position >= this.size && offset === this.nextOffset)
      return { position: this.size, previousEnd: offset };
    throw errorOf('TRUNCATION_INSIDE_BATCH', `no batch of ${this.path('log')} starts at offset ${offset}`);
  }

  /** Reads `length` bytes at `position` while holding the segment open against deletion. */
  read(position: number, length: number): Promise<Buffer> {
    return this.readInto(Buffer.allocUnsafe(length), position, length);
  }

  /**
   * Reads `length` bytes at `position` into `target` from byte `at` on, while holding the segment
   * open against deletion; returns target[0, at + bytes read) (shorter at the end of the file).
   * An open file is leased without a promise of its own; a closed one is reopened first.
   */
  async readInto(target: Buffer, position: number, length: number, at = 0): Promise<Buffer> {
    const file = this.file.tryLease() ?? (await this.file.lease());
    try {
      const read = await file.read(target, at, length, position);
      return at + read === target.length ? target : target.subarray(0, at + read);
    } finally {
      this.file.release();
    }
  }

  /**
   * Positioned gather write of whole batches; on failure cuts the file back to `position`, unless
   * `cutBack` is false (a log with several writes in flight cuts once they have all ended).
   */
  async write(buffers: Buffer[], position: number, cutBack = true): Promise<void> {
    const file = this.file.tryLease() ?? (await this.file.lease());
    this.writes++;
    try {
      await file.writev(buffers, position);
    } catch (error) {
      // Cut back whatever part of the write landed, so the file ends on a whole batch again.
      if (cutBack) await file.truncate(position).catch(() => undefined);
      throw error;
    } finally {
      this.endWrite();
    }
  }

  /**
   * The same write made synchronously, in line (into the page cache): false, having written
   * nothing, when the file is not open now (reopening it takes the thread pool); throws the file
   * system's error, with part of the write possibly landed (`cutBack` then).
   */
  writeInline(buffers: Buffer[], position: number): boolean {
    const file = this.file.tryLease();
    if (file === null) return false;
    this.writes++;
    try {
      file.writevSync(buffers, position);
      return true;
    } finally {
      this.endWrite();
    }
  }

  /** Cuts the file back to `position` after a failed write (a failure to cut is left to recovery). */
  async cutBack(position: number): Promise<void> {
    await this.file.with((file) => file.truncate(position)).catch(() => undefined);
  }

  /** A write's lease becomes the hold until the next sync (one hold at most). */
  private endWrite(): void {
    if (this.holdUntilSynced && !this.heldForSync) this.heldForSync = true;
    else this.file.release();
  }

  /** fdatasync of the log file (reopened when it was evicted: the kernel syncs the inode's pages). */
  async datasync(): Promise<void> {
    const file = this.file.tryLease() ?? (await this.file.lease());
    const writes = this.writes;
    try {
      await file.datasync();
      if (this.heldForSync && this.writes === writes) {
        this.heldForSync = false;
        this.file.release();
      }
    } finally {
      this.file.release();
    }
  }

  /** Whether the log file is open now (for tests: an idle segment's file may be closed). */
  get fileOpen(): boolean {
    return this.file.isOpen;
  }

  /**
   * Before another file is renamed over this segment's (a compacted copy) or it is unlinked: it is
   * not reopened by its path again; reads that hold it finish on the old file (open-files.ts).
   */
  freeze(): Promise<void> {
    return this.file.freeze();
  }

  /** Undoes `freeze` (the replacement failed). */
  thaw(): void {
    this.file.thaw();
  }

  /** Closes the file once no use holds it; a later use fails with FileRetiredError. */
  close(): Promise<void> {
    this.dropSyncHold();
    return this.file.dispose();
  }

  /** A failed or closing log syncs no more: the hold of written bytes ends. */
  private dropSyncHold(): void {
    if (!this.heldForSync) return;
    this.heldForSync = false;
    this.file.release();
  }

  /** Closes the file of a segment the log cleaner replaced, once no read holds it. */
  retire(): Promise<void> {
    return this.file.dispose();
  }

  /** Deletes the segment's files (retention); reads in flight finish first. */
  async delete(): Promise<void> {
    if (this.deleted) return;
    this.deleted = true;
    await this.freeze();
    await this.close();
    for (const extension of ['log', 'index', 'timeindex', 'streams'] as const) {
      try {
        await this.fs.unlink(this.path(extension));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
  }
}
