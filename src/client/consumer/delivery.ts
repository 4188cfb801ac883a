// Hands the feeds' messages to the application: round-robin over the feeds so one busy partition
// cannot starve the others, a wait for the next message, and the reasons delivery is stopped
// (not started, failed, closed, paused, or a group step due first), kept as bits so the hot path
// is a single comparison. It is the context every feed of one consumer sees.

import type { Tracer } from '@opentelemetry/api';
import type { MemoryStreamerError } from '../../common/errors.js';
import type { Message } from '../message.js';
import { type ConsumerSecurity, openMessage } from '../message-security.js';
import { traceReceive } from '../tracing.js';
import type { Transport } from '../transport.js';
import type { Feed, FeedContext } from './feed.js';
import {
  type ConsumerOptions,
  DEFAULT_CREDIT_BYTES,
  DEFAULT_MAX_DECOMPRESSED_BYTES,
  DEFAULT_TIMEOUT_MS,
  type RefusedMessage,
  type UndecodableBatch,
} from './options.js';

const NOT_STARTED = 1;
const FAILED = 2;
const CLOSED = 4;
const PAUSED = 8;
/** The consumer's source has a step to take before more messages go out (a commit or a rejoin). */
const STEP_DUE = 16;

export class Delivery implements FeedContext {
  readonly transport: Transport;
  readonly creditBytes: number;
  readonly timeoutMs: number;
  readonly inflateLimits: { readonly maxDecompressedBytes: number };
  private readonly tracer: Tracer | undefined;
  private readonly group: string | undefined;
  private readonly onUndecodableBatch: ((event: UndecodableBatch) => void) | undefined;
  private readonly security: ConsumerSecurity | undefined;
  private readonly onRefusedMessage: ((event: RefusedMessage) => void) | undefined;
  private feeds: Feed[] = [];
  private cursor = 0;
  /** The feed of the message handed out last, until the application asks for the next one. */
  private inHand: Feed | null = null;
  /** Woken when the message in hand is processed (inHandProcessed). */
  private settleWaiters: Array<() => void> = [];
  private waiter: (() => void) | null = null;
  private wokenMeanwhile = false;
  private failure: Error | null = null;
  private stops = NOT_STARTED;

  constructor(transport: Transport, options: ConsumerOptions) {
    this.transport = transport;
    this.creditBytes = options.creditBytes ?? DEFAULT_CREDIT_BYTES;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.inflateLimits = {
      maxDecompressedBytes: options.maxDecompressedBytes ?? DEFAULT_MAX_DECOMPRESSED_BYTES,
    };
    this.tracer = options.tracer;
    this.group = options.group;
    this.onUndecodableBatch = options.onUndecodableBatch;
    this.security = options.security;
    this.onRefusedMessage = options.onRefusedMessage;
  }

  /** A message that can go out now without any await, or null when the caller must wait (hot path). */
  poll(): Message | null {
    return this.stops === 0 ? this.take() : null;
  }

  /**
   * The next buffered message of any feed, whatever stops delivery (the caller checked). A loop,
   * not a recursion, past refused messages: a partition may hold any number of them in a row.
   */
  take(): Message | null {
    const feeds = this.feeds;
    for (let i = 0; i < feeds.length; ) {
      const feed = feeds[(this.cursor + i) % feeds.length]!;
      let message = feed.next();
      if (message === null) {
        i++;
        continue;
      }
      this.cursor = (this.cursor + i + 1) % feeds.length;
      if (this.security !== undefined) {
        const opened = this.open(message, this.security);
        if (opened === null) {
          // Skipped, so processed: it does not hold its partition's position. Look at every feed
          // again from the next one.
          feed.settle();
          i = 0;
          continue;
        }
        message = opened;
      }
      this.inHand = feed;
      if (this.tracer !== undefined) traceReceive(this.tracer, message, this.group);
      return message;
    }
    return null;
  }

  /** The application asked for the next message (or committed): the one it held is processed. */
  settle(): void {
    const feed = this.inHand;
    if (feed === null) return;
    this.inHand = null;
    feed.settle();
    if (this.settleWaiters.length > 0) for (const wake of this.settleWaiters.splice(0)) wake();
  }

