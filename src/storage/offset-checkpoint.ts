// The layout of a small checkpoint file that holds one offset (high-watermark-file.ts,
// log-restart-file.ts; each names its own magic), big-endian like record batches:
//   offset  size  field
//   0       4     magic (the file's kind)
//   4       2     version = 1
//   6       8     offset int64 (≥ 0)
//   14      4     CRC-32C of bytes [0, 14)
// Any other length, magic, version, CRC or a negative offset is not a valid checkpoint.

import { crc32c } from '../protocol/crc32c.js';

const VERSION = 1;
const BYTES = 18;

export function encodeOffsetCheckpoint(magic: number, offset: bigint): Buffer {
  const bytes = Buffer.alloc(BYTES);
  bytes.writeUInt32BE(magic, 0);
  bytes.writeUInt16BE(VERSION, 4);
  bytes.writeBigInt64BE(offset, 6);
  bytes.writeUInt32BE(crc32c(bytes.subarray(0, 14)), 14);
  return bytes;
}

/** The offset the bytes hold, or null when they are not a valid checkpoint of this magic. */
export function decodeOffsetCheckpoint(magic: number, bytes: Buffer): bigint | null {
  if (bytes.length !== BYTES) return null;
  if (bytes.readUInt32BE(0) !== magic || bytes.readUInt16BE(4) !== VERSION) return null;
  if (bytes.readUInt32BE(14) !== crc32c(bytes.subarray(0, 14))) return null;
  const offset = bytes.readBigInt64BE(6);
  return offset < 0n ? null : offset;
}
