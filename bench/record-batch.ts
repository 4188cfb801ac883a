// Record batch encode and decode throughput for 100-byte records in ~64 KiB batches, uncompressed
// and per codec. Run: npx tsx bench/record-batch.ts [--messages N] [--json]
import type { CompressionCodecName } from '../src/protocol/compression.js';
import { iterateRecords, RecordBatchBuilder } from '../src/protocol/record-batch.js';
import { argNumber, printResult, progress, type Row, rate, writeResult } from './lib/report.js';

const messages = argNumber('messages', 2_000_000);
const perBatch = 600; // 600 × ~110 bytes ≈ 64 KiB

import { randomBytes } from 'node:crypto';

// Distinct random printable values, so compression ratios are not flattered by repetition.
const values = Array.from({ length: 1024 }, () => Buffer.from(randomBytes(75).toString('base64')));
const limits = { maxDecompressedBytes: 1 << 24 };

function encodeAll(codec: CompressionCodecName): { ms: number; batches: Buffer[] } {
  const builder = new RecordBatchBuilder(72 * 1024);
  const batches: Buffer[] = [];
  const timestamp = Date.now();
  const started = performance.now();
  for (let i = 0; i < messages; i++) {
    builder.append({ value: values[i & 1023]!, timestamp });
    if (builder.count === perBatch) batches.push(builder.finish({ compression: codec }));
  }
  if (builder.count > 0) batches.push(builder.finish({ compression: codec }));
  return { ms: performance.now() - started, batches };
}

function decodeAll(batches: Buffer[]): number {
  const started = performance.now();
  let count = 0;
  for (const batch of batches)
    for (const record of iterateRecords(batch, limits)) if (record.value !== null) count++;
  if (count !== messages) throw new Error(`decoded ${count} of ${messages}`);
  return performance.now() - started;
}

const rows: Row[] = [];
for (const codec of ['none', 'lz4', 'snappy', 'zstd', 'gzip'] as const) {
  progress(`codec ${codec}`);
  encodeAll(codec);
  const encoded = encodeAll(codec);
  const decodeMs = decodeAll(encoded.batches);
  const bytes = encoded.batches.reduce((n, b) => n + b.length, 0);
  rows.push({
    codec,
    'encode msg/s': rate(messages, encoded.ms),
    'decode msg/s': rate(messages, decodeMs),
    'encode MB/s': Math.round((messages * 100) / 1e6 / (encoded.ms / 1000)),
    'bytes per record': Number((bytes / messages).toFixed(1)),
  });
}
printResult(
  writeResult({
    benchmark: 'record-batch',
    title:
      'Record batch encode/decode, 100-byte random base64 values, 600 records (~64 KiB) per batch (one core)',
    command: 'npx tsx bench/record-batch.ts',
    settings: { messages, valueBytes: 100, recordsPerBatch: perBatch },
    rows,
    notes: ['target: ≥ 5M msg/s encode uncompressed'],
  }),
);
