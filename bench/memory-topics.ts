// Memory topics against disk topics, embedded (producer, broker and consumer in this process),
// 100-byte messages, one producer and one consumer, one partition each, side by side in one run:
//  - end-to-end latency at fixed rates (default 10,000 and 100,000 msg/s): from the send() call to
//    the consumer's receipt (the pacer's own wake-up lag left out), and from the intended send time
//    (no coordinated omission), for a memory topic and a disk topic with durability `interval`;
//    the cases alternate per round so that the machine's load falls on both alike;
//  - the floors under those figures, on the same pacer and in the same rounds: the broker's own part
//    without producer, transport or consumer (the messages due together sealed into a batch and
//    handed to the partition's produce, timed until the partition pushes them to a subscription),
//    for each topic, and the encoding of a batch of one alone (the least any in-process path does);
//  - a loop that sends from `for await` (one send per iteration, not awaited), a plain loop, and a
//    loop that awaits each send, on the memory topic: msg/s and the produce requests the broker
//    took (how well sends coalesce).
// Run: npx tsx bench/memory-topics.ts [--seconds 3] [--rates 10000,100000] [--rounds 1]
//      [--loop-messages 200000] [--pacing thread|spin] [--inline-write-slow <ms>]
//      [--memory-retention-bytes <n>] [--json]
// (`--inline-write-slow`: the broker's storage.inline_write_slow, past which a log leaves in-line
// writes for a while; raising it on a loaded machine measures the in-line path itself.
// `--memory-retention-bytes`: the memory topic's retention, default the memory topics' default of
// 64 MiB; a few MiB make the run reach the steady state in which retention drops a segment at
// every roll, as a memory topic under lasting load does.)
// Besides latency each case reports the process's page faults per message: memory fresh from the
// operating system is mapped on first touch, and on a virtual machine that is a cost of its own.
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '../src/client/client.js';
import { Broker } from '../src/embedded/broker.js';
import {
  brokerFixedRate,
  encodeFixedRate,
  type FixedRate,
  type Pacing,
  partitionFixedRate,
} from './lib/fixed-rate.js';
import {
  argNumber,
  argNumbers,
  latencyHistogram,
  printResult,
  progress,
  type Row,
  rate,
  writeResult,
} from './lib/report.js';

const seconds = argNumber('seconds', 3);
const rounds = argNumber('rounds', 1);
const loopMessages = argNumber('loop-messages', 200_000);
const rates = argNumbers('rates', [10_000, 100_000]);
const pacing: Pacing = process.argv.includes('--pacing')
  ? (process.argv[process.argv.indexOf('--pacing') + 1] as Pacing)
  : 'thread';
const value = Buffer.alloc(100, 0x63);
const inlineWriteSlowMs = process.argv.includes('--inline-write-slow')
  ? argNumber('inline-write-slow', 2)
  : null;
const memoryRetentionBytes = process.argv.includes('--memory-retention-bytes')
  ? argNumber('memory-retention-bytes', 64 * 1024 * 1024)
  : null;

const TARGET_P99_US = { memory: 10, 'disk (interval)': 50 } as const;
type Storage = keyof typeof TARGET_P99_US;
const TOPIC_OF: Record<Storage, string> = { memory: 'ticks-memory', 'disk (interval)': 'ticks-disk' };
/** The floors' own topics, so that their messages never reach the consumers of the client cases. */
const FLOOR_TOPIC_OF: Record<Storage, string> = { memory: 'floor-memory', 'disk (interval)': 'floor-disk' };

/** What a case measures: the whole path through the client, or one of the floors under it. */
type Case =
  | { name: Storage; storage: Storage; path: 'client' }
  | { name: string; storage: Storage; path: 'broker alone' }
  | { name: string; path: 'encode alone' };
const CASES: readonly Case[] = [
  { name: 'memory', storage: 'memory', path: 'client' },
  { name: 'disk (interval)', storage: 'disk (interval)', path: 'client' },
  { name: 'floor: memory, broker alone', storage: 'memory', path: 'broker alone' },
  { name: 'floor: disk (interval), broker alone', storage: 'disk (interval)', path: 'broker alone' },
  { name: 'floor: encode a batch of one', path: 'encode alone' },
];

/** Produce requests the broker answered so far (from its metrics). */
async function produceRequests(broker: Broker): Promise<number> {
  const text = await broker.core.metrics.text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('memorystreamer_requests_total{') && line.includes('operation="produce"'))
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/**
 * One fixed-rate run. Besides the latencies: how busy the event loop was (near 100% it cannot keep
 * up, and messages queue behind each other), the process's CPU per message (the pacer's thread
 * included), and how many messages each produce request carried.
 */
