// The broker's per-batch produce work on one core: validating a producer's batch and scanning its
// keys for the stream index, per codec, for 600 records of 100 bytes (~64 KiB) and for one-record
// batches (a producer sending without lingering). Two ways of calling it:
//   two passes   validateRecordBatch(batch, { maxBatchBytes }) then forEachKey(batch, limits, visit),
//                as the produce path calls them (a compressed batch is inflated by each)
//   one pass     validateRecordBatch(batch, limits, visit): records validated and keys visited in the
//                same pass, one inflation
// Each figure is the best of --rounds rounds, the variants alternating, so that a busy machine
// slows them alike. With MS_BASELINE_MODULE pointing at another tree's record-batch.ts, its two
// passes are measured in the same rounds (an A/B against that tree, on batches it encoded).
// Run: npx tsx bench/record-validate.ts [--messages N] [--rounds N] [--values random|json]
// The decode columns are a consumer's iterateRecords over the same batches.
import { randomBytes } from 'node:crypto';
import type { CompressionCodecName } from '../src/protocol/compression.js';
import type * as RecordBatchModule from '../src/protocol/record-batch.js';
import { argNumber, describeMachine, printResult, progress, type Row, rate } from './lib/report.js';

type Module = typeof RecordBatchModule;
const current = (await import('../src/protocol/record-batch.js')) as Module;
const baselinePath = process.env.MS_BASELINE_MODULE;
const baseline = baselinePath === undefined ? undefined : ((await import(baselinePath)) as Module);
const rounds = argNumber('rounds', 5);

const messages = argNumber('messages', 600_000);
const limits = { maxBatchBytes: 8 << 20, maxDecompressedBytes: 64 << 20 };
// --values random: random base64 (as bench/record-batch.ts; LZ4 stores most of it uncompressed);
// --values json: small JSON documents that every codec compresses.
const valueKind = process.argv.includes('json') ? 'json' : 'random';
const values = Array.from({ length: 1024 }, (_, i) =>
  valueKind === 'json'
    ? Buffer.from(
        JSON.stringify({ id: i, account: `acct-${i % 50}`, amount: (i * 37) % 1000, currency: 'EUR' }).padEnd(
          100,
        ),
      )
    : Buffer.from(randomBytes(75).toString('base64')),
);

function batchesOf(lib: Module, codec: CompressionCodecName, perBatch: number): Buffer[] {
  const batches: Buffer[] = [];
  const timestamp = 1_700_000_000_000;
  for (let i = 0; i < messages; i += perBatch) {
    const records = Array.from({ length: Math.min(perBatch, messages - i) }, (_, j) => ({
      key: `key-${(i + j) % 1000}`,
      value: values[(i + j) & 1023]!,
      timestamp,
    }));
    batches.push(lib.encodeRecordBatch(records, { compression: codec }));
  }
  return batches;
}

let keys = 0;
const visit = (key: Buffer | null): void => {
  if (key !== null) keys++;
};

function twoPasses(lib: Module, batches: Buffer[]): number {
  const started = performance.now();
  for (const batch of batches) {
    lib.validateRecordBatch(batch, { maxBatchBytes: limits.maxBatchBytes });
    lib.forEachKey(batch, limits, visit);
  }
  return performance.now() - started;
}

function decode(lib: Module, batches: Buffer[]): number {
  const started = performance.now();
  for (const batch of batches) for (const record of lib.iterateRecords(batch, limits)) visit(record.key);
  return performance.now() - started;
}

function onePass(batches: Buffer[]): number {
  const started = performance.now();
  for (const batch of batches) current.validateRecordBatch(batch, limits, visit);
  return performance.now() - started;
}

const rows: Row[] = [];
for (const perBatch of [600, 1]) {
  for (const codec of ['none', 'lz4', 'snappy', 'zstd', 'gzip'] as const) {
    if (perBatch === 1 && codec !== 'none' && codec !== 'lz4') continue;
    progress(`${perBatch} per batch, ${codec}`);
    const batches = batchesOf(current, codec, perBatch);
    const baselineBatches = baseline === undefined ? [] : batchesOf(baseline, codec, perBatch);
    let two = Number.POSITIVE_INFINITY;
    let one = Number.POSITIVE_INFINITY;
    let before = Number.POSITIVE_INFINITY;
    let decoded = Number.POSITIVE_INFINITY;
    let decodedBefore = Number.POSITIVE_INFINITY;
    for (let round = 0; round < rounds; round++) {
      two = Math.min(two, twoPasses(current, batches));
      one = Math.min(one, onePass(batches));
      decoded = Math.min(decoded, decode(current, batches));
      if (baseline !== undefined) {
        before = Math.min(before, twoPasses(baseline, baselineBatches));
        decodedBefore = Math.min(decodedBefore, decode(baseline, baselineBatches));
      }
    }
    rows.push({
      'records per batch': perBatch,
      codec,
      ...(baseline === undefined ? {} : { 'baseline two passes msg/s': rate(messages, before) }),
      'two passes msg/s': rate(messages, two),
      'one pass msg/s': rate(messages, one),
      ...(baseline === undefined ? {} : { 'baseline decode msg/s': rate(messages, decodedBefore) }),
      'decode msg/s': rate(messages, decoded),
    });
  }
}
if (keys === 0) throw new Error('no key visited');
printResult({
  benchmark: 'record-validate',
  title: `Produce-path batch validation and key scan, and decode; 100-byte ${valueKind} values, keyed (one core)`,
  command: 'npx tsx bench/record-validate.ts',
  date: new Date().toISOString(),
  machine: describeMachine(),
  settings: { messages, valueBytes: 100, values: valueKind, rounds, baseline: baselinePath ?? 'none' },
  rows,
});
