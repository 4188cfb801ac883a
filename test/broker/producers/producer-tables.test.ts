// The producer tables derived from appended batches (producer-tables.ts): recording from batch
// bytes, visibility, and a truncation at or above the high watermark that leaves exactly the
// tables of the remaining batches — also where the truncated batches had evicted older batches of
// their producer or started a new epoch (forgetting them alone would not bring those back).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type ProducerBatchInfo,
  type ProducerStateTable,
  RETAINED_BATCHES,
} from '../../../src/broker/producers/producer-state.js';
import { ProducerTables, producerBatchInfo } from '../../../src/broker/producers/producer-tables.js';
import { encodeRecordBatch } from '../../../src/protocol/record-batch.js';

interface Step {
  /** 0 = a batch without producer id. */
  producer: number;
  records: number;
  bumpEpoch: boolean;
}

interface Appended {
  batch: Buffer;
  baseOffset: bigint;
  lastOffset: bigint;
}

/** The batches a log holds after the steps, at consecutive offsets, as producers would send them. */
function appendedBatches(steps: readonly Step[]): Appended[] {
  const producers = new Map<number, { epoch: number; next: number }>();
  const out: Appended[] = [];
  let offset = 0n;
  for (const step of steps) {
    const records = Array.from({ length: step.records }, (_, i) => ({ value: `v${i}` }));
    let batch: Buffer;
    if (step.producer === 0) {
      batch = encodeRecordBatch(records, { baseOffset: offset });
    } else {
      const state = producers.get(step.producer) ?? { epoch: 0, next: 0 };
      if (step.bumpEpoch) producers.set(step.producer, { epoch: state.epoch + 1, next: 0 });
      const current = producers.get(step.producer) ?? state;
      batch = encodeRecordBatch(records, {
        baseOffset: offset,
        producerId: BigInt(step.producer),
        producerEpoch: current.epoch,
        baseSequence: current.next,
      });
      producers.set(step.producer, { epoch: current.epoch, next: current.next + step.records });
    }
    const lastOffset = offset + BigInt(step.records - 1);
    out.push({ batch, baseOffset: offset, lastOffset });
    offset = lastOffset + 1n;
  }
  return out;
}

const steps = fc.array(
  fc.record({
    producer: fc.integer({ min: 0, max: 3 }),
    records: fc.integer({ min: 1, max: 3 }),
    bumpEpoch: fc.integer({ min: 0, max: 9 }).map((n) => n < 2),
  }),
  { minLength: 1, maxLength: 40 },
);

type Answer = { kind: 'append' } | { kind: 'duplicate'; batch: unknown } | { error: number | undefined };
function answer(table: ProducerStateTable, info: ProducerBatchInfo): Answer {
  try {
    return table.check(info);
  } catch (error) {
    return { error: (error as { code?: number }).code };
  }
}

/** Idempotence answers around every producer's state: retries (also of evicted batches), gaps, epochs. */
function probes(table: ProducerStateTable): Answer[] {
  const answers: Answer[] = [];
  for (const producerId of [1n, 2n, 3n]) {
    for (const producerEpoch of [0, 1, 2]) {
      for (let baseSequence = 0; baseSequence < 16; baseSequence++) {
        for (const recordCount of [1, 2, 3])
          answers.push(answer(table, { producerId, producerEpoch, baseSequence, recordCount }));
      }
    }
  }
  return answers;
}

function appendedThrough(batches: readonly Appended[]): ProducerTables {
  const tables = new ProducerTables();
  for (const { batch, baseOffset, lastOffset } of batches)
    tables.recordAppended(batch, baseOffset, lastOffset);
  return tables;
}

