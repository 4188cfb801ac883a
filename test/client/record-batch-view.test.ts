// RecordBatchView's walks over a batch whose records are malformed (a batch stored before the
// broker validated records, or damaged): each walk refuses with BAD_RECORD_BATCH, never reads past
// a record, and forEachValue reports what values() reports.

import { describe, expect, it } from 'vitest';
import { RecordBatchView } from '../../src/client/record-batch-view.js';
import { MemoryStreamerError } from '../../src/common/errors.js';
import { goodRecords, rawBatch } from '../protocol/helpers/raw-batch.js';

const limits = { maxDecompressedBytes: 1 << 20 };
const view = (batch: Buffer) => new RecordBatchView('t', 0, batch, 0n, limits, null);

function codeOf(walk: () => void): string | null {
  try {
    walk();
  } catch (error) {
    if (error instanceof MemoryStreamerError) return error.codeName;
    throw error;
  }
  return null;
}

describe('RecordBatchView over malformed records', () => {
  it('forEachValue visits what values() yields on a good batch', () => {
    const batch = view(rawBatch(goodRecords(4)));
    const visited: string[] = [];
    batch.forEachValue((buffer, start, end) => visited.push(buffer.toString('utf8', start, end)));
    expect(visited).toEqual([...batch.values()].map((value) => value!.toString('utf8')));
  });

  it('refuses a value that runs past its record, in both walks', () => {
    const records = goodRecords(3);
    // The record's length stops 3 bytes short of its value's end.
    records[2] = { ...records[2]!, length: (body: number) => body - 4 };
    const batch = view(rawBatch(records));
    expect(codeOf(() => batch.forEachValue(() => undefined))).toBe('BAD_RECORD_BATCH');
    expect(codeOf(() => [...batch.values()])).toBe('BAD_RECORD_BATCH');
  });

  it('refuses a record whose length runs past the batch', () => {
    const records = goodRecords(2);
    records[1] = { ...records[1]!, length: (body: number) => body + 50 };
    const batch = view(rawBatch(records));
    const visited: number[] = [];
    expect(codeOf(() => batch.forEachValue((_b, start) => visited.push(start)))).toBe('BAD_RECORD_BATCH');
    // The record before the bad one was visited; nothing after it.
    expect(visited).toHaveLength(1);
  });
});
