// What the cap on open files (src/storage/open-files.ts) costs a read: a log of --segments sealed
// segments of one 4 KiB batch each, read one batch at a time at offsets spread over all segments:
//  - hot: the cap holds every segment's file, so no read opens anything;
//  - cold: the cap is the minimum (8), so nearly every read finds its segment's file closed and
//    reopens it (and closes the least recently used idle one to make room).
// Both cases read the same offsets in the same order from the page cache, in alternating rounds;
// the difference per read is the price of a cold read (one open, one close, on the threadpool).
// Run: npx tsx bench/open-files.ts [--segments 2000] [--reads 20000] [--rounds 5] [--json]
//      (data in $BENCH_DIR or $TMPDIR, removed after)
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BATCH_OFFSETS } from '../src/protocol/record-batch-layout.js';
import {
  configureOpenFiles,
  DEFAULT_MAX_OPEN_FILES,
  MIN_MAX_OPEN_FILES,
  openFileStats,
} from '../src/storage/open-files.js';
import { PartitionLog } from '../src/storage/partition-log.js';
import { makeBatch } from './lib/batches.js';
import { argNumber, printResult, progress, type Row, writeResult } from './lib/report.js';

const segments = argNumber('segments', 2000);
const reads = argNumber('reads', 20000);
const rounds = argNumber('rounds', 5);
const root = await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), 'ms-bench-open-files-'));
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const batch = makeBatch(36, 100); // ≈ 4 KiB, one per segment
const log = await PartitionLog.open({
  dir: root,
  config: { durability: 'never', segmentBytes: batch.length + 1, indexIntervalBytes: 4096 },
});
progress(`writing ${segments} segments`);
for (let i = 0; i < segments; i++) await log.append(Buffer.from(batch)).done;
const recordsPerBatch = BigInt(batch.readInt32BE(BATCH_OFFSETS.recordCount));
// A fixed pseudo-random order over the segments (a multiplicative step coprime to the count).
const step = 7919 % segments === 0 ? 7907 : 7919;
const offsets = Array.from({ length: reads }, (_, i) => BigInt((i * step) % segments) * recordsPerBatch);

async function readAll(cap: number): Promise<{ usPerRead: number; opensPerRead: number }> {
  await configureOpenFiles({ maxOpenFiles: cap });
  // Warm: the hot case starts with every file open, the cold one with the cap already full.
  for (let s = 0; s < segments; s++) await log.read(BigInt(s) * recordsPerBatch, 4096);
  const opens = openFileStats().opens;
  const started = performance.now();
  for (const offset of offsets) await log.read(offset, 4096);
  const ms = performance.now() - started;
  return { usPerRead: (ms * 1000) / reads, opensPerRead: (openFileStats().opens - opens) / reads };
}

const hotCap = Math.max(DEFAULT_MAX_OPEN_FILES, segments + 64);
const figures = { hot: [] as number[], cold: [] as number[] };
let coldOpens = 0;
let hotOpens = 0;
for (let round = 0; round < rounds; round++) {
  progress(`round ${round + 1}/${rounds}`);
  const order = round % 2 === 0 ? (['hot', 'cold'] as const) : (['cold', 'hot'] as const);
  for (const name of order) {
    const result = await readAll(name === 'hot' ? hotCap : MIN_MAX_OPEN_FILES);
    figures[name].push(result.usPerRead);
    if (name === 'cold') coldOpens = result.opensPerRead;
    else hotOpens = result.opensPerRead;
  }
}
await log.close();
await rm(root, { recursive: true, force: true });

const hot = median(figures.hot);
const cold = median(figures.cold);
const rows: Row[] = [
  {
    case: `hot: cap ${hotCap}, every segment file open`,
    'µs per read (median of rounds)': Math.round(hot * 10) / 10,
    'opens per read': Math.round(hotOpens * 1000) / 1000,
    'µs per round': figures.hot.map((v) => v.toFixed(1)).join(', '),
  },
  {
    case: `cold: cap ${MIN_MAX_OPEN_FILES}, the segment's file reopened`,
    'µs per read (median of rounds)': Math.round(cold * 10) / 10,
    'opens per read': Math.round(coldOpens * 1000) / 1000,
    'µs per round': figures.cold.map((v) => v.toFixed(1)).join(', '),
  },
  {
    case: 'cost of a cold read (cold − hot)',
    'µs per read (median of rounds)': Math.round((cold - hot) * 10) / 10,
    'opens per read': null,
    'µs per round': figures.cold.map((v, i) => (v - figures.hot[i]!).toFixed(1)).join(', '),
  },
];
printResult(
  writeResult({
    benchmark: 'open-files',
    title: 'Open-file cap: a read of a segment whose file is open vs one whose file was closed',
    command: 'npx tsx bench/open-files.ts',
    settings: { segments, reads, rounds, batchBytes: batch.length },
    rows,
  }),
);
