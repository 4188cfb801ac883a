// The bare limit for durable acknowledgements: a write + fdatasync loop on one file, one at a time.
// Shared by bench/storage.ts and bench/compare.
import { open } from 'node:fs/promises';
import type { Histogram } from 'hdr-histogram-js';
import { latencyHistogram } from './report.js';

/** Writes `block` at successive positions of `path`, fdatasync after each, for `seconds`. */
export async function rawFsyncLatency(
  path: string,
  block: Buffer,
  seconds: number,
): Promise<{ histogram: Histogram; count: number }> {
  const handle = await open(path, 'w');
  const histogram = latencyHistogram();
  const deadline = performance.now() + seconds * 1000;
  let position = 0;
  let count = 0;
  try {
    while (performance.now() < deadline) {
      const started = performance.now();
      await handle.write(block, 0, block.length, position);
      await handle.datasync();
      histogram.recordValue(Math.max(1, Math.round((performance.now() - started) * 1000)));
      position += block.length;
      count++;
    }
  } finally {
    await handle.close();
  }
  return { histogram, count };
}
