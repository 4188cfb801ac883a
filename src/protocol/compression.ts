// Per-batch compression of the records section (Kafka attributes bits 0-2). The broker never
// recompresses; it inflates only to validate or index, and always under a hard output limit that is
// enforced before or during inflation, never after: a decompression bomb is refused, not inflated.
//
// Codec framing inside the batch (docs/protocol.md, "Compression"):
//   gzip   RFC 1952 member(s)                      limit via zlib maxOutputLength
//   snappy raw Snappy block; its varint preamble holds the inflated length: checked first
//   lz4    LZ4 frames (magic 0x184D2204), as Kafka's RecordBatch v2 defines codec 3: sized from
//          their block and sequence headers first (refused once the size passes the limit), then
//          inflated into one buffer of that size (record-lz4.ts). Still read: what older versions
//          wrote, one LZ4 block behind its u32 little-endian inflated length (checked first); the
//          frame magic tells the two apart
//   zstd   Zstandard frame(s); inflated with a streaming context into a buffer capped at the limit

import { gunzipSync, gzipSync, constants as zlibConstants } from 'node:zlib';
import { compressFrameSync as lz4CompressFrame } from 'lz4-napi';
import { compressSync as snappyCompress, uncompressSync as snappyUncompress } from 'snappy';
import { compress as zstdCompress } from 'zstd-napi';
import zstdBinding from 'zstd-napi/binding.js';
import { errorOf } from './error-codes.js';
import { decompressLz4Records } from './record-lz4.js';

export const CompressionCodec = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const;
export type CompressionCodecName = keyof typeof CompressionCodec;
export type CompressionCodecId = (typeof CompressionCodec)[CompressionCodecName];

const NAMES: readonly CompressionCodecName[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

export function codecName(id: number): CompressionCodecName {
  const name = NAMES[id];
  if (name === undefined) throw errorOf('UNSUPPORTED_COMPRESSION', `codec id ${id}`);
  return name;
}

export function isCodecName(value: unknown): value is CompressionCodecName {
  return typeof value === 'string' && (NAMES as readonly string[]).includes(value);
}

export function compress(codec: CompressionCodecName, data: Buffer): Buffer {
  switch (codec) {
    case 'none':
      return data;
    case 'gzip':
      return gzipSync(data, { level: 6 });
    case 'snappy':
      return snappyCompress(data);
    case 'lz4':
      // lz4-napi's frame writer: independent 64 KiB blocks, no checksums (Kafka's defaults).
      return lz4CompressFrame(data);
    case 'zstd':
      return zstdCompress(data, { compressionLevel: 3 });
  }
}

function tooLarge(codec: string, declared: number | string, limit: number): never {
  throw errorOf('DECOMPRESSED_TOO_LARGE', `${codec} block inflates to ${declared} bytes, limit ${limit}`);
}

function corrupt(codec: string, cause: unknown): never {
  throw errorOf('BAD_RECORD_BATCH', `${codec} data does not decompress`, { cause });
}

/** Reads Snappy's varint preamble (the inflated length) without inflating anything. */
function snappyDeclaredLength(data: Buffer): number {
  let result = 0;
  let shift = 0;
  for (let i = 0; i < 5 && i < data.length; i++) {
    const byte = data[i]!;
    result += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return result;
    shift += 7;
  }
  throw errorOf('BAD_RECORD_BATCH', 'snappy preamble is truncated');
}

function inflateZstd(data: Buffer, limit: number): Buffer {
  const context = new zstdBinding.DCtx();
  // One byte over the limit tells "exactly at the limit" apart from "would go past it".
  const output = Buffer.allocUnsafe(Math.min(limit + 1, Math.max(1024, data.length * 8)));
  let target = output;
  let produced = 0;
  let consumed = 0;
  for (;;) {
    let result: [number, number, number];
    try {
      result = context.decompressStream(target.subarray(produced), data.subarray(consumed));
    } catch (cause) {
      corrupt('zstd', cause);
    }
    const [remaining, wrote, read] = result;
    produced += wrote;
    consumed += read;
    if (produced > limit) tooLarge('zstd', `more than ${limit}`, limit);
    if (remaining === 0 && consumed >= data.length) return target.subarray(0, produced);
    if (wrote === 0 && read === 0 && produced < target.length) {
      throw errorOf('BAD_RECORD_BATCH', 'zstd data is truncated');
    }
    if (produced === target.length) {
      const grown = Buffer.allocUnsafe(Math.min(limit + 1, target.length * 2));
      target.copy(grown, 0, 0, produced);
      target = grown;
    }
  }
}

function inflateGzip(data: Buffer, limit: number): Buffer {
  try {
    return gunzipSync(data, { maxOutputLength: limit });
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
      tooLarge('gzip', `more than ${limit}`, limit);
    if ((cause as { errno?: number }).errno === zlibConstants.Z_BUF_ERROR) {
      throw errorOf('BAD_RECORD_BATCH', 'gzip data is truncated', { cause });
    }
    corrupt('gzip', cause);
  }
}

function inflateSnappy(data: Buffer, limit: number): Buffer {
  const declared = snappyDeclaredLength(data);
  if (declared > limit) tooLarge('snappy', declared, limit);
  try {
    return snappyUncompress(data, { asBuffer: true }) as Buffer;
  } catch (cause) {
    corrupt('snappy', cause);
  }
}

/** Inflates `data` compressed with `codec`, refusing to produce more than `limit` bytes. */
export function decompress(codec: CompressionCodecName, data: Buffer, limit: number): Buffer {
  switch (codec) {
    case 'none':
      if (data.length > limit) tooLarge('uncompressed', data.length, limit);
      return data;
    case 'gzip':
      return inflateGzip(data, limit);
    case 'snappy':
      return inflateSnappy(data, limit);
    case 'lz4':
      return decompressLz4Records(data, limit);
    case 'zstd':
      return inflateZstd(data, limit);
  }
}
