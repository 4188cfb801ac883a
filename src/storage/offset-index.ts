// Sparse indexes of one segment, kept in memory as growable typed arrays and persisted beside the
// segment when it is sealed. Derivable from the log: a missing, torn or stale file is rebuilt by
// scanning the segment, never trusted blindly.
//
// Offset index file `<base>.index`, little-endian:
//   entries     count × { relativeOffset u32, position u32 }   (offset - segment base, byte position)
//   trailer     coveredBytes u64 | count u32 | crc32c u32       (CRC of everything before it)
// Time index file `<base>.timeindex`, little-endian:
//   entries     count × { maxTimestamp i64 (ms), relativeOffset u32 }
//   trailer     coveredBytes u64 | count u32 | crc32c u32
// `coveredBytes` is the segment size the index describes: an index whose coveredBytes differs from
// the segment's size is stale and is rebuilt.

import { crc32c } from '../protocol/crc32c.js';

const TRAILER_BYTES = 16;

function grow<T extends Uint32Array | Float64Array>(array: T, needed: number, make: (n: number) => T): T {
  if (needed <= array.length) return array;
  const next = make(Math.max(needed, array.length * 2));
  next.set(array);
  return next;
}

export class OffsetIndex {
  private relativeOffsets = new Uint32Array(64);
  private positions = new Uint32Array(64);
  count = 0;

  add(relativeOffset: number, position: number): void {
    this.relativeOffsets = grow(this.relativeOffsets, this.count + 1, (n) => new Uint32Array(n));
    this.positions = grow(this.positions, this.count + 1, (n) => new Uint32Array(n));
    this.relativeOffsets[this.count] = relativeOffset;
    this.positions[this.count] = position;
    this.count++;
  }

  /** Position of the last entry whose offset is ≤ `relativeOffset` (0 when none). */
  floorPosition(relativeOffset: number): number {
    let lo = 0;
    let hi = this.count - 1;
    let found = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.relativeOffsets[mid]! <= relativeOffset) {
        found = this.positions[mid]!;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  /** Drops entries at or past `position` (after a truncation). */
  truncateToPosition(position: number): void {
    while (this.count > 0 && this.positions[this.count - 1]! >= position) this.count--;
  }

  get memoryBytes(): number {
    return this.relativeOffsets.byteLength + this.positions.byteLength;
  }

  encode(coveredBytes: number): Buffer {
    const buf = Buffer.allocUnsafe(this.count * 8 + TRAILER_BYTES);
    for (let i = 0; i < this.count; i++) {
      buf.writeUInt32LE(this.relativeOffsets[i]!, i * 8);
      buf.writeUInt32LE(this.positions[i]!, i * 8 + 4);
    }
    return writeTrailer(buf, this.count * 8, coveredBytes, this.count);
  }

  /** Parses an index file; null when it is torn, corrupt or describes a different segment size. */
  static decode(buf: Buffer, coveredBytes: number): OffsetIndex | null {
    const count = readTrailer(buf, 8, coveredBytes);
    if (count === null) return null;
    const index = new OffsetIndex();
    for (let i = 0; i < count; i++) {
      const relativeOffset = buf.readUInt32LE(i * 8);
      const position = buf.readUInt32LE(i * 8 + 4);
      if (position >= coveredBytes || (i > 0 && relativeOffset < index.relativeOffsets[i - 1]!)) return null;
      index.add(relativeOffset, position);
    }
    return index;
  }
}

export class TimeIndex {
  private timestamps = new Float64Array(64);
  private relativeOffsets = new Uint32Array(64);
  count = 0;

  add(maxTimestamp: number, relativeOffset: number): void {
    if (this.count > 0 && maxTimestamp <= this.timestamps[this.count - 1]!) return;
    this.timestamps = grow(this.timestamps, this.count + 1, (n) => new Float64Array(n));
    this.relativeOffsets = grow(this.relativeOffsets, this.count + 1, (n) => new Uint32Array(n));
    this.timestamps[this.count] = maxTimestamp;
    this.relativeOffsets[this.count] = relativeOffset;
    this.count++;
  }

  get lastTimestamp(): number {
    return this.count === 0 ? Number.NEGATIVE_INFINITY : this.timestamps[this.count - 1]!;
  }

  /**
   * Relative offset of the first entry whose max timestamp is ≥ `timestamp`: the batch to start
   * scanning at for "first message at or after this time"; -1 when every entry is older.
   */
  firstAtOrAfter(timestamp: number): number {
    let lo = 0;
    let hi = this.count - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.timestamps[mid]! >= timestamp) {
        found = this.relativeOffsets[mid]!;
        hi = mid - 1;
      } else {
        lo = mid + 1;
      }
    }
    return found;
  }

  truncateToOffset(relativeOffset: number): void {
    while (this.count > 0 && this.relativeOffsets[this.count - 1]! >= relativeOffset) this.count--;
  }

  encode(coveredBytes: number): Buffer {
    const buf = Buffer.allocUnsafe(this.count * 12 + TRAILER_BYTES);
    for (let i = 0; i < this.count; i++) {
      buf.writeBigInt64LE(BigInt(this.timestamps[i]!), i * 12);
      buf.writeUInt32LE(this.relativeOffsets[i]!, i * 12 + 8);
    }
    return writeTrailer(buf, this.count * 12, coveredBytes, this.count);
  }

  static decode(buf: Buffer, coveredBytes: number): TimeIndex | null {
    const count = readTrailer(buf, 12, coveredBytes);
    if (count === null) return null;
    const index = new TimeIndex();
    for (let i = 0; i < count; i++) {
      index.add(Number(buf.readBigInt64LE(i * 12)), buf.readUInt32LE(i * 12 + 8));
    }
    return index.count === count ? index : null;
  }
}

function writeTrailer(buf: Buffer, at: number, coveredBytes: number, count: number): Buffer {
  buf.writeBigUInt64LE(BigInt(coveredBytes), at);
  buf.writeUInt32LE(count, at + 8);
  buf.writeUInt32LE(crc32c(buf.subarray(0, at + 12)), at + 12);
  return buf;
}

function readTrailer(buf: Buffer, entryBytes: number, coveredBytes: number): number | null {
  if (buf.length < TRAILER_BYTES || (buf.length - TRAILER_BYTES) % entryBytes !== 0) return null;
  const at = buf.length - TRAILER_BYTES;
  if (crc32c(buf.subarray(0, at + 12)) !== buf.readUInt32LE(at + 12)) return null;
  if (buf.readBigUInt64LE(at) !== BigInt(coveredBytes)) return null;
  const count = buf.readUInt32LE(at + 8);
  return count * entryBytes === at ? count : null;
}
