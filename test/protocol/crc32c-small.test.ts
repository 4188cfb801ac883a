import { crc32c } from '@node-rs/crc32';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32cHeader, crc32cOf } from '../../src/protocol/crc32c-small.js';

describe('CRC-32C for short inputs', () => {
  it('knows the check value of the catalogue (CRC-32C of "123456789" is 0xE3069283)', () => {
    const text = Buffer.from('123456789');
    expect(crc32cOf(text, 0, text.length)).toBe(0xe3069283);
  });

  it('equals the native implementation for any bytes, offset and length, on both sides of the native cut-over', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.nat(), fc.nat(), (bytes, a, b) => {
        const buf = Buffer.from(bytes);
        const start = buf.length === 0 ? 0 : a % buf.length;
        const end = start + (buf.length - start === 0 ? 0 : b % (buf.length - start + 1));
        expect(crc32cOf(buf, start, end)).toBe(crc32c(buf.subarray(start, end)));
      }),
      { numRuns: 2000 },
    );
  });

  it('the unrolled header CRC equals the general one over 36 bytes at any offset', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 36, maxLength: 100 }), fc.nat(), (bytes, a) => {
        const buf = Buffer.from(bytes);
        const at = a % (buf.length - 35);
        expect(crc32cHeader(buf, at)).toBe(crc32c(buf.subarray(at, at + 36)));
      }),
      { numRuns: 2000 },
    );
  });
});
