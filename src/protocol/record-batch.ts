// Encoding, validation and iteration of record batches (Kafka RecordBatch v2; header layout in
// record-batch-layout.ts). Per-message work happens here, in clients; the broker only validates a
// batch, writes its base offset, and scans keys for the stream index.
//
// Record layout (inside the records section, possibly compressed as one block):
//   length          varint   bytes of the record after this field
//   attributes      int8     unused, 0
//   timestampDelta  varlong  record timestamp - baseTimestamp (ms)
//   offsetDelta     varint   record offset - baseOffset
//   keyLength       varint   -1 = null key
//   key             bytes
//   valueLength     varint   -1 = null value (a tombstone for compaction)
//   value           bytes
//   headerCount     varint
//   headers         headerCount × (keyLength varint, key UTF-8, valueLength varint (-1 = null), value)

import { MemoryStreamerError } from '../common/errors.js';
import {
  CompressionCodec,
  type CompressionCodecName,
  codecName,
  compress,
  decompress,
} from './compression.js';
import { crc32c } from './crc32c.js';
import { ERROR_TABLE, errorOf } from './error-codes.js';
import {
  BATCH_CRC_START,
  BATCH_HEADER_SIZE,
  BATCH_LOG_OVERHEAD,
  BATCH_MAGIC,
  BATCH_OFFSETS,
  COMPRESSION_CODEC_MASK,
  type RecordBatchHeader,
  readBatchHeader,
  readInt64,
  readInt64AsNumber,
  writeInt64,
} from './record-batch-layout.js';
import { type KeyVisitor, validateRecords } from './record-validator.js';
import { VarintCursor, varintSize, writeVarint } from './varint.js';

export type RecordValue = Buffer | Uint8Array | string | null;

export interface RecordHeaderInput {
  key: string;
  value: RecordValue;
}

export interface RecordInput {
  key?: RecordValue | undefined;
  value: RecordValue;
  headers?: ReadonlyArray<RecordHeaderInput> | undefined;
  /** Milliseconds since the Unix epoch; defaults to the batch's base timestamp. */
  timestamp?: number | undefined;
}

export interface BatchOptions {
  baseOffset?: bigint;
  compression?: CompressionCodecName;
  producerId?: bigint;
  producerEpoch?: number;
  baseSequence?: number;
  partitionLeaderEpoch?: number;
  /** Defaults to the smallest record timestamp, or now. */
  baseTimestamp?: number;
}

export interface DecodedHeader {
  key: string;
  value: Buffer | null;
}

export interface DecodedRecord {
  offset: bigint;
  offsetDelta: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: DecodedHeader[];
}

export interface BatchLimits {
  maxBatchBytes: number;
  /**
   * Largest records section a compressed batch may inflate to while its records are validated;
   * DEFAULT_MAX_DECOMPRESSED_BYTES when not given.
   */
  maxDecompressedBytes?: number;
}

/** The broker's default storage.max_decompressed_bytes. */
export const DEFAULT_MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024;

export interface InflateLimits {
  /** Largest records section a compressed batch may inflate to. */
  maxDecompressedBytes: number;
}

function fieldSize(value: RecordValue | undefined): number {
  if (value === null || value === undefined) return 1;
  const length = typeof value === 'string' ? Buffer.byteLength(value, 'utf8') : value.length;
  return varintSize(length) + length;
}

function writeField(buf: Buffer, at: number, value: RecordValue | undefined): number {
  if (value === null || value === undefined) return writeVarint(buf, at, -1);
  if (typeof value === 'string') {
    const length = Buffer.byteLength(value, 'utf8');
    at = writeVarint(buf, at, length);
    return at + buf.write(value, at, length, 'utf8');
  }
  at = writeVarint(buf, at, value.length);
  buf.set(value, at);
  return at + value.length;
}

