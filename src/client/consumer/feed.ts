// A feed is one source of messages a consumer reads from (a partition's push subscription, or one
// stream's long poll). Feeds see the consumer only through FeedContext: what they need to fetch,
// and how they tell it that data arrived, a batch was skipped, or they failed for good.

import type { Message } from '../message.js';
import type { Transport } from '../transport.js';
import type { UndecodableBatch } from './options.js';

export interface Feed {
  /** The next buffered message, or null when none is buffered (never waits). */
  next(): Message | null;
  /** The message `next` returned last is processed (a commit may move past it). */
  settle(): void;
  close(): Promise<void>;
}

export interface FeedContext {
  readonly transport: Transport;
  /** Bytes each partition may have in flight towards the consumer. */
  readonly creditBytes: number;
  readonly timeoutMs: number;
  readonly inflateLimits: { readonly maxDecompressedBytes: number };
  /** True while the application paused the consumer: no credit is returned then. */
  isPaused(): boolean;
  /** Data arrived (or a feed's state changed): a waiting read looks again. */
  wake(): void;
  /** The feed cannot go on: the consumer's reads fail with this error. */
  fail(error: Error): void;
  /** A batch was skipped because its records cannot be decoded: the application hears of it. */
  reportUndecodable(event: UndecodableBatch): void;
}
