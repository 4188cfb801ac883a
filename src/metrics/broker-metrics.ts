// The broker's Prometheus metrics, in a registry of their own (never prom-client's global one, so
// two brokers in one process do not mix). Counters and histograms are updated on the request path
// with label values bound once per command; gauges that describe state (partitions, lag,
// connections, memory) are computed when Prometheus scrapes, so they cost nothing in between.

import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { type ReplicationStateSource, registerReplicationMetrics } from './replication-metrics.js';
import { RequestRecorder } from './request-recorder.js';

export interface BrokerStateSource {
  partitions(): Array<{
    topic: string;
    partition: number;
    logStartOffset: bigint;
    /** Consumers read offsets below this. */
    highWatermark: bigint;
    /** The offset the next appended message gets here (at or above the high watermark). */
    logEndOffset: bigint;
    sizeBytes: number;
    /** Append writes made in line (into the page cache), and slow ones that sent the log to the thread pool. */
    inlineWrites?: number;
    inlineWriteFallbacks?: number;
    /** True while the log writes on the thread pool (cooling down after a slow in-line write). */
    poolWrites?: boolean;
  }>;
  groupLag(): Array<{ group: string; topic: string; partition: number; lag: bigint }>;
  connections(): number;
  heldBytes(): number;
  /** Topics that could not be opened at start (offline; the rest of the broker serves). */
  offlineTopics(): Array<{ topic: string; reason: string }>;
}

/** Upper bounds (seconds) of the request latency histogram buckets. */
const LATENCY_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5, 30,
];

const noRecord = (): void => undefined;

type PartitionState = ReturnType<BrokerStateSource['partitions']>[number];

export interface MetricsSnapshot {
  producedMessages: number;
  producedBytes: number;
  fetchedBytes: number;
  requests: number;
  errors: number;
  /** Cumulative counts per bucket, the last one +Inf, by operation. */
  latency: { bucketsSeconds: number[]; operations: Record<string, number[]> };
}

export class BrokerMetrics {
  readonly registry = new Registry();
  private readonly errors: Counter<'operation' | 'code'>;
  private readonly producedMessages: Counter;
  private readonly producedBytes: Counter;
  private readonly fetchedBytes: Counter;
  private readonly syncLatency: Histogram<'cause'>;
  private readonly throttles: Counter;
  private readonly compactedBytes: Counter;
  private readonly compactionRemovedBytes: Counter;
  private readonly compactionRemovedRecords: Counter;
  private readonly memoryTrims: Counter;
  private readonly memoryTrimmedBytes: Counter;
  private readonly forcedGcs: Counter;
  private source: BrokerStateSource | null = null;
  private readonly recorder = new RequestRecorder(LATENCY_BUCKETS);
  /**
   * Off, the request path records nothing (counters, histograms): the state gauges still answer
   * a scrape. Exists so the cost of metrics can be measured (bench/metrics-overhead.ts) and so an
   * operator can take it away; on by default.
   */
  enabled = true;

