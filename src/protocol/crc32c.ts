// The one place the project gets CRC-32C (Castagnoli) from. Prefers our own native addon
// (native/crc32c: the SSE4.2 crc32 instruction in three interleaved chains, 20+ GB/s; see
// docs/native-crc32c.md) and falls back to @node-rs/crc32 (3-5 GB/s) when the addon was not built,
// fails to load, has no hardware CRC on this CPU, or MEMORYSTREAMER_NATIVE_CRC=0. Both give the
// standard CRC-32C (pre/post inversion), so crc32c(b, crc32c(a)) === crc32c(a ‖ b).
// Inputs of a few dozen bytes are cheaper in JavaScript: see crc32c-small.ts.

import { createRequire } from 'node:module';
import { crc32c as nodeRsCrc32c } from '@node-rs/crc32';

interface NativeCrc32c {
  crc32c(data: Uint8Array, initial?: number): number;
  crc32cRange(data: Uint8Array, start: number, end: number, initial?: number): number;
  hardware: boolean;
}

// Relative to this module's own file: src/protocol/crc32c.ts and dist/protocol/crc32c.js both sit two
// levels below the package root, where scripts/build-native.mjs builds the addon.
const ADDON_PATH = '../../native/crc32c/build/Release/memorystreamer_crc32c.node';

function loadNative(): NativeCrc32c | null {
  if (process.env.MEMORYSTREAMER_NATIVE_CRC === '0') return null;
  try {
    const addon = createRequire(import.meta.url)(ADDON_PATH) as NativeCrc32c;
    return addon.hardware === true ? addon : null;
  } catch {
    // Not built (optional: npm install --ignore-scripts, no compiler) or built for another platform.
    return null;
  }
}

const native = loadNative();

/** Which implementation this process uses. */
export const crc32cBackend: 'native' | '@node-rs/crc32' = native === null ? '@node-rs/crc32' : 'native';

/** The @node-rs/crc32 backend with the addon's interface (exported so tests check it in-process). */
export const fallbackCrc32c: Omit<NativeCrc32c, 'hardware'> = {
  crc32c: (data, initial) => nodeRsCrc32c(data, initial),
  crc32cRange: fallbackRange,
};

const backend = native ?? fallbackCrc32c;

/** CRC-32C of `data`, continuing from the finished CRC `initial` (default 0). An unsigned 32-bit number. */
export const crc32c: (data: Uint8Array, initial?: number) => number = backend.crc32c;

/**
 * CRC-32C of data[start, end) without making a view of it; throws a RangeError (code
 * ERR_OUT_OF_RANGE) unless start and end are integers with 0 <= start <= end <= data.length.
 */
export const crc32cRange: (data: Uint8Array, start: number, end: number, initial?: number) => number =
  backend.crc32cRange;

function fallbackRange(data: Uint8Array, start: number, end: number, initial?: number): number {
  // The same checks as the addon, so a caller sees one behaviour whichever backend runs.
  checkPosition('start', start, data.length);
  checkPosition('end', end, data.length);
  if (end < start) throw outOfRange('crc32cRange: end must not be less than start');
  return nodeRsCrc32c(data.subarray(start, end), initial);
}

function checkPosition(name: string, value: number, limit: number): void {
  if (!Number.isInteger(value) || value < 0 || value > limit) {
    throw outOfRange(`crc32cRange: ${name} must be an integer in [0, ${limit}]`);
  }
}

function outOfRange(message: string): RangeError {
  return Object.assign(new RangeError(message), { code: 'ERR_OUT_OF_RANGE' });
}
