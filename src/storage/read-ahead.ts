// Sequential read-ahead for a partition log. A reader that continues where its previous read ended
// (a consumer replaying, a follower catching up) gets its next chunk read from the segment file
// while it is still busy with the current one: the positioned read runs on the libuv threadpool
// while the event loop verifies CRCs and hands the data on, instead of the two taking turns.
//
// Readers are told apart by position, not identity: an entry is keyed by the offset its reader will
// ask for next, so concurrent readers at different offsets each keep their own read-ahead. Bounds:
// at most `maxEntries` entries per log (the oldest is dropped first), each at most `maxBytes`, an
// entry is taken (removed) by the read that uses it, and all logs of the process share one budget
// of bytes held (ReadAheadBudget): a reader that stops leaves its last entry behind until it is
// taken or pushed out, and a broker with thousands of partitions must not add that up unbounded. A read is only started for bytes below the
// segment's visible end, which never change while the segment exists (appends go past it), except
// by a truncation (PartitionLog.truncateTo), which drops every entry and makes reads that began
// before it read again (segment-list.ts, generation). What can change is the segment itself —
// deleted by retention or replaced — so an entry is served only to a read that finds the very same
// Segment object for its offset, and the log drops a segment's entries when it removes it.
//
// The bytes are not trusted: the read that takes an entry verifies every batch's CRC exactly as it
// verifies a chunk it read itself.

import type { Segment } from './segment.js';

export interface ReadAheadChunk {
  segment: Segment;
  /** Bytes asked for (what the entry holds once read). */
  bytes: number;
  /** Byte position of the chunk in the segment file: the start of the batch holding the offset. */
  position: number;
  /** The bytes, or null when the read failed (the taker then reads for itself). */
  data: Promise<Buffer | null>;
}

/**
 * Bytes held in read-ahead entries across logs, oldest first: when a new entry would take it past
 * `limit`, the oldest entries anywhere are dropped.
 */
export class ReadAheadBudget {
  private readonly held = new Map<ReadAheadChunk, ReadAhead>();
  bytes = 0;

  constructor(readonly limit: number) {}

  add(entry: ReadAheadChunk, owner: ReadAhead): void {
    this.held.set(entry, owner);
    this.bytes += entry.bytes;
    while (this.bytes > this.limit && this.held.size > 1) {
      const [oldest, holder] = this.held.entries().next().value as [ReadAheadChunk, ReadAhead];
      holder.forget(oldest);
    }
  }

  remove(entry: ReadAheadChunk): void {
    if (this.held.delete(entry)) this.bytes -= entry.bytes;
  }
}

/** The process-wide budget every log uses unless given another: 64 MiB. */
export const sharedReadAheadBudget = new ReadAheadBudget(64 * 1024 * 1024);

export class ReadAhead {
  private readonly entries = new Map<bigint, ReadAheadChunk>();
  /** Offsets at which recent reads ended: a read starting at one of them is sequential. */
  private readonly ends = new Set<bigint>();
  /** Reads served from an entry (for tests and metrics). */
  hits = 0;

  constructor(
    private readonly budget: ReadAheadBudget = sharedReadAheadBudget,
    private readonly maxEntries = 4,
    readonly maxBytes = 4 * 1024 * 1024,
    private readonly maxEnds = 64,
  ) {}

  /** Whether a read at `offset` continues a previous one (and so is worth reading ahead for). */
  isSequential(offset: bigint): boolean {
    return this.ends.has(offset) || this.entries.has(offset);
  }

  /** Remembers that a read ended at `offset`, so a read starting there counts as sequential. */
  noteEnd(offset: bigint): void {
    this.ends.delete(offset);
    this.ends.add(offset);
    if (this.ends.size > this.maxEnds) this.ends.delete(this.ends.values().next().value as bigint);
  }

  /**
   * Starts reading `length` bytes (capped at maxBytes) at `position` of `segment` for the reader
   * that will ask for `offset` next. Nothing happens when an entry for that offset exists already.
   */
  start(offset: bigint, segment: Segment, position: number, length: number): void {
    if (length <= 0 || this.entries.has(offset)) return;
    if (this.entries.size >= this.maxEntries) this.delete(this.entries.keys().next().value as bigint);
    const bytes = Math.min(length, this.maxBytes);
    // A failed read-ahead is not an error of anyone yet: the read that would have used it reads for
    // itself and meets the error there.
    const data = segment.read(position, bytes).catch(() => null);
    const entry: ReadAheadChunk = { segment, bytes, position, data };
    this.entries.set(offset, entry);
    this.budget.add(entry, this);
  }

  /** Removes and returns the entry for a read at `offset` in `segment`, if one is there. */
  take(offset: bigint, segment: Segment): ReadAheadChunk | undefined {
    const entry = this.entries.get(offset);
    if (entry === undefined) return undefined;
    this.delete(offset);
    if (entry.segment !== segment) return undefined;
    this.hits++;
    return entry;
  }

  /** Forgets the entry for `offset` (its read predicted an end it did not reach). */
  cancel(offset: bigint): void {
    this.delete(offset);
  }

  /** Drops every entry reading from `segment` (deleted or replaced). */
  dropSegment(segment: Segment): void {
    for (const [offset, entry] of this.entries) if (entry.segment === segment) this.delete(offset);
  }

  /** Drops `entry` if it is still held (the budget pushing out the oldest). */
  forget(entry: ReadAheadChunk): void {
    for (const [offset, held] of this.entries) {
      if (held === entry) {
        this.delete(offset);
        return;
      }
    }
    this.budget.remove(entry);
  }

  clear(): void {
    for (const offset of [...this.entries.keys()]) this.delete(offset);
    this.ends.clear();
  }

  private delete(offset: bigint): void {
    const entry = this.entries.get(offset);
    if (entry === undefined) return;
    this.entries.delete(offset);
    this.budget.remove(entry);
  }

  /** Entries held (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }
}