  constructor() {
    const registers = [this.registry];
    this.errors = new Counter({
      name: 'memorystreamer_request_errors_total',
      help: 'requests that failed, by operation and error code name',
      labelNames: ['operation', 'code'],
      registers,
    });
    for (const family of this.recorder.families(
      'memorystreamer_requests_total',
      'memorystreamer_request_duration_seconds',
    ))
      this.registry.registerMetric(family as unknown as Counter);
    this.producedMessages = new Counter({
      name: 'memorystreamer_produce_messages_total',
      help: 'messages appended by producers',
      registers,
    });
    this.producedBytes = new Counter({
      name: 'memorystreamer_produce_bytes_total',
      help: 'record batch bytes appended by producers',
      registers,
    });
    this.fetchedBytes = new Counter({
      name: 'memorystreamer_fetch_bytes_total',
      help: 'record batch bytes returned by fetches',
      registers,
    });
    this.syncLatency = new Histogram({
      name: 'memorystreamer_storage_fsync_duration_seconds',
      help: 'time of each fdatasync of a partition log, by cause (append: durability always; interval)',
      labelNames: ['cause'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.throttles = new Counter({
      name: 'memorystreamer_throttle_events_total',
      help: 'times a connection was paused and sent THROTTLE because its or the global memory budget was exceeded',
      registers,
    });
    this.compactedBytes = new Counter({
      name: 'memorystreamer_compaction_cleaned_bytes_total',
      help: 'bytes of sealed segments that log compaction rewrote (their size before cleaning)',
      registers,
    });
    this.compactionRemovedBytes = new Counter({
      name: 'memorystreamer_compaction_removed_bytes_total',
      help: 'bytes log compaction freed (cleaned segments, before minus after)',
      registers,
    });
    this.compactionRemovedRecords = new Counter({
      name: 'memorystreamer_compaction_removed_records_total',
      help: 'records log compaction removed: superseded by a later record of their key, or expired tombstones',
      registers,
    });
    this.memoryTrims = new Counter({
      name: 'memorystreamer_memory_trims_total',
      help: 'times freed malloc memory was returned to the OS (malloc_trim; glibc Linux with the native addon)',
      registers,
    });
    this.memoryTrimmedBytes = new Counter({
      name: 'memorystreamer_memory_trimmed_bytes_total',
      help: 'resident memory those trims returned (RSS before minus after)',
      registers,
    });
    this.forcedGcs = new Counter({
      name: 'memorystreamer_memory_forced_gc_total',
      help: 'full garbage collections run because connections released much more memory than V8 had freed',
      registers,
    });
    // Process CPU, memory, file descriptors, event-loop lag and GC, under the same prefix.
    collectDefaultMetrics({ register: this.registry, prefix: 'memorystreamer_' });
    const source = () => this.source;
    new Gauge({
      name: 'memorystreamer_partition_high_watermark',
      help: 'high watermark of each partition: consumers read the offsets below it',
      labelNames: ['topic', 'partition'],
      registers,
      collect() {
        this.reset();
        for (const p of source()?.partitions() ?? [])
          this.set({ topic: p.topic, partition: String(p.partition) }, Number(p.highWatermark));
      },
    });
    new Gauge({
      name: 'memorystreamer_partition_log_end_offset',
      help: 'log end of each partition here: the offset the next appended message gets (a follower or an unsynced tail may be ahead of the high watermark)',
      labelNames: ['topic', 'partition'],
      registers,
      collect() {
        this.reset();
        for (const p of source()?.partitions() ?? [])
          this.set({ topic: p.topic, partition: String(p.partition) }, Number(p.logEndOffset));
      },
    });
    new Gauge({
      name: 'memorystreamer_partition_start_offset',
      help: 'first offset still stored in each partition',
      labelNames: ['topic', 'partition'],
      registers,
      collect() {
        this.reset();
        for (const p of source()?.partitions() ?? [])
          this.set({ topic: p.topic, partition: String(p.partition) }, Number(p.logStartOffset));
      },
    });
    new Gauge({
      name: 'memorystreamer_partition_size_bytes',
      help: 'bytes on disk of each partition',
      labelNames: ['topic', 'partition'],
      registers,
      collect() {
        this.reset();
        for (const p of source()?.partitions() ?? [])
          this.set({ topic: p.topic, partition: String(p.partition) }, p.sizeBytes);
      },
    });
    // Partition logs' append writes (docs/storage.md, "Append path"): counted by the logs, read here.
    const perPartition = (
      metric: { reset(): void },
      put: (labels: { topic: string; partition: string }, value: number) => void,
      value: (p: PartitionState) => number | undefined,
    ): void => {
      metric.reset();
      for (const p of source()?.partitions() ?? []) {
        const v = value(p);
        if (v !== undefined && v > 0) put({ topic: p.topic, partition: String(p.partition) }, v);
      }
    };
    new Counter({
      name: 'memorystreamer_storage_inline_writes_total',
      help: 'append writes of each partition made in line, into the page cache, since it was opened',
      labelNames: ['topic', 'partition'],
      registers,
      collect() {
        perPartition(
          this,
          (labels, v) => this.inc(labels, v),
          (p) => p.inlineWrites,
        );
      },
    });
    new Counter({
      name: 'memorystreamer_storage_inline_write_fallbacks_total',
      help: 'times slow in-line writes in a row sent a partition to thread-pool writes for storage.inline_write_cooldown',
      labelNames: ['topic', 'partition'],
      registers,
      collect() {
        perPartition(
          this,
          (labels, v) => this.inc(labels, v),
          (p) => p.inlineWriteFallbacks,
        );
      },
    });
    new Gauge({
      name: 'memorystreamer_storage_pool_write_mode',
      help: '1 while a partition writes on the thread pool after a slow in-line write (or with in-line writes off); partitions writing in line are left out',
      labelNames: ['topic', 'partition'],
      registers,
      collect() {
        perPartition(
          this,
          (labels, v) => this.set(labels, v),
          (p) => (p.poolWrites === true ? 1 : undefined),
        );
      },
    });
    new Gauge({
      name: 'memorystreamer_group_lag_messages',
      help: 'messages between a consumer group committed offset and the partition high watermark',
      labelNames: ['group', 'topic', 'partition'],
      registers,
      collect() {
        this.reset();
        for (const l of source()?.groupLag() ?? [])
          this.set({ group: l.group, topic: l.topic, partition: String(l.partition) }, Number(l.lag));
      },
    });
    new Gauge({
      name: 'memorystreamer_connections',
      help: 'open client connections',
      registers,
      collect() {
        this.set(source()?.connections() ?? 0);
      },
    });
    new Gauge({
      name: 'memorystreamer_topics_offline',
      help: 'topics that could not be opened at start: requests for them get TOPIC_OFFLINE',
      registers,
      collect() {
        this.set(source()?.offlineTopics().length ?? 0);
      },
    });
    new Gauge({
      name: 'memorystreamer_memory_budget_used_bytes',
      help: 'bytes held by connections (undecoded input and requests in flight), against the global budget',
      registers,
      collect() {
        this.set(source()?.heldBytes() ?? 0);
      },
    });
  }

  attach(source: BrokerStateSource): void {
    this.source = source;
  }

  private replication: ReplicationStateSource | null = null;

  /**
   * The broker joined a cluster: its replication and controller series are exported from now on
   * (a broker alone exports none of them). A later call replaces the source.
   */
  attachReplication(source: ReplicationStateSource): void {
    const first = this.replication === null;
    this.replication = source;
    if (!first) return;
    const current = () => this.replication ?? source;
    registerReplicationMetrics(this.registry, {
      get clusterId() {
        return current().clusterId;
      },
      ledPartitions: () => current().ledPartitions(),
      followerLag: () => current().followerLag(),
      isController: () => current().isController(),
      controllerEpoch: () => current().controllerEpoch(),
      offlinePartitions: () => current().offlinePartitions(),
      counts: () => current().counts(),
    });
  }

  /** Times one request; call the returned function with the error (or nothing) when it ends. */
  start(operation: string): (error?: { codeName?: string }) => void {
    if (!this.enabled) return noRecord;
    const recorded = this.recorder.operation(operation);
    const started = performance.now();
    return (error) => {
      this.recorder.observe(recorded, (performance.now() - started) / 1000);
      if (error !== undefined) this.errors.inc({ operation, code: error.codeName ?? 'INTERNAL_ERROR' });
    };
  }

  recordProduce(messages: number, bytes: number): void {
    if (!this.enabled) return;
    this.producedMessages.inc(messages);
    this.producedBytes.inc(bytes);
  }

  recordSync(seconds: number, cause: 'append' | 'interval'): void {
    if (this.enabled) this.syncLatency.observe({ cause }, seconds);
  }

  recordThrottle(): void {
    if (this.enabled) this.throttles.inc();
  }

  /** One partition's compaction: sizes of the cleaned segments before and after, records removed. */
  recordCompaction(bytesBefore: number, bytesAfter: number, records: number): void {
    // Background work, not the request path: counted even with request metrics off.
    this.compactedBytes.inc(bytesBefore);
    this.compactionRemovedBytes.inc(bytesBefore - bytesAfter);
    this.compactionRemovedRecords.inc(records);
  }

  /** One malloc_trim and the RSS it gave back. */
  recordMemoryTrim(returnedBytes: number): void {
    // Background work, not the request path: counted even with request metrics off.
    this.memoryTrims.inc();
    this.memoryTrimmedBytes.inc(returnedBytes);
  }

  recordForcedGc(): void {
    this.forcedGcs.inc();
  }

  recordFetch(bytes: number): void {
    if (this.enabled) this.fetchedBytes.inc(bytes);
  }

  /**
   * The request counters as running totals, and each operation's latency histogram as
   * cumulative bucket counts, for the status page, which turns two snapshots into rates and
   * interval percentiles itself (so any number of viewers cost the broker nothing extra).
   */
  async snapshot(): Promise<MetricsSnapshot> {
    const single = async (counter: Counter) => (await counter.get()).values[0]?.value ?? 0;
    const requests = this.recorder.totalRequests();
    const errors = (await this.errors.get()).values.reduce((sum, v) => sum + v.value, 0);
    const operations = this.recorder.cumulative();
    return {
      producedMessages: await single(this.producedMessages),
      producedBytes: await single(this.producedBytes),
      fetchedBytes: await single(this.fetchedBytes),
      requests,
      errors,
      latency: { bucketsSeconds: [...LATENCY_BUCKETS], operations },
    };
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
