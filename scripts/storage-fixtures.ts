// Generates the on-disk format fixtures under test/fixtures/storage/<version>/: a partition
// directory of three segments (`.log`, and `.index` + `.timeindex` for the two sealed ones; from v2
// also their `.streams` stream index files) written by the real PartitionLog, and `expected.json`,
// what every later version must read from those bytes (records, batch headers, index entries,
// offset → position and timestamp → offset answers; from v2 every stream's (offset, sequence) list).
// v1 is the log without a stream index; v2 the same batches with one; v3 the same as v2, with its
// LZ4 batches written as LZ4 frames (v1 and v2 hold the older length-prefixed LZ4 block).
//
// Run ONCE per format version: npx tsx scripts/storage-fixtures.ts [--out <dir>] [--force]
// It refuses to overwrite a committed fixture without --force: those bytes are the compatibility
// promise. test/storage/format-fixtures.test.ts also calls generateFixture() into a temporary
// directory and requires byte-identical output, so a change of the format is noticed and deliberate.
//
// Everything is fixed: timestamps, producer ids, epochs, sequences, the clock given to the log.
// The expected answers are computed from the inputs and from a minimal parser of the documented
// file layout (docs/storage.md), not by reading back through PartitionLog.

import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CompressionCodecName } from '../src/protocol/compression.js';
import { encodeRecordBatch, type RecordInput } from '../src/protocol/record-batch.js';
import { PartitionLog, type PartitionLogConfig } from '../src/storage/partition-log.js';

export const FIXTURE_VERSION = 'v3';
export type FixtureVersion = 'v1' | 'v2' | 'v3';
/** The log settings the fixture was written with (and is read back with). */
export const FIXTURE_CONFIG: Partial<PartitionLogConfig> = {
  segmentBytes: 1536,
  indexIntervalBytes: 256,
  segmentMs: 365 * 24 * 3600 * 1000,
  durability: 'always',
};
const T0 = 1_700_000_000_000;
const CLOCK = { now: () => T0 };

/** Bytes in expected.json: UTF-8 text when it round-trips, base64 otherwise. */
export type ExpectedBytes = { utf8: string } | { base64: string } | null;

export interface ExpectedRecord {
  offset: string;
  timestamp: number;
  key: ExpectedBytes;
  value: ExpectedBytes;
  headers: { key: string; value: ExpectedBytes }[];
}

export interface ExpectedBatch {
  segment: string;
  position: number;
  bytes: number;
  baseOffset: string;
  lastOffset: string;
  compression: CompressionCodecName;
  producerId: string;
  producerEpoch: number;
  baseSequence: number;
  baseTimestamp: number;
  maxTimestamp: number;
  records: ExpectedRecord[];
}

export interface ExpectedSegment {
  file: string;
  logBytes: number;
  /** [relativeOffset, position] entries of `.index`; null for the active segment (no file). */
  index: [number, number][] | null;
  /** [maxTimestamp, relativeOffset] entries of `.timeindex`; null for the active segment. */
  timeIndex: [number, number][] | null;
}

export interface ExpectedFixture {
  version: string;
  config: Partial<PartitionLogConfig>;
  logStartOffset: string;
  logEndOffset: string;
  segments: ExpectedSegment[];
  batches: ExpectedBatch[];
  /** For every offset: its segment, the floor entry of the offset index, and its batch's start. */
  offsetLookups: { offset: string; segment: string; indexPosition: number; batchPosition: number }[];
  /** offsetForTimestamp answers: the first batch (in log order) whose max timestamp is ≥ timestamp. */
  timestampLookups: { timestamp: number; offset: string }[];
  /** v2: every stream (records of one key), its messages in order with their sequences. */
  streams?: { key: ExpectedBytes; entries: { offset: string; sequence: number }[] }[];
}

interface BatchSpec {
  compression: CompressionCodecName;
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  records: RecordInput[];
}

const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

