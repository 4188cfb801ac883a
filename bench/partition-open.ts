// Partition open time with and without producer-state snapshots (docs/producer-snapshots.md):
//  - builds a broker partition through Partition.produce: four idempotent producers sending
//    ≈ 64 KiB batches of 100-byte records (no keys), durability never, segments of --segment-mb
//    (by default 3/8 of the size, so the active segment holds a quarter of the log); closes it
//    cleanly, so the directory holds the snapshots written at rolls and the one written at close;
//  - times Partition.open in three cases, in alternating rounds within one run: no snapshot (the
//    producer table is rebuilt by replaying every batch header: the old behaviour), the newest
//    snapshot written at a roll (a crash restart: the active segment is replayed), and the snapshot
//    at the log end (a clean restart: nothing is replayed). Each case gets exactly its snapshot
//    files; the open's log is closed without the partition writing a new one.
// Files are in the page cache (the log was just written): from a cold disk the full replay reads
// every byte from the device, so the gap grows. Reports the median of --rounds per case.
// Run: npx tsx bench/partition-open.ts [--mb 1024] [--segment-mb 384] [--rounds 5] [--json]
//      (data in $BENCH_DIR or $TMPDIR, removed after; --mb 16 for a quick check)
import { mkdtemp, readdir, readFile, rm, statfs, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Partition } from '../src/broker/partitions/partition.js';
import { parseSnapshotFileName } from '../src/broker/producers/producer-snapshot.js';
import { crc32c } from '../src/protocol/crc32c.js';
import { BATCH_OFFSETS } from '../src/protocol/record-batch-layout.js';
import { makeBatch } from './lib/batches.js';
import { argNumber, printResult, progress, type Row, writeResult } from './lib/report.js';

const megabytes = argNumber('mb', 1024);
const totalBytes = megabytes * 1024 * 1024;
const segmentBytes = argNumber('segment-mb', Math.max(1, Math.round((megabytes * 3) / 8))) * 1024 * 1024;
const rounds = argNumber('rounds', 5);
const PRODUCERS = 4;
const root = await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), 'ms-bench-partition-open-'));
const dir = join(root, 'partition');
const config = { durability: 'never' as const, segmentBytes };
const limits = { maxBatchBytes: 1 << 20, maxDecompressedBytes: 1 << 24 };
const template = makeBatch(590, 100); // ≈ 64 KiB
const recordsPerBatch = template.readInt32BE(BATCH_OFFSETS.recordCount);
const MB = 1e6;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** The template batch as producer `id`'s batch at `sequence` (header fields set, CRC recomputed). */
function producerBatch(id: number, sequence: number): Buffer {
  const batch = Buffer.from(template);
  batch.writeBigInt64BE(BigInt(id), BATCH_OFFSETS.producerId);
  batch.writeInt16BE(0, BATCH_OFFSETS.producerEpoch);
  batch.writeInt32BE(sequence, BATCH_OFFSETS.baseSequence);
  batch.writeUInt32BE(crc32c(batch.subarray(BATCH_OFFSETS.attributes)), BATCH_OFFSETS.crc);
  return batch;
}

async function build(): Promise<void> {
  const partition = await Partition.open({ topic: 'bench', index: 0, dir, config, limits });
  const sequences = new Array<number>(PRODUCERS).fill(0);
  let written = 0;
  let reported = 0;
  let pending: Promise<unknown>[] = [];
  for (let i = 0; written < totalBytes; i++) {
    const id = i % PRODUCERS;
    pending.push(partition.produce({ batch: producerBatch(id, sequences[id]!), acks: 1 }));
    sequences[id]! += recordsPerBatch;
    written += template.length;
    if (pending.length >= 64) {
      await Promise.all(pending);
      pending = [];
    }
    if (written - reported >= 64 * 1024 * 1024) {
      reported = written;
      progress(`building the partition: ${Math.round(written / 2 ** 20)} / ${megabytes} MiB`);
    }
  }
  await Promise.all(pending);
  await partition.close();
}

async function snapshotFiles(): Promise<Map<bigint, Buffer>> {
  const files = new Map<bigint, Buffer>();
  for (const name of await readdir(dir)) {
    const offset = parseSnapshotFileName(name);
    if (offset !== null) files.set(offset, await readFile(join(dir, name)));
  }
  return files;
}

