// Who does what: each producer's share of the rate and of the message count, and each consumer's
// own partitions (dealt round-robin over every topic × partition, so every message is read exactly
// once and consumed counts can be checked against produced ones).

import type { BenchOptions } from './options.js';
import type { ConsumerAssignment, ConsumerPlan, ProducerPlan } from './protocol.js';

/** Bytes of sends a producer keeps awaiting acknowledgement, as a message count within bounds. */
const OUTSTANDING_BYTES = 8 * 1024 * 1024;

export function producerPlans(options: BenchOptions, topics: string[], brokers: string[]): ProducerPlan[] {
  const maxOutstanding = Math.min(100_000, Math.max(256, Math.floor(OUTSTANDING_BYTES / options.size)));
  return Array.from({ length: options.producers }, (_, index) => ({
    kind: 'producer',
    index,
    brokers,
    topics,
    size: options.size,
    streams: options.streams,
    producerCount: options.producers,
    batchBytes: options.batchBytes,
    lingerMs: options.lingerMs,
    compression: options.compression,
    acks: options.acks,
    ratePerSecond: options.rate === null ? null : options.rate / options.producers,
    quota:
      options.messages === null
        ? null
        : Math.floor(options.messages / options.producers) +
          (index < options.messages % options.producers ? 1 : 0),
    pacing: options.pacing,
    maxOutstanding,
  }));
}

export function consumerPlans(options: BenchOptions, topics: string[], brokers: string[]): ConsumerPlan[] {
  const plans: ConsumerPlan[] = Array.from({ length: options.consumers }, (_, index) => ({
    kind: 'consumer',
    index,
    brokers,
    assignments: [],
  }));
  if (plans.length === 0) return plans;
  let next = 0;
  topics.forEach((topic, topicIndex) => {
    for (let partition = 0; partition < options.partitions; partition++) {
      const plan = plans[next++ % plans.length]!;
      let assignment: ConsumerAssignment | undefined = plan.assignments.find(
        (a) => a.topicIndex === topicIndex,
      );
      if (assignment === undefined) {
        assignment = { topic, topicIndex, partitions: [] };
        plan.assignments.push(assignment);
      }
      assignment.partitions.push(partition);
    }
  });
  return plans;
}
