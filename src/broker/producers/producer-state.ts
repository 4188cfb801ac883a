// Idempotent-producer bookkeeping for one partition: which (producer id, epoch, sequence) batches
// were already written, so a retried batch is answered with its original offsets instead of being
// written twice. Pure state: it never touches files; the partition rebuilds it from batch headers
// on open (the headers carry producer id, epoch and base sequence), so it survives restarts.
//
// Rules (the same as Kafka's, which users of idempotent producers already know):
//  - producer id -1 means "not idempotent": nothing is checked;
//  - an epoch older than the newest seen for the id is fenced (INVALID_PRODUCER_EPOCH);
//  - a newer epoch resets the sequence: its first batch must start at sequence 0;
//  - a batch equal to one of the last RETAINED_BATCHES batches of the producer is a duplicate:
//    answer with the offsets it got the first time;
//  - baseSequence must be lastSequence + 1 (wrapping at 2^31-1); below that and not retained is
//    DUPLICATE_SEQUENCE, above it OUT_OF_ORDER_SEQUENCE (a gap: a batch in between was lost).

import { errorOf } from '../../protocol/error-codes.js';
import { RETAINED_PRODUCER_BATCHES } from '../../protocol/idempotence.js';
import type { AppendDurability } from '../../storage/partition-log.js';

export const NO_PRODUCER_ID = -1n;
/** How many recent batches per producer are remembered for duplicate detection (Kafka keeps 5). */
export const RETAINED_BATCHES = RETAINED_PRODUCER_BATCHES;
const MAX_SEQUENCE = 0x7fffffff;

export interface ProducerBatchInfo {
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  /** Records in the batch; its last sequence is baseSequence + recordCount - 1. */
  recordCount: number;
}

export interface WrittenBatch {
  baseSequence: number;
  lastSequence: number;
  baseOffset: bigint;
  lastOffset: bigint;
  /**
   * The first append's completion while the batch is not yet written (synced with durability
   * `always`): a retry answers only when it settles, as the first produce does, and fails with it
   * (the log then took the offsets back). Set by the leader's produce, dropped once the batch is
   * below the high watermark (producer-tables.ts); never in snapshots.
   */
  done?: Promise<AppendDurability> | undefined;
  /**
   * The stream sequences the first reply carried, for a retry's reply: absent for a batch without
   * keys (its reply carries none); the first one when they are consecutive from it (as when every
   * record has the same key); else the reply's per-record array itself. Set by the leader's
   * produce, in memory only: a batch a follower applied or a restart rebuilt from the log has none.
   */
  streamSequences?: number | readonly number[] | undefined;
}

interface ProducerEntry {
  epoch: number;
  /** Most recent last. */
  recent: WrittenBatch[];
}

/** One producer's state as a snapshot holds it (producer-snapshot.ts): its epoch and recent batches. */
export interface ProducerSnapshotEntry {
  producerId: bigint;
  epoch: number;
  /** Oldest first, at most RETAINED_BATCHES, never empty. */
  batches: WrittenBatch[];
}

export type SequenceCheck = { kind: 'append' } | { kind: 'duplicate'; batch: WrittenBatch };

function nextSequence(sequence: number): number {
  return sequence === MAX_SEQUENCE ? 0 : sequence + 1;
}

function lastSequenceOf(info: ProducerBatchInfo): number {
  return (info.baseSequence + info.recordCount - 1) % (MAX_SEQUENCE + 1);
}

export class ProducerStateTable {
  private readonly producers = new Map<bigint, ProducerEntry>();
  /**
   * The entry recorded last: the leader's produce attaches its completion and stream sequences to
   * it right after the hook recorded the batch (synchronously), without a lookup by producer id.
   */
  latest: WrittenBatch | null = null;

  get size(): number {
    return this.producers.size;
  }

