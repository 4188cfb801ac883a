// Reads one stream (the messages of one key) by long polling, from a stream sequence.

import type { StreamRecordView } from '../../protocol/commands/data-types.js';
import type { Message } from '../message.js';
import type { Feed, FeedContext } from './feed.js';
import { backoffMs, delay, isRetriable } from './retry.js';

export class StreamFeed implements Feed {
  private buffer: StreamRecordView[] = [];
  private index = 0;
  private polling = false;
  private closed = false;
  private partition = -1;

  constructor(
    private readonly context: FeedContext,
    readonly topic: string,
    private readonly key: Buffer,
    /** The next stream sequence to deliver. */
    private sequence: number,
  ) {}

  next(): Message | null {
    const record = this.buffer[this.index];
    if (record === undefined) {
      this.poll();
      return null;
    }
    this.index++;
    this.sequence = record.sequence + 1;
    return { topic: this.topic, partition: this.partition, ...record };
  }

  /** A stream consumer commits nothing: nothing to settle. */
  settle(): void {}

  private poll(): void {
    if (this.polling || this.closed) return;
    this.polling = true;
    void (async () => {
      for (let attempt = 0; !this.closed; attempt++) {
        try {
          const response = await this.context.transport.request(
            'readStream',
            {
              topic: this.topic,
              key: this.key,
              fromSequence: this.sequence,
              maxRecords: 1000,
              maxWaitMs: 1000,
            },
            { timeoutMs: this.context.timeoutMs + 1000 },
          );
          this.partition = response.partition;
          if (response.records.length > 0) {
            this.buffer = response.records;
            this.index = 0;
            break;
          }
          attempt = -1;
        } catch (error) {
          if (!isRetriable(error)) {
            this.context.fail(error as Error);
            break;
          }
          await delay(backoffMs(attempt));
        }
      }
      this.polling = false;
      this.context.wake();
    })();
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
