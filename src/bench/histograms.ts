// Latency histograms: recorded in microseconds in each actor thread, shipped to the orchestrator as
// compressed base64 (the HdrHistogram interchange format), merged there, then summarised.

import * as hdr from 'hdr-histogram-js';

/** Values above this (one hour, in µs) are clamped: a run that slow is broken, not measured. */
const HIGHEST_US = 3_600_000_000;

export function latencyHistogram(): hdr.Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_US,
    numberOfSignificantValueDigits: 3,
  });
}

/** Records a latency given in milliseconds. */
export function recordMs(histogram: hdr.Histogram, ms: number): void {
  histogram.recordValue(Math.min(HIGHEST_US, Math.max(0, Math.round(ms * 1000))));
}

export function encodeHistogram(histogram: hdr.Histogram): string {
  return hdr.encodeIntoCompressedBase64(histogram);
}

/** Adds the encoded histograms of all actors into one. */
export function mergeHistograms(encoded: readonly string[]): hdr.Histogram {
  const merged = latencyHistogram();
  for (const text of encoded) merged.add(hdr.decodeFromCompressedBase64(text));
  return merged;
}

/** Percentiles in microseconds; null when nothing was recorded. */
export interface LatencySummary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export function summarize(histogram: hdr.Histogram): LatencySummary | null {
  if (histogram.totalCount === 0) return null;
  return {
    count: histogram.totalCount,
    min: histogram.minNonZeroValue,
    mean: Math.round(histogram.mean),
    p50: histogram.getValueAtPercentile(50),
    p90: histogram.getValueAtPercentile(90),
    p99: histogram.getValueAtPercentile(99),
    p999: histogram.getValueAtPercentile(99.9),
    max: histogram.maxValue,
  };
}
