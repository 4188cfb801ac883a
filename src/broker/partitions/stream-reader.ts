// Reads of one stream (the records of one key) of a partition from a stream sequence: the stream
// index names the offsets of its messages, and only the batches holding them are read (no
// partition scan). Sequences are the stream's own, also after retention removed its first messages.

import type { ReadStreamResponse, StreamRecordView } from '../../protocol/commands/data-types.js';
import {
  type DecodedRecord,
  type InflateLimits,
  iterateRecords,
  splitBatches,
} from '../../protocol/record-batch.js';
import { BATCH_OFFSETS } from '../../protocol/record-batch-layout.js';
import type { PartitionLog } from '../../storage/partition-log.js';
import { StreamIndex } from '../../storage/stream-index.js';
import type { DataWaiters } from './data-waiters.js';

export class StreamReader {
  constructor(
    private readonly partition: number,
    private readonly log: PartitionLog,
    private readonly streams: StreamIndex,
    private readonly waiters: DataWaiters,
    private readonly limits: () => InflateLimits,
  ) {}

  /** Reads up to `maxRecords` of the stream `key` from `fromSequence`, waiting up to `maxWaitMs`. */
  async read(
    key: Buffer,
    fromSequence: number,
    maxRecords: number,
    maxWaitMs: number,
  ): Promise<ReadStreamResponse> {
    const streamKey = StreamIndex.keyOf(key);
    const deadline = Date.now() + maxWaitMs;
    // Waits (up to maxWaitMs) while there is nothing to serve: the stream has no message at or
    // past `fromSequence` yet, or those it has are not readable yet, or retention deleted them.
    // The index is asked again only when the stream's version moved or the high watermark passed
    // a located message, not on every append to the partition.
    let seenVersion = -1;
    let waitingFor = -1n;
    for (;;) {
      const version = this.streams.version(streamKey);
      if (fromSequence < version && (version !== seenVersion || this.log.highWatermark > waitingFor)) {
        seenVersion = version;
        const located = await this.streams.locate(streamKey, fromSequence, maxRecords);
        const records = await this.records(key, located);
        if (records.length > 0) return { partition: this.partition, version, records };
        const pending = located.find((l) => BigInt(l.offset) >= this.log.highWatermark);
        waitingFor = pending === undefined ? BigInt(Number.MAX_SAFE_INTEGER) : BigInt(pending.offset);
      }
      const left = deadline - Date.now();
      if (maxWaitMs <= 0 || left <= 0) return { partition: this.partition, version, records: [] };
      await this.waiters.wait(left);
    }
  }

  /** The records at the located offsets (below the high watermark), reading only their batches. */
  private async records(
    key: Buffer,
    located: readonly { offset: number; sequence: number }[],
  ): Promise<StreamRecordView[]> {
    const records: StreamRecordView[] = [];
    const highWatermark = this.log.highWatermark;
    const logStart = this.log.logStartOffset;
    const limits = this.limits();
    // The batch last read, decoded once: a stream's messages often share batches.
    let decoded: DecodedRecord[] = [];
    let batchFirst = -1n;
    let batchLast = -1n;
    for (const { offset: at, sequence } of located) {
      const offset = BigInt(at);
      if (offset >= highWatermark) break;
      if (offset < logStart) continue;
      if (offset < batchFirst || offset > batchLast) {
        // The batch holding the offset: read() returns it first, and at least that one.
        let data: Buffer;
        try {
          ({ data } = await this.log.read(offset, 1));
        } catch (error) {
          if (offset < this.log.logStartOffset) continue; // Retention deleted it meanwhile.
          throw error;
        }
        const batch = splitBatches(data).next().value;
        if (batch === undefined) break;
        batchFirst = batch.readBigInt64BE(BATCH_OFFSETS.baseOffset);
        batchLast = batchFirst + BigInt(batch.readInt32BE(BATCH_OFFSETS.lastOffsetDelta));
        decoded = [...iterateRecords(batch, limits)];
      }
      const guess = decoded[Number(offset - batchFirst)];
      const record = guess?.offset === offset ? guess : decoded.find((r) => r.offset === offset);
      // A hash collision in the index would name another key's record: check the key.
      if (record === undefined || record.key === null || !record.key.equals(key)) continue;
      records.push({
        offset: record.offset,
        sequence,
        timestamp: record.timestamp,
        key: Buffer.from(record.key),
        value: record.value === null ? null : Buffer.from(record.value),
        headers: record.headers.map((h) => ({
          key: h.key,
          value: h.value === null ? null : Buffer.from(h.value),
        })),
      });
    }
    return records;
  }
}
