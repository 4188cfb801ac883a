// The producer: batches messages per partition (by size and linger time) into record batches built
// in place, sends them with idempotence (producer id + per-partition sequence, so a retried batch is
// never written twice), retries retriable errors with backoff, and resolves each send with its
// offset and stream sequence. Backpressure: `send` waits while too many bytes are buffered.

import type { Tracer } from '@opentelemetry/api';
import { MemoryStreamerError } from '../common/errors.js';
import type { Acks, ProduceResponse } from '../protocol/commands/data-types.js';
import type { RequestOf } from '../protocol/commands/registry.js';
import type { CompressionCodecName } from '../protocol/compression.js';
import { errorOf } from '../protocol/error-codes.js';
import { partitionForKey } from '../protocol/partitioner.js';
import { RecordBatchBuilder, type RecordHeaderInput, type RecordInput } from '../protocol/record-batch.js';
import { BATCH_HEADER_SIZE } from '../protocol/record-batch-layout.js';
import { type Bytes, toBuffer } from './message.js';
import { endSpan, startSendSpan, withTraceHeaders } from './tracing.js';
import type { Transport } from './transport.js';

export interface ProducerOptions {
  /** How long a batch may wait for more messages (ms). 0 = send what arrived in the same event-loop turn. */
  lingerMs?: number;
  /**
   * A batch is sent once it reaches this many bytes, and a message that would take it past this
   * size starts the next batch (a message larger than this travels alone). Batches also stay within
   * the topic's `maxMessageBytes` (which the broker applies to whole batches) and the frame limit.
   */
  batchBytes?: number;
  compression?: CompressionCodecName;
  /** 1 (default): resolve after the broker wrote it per the topic's durability; 0: do not wait. */
  acks?: Acks;
  /** Producer id + sequences so retries never duplicate (default true). */
  idempotent?: boolean;
  /** Attempts for retriable errors before `send` rejects. */
  retries?: number;
  /** `send` waits while this many bytes are buffered or in flight. */
  maxBufferedBytes?: number;
  timeoutMs?: number;
  /**
   * OpenTelemetry tracer: each send becomes a PRODUCER span and its W3C trace context is written
   * to the message headers (`traceparent`). Off (and free) when not set.
   */
  tracer?: Tracer;
}

export type HeadersInput =
  | Record<string, string | Bytes | null>
  | ReadonlyArray<{ key: string; value: string | Bytes | null }>;

export interface SendInput {
  topic: string;
  key?: string | Bytes | null;
  value: string | Bytes | null;
  headers?: HeadersInput;
  /** Explicit partition; otherwise the key's hash, or a rotating partition for messages without key. */
  partition?: number;
  timestamp?: number;
  /** Append only if the key's stream has exactly this many messages (optimistic concurrency). */
  expectedVersion?: number;
}

export interface Receipt {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
  /** Position in the key's stream, -1 for a message without key or with acks 0. */
  readonly sequence: number;
  /** What the acknowledgement means: synced to disk, written to the page cache, or not waited for. */
  readonly durability: ProduceResponse['durability'];
}

/** A receipt whose 64-bit offset is computed when read: no BigInt per message unless it is used. */
class BatchReceipt implements Receipt {
  constructor(
    readonly topic: string,
    readonly partition: number,
    private readonly baseOffset: bigint,
    private readonly index: number,
    readonly sequence: number,
    readonly durability: ProduceResponse['durability'],
  ) {}

  get offset(): bigint {
    return this.baseOffset + BigInt(this.index);
  }

  /** console.log and util.inspect show the receipt's fields, offset included (it is a getter). */
  [Symbol.for('nodejs.util.inspect.custom')](): Receipt {
    return {
      topic: this.topic,
      partition: this.partition,
      offset: this.offset,
      sequence: this.sequence,
      durability: this.durability,
    };
  }

  toJSON(): Record<string, unknown> {
    return {
      topic: this.topic,
      partition: this.partition,
      offset: this.offset.toString(),
      sequence: this.sequence,
      durability: this.durability,
    };
  }
}

interface Waiter {
  resolve(receipt: Receipt): void;
  reject(error: Error): void;
}

