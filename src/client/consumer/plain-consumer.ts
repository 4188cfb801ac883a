// A consumer of topics without a group: every partition of the topics (or the ones chosen), each
// from `from`. It commits nothing.

import type { ConsumerSource } from './consumer-source.js';
import type { Delivery } from './delivery.js';
import type { ConsumerOptions } from './options.js';
import { PartitionFeeds, type PartitionPosition } from './partition-feeds.js';

export class PlainConsumer implements ConsumerSource {
  private readonly feeds: PartitionFeeds;
  private closed = false;

  constructor(
    private readonly delivery: Delivery,
    private readonly options: ConsumerOptions,
  ) {
    this.feeds = new PartitionFeeds(delivery, options.from ?? 'earliest');
  }

  async start(): Promise<void> {
    for (const topic of this.options.topics ?? []) {
      const description = await this.delivery.transport.request(
        'describeTopic',
        { name: topic },
        { timeoutMs: this.delivery.timeoutMs },
      );
      const partitions = this.options.partitions ?? description.partitions.map((p) => p.partition);
      for (const partition of partitions) {
        // Closed while starting: the consumer closes the feeds it has, so open no more.
        if (this.closed) return;
        await this.feeds.open(topic, partition, null);
      }
    }
  }

  async takeDueStep(): Promise<void> {}

  async commit(): Promise<void> {}

  seek(topic: string, partition: number, offset: bigint): Promise<void> {
    return this.feeds.seek(topic, partition, offset);
  }

  positions(): PartitionPosition[] {
    return this.feeds.positions();
  }

  resumed(): void {
    this.feeds.grantAll();
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
