// Record-by-record validation of a batch's records section (already inflated), the broker's side of
// Kafka's LogValidator: a batch whose CRC is right can still hold records that no reader can
// decode, or that lie about their offsets. The broker refuses such a batch whole, before anything
// is appended, so that every batch in a log decodes and every offset names exactly one record.
//
// What holds for an accepted batch (record layout in record-batch.ts):
//   - exactly recordCount records, and they fill the records section exactly (no trailing bytes)
//   - each record's length varint covers exactly its fields: none runs past it, none leaves bytes
//   - record attributes are 0
//   - offsetDelta of record i is i (so 0…n−1 in order; lastOffsetDelta = n−1 is checked with the header)
//   - key and value lengths are ≥ −1 (−1 = null); header count ≥ 0; a header key is not null, is
//     valid UTF-8, and its length is ≥ 0; a header value length is ≥ −1
//   - int32 fields (lengths, offsetDelta, counts) are varints of at most 5 bytes whose value fits an
//     int32; timestampDelta is a varlong of at most 10 bytes whose timestamp (baseTimestamp + delta)
//     is a safe integer (JS numbers carry timestamps). Non-minimal encodings within those widths are
//     accepted, as Kafka does (some encoders reserve fixed-width length fields and patch them).
//   - timestamps: baseTimestamp is a safe integer and maxTimestamp equals the largest record
//     timestamp exactly (retention and the time index trust maxTimestamp). Deltas may be negative:
//     producers that take the first record's time as base write later-but-earlier records that way.
// A violation throws BAD_RECORD_BATCH naming the record index and what is wrong.

import { isUtf8 } from 'node:buffer';
import { errorOf } from './error-codes.js';

/** Receives each record's key (a view into the section, or null) and its offset delta. */
export type KeyVisitor = (key: Buffer | null, offsetDelta: number) => void;

/** The header fields record validation checks against. */
export interface RecordsExpectation {
  recordCount: number;
  baseTimestamp: bigint;
  maxTimestamp: bigint;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * A bounded read position over one record. Reads never pass `end` (the record's end, or the
 * section's end while reading a record's length); every failure names the record.
 */
class RecordReader {
  pos = 0;
  end = 0;
  index = 0;

  constructor(readonly buf: Buffer) {}

  fail(what: string): never {
    throw errorOf('BAD_RECORD_BATCH', `record ${this.index}: ${what}`);
  }

  /**
   * A zigzag int32 varint: at most 5 bytes, the fifth carrying only the top 4 bits. `field` (and
   * `suffix`) name it in an error; they are joined only then, so a valid record allocates nothing.
   */
  int32(field: string, suffix = ''): number {
    const buf = this.buf;
    if (this.pos >= this.end) this.fail(`${field}${suffix} runs past the end of the record`);
    let byte = buf[this.pos++]!;
    if (byte < 0x80) return (byte >>> 1) ^ -(byte & 1);
    let raw = byte & 0x7f;
    for (let shift = 7; shift <= 28; shift += 7) {
      if (this.pos >= this.end) this.fail(`${field}${suffix} runs past the end of the record`);
      byte = buf[this.pos++]!;
      if (shift === 28) {
        if (byte > 0x0f) this.fail(`${field}${suffix} varint is longer than 5 bytes or overflows an int32`);
        raw = (raw | (byte << 28)) >>> 0;
        return (raw >>> 1) ^ -(raw & 1);
      }
      raw |= (byte & 0x7f) << shift;
      if (byte < 0x80) return (raw >>> 1) ^ -(raw & 1);
    }
    return this.fail(`${field}${suffix} varint is malformed`);
  }

  /**
   * A zigzag varlong of at most 10 bytes, as a number: refused when its magnitude passes 2^53
   * (no timestamp delta of a real batch comes near that).
   */
  int64(field: string): number {
    const buf = this.buf;
    let raw = 0;
    let multiplier = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail(`${field} runs past the end of the record`);
      const byte = buf[this.pos++]!;
      raw += (byte & 0x7f) * multiplier;
      if (byte < 0x80) {
        if (raw > Number.MAX_SAFE_INTEGER) this.fail(`${field} is outside the safe-integer range`);
        return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2;
      }
      multiplier *= 128;
    }
    return this.fail(`${field} varint is longer than 10 bytes`);
  }

