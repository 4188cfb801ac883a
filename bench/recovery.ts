// Recovery at open after a crash, against a raw sequential read of the same files, in one run:
//  - builds a log through the real append path (100-byte records in 64 KiB batches, durability
//    never, then one fdatasync of every segment), and abandons it without close() — a crash;
//  - tears the tail: the last segment is cut in the middle of its last batch and random bytes are
//    appended, as a crash mid-write leaves it;
//  - times PartitionLog.open in two cases: sealed segments with valid indexes (only the last
//    segment is scanned: the usual restart), and every index missing (every byte is scanned and
//    verified: the worst case); each against a raw 1 MiB-chunk read of the bytes that case scans.
// Segments default to 3/8 of the size, so the last one holds a third of the log (a busy active segment).
// Each case runs `--rounds` times (a fresh tear each round) and reports the median. Files are in
// the page cache (the log was just written), as for the storage benchmark.
// Run: npx tsx bench/recovery.ts [--mb 1024] [--segment-mb 384] [--rounds 3] [--json]
//      (data in $BENCH_DIR or $TMPDIR, removed after; --mb 16 for a quick check)
import { randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, open, readdir, rm, stat, statfs, truncate, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BATCH_OFFSETS } from '../src/protocol/record-batch-layout.js';
import { PartitionLog, type RecoveryReport } from '../src/storage/partition-log.js';
import { makeBatch } from './lib/batches.js';
import { argNumber, printResult, progress, type Row, writeResult } from './lib/report.js';

const megabytes = argNumber('mb', 1024);
const totalBytes = megabytes * 1024 * 1024;
const segmentBytes = argNumber('segment-mb', Math.max(1, Math.round((megabytes * 3) / 8))) * 1024 * 1024;
const rounds = argNumber('rounds', 3);
const GARBAGE_BYTES = 4096;
const root = await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), 'ms-bench-recovery-'));
const dir = join(root, 'log');

const big = makeBatch(590, 100); // ≈ 64 KiB
const recordsPerBatch = big.readInt32BE(BATCH_OFFSETS.recordCount);
const MB = 1e6;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function segmentFiles(): Promise<string[]> {
  return (await readdir(dir))
    .filter((f) => f.endsWith('.log'))
    .sort()
    .map((f) => join(dir, f));
}

/** Writes the log through PartitionLog.append, syncs the files once, and abandons the log (no close). */
async function build(): Promise<{ abandoned: PartitionLog; endOffset: bigint }> {
  const log = await PartitionLog.open({ dir, config: { durability: 'never', segmentBytes } });
  let written = 0;
  let pending: Promise<unknown>[] = [];
  let reported = 0;
  while (written < totalBytes) {
    pending.push(log.append(Buffer.from(big)).done);
    written += big.length;
    if (pending.length >= 256) {
      await Promise.all(pending);
      pending = [];
    }
    if (written - reported >= 64 * 1024 * 1024) {
      reported = written;
      progress(`building the log: ${Math.round(written / 2 ** 20)} / ${megabytes} MiB`);
    }
  }
  await Promise.all(pending);
  // The last segment must keep whole batches for every tear of every round (2 × rounds): when it
  // has just rolled, append a few batches past the size asked for.
  while ((await stat((await segmentFiles()).at(-1)!)).size < (2 * rounds + 2) * big.length) {
    await log.append(Buffer.from(big)).done;
  }
  for (const path of await segmentFiles()) {
    const handle = await open(path, 'r+');
    await handle.datasync();
    await handle.close();
  }
  return { abandoned: log, endOffset: log.logEndOffset };
}

/** Cuts the last segment in the middle of its last batch and appends random bytes. */
async function tearTail(): Promise<void> {
  const files = await segmentFiles();
  const last = files.at(-1)!;
  const size = (await stat(last)).size;
  await truncate(last, size - Math.floor(big.length / 2));
  await appendFile(last, randomBytes(GARBAGE_BYTES));
}

async function dropIndexes(): Promise<void> {
  for (const name of await readdir(dir)) {
    if (name.endsWith('.index') || name.endsWith('.timeindex')) await unlink(join(dir, name));
  }
}

/** Sequential 1 MiB reads of the files, as fast as the file system gives them: MB/s. */
async function rawRead(paths: string[]): Promise<{ bytes: number; seconds: number }> {
  const buffer = Buffer.allocUnsafe(1 << 20);
  let bytes = 0;
  const started = performance.now();
  for (const path of paths) {
    const handle = await open(path, 'r');
    for (let position = 0; ; ) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) break;
      position += bytesRead;
    }
    bytes += (await handle.stat()).size;
    await handle.close();
  }
  return { bytes, seconds: (performance.now() - started) / 1000 };
}

