// A retried idempotent batch, answered from the producer table (a duplicate): it is acknowledged
// only once its first copy is written (synced with durability `always`), fails if that write fails,
// and carries the stream sequences the first reply carried.
import { describe, expect, it } from 'vitest';
import { Partition } from '../../../src/broker/partitions/partition.js';
import type { ProduceResponse } from '../../../src/protocol/commands/data-types.js';
import { ErrorCode } from '../../../src/protocol/error-codes.js';
import { encodeRecordBatch } from '../../../src/protocol/record-batch.js';
import { tempDir } from '../../harness/temp-dir.js';
import { faultyFs } from '../../storage/helpers/faulty-fs.js';

const LIMITS = { maxBatchBytes: 1 << 20, maxDecompressedBytes: 1 << 24 };

function batch(keys: readonly (string | null)[], baseSequence: number, producerId = 7n): Buffer {
  return encodeRecordBatch(
    keys.map((key, i) => ({ key, value: `v${baseSequence + i}` })),
    { producerId, producerEpoch: 0, baseSequence },
  );
}

/** Lets the event loop turn until `condition` holds (a held write reaching the file system). */
async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(condition()).toBe(true);
}

/** Whether `promise` is still pending after the event loop turned a few times. */
async function pending(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  await new Promise((resolve) => setTimeout(resolve, 30));
  return !settled;
}

async function heldPartition() {
  const { fs, faults } = faultyFs();
  const partition = await Partition.open({
    topic: 't',
    index: 0,
    dir: await tempDir('ms-idempotent-retries-'),
    // Every write goes to the thread pool, where the faulty fs holds it.
    config: { durability: 'always', inlineWriteMaxBytes: 0 },
    limits: LIMITS,
    fs,
  });
  return { partition, faults };
}

/** Closes, letting any write still held land first (a failed assertion must not hang the close). */
async function closeReleasing(partition: Partition, faults: ReturnType<typeof faultyFs>['faults']) {
  faults.holdWrites = false;
  for (const held of faults.held.splice(0)) held.release();
  await partition.close();
}

