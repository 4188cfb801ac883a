// The replicated high watermark of one partition log as its owner last set it, kept in
// `high-watermark.checkpoint` beside the segments (Kafka's replication-offset-checkpoint, one per
// partition here). A replicated log reopened after a restart shows readers only what lies below
// the checkpoint until its owner sets a high watermark again, so a restarted leader never serves
// records its followers may not hold. The file may lag the true high watermark (it is written
// every few seconds and at close): that only hides a few seconds of records until the followers
// report in, it never shows too much. A checkpoint past the recovered log end (a crash took the
// tail) is clamped to the log end by the log.
//
// Layout (version 1), big-endian like record batches:
//   offset  size  field
//   0       4     magic "MSHW" (MemoryStreamer High Watermark)
//   4       2     version = 1
//   6       8     high watermark int64 (≥ 0)
//   14      4     CRC-32C of bytes [0, 14)
// Any other length, magic, version, CRC or a negative offset is corrupt: the log then opens as if
// there were no checkpoint and says so.

import { join } from 'node:path';
import { decodeOffsetCheckpoint, encodeOffsetCheckpoint } from './offset-checkpoint.js';
import type { StorageFs } from './storage-fs.js';

export const HIGH_WATERMARK_CHECKPOINT = 'high-watermark.checkpoint';

const MAGIC = 0x4d534857; // "MSHW" (layout: offset-checkpoint.ts)

export function encodeHighWatermark(offset: bigint): Buffer {
  return encodeOffsetCheckpoint(MAGIC, offset);
}

/** The offset the bytes hold, or null when they are not a valid checkpoint. */
export function decodeHighWatermark(bytes: Buffer): bigint | null {
  return decodeOffsetCheckpoint(MAGIC, bytes);
}

export type CheckpointRead = { state: 'none' } | { state: 'corrupt' } | { state: 'ok'; offset: bigint };

export async function readHighWatermarkCheckpoint(fs: StorageFs, dir: string): Promise<CheckpointRead> {
  const path = join(dir, HIGH_WATERMARK_CHECKPOINT);
  if (!(await fs.exists(path))) return { state: 'none' };
  const offset = decodeHighWatermark(await fs.readFile(path));
  return offset === null ? { state: 'corrupt' } : { state: 'ok', offset };
}

/** Temporary file (fdatasynced), then rename: a crash leaves the old checkpoint or the new one. */
export async function writeHighWatermarkCheckpoint(
  fs: StorageFs,
  dir: string,
  offset: bigint,
): Promise<void> {
  const path = join(dir, HIGH_WATERMARK_CHECKPOINT);
  await fs.writeFile(`${path}.tmp`, encodeHighWatermark(offset));
  await fs.rename(`${path}.tmp`, path);
}
