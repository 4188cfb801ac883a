import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ProducerIdAllocator } from '../../../src/broker/producers/producer-id-allocator.js';
import { ProducerStateTable, RETAINED_BATCHES } from '../../../src/broker/producers/producer-state.js';
import { ErrorCode } from '../../../src/protocol/error-codes.js';
import { tempDir } from '../../harness/temp-dir.js';

const batch = (producerEpoch: number, baseSequence: number, recordCount = 2) => ({
  producerId: 7n,
  producerEpoch,
  baseSequence,
  recordCount,
});

function codeOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (error) {
    return (error as { code?: number }).code;
  }
  return undefined;
}

describe('ProducerStateTable', () => {
  it('accepts in-order batches and answers retries with the original offsets', () => {
    const table = new ProducerStateTable();
    expect(table.check(batch(0, 0))).toEqual({ kind: 'append' });
    table.record(batch(0, 0), 10n, 11n);
    expect(table.check(batch(0, 2))).toEqual({ kind: 'append' });
    table.record(batch(0, 2), 12n, 13n);
    const retry = table.check(batch(0, 0));
    expect(retry).toEqual({
      kind: 'duplicate',
      batch: { baseSequence: 0, lastSequence: 1, baseOffset: 10n, lastOffset: 11n },
    });
  });

  it('rejects gaps, old duplicates, fenced epochs and unknown producers', () => {
    const table = new ProducerStateTable();
    expect(codeOf(() => table.check(batch(0, 5)))).toBe(ErrorCode.UNKNOWN_PRODUCER_ID);
    let offset = 0n;
    for (let i = 0; i < RETAINED_BATCHES + 2; i++) {
      table.record(batch(1, i * 2), offset, offset + 1n);
      offset += 2n;
    }
    expect(codeOf(() => table.check(batch(1, 100)))).toBe(ErrorCode.OUT_OF_ORDER_SEQUENCE);
    expect(codeOf(() => table.check(batch(1, 0)))).toBe(ErrorCode.DUPLICATE_SEQUENCE);
    expect(codeOf(() => table.check(batch(0, 14)))).toBe(ErrorCode.INVALID_PRODUCER_EPOCH);
    expect(codeOf(() => table.check(batch(2, 3)))).toBe(ErrorCode.OUT_OF_ORDER_SEQUENCE);
    expect(table.check(batch(2, 0))).toEqual({ kind: 'append' });
    expect(codeOf(() => table.check({ ...batch(0, 0), producerId: -5n }))).toBe(ErrorCode.INVALID_REQUEST);
  });

  it('ignores non-idempotent batches', () => {
    const table = new ProducerStateTable();
    expect(table.check({ ...batch(0, 9), producerId: -1n })).toEqual({ kind: 'append' });
    table.record({ ...batch(0, 9), producerId: -1n }, 0n, 1n);
    expect(table.size).toBe(0);
  });
});

describe('ProducerIdAllocator', () => {
  it('never hands out an id twice across reopen', async () => {
    const dir = await tempDir('ms-pid-');
    const first = await ProducerIdAllocator.open(dir);
    const ids = await Promise.all(Array.from({ length: 1500 }, () => first.allocate()));
    expect(new Set(ids).size).toBe(1500);
    const second = await ProducerIdAllocator.open(dir);
    const next = await second.allocate();
    expect(ids.every((id) => id < next)).toBe(true);
    await writeFile(join(dir, 'producer-ids.json'), '{"nextBlockStart": 12}');
    await expect(ProducerIdAllocator.open(dir)).rejects.toMatchObject({ code: ErrorCode.CORRUPT_DATA });
    await writeFile(join(dir, 'producer-ids.json'), 'garbage');
    await expect(ProducerIdAllocator.open(dir)).rejects.toMatchObject({ code: ErrorCode.CORRUPT_DATA });
  });
});
