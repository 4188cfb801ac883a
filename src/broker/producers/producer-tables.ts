// The idempotent-producer state of one partition, derived from its appended batches alone (their
// headers carry producer id, epoch and base sequence), so a leader and a follower that append the
// same batches hold the same state. Two tables:
//  - `appended`: every batch appended, recorded as it is appended (before it is written); produce
//    checks a new batch against it;
//  - the visible table: exactly the batches below `visibleThrough` (the log's high watermark),
//    recorded as they become visible; snapshots are taken from it, so a snapshot is exactly the
//    table a replay of the log up to its offset builds. (`appended` can hold batches past a roll,
//    whose recording may have evicted older batches or reset an epoch, which an export "as of" an
//    offset could not undo.)
// Between them, the batches appended but not yet visible are kept in order: a truncation at or
// above `visibleThrough` (appends that failed) rebuilds `appended` exactly from the visible table
// and those, where forgetting the truncated batches would not bring back what they evicted.
// An entry of `appended` may carry what only the leader's produce knows (WrittenBatch: the first
// append's completion until the batch is visible, the reply's stream sequences); a rebuild keeps both.

import { BATCH_OFFSETS, readInt64 } from '../../protocol/record-batch-layout.js';
import {
  NO_PRODUCER_ID,
  type ProducerBatchInfo,
  type ProducerSnapshotEntry,
  ProducerStateTable,
  type WrittenBatch,
} from './producer-state.js';

interface AppendedBatch {
  info: ProducerBatchInfo;
  /** Its entry in `appended` (the same object, so what the produce attached to it stays with it). */
  written: WrittenBatch;
}

/**
 * The producer fields of a stored or appended batch, or null for a batch without a producer id.
 * A compacted batch has fewer records than lastOffsetDelta + 1 (docs/storage.md, "Compaction"): the
 * producer's sequence range is still baseSequence..baseSequence + lastOffsetDelta, so the count is
 * taken from lastOffsetDelta (validation makes the two equal for a batch a producer sends).
 */
export function producerBatchInfo(batch: Buffer): ProducerBatchInfo | null {
  const producerId = readInt64(batch, BATCH_OFFSETS.producerId);
  if (producerId === NO_PRODUCER_ID) return null;
  return {
    producerId,
    producerEpoch: batch.readInt16BE(BATCH_OFFSETS.producerEpoch),
    baseSequence: batch.readInt32BE(BATCH_OFFSETS.baseSequence),
    recordCount: batch.readInt32BE(BATCH_OFFSETS.lastOffsetDelta) + 1,
  };
}

export class ProducerTables {
  readonly appended = new ProducerStateTable();
  private readonly visible = new ProducerStateTable();
  private visibleEnd = 0n;
  /** Appended idempotent batches at or past `visibleEnd`, oldest first from `pendingHead`. */
  private pending: AppendedBatch[] = [];
  private pendingHead = 0;
  /** The log start the tables last dropped producers below. */
  private droppedBelow = 0n;

  /** The visible table holds exactly the batches below this offset. */
  get visibleThrough(): bigint {
    return this.visibleEnd;
  }

  /** Records a batch appended at `baseOffset..lastOffset` (the hook's producer part). */
  recordAppended(batch: Buffer, baseOffset: bigint, lastOffset: bigint): void {
    const info = producerBatchInfo(batch);
    if (info === null) return;
    const written = this.appended.record(info, baseOffset, lastOffset)!;
    // A batch recorded after it became visible (a caller that applies it once written) is in the
    // visible table already.
    if (lastOffset >= this.visibleEnd) this.pending.push({ info, written });
  }

  /** Batches became readable, up to `highWatermark`: the visible table takes them. */
  recordVisible(batches: readonly Buffer[], highWatermark: bigint): void {
    for (const batch of batches) {
      const info = producerBatchInfo(batch);
      if (info !== null) {
        const baseOffset = readInt64(batch, BATCH_OFFSETS.baseOffset);
        this.visible.record(info, baseOffset, baseOffset + BigInt(info.recordCount - 1));
      }
    }
    this.visibleEnd = highWatermark;
    while (
      this.pendingHead < this.pending.length &&
      this.pending[this.pendingHead]!.written.lastOffset < highWatermark
    ) {
      // Written now: a retry answers at once, the completion is not kept any longer.
      this.pending[this.pendingHead]!.written.done = undefined;
      this.pendingHead++;
    }
    if (this.pendingHead === this.pending.length) {
      this.pending = [];
      this.pendingHead = 0;
    } else if (this.pendingHead > 1024) {
      this.pending = this.pending.slice(this.pendingHead);
      this.pendingHead = 0;
    }
  }

  /**
   * Forgets every batch at or past `offset` when that is at or above `visibleThrough`: `appended`
   * becomes the visible table plus the appended batches below `offset`, exactly what recording the
   * remaining batches in order gives. Returns false (changing nothing) for an offset below
   * `visibleThrough`: the visible table cannot go back, the caller rebuilds from a snapshot and the
   * log (`reset`, `replay`).
   */
  truncateAbove(offset: bigint): boolean {
    if (offset < this.visibleEnd) return false;
    const kept: AppendedBatch[] = [];
    for (let i = this.pendingHead; i < this.pending.length; i++) {
      const appended = this.pending[i]!;
      if (appended.written.lastOffset < offset) kept.push(appended);
    }
    const sequences = this.appended.streamSequencesByOffset();
    this.appended.loadState(this.visible.exportState());
    this.appended.restoreStreamSequences(sequences);
    for (const { info, written } of kept) this.appended.recordWritten(info, written);
    this.pending = kept;
    this.pendingHead = 0;
    return true;
  }

  /**
   * Starts both tables again from a snapshot's entries (none: empty), forgetting batches below
   * `logStartOffset`; `replay` then records the log's batches from the snapshot's offset.
   */
  reset(entries: readonly ProducerSnapshotEntry[], logStartOffset: bigint): void {
    this.appended.loadState(entries, logStartOffset);
    this.visible.loadState(entries, logStartOffset);
    this.pending = [];
    this.pendingHead = 0;
  }

  /**
   * The log start moved to `logStartOffset` (retention): both tables drop the producers whose newest
   * batch ends below it, as a replay from the new log start would (ProducerStateTable.loadState).
   * Batches still pending are at or past the high watermark, which retention never passes.
   */
  dropProducersBelow(logStartOffset: bigint): void {
    // Called at every roll: a walk over every producer only when the log start moved.
    if (logStartOffset === this.droppedBelow) return;
    this.droppedBelow = logStartOffset;
    this.appended.dropProducersBelow(logStartOffset);
    this.visible.dropProducersBelow(logStartOffset);
  }

  /** Records a stored batch (a replay of the log after `reset`) in both tables. */
  replay(batch: Buffer): void {
    const info = producerBatchInfo(batch);
    if (info === null) return;
    const baseOffset = readInt64(batch, BATCH_OFFSETS.baseOffset);
    const lastOffset = baseOffset + BigInt(info.recordCount - 1);
    this.appended.record(info, baseOffset, lastOffset);
    this.visible.record(info, baseOffset, lastOffset);
  }

  /** After `reset` and `replay`: every replayed batch is below `offset` and visible. */
  replayedThrough(offset: bigint): void {
    this.visibleEnd = offset;
  }

  /** The visible table's entries (what a snapshot at `visibleThrough` holds). */
  exportVisible(): ProducerSnapshotEntry[] {
    return this.visible.exportState();
  }
}
