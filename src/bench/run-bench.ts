// The orchestrator of one run, on the main thread: start (or reach) the broker, create the run's
// topics, start consumer threads and wait until they are subscribed, start producer threads, give
// everyone one schedule, collect the producers' results, tell the consumers how many messages each
// partition got, collect theirs, and build the report. Whatever happens, every thread it started is
// terminated and every broker it started is stopped.

import { randomBytes } from 'node:crypto';
import type { EventLoopUtilization } from 'node:perf_hooks';
import { ActorThread } from './actor-thread.js';
import { monotonicMs } from './clock.js';
import { LiveStatus } from './live-status.js';
import type { BenchOptions } from './options.js';
import { consumerPlans, producerPlans } from './plans.js';
import type { ActorResult, PartitionCount, Schedule } from './protocol.js';
import { type BenchReport, type BrokerCpu, buildReport } from './report.js';
import { type BenchTarget, startTarget } from './target.js';

/** Where the measured window started: time, broker CPU seconds, and this thread's event-loop usage. */
interface MeasuredWindow {
  at: number;
  cpu: number | null;
  elu: EventLoopUtilization;
}

/** Consumers give up after this long without a message once the producers are done. */
const DRAIN_IDLE_MS = 5000;
/** Producers start this long after `start` is sent, so every thread begins on the same schedule. */
const START_DELAY_MS = 50;

export interface RunHooks {
  /** Broker addresses for the external mode (resolved like every other command's). */
  brokers: string;
  /** Aborting ends the measurement early; the run still drains and reports. */
  signal?: AbortSignal;
  /** Where the live line goes (a terminal only); default stderr. */
  statusStream?: NodeJS.WriteStream;
  /** Called once every actor has been told to start. */
  onStart?: () => void;
}

function topicNames(count: number): string[] {
  const run = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  return Array.from({ length: count }, (_, i) => `bench-${run}-${i}`);
}

async function createTopics(target: BenchTarget, options: BenchOptions, names: string[]): Promise<void> {
  // A batch may exceed --batch-bytes by one message; the topic must accept it.
  const maxMessageBytes = Math.min(
    256 * 1024 * 1024,
    Math.max(1024 * 1024, options.batchBytes + options.size + 4096),
  );
  for (const name of names) {
    await target.admin.admin.createTopic({
      name,
      partitions: options.partitions,
      ...(options.replicationFactor > 1 ? { replicationFactor: options.replicationFactor } : {}),
      config: { durability: options.durability, maxMessageBytes },
    });
  }
}

/** All results, or the first failure of any of `watched` (a consumer may fail while producers run). */
async function allOrFirstFailure<T>(results: Promise<T>[], watched: ActorThread[]): Promise<T[]> {
  const failure = new Promise<never>((_, reject) => {
    for (const actor of watched) actor.result.catch(reject);
  });
  failure.catch(() => undefined);
  return Promise.race([Promise.all(results), failure]);
}

