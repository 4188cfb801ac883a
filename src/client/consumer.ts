// The consumer: push subscriptions per partition (or a long-poll reader for one stream), decoded
// lazily into messages as the application pulls them. Credit is returned to the broker only for
// bytes the application consumed, so a slow consumer slows only itself. `for await` or `run()`.

import type { Tracer } from '@opentelemetry/api';
import { MemoryStreamerError } from '../common/errors.js';
import type {
  AssignmentStrategy,
  StreamRecordView,
  TopicPartitions,
} from '../protocol/commands/data-types.js';
import { errorOf } from '../protocol/error-codes.js';
import { type DecodedRecord, iterateRecords, splitBatches } from '../protocol/record-batch.js';
import { readBatchHeader } from '../protocol/record-batch-layout.js';
import { type Bytes, type Message, toBuffer } from './message.js';
import { traceReceive } from './tracing.js';
import type { RemoteSubscription, Transport } from './transport.js';

export type StartPosition = 'earliest' | 'latest' | bigint | { timestamp: number };

export interface ConsumerOptions {
  /** Consume every partition of these topics (or only `partitions`). */
  topics?: string[];
  partitions?: number[];
  /** Or consume one stream: the messages of one key, with their stream sequences. */
  stream?: { topic: string; key: string | Bytes };
  /**
   * Share the topics' partitions with the other consumers of this group; start each partition at
   * the group's committed offset (or `from` when it has none).
   */
  group?: string;
  /**
   * How the broker spreads partitions over the group: `range` (default; every rebalance stops all
   * members) or `cooperative-sticky` (partitions stay where they are when possible, and members
   * keep consuming the partitions that do not move).
   */
  assignment?: AssignmentStrategy;
  /** A group member that does not heartbeat for this long is dropped (10 s). */
  sessionTimeoutMs?: number;
  /** Commit delivered offsets automatically (default true), every `autoCommitIntervalMs` (5 s) and on close. */
  autoCommit?: boolean;
  autoCommitIntervalMs?: number;
  /** Where to start: earliest (default), latest, an offset (a stream sequence for streams), or a time. */
  from?: StartPosition | number;
  /** Bytes each partition may have in flight towards this consumer. */
  creditBytes?: number;
  timeoutMs?: number;
  /** Largest size a compressed batch may inflate to. */
  maxDecompressedBytes?: number;
  /**
   * Told of a stored batch whose records cannot be decoded (its CRC is right, its records are not:
   * the broker refuses such batches, but a log may hold one written before it did). The consumer
   * skips the rest of that batch and goes on; without this callback it emits a process warning
   * naming the topic, partition and offsets skipped, so nothing is skipped silently.
   */
  onUndecodableBatch?: (event: UndecodableBatch) => void;
  /** OpenTelemetry tracer: each delivered message that carries a trace context gets a CONSUMER span. */
  tracer?: Tracer;
}

export interface UndecodableBatch {
  topic: string;
  partition: number;
  /** The batch's first and last offsets: nothing at or below `lastOffset` is delivered from it. */
  firstOffset: bigint;
  lastOffset: bigint;
  /** Records of the batch decoded before the undecodable one. */
  delivered: number;
  error: MemoryStreamerError;
}

/** Errors of a batch's records (as opposed to its transport): the batch is skipped, not the consumer stopped. */
const UNDECODABLE = new Set(['BAD_RECORD_BATCH', 'DECOMPRESSED_TOO_LARGE', 'UNSUPPORTED_COMPRESSION']);

interface Feed {
  next(): Message | null;
  close(): Promise<void>;
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Heartbeat answers after which a group member commits and joins again. */
const REJOIN_ERRORS = new Set(['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER']);
const EMPTY_HEADERS: Message['headers'] = [];

/** One partition's push subscription and the batches it delivered but the application has not read. */
class PartitionFeed implements Feed {
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
  private closed = false;
  private generation = 0;
  highWatermark = -1n;

  constructor(
    private readonly consumer: Consumer,
    readonly topic: string,
    readonly partition: number,
    public position: bigint,
  ) {}

  async start(offset: bigint): Promise<void> {
    const generation = ++this.generation;
    const subscription = await this.consumer.transport.subscribe(
      { topic: this.topic, partition: this.partition, offset, credit: this.consumer.creditBytes },
      {
        onBatches: (chunks, highWatermark) => {
          if (generation !== this.generation) return;
          for (const chunk of chunks) this.chunks.push(chunk);
          this.highWatermark = highWatermark;
          this.consumer.wake();
        },
        onError: (error) => {
          if (generation === this.generation) void this.recover(error);
        },
      },
      { timeoutMs: this.consumer.timeoutMs },
    );
    if (generation !== this.generation || this.closed) {
      await subscription.close();
      return;
    }
    this.subscription = subscription;
    if (this.position < 0n) this.position = subscription.offset;
  }

