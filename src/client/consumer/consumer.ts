// The consumer the application holds: push subscriptions per partition (or a long-poll reader for
// one stream), decoded lazily into messages as the application pulls them, `for await` or `run()`.
// Which feeds it reads is its source's business (plain topics, a group, one stream); how messages
// go out is its delivery's.

import type { Message } from '../message.js';
import type { MessageBatch } from '../record-batch-view.js';
import type { Transport } from '../transport.js';
import { BatchReader } from './batch-reader.js';
import type { ConsumerSource } from './consumer-source.js';
import { createSource } from './create-source.js';
import { Delivery } from './delivery.js';
import type { ConsumerOptions } from './options.js';

const asMessage = (message: Message | null): Message | null => message;
const asResult = (message: Message | null): IteratorResult<Message> =>
  message === null ? { done: true, value: undefined } : { done: false, value: message };

export class Consumer implements AsyncIterable<Message> {
  private readonly delivery: Delivery;
  private readonly source: ConsumerSource;
  private started: Promise<void> | null = null;
  private closing: Promise<void> | null = null;
  private readonly options: ConsumerOptions;
  private batchReader: BatchReader | null = null;

  constructor(transport: Transport, options: ConsumerOptions) {
    this.options = options;
    this.delivery = new Delivery(transport, options);
    this.source = createSource(this.delivery, options);
  }

  /** Subscribes now (otherwise the first read does); resolves once every partition is subscribed. */
  start(): Promise<void> {
    // A closed consumer subscribes to nothing: a read after close() must not open what close() closed.
    this.started ??=
      this.closing === null ? this.source.start().then(() => this.delivery.markStarted()) : Promise.resolve();
    return this.started;
  }

  /**
   * The next message, waiting for one; null once the consumer is closed. Asking for it counts the
   * message returned before as processed (what a commit may move past).
   */
  next(): Promise<Message | null> {
    this.delivery.settle();
    // Fast path, the common case while messages are buffered: no async function, no awaits, one
    // already-resolved promise per message (the iterator protocol needs a promise anyway).
    const ready = this.delivery.poll();
    if (ready !== null) return Promise.resolve(ready);
    if (!this.delivery.flowing) return this.nextWaiting();
    return new Promise<Message | null>((resolve, reject) => this.whenWoken(resolve, reject, asMessage));
  }

  /**
   * The waiting path of a consumer that is flowing (subscribed, nothing stops delivery): the
   * message is taken in the wake that announces it and the read's promise resolved there — one
   * promise and one microtask to the reader, where the general path (`nextWaiting`) takes an async
   * function, the wake's own promise and two more. Anything else the wake brings (a close, a
   * failure, a pause, a group step) goes the general way.
   */
  private whenWoken<T>(
    resolve: (value: T | PromiseLike<T>) => void,
    reject: (error: unknown) => void,
    wrap: (message: Message | null) => T,
  ): void {
    this.delivery.onNextWake(() => {
      const message = this.delivery.poll();
      if (message !== null) resolve(wrap(message));
      else this.nextWaiting().then((next) => resolve(wrap(next)), reject);
    });
  }

  private async nextWaiting(): Promise<Message | null> {
    // Once subscribed, no await on the settled start: at low rates every message comes this way.
    if (!this.delivery.started) await this.start();
    for (;;) {
      const failure = this.delivery.error;
      if (failure !== null) throw failure;
      if (this.delivery.closed) return null;
      if (this.delivery.stepDue) await this.source.takeDueStep();
      if (!this.delivery.isPaused()) {
        const message = this.delivery.take();
        if (message !== null) return message;
      }
      await this.delivery.waitForWake();
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<Message> {
    return {
      next: () => {
        this.delivery.settle();
        const ready = this.delivery.poll();
        if (ready !== null) return Promise.resolve({ done: false, value: ready });
        if (!this.delivery.flowing) return this.nextWaiting().then(asResult);
        return new Promise<IteratorResult<Message>>((resolve, reject) =>
          this.whenWoken(resolve, reject, asResult),
        );
      },
      return: async () => {
        await this.close();
        return { done: true, value: undefined };
      },
    };
  }

  /**
   * Callback form: calls `handler` for each message, in order, until the consumer closes; or, with
   * `{ eachBatch }`, for each record batch (see `batches()`), which counts as processed once the
   * handler returned (one that throws leaves its batch uncommitted).
   */
  async run(
    handler: ((message: Message) => unknown) | { eachBatch: (batch: MessageBatch) => unknown },
  ): Promise<void> {
    if (typeof handler !== 'function') return this.batchesReader().run(handler.eachBatch);
    for (let message = await this.next(); message !== null; message = await this.next())
      await handler(message);
  }

  /**
   * The batch form: whole record batches as the broker stores them, each decoding its messages
   * only when asked (`batch.values()`, `batch.messages()`). A batch counts as processed (and is
   * committed by a group consumer's next commit) once the next batch is asked for or
   * `batch.commit()` is called. Not for stream consumers or consumers with `security`.
   */
  batches(): AsyncIterableIterator<MessageBatch> {
    const reader = this.batchesReader();
    const iterator: AsyncIterableIterator<MessageBatch> = {
      next: () =>
        reader
          .next()
          .then(
            (batch): IteratorResult<MessageBatch> =>
              batch === null ? { done: true, value: undefined } : { done: false, value: batch },
          ),
      return: async () => {
        await this.close();
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /** The next batch, waiting for one; null once the consumer is closed (see `batches()`). */
  nextBatch(): Promise<MessageBatch | null> {
    return this.batchesReader().next();
  }

  private batchesReader(): BatchReader {
    if (this.batchReader === null) {
      BatchReader.check(this.options);
      this.batchReader = new BatchReader(this.delivery, this.source, () => this.start());
    }
    return this.batchReader;
  }

  /** Stops delivering and stops granting credit (the broker stops pushing once the window is used). */
  pause(): void {
    this.delivery.setPaused(true);
  }

  resume(): void {
    this.delivery.setPaused(false);
    this.source.resumed();
    this.delivery.wake();
  }

  /** Moves a partition to `offset`; the next message of that partition is the one at `offset`. */
  async seek(topic: string, partition: number, offset: bigint): Promise<void> {
    await this.start();
    await this.source.seek(topic, partition, offset);
  }

  /** The next offset each partition will deliver. */
  positions(): Array<{ topic: string; partition: number; offset: bigint }> {
    return this.source.positions();
  }

  /**
   * For a group consumer, commits the offset after the last message delivered on each of its
   * partitions (the one in hand counts as processed); other consumers commit nothing.
   */
  commit(): Promise<void> {
    this.delivery.settle();
    return this.source.commit();
  }

  async close(): Promise<void> {
    this.closing ??= (async () => {
      // Delivery stops first: the close commits what the application finished when it starts, and
      // a message handed out while that commit is on its way would be in no commit (delivered
      // again to the partition's next owner).
      this.delivery.markClosed();
      await this.source.close();
      await Promise.all(this.delivery.all().map((feed) => feed.close()));
    })();
    return this.closing;
  }
}
