// The bench actors run in worker threads under `memorystreamer bench`, where coverage cannot see
// them. Here they run in the test's own thread against a real embedded broker over TCP, driven the
// way worker-entry.ts drives them: connect, run(schedule), progress(), stop() / drain() / finish().

import { createServer } from 'node:net';
import * as hdr from 'hdr-histogram-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsumerActor } from '../../src/bench/actor-consumer.js';
import { ProducerActor } from '../../src/bench/actor-producer.js';
import { monotonicMs } from '../../src/bench/clock.js';
import { deserializeError, serializeError } from '../../src/bench/errors.js';
import type { ActorResult, ConsumerPlan, ProducerPlan, Schedule } from '../../src/bench/protocol.js';
import { UsageWindow } from '../../src/bench/usage-window.js';
import type { Client } from '../../src/client/client.js';
import { MemoryStreamerError } from '../../src/common/errors.js';
import { Broker } from '../../src/embedded/broker.js';
import { errorOf } from '../../src/protocol/error-codes.js';
import { useTempDir } from '../harness/temp-dir.js';

let dataDir: string;
let broker: Broker;
let admin: Client;
let address: string;
let topicCounter = 0;

const scratch = useTempDir('memorystreamer-actors-', 'all');
beforeAll(async () => {
  dataDir = scratch.path;
  broker = await Broker.start({ dataDir, host: '127.0.0.1', port: 0 });
  admin = broker.connect();
  address = `127.0.0.1:${broker.address!.port}`;
});

afterAll(async () => {
  await admin?.close().catch(() => undefined);
  await broker?.stop();
});

async function newTopic(partitions = 1): Promise<string> {
  const name = `actors-${process.pid}-${topicCounter++}`;
  await admin.admin.createTopic({ name, partitions, config: { durability: 'interval' } });
  return name;
}

function producerPlan(topics: string[], overrides: Partial<ProducerPlan> = {}): ProducerPlan {
  return {
    kind: 'producer',
    index: 0,
    brokers: [address],
    topics,
    size: 64,
    streams: 0,
    producerCount: 1,
    batchBytes: 64 * 1024,
    lingerMs: 0,
    compression: 'none',
    acks: 1,
    ratePerSecond: null,
    quota: null,
    pacing: 'block',
    maxOutstanding: 256,
    ...overrides,
  };
}

function consumerPlan(topics: string[], partitions: number): ConsumerPlan {
  return {
    kind: 'consumer',
    index: 0,
    brokers: [address],
    assignments: topics.map((topic, topicIndex) => ({
      topic,
      topicIndex,
      partitions: Array.from({ length: partitions }, (_, p) => p),
    })),
  };
}

