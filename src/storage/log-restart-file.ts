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
import { decodeOffsetCheckpoint, encodeOffsetCheckpoint } from './offset-checkpoint.js';
import type { StorageFs } from './storage-fs.js';

export const LOG_RESTART_CHECKPOINT = 'log-restart.checkpoint';

const MAGIC = 0x4d535253; // "MSRS" (layout: offset-checkpoint.ts)

export function encodeLogRestart(offset: bigint): Buffer {
  return encodeOffsetCheckpoint(MAGIC, offset);
}

/** The offset the bytes hold, or null when they are not a valid checkpoint. */
export function decodeLogRestart(bytes: Buffer): bigint | null {
  return decodeOffsetCheckpoint(MAGIC, bytes);
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
