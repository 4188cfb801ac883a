// The leader-epoch checkpoint of one partition log: which leader epoch started writing at which
// offset, durable in `leader-epoch.checkpoint` beside the segments. It is the input to Kafka's
// OffsetsForLeaderEpoch (where does epoch E end in this log?), which src/cluster/replication
// answers from these entries (LeaderEpochCache). The log keeps the file in step with its data:
//  - a new epoch is written (temporary file, fdatasync, rename, directory fsync) before the first
//    batch of that epoch is written to a segment, so no batch on disk has an epoch the file lacks;
//  - a truncation of the log drops the entries that start at or past its new end, retention clamps
//    the first entry to the new log start;
//  - at open, entries past the recovered log end (batches a crash took) are dropped, and a corrupt
//    file is rebuilt from the epochs the batches carry (each batch's partitionLeaderEpoch).
// No file means no epoch was ever assigned (a log that was never replicated): nothing is read.
//
// Layout (version 1), big-endian like record batches; the cluster's epoch cache
// (src/cluster/replication/leader-epoch-cache.ts) reads and writes its checkpoint with this codec:
//   offset      size  field
//   0           4     magic "MSEC" (MemoryStreamer Epoch Checkpoint)
//   4           2     version = 1
//   6           4     entry count N (uint32)
//   10          12·N  entries: epoch int32 (≥ 0), start offset int64 (≥ 0); both strictly increasing
//   10 + 12·N   4     CRC-32C of bytes [0, 10 + 12·N)
// Any other length, magic, version, CRC or order is corrupt.

import { join } from 'node:path';
import { crc32c } from '../protocol/crc32c.js';
import { errorOf } from '../protocol/error-codes.js';
import type { StorageFs } from './storage-fs.js';

export const LEADER_EPOCH_CHECKPOINT = 'leader-epoch.checkpoint';

export interface LeaderEpochEntry {
  readonly epoch: number;
  /** The first offset written in this epoch. */
  readonly startOffset: bigint;
}

const MAGIC = 0x4d534543; // "MSEC"
const VERSION = 1;
const HEADER_BYTES = 10;
const ENTRY_BYTES = 12;
const CRC_BYTES = 4;
const MAX_EPOCH = 0x7fff_ffff;

export function encodeLeaderEpochs(entries: readonly LeaderEpochEntry[]): Buffer {
  const body = HEADER_BYTES + ENTRY_BYTES * entries.length;
  const bytes = Buffer.alloc(body + CRC_BYTES);
  bytes.writeUInt32BE(MAGIC, 0);
  bytes.writeUInt16BE(VERSION, 4);
  bytes.writeUInt32BE(entries.length, 6);
  let at = HEADER_BYTES;
  for (const entry of entries) {
    bytes.writeInt32BE(entry.epoch, at);
    bytes.writeBigInt64BE(entry.startOffset, at + 4);
    at += ENTRY_BYTES;
  }
  bytes.writeUInt32BE(crc32c(bytes.subarray(0, body)), body);
  return bytes;
}

/** The entries of a checkpoint; anything malformed throws CORRUPT_EPOCH_CHECKPOINT. */
export function decodeLeaderEpochs(bytes: Buffer): LeaderEpochEntry[] {
  const corrupt = (detail: string) => errorOf('CORRUPT_EPOCH_CHECKPOINT', detail);
  if (bytes.length < HEADER_BYTES + CRC_BYTES)
    throw corrupt(`${bytes.length} bytes, the smallest checkpoint has ${HEADER_BYTES + CRC_BYTES}`);
  if (bytes.readUInt32BE(0) !== MAGIC) throw corrupt('bad magic');
  const version = bytes.readUInt16BE(4);
  if (version !== VERSION) throw corrupt(`version ${version} is not supported (expected ${VERSION})`);
  const count = bytes.readUInt32BE(6);
  const body = HEADER_BYTES + ENTRY_BYTES * count;
  if (bytes.length !== body + CRC_BYTES)
    throw corrupt(`${count} entries need ${body + CRC_BYTES} bytes, found ${bytes.length}`);
  if (bytes.readUInt32BE(body) !== crc32c(bytes.subarray(0, body))) throw corrupt('CRC-32C does not match');
  const entries: LeaderEpochEntry[] = [];
  for (let at = HEADER_BYTES; at < body; at += ENTRY_BYTES) {
    const entry = { epoch: bytes.readInt32BE(at), startOffset: bytes.readBigInt64BE(at + 4) };
    const previous = entries.at(-1);
    if (entry.epoch < 0 || entry.startOffset < 0n) throw corrupt(`negative entry at byte ${at}`);
    if (
      previous !== undefined &&
      (entry.epoch <= previous.epoch || entry.startOffset <= previous.startOffset)
    )
      throw corrupt(`entries out of order at byte ${at}`);
    entries.push(entry);
  }
  return entries;
}

