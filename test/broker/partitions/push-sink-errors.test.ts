// A push subscription whose sink throws (a transport that cannot take the batches) ends with that
// error, told to its subscriber: on the append path the partition's other subscriptions still get
// the batch, and during a catch-up read the error does not become an unhandled rejection.
import { afterEach, describe, expect, it } from 'vitest';
import { Partition } from '../../../src/broker/partitions/partition.js';
import { encodeRecordBatch } from '../../../src/protocol/record-batch.js';
import { tempDir } from '../../harness/temp-dir.js';

const LIMITS = { maxBatchBytes: 1 << 20, maxDecompressedBytes: 1 << 24 };
const batch = (text: string) => encodeRecordBatch([{ key: null, value: Buffer.from(text) }]);

const opened: Partition[] = [];
async function openPartition(): Promise<Partition> {
  const partition = await Partition.open({
    topic: 't',
    index: 0,
    dir: await tempDir('ms-push-sink-'),
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

/** Collects unhandled rejections while `run` and a few turns after it run. */
async function unhandledDuring(run: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const listener = (reason: unknown) => seen.push(reason);
  process.on('unhandledRejection', listener);
  try {
    await run();
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('unhandledRejection', listener);
  }
  return seen;
}

describe('a push sink that throws', () => {
  it('on the append path: its subscription ends with the error, the others still get the batch', async () => {
    const partition = await openPartition();
    const failing = new Error('sink refused');
    const errors: Error[] = [];
    const received: bigint[] = [];
    const broken = partition.subscribe(
      0n,
      1 << 20,
      () => {
        throw failing;
      },
      (error) => errors.push(error),
    );
    partition.subscribe(
      0n,
      1 << 20,
      (_batches, highWatermark) => received.push(highWatermark),
      () => undefined,
    );
    const reply = await partition.produce({ batch: batch('one'), acks: 1 });
    expect(reply.baseOffset).toBe(0n);
    expect(errors).toEqual([failing]);
    expect(broken.closed).toBe(true);
    expect(received).toEqual([1n]);
    // The ended subscription gets nothing more; the other goes on.
    await partition.produce({ batch: batch('two'), acks: 1 });
    expect(errors).toHaveLength(1);
    expect(received).toEqual([1n, 2n]);
  });

  it('while catching up from the log: the subscription ends with the error, nothing unhandled', async () => {
    const partition = await openPartition();
    for (const text of ['a', 'b', 'c']) await partition.produce({ batch: batch(text), acks: 1 });
    const errors: Error[] = [];
    const unhandled = await unhandledDuring(async () => {
      const subscription = partition.subscribe(
        0n,
        1 << 20,
        () => {
          throw new Error('transport gone');
        },
        (error) => errors.push(error),
      );
      for (let i = 0; i < 20 && !subscription.closed; i++)
        await new Promise((resolve) => setImmediate(resolve));
      expect(subscription.closed).toBe(true);
    });
    expect(unhandled).toEqual([]);
    expect(errors.map((error) => error.message)).toEqual(['transport gone']);
  });
});
