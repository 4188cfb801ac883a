import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryStreamerError } from '../../src/common/errors.js';
import { CompressionCodec, type CompressionCodecName, compress } from '../../src/protocol/compression.js';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import {
  encodeRecordBatch,
  forEachKey,
  iterateRecords,
  recordsSection,
  validateRecordBatch,
} from '../../src/protocol/record-batch.js';
import { BATCH_HEADER_SIZE, BATCH_OFFSETS, writeBaseOffset } from '../../src/protocol/record-batch-layout.js';
import {
  goodRecords,
  RAW_BASE_TIMESTAMP,
  type RawBatchOptions,
  type RawRecord,
  rawBatch,
  rawRecord,
  resealBatch,
} from './helpers/raw-batch.js';

const CODECS: readonly CompressionCodecName[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];
const limits = { maxBatchBytes: 1 << 24, maxDecompressedBytes: 1 << 20 };

function refusal(batch: Buffer): MemoryStreamerError | undefined {
  try {
    validateRecordBatch(batch, limits);
  } catch (error) {
    if (error instanceof MemoryStreamerError) return error;
    throw error;
  }
  return undefined;
}

/** Three good records with one of them replaced by `forge(record)`. */
function forged(index: number, forge: (record: RawRecord) => RawRecord): RawRecord[] {
  const records = goodRecords(3);
  records[index] = forge(records[index]!);
  return records;
}

interface MalformedCase {
  name: string;
  records: RawRecord[] | Buffer;
  options?: RawBatchOptions;
  /** What the refusal must say (it names the record when one record is at fault). */
  message: RegExp;
}