/** The batches of the fixture, in append order. */
function batchSpecs(): BatchSpec[] {
  const specs: BatchSpec[] = [];
  const producer = (id: bigint, epoch: number) => {
    let sequence = 0;
    return (compression: CompressionCodecName, records: RecordInput[]): BatchSpec => {
      const spec = { compression, producerId: id, producerEpoch: epoch, baseSequence: sequence, records };
      sequence += records.length;
      return spec;
    };
  };
  const p1 = producer(1000n, 0);
  const p2 = producer(2000n, 3);
  specs.push(
    p1('none', [
      { key: 'order-1', value: '{"total":3}', headers: [{ key: 'trace', value: 'abc' }], timestamp: T0 },
      { key: 'order-2', value: '{"total":4}', timestamp: T0 + 1 },
      { key: 'order-1', value: '{"total":5}', timestamp: T0 + 2 },
    ]),
  );
  specs.push(
    p1(
      'gzip',
      Array.from({ length: 5 }, (_, i) => ({
        key: `user-${i}`,
        value: `{"name":"user ${i}","visits":${i * 7}}`,
        headers: [
          { key: 'content-type', value: 'application/json' },
          { key: 'empty', value: null },
        ],
        timestamp: T0 + 10 + i,
      })),
    ),
  );
  specs.push(
    p2('snappy', [
      { key: null, value: 'no key', timestamp: T0 + 20 },
      { key: 'deleted', value: null, timestamp: T0 + 21 },
      { key: 'order-2', value: 'snappy '.repeat(20), timestamp: T0 + 22 },
    ]),
  );
  specs.push(
    p2('lz4', [
      { key: binary.subarray(0, 16), value: binary, timestamp: T0 + 30 },
      {
        key: 'lz4',
        value: 'lz4 '.repeat(40),
        headers: [{ key: 'bin', value: binary.subarray(250) }],
        timestamp: T0 + 31,
      },
    ]),
  );
  specs.push(
    p1('zstd', [{ key: 'big', value: 'zstd compresses this well. '.repeat(80), timestamp: T0 + 40 }]),
  );
  // Out of order in time: an older max timestamp than the batch before (the time index keeps maxima).
  specs.push(p1('none', [{ key: 'late', value: 'arrived late', timestamp: T0 + 5 }]));
  specs.push(
    p2('none', [
      { key: 'ключ', value: 'значение ✓ 🚀', headers: [{ key: 'ünïcode', value: 'ja' }], timestamp: T0 + 50 },
      { key: 'order-1', value: '{"total":6}', timestamp: T0 + 48 },
    ]),
  );
  // No producer id (not idempotent): id -1, epoch -1, sequence -1.
  specs.push({
    compression: 'none',
    producerId: -1n,
    producerEpoch: -1,
    baseSequence: -1,
    records: Array.from({ length: 20 }, (_, i) => ({
      key: `k${i % 3}`,
      value: `small-${i}`,
      timestamp: T0 + 60,
    })),
  });
  specs.push(p1('gzip', [{ key: 'order-3', value: '{"total":7}', timestamp: T0 + 70 }]));
  specs.push(
    p2(
      'none',
      Array.from({ length: 6 }, (_, i) => ({
        key: `order-${i}`,
        value: 'x'.repeat(40 + i * 30),
        headers: [
          { key: 'i', value: String(i) },
          { key: 'i2', value: String(i * i) },
        ],
        timestamp: T0 + 80 + i * 2,
      })),
    ),
  );
  specs.push(
    p1('snappy', [{ key: 'tail', value: 'the last uncompressible-ish batch', timestamp: T0 + 100 }]),
  );
  specs.push(p2('zstd', [{ key: 'end', value: 'end', timestamp: T0 + 90 }]));
  return specs;
}

function bytesOf(value: RecordInput['value'] | undefined): ExpectedBytes {
  if (value === null || value === undefined) return null;
  const buffer = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
  const text = buffer.toString('utf8');
  return Buffer.from(text, 'utf8').equals(buffer) && ![...text].some((c) => c.charCodeAt(0) < 0x20)
    ? { utf8: text }
    : { base64: buffer.toString('base64') };
}

function readIndexEntries(buf: Buffer, entryBytes: number, ts: boolean): [number, number][] {
  const count = (buf.length - 16) / entryBytes;
  return Array.from({ length: count }, (_, i): [number, number] =>
    ts
      ? [Number(buf.readBigInt64LE(i * entryBytes)), buf.readUInt32LE(i * entryBytes + 8)]
      : [buf.readUInt32LE(i * entryBytes), buf.readUInt32LE(i * entryBytes + 4)],
  );
}

