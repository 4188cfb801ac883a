// A record batch as the batch consumer hands it out: the batch's bytes as they came from the
// broker, its offsets from the fixed header, and its records decoded only when asked for. The
// records section of a compressed batch is inflated once, on first access, and kept.
//
// Record layout inside the records section (src/protocol/record-batch.ts):
//   length varint | attributes int8 | timestampDelta varlong | offsetDelta varint |
//   keyLength varint (-1 null) | key | valueLength varint (-1 null) | value |
//   headerCount varint | headers (keyLength varint, key, valueLength varint, value)*
// The header fields read here (big-endian, src/protocol/record-batch-layout.ts): baseOffset at 0,
// attributes at 21, lastOffsetDelta at 23, baseTimestamp at 27, recordCount at 57.

import { codecName } from '../protocol/compression.js';
import { errorOf } from '../protocol/error-codes.js';
import { type InflateLimits, recordsSection } from '../protocol/record-batch.js';
import {
  BATCH_HEADER_SIZE,
  BATCH_OFFSETS,
  COMPRESSION_CODEC_MASK,
  readInt64,
  readInt64AsNumber,
} from '../protocol/record-batch-layout.js';
import { VarintCursor } from '../protocol/varint.js';
import type { Message, MessageHeader } from './message.js';

const EMPTY_HEADERS: MessageHeader[] = [];

/** One record batch of one partition, delivered whole. */
export interface MessageBatch {
  readonly topic: string;
  readonly partition: number;
  /** The batch's bytes as stored and sent by the broker (header, CRC and records; compressed if it was). */
  readonly bytes: Buffer;
  /** Offset of the batch's first record. */
  readonly baseOffset: bigint;
  /**
   * Offset of the first message this batch delivers: `baseOffset`, unless the consumer started (or
   * was moved by `seek`) into the middle of the batch; the records before it are skipped.
   */
  readonly firstOffset: bigint;
  /** Offset of the batch's last record. */
  readonly lastOffset: bigint;
  /** Messages this batch delivers (from `firstOffset` to `lastOffset`). */
  readonly count: number;
  /** The batch's base timestamp (ms since the epoch). */
  readonly timestamp: number;
  /** The compression the batch was written with. */
  readonly compression: string;
  /** The values, in order, as views into the batch (no Message object each); null for a null value. */
  values(): IterableIterator<Buffer | null>;
  /**
   * Calls `visit` once per value, in order, with where the value lies in `buffer` (the records
   * section: `buffer.subarray(start, end)` is the value). Allocates nothing per message: the
   * fastest way through a batch for a consumer that reads values in place (`buffer.toString('utf8',
   * start, end)`, `buffer.readUInt32BE(start)`, a parser that takes offsets). A null value is
   * visited with `start` and `end` both -1. `buffer` is immutable and stays valid after the call.
   */
  forEachValue(visit: (buffer: Buffer, start: number, end: number) => void): void;
  /** The messages, decoded one at a time as the iteration asks for them. */
  messages(): IterableIterator<Message>;
  [Symbol.iterator](): IterableIterator<Message>;
  /**
   * Counts this batch (and every batch delivered before it) as processed and, for a group consumer,
   * commits the offsets now. Otherwise a batch counts as processed when the next one is asked for
   * (or, with `run({ eachBatch })`, when its handler returns).
   */
  commit(): Promise<void>;
}

/** What a view needs from the consumer that delivered it. */
export interface BatchOwner {
  commitBatch(batch: RecordBatchView): Promise<void>;
}

