// End-to-end figures of the broker, embedded and over TCP loopback, 100-byte messages, one producer
// and one consumer, topic durability `interval`:
//  - produce throughput (max rate), replay throughput (read everything back),
//  - end-to-end latency at a fixed rate (send → consumer receipt), measured from each message's
//    intended send time, so a stall delays every later message's latency (no coordinated omission).
// The TCP broker runs as a child process; producer and consumer share this process.
// Pacing of the fixed-rate run (bench/lib/fixed-rate.ts): `thread` (default) wakes the event loop
// from a sleeping worker at each due time; `spin` polls every event-loop turn (one core busy).
// Run: npx tsx bench/end-to-end.ts [--messages N] [--rate 10000] [--seconds 5] [--pacing thread|spin] [--json]
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '../src/client/client.js';
import { connect } from '../src/client/connect.js';
import { Broker } from '../src/embedded/broker.js';
import { type BrokerProcess, cpuSeconds, startBrokerProcess } from './lib/broker-process.js';
import { brokerFixedRate, type Pacing } from './lib/fixed-rate.js';
import {
  argNumber,
  describeMachine,
  latencyHistogram,
  percentiles,
  printResult,
  progress,
  type Row,
  rate,
  writeResult,
} from './lib/report.js';

const messages = argNumber('messages', 1_000_000);
const fixedRate = argNumber('rate', 10_000);
const seconds = argNumber('seconds', 5);
const pacing: Pacing = process.argv.includes('--pacing')
  ? (process.argv[process.argv.indexOf('--pacing') + 1] as Pacing)
  : 'thread';
const value = Buffer.alloc(100, 0x63);

/** Max-rate produce with `sendMany` (1,000 messages per call, 8 calls in flight). */
async function produceManyThroughput(client: Client, topic: string): Promise<number> {
  const producer = client.producer({ batchBytes: 256 * 1024 });
  const chunk = Array.from({ length: 1000 }, () => ({ topic, value }));
  const calls = Math.ceil(messages / chunk.length);
  const started = performance.now();
  let window: Promise<unknown>[] = [];
  for (let i = 0; i < calls; i++) {
    window.push(producer.sendMany(chunk));
    if (window.length === 8) {
      await Promise.all(window);
      window = [];
    }
  }
  await Promise.all(window);
  const ms = performance.now() - started;
  await producer.close();
  return rate(calls * chunk.length, ms);
}

/** Max-rate produce with one `send` (one promise) per message, 4,096 sends outstanding. */
async function produceThroughput(client: Client, topic: string): Promise<number> {
  const producer = client.producer({ batchBytes: 256 * 1024 });
  const started = performance.now();
  let window: Promise<unknown>[] = [];
  for (let i = 0; i < messages; i++) {
    window.push(producer.send({ topic, value }));
    if (window.length === 4096) {
      await Promise.all(window);
      window = [];
    }
  }
  await Promise.all(window);
  const ms = performance.now() - started;
  await producer.close();
  return rate(messages, ms);
}

async function replayThroughput(client: Client, topic: string): Promise<number> {
  const consumer = client.consumer({ topics: [topic], from: 'earliest', creditBytes: 8 * 1024 * 1024 });
  const started = performance.now();
  let count = 0;
  for await (const message of consumer) {
    if (message.value !== null) count++;
    if (count === messages) break;
  }
  const ms = performance.now() - started;
  await consumer.close();
  return rate(count, ms);
}

async function fixedRateLatency(client: Client, topic: string): Promise<Row> {
  const histogram = latencyHistogram();
  const fromSend = latencyHistogram();
  await brokerFixedRate(client, topic, { rate: fixedRate, seconds, pacing }, histogram, fromSend);
  return {
    'rate msg/s': fixedRate,
    messages: fixedRate * seconds,
    ...percentiles(histogram),
    'from send call: p50 / p99 µs': `${fromSend.getValueAtPercentile(50)} / ${fromSend.getValueAtPercentile(99)}`,
  };
}