  /** A broken connection resubscribes from the next undelivered offset; other errors surface. */
  private async recover(error: Error): Promise<void> {
    this.subscription = null;
    if (this.closed) return;
    if (!(error instanceof MemoryStreamerError) || !error.retriable) {
      this.consumer.fail(error);
      return;
    }
    this.resetBuffers();
    for (let attempt = 0; !this.closed; attempt++) {
      await delay(Math.min(2000, 50 * 2 ** attempt));
      try {
        await this.start(this.position);
        return;
      } catch (retryError) {
        if (!(retryError instanceof MemoryStreamerError) || !retryError.retriable) {
          this.consumer.fail(retryError as Error);
          return;
        }
      }
    }
  }

  private resetBuffers(): void {
    this.chunks.length = 0;
    this.batches = [];
    this.batchIndex = 0;
    this.records = null;
    this.ungranted = 0;
  }

  async seek(offset: bigint): Promise<void> {
    const old = this.subscription;
    this.subscription = null;
    this.generation++;
    this.resetBuffers();
    this.position = offset;
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
          if (record.offset < this.position) continue;
          this.position = record.offset + 1n;
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
        this.records = iterateRecords(this.currentBatch, this.consumer.inflateLimits)[Symbol.iterator]();
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

  /** Moves past a batch whose records cannot be decoded, and says so. */
  private skipBatch(error: MemoryStreamerError): void {
    this.records = null;
    const batch = this.currentBatch!;
    const header = readBatchHeader(batch);
    const lastOffset = header.baseOffset + BigInt(header.lastOffsetDelta);
    if (lastOffset >= this.position) this.position = lastOffset + 1n;
    this.consumer.reportUndecodable({
      topic: this.topic,
      partition: this.partition,
      firstOffset: header.baseOffset,
      lastOffset,
      delivered: this.deliveredFromBatch,
      error,
    });
  }

  grantIfDue(): void {
    if (this.consumer.paused || this.subscription === null) return;
    // Return credit in large steps: fewer CREDIT frames, and the broker keeps a full window queued.
    if (this.ungranted * 4 >= this.consumer.creditBytes) {
      this.subscription.grant(this.ungranted);
      this.ungranted = 0;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.generation++;
    const subscription = this.subscription;
    this.subscription = null;
    if (subscription !== null) await subscription.close().catch(() => undefined);
  }
}

/** Reads one stream by long polling, from a stream sequence. */
class StreamFeed implements Feed {
  private buffer: StreamRecordView[] = [];
  private index = 0;
  private polling = false;
  private closed = false;
  private partition = -1;

  constructor(
    private readonly consumer: Consumer,
    readonly topic: string,
    private readonly key: Buffer,
    public sequence: number,
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

  private poll(): void {
    if (this.polling || this.closed) return;
    this.polling = true;
    void (async () => {
      for (let attempt = 0; !this.closed; attempt++) {
        try {
          const response = await this.consumer.transport.request(
            'readStream',
            {
              topic: this.topic,
              key: this.key,
              fromSequence: this.sequence,
              maxRecords: 1000,
              maxWaitMs: 1000,
            },
            { timeoutMs: this.consumer.timeoutMs + 1000 },
          );
          this.partition = response.partition;
          if (response.records.length > 0) {
            this.buffer = response.records;
            this.index = 0;
            break;
          }
          attempt = -1;
        } catch (error) {
          if (!(error instanceof MemoryStreamerError) || !error.retriable) {
            this.consumer.fail(error as Error);
            break;
          }
          await delay(Math.min(2000, 50 * 2 ** attempt));
        }
      }
      this.polling = false;
      this.consumer.wake();
    })();
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

export class Consumer implements AsyncIterable<Message> {
  readonly transport: Transport;
  readonly creditBytes: number;
  readonly timeoutMs: number;
  readonly inflateLimits: { maxDecompressedBytes: number };
  paused = false;
  private readonly options: ConsumerOptions;
  private feeds: Feed[] = [];
  private readonly partitionFeeds = new Map<string, PartitionFeed>();
  private started: Promise<void> | null = null;
  /** True once every subscription is in place: from then on next() can answer without waiting. */
  private subscribed = false;
  private cursor = 0;
  private waiter: (() => void) | null = null;
  private failure: Error | null = null;
  private closed = false;
  private memberId = '';
  private generation = -1;
  private rebalanceNeeded = false;
  private rejoining: Promise<void> | null = null;
  /** Set by the auto-commit timer; next() commits when it sees it (no clock read per message). */
  private commitDue = false;
  private commitTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private readonly sessionTimeoutMs: number;
  private readonly autoCommitIntervalMs: number;

  constructor(transport: Transport, options: ConsumerOptions) {
    if ((options.topics === undefined) === (options.stream === undefined)) {
      throw errorOf('INVALID_REQUEST', 'a consumer takes either `topics` or `stream`');
    }
    this.transport = transport;
    this.options = options;
    this.creditBytes = options.creditBytes ?? 4 * 1024 * 1024;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.inflateLimits = { maxDecompressedBytes: options.maxDecompressedBytes ?? 64 * 1024 * 1024 };
    this.sessionTimeoutMs = options.sessionTimeoutMs ?? 10_000;
    // Only group consumers commit; for the others the check in next() must never fire (it would
    // cost an await per message).
    this.autoCommitIntervalMs =
      options.group === undefined || options.autoCommit === false
        ? Number.POSITIVE_INFINITY
        : (options.autoCommitIntervalMs ?? 5000);
    if (options.group !== undefined && options.stream !== undefined) {
      throw errorOf('INVALID_REQUEST', 'a group consumer reads topics, not a single stream');
    }
  }

  /** Subscribes now (otherwise the first read does); resolves once every partition is subscribed. */
  start(): Promise<void> {
    if (this.started === null)
      this.started = this.subscribeAll().then(() => {
        this.subscribed = true;
      });
    return this.started;
  }

  private async subscribeAll(): Promise<void> {
    const from = this.options.from ?? 'earliest';
    if (this.options.stream !== undefined) {
      if (typeof from !== 'number' && typeof from !== 'bigint' && from !== 'earliest') {
        throw errorOf('INVALID_REQUEST', 'a stream is read from a sequence number or from earliest');
      }
      const sequence = from === 'earliest' ? 0 : Number(from);
      this.feeds = [
        new StreamFeed(this, this.options.stream.topic, toBuffer(this.options.stream.key), sequence),
      ];
      return;
    }
    if (this.options.group !== undefined) {
      await this.joinGroup();
      return;
    }
    for (const topic of this.options.topics ?? []) {
      const description = await this.transport.request(
        'describeTopic',
        { name: topic },
        { timeoutMs: this.timeoutMs },
      );
      const partitions = this.options.partitions ?? description.partitions.map((p) => p.partition);
      for (const partition of partitions) await this.startFeed(topic, partition, null);
    }
  }

  /** Starts one partition at its committed offset, or where `from` says. */
  private async startFeed(topic: string, partition: number, committed: bigint | null): Promise<void> {
    const from = this.options.from ?? 'earliest';
    let offset: bigint;
    if (committed !== null) offset = committed;
    else if (from === 'earliest') offset = -2n;
    else if (from === 'latest') offset = -1n;
    else if (typeof from === 'object') {
      offset = (
        await this.transport.request(
          'listOffsets',
          { topic, partition, spec: from },
          { timeoutMs: this.timeoutMs },
        )
      ).offset;
    } else offset = BigInt(from);
    const feed = new PartitionFeed(this, topic, partition, offset < 0n ? -1n : offset);
    this.partitionFeeds.set(`${partition}:${topic}`, feed);
    this.feeds.push(feed);
    await feed.start(offset);
  }

  /**
   * Joins the group (the broker holds the answer until every member has joined), then consumes the
   * assigned partitions from their committed offsets and heartbeats. A heartbeat answered with
   * REBALANCE_IN_PROGRESS (or a stale generation) makes the next read commit and join again.
   */
  private async joinGroup(): Promise<void> {
    const groupId = this.options.group!;
    const response = await this.transport.request(
      'joinGroup',
      {
        groupId,
        memberId: this.memberId,
        topics: this.options.topics ?? [],
        sessionTimeoutMs: this.sessionTimeoutMs,
        strategy: this.options.assignment ?? 'range',
      },
      { timeoutMs: this.sessionTimeoutMs * 3 + this.timeoutMs },
    );
    this.memberId = response.memberId;
    this.generation = response.generation;
    await this.applyAssignment(response.assignment);
    if (this.commitTimer === null && Number.isFinite(this.autoCommitIntervalMs)) {
      this.commitTimer = setInterval(() => {
        this.commitDue = true;
      }, this.autoCommitIntervalMs);
    }
    this.heartbeatTimer ??= setInterval(
      () => void this.heartbeat(),
      Math.max(100, Math.floor(this.sessionTimeoutMs / 3)),
    );
  }

  /**
   * Makes the partitions read equal the assignment: partitions no longer assigned are committed
   * and stopped, new ones start at their committed offsets. With range assignment every feed was
   * already stopped before the join, so everything here is new.
   */
  private async applyAssignment(assignment: readonly TopicPartitions[]): Promise<void> {
    const wanted = new Set(assignment.flatMap((a) => a.partitions.map((p) => `${p}:${a.topic}`)));
    const revoked = [...this.partitionFeeds.entries()].filter(([id]) => !wanted.has(id));
    if (revoked.length > 0) {
      // Stop delivering from them first: the commit below must be the last position handed out,
      // or the next owner would start before messages this member still delivers (duplicates).
      const revokedFeeds = revoked.map(([, feed]) => feed);
      for (const [id] of revoked) this.partitionFeeds.delete(id);
      this.feeds = this.feeds.filter((f) => !revokedFeeds.includes(f as PartitionFeed));
      await this.commitFeeds(revokedFeeds).catch(() => undefined);
      await Promise.all(revokedFeeds.map((feed) => feed.close()));
    }
    const added = assignment
      .flatMap((a) => a.partitions.map((partition) => ({ topic: a.topic, partition })))
      .filter((p) => !this.partitionFeeds.has(`${p.partition}:${p.topic}`));
    if (added.length === 0) return;
    const committed = new Map(
      (
        await this.transport.request(
          'fetchOffsets',
          { groupId: this.options.group! },
          { timeoutMs: this.timeoutMs },
        )
      ).offsets.map((o) => [`${o.partition}:${o.topic}`, o.offset]),
    );
    for (const { topic, partition } of added)
      await this.startFeed(topic, partition, committed.get(`${partition}:${topic}`) ?? null);
  }

  private async heartbeat(): Promise<void> {
    if (this.rebalanceNeeded || this.rejoining !== null || this.closed || this.generation < 0) return;
    try {
      await this.transport.request(
        'heartbeat',
        { groupId: this.options.group!, memberId: this.memberId, generation: this.generation },
        { timeoutMs: this.timeoutMs },
      );
    } catch (error) {
      if (error instanceof MemoryStreamerError && REJOIN_ERRORS.has(error.codeName)) {
        if (error.codeName === 'UNKNOWN_MEMBER') this.memberId = '';
        this.rebalanceNeeded = true;
        this.wake();
      }
    }
  }

  /**
   * Range: commit what was delivered, stop every partition, join the next generation.
   * Cooperative: commit, then join while the current partitions keep being read; only the
   * partitions the new assignment takes away are committed and stopped (see applyAssignment).
   */
  private async rebalance(): Promise<void> {
    this.rebalanceNeeded = false;
    await this.commit().catch(() => undefined);
    if ((this.options.assignment ?? 'range') === 'range') {
      const feeds = this.feeds;
      this.feeds = [];
      this.partitionFeeds.clear();
      await Promise.all(feeds.map((feed) => feed.close()));
      await this.joinGroup();
      return;
    }
    this.rejoining ??= this.joinGroup()
      .catch((error: unknown) => this.fail(error as Error))
      .finally(() => {
        this.rejoining = null;
        this.wake();
      });
  }

  /**
   * Commits, for each partition of a group consumer, the offset after the last message it
   * delivered (every message before it counts as processed once the next read is asked for).
   */
  /**
   * The periodic commit. A commit refused because the group moved on (a rebalance is under way or
   * this member's generation is stale) is not an error for the application: the member joins
   * again, and commits before giving up partitions. Anything else fails the consumer.
   */
  private async autoCommit(): Promise<void> {
    try {
      await this.commit();
    } catch (error) {
      if (error instanceof MemoryStreamerError && REJOIN_ERRORS.has(error.codeName)) {
        if (error.codeName === 'UNKNOWN_MEMBER') this.memberId = '';
        this.rebalanceNeeded = true;
        return;
      }
      throw error;
    }
  }

  async commit(): Promise<void> {
    await this.commitFeeds([...this.partitionFeeds.values()]);
  }

  private async commitFeeds(feeds: readonly PartitionFeed[]): Promise<void> {
    if (this.options.group === undefined || this.generation < 0) return;
    const offsets = feeds
      .filter((f) => f.position >= 0n)
      .map((f) => ({ topic: f.topic, partition: f.partition, offset: f.position }));
    if (offsets.length === 0) return;
    await this.transport.request(
      'commitOffsets',
      { groupId: this.options.group, memberId: this.memberId, generation: this.generation, offsets },
      { timeoutMs: this.timeoutMs },
    );
  }

  wake(): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.();
  }

  /** A batch was skipped because its records cannot be decoded: the application hears of it. */
  reportUndecodable(event: UndecodableBatch): void {
    if (this.options.onUndecodableBatch !== undefined) {
      this.options.onUndecodableBatch(event);
      return;
    }
    process.emitWarning(
      `skipped offsets ${event.firstOffset}..${event.lastOffset} of ${event.topic}/${event.partition} ` +
        `(${event.delivered} record(s) of that batch delivered before): ${event.error.message}`,
      { code: event.error.codeName, type: 'MemoryStreamerWarning' },
    );
  }

  fail(error: Error): void {
    this.failure ??= error;
    this.wake();
  }

  /** The next message, waiting for one; null once the consumer is closed. */
  next(): Promise<Message | null> {
    // Fast path, the common case while messages are buffered: no async function, no awaits, one
    // already-resolved promise per message (the iterator protocol needs a promise anyway).
    const ready = this.poll();
    return ready !== null ? Promise.resolve(ready) : this.nextWaiting();
  }

  /**
   * A message that can be handed out now, or null when next() must take the slow path: not
   * subscribed yet, failed, closed, paused, a rebalance or an auto-commit due, or nothing buffered.
   */
  private poll(): Message | null {
    if (!this.subscribed || this.failure !== null || this.closed || this.paused) return null;
    if ((this.rebalanceNeeded || this.commitDue) && this.rejoining === null) return null;
    return this.takeBuffered();
  }

  private takeBuffered(): Message | null {
    for (let i = 0; i < this.feeds.length; i++) {
      const feed = this.feeds[(this.cursor + i) % this.feeds.length]!;
      const message = feed.next();
      if (message !== null) {
        // Round-robin over partitions so one busy partition cannot starve the others.
        this.cursor = (this.cursor + i + 1) % this.feeds.length;
        if (this.options.tracer !== undefined) traceReceive(this.options.tracer, message, this.options.group);
        return message;
      }
    }
    return null;
  }

  private async nextWaiting(): Promise<Message | null> {
    // Once subscribed, no await on the settled start: at low rates every message comes this way.
    if (!this.subscribed) await this.start();
    for (;;) {
      if (this.failure !== null) throw this.failure;
      if (this.closed) return null;
      if (this.rebalanceNeeded && this.rejoining === null) await this.rebalance();
      if (this.commitDue && this.rejoining === null) {
        this.commitDue = false;
        await this.autoCommit();
      }
      if (!this.paused) {
        const message = this.takeBuffered();
        if (message !== null) return message;
      }
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<Message> {
    return {
      next: () => {
        const ready = this.poll();
        if (ready !== null) return Promise.resolve({ done: false, value: ready });
        return this.nextWaiting().then(
          (message): IteratorResult<Message> =>
            message === null ? { done: true, value: undefined } : { done: false, value: message },
        );
      },
      return: async () => {
        await this.close();
        return { done: true, value: undefined };
      },
    };
  }

  /** Callback form: calls `handler` for each message, in order, until the consumer closes. */
  async run(handler: (message: Message) => unknown): Promise<void> {
    for (let message = await this.next(); message !== null; message = await this.next())
      await handler(message);
  }

  /** Stops delivering and stops granting credit (the broker stops pushing once the window is used). */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    for (const feed of this.partitionFeeds.values()) feed.grantIfDue();
    this.wake();
  }

  /** Moves a partition to `offset`; the next message of that partition is the one at `offset`. */
  async seek(topic: string, partition: number, offset: bigint): Promise<void> {
    await this.start();
    const feed = this.partitionFeeds.get(`${partition}:${topic}`);
    if (feed === undefined)
      throw errorOf('UNKNOWN_PARTITION', `this consumer does not read ${topic}/${partition}`);
    await feed.seek(offset);
  }

  /** The next offset each partition will deliver. */
  positions(): Array<{ topic: string; partition: number; offset: bigint }> {
    return [...this.partitionFeeds.values()].map((f) => ({
      topic: f.topic,
      partition: f.partition,
      offset: f.position,
    }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    if (this.commitTimer !== null) clearInterval(this.commitTimer);
    if (this.options.group !== undefined && this.generation >= 0) {
      if (this.autoCommitIntervalMs !== Number.POSITIVE_INFINITY) await this.commit().catch(() => undefined);
      await this.transport
        .request(
          'leaveGroup',
          { groupId: this.options.group, memberId: this.memberId, generation: this.generation },
          { timeoutMs: this.timeoutMs },
        )
        .catch(() => undefined);
    }
    this.closed = true;
    await Promise.all(this.feeds.map((feed) => feed.close()));
    this.wake();
  }
}
