// What the cap on open files (src/storage/open-files.ts) costs a read, under the minimum cap (8):
//  - hot: a log of one segment holding --segments 4 KiB batches; its file stays open (it is the
//    most recently used), so a read of any batch opens nothing;
//  - cold: a log of --segments segments of one 4 KiB batch each; with 8 files open at most, the
//    segment a read needs is closed, so the read reopens it (and closes the least recently used
//    idle file to make room).
// Reads alternate hot, cold, hot, cold… at the same batch index (a fixed pseudo-random order), one at
// a time, from the page cache, each timed on its own: load on the machine hits both alike, and the
// median of the per-pair differences is the price of a cold read.
// Run: npx tsx bench/open-files.ts [--segments 1000] [--reads 20000] [--json]
//      (data in $BENCH_DIR or $TMPDIR, removed after)
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BATCH_OFFSETS } from '../src/protocol/record-batch-layout.js';
import { configureOpenFiles, MIN_MAX_OPEN_FILES, openFileStats } from '../src/storage/open-files.js';
import { PartitionLog } from '../src/storage/partition-log.js';
import { makeBatch } from './lib/batches.js';
import { argNumber, printResult, progress, type Row, writeResult } from './lib/report.js';

const segments = argNumber('segments', 1000);
const reads = argNumber('reads', 20000);
const root = await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), 'ms-bench-open-files-'));
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const batch = makeBatch(36, 100); // ≈ 4 KiB
const recordsPerBatch = BigInt(batch.readInt32BE(BATCH_OFFSETS.recordCount));
const config = { durability: 'never' as const, indexIntervalBytes: 4096 };
const hot = await PartitionLog.open({ dir: join(root, 'hot'), config: { ...config, segmentBytes: 1 << 30 } });
const cold = await PartitionLog.open({
  dir: join(root, 'cold'),
  config: { ...config, segmentBytes: batch.length + 1 },
});
progress(`writing ${segments} batches to each log`);
for (let i = 0; i < segments; i++) {
  await hot.append(Buffer.from(batch)).done;
  await cold.append(Buffer.from(batch)).done;
}
await configureOpenFiles({ maxOpenFiles: MIN_MAX_OPEN_FILES });
// A fixed pseudo-random order over the batches (a step coprime to the count).
let step = 7919;
while (segments % step === 0) step += 2;
const offsets = Array.from({ length: reads }, (_, i) => BigInt((i * step) % segments) * recordsPerBatch);

async function timed(log: PartitionLog, offset: bigint): Promise<number> {
  const started = performance.now();
  await log.read(offset, 4096);
  return (performance.now() - started) * 1000;
}

// Warm-up: JIT, page cache.
for (let i = 0; i < Math.min(2000, reads); i++) {
  await timed(hot, offsets[i]!);
  await timed(cold, offsets[i]!);
}
const hotUs: number[] = [];
const coldUs: number[] = [];
const diffUs: number[] = [];
const opensBefore = openFileStats().opens;
let coldOpens = 0;
for (let i = 0; i < reads; i++) {
  if (i % 2000 === 0) progress(`read ${i}/${reads}`);
  const h = await timed(hot, offsets[i]!);
  const opens = openFileStats().opens;
  const c = await timed(cold, offsets[i]!);
  coldOpens += openFileStats().opens - opens;
  hotUs.push(h);
  coldUs.push(c);
  diffUs.push(c - h);
}
const hotOpens = openFileStats().opens - opensBefore - coldOpens;
await hot.close();
await cold.close();
await rm(root, { recursive: true, force: true });

const us = (v: number) => Math.round(v * 10) / 10;
const p90 = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length * 0.9)]!;
const rows: Row[] = [
  {
    case: 'hot: the segment file is open',
    'median µs': us(median(hotUs)),
    'p90 µs': us(p90(hotUs)),
    'opens per read': Math.round((hotOpens / reads) * 1000) / 1000,
  },
  {
    case: `cold: the segment file was closed (cap ${MIN_MAX_OPEN_FILES})`,
    'median µs': us(median(coldUs)),
    'p90 µs': us(p90(coldUs)),
    'opens per read': Math.round((coldOpens / reads) * 1000) / 1000,
  },
  {
    case: 'cold − hot, per pair',
    'median µs': us(median(diffUs)),
    'p90 µs': us(p90(diffUs)),
    'opens per read': null,
  },
];
printResult(
  writeResult({
    benchmark: 'open-files',
    title: 'Open-file cap: a 4 KiB read of a segment whose file is open vs one whose file was closed',
    command: 'npx tsx bench/open-files.ts',
    settings: { segments, reads, batchBytes: batch.length },
    rows,
  }),
);