async function latencyCase(broker: Broker, client: Client, measured: Case, messagesPerSecond: number) {
  const intended = latencyHistogram();
  const fromSend = latencyHistogram();
  const requestsBefore = await produceRequests(broker);
  const loopBefore = performance.eventLoopUtilization();
  const cpuBefore = process.cpuUsage();
  // Page faults are counted after the warm-up second: the pacer thread's start and the first
  // compilations fault in memory of their own, once per case.
  let faultsBefore = process.resourceUsage().minorPageFault;
  const onWarmedUp = () => {
    faultsBefore = process.resourceUsage().minorPageFault;
  };
  const schedule: FixedRate = { rate: messagesPerSecond, seconds, pacing, onWarmedUp };
  if (measured.path === 'client')
    await brokerFixedRate(client, TOPIC_OF[measured.storage], schedule, intended, fromSend);
  else if (measured.path === 'broker alone')
    await partitionFixedRate(
      broker.core.partition(FLOOR_TOPIC_OF[measured.storage], 0),
      schedule,
      intended,
      fromSend,
    );
  else await encodeFixedRate(schedule, intended, fromSend);
  const cpu = process.cpuUsage(cpuBefore);
  const faults = process.resourceUsage().minorPageFault - faultsBefore;
  const loop = performance.eventLoopUtilization(loopBefore);
  const requests = (await produceRequests(broker)) - requestsBefore;
  const messages = messagesPerSecond * (seconds + 1);
  return {
    intended,
    fromSend,
    busy: loop.utilization,
    cpuUsPerMessage: (cpu.user + cpu.system) / messages,
    faultsPerMessage: faults / (messagesPerSecond * seconds),
    messagesPerRequest: messages / Math.max(1, requests),
  };
}

/** Sends `count` messages from a `for await` loop over an async source, one send per iteration. */
async function forAwaitLoop(client: Client, topic: string, count: number): Promise<number> {
  const producer = client.producer();
  async function* source() {
    for (let i = 0; i < count; i++) yield i;
  }
  const started = performance.now();
  const receipts: Promise<unknown>[] = [];
  for await (const _ of source()) receipts.push(producer.send({ topic, value }));
  await Promise.all(receipts);
  const ms = performance.now() - started;
  await producer.close();
  return rate(count, ms);
}

/** Sends `count` messages one at a time, each awaited before the next (every message alone). */
async function awaitedLoop(client: Client, topic: string, count: number): Promise<number> {
  const producer = client.producer();
  const started = performance.now();
  for (let i = 0; i < count; i++) await producer.send({ topic, value });
  const ms = performance.now() - started;
  await producer.close();
  return rate(count, ms);
}

/** Sends `count` messages from a plain loop (every send in one turn), then awaits them. */
async function plainLoop(client: Client, topic: string, count: number): Promise<number> {
  const producer = client.producer();
  const started = performance.now();
  const receipts: Promise<unknown>[] = [];
  for (let i = 0; i < count; i++) receipts.push(producer.send({ topic, value }));
  await Promise.all(receipts);
  const ms = performance.now() - started;
  await producer.close();
  return rate(count, ms);
}

const loadAtStart = loadavg()[0]!;
const dataDir = await mkdtemp(join(tmpdir(), 'ms-bench-memory-'));
const latencyRows: Row[] = [];
const loopRows: Row[] = [];
try {
  const broker = await Broker.start({
    dataDir,
    ...(inlineWriteSlowMs !== null ? { storageWrites: { inlineWriteSlowMs } } : {}),
  });
  const client = broker.connect();
  // The client cases' topics, and the floors' own of the same kinds.
  for (const topics of [TOPIC_OF, FLOOR_TOPIC_OF]) {
    await client.admin.createTopic({
      name: topics.memory,
      storage: 'memory',
      ...(memoryRetentionBytes !== null ? { config: { retentionBytes: memoryRetentionBytes } } : {}),
    });
    await client.admin.createTopic({ name: topics['disk (interval)'], config: { durability: 'interval' } });
  }
  const merged = new Map<string, Awaited<ReturnType<typeof latencyCase>>>();
  for (let round = 0; round < rounds; round++) {
    for (const messagesPerSecond of rates) {
      // Alternate which case goes first, so neither always runs on the warmer (or busier) machine.
      const order = round % 2 === 0 ? CASES : [...CASES].reverse();
      for (const one of order) {
        progress(`round ${round + 1}/${rounds}: ${one.name} at ${messagesPerSecond} msg/s for ${seconds} s`);
        const measured = await latencyCase(broker, client, one, messagesPerSecond);
        const key = `${one.name}@${messagesPerSecond}`;
        const into = merged.get(key);
        if (into === undefined) merged.set(key, measured);
        else {
          // Histograms add up; the busy share, CPU and batching are averaged over the rounds.
          into.intended.add(measured.intended);
          into.fromSend.add(measured.fromSend);
          into.busy = (into.busy * round + measured.busy) / (round + 1);
          into.cpuUsPerMessage = (into.cpuUsPerMessage * round + measured.cpuUsPerMessage) / (round + 1);
          into.faultsPerMessage = (into.faultsPerMessage * round + measured.faultsPerMessage) / (round + 1);
          into.messagesPerRequest =
            (into.messagesPerRequest * round + measured.messagesPerRequest) / (round + 1);
        }
      }
    }
  }
  for (const messagesPerSecond of rates) {
    for (const one of CASES) {
      const { intended, fromSend, busy, cpuUsPerMessage, faultsPerMessage, messagesPerRequest } = merged.get(
        `${one.name}@${messagesPerSecond}`,
      )!;
      const p99 = fromSend.getValueAtPercentile(99);
      const target = one.path === 'client' ? TARGET_P99_US[one.storage] : null;
      latencyRows.push({
        topic: one.name,
        'msg/s': messagesPerSecond,
        'p50 µs': fromSend.getValueAtPercentile(50),
        'p99 µs': p99,
        'p99.9 µs': fromSend.getValueAtPercentile(99.9),
        'max µs': fromSend.maxValue,
        'p99 µs (from intended)': intended.getValueAtPercentile(99),
        'event loop busy %': Math.round(busy * 100),
        'CPU µs/msg': Number(cpuUsPerMessage.toFixed(1)),
        'page faults/msg': Number(faultsPerMessage.toFixed(4)),
        'msgs/request': one.path === 'client' ? Number(messagesPerRequest.toFixed(1)) : '–',
        'target p99 µs': target ?? '–',
        met: target === null ? '–' : p99 < target ? 'yes' : 'no',
      });
    }
  }
  for (const [name, send] of [
    ['for await, one send per iteration', forAwaitLoop],
    ['plain loop, all sends in one turn', plainLoop],
    ['await each send', awaitedLoop],
  ] as const) {
    // Awaited sends go one per request: a tenth as many keeps the run short.
    const count = send === awaitedLoop ? Math.ceil(loopMessages / 10) : loopMessages;
    progress(`${name}: ${count} messages`);
    const before = await produceRequests(broker);
    const msgPerSecond = await send(client, TOPIC_OF.memory, count);
    const requests = (await produceRequests(broker)) - before;
    loopRows.push({
      loop: name,
      messages: count,
      'msg/s': msgPerSecond,
      'produce requests': requests,
      'messages per request': Math.round(count / Math.max(1, requests)),
    });
  }
  await client.close();
  await broker.stop();
} finally {
  await rm(dataDir, { recursive: true, force: true });
}
if (process.stderr.isTTY) process.stderr.write('\n');

