import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { crc32c as reference } from '@node-rs/crc32';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32c, crc32cBackend, crc32cRange, fallbackCrc32c } from '../../src/protocol/crc32c.js';
import { CHILD_LENGTHS, patternBytes } from './helpers/crc32c-backend.js';

// The addon's round sizes (native/crc32c/crc32c.c): three chains of 4096, 1024, 256, then 64 bytes,
// then one chain 8 bytes at a time, then single bytes. Lengths around every combination of these
// boundaries exercise each path and each hand-over between them.
const ROUNDS = [3 * 4096, 3 * 1024, 3 * 256, 3 * 64];

function boundaryLengths(): number[] {
  const lengths = new Set<number>();
  for (let a = 0; a <= 2; a++) {
    for (let b = 0; b <= 4; b++) {
      for (let c = 0; c <= 4; c++) {
        for (let d = 0; d <= 4; d++) {
          const base = a * ROUNDS[0]! + b * ROUNDS[1]! + c * ROUNDS[2]! + d * ROUNDS[3]!;
          for (const extra of [-9, -8, -7, -1, 0, 1, 7, 8, 9, 63, 64, 65]) {
            if (base + extra >= 0) lengths.add(base + extra);
          }
        }
      }
    }
  }
  for (let length = 0; length <= 64; length++) lengths.add(length);
  return [...lengths].sort((x, y) => x - y);
}

describe('CRC-32C', () => {
  it('uses the native addon in CI (where scripts/build-native.mjs --require built it)', () => {
    if (process.env.CI === 'true') expect(crc32cBackend).toBe('native');
    else expect(['native', '@node-rs/crc32']).toContain(crc32cBackend);
  });

  it('knows the catalogue check values', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(new Uint8Array(0))).toBe(0);
    expect(crc32c(new Uint8Array(0), 0xdeadbeef)).toBe(0xdeadbeef);
  });

  it('equals @node-rs/crc32 at every round boundary and either side of it, at any alignment', () => {
    const big = randomBytes(3 * ROUNDS[0]! + 5 * (ROUNDS[1]! + ROUNDS[2]! + ROUNDS[3]!) + 100);
    for (const length of boundaryLengths()) {
      for (const offset of [0, 1, 3, 5, 8]) {
        const view = big.subarray(offset, offset + length);
        expect(crc32c(view)).toBe(reference(view));
        expect(crc32cRange(big, offset, offset + length)).toBe(reference(view));
      }
    }
  });

  it('equals @node-rs/crc32 for random lengths up to 300 KiB, offsets and initial values', () => {
    const big = randomBytes(300 * 1024 + 64);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 300 * 1024 }),
        fc.integer({ min: 0, max: 63 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        (length, offset, initial) => {
          const view = big.subarray(offset, offset + length);
          const expected = reference(view, initial);
          expect(crc32c(view, initial)).toBe(expected);
          expect(crc32cRange(big, offset, offset + length, initial)).toBe(expected);
          // A plain Uint8Array view (not a Buffer) of the same bytes.
          expect(crc32c(new Uint8Array(big.buffer, big.byteOffset + offset, length), initial)).toBe(expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('chains: the CRC of a ‖ b continues from the CRC of a', () => {
    const big = randomBytes(40_000);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 40_000 }), fc.integer({ min: 0, max: 40_000 }), (x, y) => {
        const [from, to] = x <= y ? [x, y] : [y, x];
        const whole = crc32c(big.subarray(from, to));
        for (const cut of [from, Math.floor((from + to) / 2), to]) {
          expect(crc32c(big.subarray(cut, to), crc32c(big.subarray(from, cut)))).toBe(whole);
          expect(crc32cRange(big, cut, to, crc32cRange(big, from, cut))).toBe(whole);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('returns an unsigned 32-bit number', () => {
    for (let i = 0; i < 64; i++) {
      const value = crc32c(randomBytes(i * 37));
      expect(Number.isInteger(value) && value >= 0 && value <= 0xffffffff).toBe(true);
    }
  });

  it('rejects ranges outside the data, reversed or not integers', () => {
    const data = randomBytes(100);
    const bad: [number, number][] = [
      [-1, 10],
      [0, 101],
      [101, 101],
      [10, 5],
      [1.5, 10],
      [0, Number.NaN],
      [0, Number.POSITIVE_INFINITY],
    ];
    // Both backends, in this process: the one in use and the fallback's own range checks.
    for (const range of [crc32cRange, fallbackCrc32c.crc32cRange]) {
      for (const [start, end] of bad) {
        expect(() => range(data, start, end)).toThrow(RangeError);
        try {
          range(data, start, end);
        } catch (error) {
          expect((error as { code?: string }).code).toBe('ERR_OUT_OF_RANGE');
        }
      }
      expect(range(data, 100, 100)).toBe(0);
      expect(range(data, 0, 100)).toBe(reference(data));
      expect(range(data, 13, 77, 0x1234)).toBe(crc32c(data.subarray(13, 77), 0x1234));
    }
    expect(fallbackCrc32c.crc32c(data, 99)).toBe(crc32c(data, 99));
  });

  it('falls back to @node-rs/crc32 with MEMORYSTREAMER_NATIVE_CRC=0, with the same values and errors', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'test/protocol/helpers/crc32c-backend.ts'],
      { env: { ...process.env, MEMORYSTREAMER_NATIVE_CRC: '0' } },
    );
    const child = JSON.parse(stdout) as {
      backend: string;
      values: { length: number; crc: number; chained: number; range: number }[];
      badRange: string;
    };
    expect(child.backend).toBe('@node-rs/crc32');
    const big = patternBytes(100_003);
    expect(child.values.map((v) => v.length)).toEqual(CHILD_LENGTHS);
    for (const { length, crc, chained, range } of child.values) {
      const view = big.subarray(3, 3 + length);
      expect(crc).toBe(crc32c(view));
      expect(chained).toBe(crc32c(view, 0x12345678));
      expect(range).toBe(crc32cRange(big, 3, 3 + length, 0xfedcba98));
    }
    let here = 'accepted';
    try {
      crc32cRange(big, 10, 5);
    } catch (error) {
      here = `${(error as Error).name} ${(error as { code?: string }).code}`;
    }
    expect(child.badRange).toBe(here);
  });
});
