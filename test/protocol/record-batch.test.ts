import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { compressSync as lz4Compress } from 'lz4-napi';
import { compressSync as snappyCompress } from 'snappy';
import { describe, expect, it } from 'vitest';
import { compress as zstdCompress } from 'zstd-napi';
import { MemoryStreamerError } from '../../src/common/errors.js';
import { compress, decompress } from '../../src/protocol/compression.js';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import {
  decodeRecordBatch,
  encodeRecordBatch,
  forEachKey,
  iterateRecords,
  RecordBatchBuilder,
  type RecordInput,
  splitBatches,
  validateRecordBatch,
} from '../../src/protocol/record-batch.js';
import {
  BATCH_HEADER_SIZE,
  readBatchHeader,
  writeBaseOffset,
} from '../../src/protocol/record-batch-layout.js';
import { VarintCursor, varintSize, writeVarint } from '../../src/protocol/varint.js';

const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
const limits = { maxBatchBytes: 1 << 24, maxDecompressedBytes: 1 << 24 };

function codeOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof MemoryStreamerError) return error.code;
    throw error;
  }
  return undefined;
}

const recordArb: fc.Arbitrary<RecordInput> = fc.record({
  key: fc.option(
    fc.oneof(
      fc.string(),
      fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
    ),
    { nil: null },
  ),
  value: fc.option(
    fc.oneof(
      fc.string({ unit: 'grapheme' }),
      fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
    ),
    {
      nil: null,
    },
  ),
  headers: fc.array(
    fc.record({ key: fc.string({ maxLength: 10 }), value: fc.option(fc.string(), { nil: null }) }),
    {
      maxLength: 3,
    },
  ),
  timestamp: fc.integer({ min: 1_600_000_000_000, max: 1_900_000_000_000 }),
});

function asBuffer(value: RecordInput['value'] | undefined): Buffer | null {
  if (value === null || value === undefined) return null;
  return typeof value === 'string' ? Buffer.from(value) : Buffer.from(value);
}

describe('varint', () => {
  it('round-trips boundary values and reports sizes', () => {
    const values = [
      0,
      -1,
      1,
      63,
      -64,
      64,
      2 ** 31 - 1,
      -(2 ** 31),
      2 ** 40,
      -(2 ** 40),
      Number.MAX_SAFE_INTEGER >> 1,
    ];
    const buf = Buffer.alloc(200);
    let at = 0;
    for (const v of values) {
      const next = writeVarint(buf, at, v);
      expect(next - at).toBe(varintSize(v));
      at = next;
    }
    const cursor = new VarintCursor(buf, 0, at);
    expect(values.map(() => cursor.varint())).toEqual(values);
    expect(varintSize(-1)).toBe(1);
    expect(codeOf(() => new VarintCursor(Buffer.from([0x80, 0x80]), 0, 2).varint())).toBe(
      ErrorCode.BAD_RECORD_BATCH,
    );
    expect(codeOf(() => new VarintCursor(Buffer.alloc(11, 0xff), 0, 11).varint())).toBe(
      ErrorCode.BAD_RECORD_BATCH,
    );
  });
});