describe('ProducerTables', () => {
  it('reads the producer fields from the batch header', () => {
    const batch = encodeRecordBatch([{ value: 'a' }, { value: 'b' }], {
      producerId: 9n,
      producerEpoch: 2,
      baseSequence: 40,
    });
    expect(producerBatchInfo(batch)).toEqual({
      producerId: 9n,
      producerEpoch: 2,
      baseSequence: 40,
      recordCount: 2,
    });
    expect(producerBatchInfo(encodeRecordBatch([{ value: 'a' }]))).toBeNull();
  });

  it('a truncation at or above the visible offset leaves the tables of the remaining batches', () => {
    fc.assert(
      fc.property(steps, fc.nat(), fc.nat(), (script, cutAt, visibleAt) => {
        const batches = appendedBatches(script);
        const cut = cutAt % (batches.length + 1);
        const visible = visibleAt % (cut + 1);
        const cutOffset = cut < batches.length ? batches[cut]!.baseOffset : batches.at(-1)!.lastOffset + 1n;
        const visibleOffset = visible < batches.length ? batches[visible]!.baseOffset : cutOffset;

        const tables = appendedThrough(batches);
        tables.recordVisible(
          batches.slice(0, visible).map((b) => b.batch),
          visibleOffset,
        );
        expect(tables.truncateAbove(cutOffset)).toBe(true);

        const reference = appendedThrough(batches.slice(0, cut));
        expect(tables.appended.exportState()).toEqual(reference.appended.exportState());
        expect(probes(tables.appended)).toEqual(probes(reference.appended));
        // The batches kept are still there to be truncated again, or to become visible.
        tables.recordVisible(
          batches.slice(visible, cut).map((b) => b.batch),
          cutOffset,
        );
        expect(tables.exportVisible()).toEqual(reference.appended.exportState());
      }),
      { numRuns: 150 },
    );
  });

  it('brings back batches a truncated batch evicted and the epoch a truncated batch replaced', () => {
    // Producer 1 writes RETAINED_BATCHES + 2 batches, then starts epoch 1; the cut takes the last
    // three batches of epoch 0 and the epoch-1 batch.
    const script: Step[] = [];
    for (let i = 0; i < RETAINED_BATCHES + 2; i++) script.push({ producer: 1, records: 1, bumpEpoch: false });
    script.push({ producer: 1, records: 1, bumpEpoch: true });
    const batches = appendedBatches(script);
    const cut = RETAINED_BATCHES - 1;
    const tables = appendedThrough(batches);
    tables.truncateAbove(batches[cut]!.baseOffset);
    // Sequence 0 was evicted before the cut; the remaining log still holds it, so a retry of it is
    // a duplicate with its original offsets, and epoch 0 goes on at sequence `cut`.
    expect(
      tables.appended.check({ producerId: 1n, producerEpoch: 0, baseSequence: 0, recordCount: 1 }),
    ).toEqual({
      kind: 'duplicate',
      batch: { baseSequence: 0, lastSequence: 0, baseOffset: 0n, lastOffset: 0n },
    });
    expect(
      tables.appended.check({ producerId: 1n, producerEpoch: 0, baseSequence: cut, recordCount: 1 }),
    ).toEqual({
      kind: 'append',
    });
  });

  it('refuses a truncation below the visible offset and changes nothing', () => {
    const batches = appendedBatches([
      { producer: 1, records: 2, bumpEpoch: false },
      { producer: 1, records: 2, bumpEpoch: false },
    ]);
    const tables = appendedThrough(batches);
    tables.recordVisible(
      batches.map((b) => b.batch),
      4n,
    );
    const before = tables.appended.exportState();
    expect(tables.truncateAbove(2n)).toBe(false);
    expect(tables.appended.exportState()).toEqual(before);
    expect(tables.visibleThrough).toBe(4n);
  });

  it('a reset and a replay of stored batches build what recording them as appended builds', () => {
    fc.assert(
      fc.property(steps, (script) => {
        const batches = appendedBatches(script);
        const replayed = new ProducerTables();
        replayed.reset([], 0n);
        for (const { batch } of batches) replayed.replay(batch);
        replayed.replayedThrough(batches.at(-1)!.lastOffset + 1n);
        const reference = appendedThrough(batches);
        expect(replayed.appended.exportState()).toEqual(reference.appended.exportState());
        expect(replayed.exportVisible()).toEqual(reference.appended.exportState());
      }),
      { numRuns: 100 },
    );
  });
});
