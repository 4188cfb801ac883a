// A sequential reader of a partition log that reads into two buffers of its own and reuses them.
//
// PartitionLog.read returns a new buffer per read, as it must for data that is handed on (to a
// socket, to a consumer that keeps messages). For a replay that looks at each chunk and moves on
// (a tool, a rebuild, an embedded consumer that decodes and drops), fresh memory is the largest cost
// left: the kernel zeroes and page-faults every new page, which costs more than the read's copy
// (docs/storage.md, "Reads"). So this reader double-buffers: while the caller works on the chunk
// in one buffer, the next chunk of the same segment is read into the other on the libuv threadpool.
// The contract that makes the reuse safe: what `next()` returns is valid only until the next call
// of `next()` (or `close()`); by calling again the caller gives that buffer back.
//
// Every batch is verified exactly as PartitionLog.read verifies it (batch-chunk.ts). Bytes read
// ahead are used only by the call that asks for the offset they were read for, in the very same
// segment (retention or compaction may have removed it meanwhile); otherwise they are dropped.

import { errorOf } from '../protocol/error-codes.js';
import { BATCH_HEADER_SIZE } from '../protocol/record-batch-layout.js';
import { frameBatches, lastOffsetOf, verifyBatches } from './batch-chunk.js';
import { FileRetiredError } from './open-files.js';
import type { ReadResult } from './partition-log.js';
import type { Segment } from './segment.js';
import type { SegmentList } from './segment-list.js';

/** What the reader needs of its log (PartitionLog.reader builds it). */
export interface LogReaderHost {
  /** The log's segments, shared with the log. */
  readonly segments: SegmentList;
  /** The readable range; throws for a closed log or an offset outside it. */
  bounds(offset: bigint): { highWatermark: bigint; logStartOffset: bigint };
}

/** Largest chunk a reader reads at once (each of its two buffers holds one). */
export const MAX_WINDOW_BYTES = 16 * 1024 * 1024;

/** A read started ahead into one of the two buffers, for the reader's next offset. */
interface PendingChunk {
  offset: bigint;
  segment: Segment;
  position: number;
  slot: 0 | 1;
  /** The bytes read, or null when the read failed (the next call then reads for itself). */
  data: Promise<Buffer | null>;
}

/** The chunk calls are served from: whole batches in chunk[at, end), not yet returned. */
interface CurrentChunk {
  segment: Segment;
  slot: 0 | 1;
  chunk: Buffer;
  /** Byte position of the chunk in the segment file. */
  position: number;
  at: number;
  end: number;
}

export class LogReader {
  private readonly buffers: [Buffer, Buffer];
  private readonly window: number;
  private current: CurrentChunk | null = null;
  private pending: PendingChunk | null = null;
  private offset: bigint;
  private closed = false;
  /** The segment list's truncation generation the held chunks were read in. */
  private generation: number;

  constructor(
    private readonly host: LogReaderHost,
    offset: bigint,
    readonly maxBytes: number,
  ) {
    if (!Number.isInteger(maxBytes) || maxBytes < 1)
      throw errorOf('INVALID_REQUEST', `reader maxBytes must be a positive integer, got ${maxBytes}`);
    this.offset = offset;
    this.generation = host.segments.generation;
    // As PartitionLog.read: the offset index points up to one interval before the wanted batch. The
    // window is capped so that a caller's huge maxBytes cannot make the reader allocate it (twice):
    // a call returns at most the window's whole batches (one batch always, whatever its size).
    this.window =
      Math.min(Math.max(maxBytes, 64 * 1024), MAX_WINDOW_BYTES) + host.segments.indexIntervalBytes;
    this.buffers = [Buffer.allocUnsafe(this.window), Buffer.allocUnsafe(this.window)];
  }

  /** The offset the next call reads from. */
  get nextOffset(): bigint {
    return this.offset;
  }

