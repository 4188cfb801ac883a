// The derived state of a partition (derived-state.ts) through real partitions on real files: a
// leader produces a random mix of idempotent batches (retries, epoch bumps, evictions), plain
// batches, keyed records of a few streams and expected-version appends; a fresh partition that
// takes the leader's batches as a follower does (the same bytes at the same offsets, then the
// hook) holds the same producer state and stream versions, answers retries and expected-version
// appends as the leader would, also after a restart; and after a truncation the state is the one
// the remaining prefix gives.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Partition } from '../../../src/broker/partitions/partition.js';
import { listSnapshots } from '../../../src/broker/producers/producer-snapshot.js';
import type { ProducerBatchInfo, ProducerStateTable } from '../../../src/broker/producers/producer-state.js';
import { ErrorCode } from '../../../src/protocol/error-codes.js';
import { encodeRecordBatch, type RecordInput, splitBatches } from '../../../src/protocol/record-batch.js';
import { BATCH_OFFSETS } from '../../../src/protocol/record-batch-layout.js';
import type { PartitionLogConfig } from '../../../src/storage/partition-log.js';
import { tempDir } from '../../harness/temp-dir.js';

const LIMITS = { maxBatchBytes: 1 << 20, maxDecompressedBytes: 1 << 24 };
// One segment: a truncation stays within the active segment, whose stream entries the stream
// index takes back itself.
const CONFIG: Partial<PartitionLogConfig> = { durability: 'never' };
const STREAMS = ['a', 'b', 'c'];

async function openPartition(dir?: string, config = CONFIG, keepHighWatermark = false): Promise<Partition> {
  const at = dir ?? (await tempDir('ms-derived-state-'));
  return Partition.open({ topic: 't', index: 0, dir: at, config, limits: LIMITS, keepHighWatermark });
}

interface Command {
  /** 0: a batch without producer id. */
  producer: number;
  keys: 'a' | 'b' | 'c' | 'mixed' | 'none';
  records: number;
  bumpEpoch: boolean;
  /** Send the producer's last batch again instead (a retry). */
  retry: boolean;
  expected: 'none' | 'right' | 'wrong';
}

const commands = fc.array(
  fc.record({
    producer: fc.integer({ min: 0, max: 3 }),
    keys: fc.constantFrom('a', 'b', 'c', 'mixed', 'none'),
    records: fc.integer({ min: 1, max: 3 }),
    bumpEpoch: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
    retry: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
    expected: fc.constantFrom('none', 'none', 'right', 'wrong'),
  }),
  { minLength: 1, maxLength: 30 },
);

function recordsOf(command: Command, serial: number): RecordInput[] {
  return Array.from({ length: command.records }, (_, i) => {
    const key =
      command.keys === 'none'
        ? null
        : command.keys === 'mixed'
          ? ([STREAMS[i % 2]!, null] as const)[i % 3 === 2 ? 1 : 0]
          : command.keys;
    return { key, value: `m${serial}-${i}` };
  });
}

/** Produces the commands on `leader` the way clients would (the model keeps each producer's next sequence). */
async function produceAll(leader: Partition, script: readonly Command[]): Promise<void> {
  const producers = new Map<number, { epoch: number; next: number; last: Buffer | null }>();
  let serial = 0;
  for (const command of script) {
    serial++;
    const state = producers.get(command.producer) ?? { epoch: 0, next: 0, last: null };
    if (command.retry && state.last !== null) {
      const reply = await leader.produce({ batch: Buffer.from(state.last), acks: 1 });
      expect(reply.duplicate).toBe(true);
      continue;
    }
    if (command.bumpEpoch) {
      state.epoch++;
      state.next = 0;
    }
    const records = recordsOf(command, serial);
    const batch =
      command.producer === 0
        ? encodeRecordBatch(records)
        : encodeRecordBatch(records, {
            producerId: BigInt(command.producer),
            producerEpoch: state.epoch,
            baseSequence: state.next,
          });
    const key = command.keys === 'a' || command.keys === 'b' || command.keys === 'c' ? command.keys : null;
    let expectedVersion: number | undefined;
    if (key !== null && command.expected !== 'none') {
      expectedVersion = leader.streams.version(key) + (command.expected === 'wrong' ? 1 : 0);
    }
    const sent = Buffer.from(batch);
    try {
      await leader.produce({ batch, acks: 1, expectedVersion });
    } catch (error) {
      expect(command.expected).toBe('wrong');
      expect((error as { code?: number }).code).toBe(ErrorCode.STREAM_VERSION_CONFLICT);
      continue;
    }
    if (command.producer !== 0) {
      state.next += command.records;
      state.last = sent;
      producers.set(command.producer, state);
    }
  }
}

