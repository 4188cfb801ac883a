// CRC-32C (Castagnoli) in JavaScript for short inputs such as the 36 covered bytes of a frame
// header: for a few dozen bytes a table loop beats the native call's fixed overhead (measured in
// bench/frame-decode.ts). Longer inputs go to the native @node-rs/crc32, which is far faster there.

import { crc32c } from '@node-rs/crc32';

const TABLE = new Int32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
  TABLE[n] = c;
}

/** Below this length the table loop is used. */
const NATIVE_FROM = 64;

export function crc32cOf(buf: Buffer, start: number, end: number): number {
  if (end - start >= NATIVE_FROM) return crc32c(buf.subarray(start, end));
  let c = -1;
  for (let i = start; i < end; i++) c = TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}
