// The stream entries of the segment being written, in memory until the segment is sealed and its
// stream file written (stream-index-file.ts). Compact: per message 16 bytes in typed arrays (key
// slot, offset, previous message of the same key), per key present in the segment one slot of
// 32 bytes — no object per message. Messages arrive in offset order.

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
  private slotEntries: StreamEntry[] = [];
  private slotFirstSequence = new Float64Array(64);
  private slotPreviousOffset = new Float64Array(64);
  private slotLast = new Int32Array(64);
  private slotCount = new Uint32Array(64);
  private slots = 0;
  // Per message.
  private messageSlot = new Uint32Array(256);
  private messageOffset = new Float64Array(256);
  private messagePrevious = new Int32Array(256);
  messages = 0;

  get memoryBytes(): number {
    return (
      this.slotKeys.length * 8 +
      this.slotFirstSequence.byteLength * 2 +
      this.slotLast.byteLength * 2 +
      this.messageSlot.byteLength +
      this.messageOffset.byteLength +
      this.messagePrevious.byteLength
    );
  }

  /** Records message `sequence` of `key` at `offset`; `previousOffset` is the key's last offset before it. */
  add(key: string, entry: StreamEntry, offset: number, sequence: number, previousOffset: number): void {
    let slot = entry.slot;
    if (slot < 0) {
      slot = this.slots++;
      if (slot >= this.slotLast.length) {
        this.slotFirstSequence = grown(this.slotFirstSequence, slot + 1);
        this.slotPreviousOffset = grown(this.slotPreviousOffset, slot + 1);
        this.slotLast = grown(this.slotLast, slot + 1);
        this.slotCount = grown(this.slotCount, slot + 1);
      }
      this.slotKeys[slot] = key;
      this.slotEntries[slot] = entry;
      this.slotFirstSequence[slot] = sequence;
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
    this.messageOffset[m] = offset;
    this.messagePrevious[m] = this.slotLast[slot]!;
    this.slotLast[slot] = m;
    this.slotCount[slot]!++;
  }

  /** Takes back every message at or past `offset` (appends that failed take a suffix). */
  truncateFrom(offset: number): void {
    while (this.messages > 0 && this.messageOffset[this.messages - 1]! >= offset) {
      const m = --this.messages;
      const slot = this.messageSlot[m]!;
      this.slotLast[slot] = this.messagePrevious[m]!;
      if (--this.slotCount[slot]! === 0 && this.slotEntries[slot]!.slot === slot)
        this.slotEntries[slot]!.slot = -1;
    }
  }

  /** The key's messages here with sequence ≥ `from`, at most `max`, in order. */
  run(entry: StreamEntry): {
    previousOffset: number;
    firstSequence: number;
    entries: (from: number, max: number) => { offset: number; sequence: number }[];
  } | null {
    const slot = entry.slot;
    if (slot < 0 || this.slotCount[slot] === 0) return null;
    const count = this.slotCount[slot]!;
    const first = this.slotFirstSequence[slot]!;
    const offsets = new Array<number>(count);
    for (let m = this.slotLast[slot]!, k = count - 1; m >= 0 && k >= 0; m = this.messagePrevious[m]!, k--)
      offsets[k] = this.messageOffset[m]!;
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
  private cutAt(offset: number): number {
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
   * changing anything: the file is written first, `split` runs once it is durable.
   */
  sealInput(baseOffset: number, upTo: number, coveredBytes: number): { input: StreamFileInput; cut: number } {
    const cut = this.cutAt(upTo);
    const perSlot = new Uint32Array(this.slots);
    for (let m = 0; m < cut; m++) perSlot[this.messageSlot[m]!]!++;
    const keyOfSlot = new Int32Array(this.slots).fill(-1);
    const keys: string[] = [];
    for (let s = 0; s < this.slots; s++) {
      if (perSlot[s] === 0) continue;
      keyOfSlot[s] = keys.length;
      keys.push(this.slotKeys[s]!);
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
      nextSequence[k] = this.slotFirstSequence[s]! + perSlot[s]!;
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
      entryOffsets[entryStart[k]! + j] = this.messageOffset[m]!;
      entrySequences[entryStart[k]! + j] = this.slotFirstSequence[s]! + j;
    }
    return {
      cut,
      input: {
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
      },
    };
  }

  /** The entries from message `cut` on, for the next segment; frees every key's slot here. */
  split(cut: number): ActiveStreamEntries {
    const next = new ActiveStreamEntries();
    const before = new Uint32Array(this.slots);
    const lastBefore = new Float64Array(this.slots);
    for (let m = 0; m < cut; m++) {
      const s = this.messageSlot[m]!;
      before[s]!++;
      lastBefore[s] = this.messageOffset[m]!;
    }
    for (let s = 0; s < this.slots; s++) {
      const entry = this.slotEntries[s]!;
      if (entry.slot === s) entry.slot = -1;
    }
    const seen = new Uint32Array(this.slots);
    for (let m = cut; m < this.messages; m++) {
      const s = this.messageSlot[m]!;
      const sequence = this.slotFirstSequence[s]! + before[s]! + seen[s]!++;
      const previous = before[s]! > 0 ? lastBefore[s]! : this.slotPreviousOffset[s]!;
      next.add(this.slotKeys[s]!, this.slotEntries[s]!, this.messageOffset[m]!, sequence, previous);
    }
    return next;
  }
}
