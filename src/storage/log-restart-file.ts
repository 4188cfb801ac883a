// The commit record of `PartitionLog.truncateFullyAndStartAt`: `log-restart.checkpoint` beside the
// segments says "this log is empty and starts at this offset". It is written durably before the
// first file of the old log goes, and removed once the new empty segment is durable; an open that
// finds it finishes the restart first (every segment and derived file removed, the empty segment
// created), so a crash at any step leaves either the old log (no file yet) or the new empty one.
//
// Layout (version 1), big-endian like record batches:
//   offset  size  field
//   0       4     magic "MSRS" (MemoryStreamer ReStart)
//   4       2     version = 1
//   6       8     start offset int64 (≥ 0)
//   14      4     CRC-32C of bytes [0, 14)
// Written as a temporary file (fdatasynced) renamed into place, so only media corruption can make
// it invalid; an invalid one is ignored and removed (docs/storage.md, "Replicated logs").

import { join } from 'node:path';
import { crc32c } from '../protocol/crc32c.js';
import type { StorageFs } from './storage-fs.js';

export const LOG_RESTART_CHECKPOINT = 'log-restart.checkpoint';

const MAGIC = 0x4d535253; // "MSRS"
const VERSION = 1;
const BYTES = 18;

export function encodeLogRestart(offset: bigint): Buffer {
  const bytes = Buffer.alloc(BYTES);
  bytes.writeUInt32BE(MAGIC, 0);
  bytes.writeUInt16BE(VERSION, 4);
  bytes.writeBigInt64BE(offset, 6);
  bytes.writeUInt32BE(crc32c(bytes.subarray(0, 14)), 14);
  return bytes;
}

/** The start offset the bytes hold, or null when they are not a valid record. */
export function decodeLogRestart(bytes: Buffer): bigint | null {
  if (bytes.length !== BYTES) return null;
  if (bytes.readUInt32BE(0) !== MAGIC || bytes.readUInt16BE(4) !== VERSION) return null;
  if (bytes.readUInt32BE(14) !== crc32c(bytes.subarray(0, 14))) return null;
  const offset = bytes.readBigInt64BE(6);
  return offset < 0n ? null : offset;
}

/** The commit point: temporary file (fdatasynced), rename, directory fsync. */
export async function writeLogRestart(fs: StorageFs, dir: string, offset: bigint): Promise<void> {
  const path = join(dir, LOG_RESTART_CHECKPOINT);
  await fs.writeFile(`${path}.tmp`, encodeLogRestart(offset));
  await fs.rename(`${path}.tmp`, path);
  await fs.syncDirectory(dir);
}

/** The restart is complete: the record goes, durably (an open would otherwise redo it over new data). */
export async function removeLogRestart(fs: StorageFs, dir: string): Promise<void> {
  await fs.unlink(join(dir, LOG_RESTART_CHECKPOINT));
  await fs.syncDirectory(dir);
}