/** Size of a record's body (everything after its length varint). */
function recordBodySize(record: RecordInput, timestampDelta: number, offsetDelta: number): number {
  let size =
    1 +
    varintSize(timestampDelta) +
    varintSize(offsetDelta) +
    fieldSize(record.key) +
    fieldSize(record.value);
  const headers = record.headers;
  size += varintSize(headers?.length ?? 0);
  if (headers !== undefined) {
    for (const header of headers) size += fieldSize(header.key) + fieldSize(header.value);
  }
  return size;
}

function writeRecord(
  buf: Buffer,
  at: number,
  record: RecordInput,
  bodySize: number,
  timestampDelta: number,
  offsetDelta: number,
): number {
  at = writeVarint(buf, at, bodySize);
  buf[at++] = 0;
  at = writeVarint(buf, at, timestampDelta);
  at = writeVarint(buf, at, offsetDelta);
  at = writeField(buf, at, record.key);
  at = writeField(buf, at, record.value);
  const headers = record.headers;
  at = writeVarint(buf, at, headers?.length ?? 0);
  if (headers !== undefined) {
    for (const header of headers) {
      at = writeField(buf, at, header.key);
      at = writeField(buf, at, header.value);
    }
  }
  return at;
}

/** Fills the fixed header and the CRC of a batch whose records section is already in place. */
function sealBatch(
  batch: Buffer,
  recordCount: number,
  attributes: number,
  baseTimestamp: number,
  maxTimestamp: number,
  options: BatchOptions,
): Buffer {
  writeInt64(batch, options.baseOffset ?? 0, BATCH_OFFSETS.baseOffset);
  batch.writeInt32BE(batch.length - BATCH_LOG_OVERHEAD, BATCH_OFFSETS.batchLength);
  batch.writeInt32BE(options.partitionLeaderEpoch ?? -1, BATCH_OFFSETS.partitionLeaderEpoch);
  batch.writeInt8(BATCH_MAGIC, BATCH_OFFSETS.magic);
  batch.writeInt16BE(attributes, BATCH_OFFSETS.attributes);
  batch.writeInt32BE(recordCount - 1, BATCH_OFFSETS.lastOffsetDelta);
  writeInt64(batch, baseTimestamp, BATCH_OFFSETS.baseTimestamp);
  writeInt64(batch, maxTimestamp, BATCH_OFFSETS.maxTimestamp);
  writeInt64(batch, options.producerId ?? -1, BATCH_OFFSETS.producerId);
  batch.writeInt16BE(options.producerEpoch ?? -1, BATCH_OFFSETS.producerEpoch);
  batch.writeInt32BE(options.baseSequence ?? -1, BATCH_OFFSETS.baseSequence);
  batch.writeInt32BE(recordCount, BATCH_OFFSETS.recordCount);
  batch.writeUInt32BE(crc32c(batch.subarray(BATCH_CRC_START)), BATCH_OFFSETS.crc);
  return batch;
}

/**
 * Gives a sealed batch another producer identity and base sequence, in place, and recomputes its CRC
 * (which covers those fields). For a producer that must resend unsent batches under a new producer
 * id after the broker refused the old one's sequence; the records are untouched.
 */
export function restampProducer(
  batch: Buffer,
  producerId: bigint,
  producerEpoch: number,
  baseSequence: number,
): void {
  writeInt64(batch, producerId, BATCH_OFFSETS.producerId);
  batch.writeInt16BE(producerEpoch, BATCH_OFFSETS.producerEpoch);
  batch.writeInt32BE(baseSequence, BATCH_OFFSETS.baseSequence);
  batch.writeUInt32BE(crc32c(batch.subarray(BATCH_CRC_START)), BATCH_OFFSETS.crc);
}

/** Wraps an uncompressed records section (records written from BATCH_HEADER_SIZE on) per `options`. */
function finishBatch(
  uncompressed: Buffer,
  recordCount: number,
  baseTimestamp: number,
  maxTimestamp: number,
  options: BatchOptions,
): Buffer {
  const codec = options.compression ?? 'none';
  if (codec === 'none') return sealBatch(uncompressed, recordCount, 0, baseTimestamp, maxTimestamp, options);
  const compressed = compress(codec, uncompressed.subarray(BATCH_HEADER_SIZE));
  const batch = Buffer.allocUnsafe(BATCH_HEADER_SIZE + compressed.length);
  compressed.copy(batch, BATCH_HEADER_SIZE);
  return sealBatch(batch, recordCount, CompressionCodec[codec], baseTimestamp, maxTimestamp, options);
}