  /** Skips a length-prefixed field; returns its length (−1 = null). */
  field(name: string): number {
    const length = this.int32(name, ' length');
    if (length < -1) this.fail(`${name} length ${length} is negative`);
    if (length > this.end - this.pos) {
      this.fail(`${name} length ${length} overruns the record by ${length - (this.end - this.pos)} bytes`);
    }
    if (length > 0) this.pos += length;
    return length;
  }
}

/**
 * A varint of one or two bytes at `pos` (before `end`): its raw value, still zigzagged, in the low
 * 16 bits and the bytes it took in bits 16 and up (`small` decodes the value). Returns -1 for
 * anything longer or cut off: the caller then leaves the record to the full reader.
 */
function smallRaw(buf: Buffer, pos: number, end: number): number {
  if (pos >= end) return -1;
  const first = buf[pos]!;
  if (first < 0x80) return first | 0x10000;
  if (pos + 1 >= end) return -1;
  const second = buf[pos + 1]!;
  if (second >= 0x80) return -1;
  return (first & 0x7f) | (second << 7) | 0x20000;
}

/** The zigzag-decoded value of a `smallRaw` result. */
function small(raw: number): number {
  const u = raw & 0xffff;
  return (u >>> 1) ^ -(u & 1);
}

// What the last quickRecord that returned ≥ 0 found (module state: no object per record).
let quickTimestampDelta = 0;
let quickKeyStart = 0;
let quickKeyLength = -1;

/**
 * The common record, checked in one pass of local reads: every varint one or two bytes (so also
 * an offset delta below 8,192: later records of a larger batch go to the full reader), no
 * headers. Returns the record's end when the record is valid in every respect the full reader
 * checks (attributes 0, offset delta `index`, lengths within the record, nothing left over),
 * else -1, and the full reader decides. Never throws.
 */
function quickRecord(buf: Buffer, pos: number, sectionEnd: number, index: number): number {
  let raw = smallRaw(buf, pos, sectionEnd);
  if (raw < 0) return -1;
  const length = small(raw);
  pos += raw >>> 16;
  const end = pos + length;
  if (length < 0 || end > sectionEnd || pos >= end || buf[pos] !== 0) return -1;
  pos++;
  raw = smallRaw(buf, pos, end);
  if (raw < 0) return -1;
  const timestampDelta = small(raw);
  pos += raw >>> 16;
  raw = smallRaw(buf, pos, end);
  if (raw < 0 || small(raw) !== index) return -1;
  pos += raw >>> 16;
  raw = smallRaw(buf, pos, end);
  if (raw < 0) return -1;
  const keyLength = small(raw);
  pos += raw >>> 16;
  if (keyLength < -1 || keyLength > end - pos) return -1;
  const keyStart = pos;
  if (keyLength > 0) pos += keyLength;
  raw = smallRaw(buf, pos, end);
  if (raw < 0) return -1;
  const valueLength = small(raw);
  pos += raw >>> 16;
  if (valueLength < -1 || valueLength > end - pos) return -1;
  if (valueLength > 0) pos += valueLength;
  // A header count of 0 is the single byte 0, and the record's last.
  if (pos + 1 !== end || buf[pos] !== 0) return -1;
  quickTimestampDelta = timestampDelta;
  quickKeyStart = keyStart;
  quickKeyLength = keyLength;
  return end;
}

/**
 * Validates every record of `section` (the records section, inflated) against the batch header and
 * calls `visit` with each record's key, in the same pass. Throws BAD_RECORD_BATCH on the first
 * violation; `visit` may have been called for earlier records by then.
 */
