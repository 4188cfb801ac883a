// Storage engine against raw file I/O on the same disk, in one run:
//  - append throughput of 100-byte records in 64 KiB batches (durability never and interval) vs a
//    raw sequential FileHandle.write of the same bytes;
//  - durability always: ack latency with 1, 8 and 64 concurrent writers of 4 KiB batches vs a raw
//    4 KiB write + fdatasync loop (group commit shows as throughput growing with writers);
//  - replay (sequential read) vs raw positioned reads of the same file.
// Run: npx tsx bench/storage.ts [--mb 256] [--seconds 3] [--json]   (data in $TMPDIR, removed after)
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
const root = await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), 'ms-bench-storage-'));

const big = makeBatch(590, 100); // ≈ 64 KiB
const small = makeBatch(36, 100); // ≈ 4 KiB
const mbps = (bytes: number, ms: number) => Math.round(bytes / 1e6 / (ms / 1000));

async function rawWrite(path: string): Promise<number> {
  const handle = await open(path, 'w');
  const started = performance.now();
  let position = 0;
  while (position < totalBytes) {
    await handle.write(big, 0, big.length, position);
    position += big.length;
  }
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
  while (written < totalBytes) {
    pending.push(log.append(Buffer.from(big)).done);
    written += big.length;
    if (pending.length >= 256) {
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
    // Raw and log alternate so both see the same page-cache and writeback conditions.
    progress(`raw write, then log append (${durability})`);
    const raw = await rawWrite(join(root, `raw-${durability}.bin`));
    const ours = await logAppend(join(root, `log-${durability}`), durability);
    throughput.push({
      case: `append, durability ${durability}`,
      'raw MB/s': raw,
      'log MB/s': ours,
      ratio: Number((ours / raw).toFixed(2)),
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
      settings: { megabytes: totalBytes / 2 ** 20, batchBytes: big.length, recordBytes: 100 },
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
