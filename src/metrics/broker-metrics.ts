// The broker's Prometheus metrics, in a registry of their own (never prom-client's global one, so
// two brokers in one process do not mix). Counters and histograms are updated on the request path
// with label values bound once per command; gauges that describe state (partitions, lag,
// connections, memory) are computed when Prometheus scrapes, so they cost nothing in between.

import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface BrokerStateSource {
  partitions(): Array<{
    topic: string;
    partition: number;
    logStartOffset: bigint;
    logEndOffset: bigint;
    sizeBytes: number;
  }>;
  groupLag(): Array<{ group: string; topic: string; partition: number; lag: bigint }>;
  connections(): number;
  heldBytes(): number;
}

export class BrokerMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'operation'>;
  private readonly errors: Counter<'operation' | 'code'>;
  private readonly latency: Histogram<'operation'>;
  readonly producedMessages: Counter;
  readonly producedBytes: Counter;
  readonly fetchedBytes: Counter;
  private source: BrokerStateSource | null = null;

  constructor() {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'memorystreamer_requests_total',
      help: 'requests handled, by operation',
      labelNames: ['operation'],
      registers,
    });
    this.errors = new Counter({
      name: 'memorystreamer_request_errors_total',
      help: 'requests that failed, by operation and error code name',
      labelNames: ['operation', 'code'],
      registers,
    });
    this.latency = new Histogram({
      name: 'memorystreamer_request_duration_seconds',
      help: 'time from a decoded request to its response, by operation',
      labelNames: ['operation'],
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5, 30],
      registers,
    });
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
    const source = () => this.source;
    new Gauge({
      name: 'memorystreamer_partition_end_offset',
      help: 'high watermark of each partition',
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
    new Gauge({
      name: 'memorystreamer_group_lag_messages',
      help: 'messages between a consumer group committed offset and the partition end',
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

  /** Times one request; call the returned function with the error (or nothing) when it ends. */
  start(operation: string): (error?: { codeName?: string }) => void {
    const started = performance.now();
    return (error) => {
      this.requests.inc({ operation });
      this.latency.observe({ operation }, (performance.now() - started) / 1000);
      if (error !== undefined) this.errors.inc({ operation, code: error.codeName ?? 'INTERNAL_ERROR' });
    };
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
