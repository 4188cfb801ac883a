// Storage engine against raw file I/O on the same disk, in one run:
//  - append throughput of 100-byte records in 64 KiB batches (durability never and interval) vs a
//    raw sequential FileHandle.write of the same bytes (with `interval`, the raw writer also
//    fdatasyncs every 100 ms);
//  - replay (sequential read, 1 MiB per read) vs raw positioned reads of the same bytes with the
//    same chunk size, in alternating rounds; alongside, what verifying each batch's CRC-32C costs
//    a bare reader (raw read + CRC, with and without the next read overlapping the CRC);
//  - durability always: ack latency with 1 writer of 4 KiB batches vs a raw 4 KiB write +
//    fdatasync, sample by sample in turns, in rounds (per-round P99 ratios and pooled histograms);
//    then 8 and 64 concurrent writers (group commit shows as throughput growing with writers).
// Run: npx tsx bench/storage.ts [--mb 256] [--seconds 2] [--rounds 5] [--replay-rounds 9]
//        [--always-rounds 8]
//        [--only append,replay,always] [--json]   (data in $TMPDIR, removed after)
import { execSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Histogram } from 'hdr-histogram-js';
import { crc32c } from '../src/protocol/crc32c.js';
import { PartitionLog } from '../src/storage/partition-log.js';
import { makeBatch } from './lib/batches.js';
import {
  argNumber,
  latencyHistogram,
  percentiles,
  printResult,
  progress,
  type Row,
  rate,
  writeResult,
} from './lib/report.js';

const totalBytes = argNumber('mb', 256) * 1024 * 1024;
const seconds = argNumber('seconds', 2);
const rounds = argNumber('rounds', 5);
const alwaysRounds = argNumber('always-rounds', 8);
const replayRounds = argNumber('replay-rounds', 9);
const onlyIndex = process.argv.indexOf('--only');
const only = onlyIndex < 0 ? ['append', 'replay', 'always'] : process.argv[onlyIndex + 1]!.split(',');
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

interface Sample {
  histogram: Histogram;
  count: number;
}

/** `writers` concurrent appenders of 4 KiB batches under durability always, for `seconds`. */
async function alwaysLatency(dir: string, writers: number): Promise<Sample> {
  await rm(dir, { recursive: true, force: true });
  const log = await PartitionLog.open({ dir, config: { durability: 'always', segmentBytes: 1 << 30 } });
  const histogram = latencyHistogram();
  // One buffer per writer, made before timing like the raw loop's block (the log stamps the base
  // offset into it; a writer reuses its buffer only after the previous append was acknowledged).
  const blocks = Array.from({ length: writers }, () => Buffer.from(small));
  const deadline = performance.now() + seconds * 1000;
  let count = 0;
  await Promise.all(
    blocks.map(async (block) => {
      while (performance.now() < deadline) {
        const started = performance.now();
        await log.append(block).done;
        histogram.recordValue(Math.max(1, Math.round((performance.now() - started) * 1000)));
        count++;
      }
    }),
  );
  await log.close();
  return { histogram, count };
}

/** The log's read size in this bench: 1 MiB asked for, plus the index interval it reads past. */
const READ_BYTES = 1 << 20;
const READ_WINDOW = READ_BYTES + 4096;

/**
 * Raw positioned reads of `path` in the log's window size. `fresh`: a new buffer per read, as any
 * reader that hands the bytes on (to a socket, a consumer) must have; otherwise one buffer reused.
 * `crc`: CRC-32C over every batch-sized piece, with the next read in flight meanwhile when `ahead`.
 */
async function rawRead(
  path: string,
  mode: { fresh: boolean; crc: boolean; ahead: boolean },
): Promise<number> {
  const handle = await open(path, 'r');
  const reused = Buffer.allocUnsafe(READ_WINDOW);
  const started = performance.now();
  let position = 0;
  const readAt = (at: number) =>
    handle.read(mode.fresh ? Buffer.allocUnsafe(READ_WINDOW) : reused, 0, READ_WINDOW, at);
  let next = readAt(0);
  for (;;) {
    const { bytesRead, buffer } = await next;
    if (bytesRead === 0) break;
    position += bytesRead;
    if (mode.ahead) next = readAt(position);
    if (mode.crc) {
      for (let at = 0; at < bytesRead; at += big.length)
        crc32c(buffer.subarray(at, Math.min(at + big.length, bytesRead)));
    }
    if (!mode.ahead) next = readAt(position);
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
    const { data, nextOffset } = await log.read(offset, READ_BYTES);
    bytes += data.length;
    offset = nextOffset;
  }
  const ms = performance.now() - started;
  await log.close();
  return mbps(bytes, ms);
}

/** The log's replay API: the same reads into two buffers it reuses (each chunk valid until the next). */
async function logReplayReused(dir: string): Promise<number> {
  const log = await PartitionLog.open({ dir, config: { segmentBytes: 1 << 30 } });
  const started = performance.now();
  let bytes = 0;
  for await (const { data } of log.replay(0n, READ_BYTES)) bytes += data.length;
  const ms = performance.now() - started;
  await log.close();
  return mbps(bytes, ms);
}