describe('record batches', () => {
  it('match the byte layout of the Kafka v2 specification', () => {
    const batch = encodeRecordBatch([{ key: 'k', value: 'v', timestamp: 1000 }], {
      baseTimestamp: 1000,
      producerId: 5n,
      producerEpoch: 1,
      baseSequence: 0,
    });
    // header(61) + record: length=8 (zigzag 16=0x10), attrs 0, tsDelta 0, offDelta 0, keyLen 1 (0x02), 'k',
    // valueLen 1 (0x02), 'v', headers 0
    expect(batch.subarray(BATCH_HEADER_SIZE).toString('hex')).toBe('10000000026b' + '02' + '76' + '00');
    const header = readBatchHeader(batch);
    expect(header).toMatchObject({
      magic: 2,
      recordCount: 1,
      lastOffsetDelta: 0,
      producerId: 5n,
      producerEpoch: 1,
      baseSequence: 0,
    });
    expect(header.batchLength).toBe(batch.length - 12);
    expect(batch.readInt8(16)).toBe(2);
  });

  it.each(CODECS)('round-trips records with %s compression', (codec) => {
    fc.assert(
      fc.property(fc.array(recordArb, { minLength: 1, maxLength: 30 }), (records) => {
        const batch = encodeRecordBatch(records, { compression: codec, baseOffset: 100n });
        validateRecordBatch(batch, limits);
        const decoded = decodeRecordBatch(batch, limits).records;
        expect(decoded.map((r) => r.offset)).toEqual(records.map((_, i) => 100n + BigInt(i)));
        expect(decoded.map((r) => r.key)).toEqual(records.map((r) => asBuffer(r.key)));
        expect(decoded.map((r) => r.value)).toEqual(records.map((r) => asBuffer(r.value)));
        expect(decoded.map((r) => r.timestamp)).toEqual(records.map((r) => r.timestamp));
        expect(decoded.map((r) => r.headers)).toEqual(
          records.map((r) => (r.headers ?? []).map((h) => ({ key: h.key, value: asBuffer(h.value) }))),
        );
        const keys: (Buffer | null)[] = [];
        forEachKey(batch, limits, (key) => keys.push(key === null ? null : Buffer.from(key)));
        expect(keys).toEqual(records.map((r) => asBuffer(r.key)));
      }),
      { numRuns: 60 },
    );
  });

  it('builds batches record by record like the one-shot encoder', () => {
    const builder = new RecordBatchBuilder(64);
    const records = Array.from({ length: 500 }, (_, i) => ({
      key: `k${i % 7}`,
      value: 'x'.repeat(i % 50),
      timestamp: 5000 + i,
    }));
    for (const r of records) builder.append(r);
    expect(builder.count).toBe(500);
    expect(builder.estimate(records[0]!)).toBeGreaterThan(0);
    const built = builder.finish({ producerId: 1n, producerEpoch: 0, baseSequence: 0 });
    const encoded = encodeRecordBatch(records, { producerId: 1n, producerEpoch: 0, baseSequence: 0 });
    expect(built.equals(encoded)).toBe(true);
    expect(builder.count).toBe(0);
    expect(() => builder.finish()).toThrow(/at least one record/);
    builder.append({ value: 'again' });
    const lz4 = builder.finish({ compression: 'lz4' });
    expect([...iterateRecords(lz4, limits)].map((r) => r.value?.toString())).toEqual(['again']);
  });

  it('builds each batch right whatever the size of the batches before it', () => {
    // Large batches hand their buffer over and size the next one; small ones copy out and may let
    // an oversized buffer go. Every batch must equal the one-shot encoding of its records.
    const builder = new RecordBatchBuilder(64);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 8 }), (sizes) => {
        for (const [n, count] of sizes.entries()) {
          const records = Array.from({ length: count }, (_, i) => ({
            value: Buffer.alloc(i % 40, n),
            timestamp: 1000 + i,
          }));
          for (const record of records) builder.append(record);
          const options = { producerId: 7n, producerEpoch: 1, baseSequence: n };
          expect(builder.finish(options).equals(encodeRecordBatch(records, options))).toBe(true);
        }
      }),
      { numRuns: 50 },
    );
  });

  it('writes every 64-bit header field exactly, whatever its sign and size', () => {
    const int64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
    const timestamp = fc.integer({ min: -(2 ** 40), max: Number.MAX_SAFE_INTEGER });
    fc.assert(
      fc.property(int64, int64, timestamp, timestamp, (baseOffset, producerId, first, second) => {
        const batch = encodeRecordBatch(
          [
            { value: 'a', timestamp: first },
            { value: 'b', timestamp: second },
          ],
          { baseOffset, producerId, producerEpoch: 0, baseSequence: 0 },
        );
        const header = readBatchHeader(batch);
        expect(header.baseOffset).toBe(baseOffset);
        expect(header.producerId).toBe(producerId);
        expect(header.baseTimestamp).toBe(BigInt(Math.min(first, second)));
        expect(header.maxTimestamp).toBe(BigInt(Math.max(first, second)));
        // The CRC covers the header from byte 21 on: it must agree with what was written. A
        // timestamp delta past 2^52 ms does not survive as a JS number: the broker refuses it.
        if (Math.abs(first - second) < 2 ** 52) {
          expect(validateRecordBatch(batch, limits).recordCount).toBe(2);
        } else {
          expect(codeOf(() => validateRecordBatch(batch, limits))).toBe(ErrorCode.BAD_RECORD_BATCH);
        }
      }),
    );
    expect(() => encodeRecordBatch([{ value: 'a', timestamp: 1.5 }])).toThrow(RangeError);
  });

  it('leaves the CRC valid when the broker writes the base offset', () => {
    const batch = encodeRecordBatch([{ value: 'a' }, { value: 'b' }]);
    writeBaseOffset(batch, 77n);
    expect(validateRecordBatch(batch, limits).baseOffset).toBe(77n);
    expect([...iterateRecords(batch, limits)].map((r) => r.offset)).toEqual([77n, 78n]);
  });

  it('detects corruption, truncation and wrong sizes', () => {
    const batch = encodeRecordBatch([{ key: 'a', value: 'hello' }, { value: 'world' }]);
    for (let i = 17; i < batch.length; i++) {
      const flipped = Buffer.from(batch);
      flipped[i] = (flipped[i] ?? 0) ^ 0x10;
      expect(codeOf(() => validateRecordBatch(flipped, limits))).toBeDefined();
    }
    for (let length = 0; length < batch.length; length++) {
      expect(codeOf(() => validateRecordBatch(batch.subarray(0, length), limits))).toBe(
        ErrorCode.BAD_RECORD_BATCH,
      );
    }
    expect(codeOf(() => validateRecordBatch(batch, { maxBatchBytes: 10 }))).toBe(ErrorCode.MESSAGE_TOO_LARGE);
    expect(() => encodeRecordBatch([])).toThrow(/at least one record/);
  });

  it('splits consecutive batches and stops before a partial one', () => {
    const a = encodeRecordBatch([{ value: 'a' }]);
    const b = encodeRecordBatch([{ value: 'bb' }, { value: 'cc' }]);
    const joined = Buffer.concat([a, b, b.subarray(0, 20)]);
    expect([...splitBatches(joined)].map((x) => x.length)).toEqual([a.length, b.length]);
  });

  it('answers random bytes with typed errors only', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 200 }),
        fc.constantFrom(...CODECS),
        (bytes, codec) => {
          const template = encodeRecordBatch([{ key: 'k', value: 'v' }], { compression: codec });
          const forged = Buffer.concat([template.subarray(0, BATCH_HEADER_SIZE), Buffer.from(bytes)]);
          forged.writeInt32BE(forged.length - 12, 8);
          try {
            [...iterateRecords(forged, limits)];
            forEachKey(forged, limits, () => {});
          } catch (error) {
            expect(error).toBeInstanceOf(MemoryStreamerError);
          }
        },
      ),
      { numRuns: process.env.CI === 'true' ? 20_000 : 1000 },
    );
  });
});