  /** Decides whether a batch is new (append it) or a retry of a written one. Throws on fencing and gaps. */
  check(info: ProducerBatchInfo): SequenceCheck {
    if (info.producerId === NO_PRODUCER_ID) return { kind: 'append' };
    if (info.producerId < 0n || info.baseSequence < 0 || info.producerEpoch < 0) {
      throw errorOf(
        'INVALID_REQUEST',
        `producer id ${info.producerId}, epoch ${info.producerEpoch}, sequence ${info.baseSequence}`,
      );
    }
    const entry = this.producers.get(info.producerId);
    if (entry === undefined || info.producerEpoch > (entry?.epoch ?? -1)) {
      if (info.baseSequence !== 0) {
        throw errorOf(
          entry === undefined ? 'UNKNOWN_PRODUCER_ID' : 'OUT_OF_ORDER_SEQUENCE',
          `producer ${info.producerId} epoch ${info.producerEpoch} must start at sequence 0, got ${info.baseSequence}`,
        );
      }
      return { kind: 'append' };
    }
    if (info.producerEpoch < entry.epoch) {
      throw errorOf(
        'INVALID_PRODUCER_EPOCH',
        `producer ${info.producerId}: epoch ${info.producerEpoch} < current ${entry.epoch}`,
      );
    }
    const last = lastSequenceOf(info);
    for (const batch of entry.recent) {
      if (batch.baseSequence === info.baseSequence && batch.lastSequence === last)
        return { kind: 'duplicate', batch };
    }
    const newest = entry.recent[entry.recent.length - 1];
    if (newest === undefined || info.baseSequence === nextSequence(newest.lastSequence))
      return { kind: 'append' };
    if (info.baseSequence <= newest.lastSequence) {
      throw errorOf(
        'DUPLICATE_SEQUENCE',
        `producer ${info.producerId}: sequence ${info.baseSequence} was written before`,
      );
    }
    throw errorOf(
      'OUT_OF_ORDER_SEQUENCE',
      `producer ${info.producerId}: expected sequence ${nextSequence(newest.lastSequence)}, got ${info.baseSequence}`,
    );
  }

  /**
   * Records a batch that was appended (or found in the log on recovery) and returns its entry
   * (null for a batch without a producer id).
   */
  record(info: ProducerBatchInfo, baseOffset: bigint, lastOffset: bigint): WrittenBatch | null {
    if (info.producerId === NO_PRODUCER_ID) return null;
    const batch: WrittenBatch = {
      baseSequence: info.baseSequence,
      lastSequence: lastSequenceOf(info),
      baseOffset,
      lastOffset,
      done: undefined,
      streamSequences: undefined,
    };
    this.recordWritten(info, batch);
    return batch;
  }

  /** Records an entry as it is (one taken back into the table after a truncation keeps its state). */
  recordWritten(info: ProducerBatchInfo, batch: WrittenBatch): void {
    let entry = this.producers.get(info.producerId);
    if (entry === undefined || info.producerEpoch > entry.epoch) {
      entry = { epoch: info.producerEpoch, recent: [] };
      this.producers.set(info.producerId, entry);
    }
    entry.recent.push(batch);
    if (entry.recent.length > RETAINED_BATCHES) entry.recent.shift();
    this.latest = batch;
  }

  /**
   * Drops every producer whose newest batch ends below `logStartOffset` (retention deleted it): the
   * log no longer holds anything of it, and a replay from the log start would not know it either.
   * (A producer that still has a batch at or past the log start keeps its older ones.)
   */
  dropProducersBelow(logStartOffset: bigint): void {
    for (const [producerId, entry] of this.producers) {
      const newest = entry.recent[entry.recent.length - 1];
      if (newest === undefined || newest.lastOffset < logStartOffset) this.producers.delete(producerId);
    }
    if (this.latest !== null && this.latest.lastOffset < logStartOffset) this.latest = null;
  }

