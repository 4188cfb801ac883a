// Turns the actors' results into the figures of a run: throughput of produce and consume over the
// measured window, merged latency histograms, CPU use of broker and clients, and whether every
// produced message was consumed. This is also the --json document (docs/bench-tool.md lists it).

import { type LatencySummary, mergeHistograms, summarize } from './histograms.js';
import type { BenchOptions, BrokerMode } from './options.js';
import type { ActorResult, Schedule } from './protocol.js';

export interface ThroughputFigures {
  /** Messages after warmup (acknowledged for produce, received for consume). */
  messages: number;
  /** Every message, warmup included. */
  totalMessages: number;
  /** From the end of warmup to the last measured acknowledgement or receipt. */
  seconds: number;
  msgPerSec: number;
  /** Value bytes only (10^6 bytes per MB); keys, headers and framing are not counted. */
  mbPerSec: number;
}

export interface ThreadFigures {
  kind: 'producer' | 'consumer';
  index: number;
  /** CPU seconds per wall second of the actor's thread (1 = one core); null off Linux. */
  cores: number | null;
  eventLoopUtilization: number;
}

export interface BrokerCpu {
  cores: number | null;
  /** proc: the child's /proc/<pid>/stat. process-minus-actors: this process's CPU minus the actor threads'. */
  method: 'proc' | 'process-minus-actors' | null;
  /** Embedded only: how busy the main thread's event loop (the broker's) was. */
  eventLoopUtilization: number | null;
}

export interface BenchReport {
  mode: BrokerMode;
  brokers: string[];
  topics: string[];
  settings: Omit<BenchOptions, 'mode' | 'dataDir'>;
  produce: ThroughputFigures;
  consume: ThroughputFigures | null;
  /** Microseconds. publishToAck: intended send → acknowledgement; endToEnd: intended send → receipt. */
  latencyUs: { publishToAck: LatencySummary | null; endToEnd: LatencySummary | null };
  cpu: {
    broker: BrokerCpu;
    producers: ThreadFigures[];
    consumers: ThreadFigures[];
  };
  /** Produced messages (warmup included) that no consumer received; 0 without consumers. */
  missing: number;
  /** True when the run ended early (Ctrl-C). */
  interrupted: boolean;
}

export interface RunFacts {
  options: BenchOptions;
  brokers: string[];
  topics: string[];
  schedule: Schedule;
  producers: ActorResult[];
  consumers: ActorResult[];
  broker: BrokerCpu;
  interrupted: boolean;
}

const round = (value: number, digits: number) => Number(value.toFixed(digits));

function throughput(results: readonly ActorResult[], schedule: Schedule, size: number): ThroughputFigures {
  const messages = results.reduce((sum, r) => sum + r.measured, 0);
  const lastAt = Math.max(schedule.warmupEnd, ...results.map((r) => r.lastAt ?? schedule.warmupEnd));
  const seconds = (lastAt - schedule.warmupEnd) / 1000;
  const msgPerSec = seconds > 0 ? messages / seconds : 0;
  return {
    messages,
    totalMessages: results.reduce((sum, r) => sum + r.total, 0),
    seconds: round(seconds, 3),
    msgPerSec: Math.round(msgPerSec),
    mbPerSec: round((msgPerSec * size) / 1e6, 2),
  };
}

function threadFigures(result: ActorResult): ThreadFigures {
  const { cpuSeconds, wallSeconds, eventLoopUtilization } = result.usage;
  return {
    kind: result.kind,
    index: result.index,
    cores: cpuSeconds === null || wallSeconds <= 0 ? null : round(cpuSeconds / wallSeconds, 2),
    eventLoopUtilization: round(eventLoopUtilization, 2),
  };
}

/** Missing = produced minus received, per partition (a partition read twice would not hide a loss). */
function missingMessages(producers: readonly ActorResult[], consumers: readonly ActorResult[]): number {
  const key = (topicIndex: number, partition: number) => `${topicIndex}:${partition}`;
  const received = new Map<string, number>();
  for (const c of consumers)
    for (const p of c.partitions)
      received.set(
        key(p.topicIndex, p.partition),
        (received.get(key(p.topicIndex, p.partition)) ?? 0) + p.count,
      );
  const produced = new Map<string, number>();
  for (const r of producers)
    for (const p of r.partitions)
      produced.set(
        key(p.topicIndex, p.partition),
        (produced.get(key(p.topicIndex, p.partition)) ?? 0) + p.count,
      );
  let missing = 0;
  for (const [partition, count] of produced) missing += Math.max(0, count - (received.get(partition) ?? 0));
  return missing;
}

export function buildReport(facts: RunFacts): BenchReport {
  const { mode: _mode, dataDir: _dataDir, ...settings } = facts.options;
  const hasConsumers = facts.consumers.length > 0;
  return {
    mode: facts.options.mode,
    brokers: facts.brokers,
    topics: facts.topics,
    settings,
    produce: throughput(facts.producers, facts.schedule, facts.options.size),
    consume: hasConsumers ? throughput(facts.consumers, facts.schedule, facts.options.size) : null,
    latencyUs: {
      publishToAck: summarize(mergeHistograms(facts.producers.map((r) => r.histogram))),
      endToEnd: hasConsumers ? summarize(mergeHistograms(facts.consumers.map((r) => r.histogram))) : null,
    },
    cpu: {
      broker: facts.broker,
      producers: facts.producers.map(threadFigures),
      consumers: facts.consumers.map(threadFigures),
    },
    missing: hasConsumers ? missingMessages(facts.producers, facts.consumers) : 0,
    interrupted: facts.interrupted,
  };
}
