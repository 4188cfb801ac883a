// Producer-state snapshots: the idempotent-producer table of a partition as of an offset, saved so
// an open replays the log from that offset instead of from the log start (docs/producer-snapshots.md).
// Encoding and decoding are sans-IO; the few file helpers below do the I/O.
//
// File `<20-digit offset>.producers` in the partition directory (big-endian):
//
//   offset      size  field
//   0           4     magic          "MSPS" (0x4d535053)
//   4           2     version        1
//   6           8     offset         uint64: the table holds every batch with lastOffset < offset,
//                                    none at or after it; equals the offset in the file name
//   14          4     producerCount  uint32
//   18          ...   producers, in increasing producer id order, each:
//                       0   8   producerId   int64, ≥ 0
//                       8   2   epoch        int16, ≥ 0
//                       10  1   batchCount   1..RETAINED_BATCHES
//                       11  24 × batchCount, oldest first, each:
//                             0   4  baseSequence  int32, ≥ 0
//                             4   4  lastSequence  int32, ≥ 0
//                             8   8  baseOffset    int64, ≥ 0
//                             16  8  lastOffset    int64, baseOffset ≤ lastOffset < offset,
//                                                  above the previous batch's lastOffset
//   size − 4    4     crc            CRC-32C of every byte before it
//
// Why no fsync: a snapshot is derived from the log, so losing one only costs replay time. What must
// never happen is trusting a wrong one. The file is written to `<name>.tmp` and renamed (an open
// deletes stray `.tmp` files, PartitionLog.recover), and a power loss can still leave the renamed
// file empty, short or holding garbage: every such file fails the length checks or the CRC and is
// ignored, and the open falls back to an older snapshot or a full replay. A snapshot whose offset
// is past the recovered log end (its data did not survive) is deleted durably at open, before any
// append could make that offset valid again (producer-snapshot-store.ts, newestUsable); a
// truncation of the log deletes those above its cut the same way.

import { readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32c } from '../../protocol/crc32c.js';
import { nodeStorageFs } from '../../storage/storage-fs.js';
import { type ProducerSnapshotEntry, RETAINED_BATCHES } from './producer-state.js';

export const SNAPSHOT_MAGIC = 0x4d535053;
export const SNAPSHOT_VERSION = 1;
const HEADER_SIZE = 18;
const PRODUCER_HEADER_SIZE = 11;
const BATCH_SIZE = 24;
const CRC_SIZE = 4;
const MAX_INT64 = 0x7fffffffffffffffn;
const SUFFIX = '.producers';

export interface ProducerSnapshot {
  offset: bigint;
  entries: ProducerSnapshotEntry[];
}

export function snapshotFileName(offset: bigint): string {
  return `${offset.toString().padStart(20, '0')}${SUFFIX}`;
}

/** The offset in a snapshot file's name, or null when the name is not one. */
export function parseSnapshotFileName(name: string): bigint | null {
  const match = /^(\d{20})\.producers$/.exec(name);
  return match === null ? null : BigInt(match[1]!);
}

export function encodeSnapshot(snapshot: ProducerSnapshot): Buffer {
  let size = HEADER_SIZE + CRC_SIZE;
  for (const entry of snapshot.entries) size += PRODUCER_HEADER_SIZE + BATCH_SIZE * entry.batches.length;
  const out = Buffer.allocUnsafe(size);
  out.writeUInt32BE(SNAPSHOT_MAGIC, 0);
  out.writeUInt16BE(SNAPSHOT_VERSION, 4);
  out.writeBigUInt64BE(snapshot.offset, 6);
  out.writeUInt32BE(snapshot.entries.length, 14);
  let at = HEADER_SIZE;
  for (const entry of snapshot.entries) {
    if (entry.batches.length < 1 || entry.batches.length > RETAINED_BATCHES)
      throw new RangeError(`producer ${entry.producerId}: ${entry.batches.length} batches`);
    out.writeBigInt64BE(entry.producerId, at);
    out.writeInt16BE(entry.epoch, at + 8);
    out.writeUInt8(entry.batches.length, at + 10);
    at += PRODUCER_HEADER_SIZE;
    for (const batch of entry.batches) {
      out.writeInt32BE(batch.baseSequence, at);
      out.writeInt32BE(batch.lastSequence, at + 4);
      out.writeBigInt64BE(batch.baseOffset, at + 8);
      out.writeBigInt64BE(batch.lastOffset, at + 16);
      at += BATCH_SIZE;
    }
  }
  out.writeUInt32BE(crc32c(out.subarray(0, at)), at);
  return out;
}

/**
 * The snapshot in `data`, or null when anything about it is wrong: size, magic, version, CRC,
 * counts, ordering, ranges. Never throws on bad bytes, and allocates only for entries it has read
 * (a count is checked against the bytes present before it is used).
 */