async function measure(
  label: string,
  client: Client,
  broker: BrokerProcess | null,
): Promise<{ throughput: Row; latency: Row }> {
  await client.admin.createTopic({ name: 'bench', partitions: 1, config: { durability: 'interval' } });
  await client.admin.createTopic({ name: 'bench-single', partitions: 1, config: { durability: 'interval' } });
  await client.admin.createTopic({
    name: 'latency',
    partitions: 1,
    config: { durability: (process.env.LAT_DURABILITY ?? 'interval') as 'interval' },
  });
  // Latency first, on a quiet heap; then the throughput runs.
  progress(`${label}: latency at ${fixedRate} msg/s`);
  const latency = await fixedRateLatency(client, 'latency');
  const cpuBefore = broker === null ? 0 : await cpuSeconds(broker.pid);
  const wallBefore = performance.now();
  progress(`${label}: produce`);
  const produceMany = await produceManyThroughput(client, 'bench');
  const produce = await produceThroughput(client, 'bench-single');
  progress(`${label}: replay`);
  const replay = await replayThroughput(client, 'bench');
  const brokerCpu =
    broker === null
      ? null
      : Number(
          (((await cpuSeconds(broker.pid)) - cpuBefore) / ((performance.now() - wallBefore) / 1000)).toFixed(
            2,
          ),
        );
  return {
    throughput: {
      transport: label,
      'produce msg/s (sendMany)': produceMany,
      'produce msg/s (send)': produce,
      'replay msg/s': replay,
      'broker CPU (cores)': brokerCpu,
    },
    latency: { transport: label, ...latency },
  };
}

const throughputRows: Row[] = [];
const latencyRows: Row[] = [];
const only = process.argv.includes('--transport')
  ? process.argv[process.argv.indexOf('--transport') + 1]
  : null;

if (only === null) {
  // Each transport runs in a fresh process of its own, so one's garbage does not pause the other.
  for (const transport of ['embedded', 'tcp']) {
    const args = process.argv.slice(2).filter((a) => a !== '--json');
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'bench/end-to-end.ts', ...args, '--transport', transport, '--json'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
        maxBuffer: 1 << 24,
      },
    );
    if (child.status !== 0) throw new Error(`${transport} run failed`);
    const parts = child.stdout
      .toString()
      .split('\n{')
      .map((p, i) => (i === 0 ? p : `{${p}`));
    const [throughput, latency] = parts
      .filter((p) => p.trim().startsWith('{'))
      .map((p) => JSON.parse(p) as { rows: Row[] });
    throughputRows.push(...throughput!.rows);
    latencyRows.push(...latency!.rows);
  }
} else if (only === 'embedded') {
  const dataDir = await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), 'ms-bench-embedded-'));
  try {
    const broker = await Broker.start({ dataDir });
    const client = broker.connect();
    const embedded = await measure('embedded', client, null);
    throughputRows.push(embedded.throughput);
    latencyRows.push(embedded.latency);
    await client.close();
    await broker.stop();
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
} else {
  const brokerProcess = await startBrokerProcess();
  try {
    const client = await connect({ brokers: `127.0.0.1:${brokerProcess.port}` });
    const tcp = await measure('tcp loopback', client, brokerProcess);
    throughputRows.push(tcp.throughput);
    latencyRows.push(tcp.latency);
    await client.close();
  } finally {
    await brokerProcess.stop();
  }
}

const settings = {
  messages,
  messageBytes: 100,
  producers: 1,
  consumers: 1,
  partitions: 1,
  durability: 'interval (fdatasync every 100 ms)',
  acks: 1,
  batchBytes: 262144,
  linger: '0 (batches form per event-loop turn)',
};
const emit = (result: Parameters<typeof writeResult>[0]) =>
  only === null
    ? writeResult(result)
    : { ...result, date: new Date().toISOString(), machine: describeMachine() };
printResult(
  emit({
    benchmark: 'end-to-end-throughput',
    title: 'Produce and replay throughput, 100-byte messages, one producer, one consumer',
    command: 'npx tsx bench/end-to-end.ts',
    settings,
    rows: throughputRows,
    notes: ['targets: TCP ≥ 2M msg/s produce and replay; embedded ≥ 5M msg/s produce'],
  }),
);
printResult(
  emit({
    benchmark: 'end-to-end-latency',
    title: `End-to-end latency (send → consumer receipt) at a fixed ${fixedRate} msg/s, 100-byte messages`,
    command: 'npx tsx bench/end-to-end.ts',
    settings: { ...settings, rate: fixedRate, seconds, pacing },
    rows: latencyRows,
    notes: [
      'targets: TCP P99 < 1 ms; embedded P99 < 10 µs',
      'latency counts from the intended send time (no coordinated omission); the last column counts from the moment the pacer handed the message to send(), without its own wake-up lag',
      pacing === 'thread'
        ? 'pacing: a worker thread sleeps to each due time and wakes the event loop (idle in between, like a service answering requests); --pacing spin polls every event-loop turn instead and keeps a core busy'
        : 'pacing: spin (polls every event-loop turn, one core busy)',
    ],
  }),
);