describe('idempotent retries', () => {
  it('answers a retry only when the first copy is synced, with its durability', async () => {
    const { partition, faults } = await heldPartition();
    try {
      faults.holdWrites = true;
      const first = partition.produce({ batch: batch(['order-1'], 0), acks: 1 });
      await until(() => faults.held.length === 1);
      const retry = partition.produce({ batch: batch(['order-1'], 0), acks: 1 });
      expect(await pending(retry)).toBe(true);
      faults.holdWrites = false;
      faults.held[0]!.release();
      const [a, b] = await Promise.all([first, retry]);
      expect(a).toEqual({
        baseOffset: 0n,
        lastOffset: 0n,
        durability: 'synced',
        duplicate: false,
        sequences: [0],
      });
      expect(b).toEqual({
        baseOffset: 0n,
        lastOffset: 0n,
        durability: 'synced',
        duplicate: true,
        sequences: [0],
      });
    } finally {
      await closeReleasing(partition, faults);
    }
  });

  it('fails a retry whose first copy fails to be written, and the next retry is written', async () => {
    const { partition, faults } = await heldPartition();
    try {
      faults.holdWrites = true;
      const first = partition.produce({ batch: batch(['order-1'], 0), acks: 1 });
      const firstFailed = first.catch((error: { code?: number }) => error.code);
      await until(() => faults.held.length === 1);
      const retry = partition.produce({ batch: batch(['order-1'], 0), acks: 1 });
      const retryFailed = retry.then(
        (reply) => reply,
        (error: { code?: number }) => error.code,
      );
      expect(await pending(retry)).toBe(true);
      faults.holdWrites = false;
      faults.held[0]!.release('ENOSPC');
      expect(await firstFailed).toBe(ErrorCode.STORAGE_FULL);
      // Not acknowledged: the log took the offsets back and holds nothing.
      expect(await retryFailed).toBe(ErrorCode.STORAGE_FULL);
      expect(partition.log.logEndOffset).toBe(0n);
      expect(partition.streams.version('order-1')).toBe(0);
      // The producer retries again: now it is written, once.
      const again = await partition.produce({ batch: batch(['order-1'], 0), acks: 1 });
      expect(again).toMatchObject({ baseOffset: 0n, duplicate: false, durability: 'synced', sequences: [0] });
      expect(partition.log.logEndOffset).toBe(1n);
      expect(partition.streams.version('order-1')).toBe(1);
    } finally {
      await closeReleasing(partition, faults);
    }
  });

  it('answers a retry of a written batch at once, without keeping its completion', async () => {
    const { partition } = await heldPartition();
    try {
      await partition.produce({ batch: batch(['order-1'], 0), acks: 1 });
      const check = partition.producers.check({
        producerId: 7n,
        producerEpoch: 0,
        baseSequence: 0,
        recordCount: 1,
      });
      expect(check.kind).toBe('duplicate');
      if (check.kind === 'duplicate') expect(check.batch.done).toBeUndefined();
      const retry = await partition.produce({ batch: batch(['order-1'], 0), acks: 1 });
      expect(retry).toEqual({
        baseOffset: 0n,
        lastOffset: 0n,
        durability: 'synced',
        duplicate: true,
        sequences: [0],
      });
    } finally {
      await partition.close();
    }
  });

  it("gives a retry the first reply's stream sequences", async () => {
    const partition = await Partition.open({
      topic: 't',
      index: 0,
      dir: await tempDir('ms-idempotent-retries-'),
      config: { durability: 'never' },
      limits: LIMITS,
    });
    try {
      const replies: ProduceResponse[] = [];
      const send = async (keys: readonly (string | null)[], sequence: number, expectedVersion?: number) => {
        const input = { batch: batch(keys, sequence), acks: 1 as const, expectedVersion };
        const reply = await partition.produce(input);
        const retried = await partition.produce({ ...input, batch: batch(keys, sequence) });
        expect(retried).toEqual({ ...reply, duplicate: true });
        replies.push(reply);
      };
      await send(['order-1'], 0);
      // An event-sourcing append retried after its first copy was stored: the receipt's sequence
      // gives the next expected version.
      await send(['order-1'], 1, 1);
      await send(['order-1', 'order-1', 'order-1'], 2, 2);
      await send(['a', null, 'order-1', 'a', 'b'], 5);
      await send([null, null], 10);
      await send(['b', 'b'], 12);
      expect(replies.map((reply) => reply.sequences)).toEqual([
        [0],
        [1],
        [2, 3, 4],
        [0, -1, 5, 1, 0],
        [],
        [1, 2],
      ]);
      expect(replies.every((reply) => !reply.duplicate)).toBe(true);
      expect(partition.log.logEndOffset).toBe(14n);
    } finally {
      await partition.close();
    }
  });

  it('keeps stream sequences of written batches when a later append fails', async () => {
    const { fs, faults } = faultyFs();
    const partition = await Partition.open({
      topic: 't',
      index: 0,
      dir: await tempDir('ms-idempotent-retries-'),
      config: { durability: 'never', inlineWriteMaxBytes: 0 },
      limits: LIMITS,
      fs,
    });
    try {
      await partition.produce({ batch: batch(['x', 'y'], 0), acks: 1 });
      await partition.produce({ batch: batch(['x'], 2), acks: 1 });
      faults.writeError = 'ENOSPC';
      await expect(partition.produce({ batch: batch(['x'], 3), acks: 1 })).rejects.toMatchObject({
        code: ErrorCode.STORAGE_FULL,
      });
      faults.writeError = null;
      expect(await partition.produce({ batch: batch(['x', 'y'], 0), acks: 1 })).toMatchObject({
        duplicate: true,
        sequences: [0, 0],
      });
      expect(await partition.produce({ batch: batch(['x'], 2), acks: 1 })).toMatchObject({
        duplicate: true,
        sequences: [1],
      });
    } finally {
      await partition.close();
    }
  });
});