export function validateRecords(section: Buffer, expect: RecordsExpectation, visit?: KeyVisitor): void {
  const count = expect.recordCount;
  const baseTimestamp = expect.baseTimestamp;
  if (baseTimestamp > MAX_SAFE || baseTimestamp < -MAX_SAFE) {
    throw errorOf('BAD_RECORD_BATCH', `baseTimestamp ${baseTimestamp} is outside the safe-integer range`);
  }
  const base = Number(baseTimestamp);
  const reader = new RecordReader(section);
  const sectionEnd = section.length;
  let maxDelta = Number.NEGATIVE_INFINITY;
  let minDelta = Number.POSITIVE_INFINITY;
  for (let i = 0; i < count; i++) {
    // Most records take the quick check; any record it does not vouch for is checked again from
    // its start by the reader below, which decides (and names what is wrong).
    const quickEnd = quickRecord(section, reader.pos, sectionEnd, i);
    if (quickEnd >= 0) {
      const delta = quickTimestampDelta;
      if (delta > maxDelta) maxDelta = delta;
      if (delta < minDelta) minDelta = delta;
      if (visit !== undefined) {
        if (quickKeyLength === -1) visit(null, i);
        else visit(section.subarray(quickKeyStart, quickKeyStart + quickKeyLength), i);
      }
      reader.pos = quickEnd;
      continue;
    }
    reader.index = i;
    if (reader.pos >= sectionEnd) {
      throw errorOf(
        'BAD_RECORD_BATCH',
        `recordCount is ${count} but the records section ends after ${i} records`,
      );
    }
    reader.end = sectionEnd;
    const length = reader.int32('length');
    if (length < 0) reader.fail(`length ${length} is negative`);
    const end = reader.pos + length;
    if (end > sectionEnd) {
      reader.fail(`length ${length} overruns the records section by ${end - sectionEnd} bytes`);
    }
    reader.end = end;
    if (reader.pos >= end) reader.fail('attributes run past the end of the record');
    const attributes = section[reader.pos++]!;
    if (attributes !== 0) reader.fail(`attributes 0x${attributes.toString(16)}, must be 0`);
    const timestampDelta = reader.int64('timestampDelta');
    if (timestampDelta > maxDelta) maxDelta = timestampDelta;
    if (timestampDelta < minDelta) minDelta = timestampDelta;
    const offsetDelta = reader.int32('offsetDelta');
    if (offsetDelta !== i) reader.fail(`offsetDelta ${offsetDelta}, expected ${i}`);
    const keyLength = reader.field('key');
    const keyEnd = reader.pos;
    reader.field('value');
    const headerCount = reader.int32('header count');
    if (headerCount < 0) reader.fail(`header count ${headerCount} is negative`);
    // Each header takes at least two bytes (two one-byte lengths).
    if (headerCount > (end - reader.pos) / 2) {
      reader.fail(`header count ${headerCount} does not fit in the ${end - reader.pos} bytes left`);
    }
    for (let h = 0; h < headerCount; h++) {
      const keyLengthAt = reader.pos;
      const headerKeyLength = reader.field(`header ${h} key`);
      if (headerKeyLength === -1) reader.fail(`header ${h} has a null key`);
      const headerKeyEnd = reader.pos;
      if (!isUtf8(section.subarray(headerKeyEnd - headerKeyLength, headerKeyEnd))) {
        reader.fail(`header ${h} key is not valid UTF-8 (at byte ${keyLengthAt} of the records)`);
      }
      reader.field(`header ${h} value`);
    }
    if (reader.pos !== end) reader.fail(`${end - reader.pos} bytes left after its last header`);
    if (visit !== undefined) {
      if (keyLength === -1) visit(null, i);
      else visit(section.subarray(keyEnd - keyLength, keyEnd), i);
    }
  }
  if (reader.pos !== sectionEnd) {
    throw errorOf(
      'BAD_RECORD_BATCH',
      `${sectionEnd - reader.pos} trailing bytes after the ${count} records the header declares`,
    );
  }
  const largest = base + maxDelta;
  const smallest = base + minDelta;
  if (!Number.isSafeInteger(largest) || !Number.isSafeInteger(smallest)) {
    throw errorOf(
      'BAD_RECORD_BATCH',
      `record timestamps ${smallest}…${largest} leave the safe-integer range`,
    );
  }
  if (BigInt(largest) !== expect.maxTimestamp) {
    throw errorOf(
      'BAD_RECORD_BATCH',
      `maxTimestamp ${expect.maxTimestamp} is not the largest record timestamp ${largest}`,
    );
  }
}
