import { describe, expect, it } from 'vitest';
import { readInt64, readInt64AsNumber, writeInt64 } from '../../src/protocol/record-batch-layout.js';

// The 64-bit header fields are read and written as two 32-bit halves where they are safe integers;
// they must agree with Buffer's own BigInt codec on every value, inside the fast range and outside.
const edges = [
  0n,
  1n,
  -1n,
  0xffffffffn,
  0x100000000n,
  -0x100000000n,
  -0x100000001n,
  (1n << 53n) - 1n,
  -(1n << 53n) + 1n,
  1n << 53n,
  -(1n << 53n),
  (0x200000n << 32n) - 1n, // the largest with |high| < 2^21
  0x200000n << 32n, // the first read through Buffer.readBigInt64BE
  -(0x200000n << 32n),
  -(0x200000n << 32n) - 1n,
  (1n << 63n) - 1n,
  -(1n << 63n),
  1_764_892_800_123n, // a timestamp in ms
];

describe('64-bit header fields', () => {
  it('reads what Buffer.writeBigInt64BE wrote, and writes what Buffer.readBigInt64BE reads', () => {
    const random = Array.from({ length: 2_000 }, (_, i) => {
      const bytes = Buffer.alloc(8);
      for (let b = 0; b < 8; b++) bytes[b] = (i * 2_654_435_761 + b * 40_503) & 0xff;
      return bytes.readBigInt64BE(0);
    });
    for (const value of [...edges, ...random]) {
      const written = Buffer.alloc(12, 0xee);
      written.writeBigInt64BE(value, 2);
      expect(readInt64(written, 2)).toBe(value);
      const ours = Buffer.alloc(12, 0xee);
      writeInt64(ours, value, 2);
      expect(ours.equals(written)).toBe(true);
      expect(readInt64AsNumber(written, 2)).toBe(Number(value));
      if (Number.isSafeInteger(Number(value)) && BigInt(Number(value)) === value) {
        // The same value given as a number is written the same.
        const asNumber = Buffer.alloc(12, 0xee);
        writeInt64(asNumber, Number(value), 2);
        expect(asNumber.equals(written)).toBe(true);
      }
    }
  });

  it('refuses a value that does not fit 64 bits, as Buffer does', () => {
    expect(() => writeInt64(Buffer.alloc(8), 1n << 63n, 0)).toThrow(RangeError);
    expect(() => writeInt64(Buffer.alloc(8), -(1n << 63n) - 1n, 0)).toThrow(RangeError);
    expect(() => writeInt64(Buffer.alloc(8), 1.5, 0)).toThrow(RangeError);
  });
});
