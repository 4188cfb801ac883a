// The idempotent-producer table forgets a producer once retention deleted its newest batch: a
// partition written by many short-lived producers keeps only those with a batch in the log, in
// memory and in its snapshots, as an open that replays the log from its start would.
import { describe, expect, it } from 'vitest';
import { Partition } from '../../../src/broker/partitions/partition.js';
import { listSnapshots, readSnapshot } from '../../../src/broker/producers/producer-snapshot.js';
import { encodeRecordBatch } from '../../../src/protocol/record-batch.js';
import { tempDir } from '../../harness/temp-dir.js';

const LIMITS = { maxBatchBytes: 1 << 20, maxDecompressedBytes: 1 << 24 };
const VALUE = 'x'.repeat(200);

function batch(producerId: bigint, baseSequence = 0): Buffer {
  return encodeRecordBatch([{ key: 'k', value: VALUE }], { producerId, producerEpoch: 0, baseSequence });
}

/** Producers with a batch at or past the log start: what a replay from the log start knows. */
async function producersInLog(partition: Partition): Promise<number> {
  const ids = new Set<bigint>();
  let offset = partition.log.logStartOffset;
  while (offset < partition.log.highWatermark) {
    const { data, nextOffset } = await partition.log.read(offset, 1 << 20);
    for (let at = 0; at < data.length; at += 12 + data.readInt32BE(at + 8)) {
      ids.add(data.readBigInt64BE(at + 43));
    }
    offset = nextOffset;
  }
  return ids.size;
}

describe('producer expiry', () => {
  it('drops the producers retention left without a batch (memory topic, retention at each roll)', async () => {
    const partition = await Partition.open({
      topic: 't',
      index: 0,
      dir: '/mem/t/0',
      storage: 'memory',
      config: { segmentBytes: 8192, retentionBytes: 16384, durability: 'never' },
      limits: LIMITS,
    });
    try {
      for (let id = 0; id < 2000; id++) await partition.produce({ batch: batch(BigInt(id)), acks: 1 });
      // The last roll's retention run (and its producer expiry) is done when the next run is.
      await partition.log.applyRetention();
      expect(partition.log.logStartOffset).toBeGreaterThan(1800n);
      const inLog = await producersInLog(partition);
      // At most the producers of what the last roll's retention left (this run removed nothing more).
      expect(partition.producers.size).toBeLessThanOrEqual(inLog + 40);
      expect(partition.producers.size).toBeLessThan(200);
      // A producer still in the log is known: its retry is a duplicate, its next batch follows.
      expect(await partition.produce({ batch: batch(1999n), acks: 1 })).toMatchObject({
        duplicate: true,
        lastOffset: 1999n,
      });
      // One whose batches retention deleted starts again, as after a restart.
      await expect(partition.produce({ batch: batch(0n, 1), acks: 1 })).rejects.toMatchObject({
        message: expect.stringContaining('must start at sequence 0'),
      });
    } finally {
      await partition.close();
    }
  });

  it('drops them at the next roll after the periodic retention, before the snapshot (disk topic)', async () => {
    const dir = await tempDir('ms-producer-expiry-');
    const open = () =>
      Partition.open({
        topic: 't',
        index: 0,
        dir,
        config: { segmentBytes: 8192, retentionBytes: 16384, durability: 'never' },
        limits: LIMITS,
      });
    const partition = await open();
    let size: number;
    try {
      for (let id = 0; id < 1000; id++) await partition.produce({ batch: batch(BigInt(id)), acks: 1 });
      // The broker's periodic retention (BrokerCore.applyRetention) calls the log directly.
      expect(await partition.log.applyRetention()).toBeGreaterThan(0);
      const start = partition.log.logStartOffset;
      // Up to the next roll: the producers written since come on top of those retention left.
      let id = 1000;
      while (partition.log.logEndOffset < start + 200n)
        await partition.produce({ batch: batch(BigInt(id++)), acks: 1 });
      await partition.snapshotsWritten();
      size = partition.producers.size;
      expect(size).toBe(await producersInLog(partition));
      expect(size).toBeLessThan(400);
      const [newest] = await listSnapshots(dir);
      const snapshot = await readSnapshot(dir, newest!);
      expect(snapshot!.entries.length).toBeLessThan(400);
    } finally {
      await partition.close();
    }
    // The clean close's snapshot holds what a replay from the log start gives.
    const reopened = await open();
    try {
      expect(reopened.producerRecovery.replayedBatches).toBe(0);
      expect(reopened.producers.size).toBe(size);
      expect(reopened.producers.size).toBe(await producersInLog(reopened));
    } finally {
      await reopened.close();
    }
  });
});