export async function runBench(options: BenchOptions, hooks: RunHooks): Promise<BenchReport> {
  const target = await startTarget(options.mode, { brokers: hooks.brokers, dataDir: options.dataDir });
  const actors: ActorThread[] = [];
  const topics = topicNames(options.topics);
  let topicsCreated = false;
  let status: LiveStatus | null = null;
  let windowTimer: NodeJS.Timeout | null = null;
  try {
    await createTopics(target, options, topics);
    topicsCreated = true;
    // Consumers first: subscribed before the first message, so they see every one.
    const consumers = consumerPlans(options, topics, target.brokers).map((plan) => new ActorThread(plan));
    actors.push(...consumers);
    await allOrFirstFailure(
      consumers.map((c) => c.ready),
      consumers,
    );
    const producers = producerPlans(options, topics, target.brokers).map((plan) => new ActorThread(plan));
    actors.push(...producers);
    await allOrFirstFailure(
      producers.map((p) => p.ready),
      actors,
    );

    const startAt = monotonicMs() + START_DELAY_MS;
    const warmupEnd = startAt + options.warmupS * 1000;
    const schedule: Schedule = {
      startAt,
      warmupEnd,
      endAt: options.durationS === null ? null : warmupEnd + options.durationS * 1000,
    };
    // Broker CPU over the same window as the actors': from the end of warmup to the last result.
    const measured: { window: MeasuredWindow | null } = { window: null };
    const openWindow = (): MeasuredWindow => {
      measured.window ??= {
        at: monotonicMs(),
        cpu: target.cpuSeconds(),
        elu: performance.eventLoopUtilization(),
      };
      return measured.window;
    };
    windowTimer = setTimeout(openWindow, Math.max(0, warmupEnd - monotonicMs()));
    for (const actor of actors) actor.send({ type: 'start', schedule });
    hooks.onStart?.();
    status = new LiveStatus(
      schedule,
      () => ({
        sent: producers.reduce((n, p) => n + p.progress.sent, 0),
        acked: producers.reduce((n, p) => n + p.progress.done, 0),
        consumed: consumers.reduce((n, c) => n + c.progress.done, 0),
      }),
      hooks.statusStream,
    );
    status.start();
    let interrupted = false;
    const interrupt = () => {
      interrupted = true;
      for (const producer of producers) producer.send({ type: 'stop' });
    };
    if (hooks.signal?.aborted === true) interrupt();
    else hooks.signal?.addEventListener('abort', interrupt, { once: true });

    let producerResults: ActorResult[];
    let consumerResults: ActorResult[];
    try {
      producerResults = await allOrFirstFailure(
        producers.map((p) => p.result),
        actors,
      );
      const expected = sumPartitions(producerResults);
      for (const consumer of consumers) consumer.send({ type: 'drain', expected, idleMs: DRAIN_IDLE_MS });
      consumerResults = await allOrFirstFailure(
        consumers.map((c) => c.result),
        consumers,
      );
    } finally {
      hooks.signal?.removeEventListener('abort', interrupt);
    }
    const opened = openWindow();
    const wallSeconds = (monotonicMs() - opened.at) / 1000;
    const endCpu = target.cpuSeconds();
    return buildReport({
      options,
      brokers: target.brokers,
      topics,
      schedule,
      producers: producerResults,
      consumers: consumerResults,
      broker: brokerCpu(target, opened, endCpu, wallSeconds, [...producerResults, ...consumerResults]),
      interrupted,
    });
  } finally {
    if (windowTimer !== null) clearTimeout(windowTimer);
    status?.stop();
    await Promise.all(actors.map((actor) => actor.terminate()));
    if (topicsCreated && target.mode === 'external') {
      // An existing broker keeps its data: remove what this run added (its data dir is not ours).
      for (const topic of topics) await target.admin.admin.deleteTopic(topic).catch(() => undefined);
    }
    await target.stop();
  }
}

function sumPartitions(results: readonly ActorResult[]): PartitionCount[] {
  const sums = new Map<string, PartitionCount>();
  for (const result of results) {
    for (const { topicIndex, partition, count } of result.partitions) {
      const key = `${topicIndex}:${partition}`;
      const sum = sums.get(key) ?? { topicIndex, partition, count: 0 };
      sum.count += count;
      sums.set(key, sum);
    }
  }
  return [...sums.values()];
}

function brokerCpu(
  target: BenchTarget,
  window: MeasuredWindow,
  endCpu: number | null,
  wallSeconds: number,
  actors: readonly ActorResult[],
): BrokerCpu {
  const elapsed = endCpu === null || window.cpu === null ? null : endCpu - window.cpu;
  if (target.mode === 'spawn') {
    return {
      cores: elapsed === null || wallSeconds <= 0 ? null : Number((elapsed / wallSeconds).toFixed(2)),
      method: elapsed === null ? null : 'proc',
      eventLoopUtilization: null,
    };
  }
  if (target.mode === 'embedded') {
    const actorCpu = actors.map((a) => a.usage.cpuSeconds);
    const known = elapsed !== null && wallSeconds > 0 && actorCpu.every((c) => c !== null);
    const own = known ? elapsed - (actorCpu as number[]).reduce((a, b) => a + b, 0) : null;
    return {
      cores: own === null ? null : Number((Math.max(0, own) / wallSeconds).toFixed(2)),
      method: own === null ? null : 'process-minus-actors',
      // The broker's event loop is this thread's.
      eventLoopUtilization: Number(performance.eventLoopUtilization(window.elu).utilization.toFixed(2)),
    };
  }
  return { cores: null, method: null, eventLoopUtilization: null };
}
