// The producer: batches messages per partition (by size and linger time) into record batches built
// in place, sends them with idempotence (producer id + per-partition sequence, so a retried batch is
// never written twice), retries retriable errors with backoff, and resolves each send with its
// offset and stream sequence. Backpressure: `send` waits while too many bytes are buffered.
//
// Order per partition: at most RETAINED_PRODUCER_BATCHES batches are in flight per partition (the
// broker remembers that many per producer, so any of them can be retried without writing it twice);
// while they are, the open batch keeps growing, as in Kafka's accumulator. When a send fails with a
// retriable error, the batches behind it are refused for the gap in the sequence; the partition then
// stops sending, waits until nothing of it is in flight, and resends the failed batches in their
// order. A batch the broker refuses for good leaves a gap: the batches behind it move to a fresh
// producer id (restamped, their records untouched) instead of failing with it.

import type { Tracer } from '@opentelemetry/api';
import { MemoryStreamerError } from '../common/errors.js';
import { Fifo } from '../common/fifo.js';
import type { Acks, ProduceResponse } from '../protocol/commands/data-types.js';
import type { RequestOf } from '../protocol/commands/registry.js';
import type { CompressionCodecName } from '../protocol/compression.js';
import { errorOf } from '../protocol/error-codes.js';
import { RETAINED_PRODUCER_BATCHES } from '../protocol/idempotence.js';
import { partitionForKey } from '../protocol/partitioner.js';
import {
  RecordBatchBuilder,
  type RecordHeaderInput,
  type RecordInput,
  restampProducer,
} from '../protocol/record-batch.js';
import { BATCH_HEADER_SIZE, BATCH_OFFSETS } from '../protocol/record-batch-layout.js';
import { type Bytes, toBuffer } from './message.js';
import { checkProducerSecurity, type ProducerSecurity, sealMessage } from './message-security.js';
import { endSpan, startSendSpan, withTraceHeaders } from './tracing.js';
import type { Transport } from './transport.js';

export interface ProducerOptions {
  /**
   * How long a batch may wait for more messages (ms). 0: messages sent in the same synchronous job
   * share a batch; one that opens a batch of an idle partition goes at the end of its job (a
   * microtask), others (the partition busy, or 8 lone ones already this turn) at the end of the
   * event-loop turn.
   */
  lingerMs?: number;
  /**
   * A batch is sent once it reaches this many bytes, and a message that would take it past this
   * size starts the next batch (a message larger than this travels alone). Batches also stay within
   * the topic's `maxMessageBytes` (which the broker applies to whole batches) and the frame limit.
   */
  batchBytes?: number;
  compression?: CompressionCodecName;
  /**
   * 1 (default): resolve after the leader wrote it per the topic's durability; 'all': after every
   * in-sync replica did (a broker without a cluster is the only one); 0: do not wait.
   */
  acks?: Acks;
  /** Producer id + sequences so retries never duplicate (default true). */
  idempotent?: boolean;
  /**
   * Attempts for retriable errors before `send` rejects (default: no count, only
   * `deliveryTimeoutMs` bounds them).
   */
  retries?: number;
  /**
   * How long a batch may keep being retried, from when it was sealed (default 30,000 ms): past it a
   * retriable error fails the send instead of another attempt. Long enough by default to ride out
   * a leader or controller failover of a cluster (about 0.3–1.6 s) or a broker restart; an attempt
   * already sent still waits for its own `timeoutMs`. A send that first needs the topic's
   * partition count or a producer id waits for them the same way, up to this long after the call.
   */
  deliveryTimeoutMs?: number;
  /** `send` waits while this many bytes are buffered or in flight. */
  maxBufferedBytes?: number;
  timeoutMs?: number;
  /**
   * OpenTelemetry tracer: each send becomes a PRODUCER span and its W3C trace context is written
   * to the message headers (`traceparent`). Off (and free) when not set.
   */
  tracer?: Tracer;
  /**
   * Sign every message (Ed25519) and/or encrypt every value (AES-256-GCM) here, before it leaves
   * the process: the broker never sees the plaintext (message-security.ts; docs/client.md).
   */
  security?: ProducerSecurity;
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

/**
 * The waiter of consecutive messages of a group that went into the same batch, one after the
 * other: one object per run (per batch, for a `sendMany` to one partition), not one per message.
 */
class RunWaiter implements Waiter {
  count = 1;

  constructor(
    readonly group: ReceiptGroup,
    /** Index in the group (the `sendMany` input) of the run's first message. */
    readonly first: number,
  ) {}

  /** Resolves the run's messages; the first is record `at` of the batch. */
  settleRun(
    topic: string,
    partition: number,
    baseOffset: bigint,
    at: number,
    sequences: readonly number[],
    durability: ProduceResponse['durability'],
  ): void {
    for (let k = 0; k < this.count; k++) {
      const index = at + k;
      this.group.settle(
        this.first + k,
        new BatchReceipt(topic, partition, baseOffset, index, sequences[index] ?? -1, durability),
      );
    }
  }

  resolve(receipt: Receipt): void {
    this.group.settle(this.first, receipt);
  }

