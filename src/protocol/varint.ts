// Zigzag varints as Kafka's record format uses them (protobuf's sint32/sint64 encoding): small
// magnitudes take one byte whatever their sign. Values are JS numbers within the safe-integer range.

import { errorOf } from './error-codes.js';

function zigzag(value: number): number {
  if (value >= -0x40000000 && value < 0x40000000) return ((value << 1) ^ (value >> 31)) >>> 0;
  return value >= 0 ? value * 2 : -value * 2 - 1;
}

function unzigzag(value: number): number {
  if (value <= 0xffffffff) return (value >>> 1) ^ -(value & 1);
  return value % 2 === 0 ? value / 2 : -(value + 1) / 2;
}

/** Bytes that writeVarint will use for `value`. */
export function varintSize(value: number): number {
  // Lengths and deltas: small non-negative numbers, and -1 for null.
  if (value >= -64 && value < 64) return 1;
  if (value >= -8192 && value < 8192) return 2;
  let u = zigzag(value);
  let size = 1;
  while (u >= 0x80) {
    u = Math.floor(u / 128);
    size++;
  }
  return size;
}

/** Writes `value` zigzag-encoded at `at`; returns the offset after it. */
export function writeVarint(buf: Buffer, at: number, value: number): number {
  // Lengths and deltas: small non-negative numbers, and -1 for null; zigzag inline for them.
  if (value >= -8192 && value < 8192) {
    const small = value >= 0 ? value << 1 : (-value << 1) - 1;
    if (small < 0x80) {
      buf[at] = small;
      return at + 1;
    }
    buf[at] = (small & 0x7f) | 0x80;
    buf[at + 1] = small >>> 7;
    return at + 2;
  }
  let u = zigzag(value);
  while (u >= 0x80) {
    buf[at++] = (u & 0x7f) | 0x80;
    u = u < 0x100000000 ? u >>> 7 : Math.floor(u / 128);
  }
  buf[at++] = u;
  return at;
}

/**
 * A read position over a buffer region, for varint-heavy decoding without allocating a result
 * object per value. Every read is bounded by `end`: overruns are BAD_RECORD_BATCH.
 */
export class VarintCursor {
  constructor(
    public buf: Buffer,
    public pos: number,
    public end: number,
  ) {}

  varint(): number {
    // Most varints of a record are one or two bytes (lengths under 64 and 8,192): read those
    // without the general loop's float arithmetic.
    const buf = this.buf;
    const pos = this.pos;
    if (pos + 1 < this.end) {
      const first = buf[pos]!;
      if (first < 0x80) {
        this.pos = pos + 1;
        return (first >>> 1) ^ -(first & 1);
      }
      const second = buf[pos + 1]!;
      if (second < 0x80) {
        const raw = (first & 0x7f) | (second << 7);
        this.pos = pos + 2;
        return (raw >>> 1) ^ -(raw & 1);
      }
    }
    return this.longVarint();
  }

  /** A varint of any width up to 10 bytes, or one that ends at `end`. */
  private longVarint(): number {
    let result = 0;
    let multiplier = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end)
        throw errorOf('BAD_RECORD_BATCH', `varint runs past the end at offset ${this.pos}`);
      const byte = this.buf[this.pos++]!;
      result += (byte & 0x7f) * multiplier;
      if ((byte & 0x80) === 0) {
        if (result > Number.MAX_SAFE_INTEGER)
          throw errorOf('BAD_RECORD_BATCH', `varint too large at offset ${this.pos}`);
        return unzigzag(result);
      }
      multiplier *= 128;
    }
    throw errorOf('BAD_RECORD_BATCH', `varint longer than 10 bytes at offset ${this.pos}`);
  }

  /** Steps over one byte (a record's attributes, which readers do not use). */
  skipByte(): void {
    if (this.pos >= this.end)
      throw errorOf('BAD_RECORD_BATCH', `record runs past the end at offset ${this.pos}`);
    this.pos++;
  }

  /** A varint length (-1 = null) followed by that many bytes, returned as a view. */
  bytesOrNull(): Buffer | null {
    const length = this.varint();
    if (length === -1) return null;
    if (length < -1 || length > this.end - this.pos) {
      throw errorOf('BAD_RECORD_BATCH', `field length ${length} at offset ${this.pos} exceeds the record`);
    }
    const view = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return view;
  }

  /**
   * Enters record `index` of a records section that ends at `sectionEnd` (the cursor at its length
   * varint): checks the length against the section, bounds the cursor by the record's end and steps
   * over its attributes byte. Returns the record's end; the timestamp delta comes next.
   */
  enterRecord(index: number, sectionEnd: number): number {
    this.end = sectionEnd;
    const length = this.varint();
    const end = this.pos + length;
    if (length < 0 || end > sectionEnd)
      throw errorOf('BAD_RECORD_BATCH', `record ${index} length ${length} exceeds the batch`);
    this.end = end;
    this.skipByte();
    return end;
  }

  /** Skips a varint-length-prefixed field without creating a view; returns its length (-1 = null). */
  skipBytes(): number {
    const length = this.varint();
    if (length === -1) return -1;
    if (length < -1 || length > this.end - this.pos) {
      throw errorOf('BAD_RECORD_BATCH', `field length ${length} at offset ${this.pos} exceeds the record`);
    }
    this.pos += length;
    return length;
  }
}