async function timedOpen(): Promise<{ seconds: number; report: RecoveryReport; endOffset: bigint }> {
  const started = performance.now();
  const log = await PartitionLog.open({ dir, config: { durability: 'never', segmentBytes } });
  const seconds = (performance.now() - started) / 1000;
  const result = { seconds, report: log.recovery, endOffset: log.logEndOffset };
  await log.close();
  return result;
}

interface CaseResult {
  row: Row;
  endOffset: bigint;
}

async function measure(name: string, indexes: 'valid' | 'missing', endBefore: bigint): Promise<CaseResult> {
  const openSeconds: number[] = [];
  const rawSeconds: number[] = [];
  let report: RecoveryReport | null = null;
  let rawBytes = 0;
  let endOffset = endBefore;
  let lost = 0n;
  for (let round = 0; round < rounds; round++) {
    progress(`${name}: round ${round + 1} of ${rounds}`);
    await tearTail();
    if (indexes === 'missing') await dropIndexes();
    const files = await segmentFiles();
    // Raw first, then the log, so both see the same page-cache state.
    const raw = await rawRead(indexes === 'valid' ? [files.at(-1)!] : files);
    rawSeconds.push(raw.seconds);
    rawBytes = raw.bytes;
    const opened = await timedOpen();
    openSeconds.push(opened.seconds);
    report = opened.report;
    // One torn batch per tear: the records lost are the ones of the batch that was cut.
    lost = endOffset - opened.endOffset;
    endOffset = opened.endOffset;
  }
  const seconds = median(openSeconds);
  const raw = median(rawSeconds);
  const scanned = report!.scannedBytes + report!.truncatedBytes;
  const logMBs = scanned / MB / seconds;
  const rawMBs = rawBytes / MB / raw;
  return {
    endOffset,
    row: {
      case: name,
      segments: report!.segments,
      'rebuilt indexes': report!.rebuiltIndexes,
      'scanned MB': Math.round(scanned / MB),
      'open s': Number(seconds.toFixed(3)),
      'scan MB/s': Math.round(logMBs),
      'raw read MB/s': Math.round(rawMBs),
      ratio: Number((logMBs / rawMBs).toFixed(2)),
      'truncated bytes': report!.truncatedBytes,
      'records lost': Number(lost),
      truncation: report!.truncation?.reason ?? 'none',
    },
  };
}

try {
  const { bavail, bsize } = await statfs(root);
  if (bavail * bsize < totalBytes * 1.2) {
    throw new Error(
      `${root} has ${Math.round((bavail * bsize) / 2 ** 20)} MiB free; ${megabytes} MiB needed`,
    );
  }
  const { abandoned, endOffset } = await build();
  void abandoned; // Never closed: the process "crashed" with it open; its handles die with the process.
  const rows: Row[] = [];
  const usual = await measure('restart: sealed indexes valid, last segment scanned', 'valid', endOffset);
  rows.push(usual.row);
  const worst = await measure('indexes missing: every segment scanned', 'missing', usual.endOffset);
  rows.push(worst.row);
  for (const row of rows) {
    const lost = row['records lost'];
    if (lost !== recordsPerBatch)
      throw new Error(`expected one torn batch (${recordsPerBatch} records) lost, got ${lost}`);
    if (row['rebuilt indexes'] !== (row.case === rows[0]!.case ? 0 : Number(row.segments) - 1))
      throw new Error(`unexpected index rebuilds: ${JSON.stringify(row)}`);
  }
  printResult(
    writeResult({
      benchmark: 'recovery',
      title:
        'Recovery at open after a crash with a torn tail, vs a raw sequential read of the same bytes (page cache)',
      command: `npx tsx bench/recovery.ts --mb ${megabytes}`,
      settings: {
        megabytes,
        segmentMegabytes: segmentBytes / 2 ** 20,
        batchBytes: big.length,
        recordBytes: 100,
        garbageBytes: GARBAGE_BYTES,
        rounds,
      },
      rows,
      notes: [
        'scan MB/s = (scanned + truncated bytes) ÷ the whole PartitionLog.open time (median of the rounds); raw read: 1 MiB sequential reads of the same files',
        'each round cuts the last batch in half and appends 4 KiB of random bytes; recovery must lose exactly that batch',
      ],
    }),
  );
} finally {
  await rm(root, { recursive: true, force: true });
}