/** A schedule like run-bench.ts builds: start shortly, optional warmup, optional end. */
function schedule(options: { warmupMs?: number; durationMs: number | null }): Schedule {
  const startAt = monotonicMs() + 20;
  const warmupEnd = startAt + (options.warmupMs ?? 0);
  return { startAt, warmupEnd, endAt: options.durationMs === null ? null : warmupEnd + options.durationMs };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function histogramCount(result: ActorResult): number {
  return hdr.decodeFromCompressedBase64(result.histogram).totalCount;
}

function partitionSum(result: ActorResult): number {
  return result.partitions.reduce((sum, p) => sum + p.count, 0);
}

/** A TCP port nothing listens on: bound once, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('ProducerActor', () => {
  it('at max rate sends until stopped, with acknowledged counts and publish-to-ack samples', async () => {
    const topic = await newTopic(2);
    const actor = await ProducerActor.connect(producerPlan([topic]));
    expect(actor.progress()).toEqual({ sent: 0, done: 0 });
    const running = actor.run(schedule({ durationMs: null }));
    await sleep(300);
    const during = actor.progress();
    actor.stop();
    const result = await running;
    const after = actor.progress();

    expect(during.sent).toBeGreaterThan(0);
    expect(after.sent).toBeGreaterThanOrEqual(during.sent);
    expect(after.done).toBeGreaterThanOrEqual(during.done);
    // Every send was acknowledged before run() resolved.
    expect(after.done).toBe(after.sent);
    expect(result.kind).toBe('producer');
    expect(result.index).toBe(0);
    expect(result.total).toBe(after.sent);
    // No warmup: every acknowledgement is measured and has a latency sample.
    expect(result.measured).toBe(result.total);
    expect(histogramCount(result)).toBe(result.measured);
    expect(result.lastAt).not.toBeNull();
    expect(partitionSum(result)).toBe(result.total);
    for (const p of result.partitions) {
      expect(p.topicIndex).toBe(0);
      expect([0, 1]).toContain(p.partition);
      expect(p.count).toBeGreaterThan(0);
    }
    expect(result.usage.wallSeconds).toBeGreaterThan(0);
  });

  it('at a fixed rate sends about rate × duration messages, then ends on its own', async () => {
    const topic = await newTopic();
    const actor = await ProducerActor.connect(producerPlan([topic], { ratePerSecond: 2000 }));
    const result = await actor.run(schedule({ durationMs: 500 }));
    // 2,000 msg/s for 0.5 s: intended times decide, so late sends still count. Generous bounds.
    expect(result.total).toBeGreaterThanOrEqual(800);
    expect(result.total).toBeLessThanOrEqual(1100);
    expect(result.measured).toBe(result.total);
    expect(histogramCount(result)).toBe(result.total);
    expect(actor.progress()).toEqual({ sent: result.total, done: result.total });
  });

  it('with spin pacing also keeps to the rate', async () => {
    const topic = await newTopic();
    const actor = await ProducerActor.connect(producerPlan([topic], { ratePerSecond: 1000, pacing: 'spin' }));
    const result = await actor.run(schedule({ durationMs: 200 }));
    expect(result.total).toBeGreaterThanOrEqual(150);
    expect(result.total).toBeLessThanOrEqual(260);
  });

  it('at a fixed rate holds back when too many sends await acknowledgement, losing none', async () => {
    const topic = await newTopic();
    const actor = await ProducerActor.connect(
      producerPlan([topic], { ratePerSecond: 20_000, quota: 400, maxOutstanding: 2 }),
    );
    const result = await actor.run(schedule({ durationMs: null }));
    expect(result.total).toBe(400);
    expect(result.measured).toBe(400);
    expect(histogramCount(result)).toBe(400);
  });

  it('sends exactly its quota of measured messages, warmup excluded', async () => {
    const topics = [await newTopic(), await newTopic()];
    const actor = await ProducerActor.connect(
      producerPlan(topics, { quota: 300, streams: 4, maxOutstanding: 16 }),
    );
    // The quota counts measured messages only: warmup messages go out on top of it.
    const warm = await (
      await ProducerActor.connect(producerPlan(topics, { quota: 50, ratePerSecond: 1000 }))
    ).run(schedule({ warmupMs: 100, durationMs: null }));
    expect(warm.measured).toBe(50);
    expect(warm.total).toBeGreaterThan(50);
    expect(histogramCount(warm)).toBe(50);

    const result = await actor.run(schedule({ durationMs: null }));
    expect(result.measured).toBe(300);
    expect(result.total).toBe(300);
    // Messages alternate between the two topics.
    const perTopic = [0, 1].map((t) =>
      result.partitions.filter((p) => p.topicIndex === t).reduce((n, p) => n + p.count, 0),
    );
    expect(perTopic).toEqual([150, 150]);
  });

  it('stopped during warmup still returns a result with an empty usage window', async () => {
    const topic = await newTopic();
    const actor = await ProducerActor.connect(producerPlan([topic], { ratePerSecond: 500 }));
    const running = actor.run(schedule({ warmupMs: 60_000, durationMs: 1000 }));
    await sleep(100);
    actor.stop();
    const result = await running;
    expect(result.total).toBeGreaterThan(0);
    expect(result.measured).toBe(0);
    expect(result.usage.wallSeconds).toBeGreaterThanOrEqual(0);
    expect(result.usage.wallSeconds).toBeLessThan(1);
  });

  it('fails the run when the broker rejects its sends', async () => {
    const actor = await ProducerActor.connect(producerPlan([`actors-missing-${process.pid}`], { quota: 5 }));
    await expect(actor.run(schedule({ durationMs: null }))).rejects.toMatchObject({
      codeName: 'UNKNOWN_TOPIC',
    });
  });

  it('fails to connect to a port nothing listens on, with a clear error', async () => {
    const port = await closedPort();
    const plan = { ...producerPlan(['unused']), brokers: [`127.0.0.1:${port}`] };
    const error = await ProducerActor.connect(plan).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MemoryStreamerError);
    expect((error as MemoryStreamerError).codeName).toBe('BROKER_NOT_AVAILABLE');
    expect((error as Error).message).toContain(`127.0.0.1:${port}`);
  });
});

describe('ConsumerActor', () => {
  it('receives everything a producer sent, with end-to-end latency, then drains', async () => {
    const topics = [await newTopic(2), await newTopic(2)];
    const consumer = await ConsumerActor.connect(consumerPlan(topics, 2));
    const producer = await ProducerActor.connect(producerPlan(topics, { ratePerSecond: 2000, streams: 8 }));
    const sched = schedule({ durationMs: 300 });
    const consuming = consumer.run(sched);
    const progressSeen: number[] = [];
    const watcher = setInterval(() => progressSeen.push(consumer.progress().done), 50);
    const produced = await producer.run(sched);
    consumer.drain(produced.partitions, 5000);
    const consumed = await consuming;
    clearInterval(watcher);

    expect(produced.total).toBeGreaterThan(0);
    expect(consumed.kind).toBe('consumer');
    expect(consumed.total).toBe(produced.total);
    expect(consumed.measured).toBe(produced.measured);
    expect(histogramCount(consumed)).toBe(consumed.measured);
    expect(consumed.lastAt).not.toBeNull();
    // Per partition, the consumer saw exactly what the producer had acknowledged.
    const key = (p: { topicIndex: number; partition: number }) => `${p.topicIndex}:${p.partition}`;
    const producedBy = new Map(produced.partitions.map((p) => [key(p), p.count]));
    expect(consumed.partitions).toHaveLength(4);
    for (const p of consumed.partitions) expect(p.count).toBe(producedBy.get(key(p)) ?? 0);
    // Progress only grows, and ends at the total.
    for (let i = 1; i < progressSeen.length; i++)
      expect(progressSeen[i]).toBeGreaterThanOrEqual(progressSeen[i - 1]!);
    expect(progressSeen.some((n) => n > 0)).toBe(true);
    expect(consumer.progress()).toEqual({ sent: 0, done: consumed.total });
  });

  it('gives up after the idle time when expected messages never arrive', async () => {
    const topic = await newTopic();
    const consumer = await ConsumerActor.connect(consumerPlan([topic], 1));
    const consuming = consumer.run(schedule({ durationMs: null }));
    const started = monotonicMs();
    consumer.drain([{ topicIndex: 0, partition: 0, count: 10 }], 200);
    const result = await consuming;
    expect(monotonicMs() - started).toBeGreaterThanOrEqual(150);
    expect(result.total).toBe(0);
    expect(result.partitions).toEqual([{ topicIndex: 0, partition: 0, count: 0 }]);
    expect(histogramCount(result)).toBe(0);
    expect(result.lastAt).toBeNull();
  });

  it('finishes at once when nothing is expected, and finish() is idempotent', async () => {
    const topic = await newTopic();
    const consumer = await ConsumerActor.connect(consumerPlan([topic], 1));
    const consuming = consumer.run(schedule({ durationMs: null }));
    consumer.drain([], 60_000);
    const result = await consuming;
    expect(result.total).toBe(0);
    await expect(consumer.finish()).resolves.toBeUndefined();
  });

  it('stops when told to finish (Ctrl-C) whatever is missing', async () => {
    const topic = await newTopic();
    const consumer = await ConsumerActor.connect(consumerPlan([topic], 1));
    const consuming = consumer.run(schedule({ durationMs: null }));
    await sleep(50);
    await consumer.finish();
    const result = await consuming;
    expect(result.total).toBe(0);
    expect(result.usage.eventLoopUtilization).toBeGreaterThanOrEqual(0);
  });

  it('fails to connect when an assigned topic does not exist', async () => {
    await expect(
      ConsumerActor.connect(consumerPlan([`actors-missing-${process.pid}`], 1)),
    ).rejects.toMatchObject({
      codeName: 'UNKNOWN_TOPIC',
    });
  });

  it('fails to connect to a port nothing listens on', async () => {
    const port = await closedPort();
    const plan = { ...consumerPlan(['unused'], 1), brokers: [`127.0.0.1:${port}`] };
    await expect(ConsumerActor.connect(plan)).rejects.toThrow(/no broker reachable/);
  });
});

describe('serializeError / deserializeError', () => {
  it('keeps message, code, name and retriable of a MemoryStreamerError across the thread boundary', () => {
    const original = errorOf('BROKER_NOT_AVAILABLE', 'no broker reachable (127.0.0.1:1)');
    const wire = serializeError(original);
    expect(wire).toEqual({
      message: original.message,
      code: original.code,
      codeName: 'BROKER_NOT_AVAILABLE',
      retriable: true,
    });
    // What crosses between threads is structured-cloned: plain data survives it.
    const back = deserializeError(structuredClone(wire), 'producer 0');
    expect(back).toBeInstanceOf(MemoryStreamerError);
    const typed = back as MemoryStreamerError;
    expect(typed.message).toBe(`producer 0: ${original.message}`);
    expect(typed.code).toBe(original.code);
    expect(typed.codeName).toBe(original.codeName);
    expect(typed.retriable).toBe(original.retriable);
    expect(typed.name).toBe('MemoryStreamerError');
  });

  it('turns other errors and thrown values into plain Errors with the actor named', () => {
    const plain = serializeError(new TypeError('boom'));
    expect(plain).toEqual({ message: 'boom', code: null, codeName: null, retriable: false });
    const back = deserializeError(plain, 'consumer 1');
    expect(back).not.toBeInstanceOf(MemoryStreamerError);
    expect(back.message).toBe('consumer 1: boom');
    expect(serializeError('just a string').message).toBe('just a string');
    expect(serializeError(42).message).toBe('42');
  });
});

describe('UsageWindow', () => {
  it('measures a window opened now with sane, non-negative figures', async () => {
    const window = new UsageWindow();
    window.openAt(monotonicMs());
    const until = monotonicMs() + 30;
    while (monotonicMs() < until) {
      // Busy: the event loop and the thread's CPU are in use.
    }
    await sleep(20);
    const usage = window.close();
    expect(usage.wallSeconds).toBeGreaterThanOrEqual(0.04);
    expect(usage.wallSeconds).toBeLessThan(5);
    expect(usage.eventLoopUtilization).toBeGreaterThanOrEqual(0);
    expect(usage.eventLoopUtilization).toBeLessThanOrEqual(1);
    if (process.platform === 'linux') expect(usage.cpuSeconds).not.toBeNull();
    if (usage.cpuSeconds !== null) {
      expect(usage.cpuSeconds).toBeGreaterThanOrEqual(0);
      expect(usage.cpuSeconds).toBeLessThanOrEqual(usage.wallSeconds + 0.05);
    }
  });

  it('opens a future window when its time comes, and an unopened one closes empty', async () => {
    const later = new UsageWindow();
    const asked = monotonicMs();
    later.openAt(asked + 30);
    await sleep(80);
    const opened = later.close();
    const waitedSeconds = (monotonicMs() - asked) / 1000;
    // Opened about 30 ms in (a timer may fire up to 1 ms early): the window is that much shorter.
    expect(opened.wallSeconds).toBeGreaterThan(0);
    expect(opened.wallSeconds).toBeLessThanOrEqual(waitedSeconds - 0.025);

    const never = new UsageWindow();
    never.openAt(monotonicMs() + 60_000);
    const empty = never.close();
    expect(empty.wallSeconds).toBeGreaterThanOrEqual(0);
    expect(empty.wallSeconds).toBeLessThan(0.05);
    expect(empty.cpuSeconds === null || empty.cpuSeconds >= 0).toBe(true);
  });
});