  reject(error: Error): void {
    this.group.reject(error);
  }
}

/** A `send` waiting to go into a batch (Producer.waiting); it is its message's waiter too. */
class WaitingSend implements Waiter {
  constructor(
    readonly input: SendInput,
    /** performance.now() of the call: its steps retry until `deliveryTimeoutMs` after it. */
    readonly calledAt: number,
    readonly resolve: (receipt: Receipt) => void,
    readonly reject: (error: Error) => void,
  ) {}
}

/**
 * Message `index` of `group` in the accumulator's open batch: the next message of the same call
 * right behind the previous one joins its run (the batch's last waiter), any other starts one.
 */
function joinRun(accumulator: Accumulator, group: ReceiptGroup, index: number): RunWaiter {
  const last = accumulator.waiters[accumulator.waiters.length - 1];
  if (last instanceof RunWaiter && last.group === group && last.first + last.count === index) {
    last.count++;
    return last;
  }
  const run = new RunWaiter(group, index);
  accumulator.waiters.push(run);
  return run;
}

/** A `sendMany` call waiting to go into batches. */
class WaitingSendMany {
  constructor(
    readonly inputs: readonly SendInput[],
    readonly calledAt: number,
    readonly resolve: (receipts: Receipt[]) => void,
    readonly reject: (error: Error) => void,
  ) {}
}

type Waiting = WaitingSend | WaitingSendMany;

/** What a waiting call's first missing step failed with, and which waiting calls it fails too. */
interface StepFailure {
  readonly error: Error;
  /** The topic whose partition count failed; null when it concerns every call (producer id, closed). */
  readonly topic: string | null;
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
  /** Batches of this partition sent and not answered yet (at most RETAINED_PRODUCER_BATCHES). */
  inFlight: number;
  /** Producer id of the batches in flight: a batch of another id waits until they are answered. */
  inFlightProducerId: bigint;
  /** Sealed batches waiting for a slot, in their order. */
  queue: PendingBatch[];
  /** Set while the partition recovers from a failed send: nothing is sent until it is retried. */
  failed: PendingBatch[] | null;
  /** A recovery round is waiting (backoff, a new producer id). */
  recovering: boolean;
  /** A flush was due while the partition was busy: the open batch goes out when a slot frees. */
  deferred: boolean;
  /** Numbers the partition's batches in the order they were sealed. */
  nextOrdinal: number;
  /** Lone messages of this partition flushed by microtask in the current event-loop turn. */
  loneFlushesThisTurn: number;
  /** Queued batches sealed while no producer id was known: stamped, in order, once one is. */
  unstamped: number;
}

/**
 * Lone messages a partition may flush by microtask per event-loop turn (Producer.loneFlushAllowed):
 * enough for a few awaited sends in a row, few enough that a `for await` loop's turn costs at most
 * this many one-message requests before its messages share batches again.
 */
const LONE_FLUSHES_PER_TURN = 8;

/** The producer id of a batch sealed before the producer id was known: it is stamped before it goes. */
const UNSTAMPED = -2n;

/** One sealed batch on its way: sent, waiting for a slot, or waiting to be retried. */
interface PendingBatch {
  readonly request: RequestOf<'produce'>;
  readonly recordBytes: number;
  readonly waiters: Waiter[];
  /** Its place in the partition's order. */
  readonly ordinal: number;
  /** The producer id its sequence numbers belong to; -1 when it carries none. */
  producerId: bigint;
  /** Retriable failures so far (a refusal for a gap another batch left does not count). */
  failures: number;
  /** Times it moved to a fresh producer id because the broker lost its sequence. */
  restamps: number;
  /** When it was sealed (performance.now()): retries stop `deliveryTimeoutMs` later. */
  readonly sealedAt: number;
  error: unknown;
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

/**
 * At most this many bytes of a record are not its key, value and header bytes: its length,
 * attributes, timestamp and offset deltas, and the key, value and header-count varints at their
 * widest (5 + 1 + 10 + 5 + 5 + 5 + 5).
 */
const RECORD_FRAMING_BOUND = 36;

/**
 * Whether a message is a value and nothing else (no key, headers or expected version; the value
 * bytes or null): a `sendMany` puts runs of these into a batch by `enqueuePlainRun`.
 */
function isPlainValue(input: SendInput): boolean {
  return (
    (input.key === undefined || input.key === null) &&
    input.headers === undefined &&
    input.expectedVersion === undefined &&
    typeof input.value !== 'string'
  );
}

/** Bytes a plain record takes beyond its value, at most: length, attributes, deltas, key, header count. */
const PLAIN_RECORD_BOUND = 32;

/** At least the UTF-8 size of `value` (a UTF-16 unit takes at most 3 bytes), without encoding it. */
function byteBound(value: string | Bytes | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'string' ? value.length * 3 : value.byteLength;
}

/** A bound on the bytes a message takes in a batch, from its lengths alone (no encoding, no sizing). */
function recordBound(input: SendInput): number {
  let bound = RECORD_FRAMING_BOUND + byteBound(input.key) + byteBound(input.value);
  if (input.headers === undefined) return bound;
  for (const header of headersOf(input.headers)!)
    bound += 10 + header.key.length * 3 + byteBound(header.value as string | Bytes | null);
  return bound;
}

function checkPartition(topic: string, partition: number, partitions: number): void {
  if (!Number.isInteger(partition) || partition < 0 || partition >= partitions) {
    throw errorOf(
      'UNKNOWN_PARTITION',
      `${topic} has partitions 0..${partitions - 1}, asked for ${partition}`,
    );
  }
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The wait before retry `failures` + 1: 20 ms doubling to 1 s, never past `leftMs` (the deadline). */
const retryBackoffMs = (failures: number, leftMs: number): number =>
  Math.min(1000, 20 * 2 ** (failures - 1), leftMs);

/**
 * A batch moves to a fresh producer id at most this many times (a broker that keeps losing the
 * sequence is not a failover to wait out: each move is immediate, with no backoff).
 */
const MAX_RESTAMPS = 5;

/** A count or a duration option: a number, not below 0 (`Infinity` allowed where `infinite`). */
function checkedOption(name: string, value: number, infinite: boolean): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0 || (!infinite && !Number.isFinite(value)))
    throw errorOf(
      'INVALID_CONFIG',
      `producer option ${name} must be a number ≥ 0${infinite ? '' : ' and finite'}, got ${String(value)}`,
    );
  return value;
}

/**
 * What a produce request carries besides its batch: topic string (u16 length + UTF-8), partition
 * u32, acks u8, hasExpectedVersion u8, expectedVersion i64 (src/protocol/commands/data-commands.ts).
 */
function produceRequestOverhead(topic: string): number {
  return 2 + Buffer.byteLength(topic) + 4 + 1 + 1 + 8;
}

export class Producer {
  private readonly transport: Transport;
  private readonly metadata: TopicMetadataSource;
  private readonly options: Required<Omit<ProducerOptions, 'tracer' | 'security'>>;
  private readonly tracer: Tracer | null;
  private readonly security: ProducerSecurity | null;
  /** The accumulator `accumulatorFor` returned last (accumulators live as long as the producer). */
  private lastAccumulator: Accumulator | null = null;
  /** Per topic, the accumulators by partition (no string key built per message). */
  private readonly accumulators = new Map<string, Array<Accumulator | undefined>>();
  private readonly sequences = new Map<string, number>();
  private readonly sticky = new Map<string, number>();
  private producerId: Promise<{ producerId: bigint; producerEpoch: number }> | null = null;
  private bufferedBytes = 0;
  private readonly spaceWaiters: Array<() => void> = [];
  /**
   * Calls that could not go into batches at once (their topic's partition count or the producer id
   * not known yet, or the buffer full), in call order, and every call after them until they are
   * all in. One drain at a time waits for what the oldest needs, then puts in every call that has
   * what it needs: a burst of sends before the first answer costs a small object each, where an
   * async function per send (its frames and promises, all alive until the answer) kept the
   * collector busy for most of the burst.
   */
  private readonly waiting = new Fifo<Waiting>();
  private draining = false;
  private readonly drainedWaiters: Array<() => void> = [];
  /** Batches sealed and not settled (sent, queued or being retried); `flush` waits for 0. */
  private pendingBatches = 0;
  private readonly idleWaiters: Array<() => void> = [];
  /**
   * The record `enqueue` fills for each message: the builder copies it into the batch at once and
   * keeps no reference, so one object serves every message (no allocation per message).
   */
  private readonly record: RecordInput & { timestamp: number } = {
    key: null,
    value: null,
    headers: undefined,
    timestamp: 0,
  };
  private closed = false;
  /** Partitions that flushed a lone message by microtask this turn (reset by `newTurn`). */
  private readonly loneFlushedLanes: Accumulator[] = [];