/** The leader's batches as stored, from the log start to the high watermark. */
async function batchesOf(partition: Partition): Promise<Buffer[]> {
  const batches: Buffer[] = [];
  let offset = partition.log.logStartOffset;
  while (offset < partition.log.highWatermark) {
    const { data, nextOffset } = await partition.log.read(offset, 1 << 20);
    for (const batch of splitBatches(data)) batches.push(Buffer.from(batch));
    offset = nextOffset;
  }
  return batches;
}

const baseOffsetOf = (batch: Buffer) => batch.readBigInt64BE(BATCH_OFFSETS.baseOffset);
const lastOffsetOf = (batch: Buffer) =>
  baseOffsetOf(batch) + BigInt(batch.readInt32BE(BATCH_OFFSETS.lastOffsetDelta));

/**
 * What a follower does with the leader's batches: stores the same bytes at the same offsets
 * (`appendReplicated`, which counts their stream keys), then runs the follower's hook on them.
 */
async function replicate(batches: readonly Buffer[], follower: Partition): Promise<void> {
  const written: Promise<unknown>[] = [];
  for (const stored of batches) {
    const batch = Buffer.from(stored);
    const ticket = follower.log.appendReplicated(batch);
    expect(ticket.baseOffset).toBe(baseOffsetOf(stored));
    follower.derived.applyReplicatedBatch(batch, ticket.baseOffset, ticket.lastOffset);
    written.push(ticket.done);
  }
  await Promise.all(written);
}

/** The hook alone (no log append): derived state of exactly these batches. */
function applyOnly(batches: readonly Buffer[], partition: Partition): void {
  for (const batch of batches)
    partition.derived.applyAppendedBatch(batch, baseOffsetOf(batch), lastOffsetOf(batch));
}

type Answer = { kind: 'append' } | { kind: 'duplicate'; batch: unknown } | { error: number | undefined };
function answer(table: ProducerStateTable, info: ProducerBatchInfo): Answer {
  try {
    const check = table.check(info);
    if (check.kind === 'append') return check;
    // What the log determines; a leader's entry also holds what its produce attached (the first
    // append's completion, the reply's stream sequences), which neither a follower nor a rebuild has.
    const { baseSequence, lastSequence, baseOffset, lastOffset } = check.batch;
    return { kind: 'duplicate', batch: { baseSequence, lastSequence, baseOffset, lastOffset } };
  } catch (error) {
    return { error: (error as { code?: number }).code };
  }
}

/** Producer state and the idempotence answers around it. */
function producerStateOf(partition: Partition) {
  const answers: Answer[] = [];
  for (const producerId of [1n, 2n, 3n]) {
    for (const producerEpoch of [0, 1, 2]) {
      for (let baseSequence = 0; baseSequence < 16; baseSequence++) {
        for (const recordCount of [1, 2, 3])
          answers.push(answer(partition.producers, { producerId, producerEpoch, baseSequence, recordCount }));
      }
    }
  }
  return { producers: partition.producers.exportState(), answers };
}

/** Producer state, idempotence answers around it, and every stream's version and entries. */
async function stateOf(partition: Partition) {
  const streams = [];
  for (const key of STREAMS) {
    streams.push({
      key,
      version: partition.streams.version(key),
      entries: await partition.streams.locate(key, 0, 10_000),
    });
  }
  return { ...producerStateOf(partition), streams };
}

