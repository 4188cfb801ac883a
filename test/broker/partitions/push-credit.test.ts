// Credit-based push: batches go while the subscriber's credit covers them; one larger than the
// whole window it opened with still goes once all of the window is back (nothing outstanding),
// from the log (catch-up) and from the append path alike, as a Kafka fetch returns at least one
// batch. Otherwise such a batch would stop the partition for good. A real memory partition.
import { afterEach, describe, expect, it } from 'vitest';
import { Partition } from '../../../src/broker/partitions/partition.js';
import { encodeRecordBatch } from '../../../src/protocol/record-batch.js';
import { tempDir } from '../../harness/temp-dir.js';

const LIMITS = { maxBatchBytes: 1 << 22, maxDecompressedBytes: 1 << 24 };
const WINDOW = 64 * 1024;
const batchOf = (bytes: number, fill: number) =>
  encodeRecordBatch([{ key: null, value: Buffer.alloc(bytes, fill) }]);

const opened: Partition[] = [];
async function openPartition(): Promise<Partition> {
  const partition = await Partition.open({
    topic: 't',
    index: 0,
    dir: await tempDir('ms-push-credit-'),
    config: { durability: 'never' },
    limits: LIMITS,
    storage: 'memory',
  });
  opened.push(partition);
  return partition;
}
afterEach(async () => {
  for (const partition of opened.splice(0)) await partition.close();
});

const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
};

async function produce(partition: Partition, batch: Buffer): Promise<void> {
  await partition.produce({ batch, acks: 1 });
}

describe('push credit', () => {
  it('sends a batch larger than the whole window once all of it is back, from the log', async () => {
    const partition = await openPartition();
    await produce(partition, batchOf(1000, 1));
    await produce(partition, batchOf(200 * 1024, 2));
    await produce(partition, batchOf(1000, 3));
    const pushed: number[] = [];
    const subscription = partition.subscribe(
      0n,
      WINDOW,
      (batches) => {
        for (const batch of batches) pushed.push(batch.length);
      },
      (error) => {
        throw error;
      },
    );
    await settle();
    // The small first batch fits; the large one waits while part of the window is out.
    expect(pushed.length).toBe(1);
    subscription.grant(pushed[0]!);
    await settle();
    expect(pushed.length).toBe(2);
    expect(pushed[1]).toBeGreaterThan(WINDOW);
    // The credit is below zero now: nothing more until it is granted back.
    await settle();
    expect(pushed.length).toBe(2);
    subscription.grant(pushed[1]!);
    await settle();
    expect(pushed.length).toBe(3);
  });

  it('sends it from the append path to a caught-up subscriber too', async () => {
    const partition = await openPartition();
    const pushed: number[] = [];
    partition.subscribe(
      0n,
      WINDOW,
      (batches) => {
        for (const batch of batches) pushed.push(batch.length);
      },
      (error) => {
        throw error;
      },
    );
    await settle();
    await produce(partition, batchOf(300 * 1024, 4));
    await settle();
    expect(pushed).toHaveLength(1);
    expect(pushed[0]).toBeGreaterThan(WINDOW);
  });

  it('keeps a batch that fits the window but not the credit left until credit comes back', async () => {
    const partition = await openPartition();
    await produce(partition, batchOf(40 * 1024, 5));
    await produce(partition, batchOf(40 * 1024, 6));
    const pushed: number[] = [];
    const subscription = partition.subscribe(
      0n,
      WINDOW,
      (batches) => {
        for (const batch of batches) pushed.push(batch.length);
      },
      (error) => {
        throw error;
      },
    );
    await settle();
    expect(pushed).toHaveLength(1);
    subscription.grant(pushed[0]!);
    await settle();
    expect(pushed).toHaveLength(2);
  });
});