/** Encodes records into one batch: sizes everything first, allocates once, writes once. */
export function encodeRecordBatch(records: ReadonlyArray<RecordInput>, options: BatchOptions = {}): Buffer {
  if (records.length === 0) throw errorOf('BAD_RECORD_BATCH', 'a batch holds at least one record');
  let baseTimestamp = options.baseTimestamp;
  let maxTimestamp = Number.NEGATIVE_INFINITY;
  const now = Date.now();
  if (baseTimestamp === undefined) {
    baseTimestamp = Number.POSITIVE_INFINITY;
    for (const record of records) baseTimestamp = Math.min(baseTimestamp, record.timestamp ?? now);
  }
  const bodySizes = new Array<number>(records.length);
  let total = BATCH_HEADER_SIZE;
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    const timestamp = record.timestamp ?? baseTimestamp;
    if (timestamp > maxTimestamp) maxTimestamp = timestamp;
    const body = recordBodySize(record, timestamp - baseTimestamp, i);
    bodySizes[i] = body;
    total += varintSize(body) + body;
  }
  const batch = Buffer.allocUnsafe(total);
  let at = BATCH_HEADER_SIZE;
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    at = writeRecord(
      batch,
      at,
      record,
      bodySizes[i]!,
      (record.timestamp ?? baseTimestamp) - baseTimestamp,
      i,
    );
  }
  return finishBatch(batch, records.length, baseTimestamp, maxTimestamp, options);
}

/**
 * Builds a batch one record at a time, for producers that batch by size and linger: records are
 * written straight into a growable buffer (doubling), and `finish` hands that buffer over.
 */
export class RecordBatchBuilder {
  private buffer: Buffer;
  private length = BATCH_HEADER_SIZE;
  private recordCount = 0;
  private baseTimestamp = 0;
  private maxTimestamp = 0;
  /**
   * Capacity of the last buffer a finished batch took with it: the next batch starts at that size
   * instead of growing to it again from `initialCapacity` (at full rate every batch fills up, and
   * the doublings copied each batch's bytes once more).
   */
  private handedOffCapacity = 0;

  constructor(private readonly initialCapacity = 16 * 1024) {
    this.buffer = Buffer.allocUnsafe(initialCapacity);
  }

  get count(): number {
    return this.recordCount;
  }

  /** Bytes the batch would have uncompressed if finished now. */
  get sizeInBytes(): number {
    return this.length;
  }

  /** Bytes `record` would add (to decide whether it still fits before appending it). */
  estimate(record: RecordInput): number {
    const body = recordBodySize(record, 0, this.recordCount) + 8;
    return varintSize(body) + body;
  }

  /**
   * Exact bytes `append(record)` would add now, length varint included, for a record with a
   * timestamp. It leaves the record's body size in `sizedBody`: passed to `append`, the size is not
   * computed twice (valid only while nothing else is appended or finished in between).
   */
  sizeOf(record: RecordInput & { timestamp: number }): number {
    const delta = this.recordCount === 0 ? 0 : record.timestamp - this.baseTimestamp;
    const body = recordBodySize(record, delta, this.recordCount);
    this.sizedBody = body;
    return varintSize(body) + body;
  }

  /** The body size of the last `sizeOf`. */
  sizedBody = -1;

  append(record: RecordInput, sizedBody = -1): void {
    const timestamp = record.timestamp ?? Date.now();
    if (this.recordCount === 0) {
      this.baseTimestamp = timestamp;
      this.maxTimestamp = timestamp;
    } else if (timestamp > this.maxTimestamp) {
      this.maxTimestamp = timestamp;
    }
    const timestampDelta = timestamp - this.baseTimestamp;
    const body = sizedBody >= 0 ? sizedBody : recordBodySize(record, timestampDelta, this.recordCount);
    const needed = this.length + varintSize(body) + body;
    if (needed > this.buffer.length) this.grow(needed);
    this.length = writeRecord(this.buffer, this.length, record, body, timestampDelta, this.recordCount);
    this.recordCount++;
  }