/** Writes the partition directory into `<out>/partition` and returns what must be read from it. */
export async function generateFixture(
  out: string,
  version: FixtureVersion = FIXTURE_VERSION,
): Promise<ExpectedFixture> {
  const dir = join(out, 'partition');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const withStreams = version !== 'v1';
  const log = await PartitionLog.open({
    dir,
    config: FIXTURE_CONFIG,
    clock: CLOCK,
    ...(withStreams ? { streams: { maxDecompressedBytes: 1 << 20 } } : {}),
  });
  const streams = new Map<string, { key: ExpectedBytes; entries: { offset: string; sequence: number }[] }>();
  const written: { spec: BatchSpec; baseOffset: bigint; lastOffset: bigint; maxTimestamp: number }[] = [];
  for (const spec of batchSpecs()) {
    const timestamps = spec.records.map((r) => r.timestamp!);
    const batch = encodeRecordBatch(spec.records, {
      compression: spec.compression,
      producerId: spec.producerId,
      producerEpoch: spec.producerEpoch,
      baseSequence: spec.baseSequence,
      baseTimestamp: Math.min(...timestamps),
    });
    const ticket = log.append(batch);
    if (withStreams) {
      // What the broker's produce does: count each keyed record in its stream.
      spec.records.forEach((record, i) => {
        if (record.key === null || record.key === undefined) return;
        const bytes =
          typeof record.key === 'string' ? Buffer.from(record.key, 'utf8') : Buffer.from(record.key);
        const offset = ticket.baseOffset + BigInt(i);
        const sequence = log.streams!.add(bytes.toString('latin1'), Number(offset));
        const stream = streams.get(bytes.toString('latin1')) ?? { key: bytesOf(record.key), entries: [] };
        stream.entries.push({ offset: offset.toString(), sequence });
        streams.set(bytes.toString('latin1'), stream);
      });
    }
    await ticket.done;
    written.push({
      spec,
      baseOffset: ticket.baseOffset,
      lastOffset: ticket.lastOffset,
      maxTimestamp: Math.max(...timestamps),
    });
  }
  const logEndOffset = log.logEndOffset;
  await log.close();

  // Where each batch landed, from the files: walk each .log by the batches' own length fields.
  const logFiles = (await readdir(dir)).filter((f) => f.endsWith('.log')).sort();
  const segments: ExpectedSegment[] = [];
  const located: { segment: string; position: number; bytes: number }[] = [];
  for (const file of logFiles) {
    const data = await readFile(join(dir, file));
    for (let at = 0; at < data.length; ) {
      const bytes = data.readInt32BE(at + 8) + 12;
      located.push({ segment: file, position: at, bytes });
      at += bytes;
    }
    const base = file.slice(0, -'.log'.length);
    const index = existsSync(join(dir, `${base}.index`))
      ? readIndexEntries(await readFile(join(dir, `${base}.index`)), 8, false)
      : null;
    const timeIndex = existsSync(join(dir, `${base}.timeindex`))
      ? readIndexEntries(await readFile(join(dir, `${base}.timeindex`)), 12, true)
      : null;
    segments.push({ file, logBytes: data.length, index, timeIndex });
  }
  if (located.length !== written.length) throw new Error('batches on disk differ from batches appended');

  const batches: ExpectedBatch[] = written.map((w, i) => {
    const where = located[i]!;
    const baseTimestamp = Math.min(...w.spec.records.map((r) => r.timestamp!));
    return {
      ...where,
      baseOffset: w.baseOffset.toString(),
      lastOffset: w.lastOffset.toString(),
      compression: w.spec.compression,
      producerId: w.spec.producerId.toString(),
      producerEpoch: w.spec.producerEpoch,
      baseSequence: w.spec.baseSequence,
      baseTimestamp,
      maxTimestamp: w.maxTimestamp,
      records: w.spec.records.map((r, j) => ({
        offset: (w.baseOffset + BigInt(j)).toString(),
        timestamp: r.timestamp!,
        key: bytesOf(r.key),
        value: bytesOf(r.value),
        headers: (r.headers ?? []).map((h) => ({ key: h.key, value: bytesOf(h.value) })),
      })),
    };
  });

  const offsetLookups: ExpectedFixture['offsetLookups'] = [];
  for (const batch of batches) {
    const segment = segments.find((s) => s.file === batch.segment)!;
    const base = BigInt(segment.file.slice(0, 20));
    for (let offset = BigInt(batch.baseOffset); offset <= BigInt(batch.lastOffset); offset++) {
      // The sparse index answers with its last entry at or below the offset (0 when none).
      let indexPosition = 0;
      for (const [relative, position] of segment.index ?? []) {
        if (BigInt(relative) <= offset - base) indexPosition = position;
      }
      offsetLookups.push({
        offset: offset.toString(),
        segment: segment.file,
        indexPosition,
        batchPosition: batch.position,
      });
    }
  }

  const probes = [T0 - 1, T0, T0 + 3, T0 + 5, T0 + 14, T0 + 15, T0 + 41, T0 + 49, T0 + 60, T0 + 95, T0 + 100];
  const timestampLookups = probes.map((timestamp) => ({
    timestamp,
    offset: batches.find((b) => b.maxTimestamp >= timestamp)?.baseOffset ?? logEndOffset.toString(),
  }));
  timestampLookups.push({ timestamp: T0 + 101, offset: logEndOffset.toString() });

  return {
    version,
    config: FIXTURE_CONFIG,
    logStartOffset: '0',
    logEndOffset: logEndOffset.toString(),
    segments,
    batches,
    offsetLookups,
    timestampLookups,
    ...(withStreams ? { streams: [...streams.values()] } : {}),
  };
}

export function expectedJson(expected: ExpectedFixture): string {
  return `${JSON.stringify(expected, null, 2)}\n`;
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const outIndex = process.argv.indexOf('--out');
  const out =
    outIndex >= 0
      ? resolve(process.argv[outIndex + 1]!)
      : join(root, 'test', 'fixtures', 'storage', FIXTURE_VERSION);
  if (existsSync(join(out, 'expected.json')) && !process.argv.includes('--force')) {
    console.error(`${out} exists: committed fixtures are not regenerated (pass --force to replace them)`);
    process.exit(1);
  }
  const expected = await generateFixture(out);
  await writeFile(join(out, 'expected.json'), expectedJson(expected));
  console.log(
    `${out}: ${expected.segments.length} segments, ${expected.batches.length} batches, offsets 0..${expected.logEndOffset}`,
  );
}
