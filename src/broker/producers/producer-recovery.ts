// Rebuilds a partition's producer tables from its log: from the newest usable snapshot (none: the
// log start), then a replay of the batch headers from the snapshot's offset up to a bound. An open
// does it up to the high watermark; a truncation below the high watermark up to the cut.

import { splitBatches } from '../../protocol/record-batch.js';
import { BATCH_OFFSETS } from '../../protocol/record-batch-layout.js';
import type { PartitionLog } from '../../storage/partition-log.js';
import type { ProducerSnapshotStore } from './producer-snapshot-store.js';
import type { ProducerTables } from './producer-tables.js';

const REPLAY_CHUNK_BYTES = 1024 * 1024;

/** How the last rebuild built the producer tables (tests and the partition-open benchmark read it). */
export interface ProducerRecovery {
  /** The snapshot the replay started from; null for a replay from the log start. */
  snapshotOffset: bigint | null;
  replayedBatches: number;
  replayedBytes: number;
  /** Time the producer tables took to build (snapshot load and replay). */
  seconds: number;
}

/**
 * Builds `tables` as a replay of the log's batches below `upTo` gives them. Snapshots above
 * `discardAbove` are deleted durably first (producer-snapshot-store.ts, newestUsable).
 */
export async function rebuildProducerTables(
  tables: ProducerTables,
  store: ProducerSnapshotStore,
  log: PartitionLog,
  bounds: { upTo: bigint; discardAbove: bigint },
): Promise<ProducerRecovery> {
  const started = performance.now();
  const start = log.logStartOffset;
  const snapshot = await store.newestUsable({
    discardAbove: bounds.discardAbove,
    logStartOffset: start,
    upTo: bounds.upTo,
  });
  tables.reset(snapshot?.entries ?? [], start);
  const recovery: ProducerRecovery = {
    snapshotOffset: snapshot?.offset ?? null,
    replayedBatches: 0,
    replayedBytes: 0,
    seconds: 0,
  };
  const from = snapshot?.offset ?? start;
  // Only numbers are kept from each header, so the replay's reused buffers are safe here.
  replay: for await (const { data } of log.replay(from, REPLAY_CHUNK_BYTES)) {
    recovery.replayedBytes += data.length;
    for (const batch of splitBatches(data)) {
      if (batch.readBigInt64BE(BATCH_OFFSETS.baseOffset) >= bounds.upTo) break replay;
      recovery.replayedBatches++;
      tables.replay(batch);
    }
  }
  tables.replayedThrough(bounds.upTo);
  recovery.seconds = (performance.now() - started) / 1000;
  return recovery;
}
