// The stream entries of the segment being written, in memory until the segment is sealed and its
// stream file written (stream-index-file.ts). Compact: per message 12 bytes in typed arrays (key
// slot, offset relative to the first message here, previous message of the same key), per key
// present in the segment one slot of 16 bytes plus its key reference — no object per message.
// Messages arrive in offset order. A slot's first sequence is not stored: every message of the key
// since the slot began is here, so it is the key's version minus the slot's count.

import type { StreamFileInput } from './stream-index-file.js';

/** What the partition keeps per stream: its version (next sequence) and last offset. */
export class StreamEntry {
  constructor(
    public version: number,
    public lastOffset: number,
    /** Slot in the active entries while the key has messages in the active segment, else -1. */
    public slot: number,
  ) {}
}

function grown<T extends Float64Array | Int32Array | Uint32Array>(array: T, needed: number): T {
  if (needed <= array.length) return array;
  const next = new (array.constructor as new (n: number) => T)(Math.max(needed, array.length * 2));
  next.set(array);
  return next;
}

export class ActiveStreamEntries {
  // Per slot (one per key with messages here).
  private slotKeys: string[] = [];
  private slotPreviousOffset = new Float64Array(64);
  private slotLast = new Int32Array(64);
  private slotCount = new Uint32Array(64);
  private slots = 0;
  // Per message.
  private messageSlot = new Uint32Array(256);
  private messageOffset = new Uint32Array(256);
  private messagePrevious = new Int32Array(256);
  /** Offsets are kept relative to the first message added (a segment spans < 2^32 offsets). */
  private base = -1;
  messages = 0;

  constructor(private readonly entryOf: (key: string) => StreamEntry | undefined) {}

  private firstSequence(entry: StreamEntry, slot: number): number {
    return entry.version - this.slotCount[slot]!;
  }

  get memoryBytes(): number {
    return (
      this.slotKeys.length * 4 +
      this.slotPreviousOffset.byteLength +
      this.slotLast.byteLength * 2 +
      this.messageSlot.byteLength +
      this.messageOffset.byteLength +
      this.messagePrevious.byteLength
    );
  }

  /**
   * Records the key's next message at `offset` (call before counting it in the entry's version);
   * `previousOffset` is the key's last offset before it.
   */
  add(key: string, entry: StreamEntry, offset: number, previousOffset: number): void {
    if (this.base < 0) this.base = offset;
    let slot = entry.slot;
    if (slot < 0) {
      slot = this.slots++;
      if (slot >= this.slotLast.length) {
        this.slotPreviousOffset = grown(this.slotPreviousOffset, slot + 1);
        this.slotLast = grown(this.slotLast, slot + 1);
        this.slotCount = grown(this.slotCount, slot + 1);
      }
      this.slotKeys[slot] = key;
      this.slotPreviousOffset[slot] = previousOffset;
      this.slotLast[slot] = -1;
      this.slotCount[slot] = 0;
      entry.slot = slot;
    }
    const m = this.messages++;
    if (m >= this.messageSlot.length) {
      this.messageSlot = grown(this.messageSlot, m + 1);
      this.messageOffset = grown(this.messageOffset, m + 1);
      this.messagePrevious = grown(this.messagePrevious, m + 1);
    }
    this.messageSlot[m] = slot;
    this.messageOffset[m] = offset - this.base;
    this.messagePrevious[m] = this.slotLast[slot]!;
    this.slotLast[slot] = m;
    this.slotCount[slot]!++;
  }

  /**
   * Takes back every message at or past `offset` (appends that failed take a suffix): each one's
   * key goes back to the version and last offset before it; `forget` drops a key left at version 0.
   */
  truncateFrom(offset: number, forget: (key: string) => void): void {
    while (this.messages > 0 && this.base + this.messageOffset[this.messages - 1]! >= offset) {
      const m = --this.messages;
      const slot = this.messageSlot[m]!;
      const previous = this.messagePrevious[m]!;
      this.slotLast[slot] = previous;
      const key = this.slotKeys[slot]!;
      const entry = this.entryOf(key);
      if (entry === undefined) continue;
      entry.version--;
      entry.lastOffset =
        previous >= 0 ? this.base + this.messageOffset[previous]! : this.slotPreviousOffset[slot]!;
      if (--this.slotCount[slot]! === 0 && entry.slot === slot) entry.slot = -1;
      if (entry.version === 0) forget(key);
    }
  }

  /** The key's messages here with sequence ≥ `from`, at most `max`, in order. */
  /** The key's last offset before the active segment when it has messages here, else null. */
  previousOffsetOf(entry: StreamEntry): number | null {
    const slot = entry.slot;
    if (slot < 0 || this.slotCount[slot] === 0) return null;
    return this.slotPreviousOffset[slot]!;
  }

