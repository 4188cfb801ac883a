// The checks a replica's append makes on the record batches its leader sent, before any of them is
// queued: the bytes are stored as they are (offsets, leader epochs, CRCs untouched), so every batch
// must be whole, intact and continue the log exactly. One bad batch refuses the whole call: nothing
// of it is appended.
//
// A batch (Kafka's v2 layout, record-batch-layout.ts) as this file reads it:
//    0 baseOffset i64 | 8 batchLength i32 (bytes after this field) | 12 partitionLeaderEpoch i32
//   | 16 magic i8 (2) | 17 crc u32 (CRC-32C of byte 21 to the end) | 21 attributes i16
//   | 23 lastOffsetDelta i32 | 27 baseTimestamp i64 | 35 maxTimestamp i64 | ...

import { crc32cRange } from '../protocol/crc32c.js';
import { errorOf } from '../protocol/error-codes.js';
import {
  BATCH_CRC_START,
  BATCH_HEADER_SIZE,
  BATCH_LOG_OVERHEAD,
  BATCH_MAGIC,
  BATCH_OFFSETS,
} from '../protocol/record-batch-layout.js';

/** One checked batch: a view into the caller's buffer. */
export interface ReplicatedBatch {
  batch: Buffer;
  baseOffset: bigint;
  lastOffset: bigint;
  maxTimestamp: number;
  leaderEpoch: number;
}

/**
 * Splits `batches` into whole batches and checks each: length, magic, CRC-32C, and a base offset
 * equal to the offset after the previous batch, the first one equal to `logEndOffset`.
 * BAD_RECORD_BATCH for a torn or malformed batch, BAD_BATCH_CRC for a corrupt one,
 * REPLICA_OFFSET_MISMATCH for a gap or offsets going backwards.
 */
export function checkReplicatedBatches(batches: Buffer, logEndOffset: bigint): ReplicatedBatch[] {
  const checked: ReplicatedBatch[] = [];
  let expected = logEndOffset;
  let at = 0;
  while (at < batches.length) {
    if (batches.length - at < BATCH_HEADER_SIZE)
      throw errorOf(
        'BAD_RECORD_BATCH',
        `${batches.length - at} bytes at byte ${at} are not a whole batch header`,
      );
    const total = batches.readInt32BE(at + BATCH_OFFSETS.batchLength) + BATCH_LOG_OVERHEAD;
    if (total < BATCH_HEADER_SIZE || at + total > batches.length)
      throw errorOf(
        'BAD_RECORD_BATCH',
        `batch at byte ${at} declares ${total} bytes; ${batches.length - at} are left`,
      );
    const magic = batches.readInt8(at + BATCH_OFFSETS.magic);
    if (magic !== BATCH_MAGIC) throw errorOf('BAD_RECORD_BATCH', `batch at byte ${at} has magic ${magic}`);
    const baseOffset = batches.readBigInt64BE(at + BATCH_OFFSETS.baseOffset);
    if (
      crc32cRange(batches, at + BATCH_CRC_START, at + total) !== batches.readUInt32BE(at + BATCH_OFFSETS.crc)
    )
      throw errorOf('BAD_BATCH_CRC', `replicated batch at offset ${baseOffset} fails its CRC-32C`);
    if (baseOffset !== expected)
      throw errorOf(
        'REPLICA_OFFSET_MISMATCH',
        baseOffset > expected
          ? `batch at offset ${baseOffset} leaves a gap after ${expected - 1n} (the log continues at ${expected})`
          : `batch at offset ${baseOffset} goes back below ${expected} (the log continues there)`,
      );
    const lastOffsetDelta = batches.readInt32BE(at + BATCH_OFFSETS.lastOffsetDelta);
    if (lastOffsetDelta < 0)
      throw errorOf(
        'BAD_RECORD_BATCH',
        `batch at offset ${baseOffset} has lastOffsetDelta ${lastOffsetDelta}`,
      );
    const lastOffset = baseOffset + BigInt(lastOffsetDelta);
    checked.push({
      batch: batches.subarray(at, at + total),
      baseOffset,
      lastOffset,
      maxTimestamp: Number(batches.readBigInt64BE(at + BATCH_OFFSETS.maxTimestamp)),
      leaderEpoch: batches.readInt32BE(at + BATCH_OFFSETS.partitionLeaderEpoch),
    });
    expected = lastOffset + 1n;
    at += total;
  }
  return checked;
}
