// Storage engine against raw file I/O on the same disk, in one run:
//  - append throughput of 100-byte records in 64 KiB batches (durability never and interval) vs a
//    raw sequential FileHandle.write of the same bytes (with `interval`, the raw writer also
//    fdatasyncs every 100 ms);
//  - durability always: ack latency with 1, 8 and 64 concurrent writers of 4 KiB batches vs a raw
//    4 KiB write + fdatasync loop (group commit shows as throughput growing with writers);
//  - replay (sequential read) vs raw positioned reads of the same file.
// Run: npx tsx bench/storage.ts [--mb 256] [--seconds 3] [--json]   (data in $TMPDIR, removed after)
import { execSync } from 'node:child_process';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PartitionLog } from '../src/storage/partition-log.js';
import { makeBatch } from './lib/batches.js';
import { rawFsyncLatency } from './lib/fsync.js';
import {
  argNumber,
  latencyHistogram,
  percentiles,
  printResult,
  progress,
  type Row,
  writeResult,
} from './lib/report.js';

const totalBytes = argNumber('mb', 256) * 1024 * 1024;
const seconds = argNumber('seconds', 3);
const rounds = argNumber('rounds', 5);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const root = await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), 'ms-bench-storage-'));

const big = makeBatch(590, 100); // ≈ 64 KiB
const small = makeBatch(36, 100); // ≈ 4 KiB
const mbps = (bytes: number, ms: number) => Math.round(bytes / 1e6 / (ms / 1000));

/**
 * Distinct copies of the 64 KiB batch, made before any timing: both the raw writer and the log
 * write from them, so neither pays for copying or collecting buffers inside its timed loop, and
 * neither writes one cache-hot buffer over and over. 256 of them (16 MiB) are the log's window:
 * a copy is written again only after its previous append resolved (the log stamps the base
 * offset into it).
 */
const WINDOW = 256;
const pool = Array.from({ length: WINDOW }, () => Buffer.from(big));

/** Sequential 64 KiB writes; with `interval`, an fdatasync every 100 ms like the log's policy. */
async function rawWrite(path: string, durability: 'never' | 'interval'): Promise<number> {
  const handle = await open(path, 'w');
  let syncing: Promise<void> | null = null;
  const timer =
    durability === 'interval'
      ? setInterval(() => {
          syncing ??= handle.datasync().finally(() => {
            syncing = null;
          });
        }, 100)
      : null;
  const started = performance.now();
  let position = 0;
  for (let i = 0; position < totalBytes; i++) {
    await handle.write(pool[i % WINDOW]!, 0, big.length, position);
    position += big.length;
  }
  if (timer !== null) clearInterval(timer);
  await syncing;
  const ms = performance.now() - started;
  await handle.close();
  return mbps(position, ms);
}

async function logAppend(dir: string, durability: 'never' | 'interval'): Promise<number> {
  const log = await PartitionLog.open({
    dir,
    config: { durability, flushIntervalMs: 100, segmentBytes: 1 << 30 },
  });
  const started = performance.now();
  let written = 0;
  let pending: Promise<unknown>[] = [];
  for (let i = 0; written < totalBytes; i++) {
    pending.push(log.append(pool[i % WINDOW]!).done);
    written += big.length;
    if (pending.length >= WINDOW) {
      await Promise.all(pending);
      pending = [];
    }
  }
  await Promise.all(pending);
  const ms = performance.now() - started;
  await log.close();
  return mbps(written, ms);
}

async function rawFsync(path: string): Promise<Row> {
  const { histogram, count } = await rawFsyncLatency(path, small, seconds);
  return {
    case: 'raw write+fdatasync 4 KiB',
    writers: 1,
    'acks/s': Math.round(count / seconds),
    ...percentiles(histogram),
  };
}

async function alwaysLatency(dir: string, writers: number): Promise<Row> {
  const log = await PartitionLog.open({ dir, config: { durability: 'always', segmentBytes: 1 << 30 } });
  const histogram = latencyHistogram();
  const deadline = performance.now() + seconds * 1000;
  let count = 0;
  await Promise.all(
    Array.from({ length: writers }, async () => {
      while (performance.now() < deadline) {
        const started = performance.now();
        await log.append(Buffer.from(small)).done;
        histogram.recordValue(Math.max(1, Math.round((performance.now() - started) * 1000)));
        count++;
      }
    }),
  );
  await log.close();
  return {
    case: 'log append, durability always, 4 KiB',
    writers,
    'acks/s': Math.round(count / seconds),
    ...percentiles(histogram),
  };
}