const ratio = (a: number, b: number) => Number((a / b).toFixed(2));

async function appendSection(): Promise<void> {
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
        // Each run writes afresh: its own previous output is removed, the other's is kept.
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
      ratio: ratio(ours, raw),
      'raw per round': raws.join(', '),
      'log per round': logs.join(', '),
    });
  }
  printResult(
    writeResult({
      benchmark: 'storage-throughput',
      title: 'Storage append throughput: 100-byte records in 64 KiB batches vs raw file writes (page cache)',
      command: 'npx tsx bench/storage.ts',
      settings: {
        megabytes: totalBytes / 2 ** 20,
        batchBytes: big.length,
        recordBytes: 100,
        appendRounds: rounds,
        statistic: 'median of alternating rounds, each after sync',
      },
      rows: throughput,
      notes: ['target: ≥ 0.8 of raw for append (never, interval)'],
    }),
  );
}

async function replaySection(): Promise<void> {
  // The same bytes in both files: the log written by appends (durability never), the raw file by
  // sequential writes of the same batches. Both are synced and read once before timing, so every
  // round reads from the page cache (24 GiB of RAM here against 2 × 256 MiB).
  const rawPath = join(root, 'raw-never.bin');
  const logDir = join(root, 'log-never');
  if (!existsSync(rawPath)) await rawWrite(rawPath, 'never');
  if (!existsSync(logDir)) await logAppend(logDir, 'never');
  execSync('sync');
  const cases = {
    'raw read, one reused buffer': () => rawRead(rawPath, { fresh: false, crc: false, ahead: false }),
    'raw read, new buffer per read': () => rawRead(rawPath, { fresh: true, crc: false, ahead: false }),
    'raw read + CRC-32C per batch': () => rawRead(rawPath, { fresh: true, crc: true, ahead: false }),
    'raw read + CRC-32C, next read overlapping': () =>
      rawRead(rawPath, { fresh: true, crc: true, ahead: true }),
    'log read() loop (new buffer per read, CRC-32C per batch, read-ahead)': () => logReplay(logDir),
    'log replay() (reused buffers, CRC-32C per batch, read-ahead)': () => logReplayReused(logDir),
  } as const;
  const names = Object.keys(cases) as (keyof typeof cases)[];
  const figures = new Map<string, number[]>(names.map((name) => [name, []]));
  for (const name of names) await cases[name](); // warm-up: page cache, JIT
  for (let round = 0; round < replayRounds; round++) {
    progress(`replay, round ${round + 1}/${replayRounds}`);
    // Rotate the order each round so no case always runs first or last.
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + round) % names.length]!;
      figures.get(name)!.push(await cases[name]());
    }
  }
  const raw = figures.get(names[0]!)!;
  const rawNew = figures.get(names[1]!)!;
  const rows: Row[] = names.map((name) => {
    const values = figures.get(name)!;
    return {
      case: name,
      'MB/s': median(values),
      'ratio to raw (median of rounds)': ratio(median(values.map((v, i) => v / raw[i]!)), 1),
      'ratio to raw, new buffers': ratio(median(values.map((v, i) => v / rawNew[i]!)), 1),
      'MB/s per round': values.join(', '),
    };
  });
  printResult(
    writeResult({
      benchmark: 'storage-replay',
      title:
        'Storage replay: sequential reads of 1 MiB vs raw positioned reads of the same bytes (page cache)',
      command: 'npx tsx bench/storage.ts --only replay',
      settings: {
        megabytes: totalBytes / 2 ** 20,
        batchBytes: big.length,
        recordBytes: 100,
        readBytes: READ_WINDOW,
        rounds: replayRounds,
        statistic: 'median of rounds; every case once per round, order rotated each round',
      },
      rows,
      notes: [
        'target: log replay ≥ 0.8 of the raw read',
        'every raw case reads the log’s window (1 MiB + 4 KiB) per call; ratios are medians of per-round ratios against the raw read of the same round (one reused buffer; or a new buffer per read, as a reader that hands its bytes on must)',
      ],
    }),
  );
}

/**
 * One round of 1 writer against the raw loop, sample by sample: a raw 4 KiB write + fdatasync and a
 * log append under `always` take turns (which goes first swaps every pair), never overlapping. Both
 * see the same minute of the VM's disk, whose fdatasync latency drifts by more than 2× between
 * minutes; rounds run one after the other (sync before each) and only ever compare side by side.
 */