describe('DerivedState', () => {
  it('a follower that applies the leader batches through the hook holds the leader state, also after a restart', async () => {
    await fc.assert(
      fc.asyncProperty(commands, async (script) => {
        const leader = await openPartition();
        const follower = await openPartition();
        try {
          await produceAll(leader, script);
          await replicate(await batchesOf(leader), follower);
          const expected = await stateOf(leader);
          expect(await stateOf(follower)).toEqual(expected);

          // A restart of the follower rebuilds the same (snapshot at close, stream files).
          const dir = follower.log.dir;
          await follower.close();
          const reopened = await openPartition(dir);
          try {
            expect(reopened.producerRecovery.snapshotOffset).toBe(reopened.log.logEndOffset);
            expect(await stateOf(reopened)).toEqual(expected);
            // As the new leader: the old leader's next expected-version appends, and its retries.
            for (const key of STREAMS) {
              const version = leader.streams.version(key);
              const stale = encodeRecordBatch([{ key, value: 'late' }]);
              await expect(
                reopened.produce({ batch: stale, acks: 1, expectedVersion: version + 1 }),
              ).rejects.toMatchObject({ code: ErrorCode.STREAM_VERSION_CONFLICT });
              const reply = await reopened.produce({
                batch: encodeRecordBatch([{ key, value: 'next' }]),
                acks: 1,
                expectedVersion: version,
              });
              expect(reply.sequences).toEqual([version]);
            }
          } finally {
            await reopened.close();
          }
        } finally {
          await leader.close();
          if (follower.log.state !== 'closed') await follower.close();
        }
      }),
      { numRuns: 12 },
    );
  });

  it('answers a retry of the old leader batch with the old leader offsets', async () => {
    const leader = await openPartition();
    const follower = await openPartition();
    try {
      const first = encodeRecordBatch([{ key: 'a', value: '1' }], {
        producerId: 5n,
        producerEpoch: 0,
        baseSequence: 0,
      });
      const retry = Buffer.from(first);
      await leader.produce({ batch: encodeRecordBatch([{ value: 'x' }]), acks: 1 });
      const written = await leader.produce({ batch: first, acks: 1 });
      await replicate(await batchesOf(leader), follower);
      const reply = await follower.produce({ batch: retry, acks: 1 });
      expect(reply).toMatchObject({
        duplicate: true,
        baseOffset: written.baseOffset,
        lastOffset: written.lastOffset,
      });
    } finally {
      await leader.close();
      await follower.close();
    }
  });

  it('a replica reopened with batches past its high watermark answers their retries as duplicates', async () => {
    // A broker killed while its last batch waited for the followers: on restart that batch is in
    // its log past the checkpointed high watermark. Should it lead, a producer's retry of that
    // batch is a duplicate (not written twice, not refused as a stream conflict), and the
    // producer's next batch follows it.
    const dir = await tempDir('ms-derived-tail-');
    const producer = (baseSequence: number, value: string) =>
      encodeRecordBatch([{ key: 'a', value }], { producerId: 7n, producerEpoch: 0, baseSequence });
    const leader = await openPartition(dir, { ...CONFIG, durability: 'always' }, true);
    leader.log.setHighWatermark(leader.log.logEndOffset);
    await leader.produce({ batch: producer(0, 'v0'), acks: 1, expectedVersion: 0 });
    leader.log.setHighWatermark(leader.log.logEndOffset);
    await leader.log.checkpointHighWatermark();
    const held = producer(1, 'v1');
    const written = await leader.produce({ batch: Buffer.from(held), acks: 1, expectedVersion: 1 });
    await leader.close();

    const reopened = await openPartition(dir, { ...CONFIG, durability: 'always' }, true);
    try {
      expect(reopened.log.highWatermark).toBe(written.baseOffset);
      expect(reopened.log.logEndOffset).toBe(written.lastOffset + 1n);
      const retry = await reopened.produce({ batch: Buffer.from(held), acks: 1, expectedVersion: 1 });
      expect(retry).toMatchObject({ duplicate: true, baseOffset: written.baseOffset });
      const next = await reopened.produce({ batch: producer(2, 'v2'), acks: 1, expectedVersion: 2 });
      expect(next.duplicate).toBe(false);
      expect(next.sequences).toEqual([2]);
      // Once the high watermark passes them, the visible table (what snapshots hold) has them too.
      reopened.log.setHighWatermark(reopened.log.logEndOffset);
      await reopened.derived.snapshotInBackground();
      await reopened.snapshotsWritten();
      expect(reopened.producers.exportState()).toEqual([
        expect.objectContaining({
          producerId: 7n,
          batches: expect.arrayContaining([expect.objectContaining({ baseSequence: 2 })]),
        }),
      ]);
    } finally {
      await reopened.close();
    }
  });

  it('after a truncation holds the state of the remaining prefix, above and below the high watermark', async () => {
    await fc.assert(
      fc.asyncProperty(commands, fc.nat(), async (script, cutAt) => {
        const leader = await openPartition();
        const pending = await openPartition();
        const prefix = await openPartition();
        try {
          await produceAll(leader, script);
          const batches = await batchesOf(leader);
          const cut = cutAt % (batches.length + 1);
          const cutOffset = cut < batches.length ? baseOffsetOf(batches[cut]!) : leader.log.logEndOffset;
          applyOnly(batches.slice(0, cut), prefix);
          const expected = await stateOf(prefix);

          // Above the high watermark (nothing of these batches became visible): in memory.
          applyOnly(batches, pending);
          await pending.derived.truncated(cutOffset);
          expect(await stateOf(pending)).toEqual(expected);

          // Below the high watermark: rebuilt from a snapshot and the log, snapshots past the cut
          // deleted. (The log's own truncation is storage's; the log here still holds the rest.)
          await leader.derived.snapshotInBackground();
          await leader.snapshotsWritten();
          await leader.derived.truncated(cutOffset);
          expect(await stateOf(leader)).toEqual(expected);
          for (const offset of await listSnapshots(leader.log.dir))
            expect(offset).toBeLessThanOrEqual(cutOffset);
        } finally {
          await leader.close();
          await pending.close();
          await prefix.close();
        }
      }),
      {
        numRuns: 12,
        // Truncated batches that evicted older batches of their producer, and one that started a
        // new epoch: forgetting them alone would not bring back what they replaced.
        examples: [[[...Array.from({ length: 7 }, () => step(1, false)), step(1, true), step(2, false)], 3]],
      },
    );
  });
});

