// What readers of a replicated log may see: offsets below the high watermark its owner sets (the
// smallest log end of the in-sync replicas), and of those only what is written here, up to the end
// of a whole batch. Batches written here and not yet below the high watermark wait in a tail, in
// offset order, so that `onVisible` listeners get them when the high watermark passes them —
// memory bounded by what the replicas have not acknowledged yet. A log whose owner never sets a
// high watermark has none of this: it shows what it has written (partition-log.ts, publish).

/** A batch written here, as stored, with its last offset. */
export interface WrittenBatch {
  batch: Buffer;
  lastOffset: bigint;
}

export class ReplicatedVisibility {
  private tail: WrittenBatch[];

  constructor(
    /** Set by the owner: monotonic, never above the log end (PartitionLog.setHighWatermark). */
    public highWatermark: bigint,
    tail: WrittenBatch[] = [],
  ) {
    this.tail = tail;
  }

  /** Batches just written here (in offset order, after every batch already in the tail). */
  written(batches: readonly WrittenBatch[]): void {
    for (const { batch, lastOffset } of batches) this.tail.push({ batch, lastOffset });
  }

  /** Takes the written batches that now lie wholly below the high watermark, oldest first. */
  release(): WrittenBatch[] {
    let count = 0;
    while (count < this.tail.length && this.tail[count]!.lastOffset < this.highWatermark) count++;
    return count === 0 ? [] : this.tail.splice(0, count);
  }

  /** The log was truncated to end at `end`. */
  truncate(end: bigint): void {
    this.tail = this.tail.filter((written) => written.lastOffset < end);
    if (this.highWatermark > end) this.highWatermark = end;
  }

  /**
   * The written batches not yet below the high watermark from the one starting at `offset`, up to
   * `maxBytes` (at least one): what a follower fetches past what readers see. Empty when no held
   * batch starts there.
   */
  from(offset: bigint, maxBytes: number): Buffer[] {
    const out: Buffer[] = [];
    let bytes = 0;
    let started = false;
    for (const { batch, lastOffset } of this.tail) {
      if (!started) {
        if (lastOffset < offset) continue;
        if (batch.readBigInt64BE(0) !== offset) return [];
        started = true;
      }
      if (out.length > 0 && bytes + batch.length > maxBytes) break;
      out.push(batch);
      bytes += batch.length;
    }
    return out;
  }

  /** Bytes held for listeners (for tests and metrics). */
  get heldBytes(): number {
    let total = 0;
    for (const { batch } of this.tail) total += batch.length;
    return total;
  }
}