  constructor(transport: Transport, metadata: TopicMetadataSource, options: ProducerOptions = {}) {
    this.transport = transport;
    this.metadata = metadata;
    this.options = {
      lingerMs: options.lingerMs ?? 0,
      batchBytes: options.batchBytes ?? 512 * 1024,
      compression: options.compression ?? 'none',
      acks: options.acks ?? 1,
      idempotent: options.idempotent ?? true,
      retries: checkedOption('retries', options.retries ?? Number.POSITIVE_INFINITY, true),
      deliveryTimeoutMs: checkedOption('deliveryTimeoutMs', options.deliveryTimeoutMs ?? 30_000, false),
      maxBufferedBytes: options.maxBufferedBytes ?? 64 * 1024 * 1024,
      timeoutMs: options.timeoutMs ?? 30_000,
    };
    this.tracer = options.tracer ?? null;
    if (options.security !== undefined) checkProducerSecurity(options.security);
    this.security = options.security ?? null;
  }

  /** Sends one message; resolves when the broker acknowledged it (per `acks`). */
  send(input: SendInput): Promise<Receipt> {
    if (this.tracer !== null) return this.sendTraced(input, this.tracer);
    return this.sendUntraced(input);
  }

  /** The message as it leaves the process: sealed after every header (tracing's too) is in place. */
  private sealed(input: SendInput): SendInput {
    const toBytes = (value: string | Bytes | null | undefined) =>
      value === null || value === undefined ? null : toBuffer(value);
    const sealed = sealMessage(
      {
        topic: input.topic,
        key: toBytes(input.key),
        value: toBytes(input.value),
        headers: (headersOf(input.headers) ?? []).map((header) => ({
          key: header.key,
          value: toBytes(header.value),
        })),
      },
      this.security!,
    );
    return { ...input, value: sealed.value, headers: sealed.headers };
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

  private sendUntraced(original: SendInput): Promise<Receipt> {
    let input = original;
    if (this.security !== null) {
      try {
        input = this.sealed(original);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    // Fast path, no awaits: nothing is waiting ahead of it, the topic's partition count is
    // cached, the producer id is known and there is buffer space. Otherwise it waits its turn.
    const partitions = this.metadata.cachedPartitionCount(input.topic);
    if (partitions === undefined || this.waiting.length > 0 || !this.readyForAny()) {
      return new Promise<Receipt>((resolve, reject) =>
        this.wait(new WaitingSend(input, performance.now(), resolve, reject)),
      );
    }
    try {
      return this.enqueue(input, partitions);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Whether a call that knows its partition counts may go into batches now. */
  private readyForAny(): boolean {
    return !this.closed && this.bufferedBytes < this.options.maxBufferedBytes && !this.needsIdentity;
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

  private sendManyUntraced(original: readonly SendInput[]): Promise<Receipt[]> {
    let inputs: readonly SendInput[];
    try {
      inputs = this.security === null ? original : original.map((input) => this.sealed(input));
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<Receipt[]>((resolve, reject) => {
      const call = new WaitingSendMany(inputs, performance.now(), resolve, reject);
      if (this.waiting.length === 0 && this.readyForAny() && this.knowsCounts(call, null))
        this.enqueueWaiting(call, null);
      else this.wait(call);
    });
  }

  /** Queues a call behind the waiting ones and starts the drain if none runs. */
  private wait(call: Waiting): void {
    this.waiting.push(call);
    if (this.draining) return;
    this.draining = true;
    void this.drainWaiting();
  }

  /**
   * Puts the waiting calls into batches in their order: waits for what the oldest needs, then puts
   * in every call that has what it needs, until none waits. Never rejects: a step's failure fails
   * the calls it concerns (failWaiting).
   */
  private async drainWaiting(): Promise<void> {
    // Partition counts this drain was given (the metadata cache may drop one meanwhile).
    const learned = new Map<string, number>();
    while (this.waiting.length > 0) {
      const oldest = this.waiting.peek()!;
      const failure = await this.readyFor(oldest, learned);
      if (failure !== null) {
        this.failWaiting(failure);
        continue;
      }
      // It has what it needs: in it goes, with every call behind it that has what it needs too.
      this.waiting.shift();
      this.enqueueWaiting(oldest, learned);
      while (this.waiting.length > 0) {
        const call = this.waiting.peek()!;
        if (!this.readyForAny() || !this.knowsCounts(call, learned)) break;
        this.waiting.shift();
        this.enqueueWaiting(call, learned);
      }
    }
    this.draining = false;
    for (const wake of this.drainedWaiters.splice(0)) wake();
  }

  /** Waits for what `call` needs (buffer space, partition counts, the producer id); null when it has it. */
  private async readyFor(call: Waiting, learned: Map<string, number>): Promise<StepFailure | null> {
    if (this.closed) return { error: errorOf('CONNECTION_CLOSED', 'producer is closed'), topic: null };
    if (this.bufferedBytes >= this.options.maxBufferedBytes) {
      // The space is held by batches still lingering: someone waiting for it makes them due (as
      // Kafka's accumulator does when its memory is exhausted).
      this.flushAll();
      while (this.bufferedBytes >= this.options.maxBufferedBytes)
        await new Promise<void>((resolve) => this.spaceWaiters.push(resolve));
    }
    for (const input of call instanceof WaitingSend ? [call.input] : call.inputs) {
      const topic = input.topic;
      if (this.countOf(topic, learned) !== undefined) continue;
      try {
        learned.set(topic, await this.beforeBatch(() => this.metadata.partitionCount(topic), call.calledAt));
      } catch (error) {
        return { error: error as Error, topic };
      }
    }
    if (this.needsIdentity) {
      try {
        await this.beforeBatch(() => this.identity(), call.calledAt);
      } catch (error) {
        return { error: error as Error, topic: null };
      }
    }
    return null;
  }

  /**
   * The oldest waiting call failed a step: it fails, and so does every waiting call the same answer
   * is for (the same topic, or all for the producer id) when that answer is final or their own
   * delivery timeout has passed too; the others go on trying in their turn.
   */
  private failWaiting(failure: StepFailure): void {
    this.waiting.shift()!.reject(failure.error);
    const final = !(failure.error instanceof MemoryStreamerError && failure.error.retriable);
    const now = performance.now();
    const failed = this.waiting.removeWhere(
      (call) =>
        (failure.topic === null ||
          (call instanceof WaitingSend
            ? call.input.topic === failure.topic
            : call.inputs.some((input) => input.topic === failure.topic))) &&
        (final || now - call.calledAt >= this.options.deliveryTimeoutMs),
    );
    for (const call of failed) call.reject(failure.error);
  }

  private countOf(topic: string, learned: Map<string, number> | null): number | undefined {
    return this.metadata.cachedPartitionCount(topic) ?? learned?.get(topic);
  }

  /** Whether every topic of `call` has a known partition count. */
  private knowsCounts(call: Waiting, learned: Map<string, number> | null): boolean {
    if (call instanceof WaitingSend) return this.countOf(call.input.topic, learned) !== undefined;
    for (const input of call.inputs) if (this.countOf(input.topic, learned) === undefined) return false;
    return true;
  }

  /**
   * Throws what `enqueue` would throw for `input` (partition out of range, a conditional append
   * without key, a message no produce request of `payloadLimit` bytes can carry). The size is
   * checked from the message's lengths, and sized exactly only when that bound comes near the limit.
   */
  private checkSendable(input: SendInput, partitions: number, limit: number | undefined): void {
    if (input.partition !== undefined) checkPartition(input.topic, input.partition, partitions);
    const keyless = input.key === undefined || input.key === null;
    if (input.expectedVersion !== undefined && keyless)
      throw errorOf('INVALID_STREAM_KEY', 'an expected-version append needs a key');
    if (limit === undefined || BATCH_HEADER_SIZE + recordBound(input) <= limit) return;
    const record = {
      key: keyless ? null : toBuffer(input.key!),
      value: input.value,
      headers: headersOf(input.headers),
      timestamp: 0,
    };
    // A lone record's size with the deltas at their widest (what it can take in any batch).
    const sized = new RecordBatchBuilder(0).sizeOf(record) + 14;
    this.refuseIfTooLarge(input.topic, BATCH_HEADER_SIZE + sized, limit);
  }

  /** Puts a call that has what it needs into batches (the counts are known: knowsCounts). */
  private enqueueWaiting(call: Waiting, learned: Map<string, number> | null): void {
    if (call instanceof WaitingSend) {
      try {
        this.enqueue(call.input, this.countOf(call.input.topic, learned)!, call);
      } catch (error) {
        call.reject(error as Error);
      }
      return;
    }
    const inputs = call.inputs;
    // What enqueue would refuse of one message fails the call before any of it goes into a
    // batch: a call that fails sent nothing, so retrying it cannot write a message twice.
    // A call's messages mostly go to one topic: its partition count and size limit are looked up
    // when the topic changes from one message to the next, not for every message.
    let topic: string | null = null;
    let partitions = 0;
    try {
      const payloadLimit = this.transport.maxRequestPayloadBytes?.('produce');
      let limit: number | undefined;
      for (const input of inputs) {
        if (input.topic !== topic) {
          topic = input.topic;
          partitions = this.countOf(topic, learned)!;
          limit = payloadLimit === undefined ? undefined : payloadLimit - produceRequestOverhead(topic);
        }
        this.checkSendable(input, partitions, limit);
      }
    } catch (error) {
      call.reject(error as Error);
      return;
    }
    // One clock read for the call: messages without their own timestamp share it.
    const now = Date.now();
    const group = new ReceiptGroup(inputs.length, call.resolve, call.reject);
    topic = null;
    for (let i = 0; i < inputs.length; ) {
      const input = inputs[i]!;
      if (input.topic !== topic) {
        topic = input.topic;
        partitions = this.countOf(topic, learned)!;
      }
      try {
        if (isPlainValue(input)) {
          const next = this.enqueuePlainRun(inputs, i, partitions, group, now);
          if (next > i) {
            i = next;
            continue;
          }
        }
        this.enqueue(input, partitions, group, now, i);
        i++;
      } catch (error) {
        group.reject(error as Error);
        return;
      }
    }
  }

  /**
   * Puts plain messages (a value and nothing else: isPlainValue) of a `sendMany` call into one
   * partition's batch, from input `start` (plain, checked by checkSendable) for as long as they are
   * plain and go to the same topic and partition. What `enqueue` does for each of them, in one
   * loop: the partition, the accumulator and the run of receipts are found once, and the record is
   * written by the builder's `appendValue` without the general size walk. Returns the index of the
   * first message it did not take; `start` when the message needs `enqueue` (it may be too large
   * for a request, which `enqueue` reports).
   */
  private enqueuePlainRun(
    inputs: readonly SendInput[],
    start: number,
    partitions: number,
    group: ReceiptGroup,
    now: number,
  ): number {
    const topic = inputs[start]!.topic;
    // Messages without a partition stick to one until a batch is sealed (flushAccumulator moves it);
    // the run ends at every seal, so the sticky partition read here holds for all of it.
    const sticky = (this.sticky.get(topic) ?? 0) % partitions;
    const partition = inputs[start]!.partition ?? sticky;
    const accumulator = this.accumulatorFor(topic, partition);
    const builder = accumulator.builder;
    let run: RunWaiter | null = null;
    for (let i = start; i < inputs.length; i++) {
      const input = inputs[i]!;
      if (
        i > start &&
        (input.topic !== topic || !isPlainValue(input) || (input.partition ?? sticky) !== partition)
      )
        return i;
      // A missing value (JavaScript callers) is a null one, as in enqueue.
      const value = (input.value ?? null) as Bytes | null;
      if (value !== null && BATCH_HEADER_SIZE + PLAIN_RECORD_BOUND + value.length > accumulator.maxBatchBytes)
        return i;
      const timestamp = input.timestamp ?? now;
      let added = builder.appendValue(value, timestamp, accumulator.splitAtBytes);
      let sealed = false;
      if (added < 0) {
        // It does not fit: what is buffered leaves as it is, and this message starts the next
        // batch of the same partition (as in enqueue).
        this.flushAccumulator(accumulator, true);
        run = null;
        added = builder.appendValue(value, timestamp, accumulator.splitAtBytes);
        sealed = true;
      }
      this.bufferedBytes += added;
      if (run !== null) run.count++;
      else run = joinRun(accumulator, group, i);
      if (builder.sizeInBytes >= this.options.batchBytes) {
        this.flushAccumulator(accumulator, true);
        return i + 1;
      }
      if (!accumulator.scheduled) this.scheduleFlush(accumulator);
      // A seal moved the sticky partition: the next message finds its partition afresh.
      if (sealed) return i + 1;
    }
    return inputs.length;
  }

  /** Schedules the flush of a batch that just opened: after lingerMs, at the job's end or the turn's. */
  private scheduleFlush(accumulator: Accumulator): void {
    accumulator.scheduled = true;
    if (this.options.lingerMs > 0) accumulator.timer = setTimeout(accumulator.flush, this.options.lingerMs);
    else if (this.loneFlushAllowed(accumulator)) queueMicrotask(accumulator.flush);
    else setImmediate(accumulator.flush);
  }

  /**
   * A step a send needs before its message can go into a batch: the topic's partition count, the
   * producer id. A retriable failure (no broker reachable, one restarting or failing over) is tried
   * again with the batches' backoff, up to `deliveryTimeoutMs` after the send was called, as a batch
   * would be; an error for good (an unknown topic, a refusal) fails the send at once.
   */
  private async beforeBatch<T>(step: () => Promise<T>, calledAt: number): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await step();
      } catch (error) {
        const retriable = error instanceof MemoryStreamerError && error.retriable;
        const left = this.options.deliveryTimeoutMs - (performance.now() - calledAt);
        if (!retriable || left <= 0 || attempt > this.options.retries || this.closed) throw error;
        // Never past the delivery timeout: the attempt after it decides.
        await delay(retryBackoffMs(attempt, left));
      }
    }
  }

  /** Whether sends wait for a producer id first (idempotent, and none held). */
  private get needsIdentity(): boolean {
    return this.options.idempotent && this.currentIdentity.producerId < 0n;
  }

  private enqueue(input: SendInput, partitions: number): Promise<Receipt>;
  private enqueue(input: SendInput, partitions: number, waiter: WaitingSend): null;
  private enqueue(
    input: SendInput,
    partitions: number,
    group: ReceiptGroup,
    now: number,
    index: number,
  ): null;
  /**
   * `target`: a ReceiptGroup when the message is input `index` of a `sendMany` call, or the waiting
   * send it settles; without one a promise is returned. `now`: the timestamp of messages without
   * one (sendMany reads the clock once per call).
   */
  private enqueue(
    input: SendInput,
    partitions: number,
    target?: ReceiptGroup | WaitingSend,
    now?: number,
    index = 0,
  ): Promise<Receipt> | null {
    const key = input.key === undefined || input.key === null ? null : toBuffer(input.key);
    let partition: number;
    if (input.partition !== undefined) {
      checkPartition(input.topic, input.partition, partitions);
      partition = input.partition;
    } else if (key !== null) {
      partition = partitionForKey(key, partitions);
    } else {
      partition = (this.sticky.get(input.topic) ?? 0) % partitions;
    }
    const record = this.record;
    record.key = key;
    record.value = input.value;
    record.headers = headersOf(input.headers);
    record.timestamp = input.timestamp ?? now ?? Date.now();
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
      const lane = this.accumulatorFor(input.topic, partition);
      if (target !== undefined) {
        const waiter = target instanceof ReceiptGroup ? new GroupWaiter(target, index) : target;
        this.submitConditional(lane, batch, recordBytes, waiter, expectedVersion);
        return null;
      }
      return new Promise<Receipt>((resolve, reject) => {
        this.submitConditional(lane, batch, recordBytes, { resolve, reject }, expectedVersion);
      });
    }
    const accumulator = this.accumulatorFor(input.topic, partition);
    let recordBytes = accumulator.builder.sizeOf(record);
    // Refused before it touches the batch: the batch's other messages are not failed with it.
    this.refuseIfTooLarge(input.topic, BATCH_HEADER_SIZE + recordBytes, accumulator.maxBatchBytes);
    if (
      accumulator.builder.count > 0 &&
      accumulator.builder.sizeInBytes + recordBytes > accumulator.splitAtBytes
    ) {
      // It does not fit: what is buffered leaves as it is, and this message starts the next batch
      // (Kafka's accumulator does the same), so no batch outgrows the limits for one message.
      this.flushAccumulator(accumulator, true);
      recordBytes = accumulator.builder.sizeOf(record);
    }
    const before = accumulator.builder.sizeInBytes;
    // Sized once: the size computed above is the body `append` writes.
    accumulator.builder.append(record, accumulator.builder.sizedBody);
    this.bufferedBytes += accumulator.builder.sizeInBytes - before;
    let receipt: Promise<Receipt> | null = null;
    if (target === undefined)
      receipt = new Promise<Receipt>((resolve, reject) => accumulator.waiters.push({ resolve, reject }));
    else if (target instanceof ReceiptGroup) joinRun(accumulator, target, index);
    else accumulator.waiters.push(target);
    if (accumulator.builder.sizeInBytes >= this.options.batchBytes) {
      this.flushAccumulator(accumulator, true);
    } else if (!accumulator.scheduled) {
      this.scheduleFlush(accumulator);
    }
    return receipt;
  }

  /**
   * With lingerMs 0, a message that opens a batch of an idle partition (nothing in flight, nothing
   * queued) goes out at the end of the current job (a microtask) instead of on the next event-loop
   * turn: sends of the same synchronous job (a plain loop) still share its batch, and nothing else
   * could join it by waiting. At most LONE_FLUSHES_PER_TURN times per partition and event-loop
   * turn: a loop that sends from `for await` runs many iterations in one turn (a few microtasks
   * each), and where the append completes in line each of its messages would otherwise find the
   * partition idle and go alone; past the budget they wait for the turn's end and share a batch.
   */
  private loneFlushAllowed(lane: Accumulator): boolean {
    if (
      lane.builder.count !== 1 ||
      lane.inFlight > 0 ||
      lane.loneFlushesThisTurn >= LONE_FLUSHES_PER_TURN ||
      this.laneBusy(lane)
    )
      return false;
    if (lane.loneFlushesThisTurn++ === 0) {
      this.loneFlushedLanes.push(lane);
      if (this.loneFlushedLanes.length === 1) setImmediate(this.newTurn);
    }
    return true;
  }

  /** A new event-loop turn: every partition may flush a lone message by microtask again. */
  private readonly newTurn = (): void => {
    for (const lane of this.loneFlushedLanes) lane.loneFlushesThisTurn = 0;
    this.loneFlushedLanes.length = 0;
  };

  private accumulatorFor(topic: string, partition: number): Accumulator {
    // A run of messages to one partition (a sendMany) finds it without the Map lookup.
    const last = this.lastAccumulator;
    if (last !== null && last.partition === partition && last.topic === topic) return last;
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
        flush: () => this.flushAccumulator(created, false),
        maxBatchBytes: Number.POSITIVE_INFINITY,
        splitAtBytes: this.options.batchBytes,
        inFlight: 0,
        inFlightProducerId: -1n,
        queue: [],
        failed: null,
        recovering: false,
        deferred: false,
        nextOrdinal: 0,
        unstamped: 0,
        loneFlushesThisTurn: 0,
      };
      this.refreshLimits(created);
      accumulator = created;
      byPartition[partition] = accumulator;
    }
    this.lastAccumulator = accumulator;
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
    if (accumulator !== undefined) this.flushAccumulator(accumulator, true);
  }

  /**
   * Seals the open batch and sends it. `force` false (a linger timer): while the partition is busy
   * the batch stays open and keeps growing, and goes out when a slot frees.
   */
  private flushAccumulator(accumulator: Accumulator, force: boolean): void {
    if (accumulator.timer !== null) clearTimeout(accumulator.timer);
    accumulator.timer = null;
    if (!force && accumulator.waiters.length > 0 && this.laneBusy(accumulator)) {
      accumulator.deferred = true;
      return;
    }
    accumulator.scheduled = false;
    accumulator.deferred = false;
    if (accumulator.waiters.length === 0) return;
    const waiters = accumulator.waiters;
    accumulator.waiters = [];
    const count = accumulator.builder.count;
    const recordBytes = accumulator.builder.sizeInBytes - BATCH_HEADER_SIZE;
    let { producerId, producerEpoch } = this.currentIdentity;
    // The producer id is being replaced (after a batch failed for good): this batch is stamped
    // when the new one is known, after the partition's batches sealed before it.
    const stampLater = this.options.idempotent && (producerId < 0n || accumulator.unstamped > 0);
    if (stampLater) {
      producerId = -1n;
      producerEpoch = -1;
    }
    const baseSequence = producerId >= 0n ? this.takeSequences(accumulator.sequenceKey, count) : -1;
    const batch = accumulator.builder.finish({
      producerId,
      producerEpoch,
      baseSequence,
      compression: this.options.compression,
    });
    this.refreshLimits(accumulator);
    // Messages without key stick to one partition per batch, then move on.
    this.sticky.set(accumulator.topic, (this.sticky.get(accumulator.topic) ?? 0) + 1);
    const request: RequestOf<'produce'> = {
      topic: accumulator.topic,
      partition: accumulator.partition,
      acks: this.options.acks,
      batch,
    };
    this.submit(
      accumulator,
      this.pendingBatch(accumulator, request, recordBytes, waiters, stampLater ? UNSTAMPED : producerId),
    );
  }

  /** The next `count` sequence numbers of a partition under the current producer id. */
  private takeSequences(sequenceKey: string, count: number): number {
    const base = this.sequences.get(sequenceKey) ?? 0;
    this.sequences.set(sequenceKey, (base + count) % 0x80000000);
    return base;
  }

  private pendingBatch(
    lane: Accumulator,
    request: RequestOf<'produce'>,
    recordBytes: number,
    waiters: Waiter[],
    producerId: bigint,
  ): PendingBatch {
    return {
      request,
      recordBytes,
      waiters,
      ordinal: lane.nextOrdinal++,
      producerId,
      failures: 0,
      restamps: 0,
      sealedAt: performance.now(),
      error: null,
    };
  }

  /** A conditional append: no sequence (see enqueue), but in the partition's order like any batch. */
  private submitConditional(
    lane: Accumulator,
    batch: Buffer,
    recordBytes: number,
    waiter: Waiter,
    expectedVersion: number,
  ): void {
    this.bufferedBytes += recordBytes;
    const request: RequestOf<'produce'> = {
      topic: lane.topic,
      partition: lane.partition,
      acks: this.options.acks,
      batch,
      expectedVersion,
    };
    this.submit(lane, this.pendingBatch(lane, request, recordBytes, [waiter], -1n));
  }

  private laneBusy(lane: Accumulator): boolean {
    return lane.failed !== null || lane.queue.length > 0 || lane.inFlight >= RETAINED_PRODUCER_BATCHES;
  }

  private submit(lane: Accumulator, pending: PendingBatch): void {
    this.pendingBatches++;
    if (pending.producerId === UNSTAMPED) {
      lane.unstamped++;
      lane.queue.push(pending);
      this.identity().then(
        () => this.pump(lane),
        (error: unknown) => this.failUnstamped(lane, error),
      );
    } else if (this.laneBusy(lane) || !this.sendableNow(lane, pending)) lane.queue.push(pending);
    else this.transmit(lane, pending);
  }

  /** Gives the partition's unstamped batches, in order, the current producer id and sequences. */
  private stampQueued(lane: Accumulator): void {
    for (const pending of lane.queue) if (pending.producerId === UNSTAMPED) this.stamp(lane, pending);
    lane.unstamped = 0;
  }

  /** Gives one batch the current producer id and the partition's next sequence numbers. */
  private stamp(lane: Accumulator, pending: PendingBatch): void {
    const { producerId, producerEpoch } = this.currentIdentity;
    const count = pending.request.batch.readInt32BE(BATCH_OFFSETS.recordCount);
    restampProducer(
      pending.request.batch,
      producerId,
      producerEpoch,
      this.takeSequences(lane.sequenceKey, count),
    );
    pending.producerId = producerId;
  }

  /** No producer id could be had (the broker cannot be reached): the batches waiting for one fail. */
  private failUnstamped(lane: Accumulator, error: unknown): void {
    if (lane.unstamped === 0) return;
    const waiting = lane.queue.filter((pending) => pending.producerId === UNSTAMPED);
    lane.queue = lane.queue.filter((pending) => pending.producerId !== UNSTAMPED);
    lane.unstamped = 0;
    for (const pending of waiting) this.fail(pending, error);
    this.pump(lane);
  }

  /** Batches of a new producer id wait until the old id's batches are answered (no reordering). */
  private sendableNow(lane: Accumulator, pending: PendingBatch): boolean {
    return lane.inFlight === 0 || pending.producerId === lane.inFlightProducerId;
  }

  private transmit(lane: Accumulator, pending: PendingBatch): void {
    lane.inFlight++;
    lane.inFlightProducerId = pending.producerId;
    // Plain callbacks, no async function: this runs once per batch, at low rates once per message.
    let attempt: Promise<ProduceResponse>;
    try {
      attempt = this.transport.request('produce', pending.request, { timeoutMs: this.options.timeoutMs });
    } catch (error) {
      // A transport that throws instead of rejecting fails (or retries) the batch the same way.
      attempt = Promise.reject(error);
    }
    attempt.then(
      (response) => {
        lane.inFlight--;
        this.settle(pending, response);
        this.pump(lane);
      },
      (error: unknown) => {
        lane.inFlight--;
        this.onSendFailed(lane, pending, error);
        this.pump(lane);
      },
    );
  }

  private onSendFailed(lane: Accumulator, pending: PendingBatch, error: unknown): void {
    const retriable = error instanceof MemoryStreamerError && error.retriable;
    if (!retriable && pending.producerId < 0n) {
      // Nothing of the partition's order hangs on a batch without sequence numbers.
      this.fail(pending, error);
      return;
    }
    if (retriable) pending.failures++;
    pending.error = error;
    if (lane.failed === null) lane.failed = [];
    lane.failed.push(pending);
  }

  /** Sends what the partition's slots allow; starts a recovery round once nothing is in flight. */
  private pump(lane: Accumulator): void {
    if (lane.failed !== null) {
      if (lane.inFlight === 0 && !lane.recovering) void this.recover(lane);
      return;
    }
    if (lane.unstamped > 0 && lane.queue[0]?.producerId === UNSTAMPED) {
      if (this.currentIdentity.producerId < 0n) return; // submit's identity() pumps again
      this.stampQueued(lane);
    }
    while (lane.queue.length > 0 && lane.inFlight < RETAINED_PRODUCER_BATCHES) {
      if (!this.sendableNow(lane, lane.queue[0]!)) return;
      this.transmit(lane, lane.queue.shift()!);
    }
    if (lane.deferred && !this.laneBusy(lane)) this.flushAccumulator(lane, true);
  }

  /**
   * Every batch of the partition is answered and some failed. The first failed one decides: a
   * retriable error is retried after a backoff (the ones behind it were refused for the gap it left
   * and go again after it); a refusal for good fails it alone; a broker that lost the producer's
   * sequence (OUT_OF_ORDER_SEQUENCE or UNKNOWN_PRODUCER_ID with nothing before it missing) gets the
   * batches again under a fresh producer id.
   */
  private async recover(lane: Accumulator): Promise<void> {
    lane.recovering = true;
    const failed = lane.failed!.sort((a, b) => a.ordinal - b.ordinal);
    const head = failed[0]!;
    const error = head.error;
    const code = error instanceof MemoryStreamerError ? error.codeName : undefined;
    if (code === 'UNKNOWN_TOPIC' || code === 'UNKNOWN_PARTITION') this.metadata.forget(lane.topic);
    const retriable = error instanceof MemoryStreamerError && error.retriable;
    const sequenceLost = code === 'OUT_OF_ORDER_SEQUENCE' || code === 'UNKNOWN_PRODUCER_ID';
    const retryFor = this.options.deliveryTimeoutMs - (performance.now() - head.sealedAt);
    try {
      if (
        sequenceLost &&
        head.restamps < MAX_RESTAMPS &&
        head.failures < this.options.retries &&
        retryFor > 0 &&
        !this.closed
      ) {
        head.failures++;
        head.restamps++;
        await this.restamp(lane, failed, head.producerId);
      } else if (
        !retriable ||
        sequenceLost ||
        head.failures > this.options.retries ||
        retryFor <= 0 ||
        this.closed
      ) {
        failed.shift();
        this.fail(head, error);
        // Its sequence numbers were used but nothing was written: the batches behind it move to a
        // fresh producer id rather than keep a gap the broker would refuse.
        if (head.producerId >= 0n && failed.length + lane.queue.length > 0)
          await this.restamp(lane, failed, head.producerId);
        else if (head.producerId >= 0n) this.resetIdentity(head.producerId);
      } else {
        // Never past the delivery timeout: the attempt after it decides.
        await delay(retryBackoffMs(head.failures, retryFor));
      }
    } catch (identityError) {
      // No new producer id (the broker cannot be reached): what waited on this partition fails.
      for (const pending of [...failed, ...lane.queue]) this.fail(pending, identityError);
      failed.length = 0;
      lane.queue = [];
    }
    lane.queue = [...failed, ...lane.queue];
    lane.failed = null;
    lane.recovering = false;
    this.pump(lane);
  }

  /** Moves the partition's unsent batches, in order, to a fresh producer id from sequence 0. */
  private async restamp(lane: Accumulator, failed: PendingBatch[], staleProducerId: bigint): Promise<void> {
    this.resetIdentity(staleProducerId);
    await this.identity();
    // Nothing of this partition was sent under the new id yet (it was recovering): start at 0.
    this.sequences.delete(lane.sequenceKey);
    for (const pending of [...failed, ...lane.queue]) if (pending.producerId >= 0n) this.stamp(lane, pending);
  }

  /** Drops the producer id unless it was already replaced: the next batches get a fresh one. */
  private resetIdentity(staleProducerId: bigint): void {
    if (this.currentIdentity.producerId !== staleProducerId) return;
    this.producerId = null;
    this.currentIdentity = { producerId: -1n, producerEpoch: -1 };
    this.sequences.clear();
  }

  private settle(pending: PendingBatch, response: ProduceResponse): void {
    const { baseOffset, sequences, durability } = response;
    const { topic, partition } = pending.request;
    const waiters = pending.waiters;
    // `at`: the batch's record the next waiter's (first) message is.
    let at = 0;
    for (let i = 0; i < waiters.length; i++) {
      const waiter = waiters[i]!;
      if (waiter instanceof RunWaiter) {
        waiter.settleRun(topic, partition, baseOffset, at, sequences, durability);
        at += waiter.count;
      } else {
        waiter.resolve(new BatchReceipt(topic, partition, baseOffset, at, sequences[at] ?? -1, durability));
        at++;
      }
    }
    this.release(pending);
  }

  private fail(pending: PendingBatch, error: unknown): void {
    for (const waiter of pending.waiters) waiter.reject(error as Error);
    this.release(pending);
  }

  /** A batch has settled: its bytes no longer count against the buffer limit. */
  private release(pending: PendingBatch): void {
    this.bufferedBytes -= pending.recordBytes;
    while (this.bufferedBytes < this.options.maxBufferedBytes && this.spaceWaiters.length > 0)
      this.spaceWaiters.shift()!();
    if (--this.pendingBatches === 0) for (const wake of this.idleWaiters.splice(0)) wake();
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

  /** Sends everything buffered now and waits until every send has settled. */
  async flush(): Promise<void> {
    // Calls still waiting for their turn go into batches first (what they wait for may be buffer
    // space that the batches flushed here free).
    while (this.draining) {
      this.flushAll();
      await new Promise<void>((resolve) => this.drainedWaiters.push(resolve));
    }
    this.flushAll();
    while (this.pendingBatches > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** Seals every open batch and sends it (or queues it behind the partition's batches in flight). */
  private flushAll(): void {
    for (const byPartition of this.accumulators.values()) {
      for (const accumulator of byPartition)
        if (accumulator !== undefined) this.flushAccumulator(accumulator, true);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
  }
}
