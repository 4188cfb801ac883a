// One partition as the broker serves it: the storage log plus what the broker derives from it —
// idempotent-producer state, the stream index, long-poll waiters and push subscriptions. Per-batch
// work only on the produce path (validate, key scan, append); no sockets here.

import type {
  ProduceResponse,
  ReadStreamResponse,
  StreamRecordView,
} from '../../protocol/commands/data-types.js';
import { errorOf } from '../../protocol/error-codes.js';
import {
  type DecodedRecord,
  iterateRecords,
  splitBatches,
  validateRecordBatch,
} from '../../protocol/record-batch.js';
import { BATCH_OFFSETS, readBatchHeader } from '../../protocol/record-batch-layout.js';
import { PartitionLog, type PartitionLogConfig, type StorageObserver } from '../../storage/partition-log.js';
import { StreamIndex } from '../../storage/stream-index.js';
import {
  deleteSnapshot,
  deleteSnapshotsAbove,
  listSnapshots,
  type ProducerSnapshot,
  readSnapshot,
  writeSnapshot,
} from '../producers/producer-snapshot.js';
import { NO_PRODUCER_ID, ProducerStateTable } from '../producers/producer-state.js';
import { sharedReads } from './read-scheduler.js';

const streamKeyOf = StreamIndex.keyOf;
const BATCH_LAST_OFFSET_DELTA = BATCH_OFFSETS.lastOffsetDelta;

export interface PartitionLimits {
  maxBatchBytes: number;
  maxDecompressedBytes: number;
  /** Every record needs a key (compacted topics: compaction keeps the latest record per key). */
  keysRequired?: boolean;
}

export interface ProduceInput {
  batch: Buffer;
  acks: 0 | 1;
  expectedVersion?: number | undefined;
}

/** Receives pushed data: whole batches, and the high watermark after them. */
export type PushSink = (batches: readonly Buffer[], highWatermark: bigint) => void;

const SCAN_BYTES = 1024 * 1024;
/** Producer snapshots kept per partition (the newest; older ones only cost disk). */
const KEPT_SNAPSHOTS = 3;
const BATCH_PRODUCER_ID = BATCH_OFFSETS.producerId;

/** How the last open rebuilt the producer table (tests and the partition-open benchmark read it). */
export interface ProducerRecovery {
  /** The snapshot the replay started from; null for a replay from the log start. */
  snapshotOffset: bigint | null;
  replayedBatches: number;
  replayedBytes: number;
  /** Time the producer table took to build (snapshot load and replay). */
  seconds: number;
}

export class Partition {
  readonly topic: string;
  readonly index: number;
  readonly log: PartitionLog;
  readonly producers = new ProducerStateTable();
  /**
   * The visible producer table: the batches below `visibleThrough` and none other, recorded as they
   * become visible (`producers` records a batch when it is appended, before it is written, so it may
   * already hold batches past a roll — whose recording can have evicted older batches or reset the
   * epoch, which an export "as of" an offset could not undo). Snapshots are taken from this one,
   * so a snapshot is exactly the table a replay of the log up to its offset builds.
   */
  private readonly visibleProducers = new ProducerStateTable();
  private visibleThrough = 0n;
  /** Snapshot writes, one at a time, in the background of appends. */
  private snapshotChain: Promise<void> = Promise.resolve();
  private lastSnapshotOffset = -1n;
  /**
   * False once compaction rewrote a segment: the visible table still remembers batches compaction
   * dropped, so it no longer equals a replay of the log and is not saved (until the next open, whose
   * table is built from the compacted log).
   */
  private snapshotsEnabled = true;
  /** Snapshot writes or prunes that failed (they only cost replay time at the next open). */
  snapshotFailures = 0;
  producerRecovery: ProducerRecovery = {
    snapshotOffset: null,
    replayedBatches: 0,
    replayedBytes: 0,
    seconds: 0,
  };
  readonly streams: StreamIndex;
  private limits: PartitionLimits;
  private readonly waiters = new Set<() => void>();
  private readonly subscriptions = new Set<PushSubscription>();

