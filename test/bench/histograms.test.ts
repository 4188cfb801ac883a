import { describe, expect, it } from 'vitest';
import {
  encodeHistogram,
  latencyHistogram,
  mergeHistograms,
  recordMs,
  summarize,
} from '../../src/bench/histograms.js';
import { fillerFor, intendedTimeOf, stampedValue } from '../../src/bench/payload.js';
import { formatMicros } from '../../src/bench/summary.js';

describe('bench histograms', () => {
  it('merges encoded histograms from several threads into one with every sample', () => {
    const a = latencyHistogram();
    const b = latencyHistogram();
    for (let i = 1; i <= 900; i++) recordMs(a, i / 1000); // 1..900 µs
    for (let i = 0; i < 100; i++) recordMs(b, 50); // 50 ms
    const summary = summarize(mergeHistograms([encodeHistogram(a), encodeHistogram(b)]))!;
    expect(summary.count).toBe(1000);
    expect(summary.min).toBe(1);
    expect(summary.p50).toBeGreaterThanOrEqual(499);
    expect(summary.p50).toBeLessThanOrEqual(501);
    expect(summary.p90).toBeLessThanOrEqual(901);
    expect(summary.p99).toBeGreaterThanOrEqual(49_950);
    expect(summary.max).toBeGreaterThanOrEqual(49_950);
    expect(summary.max).toBeLessThanOrEqual(50_050);
  });

  it('summarises an empty histogram as null and clamps impossible values', () => {
    expect(summarize(mergeHistograms([encodeHistogram(latencyHistogram())]))).toBeNull();
    const h = latencyHistogram();
    recordMs(h, -3);
    recordMs(h, 1e12);
    expect(h.totalCount).toBe(2);
  });

  it('stamps the intended send time into the value and reads it back', () => {
    const filler = fillerFor(100);
    const value = stampedValue(filler, 123456.789);
    expect(value).toHaveLength(100);
    expect(intendedTimeOf(value)).toBe(123456.789);
    expect(value.subarray(8)).toEqual(filler.subarray(8));
    expect(stampedValue(filler, 1)).not.toBe(stampedValue(filler, 1));
    expect(intendedTimeOf(Buffer.alloc(4))).toBeNull();
    expect(intendedTimeOf(null)).toBeNull();
  });

  it('formats microseconds for people', () => {
    expect(formatMicros(850)).toBe('850 µs');
    expect(formatMicros(1234)).toBe('1.23 ms');
    expect(formatMicros(250_000)).toBe('250.0 ms');
    expect(formatMicros(12_000_000)).toBe('12.0 s');
  });
});