/** The checkpoint of one log: entries in memory, written whole when they change. */
export class LeaderEpochFile {
  private list: LeaderEpochEntry[];
  /** Entries changed in memory and not yet written. */
  dirty = false;
  /** Writes run one at a time (appends, truncation and retention each may write). */
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly fs: StorageFs,
    private readonly dir: string,
    entries: readonly LeaderEpochEntry[] = [],
  ) {
    this.list = entries.slice();
  }

  /** Reads the file; null when there is none. Throws CORRUPT_EPOCH_CHECKPOINT for a bad one. */
  static async read(fs: StorageFs, dir: string): Promise<LeaderEpochEntry[] | null> {
    let bytes: Buffer;
    try {
      bytes = await fs.readFile(join(dir, LEADER_EPOCH_CHECKPOINT));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    return decodeLeaderEpochs(bytes);
  }

  /** Forgets every entry (in memory). */
  clear(): void {
    this.list = [];
    this.dirty = true;
  }

  entries(): readonly LeaderEpochEntry[] {
    return this.list.slice();
  }

  /** The latest epoch, -1 when there is none. */
  get latestEpoch(): number {
    return this.list.at(-1)?.epoch ?? -1;
  }

  /**
   * Records that `epoch` writes from `startOffset` on (in memory: `write` makes it durable). The
   * latest epoch again changes nothing; a newer epoch at the latest entry's own start offset
   * replaces it (that epoch wrote nothing); an older epoch or a start offset below the latest one is
   * LEADER_EPOCH_REGRESSION. Returns whether the entries changed.
   */
  assign(epoch: number, startOffset: bigint): boolean {
    if (!Number.isInteger(epoch) || epoch < 0 || epoch > MAX_EPOCH || startOffset < 0n)
      throw errorOf(
        'LEADER_EPOCH_REGRESSION',
        `epoch ${epoch} at offset ${startOffset} is not a valid entry`,
      );
    const latest = this.list.at(-1);
    if (latest !== undefined) {
      if (epoch < latest.epoch || startOffset < latest.startOffset)
        throw errorOf(
          'LEADER_EPOCH_REGRESSION',
          `epoch ${epoch} at offset ${startOffset} after epoch ${latest.epoch} at ${latest.startOffset}`,
        );
      if (epoch === latest.epoch) return false;
      if (startOffset === latest.startOffset) this.list.pop();
    }
    this.list.push({ epoch, startOffset });
    this.dirty = true;
    return true;
  }

  /** Drops the entries that start at or past `endOffset` (the log now ends there). */
  truncateFromEnd(endOffset: bigint): boolean {
    const before = this.list.length;
    while (this.list.length > 0 && this.list.at(-1)!.startOffset >= endOffset) this.list.pop();
    if (this.list.length === before) return false;
    this.dirty = true;
    return true;
  }

  /** The log now starts at `startOffset`: epochs that ended before it go, the one holding it starts there. */
  truncateFromStart(startOffset: bigint): boolean {
    let holding = -1;
    for (let i = 0; i < this.list.length && this.list[i]!.startOffset <= startOffset; i++) holding = i;
    if (holding < 0 || (holding === 0 && this.list[0]!.startOffset === startOffset)) return false;
    this.list.splice(0, holding + 1, { epoch: this.list[holding]!.epoch, startOffset });
    this.dirty = true;
    return true;
  }

  /** Writes the entries durably when they changed: temporary file, fdatasync, rename, directory fsync. */
  write(): Promise<void> {
    const run = this.writing.then(() => this.writeNow());
    this.writing = run.catch(() => undefined);
    return run;
  }

  private async writeNow(): Promise<void> {
    if (!this.dirty) return;
    const path = join(this.dir, LEADER_EPOCH_CHECKPOINT);
    const entries = this.list.slice();
    await this.fs.writeFile(`${path}.tmp`, encodeLeaderEpochs(entries));
    await this.fs.rename(`${path}.tmp`, path);
    await this.fs.syncDirectory(this.dir);
    // Changed again while it was written: stays dirty for the next write.
    if (this.list.length === entries.length && this.list.every((e, i) => e === entries[i]))
      this.dirty = false;
  }
}