  /**
   * Resolves once the message in hand, when it is from one of `feeds`, is processed (the
   * application asks for the next one, or commits), or after `ms`: a partition given up in a
   * rebalance is committed after the message its handler is still on, as Kafka's consumer gives
   * partitions up only inside `poll`, so that message is not delivered again to the next owner.
   */
  async inHandProcessed(feeds: readonly Feed[], ms: number): Promise<void> {
    if (this.inHand === null || !feeds.includes(this.inHand)) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
      this.settleWaiters.push(resolve);
    });
    clearTimeout(timer);
  }

  /**
   * Checks and decrypts a message (message-security.ts). One that is refused is skipped (it counts
   * as consumed, like an undecodable batch) and reported: to `onRefusedMessage`, else as a process
   * warning, so nothing is skipped silently.
   */
  private open(message: Message, security: ConsumerSecurity): Message | null {
    try {
      return openMessage(message, security);
    } catch (error) {
      const refused = { message, error: error as MemoryStreamerError };
      if (this.onRefusedMessage !== undefined) this.onRefusedMessage(refused);
      else
        process.emitWarning(
          `skipped offset ${message.offset} of ${message.topic}/${message.partition}: ${refused.error.message}`,
          { code: refused.error.codeName, type: 'MemoryStreamerWarning' },
        );
      return null;
    }
  }

  /**
   * Resolves at the next wake(), or at once when one came while nobody waited: the reader checks
   * its state, then may await a group step before it waits, and a close or a failure in between
   * must not be lost (the reader would wait for ever). A wake too many only makes it look again.
   */
  waitForWake(): Promise<void> {
    if (this.wokenMeanwhile) {
      this.wokenMeanwhile = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      this.waiter = resolve;
    });
  }

  /**
   * `waitForWake` as a callback (one reader waits at a time, as with the promise): called in the
   * wake() itself, or at once when a wake came while nobody waited.
   */
  onNextWake(callback: () => void): void {
    if (this.wokenMeanwhile) {
      this.wokenMeanwhile = false;
      callback();
      return;
    }
    this.waiter = callback;
  }

  /** Started, and nothing stops delivery: a read may simply wait for the next message. */
  get flowing(): boolean {
    return this.stops === 0;
  }

  wake(): void {
    const waiter = this.waiter;
    this.waiter = null;
    if (waiter === null) this.wokenMeanwhile = true;
    else waiter();
  }

  add(feed: Feed): void {
    this.feeds.push(feed);
  }

  /** Stops reading from these feeds (the caller closes them). */
  remove(feeds: readonly Feed[]): void {
    // The message in hand stays in hand: a feed on its way out is committed once it is processed.
    this.feeds = this.feeds.filter((feed) => !feeds.includes(feed));
  }

  /** Every feed; on close they are closed by the caller. */
  all(): readonly Feed[] {
    return this.feeds;
  }

  fail(error: Error): void {
    this.failure ??= error;
    this.stops |= FAILED;
    this.wake();
  }

  get error(): Error | null {
    return this.failure;
  }

  reportUndecodable(event: UndecodableBatch): void {
    if (this.onUndecodableBatch !== undefined) {
      this.onUndecodableBatch(event);
      return;
    }
    process.emitWarning(
      `skipped offsets ${event.firstOffset}..${event.lastOffset} of ${event.topic}/${event.partition} ` +
        `(${event.delivered} record(s) of that batch delivered before): ${event.error.message}`,
      { code: event.error.codeName, type: 'MemoryStreamerWarning' },
    );
  }

  get started(): boolean {
    return (this.stops & NOT_STARTED) === 0;
  }

  markStarted(): void {
    this.stops &= ~NOT_STARTED;
  }

  get closed(): boolean {
    return (this.stops & CLOSED) !== 0;
  }

  markClosed(): void {
    this.stops |= CLOSED;
    this.wake();
  }

  isPaused(): boolean {
    return (this.stops & PAUSED) !== 0;
  }

  setPaused(paused: boolean): void {
    this.stops = paused ? this.stops | PAUSED : this.stops & ~PAUSED;
  }

  get stepDue(): boolean {
    return (this.stops & STEP_DUE) !== 0;
  }

  /** The source has (or no longer has) a step to take before more messages go out. */
  setStepDue(due: boolean): void {
    this.stops = due ? this.stops | STEP_DUE : this.stops & ~STEP_DUE;
  }
}
