// Zigzag varints: what writeVarint writes, varintSize predicts and VarintCursor reads back, across
// the one- and two-byte fast paths' edges and the whole safe-integer range.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VarintCursor, varintSize, writeVarint } from '../../src/protocol/varint.js';

function roundTrip(value: number): { size: number; written: number; read: number } {
  const buf = Buffer.alloc(16, 0xff);
  const written = writeVarint(buf, 3, value) - 3;
  const cursor = new VarintCursor(buf, 3, 3 + written);
  const read = cursor.varint();
  expect(cursor.pos).toBe(3 + written);
  return { size: varintSize(value), written, read };
}

describe('zigzag varints', () => {
  it('round-trip at every width edge, with the size predicted', () => {
    const edges = [
      0,
      -1,
      1,
      63,
      -64,
      64,
      -65,
      8191,
      -8192,
      8192,
      -8193,
      2 ** 20,
      -(2 ** 20),
      2 ** 31 - 1,
      -(2 ** 31),
    ];
    const widths: Record<number, number> = {
      0: 1,
      [-1]: 1,
      63: 1,
      [-64]: 1,
      64: 2,
      [-65]: 2,
      8191: 2,
      [-8192]: 2,
      8192: 3,
      [-8193]: 3,
    };
    for (const value of [...edges, Number.MAX_SAFE_INTEGER >> 1, -(2 ** 40)]) {
      const { size, written, read } = roundTrip(value);
      expect(read).toBe(value);
      expect(written).toBe(size);
      if (widths[value] !== undefined) expect(written).toBe(widths[value]);
    }
  });

  it('round-trip any integer of the int32 range and of [−2^52, 2^52) (zigzag doubles: the reader refuses past 2^53)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer(), fc.integer({ min: -(2 ** 52), max: 2 ** 52 - 1 })), (value) => {
        const { size, written, read } = roundTrip(value);
        expect(read).toBe(value);
        expect(written).toBe(size);
      }),
      { numRuns: 3000 },
    );
  });
});