describe('decompression limits', () => {
  const bombSize = 64 * 1024 * 1024;
  const limit = 1024 * 1024;
  const zeros = Buffer.alloc(bombSize);
  const bombs = {
    gzip: gzipSync(zeros),
    snappy: snappyCompress(zeros),
    lz4: lz4Compress(zeros),
    zstd: zstdCompress(zeros),
  };

  it.each(Object.keys(bombs) as (keyof typeof bombs)[])('refuses a %s bomb', (codec) => {
    const bomb = bombs[codec];
    expect(bomb.length).toBeLessThan(bombSize / 20);
    const before = process.memoryUsage().arrayBuffers;
    expect(codeOf(() => decompress(codec, bomb, limit))).toBe(ErrorCode.DECOMPRESSED_TOO_LARGE);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024);
  });

  it('inflates data exactly at the limit and rejects garbage', () => {
    const data = Buffer.alloc(limit, 3);
    for (const codec of CODECS) {
      expect(decompress(codec, compress(codec, data), limit).equals(data)).toBe(true);
      if (codec !== 'none')
        expect(codeOf(() => decompress(codec, Buffer.from('not compressed at all'), limit))).toBeDefined();
    }
    expect(codeOf(() => decompress('none', data, limit - 1))).toBe(ErrorCode.DECOMPRESSED_TOO_LARGE);
  });
});