const command = `npx tsx bench/memory-topics.ts --seconds ${seconds} --rates ${rates.join(',')} --rounds ${rounds} --loop-messages ${loopMessages}${inlineWriteSlowMs !== null ? ` --inline-write-slow ${inlineWriteSlowMs}` : ''}`;
const settings = {
  mode: 'embedded (producer, broker and consumer in one process)',
  messageBytes: 100,
  producers: 1,
  consumers: 1,
  partitions: 1,
  acks: 1,
  linger: '0',
  memory:
    memoryRetentionBytes === null
      ? 'storage memory (retentionBytes 64 MiB, segmentBytes 8 MiB, no fsync)'
      : `storage memory (retentionBytes ${memoryRetentionBytes}, segmentBytes an eighth of it, no fsync)`,
  disk: 'durability interval (fdatasync every 100 ms)',
  seconds,
  rounds,
  pacing,
  inlineWriteSlowMs: inlineWriteSlowMs ?? 'default',
};
printResult(
  writeResult({
    benchmark: 'memory-topics',
    title: 'Memory topic and disk topic side by side, embedded: send() → consumer receipt, 100-byte messages',
    command,
    settings,
    rows: latencyRows,
    notes: [
      'floor rows: "broker alone" seals the messages due together into a batch (as the producer does with lingerMs 0) and hands it straight to the partition (validation, producer and stream bookkeeping, the append and its write, publication) and times it until the partition pushes it to a subscription, with no producer, transport or consumer; "encode a batch of one" times the sealing of the message into a record batch alone. Both run on the same pacer in the same rounds as the client cases. What the client adds is the difference; at 100,000 msg/s the P99s are set by how long the one thread takes to work off a stall (a scavenge, a page fault, a descheduling), and either row may come out higher',
      'targets (issue 15): P99 < 10 µs for a memory topic, < 50 µs for a disk topic with durability interval, at 10,000 and 100,000 msg/s',
      "event loop busy % = the event-loop utilization over the case (near 100%: the one thread that runs producer, broker and consumer cannot keep up and messages queue); CPU µs/msg = the process's CPU time (all threads, the pacer's included) per message; msgs/request = messages per produce request; page faults/msg = the process's minor page faults per measured message, after the warm-up second (memory mapped on first touch; about 10 µs each on a virtual machine, bench/page-faults.ts)",
      'latency counts from the send() call (the pacer hands each message over when due); the "from intended" column counts from the intended send time instead (no coordinated omission, includes the pacer’s wake-up lag)',
      `a short run on a shared 2-core machine loaded by other work (1-minute load average ${loadAtStart.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end): tails vary from run to run`,
    ],
  }),
);
printResult(
  writeResult({
    benchmark: 'producer-flush',
    title: 'Send loops on a memory topic, embedded: msg/s and how sends coalesce into produce requests',
    command,
    settings: { mode: settings.mode, messageBytes: 100, partitions: 1, acks: 1, linger: '0' },
    rows: loopRows,
    notes: ['a short run on a shared 2-core machine loaded by other work'],
  }),
);