  private constructor(topic: string, index: number, log: PartitionLog, limits: PartitionLimits) {
    this.topic = topic;
    this.index = index;
    this.log = log;
    this.streams = log.streams!;
    this.limits = limits;
    log.onVisible((batches, highWatermark) => this.onVisible(batches, highWatermark));
    log.onRoll(() => this.snapshotInBackground());
    log.onSegmentReplaced((event) =>
      event.phase === 'replacing' ? this.invalidateSnapshots(event.baseOffset) : undefined,
    );
  }

  static async open(options: {
    topic: string;
    index: number;
    dir: string;
    config: Partial<PartitionLogConfig>;
    limits: PartitionLimits;
    observer?: StorageObserver;
  }): Promise<Partition> {
    const log = await PartitionLog.open({
      dir: options.dir,
      config: options.config,
      streams: { maxDecompressedBytes: options.limits.maxDecompressedBytes },
      ...(options.observer !== undefined ? { observer: options.observer } : {}),
    });
    const partition = new Partition(options.topic, options.index, log, options.limits);
    try {
      await partition.rebuildDerivedState();
    } catch (error) {
      // No file of a partition that failed to open stays open behind it (e.g. a corrupt batch).
      await log.close().catch(() => undefined);
      throw error;
    }
    return partition;
  }

  setLimits(limits: PartitionLimits): void {
    this.limits = limits;
  }

  /**
   * Builds the producer tables: from the newest valid snapshot at or below the high watermark (and
   * not below the log start), then a replay of the batch headers from its offset; from the log start
   * when there is none. A snapshot past the log end describes data recovery cut off (it was not
   * durable): it is deleted durably now, before an append could bring the log end past it again.
   */
  private async rebuildDerivedState(): Promise<void> {
    const started = performance.now();
    const dir = this.log.dir;
    const start = this.log.logStartOffset;
    const highWatermark = this.log.highWatermark;
    let snapshot: ProducerSnapshot | null = null;
    for (const offset of await deleteSnapshotsAbove(dir, this.log.logEndOffset)) {
      if (offset >= start && offset <= highWatermark) snapshot = await readSnapshot(dir, offset);
      if (snapshot !== null) break;
    }
    const from = snapshot?.offset ?? start;
    if (snapshot !== null) {
      this.producers.loadState(snapshot.entries, start);
      this.visibleProducers.loadState(snapshot.entries, start);
      this.lastSnapshotOffset = snapshot.offset;
    }
    const recovery: ProducerRecovery = {
      snapshotOffset: snapshot?.offset ?? null,
      replayedBatches: 0,
      replayedBytes: 0,
      seconds: 0,
    };
    // Only numbers are kept from each header, so the replay's reused buffers are safe here.
    for await (const { data } of this.log.replay(from, SCAN_BYTES)) {
      recovery.replayedBytes += data.length;
      for (const batch of splitBatches(data)) {
        recovery.replayedBatches++;
        this.recordBatch(this.producers, batch);
        this.recordBatch(this.visibleProducers, batch);
      }
    }
    this.visibleThrough = highWatermark;
    recovery.seconds = (performance.now() - started) / 1000;
    this.producerRecovery = recovery;
  }

  private recordBatch(table: ProducerStateTable, batch: Buffer): void {
    if (batch.readBigInt64BE(BATCH_PRODUCER_ID) === NO_PRODUCER_ID) return;
    const baseOffset = batch.readBigInt64BE(0);
    // Stored batches passed validation when appended and their CRC when read. A compacted batch
    // has fewer records than lastOffsetDelta + 1 (docs/storage.md, "Compaction"): the
    // producer's sequence range is still baseSequence..baseSequence + lastOffsetDelta.
    const header = readBatchHeader(batch);
    const lastOffset = baseOffset + BigInt(header.lastOffsetDelta);
    table.record({ ...header, recordCount: header.lastOffsetDelta + 1 }, baseOffset, lastOffset);
  }

