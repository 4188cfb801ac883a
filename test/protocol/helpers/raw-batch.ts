// Builds record batches byte by byte, with any field forged, and seals them with a correct CRC:
// what a hostile or broken producer can send. The encoder in src/ never writes these.
import { CompressionCodec, type CompressionCodecName, compress } from '../../../src/protocol/compression.js';
import { crc32c } from '../../../src/protocol/crc32c.js';
import {
  BATCH_CRC_START,
  BATCH_HEADER_SIZE,
  BATCH_LOG_OVERHEAD,
  BATCH_OFFSETS,
} from '../../../src/protocol/record-batch-layout.js';
import { varintSize, writeVarint } from '../../../src/protocol/varint.js';

/** A zigzag varint, or raw bytes standing for one (over-long, overflowing, truncated). */
export type RawVarint = number | Buffer;

/** A length-prefixed field: a string or bytes (length prefix written to match), null, or forged. */
export type RawField = string | Buffer | null | { length: RawVarint; bytes?: Buffer };

export interface RawRecord {
  attributes?: number;
  timestampDelta?: RawVarint;
  offsetDelta: RawVarint;
  key?: RawField;
  value?: RawField;
  headerCount?: RawVarint;
  headers?: ReadonlyArray<{ key: RawField; value: RawField }>;
  /** Bytes after the headers, inside the record (counted by its length unless length is forged). */
  trailing?: Buffer;
  /** The record's length varint; by default the true length of what follows it. */
  length?: RawVarint | ((trueLength: number) => RawVarint);
}

export function varint(value: RawVarint): Buffer {
  if (Buffer.isBuffer(value)) return value;
  const buf = Buffer.alloc(varintSize(value));
  writeVarint(buf, 0, value);
  return buf;
}

function field(value: RawField | undefined): Buffer {
  if (value === undefined || value === null) return varint(-1);
  if (typeof value === 'string' || Buffer.isBuffer(value)) {
    const bytes = Buffer.from(value);
    return Buffer.concat([varint(bytes.length), bytes]);
  }
  return Buffer.concat([varint(value.length), value.bytes ?? Buffer.alloc(0)]);
}

export function rawRecord(record: RawRecord): Buffer {
  const headers = record.headers ?? [];
  const body = Buffer.concat([
    Buffer.from([record.attributes ?? 0]),
    varint(record.timestampDelta ?? 0),
    varint(record.offsetDelta),
    field(record.key),
    field(record.value),
    varint(record.headerCount ?? headers.length),
    ...headers.flatMap((h) => [field(h.key), field(h.value)]),
    record.trailing ?? Buffer.alloc(0),
  ]);
  const length =
    typeof record.length === 'function' ? record.length(body.length) : (record.length ?? body.length);
  return Buffer.concat([varint(length), body]);
}

/** `count` well-formed records with offset deltas 0…count−1, as RawRecord specs to forge from. */
export function goodRecords(count: number): RawRecord[] {
  return Array.from({ length: count }, (_, i) => ({
    offsetDelta: i,
    timestampDelta: i,
    key: i % 2 === 0 ? `key-${i}` : null,
    value: `value-${i}`,
    headers: i === 1 ? [{ key: 'h', value: null }] : [],
  }));
}

export interface RawBatchOptions {
  recordCount?: number;
  lastOffsetDelta?: number;
  codec?: CompressionCodecName;
  baseTimestamp?: bigint;
  /** By default baseTimestamp + the largest plain-number timestampDelta. */
  maxTimestamp?: bigint;
}

export const RAW_BASE_TIMESTAMP = 1_700_000_000_000n;

/** Seals `records` (specs, or a ready records section) into a batch with a correct CRC. */
export function rawBatch(records: RawRecord[] | Buffer, options: RawBatchOptions = {}): Buffer {
  const section = Buffer.isBuffer(records) ? records : Buffer.concat(records.map(rawRecord));
  const specCount = Buffer.isBuffer(records) ? 1 : records.length;
  const recordCount = options.recordCount ?? specCount;
  const codec = options.codec ?? 'none';
  const payload = compress(codec, section);
  const batch = Buffer.alloc(BATCH_HEADER_SIZE + payload.length);
  payload.copy(batch, BATCH_HEADER_SIZE);
  const base = options.baseTimestamp ?? RAW_BASE_TIMESTAMP;
  let maxDelta = 0;
  if (!Buffer.isBuffer(records)) {
    for (const r of records)
      if (typeof r.timestampDelta === 'number') maxDelta = Math.max(maxDelta, r.timestampDelta);
  }
  batch.writeBigInt64BE(0n, BATCH_OFFSETS.baseOffset);
  batch.writeInt32BE(batch.length - BATCH_LOG_OVERHEAD, BATCH_OFFSETS.batchLength);
  batch.writeInt32BE(-1, BATCH_OFFSETS.partitionLeaderEpoch);
  batch.writeInt8(2, BATCH_OFFSETS.magic);
  batch.writeInt16BE(CompressionCodec[codec], BATCH_OFFSETS.attributes);
  batch.writeInt32BE(options.lastOffsetDelta ?? recordCount - 1, BATCH_OFFSETS.lastOffsetDelta);
  batch.writeBigInt64BE(base, BATCH_OFFSETS.baseTimestamp);
  batch.writeBigInt64BE(options.maxTimestamp ?? base + BigInt(maxDelta), BATCH_OFFSETS.maxTimestamp);
  batch.writeBigInt64BE(-1n, BATCH_OFFSETS.producerId);
  batch.writeInt16BE(-1, BATCH_OFFSETS.producerEpoch);
  batch.writeInt32BE(-1, BATCH_OFFSETS.baseSequence);
  batch.writeInt32BE(recordCount, BATCH_OFFSETS.recordCount);
  resealBatch(batch);
  return batch;
}

/** Recomputes the CRC after the batch was changed in place. */
export function resealBatch(batch: Buffer): Buffer {
  batch.writeUInt32BE(crc32c(batch.subarray(BATCH_CRC_START)), BATCH_OFFSETS.crc);
  return batch;
}
