// CRC-32C (Castagnoli) in JavaScript for short inputs such as the 36 covered bytes of a frame
// header: for a few dozen bytes a table loop beats the native call's fixed overhead (measured in
// bench/frame-decode.ts). Longer inputs go to the native implementation (crc32c.ts), far faster there.
//
// "Slicing by 8": eight 256-entry tables let one step fold eight input bytes into the CRC with
// eight lookups instead of eight dependent table steps (Intel's slicing-by-8, as in zlib and
// Linux). TABLES[k][n] is the CRC of byte n followed by k zero bytes.

import { crc32cBackend, crc32cRange } from './crc32c.js';

const TABLES: Int32Array[] = Array.from({ length: 8 }, () => new Int32Array(256));
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
  TABLES[0]![n] = c;
}
for (let n = 0; n < 256; n++) {
  let c = TABLES[0]![n]!;
  for (let k = 1; k < 8; k++) {
    c = TABLES[0]![c & 0xff]! ^ (c >>> 8);
    TABLES[k]![n] = c;
  }
}
const [T0, T1, T2, T3, T4, T5, T6, T7] = TABLES as [
  Int32Array,
  Int32Array,
  Int32Array,
  Int32Array,
  Int32Array,
  Int32Array,
  Int32Array,
  Int32Array,
];

/**
 * From this length a native call is faster than the table loop. Measured per call on the 2-core EPYC
 * of docs/native-crc32c.md: our addon (crc32cRange) costs 125-180 ns for anything up to a few hundred
 * bytes, and the loop costs as much at 96-128 bytes; @node-rs/crc32 (with the view it needs) costs
 * ~330 ns, reached by the loop at ~160 bytes.
 */
const NATIVE_FROM = crc32cBackend === 'native' ? 128 : 160;

export function crc32cOf(buf: Uint8Array, start: number, end: number): number {
  if (end - start >= NATIVE_FROM) return crc32cRange(buf, start, end);
  let c = -1;
  let i = start;
  for (; i + 8 <= end; i += 8) c = step8(c, buf, i);
  for (; i < end; i++) c = T0[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/** One slicing-by-8 step: the CRC `c` after the eight bytes at `i`. */
function step8(c: number, buf: Uint8Array, i: number): number {
  const low = c ^ (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24));
  const high = buf[i + 4]! | (buf[i + 5]! << 8) | (buf[i + 6]! << 16) | (buf[i + 7]! << 24);
  return (
    T7[low & 0xff]! ^
    T6[(low >>> 8) & 0xff]! ^
    T5[(low >>> 16) & 0xff]! ^
    T4[low >>> 24]! ^
    T3[high & 0xff]! ^
    T2[(high >>> 8) & 0xff]! ^
    T1[(high >>> 16) & 0xff]! ^
    T0[high >>> 24]!
  );
}

/**
 * CRC-32C of the 36 bytes at `at` (a frame header without its CRC field), unrolled: four
 * eight-byte steps and one four-byte step. Equal to crc32cOf(buf, at, at + 36).
 */
export function crc32cHeader(buf: Buffer, at: number): number {
  let c = step8(step8(step8(step8(-1, buf, at), buf, at + 8), buf, at + 16), buf, at + 24);
  c ^= buf[at + 32]! | (buf[at + 33]! << 8) | (buf[at + 34]! << 16) | (buf[at + 35]! << 24);
  c = T3[c & 0xff]! ^ T2[(c >>> 8) & 0xff]! ^ T1[(c >>> 16) & 0xff]! ^ T0[c >>> 24]!;
  return (c ^ -1) >>> 0;
}
