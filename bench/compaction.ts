// Log compaction throughput: builds a log of 100-byte records over `--keys` distinct keys (100
// records a batch, uncompressed, durability never), then times PartitionLog.compact over it:
// MB/s of sealed segments cleaned (their size before), records removed per second. Each round
// builds a fresh log; the median of `--rounds` is printed. Files are in the page cache (just
// written). Prints only; no results file.
// Run: npx tsx bench/compaction.ts [--mb 256] [--keys 10000] [--segment-mb 32] [--rounds 3]
//      (data in $BENCH_DIR or $TMPDIR, removed after)
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeRecordBatch } from '../src/protocol/record-batch.js';
import { PartitionLog } from '../src/storage/partition-log.js';
import { argNumber, progress } from './lib/report.js';

const megabytes = argNumber('mb', 256);
const keys = argNumber('keys', 10_000);
const segmentBytes = argNumber('segment-mb', 32) * 1024 * 1024;
const rounds = argNumber('rounds', 3);
const MB = 1e6;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function round(n: number): Promise<{ mbPerSecond: number; recordsPerSecond: number; kept: number }> {
  const dir = await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), 'ms-bench-compaction-'));
  try {
    const log = await PartitionLog.open({ dir, config: { durability: 'never', segmentBytes } });
    const value = 'v'.repeat(100);
    let record = 0;
    let pending: Promise<unknown>[] = [];
    let reported = 0;
    while (log.sizeBytes < megabytes * 1024 * 1024) {
      const batch = encodeRecordBatch(
        Array.from({ length: 100 }, () => ({ key: `key${(record++ * 7919) % keys}`, value, timestamp: 1 })),
      );
      pending.push(log.append(batch).done);
      if (pending.length >= 256) {
        await Promise.all(pending);
        pending = [];
      }
      if (log.sizeBytes - reported >= 64 * 1024 * 1024) {
        reported = log.sizeBytes;
        progress(`round ${n}: building ${Math.round(reported / 2 ** 20)} / ${megabytes} MiB`);
      }
    }
    await Promise.all(pending);
    const started = performance.now();
    const report = await log.compact({ now: 2 });
    const seconds = (performance.now() - started) / 1000;
    await log.close();
    return {
      mbPerSecond: report.bytesBefore / MB / seconds,
      recordsPerSecond: report.recordsRemoved / seconds,
      kept: report.bytesAfter / Math.max(1, report.bytesBefore),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const results = [];
for (let n = 1; n <= rounds; n++) results.push(await round(n));
console.log(
  `compaction of ${megabytes} MiB, ${keys} keys, ${segmentBytes / 2 ** 20} MiB segments, median of ${rounds}: ` +
    `${median(results.map((r) => r.mbPerSecond)).toFixed(1)} MB/s cleaned, ` +
    `${Math.round(median(results.map((r) => r.recordsPerSecond)))} records removed/s, ` +
    `${(median(results.map((r) => r.kept)) * 100).toFixed(2)} % of the cleaned bytes kept`,
);