const CASES: MalformedCase[] = [
  {
    name: 'two records sharing offset delta 0',
    records: forged(1, (r) => ({ ...r, offsetDelta: 0 })),
    message: /record 1: offsetDelta 0, expected 1/,
  },
  {
    name: 'offset deltas out of order',
    records: forged(0, (r) => ({ ...r, offsetDelta: 2 })),
    message: /record 0: offsetDelta 2, expected 0/,
  },
  {
    name: 'an offset delta gap (forged lastOffsetDelta to match)',
    records: forged(2, (r) => ({ ...r, offsetDelta: 5 })),
    message: /record 2: offsetDelta 5, expected 2/,
  },
  {
    name: 'a negative offset delta',
    records: forged(0, (r) => ({ ...r, offsetDelta: -1 })),
    message: /record 0: offsetDelta -1, expected 0/,
  },
  {
    name: 'recordCount larger than the records present',
    records: goodRecords(2),
    options: { recordCount: 3 },
    message: /recordCount is 3 but the records section ends after 2 records/,
  },
  {
    name: 'recordCount smaller than the records present',
    records: goodRecords(3),
    options: { recordCount: 2 },
    message: /trailing bytes after the 2 records/,
  },
  {
    name: 'a header with a null key',
    records: forged(1, (r) => ({ ...r, headers: [{ key: null, value: 'v' }] })),
    message: /record 1: header 0 has a null key/,
  },
  {
    name: 'a header key length below -1',
    records: forged(1, (r) => ({ ...r, headers: [{ key: { length: -2 }, value: 'v' }] })),
    message: /record 1: header 0 key length -2 is negative/,
  },
  {
    name: 'a header value length below -1',
    records: forged(2, (r) => ({ ...r, headers: [{ key: 'k', value: { length: -7 } }] })),
    message: /record 2: header 0 value length -7 is negative/,
  },
  {
    name: 'a header key that is not UTF-8',
    records: forged(0, (r) => ({ ...r, headers: [{ key: Buffer.from([0xc3, 0x28]), value: null }] })),
    message: /record 0: header 0 key is not valid UTF-8/,
  },
  {
    name: 'a key length of -2',
    records: forged(0, (r) => ({ ...r, key: { length: -2 } })),
    message: /record 0: key length -2 is negative/,
  },
  {
    name: 'a value length of -5',
    records: forged(2, (r) => ({ ...r, value: { length: -5 } })),
    message: /record 2: value length -5 is negative/,
  },
  {
    name: 'a negative header count',
    records: forged(1, (r) => ({ ...r, headers: [], headerCount: -1 })),
    message: /record 1: header count -1 is negative/,
  },
  {
    name: 'more headers declared than present',
    records: forged(1, (r) => ({ ...r, headers: [{ key: 'a', value: 'b' }], headerCount: 2 })),
    message: /record 1: /,
  },
  {
    name: 'a negative record length',
    records: forged(0, (r) => ({ ...r, length: -3 })),
    message: /record 0: length -3 is negative/,
  },
  {
    name: 'a key longer than its record',
    records: forged(0, (r) => ({ ...r, key: { length: 40, bytes: Buffer.from('short') } })),
    message: /record 0: key length 40 overruns the record/,
  },
  {
    name: 'a record length that overruns the batch',
    records: forged(2, (r) => ({ ...r, length: (n) => n + 4 })),
    message: /record 2: length \d+ overruns the records section by 4 bytes/,
  },
  {
    name: 'a record length that takes the next record in',
    records: forged(0, (r) => ({ ...r, length: (n) => n + 3 })),
    message: /record 0: 3 bytes left after its last header/,
  },
  {
    name: 'a record length that stops inside the record',
    records: forged(1, (r) => ({ ...r, length: (n) => n - 2 })),
    message: /record 1: /,
  },
  {
    name: 'trailing bytes inside a record',
    records: forged(1, (r) => ({ ...r, trailing: Buffer.from([0, 0]) })),
    message: /record 1: 2 bytes left after its last header/,
  },
  {
    name: 'trailing bytes after the last record',
    records: Buffer.concat([...goodRecords(1).map(rawRecord), Buffer.from([0])]),
    options: { recordCount: 1 },
    message: /1 trailing bytes after the 1 records/,
  },
  {
    name: 'an offset delta varint longer than 5 bytes',
    records: forged(0, (r) => ({ ...r, offsetDelta: Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x00]) })),
    message: /record 0: offsetDelta varint is longer than 5 bytes or overflows an int32/,
  },
  {
    name: 'a key length varint that overflows an int32',
    records: forged(1, (r) => ({ ...r, key: { length: Buffer.from([0xff, 0xff, 0xff, 0xff, 0x1f]) } })),
    message: /record 1: key length varint is longer than 5 bytes or overflows an int32/,
  },
  {
    name: 'a timestamp delta varlong longer than 10 bytes',
    records: forged(2, (r) => ({ ...r, timestampDelta: Buffer.from([...Array(10).fill(0x80), 0x00]) })),
    message: /record 2: timestampDelta varint is longer than 10 bytes/,
  },
  {
    name: 'a timestamp delta outside the safe-integer range',
    records: forged(2, (r) => ({ ...r, timestampDelta: Buffer.from([...Array(9).fill(0xff), 0x01]) })),
    message: /record 2: timestampDelta is outside the safe-integer range/,
  },
  {
    name: 'a varint cut off by the end of its record',
    records: forged(2, (r) => ({ ...r, length: 2, trailing: undefined })),
    message: /record 2: /,
  },
  {
    name: 'record attributes other than 0',
    records: forged(1, (r) => ({ ...r, attributes: 0x01 })),
    message: /record 1: attributes 0x1, must be 0/,
  },
  {
    name: 'a maxTimestamp above every record timestamp',
    records: goodRecords(3),
    options: { maxTimestamp: RAW_BASE_TIMESTAMP + 10_000_000n },
    message: /maxTimestamp \d+ is not the largest record timestamp/,
  },
  {
    name: 'a maxTimestamp below a record timestamp',
    records: goodRecords(3),
    options: { maxTimestamp: RAW_BASE_TIMESTAMP },
    message: /maxTimestamp \d+ is not the largest record timestamp/,
  },
];