  /**
   * Saves the visible producer table (docs/producer-snapshots.md) after the writes queued before.
   * The table is copied now; the file is written in the background, and a failure only means a
   * longer replay at the next open.
   */
  private snapshotInBackground(): Promise<void> {
    const offset = this.visibleThrough;
    if (!this.snapshotsEnabled || offset === this.lastSnapshotOffset) return this.snapshotChain;
    this.lastSnapshotOffset = offset;
    const snapshot: ProducerSnapshot = { offset, entries: this.visibleProducers.exportState() };
    const dir = this.log.dir;
    this.snapshotChain = this.snapshotChain.then(async () => {
      try {
        await writeSnapshot(dir, snapshot);
        // The newest few stay; older ones, and any below the log start (retention), go.
        const start = this.log.state === 'closed' ? 0n : this.log.logStartOffset;
        const offsets = await listSnapshots(dir);
        for (let i = 0; i < offsets.length; i++) {
          if (i >= KEPT_SNAPSHOTS || offsets[i]! < start) await deleteSnapshot(dir, offsets[i]!);
        }
      } catch {
        this.snapshotFailures++;
      }
    });
    return this.snapshotChain;
  }

  /** Settles when the snapshot writes started so far are done (tests wait for it). */
  snapshotsWritten(): Promise<void> {
    return this.snapshotChain;
  }

  /**
   * Compaction is about to replace the sealed segment at `baseOffset` (its 'replacing' phase): every
   * snapshot above that offset was derived from the old bytes and is deleted durably before the
   * swap commits (a snapshot could hold batches compaction drops, and so differ from the replay of
   * the compacted log). Throwing here stops the swap, which is the safe side.
   */
  private async invalidateSnapshots(baseOffset: bigint): Promise<void> {
    this.snapshotsEnabled = false;
    await this.snapshotChain;
    await deleteSnapshotsAbove(this.log.dir, baseOffset);
  }

