// What the orchestrator (main thread) and the actor threads say to each other. Plans travel as
// workerData; everything else as messages. All times are on the shared monotonic clock (clock.ts).

import type { Acks } from '../protocol/commands/data-types.js';
import type { CompressionCodecName } from '../protocol/compression.js';
import type { Pacing } from './options.js';

export interface ProducerPlan {
  kind: 'producer';
  index: number;
  brokers: string[];
  /** Messages go to these topics in turn. */
  topics: string[];
  size: number;
  /** Distinct keys over all producers; 0 = no key. */
  streams: number;
  producerCount: number;
  batchBytes: number;
  lingerMs: number;
  compression: CompressionCodecName;
  acks: Acks;
  /** This producer's messages per second; null = as fast as acknowledgements allow. */
  ratePerSecond: number | null;
  /** Measured messages this producer sends after warmup; null = until the schedule ends. */
  quota: number | null;
  /** How a fixed-rate producer waits less than 2 ms for its next message (options.ts). */
  pacing: Pacing;
  /** Sends awaiting acknowledgement at most; bounds memory when the broker falls behind. */
  maxOutstanding: number;
}

export interface ConsumerAssignment {
  topic: string;
  /** Index of the topic in the run's topic list. */
  topicIndex: number;
  partitions: number[];
}

export interface ConsumerPlan {
  kind: 'consumer';
  index: number;
  brokers: string[];
  assignments: ConsumerAssignment[];
}

export type ActorPlan = ProducerPlan | ConsumerPlan;

/** workerData of every actor thread. */
export interface ActorWorkerData {
  plan: ActorPlan;
  /** When running from TypeScript sources: the entry module the bootstrap imports. */
  entry: string | null;
}

export interface Schedule {
  /** Producers start sending (the first intended send time). */
  startAt: number;
  /** Messages intended before this are warmup: sent and consumed, not measured. */
  warmupEnd: number;
  /** Producers send nothing intended at or after this; null when quotas bound the run. */
  endAt: number | null;
}

/** Messages each partition received from the producers (warmup included). */
export interface PartitionCount {
  topicIndex: number;
  partition: number;
  count: number;
}

export type ToActor =
  | { type: 'start'; schedule: Schedule }
  /** Producers: stop sending now (Ctrl-C). Consumers: stop now, whatever is missing. */
  | { type: 'stop' }
  /** Consumers: finish once these counts arrived, or after `idleMs` without a message. */
  | { type: 'drain'; expected: PartitionCount[]; idleMs: number };

export interface ThreadUsage {
  /** CPU seconds of the actor's thread over its measured window; null off Linux. */
  cpuSeconds: number | null;
  wallSeconds: number;
  /** Share of the window its event loop was busy (0..1). */
  eventLoopUtilization: number;
}

export interface ActorResult {
  kind: ActorPlan['kind'];
  index: number;
  /** Messages acknowledged (producer) or received (consumer) whose intended send time is after warmup. */
  measured: number;
  /** Every message acknowledged or received, warmup included. */
  total: number;
  /** Monotonic time of the last measured acknowledgement or receipt; null when none. */
  lastAt: number | null;
  /** Publish-to-ack (producer) or end-to-end (consumer) latency, encoded (histograms.ts). */
  histogram: string;
  /** Producers: acknowledged messages per partition. Consumers: received per partition. */
  partitions: PartitionCount[];
  usage: ThreadUsage;
}

export interface SerializedError {
  message: string;
  /** Set for MemoryStreamerError, so the CLI maps it to the same exit code as in-thread errors. */
  code: number | null;
  codeName: string | null;
  retriable: boolean;
}

export type FromActor =
  | { type: 'ready' }
  | { type: 'progress'; sent: number; done: number }
  | { type: 'done'; result: ActorResult }
  | { type: 'failed'; error: SerializedError };