describe('validateRecordBatch refuses malformed records under a correct CRC', () => {
  it('accepts the well-formed batch every case is forged from, for every codec', () => {
    for (const codec of CODECS) {
      const batch = rawBatch(goodRecords(3), { codec });
      expect(validateRecordBatch(batch, limits).recordCount).toBe(3);
      expect([...iterateRecords(batch, limits)].map((r) => r.offsetDelta)).toEqual([0, 1, 2]);
    }
  });

  describe.each(CODECS)('codec %s', (codec) => {
    it.each(CASES)('$name', ({ records, options, message }) => {
      const error = refusal(rawBatch(records, { ...options, codec }));
      expect(error?.code).toBe(ErrorCode.BAD_RECORD_BATCH);
      expect(error?.message).toMatch(message);
    });
  });

  it('refuses a record that the offset deltas make share an offset even when lastOffsetDelta agrees', () => {
    // Forged as in the field: deltas 0, 0, 2, so lastOffsetDelta = recordCount - 1 still holds.
    const records = goodRecords(3);
    records[1] = { ...records[1]!, offsetDelta: 0 };
    const batch = rawBatch(records);
    expect(batch.readInt32BE(BATCH_OFFSETS.lastOffsetDelta)).toBe(2);
    expect(refusal(batch)?.message).toMatch(/record 1: offsetDelta 0, expected 1/);
  });

  it('accepts negative timestamp deltas (a base taken from the first record) when maxTimestamp agrees', () => {
    const records = goodRecords(3).map((r, i) => ({ ...r, timestampDelta: -i * 5 }));
    const batch = rawBatch(records, { maxTimestamp: RAW_BASE_TIMESTAMP });
    expect(refusal(batch)).toBeUndefined();
    expect([...iterateRecords(batch, limits)].map((r) => r.timestamp)).toEqual([
      Number(RAW_BASE_TIMESTAMP),
      Number(RAW_BASE_TIMESTAMP) - 5,
      Number(RAW_BASE_TIMESTAMP) - 10,
    ]);
  });

  it('accepts non-minimal varints within 5 bytes, as Kafka does', () => {
    const records = goodRecords(2);
    records[1] = { ...records[1]!, offsetDelta: Buffer.from([0x82, 0x80, 0x80, 0x80, 0x00]) }; // 1
    expect(refusal(rawBatch(records))).toBeUndefined();
  });

  it('refuses a baseTimestamp that does not fit a JS number', () => {
    const batch = rawBatch(goodRecords(1), { baseTimestamp: 2n ** 60n, maxTimestamp: 2n ** 60n });
    expect(refusal(batch)?.message).toMatch(/baseTimestamp \d+ is outside the safe-integer range/);
  });

  it('refuses a compressed batch whose records section inflates past the limit', () => {
    const big = rawBatch([{ offsetDelta: 0, value: Buffer.alloc(2 << 20) }], { codec: 'zstd' });
    expect(refusal(big)?.code).toBe(ErrorCode.DECOMPRESSED_TOO_LARGE);
  });

  it('hands each key and offset delta to the visitor in the validating pass, as forEachKey sees them', () => {
    for (const codec of CODECS) {
      const batch = encodeRecordBatch(
        [{ key: 'a', value: '1' }, { value: '2' }, { key: Buffer.from([0, 1]), value: null }],
        { compression: codec },
      );
      const visited: Array<[string | null, number]> = [];
      validateRecordBatch(batch, limits, (key, delta) => visited.push([key?.toString('hex') ?? null, delta]));
      const scanned: Array<[string | null, number]> = [];
      forEachKey(batch, limits, (key, delta) => scanned.push([key?.toString('hex') ?? null, delta]));
      expect(visited).toEqual(scanned);
      expect(visited).toEqual([
        ['61', 0],
        [null, 1],
        ['0001', 2],
      ]);
    }
  });
});

describe('reading a batch that was accepted before records were validated', () => {
  it('throws an error that names the batch offsets, so a reader can report it and go on after it', () => {
    const batch = rawBatch(forged(1, (r) => ({ ...r, headers: [{ key: null, value: 'v' }] })));
    writeBaseOffset(batch, 100n);
    let error: unknown;
    try {
      for (const _ of iterateRecords(batch, limits));
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(MemoryStreamerError);
    expect((error as MemoryStreamerError).code).toBe(ErrorCode.BAD_RECORD_BATCH);
    expect((error as MemoryStreamerError).message).toBe(
      'record batch is malformed: batch at offsets 100-102: record 1 header 0 has a null key',
    );
  });
});

/** Mutations of a good records section: what a broken or hostile encoder might produce. */
const mutationArb = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bits: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 6 }),
  }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 6 }) }),
);

function mutate(section: Buffer, mutations: ReadonlyArray<Mutation>): Buffer {
  let bytes = Buffer.from(section);
  for (const m of mutations) {
    if (bytes.length === 0) break;
    const at = m.at % bytes.length;
    if (m.kind === 'flip') bytes[at] = bytes[at]! ^ m.bits;
    else if (m.kind === 'set') bytes[at] = m.byte;
    else if (m.kind === 'insert')
      bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(m.bytes), bytes.subarray(at)]);
    else bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + m.count)]);
  }
  return bytes;
}

