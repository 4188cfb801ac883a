// One partition's push subscription and the batches it delivered that the application has not
// read yet, decoded lazily into messages. Credit goes back to the broker only for bytes the
// application consumed, so a slow consumer slows only itself. A broken subscription resubscribes
// from the next undelivered offset.
//
// The broker pushes a batch only when the credit left covers all of it (or, for a batch larger
// than the whole window, once all of the window is back), so credit kept back can stop a partition
// for good. Consumed bytes go back in steps of a quarter of the window; and once the buffer is
// empty, at once when the broker holds more than it pushed, or a moment later when caught up (the
// next append may be larger than the credit left; a frame per message would cost the latency path).

import { MemoryStreamerError } from '../../common/errors.js';
import { type DecodedRecord, iterateRecords, splitBatches } from '../../protocol/record-batch.js';
import { BATCH_OFFSETS, readBatchHeader, readInt64 } from '../../protocol/record-batch-layout.js';
import type { Message } from '../message.js';
import { type BatchOwner, RecordBatchView } from '../record-batch-view.js';
import type { RemoteSubscription } from '../transport.js';
import type { Feed, FeedContext } from './feed.js';
import { backoffMs, delay, isRetriable } from './retry.js';

/** Errors of a batch's records (as opposed to its transport): the batch is skipped, not the consumer stopped. */
const UNDECODABLE = new Set(['BAD_RECORD_BATCH', 'DECOMPRESSED_TOO_LARGE', 'UNSUPPORTED_COMPRESSION']);
const EMPTY_HEADERS: Message['headers'] = [];
/** How long a caught-up feed keeps consumed credit back before it returns all of it. */
const CAUGHT_UP_GRANT_MS = 50;

export class PartitionFeed implements Feed {
  private subscription: RemoteSubscription | null = null;
  private readonly chunks: Buffer[] = [];
  private batches: Buffer[] = [];
  private batchIndex = 0;
  private records: Iterator<DecodedRecord> | null = null;
  /** The batch `records` decodes, and how many of its records came out so far. */
  private currentBatch: Buffer | null = null;
  private deliveredFromBatch = 0;
  private currentChunkSize = 0;
  private ungranted = 0;
  /** The high watermark of the last push: below it the broker holds data it has not pushed. */
  private knownEnd = -1n;
  /** The grant of a caught-up feed's consumed credit, due shortly (grantIfDue). */
  private caughtUpGrant: NodeJS.Timeout | null = null;
  private closed = false;
  private generation = 0;
  /** Where the first subscription starts (-2 earliest, -1 latest): a retry before it resolved starts there too. */
  private startOffset = -1n;
  /** The offset after the last message delivered (-1 until the first subscription resolved it). */
  private offset: bigint;
  /** Where a batch handed out whole and not yet processed starts: the position until it is. */
  private heldFrom: bigint | null = null;
  /**
   * The offset of the message handed out last, until the application asks for the next one: the
   * offset a commit writes, so a message whose handler failed is delivered again.
   */
  private inHand: bigint | null = null;

  constructor(
    private readonly context: FeedContext,
    readonly topic: string,
    readonly partition: number,
    position: bigint,
  ) {
    this.offset = position;
  }

  /** The next offset this feed delivers, or the start of a batch handed out and not yet processed. */
  get position(): bigint {
    return this.heldFrom ?? this.offset;
  }

  /** What a commit writes: the first offset the application has not processed yet. */
  get committable(): bigint {
    const position = this.heldFrom ?? this.offset;
    return this.inHand !== null && this.inHand < position ? this.inHand : position;
  }

