import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { compressFrameSync, compressSync, decompressFrameSync } from 'lz4-napi';
import { describe, expect, it } from 'vitest';
import { MemoryStreamerError } from '../../src/common/errors.js';
import { compress, decompress } from '../../src/protocol/compression.js';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import { iterateRecords, validateRecordBatch } from '../../src/protocol/record-batch.js';
import { BATCH_HEADER_SIZE } from '../../src/protocol/record-batch-layout.js';
import { xxhash32 } from '../../src/protocol/record-lz4.js';

const FIXTURES = new URL('../fixtures/records/', import.meta.url);

function errorOf(fn: () => unknown): MemoryStreamerError | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof MemoryStreamerError) return error;
    throw error;
  }
  return undefined;
}

function u32le(value: number): Buffer {
  const buf = Buffer.alloc(4);
  buf.writeUInt32LE(value >>> 0);
  return buf;
}

interface FrameOptions {
  independent?: boolean;
  blockChecksums?: boolean;
  contentSize?: bigint;
  /** The inflated content, to write its checksum (FLG bit 2). */
  contentChecksumOf?: Buffer;
  blockSizeId?: number;
  flgBits?: number;
  bdBits?: number;
  headerChecksum?: number;
}

/** An LZ4 frame written here field by field, following the frame format document. */
function frame(
  blocks: ReadonlyArray<{ data: Buffer; stored?: boolean }>,
  options: FrameOptions = {},
): Buffer {
  let flg = 0x40;
  if (options.independent ?? true) flg |= 0x20;
  if (options.blockChecksums) flg |= 0x10;
  if (options.contentSize !== undefined) flg |= 0x08;
  if (options.contentChecksumOf !== undefined) flg |= 0x04;
  flg |= options.flgBits ?? 0;
  const bd = ((options.blockSizeId ?? 4) << 4) | (options.bdBits ?? 0);
  const descriptor = [Buffer.from([flg, bd])];
  if (options.contentSize !== undefined) {
    const size = Buffer.alloc(8);
    size.writeBigUInt64LE(options.contentSize);
    descriptor.push(size);
  }
  const desc = Buffer.concat(descriptor);
  const hc = options.headerChecksum ?? (xxhash32(desc) >>> 8) & 0xff;
  const parts = [u32le(0x184d2204), desc, Buffer.from([hc])];
  for (const block of blocks) {
    parts.push(u32le(block.data.length | (block.stored ? 0x80000000 : 0)), block.data);
    if (options.blockChecksums) parts.push(u32le(xxhash32(block.data)));
  }
  parts.push(u32le(0));
  if (options.contentChecksumOf !== undefined) parts.push(u32le(xxhash32(options.contentChecksumOf)));
  return Buffer.concat(parts);
}

/** A raw LZ4 block from lz4-napi (its size-prepended block without the prefix). */
function rawBlock(data: Buffer): Buffer {
  return compressSync(data).subarray(4);
}

/** A hand-made block of one literal and one long match: inflates to exactly `size` bytes. */
function runBlock(size: number): Buffer {
  let extra = size - 1 - 4 - 15;
  const lengths: number[] = [];
  while (extra >= 255) {
    lengths.push(255);
    extra -= 255;
  }
  lengths.push(extra);
  // token: 1 literal, match length 15 (+ extra bytes); literal 'A'; offset 1; extra; last token.
  return Buffer.from([0x1f, 0x41, 0x01, 0x00, ...lengths, 0x00]);
}

const SAMPLES: Array<[string, Buffer]> = [
  ['one byte', Buffer.from('x')],
  ['compressible text', Buffer.from('the quick brown fox jumps over the lazy dog '.repeat(400))],
  ['random bytes', randomBytes(5000)],
  ['several blocks', Buffer.concat([randomBytes(100_000), Buffer.alloc(200_000, 7), randomBytes(70_000)])],
];

describe('xxhash32', () => {
  it('matches the reference values', () => {
    expect(xxhash32(Buffer.alloc(0))).toBe(0x02cc5d05);
    expect(xxhash32(Buffer.from('a'))).toBe(0x550d7456);
    expect(xxhash32(Buffer.from('abc'))).toBe(0x32d153ff);
    expect(xxhash32(Buffer.from('Nobody inspects the spammish repetition'))).toBe(0xe2293b2f);
  });
});

