// Byte layout of a record batch header: Kafka's RecordBatch v2, kept bit for bit (big-endian, as
// Kafka writes it) so that a Kafka-API gateway can pass batches through untouched. Frames around the
// batch are little-endian (docs/protocol.md); the batch itself is not, deliberately.
// This file only names offsets and reads the fixed header; encoding and decoding records lives in
// record-batch.ts. The storage layer needs no more than this to frame, validate and index batches.
//
//  offset  size  field
//  0       8     baseOffset            int64   assigned by the broker on append
//  8       4     batchLength           int32   bytes that follow this field (total length - 12)
//  12      4     partitionLeaderEpoch  int32
//  16      1     magic                 int8    always 2
//  17      4     crc                   uint32  CRC-32C of bytes 21..end (attributes to the last record)
//  21      2     attributes            int16   bits 0-2 compression, bit 3 timestamp type,
//                                              bit 4 transactional, bit 5 control
//  23      4     lastOffsetDelta       int32   offset of the last record minus baseOffset
//  27      8     baseTimestamp         int64   ms since epoch
//  35      8     maxTimestamp          int64   ms since epoch
//  43      8     producerId            int64   -1 when not idempotent
//  51      2     producerEpoch         int16
//  53      4     baseSequence          int32
//  57      4     recordCount           int32
//  61      ...   records (varint encoded, possibly compressed as one block)
//
// Because the CRC starts at byte 21, the broker can write baseOffset (and the leader epoch) in place
// without recomputing it.

export const BATCH_OFFSETS = {
  baseOffset: 0,
  batchLength: 8,
  partitionLeaderEpoch: 12,
  magic: 16,
  crc: 17,
  attributes: 21,
  lastOffsetDelta: 23,
  baseTimestamp: 27,
  maxTimestamp: 35,
  producerId: 43,
  producerEpoch: 51,
  baseSequence: 53,
  recordCount: 57,
  records: 61,
} as const;

export const BATCH_HEADER_SIZE = 61;
/** baseOffset + batchLength: the bytes not counted by batchLength. */
export const BATCH_LOG_OVERHEAD = 12;
export const BATCH_MAGIC = 2;
/** CRC-32C covers the batch from this offset to its end. */
export const BATCH_CRC_START = 21;

export const COMPRESSION_CODEC_MASK = 0x07;
export const TIMESTAMP_TYPE_MASK = 0x08;
export const TRANSACTIONAL_MASK = 0x10;
export const CONTROL_MASK = 0x20;

export interface RecordBatchHeader {
  baseOffset: bigint;
  batchLength: number;
  partitionLeaderEpoch: number;
  magic: number;
  crc: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: bigint;
  maxTimestamp: bigint;
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

/**
 * A signed 64-bit big-endian integer as a bigint, read as two 32-bit halves: Buffer.readBigInt64BE
 * makes four BigInts per call (two halves, a shift, a sum), this one for a field that is a safe
 * integer (every offset, timestamp and producer id in practice), four to five bigints per batch
 * header on every produce and every delivered batch.
 */
export function readInt64(buf: Buffer, at: number): bigint {
  const high = buf.readInt32BE(at);
  // |high| < 2^21: high · 2^32 + low is below 2^53, exact as a number.
  if (high >= -0x200000 && high < 0x200000) return BigInt(high * 0x100000000 + buf.readUInt32BE(at + 4));
  return buf.readBigInt64BE(at);
}

/** The same field as a number (a timestamp in ms); outside the safe range it is rounded. */
export function readInt64AsNumber(buf: Buffer, at: number): number {
  return buf.readInt32BE(at) * 0x100000000 + buf.readUInt32BE(at + 4);
}

/**
 * Writes a signed 64-bit big-endian integer given as a safe-integer number or a bigint, as two
 * 32-bit halves: Buffer.writeBigInt64BE makes four BigInts per call, and a batch header has four
 * 64-bit fields, written for every batch a producer seals and every base offset the log assigns.
 * Outside the safe range it falls back to Buffer's codec (which refuses a fraction or a value past
 * 64 bits with a RangeError).
 */
export function writeInt64(buf: Buffer, value: number | bigint, at: number): void {
  if (typeof value === 'bigint') {
    if (value < -0x1fffffffffffffn || value > 0x1fffffffffffffn) {
      buf.writeBigInt64BE(value, at);
      return;
    }
    value = Number(value);
  } else if (!Number.isSafeInteger(value)) {
    buf.writeBigInt64BE(BigInt(value), at);
    return;
  }
  // Floor division keeps the two's-complement split right for negative values too.
  const high = Math.floor(value / 0x100000000);
  buf.writeInt32BE(high, at);
  buf.writeUInt32BE(value - high * 0x100000000, at + 4);
}

/** Reads the fixed header at `at`. The caller guarantees BATCH_HEADER_SIZE bytes are present. */
export function readBatchHeader(buf: Buffer, at = 0): RecordBatchHeader {
  return {
    baseOffset: readInt64(buf, at + BATCH_OFFSETS.baseOffset),
    batchLength: buf.readInt32BE(at + BATCH_OFFSETS.batchLength),
    partitionLeaderEpoch: buf.readInt32BE(at + BATCH_OFFSETS.partitionLeaderEpoch),
    magic: buf.readInt8(at + BATCH_OFFSETS.magic),
    crc: buf.readUInt32BE(at + BATCH_OFFSETS.crc),
    attributes: buf.readInt16BE(at + BATCH_OFFSETS.attributes),
    lastOffsetDelta: buf.readInt32BE(at + BATCH_OFFSETS.lastOffsetDelta),
    baseTimestamp: readInt64(buf, at + BATCH_OFFSETS.baseTimestamp),
    maxTimestamp: readInt64(buf, at + BATCH_OFFSETS.maxTimestamp),
    producerId: readInt64(buf, at + BATCH_OFFSETS.producerId),
    producerEpoch: buf.readInt16BE(at + BATCH_OFFSETS.producerEpoch),
    baseSequence: buf.readInt32BE(at + BATCH_OFFSETS.baseSequence),
    recordCount: buf.readInt32BE(at + BATCH_OFFSETS.recordCount),
  };
}

/** Total bytes of the batch starting at `at` (header included), from its batchLength field. */
export function batchTotalSize(buf: Buffer, at = 0): number {
  return buf.readInt32BE(at + BATCH_OFFSETS.batchLength) + BATCH_LOG_OVERHEAD;
}

/** Writes the broker-assigned base offset in place; the CRC does not cover it. */
export function writeBaseOffset(buf: Buffer, baseOffset: bigint, at = 0): void {
  writeInt64(buf, baseOffset, at + BATCH_OFFSETS.baseOffset);
}
