// The pure checks of the hostile-client battery (scripts/hostile-battery.ts), tested the way
// RELIABILITY.md's "test-the-tests" asks: each check is fed a seeded anomaly and must catch it, and
// a clean input must pass.

import { describe, expect, it } from 'vitest';
import {
  type Acknowledged,
  checkAcknowledged,
  checkRssPeak,
  checkRssReturn,
  longestStall,
  lossCheck,
  MiB,
  percentile,
  type ReadRecord,
  rssCeiling,
  summarize,
} from './checks.js';
import { SeededRandom } from './random.js';

/** A clean history: `count` acknowledged messages at offsets 0..count-1, read back as written. */
function history(seed: number, count: number): { acked: Acknowledged[]; read: ReadRecord[] } {
  const random = new SeededRandom(seed);
  const acked: Acknowledged[] = [];
  for (let i = 0; i < count; i++) {
    acked.push({ offset: BigInt(i), payload: Buffer.concat([Buffer.from(`good|${i}|`), random.bytes(32)]) });
  }
  return { acked, read: acked.map((a) => ({ offset: a.offset, payload: Buffer.from(a.payload) })) };
}

describe('loss checker', () => {
  it('passes a clean history, also with records nobody acknowledged between them', () => {
    const { acked, read } = history(1, 200);
    read.push({ offset: 200n, payload: Buffer.from('an attacker record') });
    const report = checkAcknowledged(acked, read);
    expect(report.anomalies).toEqual([]);
    expect(lossCheck(report).pass).toBe(true);
  });

  const seeds = [1, 2, 3, 4, 5, 6, 7, 8];

  it.each(seeds)('catches a missing acknowledged offset (seed %i)', (seed) => {
    const { acked, read } = history(seed, 100);
    const victim = new SeededRandom(seed).below(read.length);
    const [removed] = read.splice(victim, 1);
    const report = checkAcknowledged(acked, read);
    expect(report.anomalies).toEqual([expect.objectContaining({ kind: 'lost', offset: removed!.offset })]);
    expect(lossCheck(report).pass).toBe(false);
  });

  it.each(seeds)('catches a changed payload, even one flipped bit (seed %i)', (seed) => {
    const { acked, read } = history(seed, 100);
    const random = new SeededRandom(seed * 31);
    const victim = read[random.below(read.length)]!;
    const payload = victim.payload!;
    const bit = random.below(payload.length * 8);
    payload[bit >> 3]! ^= 1 << (bit & 7);
    const report = checkAcknowledged(acked, read);
    expect(report.anomalies).toEqual([expect.objectContaining({ kind: 'changed', offset: victim.offset })]);
    expect(lossCheck(report).pass).toBe(false);
  });

  it('catches a payload replaced by null', () => {
    const { acked, read } = history(9, 10);
    read[4] = { offset: 4n, payload: null };
    expect(checkAcknowledged(acked, read).anomalies.map((a) => a.kind)).toEqual(['changed']);
  });

  it.each(seeds)('catches a duplicate: an acknowledged payload also at a later offset (seed %i)', (seed) => {
    const { acked, read } = history(seed, 100);
    const victim = read[new SeededRandom(seed).below(read.length)]!;
    read.push({ offset: 100n, payload: Buffer.from(victim.payload!) });
    const report = checkAcknowledged(acked, read);
    expect(report.anomalies).toEqual([expect.objectContaining({ kind: 'duplicate-payload', offset: 100n })]);
    expect(lossCheck(report).pass).toBe(false);
  });

  it('catches two records at one offset (forged offset deltas)', () => {
    const { acked, read } = history(10, 20);
    read.splice(8, 0, { offset: 7n, payload: Buffer.from('a second record at offset 7') });
    const report = checkAcknowledged(acked, read);
    expect(report.anomalies.map((a) => a.kind)).toEqual(['duplicate-offset']);
    expect(report.anomalies[0]!.offset).toBe(7n);
  });

  it('names the first anomalies in the failure detail', () => {
    const { acked, read } = history(11, 10);
    read.splice(3, 1);
    expect(lossCheck(checkAcknowledged(acked, read)).detail).toContain('acknowledged offset 3 is missing');
  });
});

describe('RSS rule', () => {
  const rule = { idleRss: 140 * MiB, globalBudget: 64 * MiB, fixedOverhead: 96 * MiB };

  it('the ceiling is idle RSS + global budget + fixed overhead', () => {
    expect(rssCeiling(rule)).toBe(300 * MiB);
  });

  it('adds the durable state an attack may create (partitions) to the ceiling, and names it', () => {
    const withState = { ...rule, stateBytes: 40 * MiB };
    expect(rssCeiling(withState)).toBe(340 * MiB);
    expect(checkRssPeak(withState, 340 * MiB + 1).detail).toContain('+ state 40.0');
  });

  it('passes a peak at the ceiling and fails one byte over', () => {
    expect(checkRssPeak(rule, 300 * MiB).pass).toBe(true);
    const over = checkRssPeak(rule, 300 * MiB + 1);
    expect(over.pass).toBe(false);
    expect(over.detail).toContain('ceiling 300.0 MiB = idle 140.0 + global budget 64.0 + overhead 96.0');
  });

  it('memory returned: the first sample under pre-attack + margin within the window', () => {
    const samples = [
      { at: 0, rss: 400 * MiB },
      { at: 3000, rss: 250 * MiB },
      { at: 6000, rss: 170 * MiB },
    ];
    expect(checkRssReturn(150 * MiB, 32 * MiB, 10_000, samples).pass).toBe(true);
    expect(checkRssReturn(150 * MiB, 32 * MiB, 10_000, samples).detail).toContain('after 6.0 s');
  });

  it('memory kept: fails when no sample in the window is under the target', () => {
    const kept = [
      { at: 0, rss: 400 * MiB },
      { at: 5000, rss: 390 * MiB },
      { at: 12_000, rss: 160 * MiB },
    ];
    const result = checkRssReturn(150 * MiB, 32 * MiB, 10_000, kept);
    expect(result.pass).toBe(false);
    expect(result.detail).toContain('still 160.0 MiB');
    expect(checkRssReturn(150 * MiB, 32 * MiB, 10_000, []).pass).toBe(false);
  });
});

describe('latencies and stalls', () => {
  it('nearest-rank percentiles', () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(sorted, 50)).toBe(50);
    expect(percentile(sorted, 99)).toBe(99);
    expect(percentile(sorted, 100)).toBe(100);
    expect(percentile([], 99)).toBeNaN();
    expect(summarize([5, 1, 3])).toEqual({ count: 3, p50: 3, p99: 5, max: 5 });
  });

  it('an operation that never completed counts as a stall up to now', () => {
    const ops = [
      { due: 0, done: 10 },
      { due: 100, done: 130 },
      { due: 200, done: null },
    ];
    expect(longestStall(ops, 250)).toBe(50);
    expect(longestStall(ops, 5200)).toBe(5000);
    expect(longestStall([], 100)).toBe(0);
  });
});
