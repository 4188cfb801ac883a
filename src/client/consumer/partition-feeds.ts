// The partitions a topic consumer reads, one PartitionFeed each: where each starts (a committed
// offset, or the `from` option), and what the application asks of them (positions, seek, resumed
// credit). Plain and group consumers both keep theirs here.

import { errorOf } from '../../protocol/error-codes.js';
import type { Delivery } from './delivery.js';
import type { StartPosition } from './options.js';
import { PartitionFeed } from './partition-feed.js';
import { retrying } from './retry.js';

export interface PartitionPosition {
  topic: string;
  partition: number;
  offset: bigint;
}

const keyOf = (topic: string, partition: number) => `${partition}:${topic}`;

export class PartitionFeeds {
  private readonly feeds = new Map<string, PartitionFeed>();

  constructor(
    private readonly delivery: Delivery,
    private readonly from: StartPosition | number,
  ) {}

  has(topic: string, partition: number): boolean {
    return this.feeds.has(keyOf(topic, partition));
  }

  all(): PartitionFeed[] {
    return [...this.feeds.values()];
  }

  /**
   * Starts reading a partition at `committed`, or where `from` says when it is null. With
   * `persist`, a step that fails for a reason that passes is retried (a group member taking over
   * partitions while a leader moves); without, the error is the caller's.
   */
  async open(topic: string, partition: number, committed: bigint | null, persist = false): Promise<void> {
    const offset =
      committed ??
      (persist
        ? await retrying(
            () => this.startOffset(topic, partition),
            () => this.delivery.closed,
          )
        : await this.startOffset(topic, partition));
    // The consumer closed while the offset was looked up: it has closed the feeds it had already.
    if (this.delivery.closed) return;
    const feed = new PartitionFeed(this.delivery, topic, partition, offset < 0n ? -1n : offset);
    this.feeds.set(keyOf(topic, partition), feed);
    this.delivery.add(feed);
    if (persist) await feed.startOrRetry(offset);
    else await feed.start(offset);
  }

  /** The subscription offset `from` means for this partition (-2 earliest, -1 latest). */
  private async startOffset(topic: string, partition: number): Promise<bigint> {
    const from = this.from;
    if (from === 'earliest') return -2n;
    if (from === 'latest') return -1n;
    if (typeof from === 'object') {
      const answer = await this.delivery.transport.request(
        'listOffsets',
        { topic, partition, spec: from },
        { timeoutMs: this.delivery.timeoutMs },
      );
      return answer.offset;
    }
    return BigInt(from);
  }

  /** Stops delivering from these partitions; their subscriptions stay open until the caller closes them. */
  detach(feeds: readonly PartitionFeed[]): void {
    for (const feed of feeds) this.feeds.delete(keyOf(feed.topic, feed.partition));
    this.delivery.remove(feeds);
  }

  /** Stops reading these partitions and closes their subscriptions. */
  async remove(feeds: readonly PartitionFeed[]): Promise<void> {
    this.detach(feeds);
    await Promise.all(feeds.map((feed) => feed.close()));
  }

  async removeAll(): Promise<void> {
    await this.remove(this.all());
  }

  positions(): PartitionPosition[] {
    return this.all().map((f) => ({ topic: f.topic, partition: f.partition, offset: f.position }));
  }

  async seek(topic: string, partition: number, offset: bigint): Promise<void> {
    const feed = this.feeds.get(keyOf(topic, partition));
    if (feed === undefined)
      throw errorOf('UNKNOWN_PARTITION', `this consumer does not read ${topic}/${partition}`);
    await feed.seek(offset);
  }

  /** After a pause: hands back the credit held while paused. */
  grantAll(): void {
    for (const feed of this.feeds.values()) feed.grantIfDue();
  }
}
