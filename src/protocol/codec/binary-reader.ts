// Bounds-checked little-endian payload reader, the mirror of binary-writer.ts. Every read checks the
// remaining bytes first, so a declared length or count can never make it allocate or read past the
// payload: errors are MALFORMED_PAYLOAD with the offset, what was needed and what was left.

import { errorOf } from '../error-codes.js';

export class BinaryReader {
  private offset = 0;

  constructor(private readonly buffer: Buffer) {}

  get remaining(): number {
    return this.buffer.length - this.offset;
  }

  get position(): number {
    return this.offset;
  }

  private need(count: number, what: string): number {
    if (count > this.buffer.length - this.offset) {
      throw errorOf(
        'MALFORMED_PAYLOAD',
        `unexpected end at offset ${this.offset} reading ${what}, need ${count}, have ${this.buffer.length - this.offset}`,
      );
    }
    const at = this.offset;
    this.offset += count;
    return at;
  }

  u8(): number {
    return this.buffer[this.need(1, 'u8')]!;
  }

  bool(): boolean {
    const value = this.u8();
    if (value > 1) throw errorOf('MALFORMED_PAYLOAD', `boolean at offset ${this.offset - 1} is ${value}`);
    return value === 1;
  }

  u16(): number {
    return this.buffer.readUInt16LE(this.need(2, 'u16'));
  }

  u32(): number {
    return this.buffer.readUInt32LE(this.need(4, 'u32'));
  }

  i32(): number {
    return this.buffer.readInt32LE(this.need(4, 'i32'));
  }

  u64(): bigint {
    return this.buffer.readBigUInt64LE(this.need(8, 'u64'));
  }

  i64(): bigint {
    return this.buffer.readBigInt64LE(this.need(8, 'i64'));
  }

  /** An i64 that must fit a safe integer (counts, milliseconds). */
  int(): number {
    const at = this.offset;
    const value = this.i64();
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw errorOf('MALFORMED_PAYLOAD', `integer at offset ${at} is out of the safe range`);
    }
    return Number(value);
  }

  f64(): number {
    return this.buffer.readDoubleLE(this.need(8, 'f64'));
  }

  string(): string {
    const length = this.u16();
    const at = this.need(length, 'string');
    return this.buffer.toString('utf8', at, at + length);
  }

  /** A view of the bytes (no copy), or null. */
  bytes(): Buffer | null {
    const length = this.u32();
    if (length === 0xffffffff) return null;
    const at = this.need(length, 'bytes');
    return this.buffer.subarray(at, at + length);
  }

  /** The rest of the payload as a view. */
  rest(): Buffer {
    const at = this.offset;
    this.offset = this.buffer.length;
    return this.buffer.subarray(at);
  }

  /**
   * An element count, checked against the bytes left: each element takes at least
   * `minElementBytes`, so a declared count of 2^32-1 fails here instead of allocating.
   */
  count(minElementBytes: number): number {
    const at = this.offset;
    const value = this.u32();
    if (value * minElementBytes > this.remaining) {
      throw errorOf(
        'MALFORMED_PAYLOAD',
        `count ${value} at offset ${at} exceeds the ${this.remaining} bytes left`,
      );
    }
    return value;
  }

  /** Asserts the payload was consumed exactly; trailing bytes are a malformed payload. */
  end(): void {
    if (this.offset !== this.buffer.length) {
      throw errorOf(
        'MALFORMED_PAYLOAD',
        `${this.buffer.length - this.offset} unexpected trailing bytes at offset ${this.offset}`,
      );
    }
  }
}