type Mutation =
  | { kind: 'flip'; at: number; bits: number }
  | { kind: 'set'; at: number; byte: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number };

/** Seals `payload` (the records section as stored) with the given codec id, count and maxTimestamp. */
function sealPayload(payload: Buffer, codecId: number, count: number, maxTimestamp: bigint): Buffer {
  const header = rawBatch(Buffer.alloc(0), { recordCount: count, maxTimestamp }).subarray(
    0,
    BATCH_HEADER_SIZE,
  );
  const out = Buffer.concat([header, payload]);
  out.writeInt32BE(out.length - 12, BATCH_OFFSETS.batchLength);
  out.writeInt16BE(codecId, BATCH_OFFSETS.attributes);
  return resealBatch(out);
}

/** Seals `section` (uncompressed records), compressed with `codec`. */
function sealSection(
  section: Buffer,
  codec: CompressionCodecName,
  count: number,
  maxTimestamp: bigint,
): Buffer {
  return sealPayload(compress(codec, section), CompressionCodec[codec], count, maxTimestamp);
}

/** Accepted ⇒ every reader decodes it whole, with offsets 0…n−1; refused ⇒ with a records error. */
function checkAcceptedDecodes(batch: Buffer): 'accepted' | 'refused' {
  let header: ReturnType<typeof validateRecordBatch>;
  try {
    header = validateRecordBatch(batch, limits);
  } catch (error) {
    expect(error).toBeInstanceOf(MemoryStreamerError);
    expect([ErrorCode.BAD_RECORD_BATCH, ErrorCode.DECOMPRESSED_TOO_LARGE]).toContain(
      (error as MemoryStreamerError).code,
    );
    return 'refused';
  }
  const records = [...iterateRecords(batch, limits)];
  expect(records.map((r) => r.offsetDelta)).toEqual(Array.from({ length: header.recordCount }, (_, i) => i));
  expect(Math.max(...records.map((r) => r.timestamp))).toBe(Number(header.maxTimestamp));
  let keys = 0;
  forEachKey(batch, limits, () => keys++);
  expect(keys).toBe(header.recordCount);
  return 'accepted';
}

describe('random record bytes under a valid CRC', () => {
  it('are refused, or decode fully with iterateRecords and forEachKey (never accepted-then-undecodable)', () => {
    const goodSection = recordsSection(rawBatch(goodRecords(4)), limits);
    let accepted = 0;
    fc.assert(
      fc.property(
        fc.constantFrom(...CODECS),
        fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
        // Mostly the section's true count and largest timestamp delta, so that mutations which keep
        // the records valid are accepted often enough to exercise that outcome every run.
        fc.oneof(
          { weight: 3, arbitrary: fc.constant(4) },
          { weight: 1, arbitrary: fc.integer({ min: 1, max: 6 }) },
        ),
        fc.oneof(
          { weight: 3, arbitrary: fc.constant(3) },
          { weight: 1, arbitrary: fc.integer({ min: 0, max: 5 }) },
        ),
        (codec, mutations, count, maxDelta) => {
          const section = mutate(goodSection, mutations);
          const batch = sealSection(section, codec, count, RAW_BASE_TIMESTAMP + BigInt(maxDelta));
          if (checkAcceptedDecodes(batch) === 'accepted') accepted++;
        },
      ),
      { numRuns: 1500 },
    );
    // Some mutations (a flipped value byte) leave a valid batch: both outcomes were exercised.
    expect(accepted).toBeGreaterThan(0);
  });

  it('of pure noise are refused, or decode fully', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...CODECS),
        fc.uint8Array({ minLength: 1, maxLength: 200 }),
        fc.integer({ min: 1, max: 4 }),
        (codec, noise, count) => {
          checkAcceptedDecodes(sealSection(Buffer.from(noise), codec, count, RAW_BASE_TIMESTAMP));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('as the compressed payload itself are refused, or decode fully', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.uint8Array({ minLength: 0, maxLength: 200 }),
        fc.boolean(),
        (codecId, noise, frameMagic) => {
          // With the LZ4 frame magic in front, the noise reaches the frame parser, not the old format.
          const payload = frameMagic
            ? Buffer.concat([Buffer.from([0x04, 0x22, 0x4d, 0x18]), noise])
            : Buffer.from(noise);
          checkAcceptedDecodes(sealPayload(payload, codecId, 1, RAW_BASE_TIMESTAMP));
        },
      ),
      { numRuns: 1000 },
    );
  });
});

