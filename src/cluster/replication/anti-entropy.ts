// Anti-entropy's decisions, sans-IO (docs/replication.md, "Anti-entropy"): which of a follower's
// settled segments to compare with its leader's, which differ by their roots, which byte ranges to
// fetch from the chunk hashes, and whether fetched bytes are the leader's. No sockets, timers or
// files here: the service (anti-entropy-service.ts) reads the disks and talks to the leader.

import type { SegmentRoot } from '../../protocol/commands/anti-entropy-commands.js';
import { hashChunk } from '../../storage/segment-digest.js';

/** What identifies a sealed segment's contents besides its bytes. */
export interface SegmentShape {
  readonly baseOffset: bigint;
  readonly nextOffset: bigint;
  readonly size: number;
}

export type SegmentVerdict =
  | { readonly baseOffset: bigint; readonly kind: 'same' | 'differs' }
  | { readonly baseOffset: bigint; readonly kind: 'skipped'; readonly reason: string };

/**
 * Pairs the follower's settled segments with the leader's answer. Only a segment both sides have
 * sealed below the high watermark with the same base offset, end offset and size is compared:
 * replicas append the same batches and roll at the same sizes, so such segments must hold the same
 * bytes. A segment of another shape (rolled by time on one side, cut by retention) is skipped.
 */
export function pairSegments<S extends SegmentShape>(
  ours: readonly S[],
  theirs: readonly SegmentRoot[],
): Array<{ ours: S; theirs: SegmentRoot } | { ours: S; skipped: string }> {
  const byBase = new Map(theirs.map((root) => [root.baseOffset, root]));
  return ours.map((segment) => {
    const root = byBase.get(segment.baseOffset);
    if (root === undefined) return { ours: segment, skipped: 'the leader did not answer for it' };
    if (root.error !== null) return { ours: segment, skipped: `the leader has none there (${root.error})` };
    if (root.nextOffset !== segment.nextOffset || root.size !== segment.size)
      return {
        ours: segment,
        skipped: `the leader's segment holds offsets up to ${root.nextOffset} in ${root.size} bytes, this one up to ${segment.nextOffset} in ${segment.size}`,
      };
    return { ours: segment, theirs: root };
  });
}

/** Whether two roots of same-shaped segments say their bytes differ. */
export function rootsDiffer(ours: Buffer, theirs: Buffer): boolean {
  return !ours.equals(theirs);
}

/** A byte range to fetch from the leader: whole chunks, `firstChunk` .. firstChunk + chunkCount. */
export interface RangePlan {
  readonly position: number;
  readonly length: number;
  readonly firstChunk: number;
  readonly chunkCount: number;
}

/**
 * The ranges covering every chunk whose hash differs, adjacent chunks merged up to `maxRangeBytes`
 * a range (at least one chunk each). The last chunk of a segment may be short.
 */
export function planRanges(
  ours: readonly Buffer[],
  theirs: readonly Buffer[],
  size: number,
  chunkBytes: number,
  maxRangeBytes: number,
): RangePlan[] {
  const chunksPerRange = Math.max(1, Math.floor(maxRangeBytes / chunkBytes));
  const plans: RangePlan[] = [];
  let open: { first: number; count: number } | null = null;
  const close = () => {
    if (open === null) return;
    const position = open.first * chunkBytes;
    const end = Math.min((open.first + open.count) * chunkBytes, size);
    plans.push({ position, length: end - position, firstChunk: open.first, chunkCount: open.count });
    open = null;
  };
  for (let i = 0; i < theirs.length; i++) {
    const differs = ours[i] === undefined || !ours[i]!.equals(theirs[i]!);
    if (!differs) {
      close();
      continue;
    }
    if (open !== null && open.first + open.count === i && open.count < chunksPerRange) open.count++;
    else {
      close();
      open = { first: i, count: 1 };
    }
  }
  close();
  return plans;
}

/** Whether `bytes` fetched for `plan` hash chunk by chunk to the leader's chunk hashes. */
export function rangeMatches(
  plan: RangePlan,
  bytes: Buffer,
  theirs: readonly Buffer[],
  chunkBytes: number,
): boolean {
  if (bytes.length !== plan.length) return false;
  for (let i = 0; i < plan.chunkCount; i++) {
    const expected = theirs[plan.firstChunk + i];
    const chunk = bytes.subarray(i * chunkBytes, Math.min((i + 1) * chunkBytes, bytes.length));
    if (expected === undefined || !hashChunk(chunk).equals(expected)) return false;
  }
  return true;
}

/** Splits `items` into runs of at most `size` (one request each). */
export function pagesOf<T>(items: readonly T[], size: number): T[][] {
  const pages: T[][] = [];
  for (let at = 0; at < items.length; at += size) pages.push(items.slice(at, at + size));
  return pages;
}

/** What one comparison of a partition with its leader found (logged, and returned to a trigger). */
export interface PartitionCheck {
  readonly topic: string;
  readonly partition: number;
  readonly leader: number;
  readonly segmentsCompared: number;
  readonly segmentsDiffering: number;
  readonly segmentsRepaired: number;
  readonly bytesRepaired: number;
  readonly skipped: number;
  /** Why segments that differed were not repaired, or why the check stopped. */
  readonly problems: readonly string[];
}

/** Totals kept across checks (the metrics read these). */
export interface AntiEntropyTotals {
  checks: number;
  segmentsCompared: number;
  segmentsDiffering: number;
  segmentsRepaired: number;
  bytesRepaired: number;
  failures: number;
}

export function emptyTotals(): AntiEntropyTotals {
  return {
    checks: 0,
    segmentsCompared: 0,
    segmentsDiffering: 0,
    segmentsRepaired: 0,
    bytesRepaired: 0,
    failures: 0,
  };
}

/** Adds one check to the totals. */
export function addCheck(totals: AntiEntropyTotals, check: PartitionCheck): void {
  totals.checks++;
  totals.segmentsCompared += check.segmentsCompared;
  totals.segmentsDiffering += check.segmentsDiffering;
  totals.segmentsRepaired += check.segmentsRepaired;
  totals.bytesRepaired += check.bytesRepaired;
  totals.failures += check.problems.length;
}
