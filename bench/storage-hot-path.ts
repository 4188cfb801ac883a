// The per-call cost of the storage hot paths, with as little else in the way as possible: small
// appends to the active segment (durability never, so no fdatasync) and reads of the batch just
// appended (the tail), all from the page cache. Every call leases the segment's open file; this
// measures what that bookkeeping costs per call. Uses only PartitionLog's public API, so the same
// file runs against another checkout for an A/B (copy it there; run the two alternately).
// Run: npx tsx bench/storage-hot-path.ts [--appends 100000] [--rounds 5] [--json]
//      (data in $BENCH_DIR or $TMPDIR, removed after)
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PartitionLog } from '../src/storage/partition-log.js';
import { makeBatch } from './lib/batches.js';
import { argNumber, printResult, progress, type Row, writeResult } from './lib/report.js';

const appends = argNumber('appends', 100_000);
const rounds = argNumber('rounds', 5);
const root = await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), 'ms-bench-hot-path-'));
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const batch = makeBatch(4, 100); // ≈ 500 bytes
const WINDOW = 64;
const pool = Array.from({ length: WINDOW }, () => Buffer.from(batch));

/** Appends, WINDOW in flight at a time; returns appends per second. */
async function appendRate(log: PartitionLog): Promise<number> {
  const started = performance.now();
  let pending: Promise<unknown>[] = [];
  for (let i = 0; i < appends; i++) {
    pending.push(log.append(pool[i % WINDOW]!).done);
    if (pending.length >= WINDOW) {
      await Promise.all(pending);
      pending = [];
    }
  }
  await Promise.all(pending);
  return appends / ((performance.now() - started) / 1000);
}

/** One append then a read of it, one at a time (a consumer at the tail); returns pairs per second. */
async function tailRate(log: PartitionLog): Promise<number> {
  const pairs = Math.floor(appends / 10);
  const started = performance.now();
  for (let i = 0; i < pairs; i++) {
    const ticket = log.append(pool[i % WINDOW]!);
    await ticket.done;
    await log.read(ticket.baseOffset, 4096);
  }
  return pairs / ((performance.now() - started) / 1000);
}

const figures = { append: [] as number[], tail: [] as number[] };
for (let round = 0; round <= rounds; round++) {
  progress(round === 0 ? 'warm-up' : `round ${round}/${rounds}`);
  const dir = join(root, `r${round}`);
  const log = await PartitionLog.open({ dir, config: { durability: 'never', segmentBytes: 1 << 30 } });
  const append = await appendRate(log);
  const tail = await tailRate(log);
  await log.close();
  await rm(dir, { recursive: true, force: true });
  if (round === 0) continue; // warm-up: JIT, page cache
  figures.append.push(append);
  figures.tail.push(tail);
}
await rm(root, { recursive: true, force: true });

const rows: Row[] = [
  {
    case: `append ${batch.length} B, durability never, ${WINDOW} in flight`,
    'per second (median)': Math.round(median(figures.append)),
    'per round': figures.append.map((v) => Math.round(v)).join(', '),
  },
  {
    case: 'append + read of it at the tail, one at a time',
    'per second (median)': Math.round(median(figures.tail)),
    'per round': figures.tail.map((v) => Math.round(v)).join(', '),
  },
];
printResult(
  writeResult({
    benchmark: 'storage-hot-path',
    title: 'Storage hot paths: small appends and tail reads per second (page cache)',
    command: 'npx tsx bench/storage-hot-path.ts',
    settings: { appends, rounds, batchBytes: batch.length },
    rows,
  }),
);