  /**
   * Whole verified batches from the reader's offset, up to `maxBytes` and MAX_WINDOW_BYTES (at
   * least one batch); empty data at the high watermark (call again later: the reader stays where it
   * is). The data is valid until the next call.
   */
  async next(): Promise<ReadResult> {
    // A segment closed while idle and then deleted or replaced cannot be reopened: the reader drops
    // what it holds of it and looks its offset up again (open-files.ts, FileRetiredError).
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.nextOnce();
      } catch (error) {
        if (!(error instanceof FileRetiredError) || attempt >= 3) throw error;
        // A read still running ahead writes into one of the two buffers: it lands before reuse.
        const pending = this.pending;
        this.pending = null;
        this.current = null;
        if (pending !== null) await pending.data;
      }
    }
  }

  private async nextOnce(): Promise<ReadResult> {
    if (this.closed) throw errorOf('INVALID_REQUEST', 'log reader is closed');
    const offset = this.offset;
    const { highWatermark, logStartOffset } = this.host.bounds(offset);
    const empty = { data: this.buffers[0].subarray(0, 0), nextOffset: offset, highWatermark, logStartOffset };
    if (this.host.segments.generation !== this.generation) {
      // A truncation may have cut what the held chunks hold (and appends rewritten it): drop them.
      const pending = this.pending;
      this.pending = null;
      this.current = null;
      if (pending !== null) await pending.data;
      this.generation = this.host.segments.generation;
      return this.nextOnce();
    }
    const segment = offset === highWatermark ? null : this.host.segments.holding(offset);
    if (segment === null) return empty;
    // A chunk read earlier still holds the next batches (a reader that asks for less than a
    // window): served from memory. Not when compaction replaced its segment meanwhile.
    let current = this.current;
    if (current === null || current.at >= current.end || current.segment !== segment) {
      current = await this.load(segment, offset);
      this.current = current;
      // load() waited: the segment may be gone (retention, compaction) and the offset with it, or
      // truncated.
      this.host.bounds(offset);
      if (this.host.segments.generation !== this.generation) return this.nextOnce();
    }
    const { chunk, position, at } = current;
    // The served range ends with whole batches only: `end` is where the chunk's last whole one ends.
    const { end } = frameBatches(chunk.subarray(0, current.end), at, this.maxBytes, position, segment);
    const { verified, lastVerified } = verifyBatches(chunk, at, end, this.host.segments.servedBelow, segment);
    if (lastVerified < 0) return empty;
    current.at = verified;
    this.offset = lastOffsetOf(chunk, lastVerified) + 1n;
    return { data: chunk.subarray(at, verified), nextOffset: this.offset, highWatermark, logStartOffset };
  }

  /**
   * The chunk whose first batch holds `offset`: the one read ahead for it when there is one, else
   * read now. Starts the read of the chunk after it into the other buffer.
   */
  private async load(segment: Segment, offset: bigint): Promise<CurrentChunk> {
    // Whatever was read ahead lands first: its buffer is needed again either way.
    const pending = this.pending;
    this.pending = null;
    const ahead = pending === null ? null : await pending.data;
    let slot: 0 | 1 = 0;
    let start: { chunk: Buffer; position: number } | null = null;
    if (
      pending !== null &&
      ahead !== null &&
      ahead.length >= BATCH_HEADER_SIZE &&
      pending.offset === offset &&
      pending.segment === segment &&
      this.host.segments.holds(segment)
    ) {
      slot = pending.slot;
      start = { chunk: ahead, position: pending.position };
    }
    const { chunk, position, at } = await this.host.segments.chunkFrom(
      segment,
      offset,
      this.window,
      start,
      (from, length) => segment.readInto(this.buffer(slot, length), from, length),
    );
    // Where the chunk's whole batches end (lengths only; the CRCs are checked as they are served).
    const { end, lastStart } = frameBatches(chunk, at, Number.MAX_SAFE_INTEGER, position, segment);
    // Start the next chunk of this segment into the other buffer, keyed by the offset after these
    // batches (from unverified bytes: if a check ends the chunk early, the key will not match).
    // The chunk's partial last batch is already here: it is copied to the front of the other buffer
    // and only the bytes after it are read (not read twice; the copy is at most one batch).
    const limit = segment.visibleBytes;
    if (lastStart >= 0 && position + end < limit && this.host.segments.holds(segment)) {
      const other: 0 | 1 = slot === 0 ? 1 : 0;
      const length = Math.min(limit - position - end, this.window);
      const target = this.buffer(other, length);
      const carried = chunk.copy(target, 0, end);
      this.pending = {
        offset: lastOffsetOf(chunk, lastStart) + 1n,
        segment,
        position: position + end,
        slot: other,
        // A failed read-ahead is nobody's error yet: the next load reads for itself and meets it.
        data: segment.readInto(target, position + end + carried, length - carried, carried).catch(() => null),
      };
    }
    return { segment, slot, chunk, position, at, end };
  }

  /** Drops the buffers; a read still in flight finishes into memory nobody looks at. */
  close(): void {
    this.closed = true;
    this.pending = null;
    this.current = null;
  }

  /** Buffer `slot`, grown when one batch is larger than the window (it stays that size). */
  private buffer(slot: 0 | 1, length: number): Buffer {
    if (this.buffers[slot].length < length) this.buffers[slot] = Buffer.allocUnsafe(length);
    return this.buffers[slot];
  }
}
