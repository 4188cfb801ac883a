// Record batches whose batch CRC is right but whose records are wrong: each case writes a records
// section byte by byte (record layout in src/protocol/record-batch.ts), compresses it with the
// project's codecs when asked, and seals the batch header and CRC-32C exactly as a producer would.
// A broker that checks only the batch CRC accepts every one of them.

import { CompressionCodec, type CompressionCodecName, compress } from '../../src/protocol/compression.js';
import { crc32c } from '../../src/protocol/crc32c.js';
import { iterateRecords } from '../../src/protocol/record-batch.js';
import {
  BATCH_CRC_START,
  BATCH_HEADER_SIZE,
  BATCH_LOG_OVERHEAD,
  BATCH_MAGIC,
  BATCH_OFFSETS,
} from '../../src/protocol/record-batch-layout.js';
import { writeVarint } from '../../src/protocol/varint.js';
import type { SeededRandom } from './random.js';

export const CODECS: readonly CompressionCodecName[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

/** One record, field by field; `null` is the -1 length; `rawLength` forges a length field. */
interface RecordSpec {
  timestampDelta?: number;
  offsetDelta: number;
  key?: Buffer | null | { rawLength: number };
  value?: Buffer | null;
  headers?: Array<{ key: Buffer | null; value: Buffer | null | { rawLength: number } }>;
  /** Written as the header count instead of headers.length. */
  headerCount?: number;
  /** Added to the record's true length field. */
  lengthError?: number;
  /** Replaces the timestampDelta varint with these bytes (overlong varints). */
  rawTimestampDelta?: Buffer;
}

function varint(value: number): Buffer {
  const out = Buffer.allocUnsafe(10);
  return out.subarray(0, writeVarint(out, 0, value));
}

function field(value: Buffer | null | { rawLength: number } | undefined): Buffer {
  if (value === undefined || value === null) return varint(-1);
  if (!Buffer.isBuffer(value)) return varint(value.rawLength);
  return Buffer.concat([varint(value.length), value]);
}

function recordBytes(spec: RecordSpec): Buffer {
  const headers = spec.headers ?? [];
  const body = Buffer.concat([
    Buffer.from([0]),
    spec.rawTimestampDelta ?? varint(spec.timestampDelta ?? 0),
    varint(spec.offsetDelta),
    field(spec.key),
    field(spec.value === undefined ? Buffer.from('value') : spec.value),
    varint(spec.headerCount ?? headers.length),
    ...headers.flatMap((h) => [field(h.key), field(h.value)]),
  ]);
  return Buffer.concat([varint(body.length + (spec.lengthError ?? 0)), body]);
}

export interface BatchFields {
  recordCount: number;
  lastOffsetDelta?: number;
  baseTimestamp?: number;
  maxTimestamp?: number;
}

/** Header + (compressed) records section, with batchLength, attributes and the CRC set. */
export function sealRecords(section: Buffer, codec: CompressionCodecName, fields: BatchFields): Buffer {
  const body = codec === 'none' ? section : compress(codec, section);
  const batch = Buffer.alloc(BATCH_HEADER_SIZE + body.length);
  body.copy(batch, BATCH_HEADER_SIZE);
  const now = fields.baseTimestamp ?? Date.now();
  batch.writeBigInt64BE(0n, BATCH_OFFSETS.baseOffset);
  batch.writeInt32BE(batch.length - BATCH_LOG_OVERHEAD, BATCH_OFFSETS.batchLength);
  batch.writeInt32BE(-1, BATCH_OFFSETS.partitionLeaderEpoch);
  batch.writeInt8(BATCH_MAGIC, BATCH_OFFSETS.magic);
  batch.writeInt16BE(CompressionCodec[codec], BATCH_OFFSETS.attributes);
  batch.writeInt32BE(fields.lastOffsetDelta ?? fields.recordCount - 1, BATCH_OFFSETS.lastOffsetDelta);
  batch.writeBigInt64BE(BigInt(now), BATCH_OFFSETS.baseTimestamp);
  batch.writeBigInt64BE(BigInt(fields.maxTimestamp ?? now), BATCH_OFFSETS.maxTimestamp);
  batch.writeBigInt64BE(-1n, BATCH_OFFSETS.producerId);
  batch.writeInt16BE(-1, BATCH_OFFSETS.producerEpoch);
  batch.writeInt32BE(-1, BATCH_OFFSETS.baseSequence);
  batch.writeInt32BE(fields.recordCount, BATCH_OFFSETS.recordCount);
  batch.writeUInt32BE(crc32c(batch.subarray(BATCH_CRC_START)), BATCH_OFFSETS.crc);
  return batch;
}

export interface BatchCase {
  name: string;
  codec: CompressionCodecName;
  /** True for the control cases: well-formed batches the broker must accept. */
  valid: boolean;
  batch: Buffer;
}

const k = (text: string) => Buffer.from(text);

/** The hand-written malformations (each a records section and the header fields that go with it). */
function handWritten(): Array<{ name: string; valid: boolean; section: Buffer; fields: BatchFields }> {
  const two = (a: RecordSpec, b: RecordSpec) => Buffer.concat([recordBytes(a), recordBytes(b)]);
  const ok = (offsetDelta: number): RecordSpec => ({ offsetDelta, key: k(`key-${offsetDelta}`) });
  return [
    { name: 'valid', valid: true, section: two(ok(0), ok(1)), fields: { recordCount: 2 } },
    {
      name: 'valid-with-headers',
      valid: true,
      section: two({ ...ok(0), headers: [{ key: k('h'), value: null }] }, ok(1)),
      fields: { recordCount: 2 },
    },
    {
      name: 'offset-deltas-repeat (0,0)',
      valid: false,
      section: two(ok(0), ok(0)),
      fields: { recordCount: 2 },
    },
    { name: 'offset-deltas-gap (0,5)', valid: false, section: two(ok(0), ok(5)), fields: { recordCount: 2 } },
    {
      name: 'offset-delta-negative (0,-1)',
      valid: false,
      section: two(ok(0), ok(-1)),
      fields: { recordCount: 2 },
    },
    {
      name: 'header-with-null-key',
      valid: false,
      section: two({ ...ok(0), headers: [{ key: null, value: k('v') }] }, ok(1)),
      fields: { recordCount: 2 },
    },
    {
      name: 'key-length-negative (-5)',
      valid: false,
      section: two({ offsetDelta: 0, key: { rawLength: -5 } }, ok(1)),
      fields: { recordCount: 2 },
    },
    {
      name: 'key-length-past-record (1000)',
      valid: false,
      section: two({ offsetDelta: 0, key: { rawLength: 1000 } }, ok(1)),
      fields: { recordCount: 2 },
    },
    {
      name: 'record-length-overruns-batch',
      valid: false,
      section: two(ok(0), { ...ok(1), lengthError: 500 }),
      fields: { recordCount: 2 },
    },
    {
      name: 'record-length-short-by-one',
      valid: false,
      section: two({ ...ok(0), lengthError: -1 }, ok(1)),
      fields: { recordCount: 2 },
    },
    {
      name: 'trailing-bytes-after-records',
      valid: false,
      section: Buffer.concat([two(ok(0), ok(1)), Buffer.from([0, 0, 0])]),
      fields: { recordCount: 2 },
    },
    {
      name: 'record-count-too-high (3 for 2)',
      valid: false,
      section: two(ok(0), ok(1)),
      fields: { recordCount: 3 },
    },
    {
      name: 'record-count-too-low (1 for 2)',
      valid: false,
      section: two(ok(0), ok(1)),
      fields: { recordCount: 1 },
    },
    {
      name: 'header-count-negative',
      valid: false,
      section: two({ ...ok(0), headerCount: -2 }, ok(1)),
      fields: { recordCount: 2 },
    },
    {
      name: 'header-count-huge',
      valid: false,
      section: two({ ...ok(0), headerCount: 1_000_000 }, ok(1)),
      fields: { recordCount: 2 },
    },
    {
      name: 'header-value-length-past-record',
      valid: false,
      section: two({ ...ok(0), headers: [{ key: k('h'), value: { rawLength: 1000 } }] }, ok(1)),
      fields: { recordCount: 2 },
    },
    {
      name: 'varint-overlong (11 bytes)',
      valid: false,
      section: two({ ...ok(0), rawTimestampDelta: Buffer.from([...new Array(10).fill(0x80), 0x01]) }, ok(1)),
      fields: { recordCount: 2 },
    },
    {
      name: 'record-timestamp-above-batch-max',
      valid: false,
      section: two({ ...ok(0), timestampDelta: 3_600_000 }, ok(1)),
      fields: { recordCount: 2 },
    },
  ];
}

/** True when the project's own decoder reads `batch` as well-formed (dense deltas 0..n-1). */
function decodesCleanly(batch: Buffer): boolean {
  try {
    let expected = 0;
    for (const record of iterateRecords(batch, { maxDecompressedBytes: 64 * 1024 * 1024 })) {
      if (record.offsetDelta !== expected++) return false;
    }
    return expected === batch.readInt32BE(BATCH_OFFSETS.recordCount);
  } catch {
    return false;
  }
}

/**
 * Every case in every codec, then `randomPerCodec` batches of random record bytes under a valid
 * CRC per codec (a sample the project's decoder would accept is drawn again: it is not malformed).
 */
export function batchCases(random: SeededRandom, randomPerCodec: number): BatchCase[] {
  const cases: BatchCase[] = [];
  for (const codec of CODECS) {
    for (const c of handWritten()) {
      cases.push({ name: c.name, codec, valid: c.valid, batch: sealRecords(c.section, codec, c.fields) });
    }
    for (let i = 0; i < randomPerCodec; i++) {
      for (;;) {
        const count = 1 + random.below(5);
        const batch = sealRecords(random.bytes(8 + random.below(200)), codec, { recordCount: count });
        if (decodesCleanly(batch)) continue;
        cases.push({ name: `random-record-bytes #${i}`, codec, valid: false, batch });
        break;
      }
    }
  }
  return cases;
}