describe('DerivedState across segments', () => {
  it('after a truncation below the high watermark rebuilds the producer state from a snapshot at a roll', async () => {
    // Small segments: every few batches a roll saves a snapshot, and the rebuild starts from the
    // newest one at or below the cut. (Stream versions of sealed segments are the log's to take
    // back when it truncates into them; only producer state is compared here.)
    const small: Partial<PartitionLogConfig> = {
      durability: 'never',
      segmentBytes: 600,
      indexIntervalBytes: 128,
    };
    let fromSnapshot = 0;
    await fc.assert(
      fc.asyncProperty(commands, fc.nat(), async (script, cutAt) => {
        const leader = await openPartition(undefined, small);
        const prefix = await openPartition();
        try {
          await produceAll(leader, script);
          await leader.snapshotsWritten();
          const batches = await batchesOf(leader);
          const cut = cutAt % (batches.length + 1);
          const cutOffset = cut < batches.length ? baseOffsetOf(batches[cut]!) : leader.log.logEndOffset;
          applyOnly(batches.slice(0, cut), prefix);
          await leader.derived.truncated(cutOffset);
          if (leader.producerRecovery.snapshotOffset !== null) fromSnapshot++;
          expect(producerStateOf(leader)).toEqual(producerStateOf(prefix));
        } finally {
          await leader.close();
          await prefix.close();
        }
      }),
      { numRuns: 12, examples: [[Array.from({ length: 30 }, (_, i) => step(1 + (i % 2), i === 20)), 25]] },
    );
    expect(fromSnapshot).toBeGreaterThan(0);
  });
});

function step(producer: number, bumpEpoch: boolean): Command {
  return { producer, keys: 'a', records: 1, bumpEpoch, retry: false, expected: 'right' };
}
