// A consumer actor: reads its own partitions from the start (the run's topics are new), and
// records end-to-end latency from each message's intended send time to its receipt here. It stops
// when told how many messages each partition got and all of them arrived, or when nothing arrived
// for a while (then the orchestrator reports what is missing).

import type { Histogram } from 'hdr-histogram-js';
import type { Client } from '../client/client.js';
import { connect } from '../client/connect.js';
import type { Consumer } from '../client/consumer.js';
import { monotonicMs } from './clock.js';
import { encodeHistogram, latencyHistogram, recordMs } from './histograms.js';
import { intendedTimeOf } from './payload.js';
import type { ActorResult, ConsumerPlan, PartitionCount, Schedule, ThreadUsage } from './protocol.js';
import { UsageWindow } from './usage-window.js';

/** Per assigned partition: received so far and, once the producers are done, how many to expect. */
interface PartitionTally {
  topicIndex: number;
  partition: number;
  received: number;
  expected: number | null;
}

export class ConsumerActor {
  private readonly histogram: Histogram = latencyHistogram();
  private readonly usage = new UsageWindow();
  /** Tallies by topic index, then partition. */
  private readonly tallies = new Map<number, Map<number, PartitionTally>>();
  private warmupEnd = Number.POSITIVE_INFINITY;
  private measured = 0;
  private total = 0;
  private lastAt: number | null = null;
  private lastActivity = monotonicMs();
  private draining = false;
  private idleTimer: NodeJS.Timeout | null = null;
  private finishing: Promise<void> | null = null;

  private constructor(
    private readonly plan: ConsumerPlan,
    private readonly client: Client,
    private readonly consumers: Array<{ consumer: Consumer; topicIndex: number }>,
  ) {
    for (const assignment of plan.assignments) {
      const byPartition = new Map<number, PartitionTally>();
      for (const partition of assignment.partitions)
        byPartition.set(partition, {
          topicIndex: assignment.topicIndex,
          partition,
          received: 0,
          expected: null,
        });
      this.tallies.set(assignment.topicIndex, byPartition);
    }
  }

  /** Connects and subscribes to every assigned partition before the producers start. */
  static async connect(plan: ConsumerPlan): Promise<ConsumerActor> {
    const client = await connect({
      brokers: plan.brokers,
      clientId: `memorystreamer-bench-consumer-${plan.index}`,
      connectTimeoutMs: 5000,
    });
    try {
      // One consumer per topic: a consumer's partition list applies to all of its topics.
      const consumers = plan.assignments.map((assignment) => ({
        consumer: client.consumer({
          topics: [assignment.topic],
          partitions: assignment.partitions,
          from: 'earliest',
        }),
        topicIndex: assignment.topicIndex,
      }));
      await Promise.all(consumers.map(({ consumer }) => consumer.start()));
      return new ConsumerActor(plan, client, consumers);
    } catch (error) {
      await client.close().catch(() => undefined);
      throw error;
    }
  }

  progress(): { sent: number; done: number } {
    return { sent: 0, done: this.total };
  }

  async run(schedule: Schedule): Promise<ActorResult> {
    this.warmupEnd = schedule.warmupEnd;
    this.usage.openAt(schedule.warmupEnd);
    let usage: ThreadUsage;
    try {
      await Promise.all(this.consumers.map(({ consumer, topicIndex }) => this.read(consumer, topicIndex)));
      usage = this.usage.close();
    } finally {
      if (this.idleTimer !== null) clearInterval(this.idleTimer);
      await this.client.close().catch(() => undefined);
    }
    return {
      kind: 'consumer',
      index: this.plan.index,
      measured: this.measured,
      total: this.total,
      lastAt: this.lastAt,
      histogram: encodeHistogram(this.histogram),
      partitions: [...this.tallies.values()].flatMap((byPartition) =>
        [...byPartition.values()].map(({ topicIndex, partition, received }) => ({
          topicIndex,
          partition,
          count: received,
        })),
      ),
      usage,
    };
  }

  private async read(consumer: Consumer, topicIndex: number): Promise<void> {
    const byPartition = this.tallies.get(topicIndex)!;
    for (let message = await consumer.next(); message !== null; message = await consumer.next()) {
      const now = monotonicMs();
      this.lastActivity = now;
      this.total++;
      const tally = byPartition.get(message.partition);
      if (tally !== undefined) tally.received++;
      const intended = intendedTimeOf(message.value);
      if (intended !== null && intended >= this.warmupEnd) {
        this.measured++;
        this.lastAt = now;
        recordMs(this.histogram, now - intended);
      }
      if (this.draining && tally !== undefined && tally.expected !== null && tally.received >= tally.expected)
        this.finishIfComplete();
    }
  }

  /** The producers are done: finish once `expected` arrived, or after `idleMs` without a message. */
  drain(expected: readonly PartitionCount[], idleMs: number): void {
    for (const tallies of this.tallies.values()) for (const tally of tallies.values()) tally.expected = 0;
    for (const { topicIndex, partition, count } of expected) {
      const tally = this.tallies.get(topicIndex)?.get(partition);
      if (tally !== undefined) tally.expected = count;
    }
    this.draining = true;
    this.lastActivity = monotonicMs();
    this.idleTimer = setInterval(
      () => {
        if (monotonicMs() - this.lastActivity >= idleMs) void this.finish();
      },
      Math.min(idleMs, 100),
    );
    this.finishIfComplete();
  }

  private finishIfComplete(): void {
    for (const tallies of this.tallies.values())
      for (const tally of tallies.values()) if (tally.received < (tally.expected ?? 0)) return;
    void this.finish();
  }

  /** Closing the consumers ends their reads, which ends `run`. */
  finish(): Promise<void> {
    this.finishing ??= Promise.all(this.consumers.map(({ consumer }) => consumer.close())).then(
      () => undefined,
    );
    return this.finishing;
  }
}