/** Leaves exactly `keep` as the directory's snapshot files. */
async function useSnapshots(all: Map<bigint, Buffer>, keep: bigint[]): Promise<void> {
  for (const name of await readdir(dir)) {
    if (parseSnapshotFileName(name) !== null) await unlink(join(dir, name));
  }
  for (const offset of keep) {
    await writeFile(join(dir, `${offset.toString().padStart(20, '0')}.producers`), all.get(offset)!);
  }
}

interface Sample {
  seconds: number;
  producerSeconds: number;
  replayedBytes: number;
  snapshotOffset: bigint | null;
  producers: number;
}

async function timedOpen(): Promise<Sample> {
  const started = performance.now();
  const partition = await Partition.open({ topic: 'bench', index: 0, dir, config, limits });
  const seconds = (performance.now() - started) / 1000;
  const sample = {
    seconds,
    producerSeconds: partition.producerRecovery.seconds,
    replayedBytes: partition.producerRecovery.replayedBytes,
    snapshotOffset: partition.producerRecovery.snapshotOffset,
    producers: partition.producers.size,
  };
  // The log only: a partition close would write a snapshot at the log end for the next case.
  await partition.log.close();
  return sample;
}

try {
  const { bavail, bsize } = await statfs(root);
  if (bavail * bsize < totalBytes * 1.2) {
    throw new Error(
      `${root} has ${Math.round((bavail * bsize) / 2 ** 20)} MiB free; ${megabytes} MiB needed`,
    );
  }
  await build();
  const all = await snapshotFiles();
  const offsets = [...all.keys()].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
  if (offsets.length < 2)
    throw new Error(`expected a roll snapshot and a close snapshot, found ${offsets.length}`);
  const cases: { name: string; keep: bigint[] }[] = [
    { name: 'no snapshot: full replay', keep: [] },
    { name: 'snapshot at the last roll (crash restart)', keep: [offsets[1]!] },
    { name: 'snapshot at the log end (clean restart)', keep: [offsets[0]!] },
  ];
  const samples = cases.map(() => [] as Sample[]);
  for (let round = 0; round < rounds; round++) {
    for (let c = 0; c < cases.length; c++) {
      progress(`round ${round + 1} of ${rounds}: ${cases[c]!.name}`);
      await useSnapshots(all, cases[c]!.keep);
      const sample = await timedOpen();
      if (sample.producers !== PRODUCERS) throw new Error(`${cases[c]!.name}: ${sample.producers} producers`);
      if ((sample.snapshotOffset ?? -1n) !== (cases[c]!.keep[0] ?? -1n))
        throw new Error(`${cases[c]!.name}: opened from snapshot ${sample.snapshotOffset}`);
      samples[c]!.push(sample);
    }
  }
  const baseline = median(samples[0]!.map((s) => s.seconds));
  const producerBaseline = median(samples[0]!.map((s) => s.producerSeconds));
  const rows: Row[] = cases.map((c, i) => {
    const seconds = median(samples[i]!.map((s) => s.seconds));
    const producerSeconds = median(samples[i]!.map((s) => s.producerSeconds));
    return {
      case: c.name,
      'replayed MB': Number((samples[i]![0]!.replayedBytes / MB).toFixed(1)),
      'open s': Number(seconds.toFixed(3)),
      'vs full replay': Number((seconds / baseline).toFixed(3)),
      'producer table s': Number(producerSeconds.toFixed(4)),
      'table vs full replay': Number((producerSeconds / producerBaseline).toFixed(4)),
    };
  });
  printResult(
    writeResult({
      benchmark: 'partition-open',
      title: 'Partition open with and without producer-state snapshots (page cache)',
      command: `npx tsx bench/partition-open.ts --mb ${megabytes}`,
      settings: {
        megabytes,
        segmentMegabytes: segmentBytes / 2 ** 20,
        batchBytes: template.length,
        recordBytes: 100,
        producers: PRODUCERS,
        rounds,
      },
      rows,
      notes: [
        'open s: the whole Partition.open (log recovery, stream index, producer table), median of the rounds; the three cases alternate within each round',
        'replayed MB: batch bytes read to rebuild the producer table; the log end snapshot leaves none',
        'producer table s: the part of the open that builds the producer table (snapshot load + replay); the rest is log recovery (the last segment is scanned) and the stream index',
      ],
    }),
  );
} finally {
  await rm(root, { recursive: true, force: true });
}