export class RecordBatchView implements MessageBatch {
  readonly baseOffset: bigint;
  readonly lastOffset: bigint;
  private section: Buffer | null = null;
  private counted = -1;

  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly bytes: Buffer,
    /** Records below this offset are not delivered (a start or seek inside the batch). */
    readonly firstOffset: bigint,
    private readonly limits: InflateLimits,
    private readonly owner: BatchOwner | null,
  ) {
    this.baseOffset = readInt64(bytes, BATCH_OFFSETS.baseOffset);
    this.lastOffset = this.baseOffset + BigInt(bytes.readInt32BE(BATCH_OFFSETS.lastOffsetDelta));
    if (firstOffset < this.baseOffset) this.firstOffset = this.baseOffset;
  }

  get count(): number {
    if (this.counted < 0) {
      if (this.firstOffset === this.baseOffset) this.counted = this.recordCount;
      else {
        let count = 0;
        for (const _ of this.values()) count++;
        this.counted = count;
      }
    }
    return this.counted;
  }

  get timestamp(): number {
    return readInt64AsNumber(this.bytes, BATCH_OFFSETS.baseTimestamp);
  }

  get compression(): string {
    return codecName(this.bytes.readInt16BE(BATCH_OFFSETS.attributes) & COMPRESSION_CODEC_MASK);
  }

  private get recordCount(): number {
    return this.bytes.readInt32BE(BATCH_OFFSETS.recordCount);
  }

  /** The records section, inflated once for a compressed batch. */
  records(): Buffer {
    if (this.section === null) {
      const attributes = this.bytes.readInt16BE(BATCH_OFFSETS.attributes);
      this.section =
        (attributes & COMPRESSION_CODEC_MASK) === 0
          ? this.bytes.subarray(BATCH_HEADER_SIZE)
          : recordsSection(this.bytes, this.limits);
    }
    return this.section;
  }

  values(): IterableIterator<Buffer | null> {
    return new ValueIterator(this.records(), this.recordCount, this.firstSkippedDelta());
  }

  forEachValue(visit: (buffer: Buffer, start: number, end: number) => void): void {
    const section = this.records();
    const count = this.recordCount;
    const skipBelowDelta = this.firstSkippedDelta();
    const cursor = new VarintCursor(section, 0, section.length);
    for (let i = 0; i < count; i++) {
      const end = cursor.enterRecord(i, section.length);
      cursor.varint();
      if (cursor.varint() >= skipBelowDelta) {
        cursor.skipBytes();
        const valueLength = cursor.skipBytes();
        if (valueLength === -1) visit(section, -1, -1);
        else visit(section, cursor.pos - valueLength, cursor.pos);
      }
      cursor.pos = end;
    }
  }

  messages(): IterableIterator<Message> {
    return new MessageIterator(this, this.records(), this.recordCount, this.firstSkippedDelta());
  }

  [Symbol.iterator](): IterableIterator<Message> {
    return this.messages();
  }

  commit(): Promise<void> {
    return this.owner === null ? Promise.resolve() : this.owner.commitBatch(this);
  }

  /** Records whose offset delta is below this are skipped. */
  private firstSkippedDelta(): number {
    return Number(this.firstOffset - this.baseOffset);
  }
}

/**
 * Walks the records of a section. The cursor's `end` is the current record's end while inside it.
 * One iterator result object is reused across steps: `for … of` and spreading read it at once.
 */
abstract class RecordWalker<T> implements IterableIterator<T> {
  protected readonly cursor: VarintCursor;
  private index = 0;
  private readonly result: IteratorResult<T> = { done: false, value: undefined as T };

  constructor(
    protected readonly section: Buffer,
    private readonly count: number,
    private readonly skipBelowDelta: number,
  ) {
    this.cursor = new VarintCursor(section, 0, section.length);
  }

  next(): IteratorResult<T> {
    const cursor = this.cursor;
    const section = this.section;
    while (this.index < this.count) {
      const end = cursor.enterRecord(this.index++, section.length);
      const timestampDelta = cursor.varint();
      const offsetDelta = cursor.varint();
      if (offsetDelta < this.skipBelowDelta) {
        cursor.pos = end;
        continue;
      }
      const value = this.read(timestampDelta, offsetDelta, end);
      cursor.pos = end;
      this.result.value = value;
      return this.result;
    }
    return { done: true, value: undefined };
  }

  /** Reads the rest of the record (cursor after its offset delta). */
  protected abstract read(timestampDelta: number, offsetDelta: number, end: number): T;

  [Symbol.iterator](): IterableIterator<T> {
    return this;
  }
}

class ValueIterator extends RecordWalker<Buffer | null> {
  protected read(): Buffer | null {
    this.cursor.skipBytes();
    return this.cursor.bytesOrNull();
  }
}

class MessageIterator extends RecordWalker<Message> {
  private readonly baseTimestamp: number;

  constructor(
    private readonly batch: RecordBatchView,
    section: Buffer,
    count: number,
    skipBelowDelta: number,
  ) {
    super(section, count, skipBelowDelta);
    this.baseTimestamp = batch.timestamp;
  }

  protected read(timestampDelta: number, offsetDelta: number, end: number): Message {
    const cursor = this.cursor;
    const key = cursor.bytesOrNull();
    const value = cursor.bytesOrNull();
    const headerCount = cursor.varint();
    if (headerCount < 0 || headerCount * 2 > end - cursor.pos)
      throw errorOf(
        'BAD_RECORD_BATCH',
        `a record declares ${headerCount} headers in ${end - cursor.pos} bytes`,
      );
    let headers = EMPTY_HEADERS;
    if (headerCount > 0) {
      headers = [];
      for (let h = 0; h < headerCount; h++) {
        const headerKey = cursor.bytesOrNull();
        if (headerKey === null) throw errorOf('BAD_RECORD_BATCH', `header ${h} of a record has a null key`);
        headers.push({ key: headerKey.toString('utf8'), value: cursor.bytesOrNull() });
      }
    }
    return {
      topic: this.batch.topic,
      partition: this.batch.partition,
      offset: this.batch.baseOffset + BigInt(offsetDelta),
      sequence: -1,
      timestamp: this.baseTimestamp + timestampDelta,
      key,
      value,
      headers,
    };
  }
}
