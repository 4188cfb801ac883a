// A consumer of one stream (the messages of one key, with their stream sequences), read from a
// sequence number. It has no partitions to seek or commit.

import { errorOf } from '../../protocol/error-codes.js';
import { type Bytes, toBuffer } from '../message.js';
import type { ConsumerSource } from './consumer-source.js';
import type { Delivery } from './delivery.js';
import type { StartPosition } from './options.js';
import type { PartitionPosition } from './partition-feeds.js';
import { StreamFeed } from './stream-feed.js';

export class StreamConsumer implements ConsumerSource {
  constructor(
    private readonly delivery: Delivery,
    private readonly stream: { topic: string; key: string | Bytes },
    private readonly from: StartPosition | number,
  ) {}

  async start(): Promise<void> {
    const from = this.from;
    if (typeof from !== 'number' && typeof from !== 'bigint' && from !== 'earliest') {
      throw errorOf('INVALID_REQUEST', 'a stream is read from a sequence number or from earliest');
    }
    const sequence = from === 'earliest' ? 0 : Number(from);
    this.delivery.add(new StreamFeed(this.delivery, this.stream.topic, toBuffer(this.stream.key), sequence));
  }

  async takeDueStep(): Promise<void> {}

  async commit(): Promise<void> {}

  async seek(topic: string, partition: number, _offset: bigint): Promise<void> {
    throw errorOf('UNKNOWN_PARTITION', `this consumer does not read ${topic}/${partition}`);
  }

  positions(): PartitionPosition[] {
    return [];
  }

  resumed(): void {}

  async close(): Promise<void> {}
}