/**
 * The rules of record-validator.ts written out plainly, one varint reader, no quick path: the
 * verdict validateRecords must reach for any records section.
 */
function referenceVerdict(section: Buffer, count: number, maxTimestamp: bigint): 'accepted' | 'refused' {
  let pos = 0;
  const varint = (end: number, maxBytes: number): number | null => {
    let raw = 0n;
    for (let i = 0; i < maxBytes; i++) {
      if (pos >= end) return null;
      const byte = section[pos++]!;
      raw |= BigInt(byte & 0x7f) << BigInt(7 * i);
      if (byte < 0x80) {
        const value = raw & 1n ? -((raw + 1n) / 2n) : raw / 2n;
        if (maxBytes === 5 && (value > 2147483647n || value < -2147483648n)) return null;
        if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < -BigInt(Number.MAX_SAFE_INTEGER)) return null;
        return Number(value);
      }
    }
    return null;
  };
  const field = (end: number): number | null => {
    const length = varint(end, 5);
    if (length === null || length < -1 || length > end - pos) return null;
    if (length > 0) pos += length;
    return length;
  };
  let largest = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < count; i++) {
    const length = varint(section.length, 5);
    if (length === null || length < 0 || pos + length > section.length) return 'refused';
    const end = pos + length;
    if (pos >= end || section[pos++] !== 0) return 'refused';
    const delta = varint(end, 10);
    if (delta === null) return 'refused';
    largest = Math.max(largest, delta);
    if (varint(end, 5) !== i) return 'refused';
    if (field(end) === null || field(end) === null) return 'refused';
    const headers = varint(end, 5);
    if (headers === null || headers < 0) return 'refused';
    for (let h = 0; h < headers; h++) {
      const keyLength = field(end);
      if (keyLength === null || keyLength === -1) return 'refused';
      if (!isUtf8(section.subarray(pos - keyLength, pos))) return 'refused';
      if (field(end) === null) return 'refused';
    }
    if (pos !== end) return 'refused';
  }
  if (pos !== section.length) return 'refused';
  return BigInt(Number(RAW_BASE_TIMESTAMP) + largest) === maxTimestamp ? 'accepted' : 'refused';
}

describe('the quick pass over common records', () => {
  // Records the quick pass takes (no headers, one- and two-byte varints: values of 0–8,000 bytes,
  // keys or none, null values) and one it leaves to the full reader (a header), mutated.
  const shapes = fc.array(
    fc.record({
      key: fc.option(fc.string({ maxLength: 80 }), { nil: null }),
      value: fc.option(fc.integer({ min: 0, max: 8000 }), { nil: null }),
      timestampDelta: fc.integer({ min: -100, max: 9000 }),
      header: fc.boolean(),
    }),
    { minLength: 1, maxLength: 5 },
  );

  it('reaches the verdict of a plain reading of the rules on mutated sections', () => {
    let accepted = 0;
    fc.assert(
      fc.property(shapes, fc.array(mutationArb, { minLength: 0, maxLength: 3 }), (specs, mutations) => {
        const records = specs.map((spec, i) => ({
          offsetDelta: i,
          timestampDelta: spec.timestampDelta,
          key: spec.key,
          value: spec.value === null ? null : Buffer.alloc(spec.value, 0x61).toString(),
          headers: spec.header ? [{ key: 'h', value: 'v' }] : [],
        }));
        const section = mutate(Buffer.concat(records.map(rawRecord)), mutations);
        const maxTimestamp = RAW_BASE_TIMESTAMP + BigInt(Math.max(...specs.map((s) => s.timestampDelta)));
        const batch = sealSection(section, 'none', specs.length, maxTimestamp);
        const expected = referenceVerdict(section, specs.length, maxTimestamp);
        if (expected === 'accepted') accepted++;
        expect(refusal(batch) === undefined ? 'accepted' : 'refused').toBe(expected);
      }),
      { numRuns: 2000 },
    );
    expect(accepted).toBeGreaterThan(100);
  });
});