  /**
   * Appends a record with no key and no headers: what `append` writes for `{ key: null, value,
   * timestamp }`, byte for byte, without the general record's size walk (the producer's
   * `sendMany` of plain values runs through here). Returns the bytes added, or -1 without
   * appending when the batch holds records already and would grow past `limit` bytes with this one.
   *
   *   record = length varint | attributes 0 | timestampDelta varint | offsetDelta varint
   *            | key -1 (one byte, 0x01) | value (length varint + bytes, or -1) | header count 0
   */
  appendValue(value: Uint8Array | null, timestamp: number, limit: number): number {
    const first = this.recordCount === 0;
    const timestampDelta = first ? 0 : timestamp - this.baseTimestamp;
    const valueSize = value === null ? 1 : varintSize(value.length) + value.length;
    const body = 3 + varintSize(timestampDelta) + varintSize(this.recordCount) + valueSize;
    const size = varintSize(body) + body;
    if (!first && this.length + size > limit) return -1;
    if (first) {
      this.baseTimestamp = timestamp;
      this.maxTimestamp = timestamp;
    } else if (timestamp > this.maxTimestamp) {
      this.maxTimestamp = timestamp;
    }
    const needed = this.length + size;
    if (needed > this.buffer.length) this.grow(needed);
    const buf = this.buffer;
    let at = writeVarint(buf, this.length, body);
    buf[at++] = 0;
    at = writeVarint(buf, at, timestampDelta);
    at = writeVarint(buf, at, this.recordCount);
    buf[at++] = 0x01; // zigzag(-1): no key
    if (value === null) buf[at++] = 0x01;
    else {
      at = writeVarint(buf, at, value.length);
      buf.set(value, at);
      at += value.length;
    }
    buf[at++] = 0; // no headers
    this.length = at;
    this.recordCount++;
    return size;
  }

  /** Replaces the buffer by one of at least `needed` bytes, keeping what is written. */
  private grow(needed: number): void {
    let capacity = Math.max(this.buffer.length * 2, this.initialCapacity, this.handedOffCapacity);
    while (capacity < needed) capacity *= 2;
    const grown = Buffer.allocUnsafe(capacity);
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }

  /**
   * Seals the batch and returns it; the builder starts empty afterwards. A batch that fills most of
   * the buffer takes the buffer with it (no copy) and a new one is allocated on the next append; a
   * small batch is copied out so the buffer is reused (no large allocation per small batch, which
   * at low rates would otherwise feed the garbage collector 16 KiB per message).
   */
  finish(options: BatchOptions = {}): Buffer {
    if (this.recordCount === 0) throw errorOf('BAD_RECORD_BATCH', 'a batch holds at least one record');
    const records = this.buffer.subarray(0, this.length);
    const codec = options.compression ?? 'none';
    let batch: Buffer;
    if (codec !== 'none' || this.length * 2 < this.buffer.length) {
      const source = codec === 'none' ? Buffer.from(records) : records;
      batch = finishBatch(source, this.recordCount, this.baseTimestamp, this.maxTimestamp, options);
      if (this.buffer.length > this.initialCapacity && this.length * 8 < this.buffer.length) {
        // Batches got small again: do not keep (or start the next at) a size they no longer need.
        this.buffer = EMPTY_BUFFER;
        this.handedOffCapacity = 0;
      }
    } else {
      batch = finishBatch(records, this.recordCount, this.baseTimestamp, this.maxTimestamp, options);
      this.handedOffCapacity = this.buffer.length;
      this.buffer = EMPTY_BUFFER;
    }
    this.length = BATCH_HEADER_SIZE;
    this.recordCount = 0;
    return batch;
  }
}

const EMPTY_BUFFER = Buffer.alloc(0);

