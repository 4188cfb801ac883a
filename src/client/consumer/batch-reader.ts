// The batch form of a consumer: whole record batches, round-robin over the partitions, each a view
// that decodes its records only when asked (record-batch-view.ts). A batch handed out is delivered
// but not processed: the partition's position (what a commit writes) stays at its start until the
// next batch is asked for, its `eachBatch` handler returned, or `batch.commit()` was called. So a
// handler that throws, or a loop left by an exception, commits nothing of the batch it was on.

import { errorOf } from '../../protocol/error-codes.js';
import type { BatchOwner, MessageBatch, RecordBatchView } from '../record-batch-view.js';
import type { ConsumerSource } from './consumer-source.js';
import type { Delivery } from './delivery.js';
import type { ConsumerOptions } from './options.js';
import { PartitionFeed } from './partition-feed.js';

interface Held {
  feed: PartitionFeed;
  batch: RecordBatchView;
}

export class BatchReader implements BatchOwner {
  private cursor = 0;
  /** Batches handed out and not yet processed, in the order they went out. */
  private held: Held[] = [];

  constructor(
    private readonly delivery: Delivery,
    private readonly source: ConsumerSource,
    private readonly start: () => Promise<void>,
  ) {}

  /** The batch API reads partitions as they are stored; refused where messages need more than that. */
  static check(options: ConsumerOptions): void {
    if (options.stream !== undefined)
      throw errorOf(
        'INVALID_REQUEST',
        'a stream consumer delivers messages, not batches: use next() or for await',
      );
    if (options.security !== undefined)
      throw errorOf(
        'INVALID_REQUEST',
        'a consumer with `security` checks every message before it delivers it: use next() or for await, not batches',
      );
  }

  /** The next batch, waiting for one; null once the consumer is closed. Marks the previous ones processed. */
  async next(): Promise<MessageBatch | null> {
    this.releaseAll();
    // A message read one by one before this batch is processed too.
    this.delivery.settle();
    const delivery = this.delivery;
    if (!delivery.started) await this.start();
    for (;;) {
      const failure = delivery.error;
      if (failure !== null) throw failure;
      if (delivery.closed) return null;
      if (delivery.stepDue) await this.source.takeDueStep();
      if (!delivery.isPaused()) {
        const batch = this.take();
        if (batch !== null) return batch;
      }
      await delivery.waitForWake();
    }
  }

  /** The next buffered batch of any partition, round-robin so one busy partition starves none. */
  private take(): RecordBatchView | null {
    const feeds = this.delivery.all();
    for (let i = 0; i < feeds.length; i++) {
      const feed = feeds[(this.cursor + i) % feeds.length];
      if (!(feed instanceof PartitionFeed)) continue;
      const batch = feed.nextBatch(this);
      if (batch !== null) {
        this.cursor = (this.cursor + i + 1) % feeds.length;
        this.held.push({ feed, batch });
        return batch;
      }
    }
    return null;
  }

  /** Every batch handed out so far is processed. */
  releaseAll(): void {
    if (this.held.length === 0) return;
    for (const { feed } of this.held) feed.release(null);
    this.held = [];
  }

  /** `batch` and the batches handed out before it are processed; then the source commits. */
  async commitBatch(batch: RecordBatchView): Promise<void> {
    const index = this.held.findIndex((held) => held.batch === batch);
    if (index >= 0) {
      const done = this.held.slice(0, index + 1);
      this.held = this.held.slice(index + 1);
      for (const { feed } of done) {
        // A later batch of the same partition still out keeps the position at its start.
        const later = this.held.find((held) => held.feed === feed);
        feed.release(later === undefined ? null : later.batch.firstOffset);
      }
    }
    await this.source.commit();
  }

  /** Callback form: `eachBatch` for each batch, in order; a batch counts as processed once it returned. */
  async run(eachBatch: (batch: MessageBatch) => unknown): Promise<void> {
    for (let batch = await this.next(); batch !== null; batch = await this.next()) {
      await eachBatch(batch);
      this.releaseAll();
    }
  }
}