/** Collects the receipts of one `sendMany` call: one promise for many messages. */
class ReceiptGroup {
  readonly receipts: Receipt[];
  private remaining: number;
  private failed = false;

  constructor(
    count: number,
    private readonly done: (receipts: Receipt[]) => void,
    private readonly fail: (error: Error) => void,
  ) {
    this.receipts = new Array<Receipt>(count);
    this.remaining = count;
  }

  settle(index: number, receipt: Receipt): void {
    this.receipts[index] = receipt;
    if (--this.remaining === 0 && !this.failed) this.done(this.receipts);
  }

  reject(error: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.fail(error);
  }
}

/** The waiter of one message of a group (a small object, no closures). */
class GroupWaiter implements Waiter {
  constructor(
    private readonly group: ReceiptGroup,
    private readonly index: number,
  ) {}

  resolve(receipt: Receipt): void {
    this.group.settle(this.index, receipt);
  }

  reject(error: Error): void {
    this.group.reject(error);
  }
}

interface Accumulator {
  topic: string;
  partition: number;
  /** `partition:topic`, the key of its sequence numbers (built once, not per batch). */
  sequenceKey: string;
  builder: RecordBatchBuilder;
  waiters: Waiter[];
  timer: NodeJS.Timeout | null;
  scheduled: boolean;
  /** Flushes this accumulator (one closure per accumulator, not one per scheduled flush). */
  flush: () => void;
  /**
   * The largest batch one produce request to this topic can carry (the transport's frame limit less
   * the request's other fields; Infinity when nothing limits it): a message needing more is refused.
   */
  maxBatchBytes: number;
  /**
   * A message that would take the batch past this starts the next batch: the least of batchBytes,
   * maxBatchBytes and the topic's maxMessageBytes (which the broker applies to whole batches).
   * Both are refreshed per batch, when limits can have changed (a reconnect, topic metadata).
   */
  splitAtBytes: number;
}

export interface TopicMetadataSource {
  partitionCount(topic: string): Promise<number>;
  /** The count if already known, without waiting. */
  cachedPartitionCount(topic: string): number | undefined;
  /** The topic's maxMessageBytes as last described, if known (a hint: the broker enforces it). */
  cachedMaxMessageBytes?(topic: string): number | undefined;
  forget(topic: string): void;
}