async function rawRead(path: string): Promise<number> {
  const handle = await open(path, 'r');
  const buffer = Buffer.allocUnsafe(1 << 20);
  const started = performance.now();
  let position = 0;
  for (;;) {
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
    if (bytesRead === 0) break;
    position += bytesRead;
  }
  const ms = performance.now() - started;
  await handle.close();
  return mbps(position, ms);
}

async function logReplay(dir: string): Promise<number> {
  const log = await PartitionLog.open({ dir, config: { segmentBytes: 1 << 30 } });
  const started = performance.now();
  let offset = 0n;
  let bytes = 0;
  while (offset < log.highWatermark) {
    const { data, nextOffset } = await log.read(offset, 1 << 20);
    bytes += data.length;
    offset = nextOffset;
  }
  const ms = performance.now() - started;
  await log.close();
  return mbps(bytes, ms);
}

try {
  const throughput: Row[] = [];
  for (const durability of ['never', 'interval'] as const) {
    // Raw and log alternate, several rounds, each from a clean page cache state (`sync` first: a
    // backlog of dirty pages from the previous run throttles the next writer and was the largest
    // source of run-to-run variation); the figures are the medians.
    const raws: number[] = [];
    const logs: number[] = [];
    // One unrecorded run of each first: the first log run of a process is several times slower
    // (JIT, first allocations of the 16 MiB window), which is not what this measures.
    await rawWrite(join(root, `raw-${durability}.bin`), durability);
    await logAppend(join(root, `log-${durability}`), durability);
    for (let round = 0; round < rounds; round++) {
      progress(`raw write and log append (${durability}), round ${round + 1}/${rounds}`);
      const order = round % 2 === 0 ? (['raw', 'log'] as const) : (['log', 'raw'] as const);
      for (const which of order) {
        // Each run writes afresh: its own previous output is removed, the other's is kept (the
        // replay below reads the last raw file and log of `never`).
        if (which === 'raw') await rm(join(root, `raw-${durability}.bin`), { force: true });
        else await rm(join(root, `log-${durability}`), { recursive: true, force: true });
        execSync('sync');
        if (which === 'raw') raws.push(await rawWrite(join(root, `raw-${durability}.bin`), durability));
        else logs.push(await logAppend(join(root, `log-${durability}`), durability));
      }
    }
    const raw = median(raws);
    const ours = median(logs);
    throughput.push({
      case: `append, durability ${durability}`,
      'raw MB/s': raw,
      'log MB/s': ours,
      ratio: Number((ours / raw).toFixed(2)),
      'raw per round': raws.join(', '),
      'log per round': logs.join(', '),
    });
  }
  progress('replay');
  const rawR = await rawRead(join(root, 'raw-never.bin'));
  const ourR = await logReplay(join(root, 'log-never'));
  throughput.push({
    case: 'sequential read (replay)',
    'raw MB/s': rawR,
    'log MB/s': ourR,
    ratio: Number((ourR / rawR).toFixed(2)),
  });
  printResult(
    writeResult({
      benchmark: 'storage-throughput',
      title: 'Storage throughput: 100-byte records in 64 KiB batches vs raw file I/O (page cache)',
      command: 'npx tsx bench/storage.ts',
      settings: {
        megabytes: totalBytes / 2 ** 20,
        batchBytes: big.length,
        recordBytes: 100,
        appendRounds: rounds,
        statistic: 'median of alternating rounds, each after sync',
      },
      rows: throughput,
      notes: ['target: ≥ 0.8 of raw for append (never, interval) and replay'],
    }),
  );
  const latency: Row[] = [];
  progress('raw fdatasync');
  latency.push(await rawFsync(join(root, 'fsync.bin')));
  for (const writers of [1, 8, 64]) {
    progress(`always with ${writers} writers`);
    latency.push(await alwaysLatency(join(root, `always-${writers}`), writers));
  }
  printResult(
    writeResult({
      benchmark: 'storage-always',
      title:
        'Durability always (group commit): acknowledgement latency vs raw write+fdatasync, 4 KiB batches',
      command: 'npx tsx bench/storage.ts',
      settings: { seconds, batchBytes: small.length },
      rows: latency,
      notes: ['target: log P99 ≤ 2× raw fdatasync P99; throughput grows with writers (group commit)'],
    }),
  );
} finally {
  await rm(root, { recursive: true, force: true });
}