export function decodeSnapshot(data: Uint8Array): ProducerSnapshot | null {
  if (data.length < HEADER_SIZE + CRC_SIZE) return null;
  const buf = Buffer.from(data.buffer, data.byteOffset, data.length);
  const end = buf.length - CRC_SIZE;
  if (buf.readUInt32BE(0) !== SNAPSHOT_MAGIC || buf.readUInt16BE(4) !== SNAPSHOT_VERSION) return null;
  if (crc32c(buf.subarray(0, end)) !== buf.readUInt32BE(end)) return null;
  const offset = buf.readBigUInt64BE(6);
  if (offset > MAX_INT64) return null;
  const count = buf.readUInt32BE(14);
  const minimum = PRODUCER_HEADER_SIZE + BATCH_SIZE;
  if (count > Math.floor((end - HEADER_SIZE) / minimum)) return null;
  const entries: ProducerSnapshotEntry[] = [];
  let at = HEADER_SIZE;
  let previousId = -1n;
  for (let i = 0; i < count; i++) {
    if (end - at < PRODUCER_HEADER_SIZE) return null;
    const producerId = buf.readBigInt64BE(at);
    const epoch = buf.readInt16BE(at + 8);
    const batchCount = buf.readUInt8(at + 10);
    at += PRODUCER_HEADER_SIZE;
    if (producerId <= previousId || epoch < 0) return null;
    if (batchCount < 1 || batchCount > RETAINED_BATCHES || end - at < batchCount * BATCH_SIZE) return null;
    previousId = producerId;
    const batches = [];
    let previousLast = -1n;
    for (let j = 0; j < batchCount; j++) {
      const baseSequence = buf.readInt32BE(at);
      const lastSequence = buf.readInt32BE(at + 4);
      const baseOffset = buf.readBigInt64BE(at + 8);
      const lastOffset = buf.readBigInt64BE(at + 16);
      at += BATCH_SIZE;
      if (baseSequence < 0 || lastSequence < 0) return null;
      if (baseOffset <= previousLast || lastOffset < baseOffset || lastOffset >= offset) return null;
      previousLast = lastOffset;
      batches.push({ baseSequence, lastSequence, baseOffset, lastOffset });
    }
    entries.push({ producerId, epoch, batches });
  }
  if (at !== end) return null;
  return { offset, entries };
}

/** Offsets of the snapshot files in `dir`, newest first. */
export async function listSnapshots(dir: string): Promise<bigint[]> {
  const offsets: bigint[] = [];
  for (const name of await readdir(dir)) {
    const offset = parseSnapshotFileName(name);
    if (offset !== null) offsets.push(offset);
  }
  return offsets.sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
}

/** The snapshot at `offset` in `dir`, or null when it is missing, unreadable or invalid. */
export async function readSnapshot(dir: string, offset: bigint): Promise<ProducerSnapshot | null> {
  let data: Buffer;
  try {
    data = await readFile(join(dir, snapshotFileName(offset)));
  } catch {
    return null;
  }
  const snapshot = decodeSnapshot(data);
  // A file renamed by hand (or a bug) must not be taken for another offset's snapshot.
  return snapshot !== null && snapshot.offset === offset ? snapshot : null;
}

/** Writes a snapshot atomically (`.tmp`, then rename), without fsync (see the top of this file). */
export async function writeSnapshot(dir: string, snapshot: ProducerSnapshot): Promise<void> {
  const path = join(dir, snapshotFileName(snapshot.offset));
  try {
    await writeFile(`${path}.tmp`, encodeSnapshot(snapshot));
    await rename(`${path}.tmp`, path);
  } catch (error) {
    await unlink(`${path}.tmp`).catch(() => undefined);
    throw error;
  }
}

/** Deletes the snapshot at `offset`; a missing file is not an error. */
export async function deleteSnapshot(dir: string, offset: bigint): Promise<void> {
  try {
    await unlink(join(dir, snapshotFileName(offset)));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/**
 * Deletes every snapshot above `offset` durably (the directory is fsynced when one went) and
 * returns the offsets of those left, newest first. Used where a snapshot describes bytes that are
 * gone or about to be (a log end cut by recovery, a segment compaction replaces), so that no later
 * open takes it for valid.
 */
export async function deleteSnapshotsAbove(dir: string, offset: bigint): Promise<bigint[]> {
  const kept: bigint[] = [];
  let deleted = false;
  for (const snapshot of await listSnapshots(dir)) {
    if (snapshot > offset) {
      await deleteSnapshot(dir, snapshot);
      deleted = true;
    } else {
      kept.push(snapshot);
    }
  }
  if (deleted) await nodeStorageFs.syncDirectory(dir);
  return kept;
}