  /**
   * Appends one producer batch: validation, idempotence, optimistic stream concurrency, offsets
   * and stream sequences, then durability per acks. Everything up to the storage append happens
   * synchronously, so concurrent produces to one partition cannot interleave their checks.
   */
  async produce(input: ProduceInput): Promise<ProduceResponse> {
    const keys: (string | null)[] = [];
    const deltas: number[] = [];
    let keyed = false;
    // One pass: every record is validated and its key taken (a compressed batch is inflated once).
    const header = validateRecordBatch(input.batch, this.limits, (key, offsetDelta) => {
      if (key !== null) keyed = true;
      keys.push(key === null ? null : streamKeyOf(key));
      deltas.push(offsetDelta);
    });
    const check = this.producers.check(header);
    if (check.kind === 'duplicate') {
      return {
        baseOffset: check.batch.baseOffset,
        lastOffset: check.batch.lastOffset,
        durability: this.log.config.durability === 'always' ? 'synced' : 'written',
        duplicate: true,
        sequences: [],
      };
    }
    if (this.limits.keysRequired === true && keys.includes(null)) {
      throw errorOf(
        'INVALID_REQUEST',
        `topic ${this.topic} is compacted (cleanup=compact): every message needs a key`,
      );
    }
    if (input.expectedVersion !== undefined) {
      const key = keys[0];
      if (key === null || key === undefined || keys.some((k) => k !== key)) {
        throw errorOf(
          'INVALID_REQUEST',
          'an expected-version append needs a batch whose records all have the same key',
        );
      }
      const current = this.streams.version(key);
      if (current !== input.expectedVersion) {
        throw errorOf(
          'STREAM_VERSION_CONFLICT',
          `stream is at version ${current}, expected ${input.expectedVersion}`,
        );
      }
    }
    const ticket = this.log.append(input.batch);
    this.producers.record(header, ticket.baseOffset, ticket.lastOffset);
    const base = Number(ticket.baseOffset);
    // Without any key the reply carries no sequences at all (clients read that as -1 for each).
    const sequences = keyed ? new Array<number>(keys.length) : [];
    if (keyed) {
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i]!;
        sequences[i] = key === null ? -1 : this.streams.add(key, base + deltas[i]!);
      }
    }
    const done = ticket.done.catch((error: unknown) => {
      this.streams.takeBack(base);
      this.producers.truncateFrom(ticket.baseOffset);
      throw error;
    });
    if (input.acks === 0) {
      done.catch(() => undefined);
      return {
        baseOffset: ticket.baseOffset,
        lastOffset: ticket.lastOffset,
        durability: 'none',
        duplicate: false,
        sequences,
      };
    }
    const durability = await done;
    return {
      baseOffset: ticket.baseOffset,
      lastOffset: ticket.lastOffset,
      durability,
      duplicate: false,
      sequences,
    };
  }

  /** Reads from `offset`, waiting up to `maxWaitMs` for data when there is none yet. */
  async fetch(offset: bigint, maxBytes: number, maxWaitMs: number) {
    if (offset === this.log.highWatermark && maxWaitMs > 0) await this.waitForData(maxWaitMs);
    return this.log.read(offset, maxBytes);
  }

  private waitForData(maxWaitMs: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, maxWaitMs);
      this.waiters.add(wake);
    });
  }

  private onVisible(batches: readonly Buffer[], highWatermark: bigint): void {
    for (const batch of batches) this.recordBatch(this.visibleProducers, batch);
    this.visibleThrough = highWatermark;
    for (const wake of [...this.waiters]) wake();
    for (const subscription of this.subscriptions) subscription.onAppended(batches, highWatermark);
  }

  /**
   * Reads one stream from a sequence: the stream index names the offsets of its messages, and only
   * the batches holding them are read (no partition scan). Sequences are the stream's own, also
   * after retention removed its first messages.
   */
  async readStream(
    key: Buffer,
    fromSequence: number,
    maxRecords: number,
    maxWaitMs: number,
  ): Promise<ReadStreamResponse> {
    const streamKey = streamKeyOf(key);
    const deadline = Date.now() + maxWaitMs;
    // Waits (up to maxWaitMs) while there is nothing to serve: the stream has no message at or
    // past `fromSequence` yet, or those it has are not readable yet, or retention deleted them.
    // The index is asked again only when the stream's version moved or the high watermark passed
    // a located message, not on every append to the partition.
    let seenVersion = -1;
    let waitingFor = -1n;
    for (;;) {
      const version = this.streams.version(streamKey);
      if (fromSequence < version && (version !== seenVersion || this.log.highWatermark > waitingFor)) {
        seenVersion = version;
        const located = await this.streams.locate(streamKey, fromSequence, maxRecords);
        const records = await this.streamRecords(key, located);
        if (records.length > 0) return { partition: this.index, version, records };
        const pending = located.find((l) => BigInt(l.offset) >= this.log.highWatermark);
        waitingFor = pending === undefined ? BigInt(Number.MAX_SAFE_INTEGER) : BigInt(pending.offset);
      }
      const left = deadline - Date.now();
      if (maxWaitMs <= 0 || left <= 0) return { partition: this.index, version, records: [] };
      await this.waitForData(left);
    }
  }

  /** The records at the located offsets (below the high watermark), reading only their batches. */
  private async streamRecords(
    key: Buffer,
    located: readonly { offset: number; sequence: number }[],
  ): Promise<StreamRecordView[]> {
    const records: StreamRecordView[] = [];
    const highWatermark = this.log.highWatermark;
    const logStart = this.log.logStartOffset;
    // The batch last read, decoded once: a stream's messages often share batches.
    let decoded: DecodedRecord[] = [];
    let batchFirst = -1n;
    let batchLast = -1n;
    for (const { offset: at, sequence } of located) {
      const offset = BigInt(at);
      if (offset >= highWatermark) break;
      if (offset < logStart) continue;
      if (offset < batchFirst || offset > batchLast) {
        // The batch holding the offset: read() returns it first, and at least that one.
        let data: Buffer;
        try {
          ({ data } = await this.log.read(offset, 1));
        } catch (error) {
          if (offset < this.log.logStartOffset) continue; // Retention deleted it meanwhile.
          throw error;
        }
        const batch = splitBatches(data).next().value;
        if (batch === undefined) break;
        batchFirst = batch.readBigInt64BE(0);
        batchLast = batchFirst + BigInt(batch.readInt32BE(BATCH_LAST_OFFSET_DELTA));
        decoded = [...iterateRecords(batch, this.limits)];
      }
      const guess = decoded[Number(offset - batchFirst)];
      const record = guess?.offset === offset ? guess : decoded.find((r) => r.offset === offset);
      // A hash collision in the index would name another key's record: check the key.
      if (record === undefined || record.key === null || !record.key.equals(key)) continue;
      records.push({
        offset: record.offset,
        sequence,
        timestamp: record.timestamp,
        key: Buffer.from(record.key),
        value: record.value === null ? null : Buffer.from(record.value),
        headers: record.headers.map((h) => ({
          key: h.key,
          value: h.value === null ? null : Buffer.from(h.value),
        })),
      });
    }
    return records;
  }

  /** Starts pushing batches from `offset` to `sink`, never more bytes than granted. */
  subscribe(
    offset: bigint,
    credit: number,
    sink: PushSink,
    onError: (error: Error) => void,
  ): PushSubscription {
    const subscription = new PushSubscription(this, offset, credit, sink, onError, () =>
      this.subscriptions.delete(subscription),
    );
    this.subscriptions.add(subscription);
    subscription.pump();
    return subscription;
  }

  async close(): Promise<void> {
    for (const subscription of [...this.subscriptions]) subscription.close();
    for (const wake of [...this.waiters]) wake();
    await this.log.close();
    // A clean close saves the table as of the log end, so the next open replays nothing.
    await this.snapshotInBackground();
  }
}

