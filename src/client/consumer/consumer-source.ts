// What decides which feeds a consumer reads: the partitions of topics (plain), the partitions a
// group assigns (group), or one stream. The public Consumer delegates everything but delivery here.

import type { PartitionPosition } from './partition-feeds.js';

export interface ConsumerSource {
  /** Sets up the feeds (subscribes, or joins the group first). */
  start(): Promise<void>;
  /** Takes the step the source marked due on the delivery (a commit, a rebalance, a rejoin). */
  takeDueStep(): Promise<void>;
  commit(): Promise<void>;
  seek(topic: string, partition: number, offset: bigint): Promise<void>;
  positions(): PartitionPosition[];
  /** The application resumed after a pause. */
  resumed(): void;
  /** Leaves whatever the source joined; the consumer closes the feeds after it. */
  close(): Promise<void>;
}