  async start(offset: bigint): Promise<void> {
    if (this.offset < 0n) this.startOffset = offset;
    const generation = ++this.generation;
    const subscription = await this.context.transport.subscribe(
      { topic: this.topic, partition: this.partition, offset, credit: this.context.creditBytes },
      {
        onBatches: (chunks, highWatermark) => {
          if (generation !== this.generation) return;
          for (const chunk of chunks) this.chunks.push(chunk);
          this.knownEnd = highWatermark;
          this.context.wake();
        },
        onError: (error) => {
          if (generation === this.generation) void this.recover(error);
        },
      },
      { timeoutMs: this.context.timeoutMs },
    );
    if (generation !== this.generation || this.closed) {
      await subscription.close();
      return;
    }
    this.subscription = subscription;
    // The broker starts where asked, except a memory topic emptied by a restart: it starts at its
    // log start, below the position (docs/storage.md, "Memory topics").
    if (this.offset < 0n || subscription.offset < this.offset) this.offset = subscription.offset;
    // Bytes read before the subscription was known went back to no one.
    this.grantIfDue();
  }

  /**
   * Starts, and when the subscription cannot be made yet for a reason that passes (the partition's
   * leader is moving, the connection is down), keeps trying in the background; other errors throw.
   */
  async startOrRetry(offset: bigint): Promise<void> {
    try {
      await this.start(offset);
    } catch (error) {
      if (!isRetriable(error)) throw error;
      if (this.offset < 0n) this.startOffset = offset;
      void this.recover(error);
    }
  }

  /** A broken connection resubscribes from the next undelivered offset; other errors surface. */
  private async recover(error: Error): Promise<void> {
    this.subscription = null;
    if (this.closed) return;
    if (!isRetriable(error)) {
      this.context.fail(error);
      return;
    }
    this.resetBuffers();
    for (let attempt = 0; !this.closed; attempt++) {
      await delay(backoffMs(attempt));
      if (this.closed) return;
      try {
        await this.start(this.offset >= 0n ? this.offset : this.startOffset);
        return;
      } catch (retryError) {
        if (!isRetriable(retryError)) {
          this.context.fail(retryError as Error);
          return;
        }
      }
    }
  }

  /**
   * Drops what the old subscription pushed: the next one starts with a full window. What the
   * application holds (a batch, a message) stays unprocessed: a resubscription does not move it.
   */
  private resetBuffers(): void {
    this.chunks.length = 0;
    this.batches = [];
    this.batchIndex = 0;
    this.records = null;
    this.ungranted = 0;
    this.knownEnd = -1n;
    this.currentChunkSize = 0;
  }

  async seek(offset: bigint): Promise<void> {
    const old = this.subscription;
    this.subscription = null;
    this.generation++;
    this.resetBuffers();
    // The application moved the partition: what it held there is no longer its position.
    this.heldFrom = null;
    this.inHand = null;
    this.offset = offset;
    if (old !== null) await old.close();
    await this.start(offset);
  }

  next(): Message | null {
    for (;;) {
      if (this.records !== null) {
        let step: IteratorResult<DecodedRecord>;
        try {
          step = this.records.next();
        } catch (error) {
          if (!(error instanceof MemoryStreamerError) || !UNDECODABLE.has(error.codeName)) throw error;
          this.skipBatch(error);
          continue;
        }
        if (!step.done) {
          this.deliveredFromBatch++;
          const record = step.value;
          if (record.offset < this.offset) continue;
          this.offset = record.offset + 1n;
          this.inHand = record.offset;
          return {
            topic: this.topic,
            partition: this.partition,
            offset: record.offset,
            sequence: -1,
            timestamp: record.timestamp,
            key: record.key,
            value: record.value,
            headers: record.headers.length === 0 ? EMPTY_HEADERS : record.headers,
          };
        }
        this.records = null;
      }
      if (this.batchIndex < this.batches.length) {
        this.currentBatch = this.batches[this.batchIndex++]!;
        this.deliveredFromBatch = 0;
        this.records = iterateRecords(this.currentBatch, this.context.inflateLimits)[Symbol.iterator]();
        continue;
      }
      if (this.currentChunkSize > 0) {
        // The whole chunk is consumed: give its bytes back to the broker as credit.
        this.ungranted += this.currentChunkSize;
        this.currentChunkSize = 0;
        this.grantIfDue();
      }
      const chunk = this.chunks.shift();
      if (chunk === undefined) return null;
      this.batches = [...splitBatches(chunk)];
      this.batchIndex = 0;
      this.currentChunkSize = chunk.length;
    }
  }

