// Anti-entropy's decisions (anti-entropy.ts): which segments are compared, which ranges are fetched
// for the chunks that differ, and whether fetched bytes are the leader's.
import { describe, expect, it } from 'vitest';
import {
  addCheck,
  emptyTotals,
  pagesOf,
  pairSegments,
  planRanges,
  rangeMatches,
  rootsDiffer,
} from '../../../src/cluster/replication/anti-entropy.js';
import type { SegmentRoot } from '../../../src/protocol/commands/anti-entropy-commands.js';
import { digestOfBytes, hashChunk } from '../../../src/storage/segment-digest.js';

const h = (fill: number) => Buffer.alloc(32, fill);

describe('anti-entropy decisions', () => {
  it('compares only segments of the same base offset, end offset and size that the leader has', () => {
    const ours = [
      { baseOffset: 0n, nextOffset: 10n, size: 1000 },
      { baseOffset: 10n, nextOffset: 20n, size: 1000 },
      { baseOffset: 20n, nextOffset: 30n, size: 1000 },
      { baseOffset: 30n, nextOffset: 40n, size: 1000 },
    ];
    const theirs: SegmentRoot[] = [
      { baseOffset: 0n, error: null, nextOffset: 10n, size: 1000, root: h(1) },
      { baseOffset: 10n, error: null, nextOffset: 22n, size: 1200, root: h(2) },
      { baseOffset: 20n, error: 'SEGMENT_NOT_FOUND', nextOffset: -1n, size: -1, root: Buffer.alloc(0) },
    ];
    const pairs = pairSegments(ours, theirs);
    expect(pairs.map((pair) => ('skipped' in pair ? 'skipped' : 'compare'))).toEqual([
      'compare',
      'skipped',
      'skipped',
      'skipped',
    ]);
    expect(pairs[0]).toMatchObject({ ours: ours[0], theirs: theirs[0] });
    expect(rootsDiffer(h(1), h(1))).toBe(false);
    expect(rootsDiffer(h(1), h(2))).toBe(true);
  });

  it('merges adjacent differing chunks into ranges up to the limit; the last chunk may be short', () => {
    const theirs = [h(0), h(1), h(2), h(3), h(4), h(5), h(6)];
    const ours = [h(0), h(9), h(9), h(9), h(4), h(5), h(9)];
    // 7 chunks of 100 bytes, the last one 50: 650 bytes.
    expect(planRanges(ours, theirs, 650, 100, 1000)).toEqual([
      { position: 100, length: 300, firstChunk: 1, chunkCount: 3 },
      { position: 600, length: 50, firstChunk: 6, chunkCount: 1 },
    ]);
    expect(planRanges(ours, theirs, 650, 100, 200)).toEqual([
      { position: 100, length: 200, firstChunk: 1, chunkCount: 2 },
      { position: 300, length: 100, firstChunk: 3, chunkCount: 1 },
      { position: 600, length: 50, firstChunk: 6, chunkCount: 1 },
    ]);
    expect(planRanges(theirs, theirs, 650, 100, 1000)).toEqual([]);
  });

  it("accepts fetched bytes only when every chunk hashes to the leader's", () => {
    const bytes = Buffer.alloc(650);
    for (let i = 0; i < bytes.length; i++) bytes[i] = i % 251;
    const digest = digestOfBytes(bytes, 512);
    expect(digest.chunks[1]!.equals(hashChunk(bytes.subarray(512)))).toBe(true);
    const plan = { position: 0, length: 650, firstChunk: 0, chunkCount: 2 };
    expect(rangeMatches(plan, bytes, digest.chunks, 512)).toBe(true);
    const changed = Buffer.from(bytes);
    changed[600] = changed[600]! ^ 1;
    expect(rangeMatches(plan, changed, digest.chunks, 512)).toBe(false);
    expect(rangeMatches(plan, bytes.subarray(0, 600), digest.chunks, 512)).toBe(false);
  });

  it('pages requests and adds checks to the totals', () => {
    expect(pagesOf([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    const totals = emptyTotals();
    addCheck(totals, {
      topic: 't',
      partition: 0,
      leader: 1,
      segmentsCompared: 4,
      segmentsDiffering: 2,
      segmentsRepaired: 1,
      bytesRepaired: 4096,
      skipped: 1,
      problems: ['segment 10: leader unreachable'],
    });
    expect(totals).toEqual({
      checks: 1,
      segmentsCompared: 4,
      segmentsDiffering: 2,
      segmentsRepaired: 1,
      bytesRepaired: 4096,
      failures: 1,
    });
  });
});
