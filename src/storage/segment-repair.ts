// Rewrites byte ranges of a sealed segment with verified bytes from another replica (anti-entropy,
// docs/replication.md). A sealed segment is otherwise immutable, so the repair never writes into
// it: it writes a whole repaired copy to `<base>.log.cleaned` (the old bytes with the ranges laid
// over them), fdatasyncs it, checks it — every batch whole with its CRC and the same offsets, and
// the copy's digest equal to the one the other replica announced — and only then swaps it in
// through the same crash-safe rename as a compaction (SegmentList.replace): readers holding the old
// file finish on it, a crash before the rename leaves the old segment and a `.cleaned` leftover
// that the next open deletes. Decides nothing about which ranges differ (segment-digest.ts).

import { errorOf } from '../protocol/error-codes.js';
import type { Segment } from './segment.js';
import { digestSegment } from './segment-digest.js';
import type { SegmentList } from './segment-list.js';

export interface RepairRange {
  /** Byte position in the segment's `.log` file. */
  readonly position: number;
  readonly bytes: Buffer;
}

/** What the repaired copy must hash to (the other replica's digest of the segment). */
export interface RepairTarget {
  readonly root: Buffer;
  readonly chunkBytes: number;
}

export interface RepairResult {
  readonly baseOffset: bigint;
  readonly bytesRewritten: number;
  /** Bytes of the ranges that actually differed from what the file held. */
  readonly bytesChanged: number;
}

const COPY_CHUNK = 1024 * 1024;

function checkRanges(segment: Segment, ranges: readonly RepairRange[]): void {
  let end = 0;
  for (const range of ranges) {
    if (
      !Number.isInteger(range.position) ||
      range.position < end ||
      range.bytes.length === 0 ||
      range.position + range.bytes.length > segment.size
    )
      throw errorOf(
        'SEGMENT_RANGE_INVALID',
        `repair range ${range.position}+${range.bytes.length} of ${segment.path('log')} (${segment.size} bytes; ranges in order, not overlapping)`,
      );
    end = range.position + range.bytes.length;
  }
}

/**
 * Repairs `segment` (a sealed segment of `segments`) by the copy-verify-rename above. Throws
 * SEGMENT_REPAIR_FAILED (and leaves the segment as it was) when the copy does not verify.
 */
export async function repairSegment(
  segments: SegmentList,
  segment: Segment,
  ranges: readonly RepairRange[],
  target: RepairTarget,
): Promise<RepairResult> {
  if (!segments.isSealed(segment))
    throw errorOf('SEGMENT_NOT_FOUND', `segment ${segment.baseOffset} is not sealed in ${segments.dir}`);
  checkRanges(segment, ranges);
  const size = segment.size;
  const copy = await segment.createCleaned();
  let bytesChanged = 0;
  try {
    let next = 0;
    for (let position = 0; position < size; position += COPY_CHUNK) {
      const length = Math.min(COPY_CHUNK, size - position);
      const chunk = await segment.read(position, length);
      if (chunk.length < length)
        throw errorOf('SEGMENT_REPAIR_FAILED', `${segment.path('log')} is shorter than ${size} bytes`);
      // Lay every range that overlaps this chunk over it.
      while (next < ranges.length && ranges[next]!.position < position + length) {
        const range = ranges[next]!;
        const from = Math.max(range.position, position);
        const to = Math.min(range.position + range.bytes.length, position + length);
        const source = range.bytes.subarray(from - range.position, to - range.position);
        const before = chunk.subarray(from - position, to - position);
        if (!before.equals(source)) bytesChanged += countDiffering(before, source);
        source.copy(chunk, from - position);
        if (range.position + range.bytes.length > position + length) break;
        next++;
      }
      await copy.write([chunk], position);
    }
    copy.size = size;
    await copy.datasync();
    // Every batch whole, CRC-checked and where the old segment had it; the indexes are rebuilt.
    const scanned = await copy.scan(true);
    if (scanned.stop !== null || scanned.nextOffset !== segment.nextOffset)
      throw errorOf(
        'SEGMENT_REPAIR_FAILED',
        `the repaired copy of ${segment.path('log')} ${
          scanned.stop !== null
            ? `stops at byte ${scanned.stop.position}: ${scanned.stop.reason}`
            : `ends at offset ${scanned.nextOffset}, not ${segment.nextOffset}`
        }`,
      );
    const digest = await digestSegment(copy, { chunkBytes: target.chunkBytes });
    if (!digest.root.equals(target.root))
      throw errorOf(
        'SEGMENT_REPAIR_FAILED',
        `the repaired copy of ${segment.path('log')} does not hash to the other replica's digest`,
      );
  } catch (error) {
    await copy.discardCleaned().catch(() => undefined);
    throw error;
  }
  copy.visibleBytes = size;
  await segments.replace(segment, copy);
  return {
    baseOffset: segment.baseOffset,
    bytesRewritten: ranges.reduce((sum, range) => sum + range.bytes.length, 0),
    bytesChanged,
  };
}

function countDiffering(a: Buffer, b: Buffer): number {
  let count = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) count++;
  return count;
}