function headersOf(input: HeadersInput | undefined): RecordHeaderInput[] | undefined {
  if (input === undefined) return undefined;
  if (Array.isArray(input)) return input as RecordHeaderInput[];
  return Object.entries(input as Record<string, string | Bytes | null>).map(([key, value]) => ({
    key,
    value,
  }));
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * What a produce request carries besides its batch: topic string (u16 length + UTF-8), partition
 * u32, acks u8, hasExpectedVersion u8, expectedVersion i64 (src/protocol/commands/data-commands.ts).
 */
function produceRequestOverhead(topic: string): number {
  return 2 + Buffer.byteLength(topic) + 4 + 1 + 1 + 8;
}

/**
 * How many bytes a record may take beyond `RecordBatchBuilder.estimate` once appended: the estimate
 * assumes timestamp delta 0 (a varint of up to 10 bytes) and its length varint may grow by one.
 */
const ESTIMATE_SLACK = 10;

export class Producer {
  private readonly transport: Transport;
  private readonly metadata: TopicMetadataSource;
  private readonly options: Required<Omit<ProducerOptions, 'tracer'>>;
  private readonly tracer: Tracer | null;
  /** Per topic, the accumulators by partition (no string key built per message). */
  private readonly accumulators = new Map<string, Array<Accumulator | undefined>>();
  private readonly sequences = new Map<string, number>();
  private readonly sticky = new Map<string, number>();
  private producerId: Promise<{ producerId: bigint; producerEpoch: number }> | null = null;
  private bufferedBytes = 0;
  private readonly spaceWaiters: Array<() => void> = [];
  private readonly inFlight = new Set<Promise<void>>();
  private closed = false;

  constructor(transport: Transport, metadata: TopicMetadataSource, options: ProducerOptions = {}) {
    this.transport = transport;
    this.metadata = metadata;
    this.options = {
      lingerMs: options.lingerMs ?? 0,
      batchBytes: options.batchBytes ?? 512 * 1024,
      compression: options.compression ?? 'none',
      acks: options.acks ?? 1,
      idempotent: options.idempotent ?? true,
      retries: options.retries ?? 5,
      maxBufferedBytes: options.maxBufferedBytes ?? 64 * 1024 * 1024,
      timeoutMs: options.timeoutMs ?? 30_000,
    };
    this.tracer = options.tracer ?? null;
  }

  /** Sends one message; resolves when the broker acknowledged it (per `acks`). */
  send(input: SendInput): Promise<Receipt> {
    if (this.tracer !== null) return this.sendTraced(input, this.tracer);
    return this.sendUntraced(input);
  }

  private sendTraced(input: SendInput, tracer: Tracer): Promise<Receipt> {
    const span = startSendSpan(tracer, input.topic, 1);
    let traced: SendInput;
    try {
      traced = withTraceHeaders(input, span);
    } catch (error) {
      endSpan(span, error);
      return Promise.reject(error);
    }
    return this.sendUntraced(traced).then(
      (receipt) => {
        span.setAttribute('messaging.destination.partition.id', String(receipt.partition));
        span.setAttribute('messaging.kafka.offset', Number(receipt.offset));
        endSpan(span);
        return receipt;
      },
      (error: unknown) => {
        endSpan(span, error);
        throw error;
      },
    );
  }

  private sendUntraced(input: SendInput): Promise<Receipt> {
    // Fast path, no awaits: the topic's partition count is cached, the producer id is known and
    // there is buffer space. Otherwise the slow path waits for whichever is missing.
    const partitions = this.metadata.cachedPartitionCount(input.topic);
    if (
      this.closed ||
      partitions === undefined ||
      this.bufferedBytes >= this.options.maxBufferedBytes ||
      (this.options.idempotent && this.currentIdentity.producerId < 0n)
    ) {
      return this.sendSlow(input);
    }
    try {
      return this.enqueue(input, partitions);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Sends many messages with one promise for all of them (the throughput path: no promise per
   * message). Resolves with the receipts in input order, or rejects with the first failure. Messages
   * without a `timestamp` get the time of the call.
   */
  async sendMany(inputs: readonly SendInput[]): Promise<Receipt[]> {
    if (inputs.length === 0) return [];
    if (this.tracer !== null) {
      // One span for the call; every message carries its context.
      const span = startSendSpan(this.tracer, inputs[0]!.topic, inputs.length);
      try {
        const receipts = await this.sendManyUntraced(inputs.map((input) => withTraceHeaders(input, span)));
        endSpan(span);
        return receipts;
      } catch (error) {
        endSpan(span, error);
        throw error;
      }
    }
    return this.sendManyUntraced(inputs);
  }

  private async sendManyUntraced(inputs: readonly SendInput[]): Promise<Receipt[]> {
    for (const input of inputs) {
      if (this.metadata.cachedPartitionCount(input.topic) === undefined)
        await this.metadata.partitionCount(input.topic);
    }
    await this.identity();
    while (this.bufferedBytes >= this.options.maxBufferedBytes) {
      await new Promise<void>((resolve) => this.spaceWaiters.push(resolve));
    }
    // One clock read for the call: messages without their own timestamp share it.
    const now = Date.now();
    return new Promise<Receipt[]>((resolve, reject) => {
      const group = new ReceiptGroup(inputs.length, resolve, reject);
      for (let i = 0; i < inputs.length; i++) {
        const input = inputs[i]!;
        try {
          this.enqueue(
            input,
            this.metadata.cachedPartitionCount(input.topic)!,
            new GroupWaiter(group, i),
            now,
          );
        } catch (error) {
          group.reject(error as Error);
          return;
        }
      }
    });
  }

  private async sendSlow(input: SendInput): Promise<Receipt> {
    if (this.closed) throw errorOf('CONNECTION_CLOSED', 'producer is closed');
    while (this.bufferedBytes >= this.options.maxBufferedBytes) {
      await new Promise<void>((resolve) => this.spaceWaiters.push(resolve));
    }
    const partitions = await this.metadata.partitionCount(input.topic);
    // Known before any batch is sealed, so batches can be finished synchronously at flush time.
    await this.identity();
    return this.enqueue(input, partitions);
  }

  private enqueue(input: SendInput, partitions: number): Promise<Receipt>;
  private enqueue(input: SendInput, partitions: number, waiter: Waiter, now: number): null;
  /** `now`: the timestamp of messages without one (sendMany reads the clock once per call). */
  private enqueue(
    input: SendInput,
    partitions: number,
    waiter?: Waiter,
    now?: number,
  ): Promise<Receipt> | null {
    const key = input.key === undefined || input.key === null ? null : toBuffer(input.key);
    let partition: number;
    if (input.partition !== undefined) {
      if (!Number.isInteger(input.partition) || input.partition < 0 || input.partition >= partitions) {
        throw errorOf(
          'UNKNOWN_PARTITION',
          `${input.topic} has partitions 0..${partitions - 1}, asked for ${input.partition}`,
        );
      }
      partition = input.partition;
    } else if (key !== null) {
      partition = partitionForKey(key, partitions);
    } else {
      partition = (this.sticky.get(input.topic) ?? 0) % partitions;
    }
    const record: RecordInput = {
      key,
      value: input.value,
      headers: headersOf(input.headers),
      timestamp: input.timestamp ?? now ?? Date.now(),
    };
    if (input.expectedVersion !== undefined) {
      if (key === null) throw errorOf('INVALID_STREAM_KEY', 'an expected-version append needs a key');
      // Keep order: what is already buffered for the partition goes first.
      this.flushPartition(input.topic, partition);
      const builder = new RecordBatchBuilder(256);
      builder.append(record);
      const payloadLimit = this.transport.maxRequestPayloadBytes?.('produce');
      if (payloadLimit !== undefined) {
        this.refuseIfTooLarge(
          input.topic,
          builder.sizeInBytes,
          payloadLimit - produceRequestOverhead(input.topic),
        );
      }
      const recordBytes = builder.sizeInBytes - BATCH_HEADER_SIZE;
      // A conditional append needs no sequence: retrying it after it was written fails with a
      // version conflict instead of writing twice, and a rejected one must not leave a sequence gap.
      const batch = builder.finish({
        producerId: -1n,
        producerEpoch: -1,
        baseSequence: -1,
        compression: this.options.compression,
      });
      const expectedVersion = input.expectedVersion;
      if (waiter !== undefined) {
        this.dispatch(input.topic, partition, batch, recordBytes, [waiter], expectedVersion);
        return null;
      }
      return new Promise<Receipt>((resolve, reject) => {
        this.dispatch(input.topic, partition, batch, recordBytes, [{ resolve, reject }], expectedVersion);
      });
    }
    const accumulator = this.accumulatorFor(input.topic, partition);
    const recordBytes = accumulator.builder.estimate(record);
    // Refused before it touches the batch: the batch's other messages are not failed with it.
    this.refuseIfTooLarge(input.topic, BATCH_HEADER_SIZE + recordBytes, accumulator.maxBatchBytes);
    if (
      accumulator.builder.count > 0 &&
      accumulator.builder.sizeInBytes + recordBytes + ESTIMATE_SLACK > accumulator.splitAtBytes
    ) {
      // It does not fit: what is buffered leaves as it is, and this message starts the next batch
      // (Kafka's accumulator does the same), so no batch outgrows the limits for one message.
      this.flushAccumulator(accumulator);
    }
    const before = accumulator.builder.sizeInBytes;
    accumulator.builder.append(record);
    this.bufferedBytes += accumulator.builder.sizeInBytes - before;
    let receipt: Promise<Receipt> | null = null;
    if (waiter === undefined)
      receipt = new Promise<Receipt>((resolve, reject) => accumulator.waiters.push({ resolve, reject }));
    else accumulator.waiters.push(waiter);
    if (accumulator.builder.sizeInBytes >= this.options.batchBytes) {
      this.flushAccumulator(accumulator);
    } else if (!accumulator.scheduled) {
      accumulator.scheduled = true;
      if (this.options.lingerMs > 0) accumulator.timer = setTimeout(accumulator.flush, this.options.lingerMs);
      else setImmediate(accumulator.flush);
    }
    return receipt;
  }

  private accumulatorFor(topic: string, partition: number): Accumulator {
    let byPartition = this.accumulators.get(topic);
    if (byPartition === undefined) {
      byPartition = [];
      this.accumulators.set(topic, byPartition);
    }
    let accumulator = byPartition[partition];
    if (accumulator === undefined) {
      const created: Accumulator = {
        topic,
        partition,
        sequenceKey: `${partition}:${topic}`,
        builder: new RecordBatchBuilder(),
        waiters: [],
        timer: null,
        scheduled: false,
        flush: () => this.flushAccumulator(created),
        maxBatchBytes: Number.POSITIVE_INFINITY,
        splitAtBytes: this.options.batchBytes,
      };
      this.refreshLimits(created);
      accumulator = created;
      byPartition[partition] = accumulator;
    }
    return accumulator;
  }

  /** Sets the accumulator's size limits from the transport's frame limit and the topic's metadata. */
  private refreshLimits(accumulator: Accumulator): void {
    const payloadLimit = this.transport.maxRequestPayloadBytes?.('produce');
    accumulator.maxBatchBytes =
      payloadLimit === undefined
        ? Number.POSITIVE_INFINITY
        : payloadLimit - produceRequestOverhead(accumulator.topic);
    const topicLimit = this.metadata.cachedMaxMessageBytes?.(accumulator.topic) ?? Number.POSITIVE_INFINITY;
    accumulator.splitAtBytes = Math.min(this.options.batchBytes, accumulator.maxBatchBytes, topicLimit);
  }

  /** A message that alone makes a batch larger than one request can carry fails before sending. */
  private refuseIfTooLarge(topic: string, batchBytes: number, maxBatchBytes: number): void {
    if (batchBytes <= maxBatchBytes) return;
    throw errorOf(
      'MESSAGE_TOO_LARGE',
      `a message to ${topic} needs a batch of ${batchBytes} bytes; a produce request to this broker carries at most ${maxBatchBytes} (its server.max_payload_bytes less the request's other fields), so it was not sent`,
    );
  }

  private flushPartition(topic: string, partition: number): void {
    const accumulator = this.accumulators.get(topic)?.[partition];
    if (accumulator !== undefined) this.flushAccumulator(accumulator);
  }

  private flushAccumulator(accumulator: Accumulator): void {
    if (accumulator.timer !== null) clearTimeout(accumulator.timer);
    accumulator.timer = null;
    accumulator.scheduled = false;
    if (accumulator.waiters.length === 0) return;
    const waiters = accumulator.waiters;
    accumulator.waiters = [];
    const { producerId, producerEpoch } = this.currentIdentity;
    const sequenceKey = accumulator.sequenceKey;
    const count = accumulator.builder.count;
    const recordBytes = accumulator.builder.sizeInBytes - BATCH_HEADER_SIZE;
    let baseSequence = -1;
    if (producerId >= 0n) {
      baseSequence = this.sequences.get(sequenceKey) ?? 0;
      this.sequences.set(sequenceKey, (baseSequence + count) % 0x80000000);
    }
    const batch = accumulator.builder.finish({
      producerId,
      producerEpoch,
      baseSequence,
      compression: this.options.compression,
    });
    this.refreshLimits(accumulator);
    // Messages without key stick to one partition per batch, then move on.
    this.sticky.set(accumulator.topic, (this.sticky.get(accumulator.topic) ?? 0) + 1);
    this.dispatch(accumulator.topic, accumulator.partition, batch, recordBytes, waiters, undefined);
  }

  private dispatch(
    topic: string,
    partition: number,
    batch: Buffer,
    recordBytes: number,
    waiters: Waiter[],
    expectedVersion: number | undefined,
  ): void {
    if (expectedVersion !== undefined) this.bufferedBytes += recordBytes;
    const request: RequestOf<'produce'> = {
      topic,
      partition,
      acks: this.options.acks,
      batch,
      ...(expectedVersion !== undefined ? { expectedVersion } : {}),
    };
    // The first attempt with plain callbacks (no async function, no finally: this runs once per
    // batch, at low rates once per message); retries and failures take the async path.
    let attempt: Promise<ProduceResponse>;
    try {
      attempt = this.transport.request('produce', request, { timeoutMs: this.options.timeoutMs });
    } catch (error) {
      // A transport that throws instead of rejecting fails (or retries) the batch the same way.
      attempt = Promise.reject(error);
    }
    const task: Promise<void> = attempt.then(
      (response) => {
        this.settle(topic, partition, response, waiters);
        this.release(recordBytes, task);
      },
      (error: unknown) =>
        this.sendBatch(request, waiters, expectedVersion, error).then(() => this.release(recordBytes, task)),
    );
    this.inFlight.add(task);
  }

  /** A batch has settled: its bytes no longer count against the buffer limit. */
  private release(recordBytes: number, task: Promise<void>): void {
    this.bufferedBytes -= recordBytes;
    this.inFlight.delete(task);
    while (this.bufferedBytes < this.options.maxBufferedBytes && this.spaceWaiters.length > 0)
      this.spaceWaiters.shift()!();
  }

  private settle(topic: string, partition: number, response: ProduceResponse, waiters: Waiter[]): void {
    const { baseOffset, sequences, durability } = response;
    for (let i = 0; i < waiters.length; i++) {
      waiters[i]!.resolve(new BatchReceipt(topic, partition, baseOffset, i, sequences[i] ?? -1, durability));
    }
  }

  private currentIdentity: { producerId: bigint; producerEpoch: number } = {
    producerId: -1n,
    producerEpoch: -1,
  };

  private async identity(): Promise<void> {
    if (!this.options.idempotent || this.currentIdentity.producerId >= 0n) return;
    if (this.producerId === null) {
      this.producerId = this.transport.request('initProducerId', {}, { timeoutMs: this.options.timeoutMs });
      this.producerId.catch(() => {
        this.producerId = null;
      });
    }
    this.currentIdentity = await this.producerId;
  }

  /** After a failed first attempt: retries retriable errors with backoff, or fails the batch. */
  private async sendBatch(
    request: RequestOf<'produce'>,
    waiters: Waiter[],
    expectedVersion: number | undefined,
    firstError: unknown,
  ): Promise<void> {
    const { topic, partition } = request;
    try {
      let response: ProduceResponse | undefined;
      let error = firstError;
      for (let attempt = 0; response === undefined; attempt++) {
        const retriable = error instanceof MemoryStreamerError && error.retriable;
        if (!retriable || attempt >= this.options.retries || this.closed) throw error;
        await delay(Math.min(1000, 20 * 2 ** attempt));
        try {
          response = await this.transport.request('produce', request, { timeoutMs: this.options.timeoutMs });
        } catch (retryError) {
          error = retryError;
        }
      }
      this.settle(topic, partition, response, waiters);
    } catch (error) {
      if (
        error instanceof MemoryStreamerError &&
        (error.codeName === 'UNKNOWN_TOPIC' || error.codeName === 'UNKNOWN_PARTITION')
      ) {
        this.metadata.forget(topic);
      }
      if (expectedVersion === undefined && this.options.idempotent) {
        // The batch's sequence numbers were used but nothing was written: continue under a fresh
        // producer id, whose sequences start at 0, rather than leave a gap the broker would refuse.
        this.producerId = null;
        this.currentIdentity = { producerId: -1n, producerEpoch: -1 };
        this.sequences.clear();
      }
      for (const waiter of waiters) waiter.reject(error as Error);
    }
  }

  /** Sends everything buffered now and waits until every send has settled. */
  async flush(): Promise<void> {
    for (const byPartition of this.accumulators.values()) {
      for (const accumulator of byPartition)
        if (accumulator !== undefined) this.flushAccumulator(accumulator);
    }
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
  }
}
