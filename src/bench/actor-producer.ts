// A producer actor: sends timestamped messages at a fixed rate or as fast as acknowledgements
// allow, and records publish-to-ack latency. At a fixed rate each message carries its *intended*
// send time (origin + i / rate), and every latency counts from it: when the producer or the broker
// stalls, the messages that should have gone out meanwhile are charged the stall (no coordinated
// omission).

import type { Histogram } from 'hdr-histogram-js';
import type { Client } from '../client/client.js';
import { connect } from '../client/connect.js';
import type { Producer, Receipt } from '../client/producer.js';
import { monotonicMs } from './clock.js';
import { encodeHistogram, latencyHistogram, recordMs } from './histograms.js';
import { fillerFor, stampedValue } from './payload.js';
import type { ActorResult, PartitionCount, ProducerPlan, Schedule, ThreadUsage } from './protocol.js';
import { UsageWindow } from './usage-window.js';

/** Longest a fixed-rate producer blocks its thread while waiting for the next message's time (ms). */
const BLOCK_SLICE_MS = 0.1;
/** At max rate, give timers and messages from the orchestrator a turn this often (ms). */
const YIELD_EVERY_MS = 5;

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class ProducerActor {
  private readonly histogram: Histogram = latencyHistogram();
  private readonly filler: Buffer;
  private readonly usage = new UsageWindow();
  /** Only ever waited on (Atomics.wait as a precise short sleep), never notified. */
  private readonly pause = new Int32Array(new SharedArrayBuffer(4));
  /** Acknowledged messages per topic × partition (grown on demand). */
  private readonly ackedPerPartition: number[][] = [];
  private warmupEnd = Number.POSITIVE_INFINITY;
  private sequence = 0;
  private sent = 0;
  private sentMeasured = 0;
  private outstanding = 0;
  private measured = 0;
  private total = 0;
  private lastAt: number | null = null;
  private failure: unknown = null;
  private stopRequested = false;
  private wakeSender: (() => void) | null = null;
  private wakeBelow = 0;

  private constructor(
    private readonly plan: ProducerPlan,
    private readonly client: Client,
    private readonly producer: Producer,
  ) {
    this.filler = fillerFor(plan.size);
  }

  static async connect(plan: ProducerPlan): Promise<ProducerActor> {
    const client = await connect({
      brokers: plan.brokers,
      clientId: `memorystreamer-bench-producer-${plan.index}`,
      connectTimeoutMs: 5000,
    });
    const producer = client.producer({
      acks: plan.acks,
      compression: plan.compression,
      lingerMs: plan.lingerMs,
      batchBytes: plan.batchBytes,
    });
    return new ProducerActor(plan, client, producer);
  }

  /** Sent so far and acknowledged so far (for the live display). */
  progress(): { sent: number; done: number } {
    return { sent: this.sent, done: this.total };
  }

  stop(): void {
    this.stopRequested = true;
    this.wake();
  }

  async run(schedule: Schedule): Promise<ActorResult> {
    this.warmupEnd = schedule.warmupEnd;
    this.usage.openAt(schedule.warmupEnd);
    const wait = schedule.startAt - monotonicMs();
    if (wait > 1) await sleep(wait - 1);
    // Timers may fire a little early; the first send must not precede the schedule.
    while (monotonicMs() < schedule.startAt) await nextTurn();
    let usage: ThreadUsage;
    try {
      if (this.plan.ratePerSecond === null) await this.sendAtMaxRate(schedule);
      else await this.sendAtFixedRate(schedule, this.plan.ratePerSecond);
      // Everything sent must be acknowledged (or failed) before the window closes.
      await this.producer.flush();
      while (this.outstanding > 0) await this.waitForAcks(0);
      usage = this.usage.close();
    } finally {
      await this.client.close().catch(() => undefined);
    }
    if (this.failure !== null) throw this.failure;
    return {
      kind: 'producer',
      index: this.plan.index,
      measured: this.measured,
      total: this.total,
      lastAt: this.lastAt,
      histogram: encodeHistogram(this.histogram),
      partitions: this.partitionCounts(),
      usage,
    };
  }

  /** True once this intended send time, or the quota, ends the run. */
  private finished(intended: number, schedule: Schedule): boolean {
    if (this.stopRequested || this.failure !== null) return true;
    if (schedule.endAt !== null) return intended >= schedule.endAt;
    return this.plan.quota !== null && this.sentMeasured >= this.plan.quota;
  }

  private async sendAtMaxRate(schedule: Schedule): Promise<void> {
    const resumeBelow = Math.floor(this.plan.maxOutstanding / 2);
    let lastYield = monotonicMs();
    for (;;) {
      if (this.outstanding >= this.plan.maxOutstanding) {
        await this.waitForAcks(resumeBelow);
        lastYield = monotonicMs();
        continue;
      }
      const now = monotonicMs();
      if (this.finished(now, schedule)) return;
      this.send(now);
      if (now - lastYield >= YIELD_EVERY_MS) {
        await nextTurn();
        lastYield = monotonicMs();
      }
    }
  }

  private async sendAtFixedRate(schedule: Schedule, perSecond: number): Promise<void> {
    const interval = 1000 / perSecond;
    const resumeBelow = Math.floor(this.plan.maxOutstanding / 2);
    let index = 0;
    for (;;) {
      const now = monotonicMs();
      // Send every message whose intended time has come, late ones included, with their own time.
      for (;;) {
        const intended = schedule.startAt + index * interval;
        if (this.finished(intended, schedule)) return;
        if (intended > now || this.outstanding >= this.plan.maxOutstanding) break;
        this.send(intended);
        index++;
      }
      if (this.outstanding >= this.plan.maxOutstanding) {
        await this.waitForAcks(resumeBelow);
        continue;
      }
      const untilNext = schedule.startAt + index * interval - monotonicMs();
      // setTimeout is only millisecond-grained. Shorter waits take one event-loop turn (the batch
      // goes out, arrived acknowledgements are handled); with `spin` pacing that is all, so the
      // thread busy-polls (most exact, costs a core). With `block` it then blocks for at most
      // BLOCK_SLICE_MS, leaving the core to the broker on a small machine, at the price of
      // handling an acknowledgement (and so its measured latency) up to that much later.
      if (untilNext >= 2) await sleep(untilNext - 1);
      else {
        await nextTurn();
        const left = schedule.startAt + index * interval - monotonicMs();
        if (left > 0 && this.plan.pacing === 'block')
          Atomics.wait(this.pause, 0, 0, Math.min(left, BLOCK_SLICE_MS));
      }
    }
  }

  private send(intended: number): void {
    const topicIndex = this.sequence % this.plan.topics.length;
    const key =
      this.plan.streams > 0
        ? `stream-${(this.sequence * this.plan.producerCount + this.plan.index) % this.plan.streams}`
        : undefined;
    this.sequence++;
    this.sent++;
    if (intended >= this.warmupEnd) this.sentMeasured++;
    this.outstanding++;
    this.producer
      .send({
        topic: this.plan.topics[topicIndex]!,
        value: stampedValue(this.filler, intended),
        ...(key !== undefined ? { key } : {}),
      })
      .then(
        (receipt) => this.onAck(receipt, topicIndex, intended),
        (error: unknown) => this.failed(error),
      );
  }

  private onAck(receipt: Receipt, topicIndex: number, intended: number): void {
    const now = monotonicMs();
    this.outstanding--;
    this.total++;
    let counts = this.ackedPerPartition[topicIndex];
    if (counts === undefined) {
      counts = [];
      this.ackedPerPartition[topicIndex] = counts;
    }
    counts[receipt.partition] = (counts[receipt.partition] ?? 0) + 1;
    if (intended >= this.warmupEnd) {
      this.measured++;
      this.lastAt = now;
      recordMs(this.histogram, now - intended);
    }
    if (this.outstanding <= this.wakeBelow) this.wake();
  }

  private failed(error: unknown): void {
    this.outstanding--;
    this.failure ??= error;
    this.wake();
  }

  private waitForAcks(below: number): Promise<void> {
    if (this.outstanding <= below) return Promise.resolve();
    this.wakeBelow = below;
    return new Promise<void>((resolve) => {
      this.wakeSender = resolve;
    });
  }

  private wake(): void {
    const wake = this.wakeSender;
    this.wakeSender = null;
    wake?.();
  }

  private partitionCounts(): PartitionCount[] {
    const counts: PartitionCount[] = [];
    this.ackedPerPartition.forEach((byPartition, topicIndex) => {
      byPartition.forEach((count, partition) => {
        if (count > 0) counts.push({ topicIndex, partition, count });
      });
    });
    return counts;
  }
}