/**
 * A push subscription with credit-based flow control: the broker sends whole batches while the
 * consumer's byte credit covers them, and waits for more credit otherwise. A caught-up subscriber
 * gets new batches straight from the append path (the in-memory tail), not from a file read.
 * The transport can also hold delivery (`pauseDelivery`) while the bytes it already queued towards
 * the client are over its memory budget, whatever credit is left; it resumes from the log.
 */
export class PushSubscription {
  private position: bigint;
  private credit: number;
  private pumping = false;
  private again = false;
  private held = false;
  closed = false;

  constructor(
    private readonly partition: Partition,
    offset: bigint,
    credit: number,
    private readonly sink: PushSink,
    private readonly onError: (error: Error) => void,
    private readonly detach: () => void,
  ) {
    this.position = offset;
    this.credit = credit;
  }

  get offset(): bigint {
    return this.position;
  }

  /** Credit granted and not yet used by pushes. */
  get availableCredit(): number {
    return this.credit;
  }

  grant(bytes: number): void {
    this.credit += bytes;
    this.pump();
  }

  /** Stops pushing (also from the append path) until `resumeDelivery`; what was pushed stays pushed. */
  pauseDelivery(): void {
    this.held = true;
  }

  get deliveryPaused(): boolean {
    return this.held;
  }

  resumeDelivery(): void {
    if (!this.held) return;
    this.held = false;
    this.pump();
  }

  onAppended(batches: readonly Buffer[], highWatermark: bigint): void {
    if (this.closed || this.held) return;
    const first = batches[0];
    if (!this.pumping && first !== undefined && first.readBigInt64BE(0) === this.position) {
      let bytes = 0;
      for (const batch of batches) bytes += batch.length;
      if (bytes <= this.credit) {
        this.credit -= bytes;
        this.position = highWatermark;
        this.sink(batches, highWatermark);
        return;
      }
    }
    this.pump();
  }

  /** Catches up from the log while credit lasts; coalesces concurrent calls into one loop. */
  pump(): void {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    void this.catchUp().finally(() => {
      this.pumping = false;
      if (this.again && !this.closed) {
        this.again = false;
        this.pump();
      }
    });
  }

  private async catchUp(): Promise<void> {
    const log = this.partition.log;
    while (!this.closed && !this.held && this.credit > 0 && this.position < log.highWatermark) {
      let result: Awaited<ReturnType<PartitionLog['read']>>;
      try {
        // Catch-up reads take turns with other clients' reads (read-scheduler.ts).
        await sharedReads.acquire(this);
      } catch {
        return; // Closed while waiting for its turn.
      }
      try {
        if (this.closed) return;
        result = await log.read(this.position, Math.min(this.credit, SCAN_BYTES));
      } catch (error) {
        // Retention removed the data, or the log closed: the subscription ends with the reason.
        this.close();
        this.onError(error instanceof Error ? error : new Error(String(error)));
        return;
      } finally {
        sharedReads.release();
      }
      if (result.data.length === 0 || result.data.length > this.credit || this.closed || this.held) return;
      this.credit -= result.data.length;
      this.position = result.nextOffset;
      this.sink([result.data], result.highWatermark);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    sharedReads.cancel(this);
    this.detach();
  }
}