  /**
   * The next batch whole (the rest of it when messages of it were read one by one), as a view that
   * decodes nothing until asked; null when none is buffered. It counts as delivered but not
   * processed (the position stays at its start) until `release`.
   */
  nextBatch(owner: BatchOwner): RecordBatchView | null {
    for (;;) {
      let batch: Buffer | null = null;
      if (this.records !== null) {
        this.records = null;
        batch = this.currentBatch;
      } else if (this.batchIndex < this.batches.length) {
        batch = this.batches[this.batchIndex++]!;
      }
      if (batch !== null) {
        const from = this.offset;
        const last =
          readInt64(batch, BATCH_OFFSETS.baseOffset) +
          BigInt(batch.readInt32BE(BATCH_OFFSETS.lastOffsetDelta));
        if (last < from) continue;
        this.offset = last + 1n;
        this.heldFrom ??= from;
        return new RecordBatchView(
          this.topic,
          this.partition,
          batch,
          from,
          this.context.inflateLimits,
          owner,
        );
      }
      if (this.currentChunkSize > 0) {
        this.ungranted += this.currentChunkSize;
        this.currentChunkSize = 0;
        this.grantIfDue();
      }
      const chunk = this.chunks.shift();
      if (chunk === undefined) return null;
      this.batches = [...splitBatches(chunk)];
      this.batchIndex = 0;
      this.currentChunkSize = chunk.length;
    }
  }

  /**
   * The batches handed out so far are processed (the position moves past them), or those before
   * `from`, where a batch still held starts.
   */
  release(from: bigint | null): void {
    this.heldFrom = from;
  }

  /** The message handed out last is processed: the application asked for the next one, or committed. */
  settle(): void {
    this.inHand = null;
  }

  /** Moves past a batch whose records cannot be decoded, and says so. */
  private skipBatch(error: MemoryStreamerError): void {
    this.records = null;
    const batch = this.currentBatch!;
    const header = readBatchHeader(batch);
    const lastOffset = header.baseOffset + BigInt(header.lastOffsetDelta);
    if (lastOffset >= this.offset) this.offset = lastOffset + 1n;
    this.context.reportUndecodable({
      topic: this.topic,
      partition: this.partition,
      firstOffset: header.baseOffset,
      lastOffset,
      delivered: this.deliveredFromBatch,
      error,
    });
  }

  /**
   * Returns consumed bytes to the broker as credit, unless paused: in steps of a quarter of the
   * window while more is buffered; once the buffer is empty, all of it, at once when the broker
   * holds more than it pushed (it may be holding back a batch the credit left does not cover), or
   * CAUGHT_UP_GRANT_MS later when caught up (an append larger than the credit left would wait that
   * long; granting at once would cost a CREDIT frame per message at low rates).
   */
  grantIfDue(): void {
    if (this.subscription === null || this.context.isPaused() || this.ungranted === 0) return;
    if (this.ungranted * 4 >= this.context.creditBytes) {
      this.grantConsumed();
      return;
    }
    if (!this.drained) return;
    if (this.offset < this.knownEnd) this.grantConsumed();
    else if (this.caughtUpGrant === null) {
      this.caughtUpGrant = setTimeout(() => {
        this.caughtUpGrant = null;
        if (!this.closed && !this.context.isPaused() && this.drained) this.grantConsumed();
      }, CAUGHT_UP_GRANT_MS);
      this.caughtUpGrant.unref();
    }
  }

  /** Nothing pushed is left to read. */
  private get drained(): boolean {
    return this.currentChunkSize === 0 && this.chunks.length === 0;
  }

  private grantConsumed(): void {
    if (this.subscription === null || this.ungranted === 0) return;
    this.subscription.grant(this.ungranted);
    this.ungranted = 0;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.caughtUpGrant !== null) clearTimeout(this.caughtUpGrant);
    this.caughtUpGrant = null;
    this.generation++;
    const subscription = this.subscription;
    this.subscription = null;
    if (subscription !== null) await subscription.close().catch(() => undefined);
  }
}