describe('LZ4 codec (id 3)', () => {
  it.each(SAMPLES)('writes a valid LZ4 frame that an independent frame decoder reads: %s', (_name, data) => {
    const written = compress('lz4', data);
    expect(written.readUInt32LE(0)).toBe(0x184d2204);
    expect(decompressFrameSync(written).equals(data)).toBe(true);
    expect(decompress('lz4', written, data.length).equals(data)).toBe(true);
  });

  it.each(SAMPLES)('reads frames with block and content checksums from lz4-napi: %s', (_name, data) => {
    for (const blockChecksums of [false, true]) {
      for (const contentChecksum of [false, true]) {
        const written = compressFrameSync(data, { blockChecksums, contentChecksum });
        expect(decompress('lz4', written, data.length).equals(data)).toBe(true);
      }
    }
  });

  it('reads whatever lz4-napi compresses: runs of every period and length, in frames and in the older format', () => {
    // Data made of repeated runs: matches of every offset and length, overlapping or not.
    const runs = fc.array(
      fc.record({
        pattern: fc.uint8Array({ minLength: 1, maxLength: 70 }),
        times: fc.integer({ min: 1, max: 300 }),
      }),
      { minLength: 1, maxLength: 12 },
    );
    fc.assert(
      fc.property(runs, (parts) => {
        const data = Buffer.concat(
          parts.flatMap(({ pattern, times }) => Array.from({ length: times }, () => Buffer.from(pattern))),
        );
        expect(decompress('lz4', compressFrameSync(data), data.length).equals(data)).toBe(true);
        expect(decompress('lz4', compressSync(data), data.length).equals(data)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('reads stored blocks, a content size, linked blocks, skippable frames and several frames', () => {
    const first = Buffer.from('0123456789abcdef');
    const linked = frame(
      [
        { data: first, stored: true },
        // No literals, an 8-byte match 8 bytes back (into the previous block), then the last token.
        { data: Buffer.from([0x04, 0x08, 0x00, 0x00]) },
      ],
      { independent: false, contentSize: 24n, contentChecksumOf: Buffer.from('0123456789abcdef89abcdef') },
    );
    expect(decompress('lz4', linked, 1000).toString()).toBe('0123456789abcdef89abcdef');
    const skippable = Buffer.concat([u32le(0x184d2a53), u32le(3), Buffer.from('xyz')]);
    const two = Buffer.concat([
      skippable,
      frame([{ data: rawBlock(Buffer.from('hello ')) }], { blockChecksums: true }),
      frame([{ data: Buffer.from('world'), stored: true }], { blockSizeId: 7 }),
    ]);
    expect(decompress('lz4', two, 1000).toString()).toBe('hello world');
  });

  const good = frame([{ data: rawBlock(Buffer.from('hello hello hello hello')) }]);
  const CORRUPT: Array<[string, Buffer, RegExp]> = [
    ['a header checksum that does not match', frame([], { headerChecksum: 0 }), /header checksum/],
    ['a frame version other than 01', frame([], { flgBits: 0x80 }), /frame version/],
    ['reserved FLG bits', frame([], { flgBits: 0x02 }), /reserved bits/],
    ['reserved BD bits', frame([], { bdBits: 0x01 }), /reserved bits/],
    ['a block size id below 4', frame([], { blockSizeId: 3 }), /block size id 3/],
    ['a dictionary id', Buffer.concat([frame([], { flgBits: 0x01 }), Buffer.alloc(4)]), /dictionary/],
    [
      'a block checksum that does not match',
      (() => {
        const f = frame([{ data: Buffer.from('abc'), stored: true }], { blockChecksums: true });
        f[f.length - 5] = f[f.length - 5]! ^ 1;
        return f;
      })(),
      /block checksum/,
    ],
    [
      'a content checksum that does not match',
      frame([{ data: Buffer.from('abc'), stored: true }], { contentChecksumOf: Buffer.from('abd') }),
      /content checksum/,
    ],
    [
      'a content size that does not match',
      frame([{ data: Buffer.from('abc'), stored: true }], { contentSize: 4n }),
      /its header says 4/,
    ],
    [
      'a block larger than the block size',
      frame([{ data: Buffer.alloc(70_000), stored: true }]),
      /exceeds the frame/,
    ],
    ['a truncated frame', good.subarray(0, good.length - 6), /ends inside/],
    ['no end mark', good.subarray(0, good.length - 4), /ends inside its block size/],
    ['bytes after the frame', Buffer.concat([good, Buffer.from([1, 2, 3])]), /frame ends inside its magic/],
    ['a match before the data', frame([{ data: Buffer.from([0x04, 0x08, 0x00, 0x00]) }]), /reaches before/],
    [
      'a large block with a match before the data (the native decoder refuses it)',
      (() => {
        const block = runBlock(10_000);
        block[2] = 0x02; // offset 2, with one byte written
        return frame([{ data: block }]);
      })(),
      /does not decompress/,
    ],
    [
      'a block that ends after a match',
      frame([{ data: Buffer.from([0x14, 0x41, 0x01, 0x00]) }]),
      /ends after a match/,
    ],
    [
      'a block that inflates past the block size',
      frame([{ data: runBlock(70_000) }]),
      /inflates to more than the frame's 65536-byte block size/,
    ],
  ];

  it.each(CORRUPT)('refuses %s with BAD_RECORD_BATCH', (_name, data, message) => {
    const error = errorOf(() => decompress('lz4', data, 1 << 20));
    expect(error?.code).toBe(ErrorCode.BAD_RECORD_BATCH);
    expect(error?.message).toMatch(message);
  });

  it('enforces the limit exactly', () => {
    const data = randomBytes(1000);
    const written = compress('lz4', data);
    expect(decompress('lz4', written, 1000).equals(data)).toBe(true);
    expect(errorOf(() => decompress('lz4', written, 999))?.code).toBe(ErrorCode.DECOMPRESSED_TOO_LARGE);
  });

  it('refuses a declared content size over the limit before inflating anything', () => {
    const bomb = frame([{ data: Buffer.from('x'), stored: true }], { contentSize: 1n << 40n });
    const error = errorOf(() => decompress('lz4', bomb, 1 << 20));
    expect(error?.code).toBe(ErrorCode.DECOMPRESSED_TOO_LARGE);
    expect(error?.message).toMatch(/1099511627776 bytes, limit 1048576/);
  });

  it('refuses a 1 GiB frame bomb when the limit is reached, without inflating it', () => {
    // 16,384 blocks of 64 KiB each (1 GiB inflated) in about 4 MiB, no content size declared.
    const block = runBlock(64 * 1024);
    const bomb = frame(Array.from({ length: 16_384 }, () => ({ data: block })));
    expect(bomb.length).toBeLessThan(5 << 20);
    const before = process.memoryUsage().arrayBuffers;
    const error = errorOf(() => decompress('lz4', bomb, 1 << 20));
    expect(error?.code).toBe(ErrorCode.DECOMPRESSED_TOO_LARGE);
    // Inflating it whole would have taken 1 GiB; the limit is 1 MiB (and the output doubles to it).
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 << 20);
  });
});

describe('LZ4 data written by older versions (u32 LE length, then one block)', () => {
  it('still reads the committed batch fixture, record for record', () => {
    const batch = Buffer.from(
      readFileSync(new URL('lz4-length-prefixed-block.hex', FIXTURES), 'utf8').trim(),
      'hex',
    );
    const expected = JSON.parse(
      readFileSync(new URL('lz4-length-prefixed-block.expected.json', FIXTURES), 'utf8'),
    ) as unknown[];
    // Not a frame: the records section starts with its inflated length.
    expect(batch.readUInt32LE(BATCH_HEADER_SIZE)).not.toBe(0x184d2204);
    const limits = { maxBatchBytes: 1 << 20, maxDecompressedBytes: 1 << 20 };
    expect(validateRecordBatch(batch, limits).recordCount).toBe(expected.length);
    const records = [...iterateRecords(batch, limits)].map((r) => ({
      offsetDelta: r.offsetDelta,
      timestamp: r.timestamp,
      key: r.key === null ? null : r.key.toString('utf8'),
      value: r.value === null ? null : r.value.toString('utf8'),
      headers: r.headers.map((h) => ({
        key: h.key,
        value: h.value === null ? null : h.value.toString('utf8'),
      })),
    }));
    expect(records).toEqual(expected);
  });

  it.each(SAMPLES)('reads what lz4-napi writes in that format: %s', (_name, data) => {
    expect(decompress('lz4', compressSync(data), data.length).equals(data)).toBe(true);
  });

  it('refuses a declared length over the limit before inflating, and a block that disagrees with it', () => {
    const data = Buffer.alloc(10_000, 1);
    const old = compressSync(data);
    expect(errorOf(() => decompress('lz4', old, 9_999))?.code).toBe(ErrorCode.DECOMPRESSED_TOO_LARGE);
    const short = Buffer.from(old);
    short.writeUInt32LE(10_001, 0);
    expect(errorOf(() => decompress('lz4', short, 1 << 20))?.message).toMatch(
      /inflates to 10000 bytes, its prefix says 10001/,
    );
    const long = Buffer.from(old);
    long.writeUInt32LE(9_000, 0);
    expect(errorOf(() => decompress('lz4', long, 1 << 20))?.message).toMatch(
      /inflates past the 9000 bytes its headers declare/,
    );
  });
});