/**
 * Checks that `batch` is exactly one well-formed batch a producer may append: length field, magic,
 * CRC, counts, size limit, and every record (record-validator.ts), inflating a compressed batch once
 * under `limits.maxDecompressedBytes`. `visit`, if given, receives each record's key and offset
 * delta in the same pass (what the stream index needs), so the produce path need not inflate the
 * batch a second time; it is called only for records that passed validation so far, and a batch
 * that throws must be discarded whole. Returns the header.
 */
export function validateRecordBatch(
  batch: Buffer,
  limits: BatchLimits,
  visit?: KeyVisitor,
): RecordBatchHeader {
  if (batch.length > limits.maxBatchBytes) {
    throw errorOf('MESSAGE_TOO_LARGE', `batch of ${batch.length} bytes, limit ${limits.maxBatchBytes}`);
  }
  if (batch.length < BATCH_HEADER_SIZE) {
    throw errorOf(
      'BAD_RECORD_BATCH',
      `batch of ${batch.length} bytes is shorter than its ${BATCH_HEADER_SIZE}-byte header`,
    );
  }
  const header = readBatchHeader(batch);
  if (header.batchLength + BATCH_LOG_OVERHEAD !== batch.length) {
    throw errorOf(
      'BAD_RECORD_BATCH',
      `batchLength ${header.batchLength} does not match ${batch.length - BATCH_LOG_OVERHEAD} bytes`,
    );
  }
  if (header.magic !== BATCH_MAGIC)
    throw errorOf('BAD_RECORD_BATCH', `magic ${header.magic}, expected ${BATCH_MAGIC}`);
  if (crc32c(batch.subarray(BATCH_CRC_START)) !== header.crc) throw errorOf('BAD_BATCH_CRC');
  if (header.recordCount < 1 || header.lastOffsetDelta !== header.recordCount - 1) {
    throw errorOf(
      'BAD_RECORD_BATCH',
      `recordCount ${header.recordCount} with lastOffsetDelta ${header.lastOffsetDelta}`,
    );
  }
  const codec = codecName(header.attributes & COMPRESSION_CODEC_MASK);
  const section = decompress(
    codec,
    batch.subarray(BATCH_HEADER_SIZE),
    limits.maxDecompressedBytes ?? DEFAULT_MAX_DECOMPRESSED_BYTES,
  );
  validateRecords(section, header, visit);
  return header;
}

/** The records section, inflated if the batch is compressed. */
export function recordsSection(batch: Buffer, limits: InflateLimits): Buffer {
  const codec = codecName(batch.readInt16BE(BATCH_OFFSETS.attributes) & COMPRESSION_CODEC_MASK);
  return decompress(codec, batch.subarray(BATCH_HEADER_SIZE), limits.maxDecompressedBytes);
}

/**
 * Visits every record's key (a view, or null) and offset delta without building record objects:
 * what the stream index and compaction need from a batch.
 */
export function forEachKey(
  batch: Buffer,
  limits: InflateLimits,
  visit: (key: Buffer | null, offsetDelta: number) => void,
): void {
  const section = recordsSection(batch, limits);
  const count = batch.readInt32BE(BATCH_OFFSETS.recordCount);
  const cursor = new VarintCursor(section, 0, section.length);
  for (let i = 0; i < count; i++) {
    const end = cursor.enterRecord(i, section.length);
    cursor.varint();
    const offsetDelta = cursor.varint();
    visit(cursor.bytesOrNull(), offsetDelta);
    cursor.pos = end;
  }
  if (cursor.pos !== section.length)
    throw errorOf('BAD_RECORD_BATCH', `${section.length - cursor.pos} trailing bytes after ${count} records`);
}