  /** The stream sequences of the batches that have them, by base offset (a rebuild keeps them). */
  streamSequencesByOffset(): Map<bigint, number | readonly number[]> {
    const kept = new Map<bigint, number | readonly number[]>();
    for (const entry of this.producers.values())
      for (const batch of entry.recent)
        if (batch.streamSequences !== undefined) kept.set(batch.baseOffset, batch.streamSequences);
    return kept;
  }

  /** Gives the batches at these base offsets their stream sequences back (after a rebuild). */
  restoreStreamSequences(kept: ReadonlyMap<bigint, number | readonly number[]>): void {
    if (kept.size === 0) return;
    for (const entry of this.producers.values())
      for (const batch of entry.recent) {
        const sequences = kept.get(batch.baseOffset);
        if (sequences !== undefined) batch.streamSequences = sequences;
      }
  }

  /**
   * A copy of the table, sorted by producer id (so equal tables export equal arrays). A snapshot
   * must hold exactly the batches below its offset, and this table cannot give "the state as of an
   * earlier offset" (what a later batch evicted or an epoch bump dropped is gone): the partition
   * exports a table that has seen exactly the batches below the offset (producer-tables.ts, the
   * visible table).
   */
  exportState(): ProducerSnapshotEntry[] {
    const entries: ProducerSnapshotEntry[] = [];
    for (const [producerId, entry] of this.producers) {
      if (entry.recent.length === 0) continue;
      entries.push({
        producerId,
        epoch: entry.epoch,
        batches: entry.recent.map(({ baseSequence, lastSequence, baseOffset, lastOffset }) => ({
          baseSequence,
          lastSequence,
          baseOffset,
          lastOffset,
        })),
      });
    }
    return entries.sort((a, b) => (a.producerId < b.producerId ? -1 : a.producerId > b.producerId ? 1 : 0));
  }

  /**
   * Replaces the table by a snapshot's entries, forgetting batches below `logStartOffset` (retention
   * deleted their segments since the snapshot was written; a replay from the log start would not
   * see them either).
   *
   * Why snapshot-then-replay equals a full replay (the log's batches of one producer are in offset
   * order, and its epochs never decrease along the log, since older epochs are fenced):
   *  - Epochs: a snapshot entry holds only batches of the producer's newest epoch below the offset
   *    (record() starts a fresh entry when the epoch grows). Replaying a batch of a newer epoch
   *    starts a fresh entry again, dropping the snapshot's batches — as the full replay drops the
   *    same batches at the same point. Old-epoch batches are never carried into a new epoch.
   *  - Eviction: record() keeps the last RETAINED_BATCHES of a producer's batches in the current
   *    epoch. Let S be that producer's batches below the snapshot offset and R those replayed after
   *    it. The last 5 of S ++ R depend only on R and the last 5 of S (if R has ≥ 5 batches they are
   *    R's last 5; otherwise all of R after the last 5 − |R| of S, all of which are in last5(S)).
   *    The snapshot holds last5(S), so last5(last5(S) ++ R) = last5(S ++ R): the full replay's.
   *  - Retention: the batches left after retention are a suffix of S ++ R; the last 5 of a suffix
   *    are the last 5 of the whole restricted to that suffix, so dropping snapshot batches below the
   *    new log start gives what a replay from the log start gives.
   */
  loadState(entries: readonly ProducerSnapshotEntry[], logStartOffset = 0n): void {
    this.producers.clear();
    this.latest = null;
    for (const { producerId, epoch, batches } of entries) {
      const recent = batches
        .filter((batch) => batch.lastOffset >= logStartOffset)
        // The same shape as record()'s entries (check() reads both).
        .map(({ baseSequence, lastSequence, baseOffset, lastOffset }) => ({
          baseSequence,
          lastSequence,
          baseOffset,
          lastOffset,
          done: undefined,
          streamSequences: undefined,
        }));
      if (recent.length > 0) this.producers.set(producerId, { epoch, recent });
    }
  }
}
