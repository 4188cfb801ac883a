import { beforeEach, describe, expect, it } from 'vitest';
import { ReadAhead, ReadAheadBudget } from '../../src/storage/read-ahead.js';
import { Segment } from '../../src/storage/segment.js';
import { nodeStorageFs } from '../../src/storage/storage-fs.js';
import { useTempDir } from '../harness/temp-dir.js';

let dir: string;
const scratch = useTempDir('ms-read-ahead-');
beforeEach(async () => {
  dir = scratch.path;
});

/** A segment file holding bytes 0..n-1 as (i % 251), so every chunk is recognisable. */
async function segmentOf(base: bigint, length: number): Promise<{ segment: Segment; bytes: Buffer }> {
  const segment = await Segment.create(nodeStorageFs, dir, base, 4096, Date.now());
  const bytes = Buffer.from(Array.from({ length }, (_, i) => i % 251));
  await segment.write([bytes], 0);
  segment.size = length;
  segment.visibleBytes = length;
  return { segment, bytes };
}

describe('ReadAhead', () => {
  it('holds the bytes at the position it was given, for the offset it was given, once', async () => {
    const { segment, bytes } = await segmentOf(0n, 10_000);
    const ahead = new ReadAhead(new ReadAheadBudget(1 << 20));
    ahead.start(42n, segment, 3000, 500);
    expect(ahead.isSequential(42n)).toBe(true);
    expect(ahead.take(41n, segment)).toBeUndefined();
    const entry = ahead.take(42n, segment);
    expect(entry?.position).toBe(3000);
    expect(await entry?.data).toEqual(bytes.subarray(3000, 3500));
    expect(ahead.take(42n, segment)).toBeUndefined();
    expect(ahead.hits).toBe(1);
    await segment.close();
  });

  it('never serves an entry to a read that found another segment for its offset', async () => {
    const { segment } = await segmentOf(0n, 1000);
    const { segment: replacement } = await segmentOf(100n, 1000);
    const ahead = new ReadAhead(new ReadAheadBudget(1 << 20));
    ahead.start(7n, segment, 0, 100);
    expect(ahead.take(7n, replacement)).toBeUndefined();
    ahead.start(8n, segment, 100, 100);
    ahead.dropSegment(segment);
    expect(ahead.size).toBe(0);
    expect(ahead.take(8n, segment)).toBeUndefined();
    await segment.close();
    await replacement.close();
  });

  it('keeps all logs together within one byte budget, pushing out the oldest entry anywhere', async () => {
    const { segment, bytes } = await segmentOf(0n, 10_000);
    const budget = new ReadAheadBudget(3000);
    const a = new ReadAhead(budget);
    const b = new ReadAhead(budget);
    a.start(1n, segment, 0, 1000);
    b.start(2n, segment, 1000, 1000);
    a.start(3n, segment, 2000, 1000);
    expect(budget.bytes).toBe(3000);
    b.start(4n, segment, 3000, 1000);
    expect(budget.bytes).toBe(3000);
    expect(a.take(1n, segment)).toBeUndefined(); // the oldest, pushed out
    expect(await b.take(2n, segment)?.data).toEqual(bytes.subarray(1000, 2000));
    expect(budget.bytes).toBe(2000);
    a.clear();
    b.cancel(4n);
    expect(budget.bytes).toBe(0);
    await segment.close();
  });

  it('keeps at most maxEntries per log and caps each at maxBytes', async () => {
    const { segment } = await segmentOf(0n, 10_000);
    const budget = new ReadAheadBudget(1 << 20);
    const ahead = new ReadAhead(budget, 2, 700);
    for (let i = 0; i < 5; i++) ahead.start(BigInt(i), segment, i * 1000, 1000);
    expect(ahead.size).toBe(2);
    expect(budget.bytes).toBe(1400);
    expect((await ahead.take(4n, segment)?.data)?.length).toBe(700);
    await segment.close();
  });
});
