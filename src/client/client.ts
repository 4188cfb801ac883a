// The client: one transport (TCP or in-process) shared by admin, producers and consumers, with a
// small cache of topic partition counts for partitioning.

import type { Tracer } from '@opentelemetry/api';
import { Admin } from './admin.js';
import { Consumer, type ConsumerOptions } from './consumer.js';
import { Producer, type ProducerOptions, type TopicMetadataSource } from './producer.js';
import type { Transport } from './transport.js';

export interface ClientOptions {
  /** Default timeout of admin calls and of requests made without their own. */
  requestTimeoutMs?: number;
  /**
   * OpenTelemetry tracer for producers and consumers made by this client (each may override it):
   * spans for send and receive, W3C trace context in message headers. Off when not set.
   */
  tracer?: Tracer;
}

export class Client {
  readonly admin: Admin;
  private readonly transport: Transport;
  private readonly timeoutMs: number;
  private readonly tracer: Tracer | undefined;
  private readonly partitionCounts = new Map<string, Promise<number>>();
  private readonly knownPartitionCounts = new Map<string, number>();
  private readonly knownMaxMessageBytes = new Map<string, number>();
  private readonly producers = new Set<Producer>();
  private readonly consumers = new Set<Consumer>();
  private closed = false;

  constructor(transport: Transport, options: ClientOptions = {}) {
    this.transport = transport;
    this.timeoutMs = options.requestTimeoutMs ?? 30_000;
    this.tracer = options.tracer;
    this.admin = new Admin(transport, this.timeoutMs, (topic) => this.metadata.forget(topic));
  }

  private readonly metadata: TopicMetadataSource = {
    partitionCount: (topic) => {
      let count = this.partitionCounts.get(topic);
      if (count === undefined) {
        count = this.transport
          .request('describeTopic', { name: topic }, { timeoutMs: this.timeoutMs })
          .then((d) => {
            this.knownPartitionCounts.set(topic, d.topic.partitions);
            this.knownMaxMessageBytes.set(topic, d.topic.config.maxMessageBytes);
            return d.topic.partitions;
          });
        count.catch(() => this.partitionCounts.delete(topic));
        this.partitionCounts.set(topic, count);
      }
      return count;
    },
    cachedPartitionCount: (topic) => this.knownPartitionCounts.get(topic),
    cachedMaxMessageBytes: (topic) => this.knownMaxMessageBytes.get(topic),
    forget: (topic) => {
      this.partitionCounts.delete(topic);
      this.knownPartitionCounts.delete(topic);
      this.knownMaxMessageBytes.delete(topic);
    },
  };

  producer(options: ProducerOptions = {}): Producer {
    const producer = new Producer(this.transport, this.metadata, {
      timeoutMs: this.timeoutMs,
      ...(this.tracer !== undefined ? { tracer: this.tracer } : {}),
      ...options,
    });
    this.producers.add(producer);
    return producer;
  }

  consumer(options: ConsumerOptions): Consumer {
    const consumer = new Consumer(this.transport, {
      timeoutMs: this.timeoutMs,
      ...(this.tracer !== undefined ? { tracer: this.tracer } : {}),
      ...options,
    });
    this.consumers.add(consumer);
    return consumer;
  }

  /** Round trip to the broker in milliseconds (a PING frame over TCP). */
  async ping(): Promise<number> {
    const started = performance.now();
    await this.transport.request('ping', {}, { timeoutMs: this.timeoutMs });
    return performance.now() - started;
  }

  /** Flushes producers, closes consumers, then the connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.producers].map((p) => p.close().catch(() => undefined)));
    await Promise.all([...this.consumers].map((c) => c.close()));
    await this.transport.close();
  }
}
