// Little-endian payload writer for command codecs: grows geometrically, writes in place, and hands
// out the written bytes as one view. Strings are u16-length-prefixed UTF-8, byte strings u32-prefixed.

export class BinaryWriter {
  private buffer: Buffer;
  private length = 0;

  constructor(initialCapacity = 256) {
    this.buffer = Buffer.allocUnsafe(initialCapacity);
  }

  private ensure(extra: number): void {
    const needed = this.length + extra;
    if (needed <= this.buffer.length) return;
    let capacity = this.buffer.length * 2;
    while (capacity < needed) capacity *= 2;
    const next = Buffer.allocUnsafe(capacity);
    this.buffer.copy(next, 0, 0, this.length);
    this.buffer = next;
  }

  u8(value: number): this {
    this.ensure(1);
    this.buffer[this.length++] = value;
    return this;
  }

  bool(value: boolean): this {
    return this.u8(value ? 1 : 0);
  }

  u16(value: number): this {
    this.ensure(2);
    this.buffer.writeUInt16LE(value, this.length);
    this.length += 2;
    return this;
  }

  u32(value: number): this {
    this.ensure(4);
    this.buffer.writeUInt32LE(value, this.length);
    this.length += 4;
    return this;
  }

  i32(value: number): this {
    this.ensure(4);
    this.buffer.writeInt32LE(value, this.length);
    this.length += 4;
    return this;
  }

  u64(value: bigint): this {
    this.ensure(8);
    this.buffer.writeBigUInt64LE(value, this.length);
    this.length += 8;
    return this;
  }

  i64(value: bigint): this {
    this.ensure(8);
    this.buffer.writeBigInt64LE(value, this.length);
    this.length += 8;
    return this;
  }

  /** A number that must be an integer in the safe range, sent as i64. */
  int(value: number): this {
    return this.i64(BigInt(value));
  }

  f64(value: number): this {
    this.ensure(8);
    this.buffer.writeDoubleLE(value, this.length);
    this.length += 8;
    return this;
  }

  /** u16 byte length + UTF-8. Throws RangeError past 65,535 bytes (callers validate names first). */
  string(value: string): this {
    const byteLength = Buffer.byteLength(value, 'utf8');
    if (byteLength > 0xffff) throw new RangeError(`string of ${byteLength} bytes exceeds 65535`);
    this.ensure(2 + byteLength);
    this.buffer.writeUInt16LE(byteLength, this.length);
    this.buffer.write(value, this.length + 2, byteLength, 'utf8');
    this.length += 2 + byteLength;
    return this;
  }

  /** u32 length + bytes; null is written as 0xFFFFFFFF. */
  bytes(value: Uint8Array | null): this {
    if (value === null) return this.u32(0xffffffff);
    this.ensure(4 + value.length);
    this.buffer.writeUInt32LE(value.length, this.length);
    this.buffer.set(value, this.length + 4);
    this.length += 4 + value.length;
    return this;
  }

  /** Bytes without a length prefix (the last field of a payload, e.g. a record batch). */
  raw(value: Uint8Array): this {
    this.ensure(value.length);
    this.buffer.set(value, this.length);
    this.length += value.length;
    return this;
  }

  get size(): number {
    return this.length;
  }

  /** The bytes written so far, as a view; the writer must not be used afterwards. */
  finish(): Buffer {
    return this.buffer.subarray(0, this.length);
  }
}
