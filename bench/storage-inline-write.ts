// What an append's write costs the event loop, per size: a synchronous positioned writev into the
// page cache (writevSync, made in line) against the same write on libuv's thread pool (FileHandle
// writev, awaited: the thread hop and the wake-up that reports it). Sizes alternate within each
// round, and the file is cut back every few MiB so the writes stay in the page cache (no writeback
// pressure). This is the measurement behind the default of `inlineWriteMaxBytes`
// (docs/storage.md, "Append path"). Then, through PartitionLog's public API: a lone append (one
// 100-byte message, durability interval) until its acknowledgement, one at a time, with in-line
// writes (the default) and with thread-pool writes (`inlineWriteMaxBytes` 0); the loop yields to the
// event loop after every other append. The log section runs unchanged against another checkout
// (unknown config keys are ignored there): copy the file there for a before/after.
// Run: npx tsx bench/storage-inline-write.ts [--writes 2000] [--rounds 3] [--appends 10000] [--json]
//      (file in $BENCH_DIR or $TMPDIR, removed after)
import { writevSync } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PartitionLog } from '../src/storage/partition-log.js';
import { makeBatch } from './lib/batches.js';
import { argNumber, printResult, progress, type Row, writeResult } from './lib/report.js';

const writes = argNumber('writes', 2000);
const rounds = argNumber('rounds', 3);
const appends = argNumber('appends', 10_000);
const SIZES = [4 * 1024, 16 * 1024, 64 * 1024, 256 * 1024, 1024 * 1024];
const CUT_BACK_BYTES = 16 * 1024 * 1024;
const root = await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), 'ms-bench-inline-'));
const handle = await open(join(root, 'segment.log'), 'w+');

const quantile = (sorted: number[], q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

/** Microseconds of each of `count` writes of `size` bytes, in line or on the pool. */
async function timeWrites(size: number, count: number, inline: boolean): Promise<number[]> {
  const buffers = [Buffer.alloc(size, 0x61)];
  const times: number[] = [];
  let position = 0;
  await handle.truncate(0);
  for (let i = 0; i < count; i++) {
    if (position + size > CUT_BACK_BYTES) {
      await handle.truncate(0);
      position = 0;
    }
    const started = process.hrtime.bigint();
    if (inline) writevSync(handle.fd, buffers, position);
    else await handle.writev(buffers, position);
    times.push(Number(process.hrtime.bigint() - started) / 1000);
    position += size;
  }
  return times;
}

const samples = new Map<string, number[]>();
for (let round = 0; round <= rounds; round++) {
  progress(round === 0 ? 'warm-up' : `round ${round}/${rounds}`);
  for (const size of SIZES) {
    // Fewer of the large writes: the same bytes per size, at most `writes` calls.
    const count = Math.max(50, Math.min(writes, Math.floor((writes * 16 * 1024) / size)));
    for (const inline of [true, false]) {
      const times = await timeWrites(size, count, inline);
      if (round === 0) continue;
      const key = `${size}:${inline}`;
      samples.set(key, [...(samples.get(key) ?? []), ...times]);
    }
  }
}
await handle.close();

/** Microseconds from each lone append to its acknowledgement. */
async function loneAppends(config: object): Promise<{ times: number[]; inline: number; fallbacks: number }> {
  const dir = await mkdtemp(join(root, 'log-'));
  const log = await PartitionLog.open({ dir, config: { durability: 'interval', ...config } });
  const batch = makeBatch(1, 100);
  const times: number[] = [];
  for (let i = 0; i < appends; i++) {
    const started = process.hrtime.bigint();
    await log.append(Buffer.from(batch)).done;
    times.push(Number(process.hrtime.bigint() - started) / 1000);
    if (i % 2 === 1) await new Promise((resolve) => setImmediate(resolve));
  }
  const counts = log as unknown as { inlineWrites?: number; inlineWriteFallbacks?: number };
  const result = { times, inline: counts.inlineWrites ?? 0, fallbacks: counts.inlineWriteFallbacks ?? 0 };
  await log.close();
  await rm(dir, { recursive: true, force: true });
  return result;
}

const MODES = [
  { name: 'in line (default)', config: {} },
  { name: 'thread pool (inlineWriteMaxBytes 0)', config: { inlineWriteMaxBytes: 0 } },
];
const lone = new Map<string, { times: number[]; inline: number; fallbacks: number }>();
for (let round = 0; round <= rounds; round++) {
  progress(round === 0 ? 'lone appends: warm-up' : `lone appends: round ${round}/${rounds}`);
  for (const mode of round % 2 === 0 ? MODES : [...MODES].reverse()) {
    const result = await loneAppends(mode.config);
    if (round === 0) continue;
    const sum = lone.get(mode.name) ?? { times: [], inline: 0, fallbacks: 0 };
    sum.times.push(...result.times);
    sum.inline += result.inline;
    sum.fallbacks += result.fallbacks;
    lone.set(mode.name, sum);
  }
}
await rm(root, { recursive: true, force: true });

const rows: Row[] = SIZES.map((size) => {
  const inline = [...samples.get(`${size}:true`)!].sort((a, b) => a - b);
  const pool = [...samples.get(`${size}:false`)!].sort((a, b) => a - b);
  return {
    size: size >= 1024 * 1024 ? `${size / 1024 / 1024} MiB` : `${size / 1024} KiB`,
    writes: inline.length,
    'in line p50 µs': Math.round(quantile(inline, 0.5) * 10) / 10,
    'in line p99 µs': Math.round(quantile(inline, 0.99) * 10) / 10,
    'pool p50 µs': Math.round(quantile(pool, 0.5) * 10) / 10,
    'pool p99 µs': Math.round(quantile(pool, 0.99) * 10) / 10,
  };
});
for (const [name, result] of lone) {
  const sorted = [...result.times].sort((a, b) => a - b);
  rows.push({
    size: `lone append → ack, ${name}`,
    writes: sorted.length,
    'in line p50 µs': Math.round(quantile(sorted, 0.5) * 10) / 10,
    'in line p99 µs': Math.round(quantile(sorted, 0.99) * 10) / 10,
    'pool p50 µs': `${result.inline} in line`,
    'pool p99 µs': `${result.fallbacks} fallbacks`,
  });
}
printResult(
  writeResult({
    benchmark: 'storage-inline-write',
    title: 'One positioned write into the page cache: in line (writevSync) against the thread pool (awaited)',
    command: 'npx tsx bench/storage-inline-write.ts',
    settings: { writes, rounds, appends, sizes: SIZES.join(','), cutBackBytes: CUT_BACK_BYTES },
    rows,
    notes: [
      'the lone-append rows put P50 and P99 of append → acknowledgement in the first two columns, and the in-line writes and guard fallbacks of the log in the last two',
    ],
  }),
);
