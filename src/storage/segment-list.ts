// The ordered segments of one partition log, shared by the log (appends, rolls, truncation), its
// readers (log-reader.ts) and its cleaner (log-cleaner.ts): lookup by offset, the roll to a new
// segment, and every change of the list that replaces or removes files — retention, compaction's
// swap, truncation — each ordered for crash safety (docs/storage.md). Knows nothing of durability
// policies, visibility or appends (partition-log.ts).

import { errorOf } from '../protocol/error-codes.js';
import { BATCH_HEADER_SIZE } from '../protocol/record-batch-layout.js';
import { batchSpan, lastOffsetOf } from './batch-chunk.js';
import type { ReadAhead } from './read-ahead.js';
import { CLEANED_SUFFIX, Segment } from './segment.js';
import { storageError } from './storage-error.js';
import type { StorageFs } from './storage-fs.js';
import type { PendingStreamReplacement, StreamIndex } from './stream-index.js';

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

/** Unlinks a file that may already be gone. */
export function unlinkIfPresent(fs: StorageFs, path: string): Promise<void> {
  return fs.unlink(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}

export class SegmentList {
  private list: Segment[] = [];
  /** Offsets at or past this are corrupt and never served (recovery found a bad sealed batch). */
  corruptFrom: bigint | null = null;
  /**
   * In a replicated log, the offset readers stop at (the high watermark, at a batch boundary): the
   * bytes written past it are in the files already. Null when readers may see every written byte.
   */
  visibleLimit: bigint | null = null;
  /** Set when the log closes: no segment is held any more. */
  closed = false;
  /**
   * Bumped by every truncation: bytes read before it past the new end may since have been
   * rewritten, so a reader holding a chunk from an older generation reads it again.
   */
  generation = 0;
  private readonly replacedListeners = new Set<SegmentReplacedListener>();

  constructor(
    private readonly fs: StorageFs,
    readonly dir: string,
    readonly indexIntervalBytes: number,
    private readonly streams: StreamIndex | null,
    private readonly readAhead: ReadAhead,
  ) {}

  /** Oldest first; the last one is the active segment. */
  get all(): readonly Segment[] {
    return this.list;
  }

  get count(): number {
    return this.list.length;
  }

  get first(): Segment {
    return this.list[0]!;
  }

  get active(): Segment {
    return this.list[this.list.length - 1]!;
  }

  get sizeBytes(): number {
    let total = 0;
    for (const segment of this.list) total += segment.size;
    return total;
  }

  /** Readers serve no batch starting at or past this: corruption, or a replicated high watermark. */
  get servedBelow(): bigint | null {
    const corrupt = this.corruptFrom;
    const limit = this.visibleLimit;
    if (corrupt === null) return limit;
    return limit === null || corrupt < limit ? corrupt : limit;
  }

  /** Recovery adds the segments it opened, oldest first. */
  push(segment: Segment): void {
    this.list.push(segment);
  }

  /** The segment whose base offset is the largest at or below `offset`. */
  segmentFor(offset: bigint): Segment | undefined {
    let lo = 0;
    let hi = this.list.length - 1;
    let found: Segment | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const segment = this.list[mid]!;
      if (segment.baseOffset <= offset) {
        found = segment;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  /**
   * The segment with the first visible batch at or past `offset` (the one holding it, or a later one
   * when its batches end earlier or compaction emptied it); null when there is none.
   */
  holding(offset: bigint): Segment | null {
    let segment = this.segmentFor(offset);
    if (segment === undefined) return null;
    while (offset >= segment.nextOffset || segment.visibleBytes === 0) {
      const next: Segment | undefined = this.list[this.list.indexOf(segment) + 1];
      if (next === undefined) return null;
      segment = next;
    }
    return segment;
  }

  /** Whether `segment` is still one of this open log's segments (not deleted, replaced or closed). */
  holds(segment: Segment): boolean {
    return !this.closed && this.segmentFor(segment.baseOffset) === segment;
  }

  /** Whether `segment` is one of the sealed segments (the cleaner may replace it). */
  isSealed(segment: Segment): boolean {
    return this.list.includes(segment) && segment !== this.active;
  }

  /**
   * A chunk of `segment` whose batch at `at` is the first that ends at or past `offset`, that batch
   * whole in it. Starts from `start` (bytes read ahead) or reads a window at the offset index's
   * position; `readAt` does every file read, so the caller chooses whose memory the bytes go to.
   */
  async chunkFrom(
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

  /**
   * Seals the active segment, which the caller has fdatasynced: writes its indexes (and its stream
   * file) durably and starts a new segment after it. Disk full here is the same typed, retriable
   * failure as during a write: nothing changes in the list, and the next append retries the roll.
   */
  async roll(now: number, holdUntilSynced: boolean): Promise<Segment> {
    const sealed = this.active;
    // Step: the sealed segment's stream file, written here and taken into use after the roll.
    let streamFile: Awaited<ReturnType<StreamIndex['writeSealed']>> | null = null;
    let next: Segment;
    try {
      await sealed.persistIndexes();
      if (this.streams !== null) streamFile = await this.streams.writeSealed(sealed);
      next = await Segment.create(this.fs, this.dir, sealed.nextOffset, this.indexIntervalBytes, now);
    } catch (error) {
      await streamFile?.reader.close().catch(() => undefined);
      throw error;
    }
    next.holdUntilSynced = holdUntilSynced;
    this.list.push(next);
    if (streamFile !== null) this.streams!.commitSealed(streamFile);
    return sealed;
  }

  /**
   * Retention: deletes the `count` oldest segments (never the active one). The stream versions at
   * the new log start are checkpointed before any file goes.
   */
  async removeOldest(count: number): Promise<void> {
    if (count <= 0) return;
    if (count >= this.list.length) throw errorOf('STORAGE_IO', `retention may not delete the active segment`);
    if (this.streams !== null)
      await this.streams.beforeRetention(this.list.slice(0, count), this.list[count]!.baseOffset);
    for (let removed = 0; removed < count; removed++) {
      const oldest = this.list.shift()!;
      this.readAhead.dropSegment(oldest);
      await oldest.delete();
    }
    await this.fs.syncDirectory(this.dir);
  }

  /** Subscribes to compaction's segment swaps (SegmentReplacedListener); returns the unsubscribe function. */
  onReplaced(listener: SegmentReplacedListener): () => void {
    this.replacedListeners.add(listener);
    return () => this.replacedListeners.delete(listener);
  }

  private async notifyReplaced(
    baseOffset: bigint,
    phase: 'replacing' | 'replaced' | 'removed',
  ): Promise<void> {
    for (const listener of this.replacedListeners) await listener({ baseOffset, phase });
  }

  /** True when an emptied segment still carries stream state and is kept, empty (log-cleaner.ts). */
  async keepsEmpty(segment: Segment): Promise<boolean> {
    return this.streams !== null && (await this.streams.holdsLastVersions(segment));
  }

  /**
   * The one place a sealed segment's file is replaced (compaction). Order, for crash safety
   * (docs/storage.md, "Compaction"): listeners invalidate derived files; the cleaned file, already
   * fdatasynced, is renamed over `<base>.log` (or the log file is unlinked) and the directory is
   * fsynced — the commit point; the old index files no longer match the log's size, so until the new
   * ones are written a restart rebuilds them by a scan. Readers holding the old segment finish on
   * the old file (its inode lives while open); it is closed when they are done.
   */
  async replace(old: Segment, cleaned: Segment | null): Promise<void> {
    const at = this.list.indexOf(old);
    if (at < 0 || at === this.list.length - 1)
      throw errorOf('STORAGE_IO', `segment ${old.baseOffset} is not a sealed segment of ${this.dir}`);
    await this.notifyReplaced(old.baseOffset, 'replacing');
    const unlink = (path: string) => unlinkIfPresent(this.fs, path);
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
    if (cleaned !== null) this.list[at] = cleaned;
    else this.list.splice(at, 1);
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
      await this.notifyReplaced(old.baseOffset, cleaned !== null ? 'replaced' : 'removed');
    } catch {
      // Left to the next open, as above.
    }
  }

  /**
   * Removes every batch at or past `offset` (≥ the log start), which must be where a batch starts or
   * the log end (TRUNCATION_INSIDE_BATCH otherwise, before anything changes). Returns the new log
   * end: `offset`, or the end of the last batch kept when compaction removed the ones just before.
   *
   * Crash safety: the segment holding `offset` is found and checked first. Then the segments after
   * it go newest first, each durably (directory fsync) before the next, so a crash leaves the
   * segments of a prefix of the log: the holder is then the last segment, which recovery always
   * scans. Then the holder's derived files (indexes, stream file: it is the active segment again)
   * go, and its file is cut at the batch boundary and fdatasynced. A crash anywhere recovers to a
   * prefix of the log that ends at or after `offset`, never to a hole.
   */
  async truncateFrom(offset: bigint, holdUntilSynced: boolean): Promise<bigint> {
    const holder = this.segmentFor(offset) ?? this.first;
    const { position, previousEnd } = await holder.batchStart(offset);
    this.generation++;
    while (this.active !== holder) {
      const last = this.list.pop()!;
      this.readAhead.dropSegment(last);
      await last.delete();
      await this.fs.syncDirectory(this.dir);
    }
    for (const extension of ['index', 'timeindex', 'streams'] as const)
      await unlinkIfPresent(this.fs, holder.path(extension));
    await this.fs.syncDirectory(this.dir);
    this.readAhead.dropSegment(holder);
    if (position < holder.size) {
      await holder.truncateTo(position, previousEnd);
      await holder.datasync();
    }
    holder.holdUntilSynced = holdUntilSynced;
    return holder.nextOffset;
  }

  /**
   * Every segment goes and an empty one at `offset` becomes the whole list (the log's
   * `truncateFullyAndStartAt`, which has made its restart record durable before: a crash anywhere
   * in here is finished by the next open, log-recovery.ts). Readers holding a deleted segment find
   * it gone and look their offset up again, below the new log start.
   */
  async restartAt(offset: bigint, now: number, holdUntilSynced: boolean): Promise<Segment> {
    this.generation++;
    // The old segments stay listed until the new one replaces them: the list is never empty.
    for (const segment of this.list) {
      this.readAhead.dropSegment(segment);
      await segment.delete();
    }
    await this.fs.syncDirectory(this.dir);
    const fresh = await Segment.create(this.fs, this.dir, offset, this.indexIntervalBytes, now);
    fresh.holdUntilSynced = holdUntilSynced;
    this.list = [fresh];
    this.corruptFrom = null;
    return fresh;
  }

  /** Closes every segment's file (the log is closing, or its open failed). */
  async closeAll(): Promise<void> {
    this.closed = true;
    for (const segment of this.list) await segment.close().catch(() => undefined);
  }
}