  run(entry: StreamEntry): {
    previousOffset: number;
    firstSequence: number;
    entries: (from: number, max: number) => { offset: number; sequence: number }[];
  } | null {
    const slot = entry.slot;
    if (slot < 0 || this.slotCount[slot] === 0) return null;
    const count = this.slotCount[slot]!;
    const first = this.firstSequence(entry, slot);
    const offsets = new Array<number>(count);
    for (let m = this.slotLast[slot]!, k = count - 1; m >= 0 && k >= 0; m = this.messagePrevious[m]!, k--)
      offsets[k] = this.base + this.messageOffset[m]!;
    return {
      previousOffset: this.slotPreviousOffset[slot]!,
      firstSequence: first,
      entries: (from, max) => {
        const out: { offset: number; sequence: number }[] = [];
        for (let k = Math.max(0, from - first); k < count && out.length < max; k++)
          out.push({ offset: offsets[k]!, sequence: first + k });
        return out;
      },
    };
  }

  /** Index of the first message at or past `offset`. */
  indexOf(absolute: number): number {
    const offset = absolute - this.base;
    let low = 0;
    let high = this.messages;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.messageOffset[mid]! < offset) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /**
   * The stream file content of the messages below `upTo` (the sealed segment's end), without
   * changing anything: the file is written first, `split` runs once the roll is done.
   */
  sealInput(baseOffset: number, upTo: number, coveredBytes: number): StreamFileInput {
    const cut = this.indexOf(upTo);
    const perSlot = new Uint32Array(this.slots);
    for (let m = 0; m < cut; m++) perSlot[this.messageSlot[m]!]!++;
    const keyOfSlot = new Int32Array(this.slots).fill(-1);
    const keys: string[] = [];
    const firstSequence = new Float64Array(this.slots);
    for (let s = 0; s < this.slots; s++) {
      if (perSlot[s] === 0) continue;
      keyOfSlot[s] = keys.length;
      keys.push(this.slotKeys[s]!);
      firstSequence[s] = this.firstSequence(this.entryOf(this.slotKeys[s]!)!, s);
    }
    const n = keys.length;
    const entryStart = new Uint32Array(n);
    const entryCount = new Uint32Array(n);
    const nextSequence = new Float64Array(n);
    const previousOffset = new Float64Array(n);
    let at = 0;
    for (let s = 0; s < this.slots; s++) {
      const k = keyOfSlot[s]!;
      if (k < 0) continue;
      entryStart[k] = at;
      entryCount[k] = perSlot[s]!;
      nextSequence[k] = firstSequence[s]! + perSlot[s]!;
      previousOffset[k] = this.slotPreviousOffset[s]!;
      at += perSlot[s]!;
    }
    const entryOffsets = new Float64Array(cut);
    const entrySequences = new Float64Array(cut);
    const filled = new Uint32Array(n);
    for (let m = 0; m < cut; m++) {
      const s = this.messageSlot[m]!;
      const k = keyOfSlot[s]!;
      const j = filled[k]!++;
      entryOffsets[entryStart[k]! + j] = this.base + this.messageOffset[m]!;
      entrySequences[entryStart[k]! + j] = firstSequence[s]! + j;
    }
    return {
      kind: 'segment',
      baseOffset,
      nextOffset: upTo,
      coveredBytes,
      keys,
      entryStart,
      entryCount,
      nextSequence,
      previousOffset,
      entryOffsets,
      entrySequences,
    };
  }

  /** The entries from message `cut` on, for the next segment; frees every key's slot here. */
  split(cut: number): ActiveStreamEntries {
    const next = new ActiveStreamEntries(this.entryOf);
    const lastBefore = new Float64Array(this.slots).fill(-1);
    for (let m = 0; m < cut; m++) lastBefore[this.messageSlot[m]!] = this.base + this.messageOffset[m]!;
    // Each key's entry leaves its slot here; its messages past the cut are counted again below,
    // so its version is taken back by them first (the next segment's slot starts from there).
    const entries: (StreamEntry | undefined)[] = new Array(this.slots);
    const suffix = new Uint32Array(this.slots);
    for (let m = cut; m < this.messages; m++) suffix[this.messageSlot[m]!]!++;
    for (let s = 0; s < this.slots; s++) {
      const entry = this.entryOf(this.slotKeys[s]!);
      entries[s] = entry;
      if (entry === undefined || entry.slot !== s) continue;
      entry.slot = -1;
      entry.version -= suffix[s]!;
    }
    for (let m = cut; m < this.messages; m++) {
      const s = this.messageSlot[m]!;
      const entry = entries[s]!;
      const previous = lastBefore[s]! >= 0 ? lastBefore[s]! : this.slotPreviousOffset[s]!;
      next.add(this.slotKeys[s]!, entry, this.base + this.messageOffset[m]!, previous);
      entry.version++;
    }
    return next;
  }
}
