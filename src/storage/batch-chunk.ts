// Whole record batches inside a chunk of bytes read from a segment file: how long each is, where
// the batches that one read returns end, and whether their CRC-32C holds. Shared by
// PartitionLog.read (a new buffer per read) and LogReader (two buffers it reuses).
//
// A batch as stored (Kafka's v2 layout, record-batch-layout.ts):
//    0 baseOffset i64 | 8 batchLength i32 (bytes after this field) | 12 ... | 17 crc u32
//   | 21 attributes ... (the CRC-32C covers byte 21 to the end) ... | 23 lastOffsetDelta i32 ...
// so a batch spans batchLength + 12 (BATCH_LOG_OVERHEAD) bytes.

import { crc32cRange } from '../protocol/crc32c.js';
import { errorOf } from '../protocol/error-codes.js';
import {
  BATCH_CRC_START,
  BATCH_HEADER_SIZE,
  BATCH_LOG_OVERHEAD,
  BATCH_OFFSETS,
} from '../protocol/record-batch-layout.js';

/** What a chunk was read from: its file (for messages) and how many of its bytes are visible. */
export interface ChunkOrigin {
  path(extension: 'log'): string;
  visibleBytes: number;
}

/**
 * Bytes of the batch at `at` in `chunk` (its length field plus the log overhead), refusing a length
 * that cannot be a batch — zeroed or torn data — as CORRUPT_DATA instead of walking on from it.
 * `position` is the chunk's byte position in the segment file.
 */
export function batchSpan(chunk: Buffer, at: number, position: number, origin: ChunkOrigin): number {
  const total = chunk.readInt32BE(at + BATCH_OFFSETS.batchLength) + BATCH_LOG_OVERHEAD;
  // Too short to be a batch, or longer than what is written: a torn or zeroed length. Walking on
  // from it would return nothing forever (a reader stuck at this offset) or allocate what it claims.
  if (total < BATCH_HEADER_SIZE || position + at + total > origin.visibleBytes)
    throw errorOf(
      'CORRUPT_DATA',
      `batch at byte ${position + at} of ${origin.path('log')} declares ${total} bytes`,
    );
  return total;
}

/** Last offset of the batch at `at` in `chunk`. */
export function lastOffsetOf(chunk: Buffer, at: number): bigint {
  return chunk.readBigInt64BE(at) + BigInt(chunk.readInt32BE(at + BATCH_OFFSETS.lastOffsetDelta));
}

/**
 * By lengths only: where the whole batches from `at` end, taking at most `maxBytes` after `at` (the
 * first batch always, even when it alone is larger), and where the last of them starts (-1 when
 * none is whole in the chunk). Stops at a length that cannot be a batch; never throws (recovery's
 * scan uses it on unverified bytes and judges what it stopped at itself).
 */
export function wholeBatches(
  chunk: Buffer,
  at: number,
  maxBytes: number,
): { end: number; lastStart: number } {
  let end = at;
  let lastStart = -1;
  while (end + BATCH_LOG_OVERHEAD <= chunk.length) {
    const total = chunk.readInt32BE(end + BATCH_OFFSETS.batchLength) + BATCH_LOG_OVERHEAD;
    if (total < BATCH_HEADER_SIZE || end + total > chunk.length || (end > at && end + total - at > maxBytes))
      break;
    lastStart = end;
    end += total;
  }
  return { end, lastStart };
}

/**
 * Pass 1 of a read: `wholeBatches`, except that a first length that cannot be a batch (zeroed or
 * torn data) is CORRUPT_DATA; later ones end the read there, like a bad CRC.
 */
export function frameBatches(
  chunk: Buffer,
  at: number,
  maxBytes: number,
  position: number,
  origin: ChunkOrigin,
): { end: number; lastStart: number } {
  const framed = wholeBatches(chunk, at, maxBytes);
  if (
    framed.end === at &&
    at + BATCH_LOG_OVERHEAD <= chunk.length &&
    chunk.readInt32BE(at + BATCH_OFFSETS.batchLength) + BATCH_LOG_OVERHEAD < BATCH_HEADER_SIZE
  )
    batchSpan(chunk, at, position, origin);
  return framed;
}

/**
 * Pass 2: checks the CRC-32C of every batch in chunk[at, end). A bad first batch is CORRUPT_DATA; a
 * bad later one (or one at or past `corruptFrom`, where recovery found corruption) ends the verified
 * range before it, so the next read starts at it and fails. `lastVerified` is where the last good
 * batch starts, -1 when none is.
 */
export function verifyBatches(
  chunk: Buffer,
  at: number,
  end: number,
  corruptFrom: bigint | null,
  origin: ChunkOrigin,
): { verified: number; lastVerified: number } {
  let verified = at;
  let lastVerified = -1;
  while (verified < end) {
    const total = chunk.readInt32BE(verified + BATCH_OFFSETS.batchLength) + BATCH_LOG_OVERHEAD;
    if (corruptFrom !== null && chunk.readBigInt64BE(verified) >= corruptFrom) break;
    if (
      crc32cRange(chunk, verified + BATCH_CRC_START, verified + total) !==
      chunk.readUInt32BE(verified + BATCH_OFFSETS.crc)
    ) {
      if (verified === at) {
        throw errorOf(
          'CORRUPT_DATA',
          `batch at offset ${chunk.readBigInt64BE(verified)} in ${origin.path('log')} fails its CRC`,
        );
      }
      break;
    }
    lastVerified = verified;
    verified += total;
  }
  return { verified, lastVerified };
}
