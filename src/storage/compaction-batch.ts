// Per-batch work of log compaction: walk a stored batch's records (key, value null-ness, offset,
// timestamp, raw bytes) and rebuild the batch with only the records a cleaner keeps. Pure functions
// on buffers; which records to keep is the cleaner's decision (log-cleaner.ts), not this file's.
//
// A rebuilt batch keeps every header field of the original except batchLength, crc, recordCount
// and (for an empty batch) the compression bits:
//
//  field            rebuilt batch
//  baseOffset       unchanged: records keep their offsets (offsetDelta is not rewritten)
//  lastOffsetDelta  unchanged: the batch still ends at the same offset even when its last record
//                   went, so segment and log end offsets never move and the producer state rebuilt
//                   from headers still finds lastSequence = baseSequence + lastOffsetDelta
//  baseTimestamp    unchanged: record timestampDeltas are relative to it
//  maxTimestamp     unchanged: the time index stays as it was
//  producer fields  unchanged (idempotence state is rebuilt from them at open)
//  recordCount      the records kept (0 for an empty batch kept only for its producer state)
//  records          the kept records' bytes, copied unchanged, recompressed with the batch's codec
//
// So in a cleaned batch recordCount ≤ lastOffsetDelta + 1 and record offsets may have gaps; readers
// take record offsets from baseOffset + offsetDelta, never from a record's position in the batch.

import { createHash } from 'node:crypto';
import { codecName, compress, decompress } from '../protocol/compression.js';
import { crc32c } from '../protocol/crc32c.js';
import { errorOf } from '../protocol/error-codes.js';
import {
  BATCH_CRC_START,
  BATCH_HEADER_SIZE,
  BATCH_LOG_OVERHEAD,
  BATCH_OFFSETS,
  COMPRESSION_CODEC_MASK,
  CONTROL_MASK,
  TIMESTAMP_TYPE_MASK,
} from '../protocol/record-batch-layout.js';
import { VarintCursor } from '../protocol/varint.js';

export interface StoredRecord {
  offset: bigint;
  /** Record timestamp; the batch's maxTimestamp for log-append-time batches. */
  timestamp: number;
  key: Buffer | null;
  /** A null value is a tombstone. */
  tombstone: boolean;
  /** The record's bytes in the (inflated) records section, length varint included. */
  raw: Buffer;
}

/** Keys of the cleaner's offset map: short keys as they are, long keys by their SHA-256. */
export function keyId(key: Buffer): string {
  return key.length <= 64
    ? `k${key.toString('latin1')}`
    : `h${createHash('sha256').update(key).digest('base64')}`;
}

export function isControlBatch(batch: Buffer): boolean {
  return (batch.readInt16BE(BATCH_OFFSETS.attributes) & CONTROL_MASK) !== 0;
}

/** Every record of a stored batch, in order. */
export function storedRecords(batch: Buffer, maxDecompressedBytes: number): StoredRecord[] {
  const attributes = batch.readInt16BE(BATCH_OFFSETS.attributes);
  const section = decompress(
    codecName(attributes & COMPRESSION_CODEC_MASK),
    batch.subarray(BATCH_HEADER_SIZE),
    maxDecompressedBytes,
  );
  const count = batch.readInt32BE(BATCH_OFFSETS.recordCount);
  const baseOffset = batch.readBigInt64BE(BATCH_OFFSETS.baseOffset);
  const baseTimestamp = Number(batch.readBigInt64BE(BATCH_OFFSETS.baseTimestamp));
  const logAppendTime = (attributes & TIMESTAMP_TYPE_MASK) !== 0;
  const maxTimestamp = Number(batch.readBigInt64BE(BATCH_OFFSETS.maxTimestamp));
  const cursor = new VarintCursor(section, 0, section.length);
  const records: StoredRecord[] = [];
  for (let i = 0; i < count; i++) {
    const start = cursor.pos;
    const length = cursor.varint();
    const end = cursor.pos + length;
    if (length < 0 || end > section.length)
      throw errorOf('CORRUPT_DATA', `record ${i} of the batch at ${baseOffset} exceeds the batch`);
    cursor.end = end;
    cursor.skipByte();
    const timestampDelta = cursor.varint();
    const offsetDelta = cursor.varint();
    const key = cursor.bytesOrNull();
    const valueLength = cursor.varint();
    cursor.pos = end;
    cursor.end = section.length;
    records.push({
      offset: baseOffset + BigInt(offsetDelta),
      timestamp: logAppendTime ? maxTimestamp : baseTimestamp + timestampDelta,
      key,
      tombstone: valueLength === -1,
      raw: section.subarray(start, end),
    });
  }
  return records;
}

/**
 * The batch with only `kept` (records of it, in order) in it: header as described at the top of
 * this file, CRC recomputed. With no record kept the batch is empty and uncompressed.
 */
export function rebuildBatch(original: Buffer, kept: readonly StoredRecord[]): Buffer {
  let codec = codecName(original.readInt16BE(BATCH_OFFSETS.attributes) & COMPRESSION_CODEC_MASK);
  if (kept.length === 0) codec = 'none';
  const section = compress(
    codec,
    Buffer.concat(
      kept.map((r) => r.raw),
      kept.reduce((n, r) => n + r.raw.length, 0),
    ),
  );
  const batch = Buffer.allocUnsafe(BATCH_HEADER_SIZE + section.length);
  original.copy(batch, 0, 0, BATCH_HEADER_SIZE);
  section.copy(batch, BATCH_HEADER_SIZE);
  const attributes = original.readInt16BE(BATCH_OFFSETS.attributes);
  batch.writeInt16BE(
    kept.length === 0 ? attributes & ~COMPRESSION_CODEC_MASK : attributes,
    BATCH_OFFSETS.attributes,
  );
  batch.writeInt32BE(batch.length - BATCH_LOG_OVERHEAD, BATCH_OFFSETS.batchLength);
  batch.writeInt32BE(kept.length, BATCH_OFFSETS.recordCount);
  batch.writeUInt32BE(crc32c(batch.subarray(BATCH_CRC_START)), BATCH_OFFSETS.crc);
  return batch;
}
