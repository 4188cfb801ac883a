// Child process for test/protocol/crc32c.test.ts: prints, as one JSON line, which CRC-32C backend
// src/protocol/crc32c.ts chose in this process (the parent sets MEMORYSTREAMER_NATIVE_CRC), the CRCs
// of a fixed set of inputs, and how a bad range is rejected, so the parent can compare backends.
import { crc32c, crc32cBackend, crc32cRange } from '../../../src/protocol/crc32c.js';

/** Deterministic bytes (the parent builds the same ones). */
export function patternBytes(length: number): Buffer {
  const buf = Buffer.alloc(length);
  for (let i = 0; i < length; i++) buf[i] = (i * 131 + (i >>> 7) * 17) & 0xff;
  return buf;
}

export const CHILD_LENGTHS = [
  0, 1, 7, 8, 9, 100, 191, 192, 767, 768, 769, 3072, 12_287, 12_288, 12_289, 100_000,
];

function rejection(f: () => number): string {
  try {
    f();
    return 'accepted';
  } catch (error) {
    return `${(error as Error).name} ${(error as { code?: string }).code}`;
  }
}

if (process.argv[1]?.endsWith('crc32c-backend.ts')) {
  const big = patternBytes(100_003);
  const values = CHILD_LENGTHS.map((length) => ({
    length,
    crc: crc32c(big.subarray(3, 3 + length)),
    chained: crc32c(big.subarray(3, 3 + length), 0x12345678),
    range: crc32cRange(big, 3, 3 + length, 0xfedcba98),
  }));
  const badRange = rejection(() => crc32cRange(big, 10, 5));
  process.stdout.write(`${JSON.stringify({ backend: crc32cBackend, values, badRange })}\n`);
}
