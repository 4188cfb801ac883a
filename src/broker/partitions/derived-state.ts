// What the broker derives from a partition's appended batches: the idempotent-producer tables (and
// their snapshots) and the stream versions (the stream index). Every change goes through one hook,
// `applyAppendedBatch`, fed with the batch bytes as stored and their offsets, and its counterpart
// `truncated`: the leader runs it after each append of a producer's batch, a follower its
// `applyReplicatedBatch` form after each `log.appendReplicated` of the leader's batches (that
// append counts the stream keys itself). Both hold the same batches at the same offsets, so both hold the
// same producer sequences and stream versions, and a follower that becomes leader answers retries
// and expected-version appends as the old leader would have.
//
// Contract for callers: batches are applied in offset order, each once, synchronously right after
// the log accepted them (`log.append` for the leader, the follower's append of the leader's
// batches), before the event loop turns: the stream index counts a batch's keys into the segment
// being written, and a roll during the write seals them into that segment's stream file. (The
// producer tables would also take a batch applied after it became visible.) `visible` is the log's
// onVisible listener. `truncated(offset)` forgets every batch at or past `offset`, after the log
// dropped them.

import { type InflateLimits, splitBatches } from '../../protocol/record-batch.js';
import { BATCH_OFFSETS } from '../../protocol/record-batch-layout.js';
import type { PartitionLog } from '../../storage/partition-log.js';
import type { StreamIndex } from '../../storage/stream-index.js';
import { type ProducerRecovery, rebuildProducerTables } from '../producers/producer-recovery.js';
import { ProducerSnapshotStore } from '../producers/producer-snapshot-store.js';
import type { ProducerStateTable } from '../producers/producer-state.js';
import { ProducerTables } from '../producers/producer-tables.js';
import { StreamKeys } from './stream-keys.js';

/** Read size for the batches a reopened replica holds past its high watermark. */
const HELD_TAIL_READ_BYTES = 1024 * 1024;

export class DerivedState {
  private readonly tables = new ProducerTables();
  private readonly snapshots: ProducerSnapshotStore;
  /** How the last rebuild (open, or a truncation below the high watermark) built the producer tables. */
  producerRecovery: ProducerRecovery = {
    snapshotOffset: null,
    replayedBatches: 0,
    replayedBytes: 0,
    seconds: 0,
  };

  constructor(
    private readonly log: PartitionLog,
    /** The log's stream index (kept by storage; counted here). */
    readonly streams: StreamIndex,
    private readonly limits: () => InflateLimits,
    /** False for a log in memory: producer snapshots are neither written nor read. */
    persistent = true,
  ) {
    this.snapshots = new ProducerSnapshotStore(
      log.dir,
      () => (log.state === 'closed' ? null : log.logStartOffset),
      persistent,
    );
  }

  /** The producer table a new batch is checked against: every batch applied. */
  get producers(): ProducerStateTable {
    return this.tables.appended;
  }

  /** Snapshot writes or prunes that failed (they only cost replay time at the next open). */
  get snapshotFailures(): number {
    return this.snapshots.failures;
  }

  /**
   * Builds the producer tables for the log as opened: from the newest valid snapshot at or below
   * the high watermark (and not below the log start), then a replay of the batch headers from its
   * offset; from the log start when there is none. A snapshot past the log end describes data
   * recovery cut off (it was not durable): it is deleted durably now, before an append could bring
   * the log end past it again. (The stream index is built by the log's own recovery.)
   */
  async recover(): Promise<void> {
    this.producerRecovery = await rebuildProducerTables(this.tables, this.snapshots, this.log, {
      upTo: this.log.highWatermark,
      discardAbove: this.log.logEndOffset,
    });
    await this.recordHeldTail();
  }

  /**
   * A replica reopened with batches past its high watermark (written, not yet acknowledged by the
   * in-sync replicas when it stopped) holds them back from readers, but they are appended: should
   * it lead, a retry of one is a duplicate and the producer's next batch follows it. They are
   * recorded as appended now and join the visible table when the high watermark passes them. (Left
   * out, a retry was written twice, or refused as a stream conflict after its first copy counted.)
   */
  private async recordHeldTail(): Promise<void> {
    let offset = this.log.highWatermark;
    while (offset < this.log.logEndOffset) {
      const { data, nextOffset } = await this.log.readForReplica(offset, HELD_TAIL_READ_BYTES);
      if (data.length === 0) break;
      for (const batch of splitBatches(data)) {
        const baseOffset = batch.readBigInt64BE(BATCH_OFFSETS.baseOffset);
        const lastOffset = baseOffset + BigInt(batch.readInt32BE(BATCH_OFFSETS.lastOffsetDelta));
        this.tables.recordAppended(batch, baseOffset, lastOffset);
      }
      offset = nextOffset;
    }
  }