/** The same error, its message naming the batch's offset range (what a reader would skip). */
function withBatchOffsets(batch: Buffer, error: unknown): unknown {
  if (!(error instanceof MemoryStreamerError)) return error;
  const name = error.codeName;
  if (name !== 'BAD_RECORD_BATCH' && name !== 'DECOMPRESSED_TOO_LARGE') return error;
  const base = batch.readBigInt64BE(BATCH_OFFSETS.baseOffset);
  const last = base + BigInt(batch.readInt32BE(BATCH_OFFSETS.lastOffsetDelta));
  const prefix = `${ERROR_TABLE[name].message}: `;
  const detail = error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
  return errorOf(name, `batch at offsets ${base}-${last}: ${detail}`, { cause: error });
}

/**
 * Decodes every record of a batch; keys, values and header values are views when uncompressed.
 * A batch that cannot be decoded (the broker accepted such batches before it validated records)
 * throws BAD_RECORD_BATCH or DECOMPRESSED_TOO_LARGE naming the batch's offsets, so that a reader
 * can report it and go on after it.
 */
export function* iterateRecords(batch: Buffer, limits: InflateLimits): Generator<DecodedRecord> {
  try {
    const section = recordsSection(batch, limits);
    const count = batch.readInt32BE(BATCH_OFFSETS.recordCount);
    const baseOffset = readInt64(batch, BATCH_OFFSETS.baseOffset);
    const baseTimestamp = readInt64AsNumber(batch, BATCH_OFFSETS.baseTimestamp);
    const cursor = new VarintCursor(section, 0, section.length);
    for (let i = 0; i < count; i++) {
      const end = cursor.enterRecord(i, section.length);
      const timestampDelta = cursor.varint();
      const offsetDelta = cursor.varint();
      const key = cursor.bytesOrNull();
      const value = cursor.bytesOrNull();
      const headerCount = cursor.varint();
      if (headerCount < 0 || headerCount * 2 > end - cursor.pos) {
        throw errorOf(
          'BAD_RECORD_BATCH',
          `record ${i} declares ${headerCount} headers in ${end - cursor.pos} bytes`,
        );
      }
      const headers: DecodedHeader[] = [];
      for (let h = 0; h < headerCount; h++) {
        const headerKey = cursor.bytesOrNull();
        if (headerKey === null) throw errorOf('BAD_RECORD_BATCH', `record ${i} header ${h} has a null key`);
        headers.push({ key: headerKey.toString('utf8'), value: cursor.bytesOrNull() });
      }
      if (cursor.pos !== end)
        throw errorOf('BAD_RECORD_BATCH', `record ${i} has ${end - cursor.pos} unread bytes`);
      yield {
        // (The first record's offset is the base: no BigInts made for a batch of one.)
        offset: offsetDelta === 0 ? baseOffset : baseOffset + BigInt(offsetDelta),
        offsetDelta,
        timestamp: baseTimestamp + timestampDelta,
        key,
        value,
        headers,
      };
    }
    if (cursor.pos !== section.length)
      throw errorOf(
        'BAD_RECORD_BATCH',
        `${section.length - cursor.pos} trailing bytes after ${count} records`,
      );
  } catch (error) {
    throw withBatchOffsets(batch, error);
  }
}

export function decodeRecordBatch(
  batch: Buffer,
  limits: InflateLimits,
): { header: RecordBatchHeader; records: DecodedRecord[] } {
  return { header: readBatchHeader(batch), records: [...iterateRecords(batch, limits)] };
}

/**
 * Walks a buffer of consecutive batches (a fetch response or a segment slice) and yields each whole
 * batch as a view. A trailing partial batch is not yielded (fetches may cut the last one).
 */
export function* splitBatches(data: Buffer): Generator<Buffer> {
  let at = 0;
  while (data.length - at >= BATCH_LOG_OVERHEAD) {
    const size = data.readInt32BE(at + BATCH_OFFSETS.batchLength) + BATCH_LOG_OVERHEAD;
    if (size < BATCH_HEADER_SIZE) throw errorOf('BAD_RECORD_BATCH', `batch at ${at} declares ${size} bytes`);
    if (at + size > data.length) return;
    // A chunk that is one whole batch (a lone message's push) is yielded as it is, not as a view.
    yield at === 0 && size === data.length ? data : data.subarray(at, at + size);
    at += size;
  }
}