async function pairedRound(): Promise<{
  raw: Sample & { busyMs: number };
  ours: Sample & { busyMs: number };
}> {
  const rawPath = join(root, 'fsync.bin');
  const dir = join(root, 'always-1');
  await rm(dir, { recursive: true, force: true });
  const handle = await open(rawPath, 'w');
  const log = await PartitionLog.open({ dir, config: { durability: 'always', segmentBytes: 1 << 30 } });
  const rawBlock = Buffer.from(small);
  const logBlock = Buffer.from(small);
  const raw = { histogram: latencyHistogram(), count: 0, busyMs: 0 };
  const ours = { histogram: latencyHistogram(), count: 0, busyMs: 0 };
  let position = 0;
  const rawOnce = async () => {
    const started = performance.now();
    await handle.write(rawBlock, 0, rawBlock.length, position);
    await handle.datasync();
    const ms = performance.now() - started;
    raw.histogram.recordValue(Math.max(1, Math.round(ms * 1000)));
    raw.busyMs += ms;
    raw.count++;
    position += rawBlock.length;
  };
  const logOnce = async () => {
    const started = performance.now();
    await log.append(logBlock).done;
    const ms = performance.now() - started;
    ours.histogram.recordValue(Math.max(1, Math.round(ms * 1000)));
    ours.busyMs += ms;
    ours.count++;
  };
  const deadline = performance.now() + seconds * 1000;
  for (let i = 0; performance.now() < deadline; i++) {
    if (i % 2 === 0) {
      await rawOnce();
      await logOnce();
    } else {
      await logOnce();
      await rawOnce();
    }
  }
  await handle.close();
  await log.close();
  return { raw, ours };
}

async function alwaysSection(): Promise<void> {
  const raw = latencyHistogram();
  const ours = latencyHistogram();
  let rawCount = 0;
  let ourCount = 0;
  let rawBusy = 0;
  let ourBusy = 0;
  const rawP99: number[] = [];
  const ourP99: number[] = [];
  await pairedRound(); // warm-up (JIT, first file creation), not recorded
  for (let round = 0; round < alwaysRounds; round++) {
    progress(`always, 1 writer vs raw fdatasync, round ${round + 1}/${alwaysRounds}`);
    execSync('sync');
    const sample = await pairedRound();
    rawP99.push(sample.raw.histogram.getValueAtPercentile(99));
    ourP99.push(sample.ours.histogram.getValueAtPercentile(99));
    raw.add(sample.raw.histogram);
    ours.add(sample.ours.histogram);
    rawCount += sample.raw.count;
    ourCount += sample.ours.count;
    rawBusy += sample.raw.busyMs;
    ourBusy += sample.ours.busyMs;
  }
  const ratios = ourP99.map((p, i) => p / rawP99[i]!);
  const spread = (values: number[]) =>
    `${ratio(median(values), 1)} (${ratio(Math.min(...values), 1)}–${ratio(Math.max(...values), 1)})`;
  const rows: Row[] = [
    {
      case: 'raw write+fdatasync 4 KiB',
      writers: 1,
      'acks/s': rate(rawCount, rawBusy),
      ...percentiles(raw),
      'p99 / raw p99': 1,
      'per-round p99 ratio, median (min–max)': '–',
      'p99 per round µs': rawP99.join(', '),
    },
    {
      case: 'log append, durability always, 4 KiB',
      writers: 1,
      'acks/s': rate(ourCount, ourBusy),
      ...percentiles(ours),
      'p99 / raw p99': ratio(ours.getValueAtPercentile(99), raw.getValueAtPercentile(99)),
      'per-round p99 ratio, median (min–max)': spread(ratios),
      'p99 per round µs': ourP99.join(', '),
    },
  ];
  for (const writers of [8, 64]) {
    progress(`always with ${writers} writers`);
    execSync('sync');
    const sample = await alwaysLatency(join(root, `always-${writers}`), writers);
    rows.push({
      case: 'log append, durability always, 4 KiB',
      writers,
      'acks/s': Math.round(sample.count / seconds),
      ...percentiles(sample.histogram),
      'p99 / raw p99': ratio(sample.histogram.getValueAtPercentile(99), raw.getValueAtPercentile(99)),
      'per-round p99 ratio, median (min–max)': '–',
      'p99 per round µs': '–',
    });
  }
  printResult(
    writeResult({
      benchmark: 'storage-always',
      title:
        'Durability always (group commit): acknowledgement latency vs raw write+fdatasync, 4 KiB batches',
      command: 'npx tsx bench/storage.ts --only always',
      settings: {
        secondsPerRound: seconds,
        rounds: alwaysRounds,
        pairing:
          '1 writer: raw and log samples alternate within each round (acks/s over each one’s own busy time)',
        batchBytes: small.length,
        recordBytes: 100,
        statistic: 'pooled histograms over all rounds, and the median (min–max) of per-round P99 ratios',
      },
      rows,
      notes: [
        'target: log P99 ≤ 2× raw fdatasync P99 with 1 writer; throughput grows with writers (group commit)',
        '8 and 64 writers: one round each after the alternating rounds; their ratio is to the pooled raw P99',
      ],
    }),
  );
}

try {
  if (only.includes('append')) await appendSection();
  if (only.includes('replay')) await replaySection();
  if (only.includes('always')) await alwaysSection();
} finally {
  await rm(root, { recursive: true, force: true });
}