  /**
   * The hook: one batch was appended at `baseOffset..lastOffset` (`batch` as stored). Records its
   * producer batch and counts its keyed records in the stream index; returns each record's stream
   * sequence (-1 for a record without a key), or no sequences at all when no record has a key.
   * `keys` are the batch's stream keys when the caller already read them (the leader, while it
   * validated the batch); otherwise they are read from the bytes (StreamKeys.of gives the same).
   */
  applyAppendedBatch(
    batch: Buffer,
    baseOffset: bigint,
    lastOffset: bigint,
    keys: StreamKeys = StreamKeys.of(batch, this.limits()),
  ): number[] {
    this.tables.recordAppended(batch, baseOffset, lastOffset);
    if (!keys.keyed) return [];
    const base = Number(baseOffset);
    const sequences = new Array<number>(keys.keys.length);
    for (let i = 0; i < sequences.length; i++) {
      const key = keys.keys[i]!;
      sequences[i] = key === null ? -1 : this.streams.add(key, base + keys.deltas[i]!);
    }
    return sequences;
  }

  /**
   * The follower's side of the hook: the leader's batches were stored by `log.appendReplicated`,
   * which counts their keyed records in the stream index itself (a replica's stream files are the
   * leader's); this records the producer batch of each, in offset order, synchronously after the
   * append, as `applyAppendedBatch` does for the leader.
   */
  applyReplicatedBatch(batch: Buffer, baseOffset: bigint, lastOffset: bigint): void {
    this.tables.recordAppended(batch, baseOffset, lastOffset);
  }

  /**
   * The log dropped every batch at or past `offset` (appends that failed, or a follower's
   * truncation to where its history and the leader's agree): afterwards the state is what applying
   * the remaining batches gives. At or above the high watermark (what failed appends take back)
   * that happens synchronously, in memory. Below it the producer tables are rebuilt from a snapshot
   * and the log (snapshots above `offset` are deleted durably first); the caller appends nothing
   * until that settles. Stream versions are taken back from the stream index's entries of the
   * active segment; a truncation into a sealed segment needs the log to have rebuilt its stream
   * index for the segments left.
   */
  truncated(offset: bigint): Promise<void> {
    this.streams.takeBack(Number(offset));
    if (this.tables.truncateAbove(offset)) return Promise.resolve();
    return rebuildProducerTables(this.tables, this.snapshots, this.log, {
      upTo: offset,
      discardAbove: offset,
    }).then((recovery) => {
      this.producerRecovery = recovery;
    });
  }

  /**
   * Retention may have moved the log start: the producers whose newest batch ends below it are
   * forgotten (in memory, so in the next snapshot too), as an open from the new log start would.
   */
  logStartMoved(): void {
    this.tables.dropProducersBelow(this.log.logStartOffset);
  }

  /** The log's onVisible listener: the batches below `highWatermark` became readable. */
  visible(batches: readonly Buffer[], highWatermark: bigint): void {
    this.tables.recordVisible(batches, highWatermark);
  }

  /**
   * Saves the visible producer table (docs/producer-snapshots.md) after the writes queued before.
   * The table is copied now; the file is written in the background, and a failure only means a
   * longer replay at the next open.
   */
  snapshotInBackground(): Promise<void> {
    const offset = this.tables.visibleThrough;
    if (!this.snapshots.wouldSave(offset)) return this.snapshots.written();
    return this.snapshots.saveInBackground({ offset, entries: this.tables.exportVisible() });
  }

  /** Settles when the snapshot writes started so far are done. */
  snapshotsWritten(): Promise<void> {
    return this.snapshots.written();
  }

  /** Compaction is about to replace the sealed segment at `baseOffset` (producer-snapshot-store.ts). */
  invalidateSnapshotsFrom(baseOffset: bigint): Promise<void> {
    return this.snapshots.invalidateFrom(baseOffset);
  }
}
