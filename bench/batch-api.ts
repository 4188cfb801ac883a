// The per-message and the batch APIs side by side, 100-byte messages, one partition, in one run
// with alternating rounds (the machine's load falls on every case alike):
//  - TCP, a broker in another process (`memorystreamer serve`, disk topics, durability `interval`,
//    acks 1), the client in a process of its own with no broker in it (as a client application's
//    process is: a broker in a process fixes glibc's malloc thresholds there, docs/native-memory.md): produce with one `send()` per message (not awaited; the producer batches them) and
//    with `sendMany` of --batch messages a call; replay with `for await (const message of consumer)`
//    and with `for await (const batch of consumer.batches())` reading `batch.values()`; and the bare
//    Node TCP echo of the same bytes in the same run (bench/lib/echo-server.ts), the floor;
//  - the encode floor: the same messages sealed into batches by RecordBatchBuilder, no I/O; and
//    decoding those batches as the per-message consumer does and as `batch.values()` does;
//  - embedded (broker, producer and consumer in one process), memory topics: produce, replay, and
//    produce-and-consume (both at once, timed until the consumer has every message): on a new
//    topic each round (every byte it keeps is fresh memory), and on one topic that stays past its
//    retention across the rounds (the steady state of a memory stream: its appends reuse the
//    memory of the segments retention drops), read with `values()` and with `forEachValue`.
// Run: npx tsx bench/batch-api.ts [--messages 300000] [--rounds 2] [--batch 2000] [--calls-in-flight 4]
//      [--durability interval|never] (the TCP cases' disk topics) [--json]
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '../src/client/client.js';
import { connect } from '../src/client/connect.js';
import { RecordBatchView } from '../src/client/record-batch-view.js';
import { Broker } from '../src/embedded/broker.js';
import { iterateRecords, RecordBatchBuilder } from '../src/protocol/record-batch.js';
import { cpuSeconds, startBrokerProcess } from './lib/broker-process.js';
import { argChoice, argNumber, printResult, progress, type Row, rate, writeResult } from './lib/report.js';
import { connectEcho, startEchoServer } from './lib/round-trip.js';

const messages = argNumber('messages', 300_000);
const rounds = argNumber('rounds', 2);
const perCall = argNumber('batch', 2000);
/** The TCP cases' disk topics: `interval` (the default, an fdatasync every 100 ms) or `never`. */
const tcpDurability = argChoice('durability', ['interval', 'never'] as const, 'interval');
const VALUE_BYTES = 100;
const value = Buffer.alloc(VALUE_BYTES, 0x63);
/**
 * `perCall` messages a step, this many steps in flight at once (default 4: about 0.9 MB, under
 * what one connection may hold before the broker throttles it, docs/server.md).
 */
const CALLS_IN_FLIGHT = argNumber('calls-in-flight', 4);

let topics = 0;
async function newTopic(client: Client, storage: 'disk' | 'memory'): Promise<string> {
  const name = `batch-api-${topics++}`;
  await client.admin.createTopic({
    name,
    partitions: 1,
    config: storage === 'memory' ? { retentionBytes: 1024 * 1024 * 1024 } : { durability: tcpDurability },
    ...(storage === 'memory' ? { storage } : {}),
  });
  return name;
}

/**
 * One `send()` per message (the producer batches what arrives together); the same window as
 * sendMany: after each `perCall` sends, at most CALLS_IN_FLIGHT groups unanswered.
 */
async function produceEach(client: Client, topic: string): Promise<number> {
  const producer = client.producer();
  const input = { topic, partition: 0, value };
  const started = performance.now();
  const inFlight: Promise<unknown>[] = [];
  for (let i = 0; i < messages; i++) {
    const receipt = producer.send(input);
    if ((i + 1) % perCall === 0 || i === messages - 1) {
      inFlight.push(receipt);
      if (inFlight.length >= CALLS_IN_FLIGHT) await inFlight.shift();
    }
  }
  await Promise.all(inFlight);
  const ms = performance.now() - started;
  await producer.close();
  return ms;
}

/** `sendMany` of `perCall` messages a call, CALLS_IN_FLIGHT calls at once. */
async function produceMany(client: Client, topic: string): Promise<number> {
  const producer = client.producer();
  const inputs = Array.from({ length: perCall }, () => ({ topic, partition: 0, value }));
  const started = performance.now();
  const inFlight: Promise<unknown>[] = [];
  for (let sent = 0; sent < messages; sent += perCall) {
    inFlight.push(producer.sendMany(sent + perCall <= messages ? inputs : inputs.slice(0, messages - sent)));
    if (inFlight.length >= CALLS_IN_FLIGHT) await inFlight.shift();
  }
  await Promise.all(inFlight);
  const ms = performance.now() - started;
  await producer.close();
  return ms;
}

/** Reads `messages` messages one by one from the start of the topic. */
async function replayEach(client: Client, topic: string): Promise<number> {
  const consumer = client.consumer({ topics: [topic], from: 'earliest' });
  await consumer.start();
  const started = performance.now();
  let count = 0;
  let bytes = 0;
  for await (const message of consumer) {
    bytes += message.value!.length;
    if (++count === messages) break;
  }
  const ms = performance.now() - started;
  if (bytes !== messages * VALUE_BYTES) throw new Error(`read ${bytes} bytes`);
  return ms;
}

/**
 * Reads `messages` messages batch by batch from `from`, each value through `batch.values()` (a
 * view each) or, with `inPlace`, through `batch.forEachValue` (nothing allocated per message).
 */
async function replayBatches(client: Client, topic: string, inPlace = false): Promise<number> {
  const consumer = client.consumer({ topics: [topic], from: 'earliest' });
  await consumer.start();
  return readBatches(consumer, inPlace);
}

/** Reads `messages` messages with a started batch consumer, then closes it. */
async function readBatches(consumer: ReturnType<Client['consumer']>, inPlace: boolean): Promise<number> {
  const started = performance.now();
  let count = 0;
  let bytes = 0;
  const visit = (_buffer: Buffer, start: number, end: number) => {
    bytes += end - start;
  };
  for await (const batch of consumer.batches()) {
    if (inPlace) batch.forEachValue(visit);
    else for (const v of batch.values()) bytes += v!.length;
    count += batch.count;
    if (count >= messages) break;
  }
  const ms = performance.now() - started;
  await consumer.close();
  if (bytes !== messages * VALUE_BYTES) throw new Error(`read ${bytes} bytes`);
  return ms;
}

/**
 * Produce and consume at once: from the first send to the consumer's last message. The batch
 * consumer starts at the topic's end (`latest`, resolved before the first send): on a topic used
 * before, it reads this round's messages only.
 */
async function produceAndConsume(
  client: Client,
  topic: string,
  api: 'each' | 'batch' | 'batch-in-place',
): Promise<number> {
  let consumed: Promise<number>;
  let started: number;
  if (api === 'each') {
    started = performance.now();
    consumed = replayEach(client, topic);
  } else {
    const consumer = client.consumer({ topics: [topic], from: 'latest' });
    await consumer.start();
    started = performance.now();
    consumed = readBatches(consumer, api === 'batch-in-place');
  }
  const produced = api === 'each' ? produceEach(client, topic) : produceMany(client, topic);
  await Promise.all([consumed, produced]);
  return performance.now() - started;
}

/**
 * The memory topic the steady-state cases share across rounds: 64 MiB of retention in 8 MiB
 * segments, filled past its retention before the first round counts.
 */
const STEADY_RETENTION_BYTES = 64 * 1024 * 1024;
async function steadyTopic(client: Client): Promise<string> {
  const name = `batch-api-steady-${topics++}`;
  await client.admin.createTopic({
    name,
    partitions: 1,
    storage: 'memory',
    config: { retentionBytes: STEADY_RETENTION_BYTES, segmentBytes: 8 * 1024 * 1024 },
  });
  return name;
}

/**
 * The encode floor (what bench/record-batch.ts measures): the same messages straight into sealed
 * batches of `perCall` records, no producer, no I/O.
 */
function encodeFloor(): number {
  const builder = new RecordBatchBuilder(perCall * (VALUE_BYTES + 16) + 128);
  const timestamp = Date.now();
  const started = performance.now();
  for (let i = 0; i < messages; i++) {
    builder.append({ value, timestamp });
    if (builder.count === perCall) builder.finish();
  }
  if (builder.count > 0) builder.finish();
  return performance.now() - started;
}

/** The same messages as sealed batches of `perCall` records, for the decode-only cases. */
function sealedBatches(): Buffer[] {
  const builder = new RecordBatchBuilder(perCall * (VALUE_BYTES + 16) + 128);
  const batches: Buffer[] = [];
  for (let i = 0; i < messages; i++) {
    builder.append({ value, timestamp: 1_700_000_000_000 });
    if (builder.count === perCall) batches.push(builder.finish());
  }
  if (builder.count > 0) batches.push(builder.finish());
  return batches;
}
const decodeLimits = { maxDecompressedBytes: 64 * 1024 * 1024 };

/** Decode only, as the per-message consumer does it: a record object per message. */
function decodeRecords(batches: Buffer[]): number {
  const started = performance.now();
  let bytes = 0;
  for (const batch of batches)
    for (const record of iterateRecords(batch, decodeLimits)) bytes += record.value!.length;
  if (bytes !== messages * VALUE_BYTES) throw new Error(`decoded ${bytes} bytes`);
  return performance.now() - started;
}

/** Decode only, as a batch consumer reading `batch.forEachValue` does it. */
function decodeInPlace(batches: Buffer[]): number {
  const started = performance.now();
  let bytes = 0;
  const visit = (_buffer: Buffer, start: number, end: number) => {
    bytes += end - start;
  };
  for (const batch of batches) new RecordBatchView('t', 0, batch, 0n, decodeLimits, null).forEachValue(visit);
  if (bytes !== messages * VALUE_BYTES) throw new Error(`decoded ${bytes} bytes`);
  return performance.now() - started;
}

/** Decode only, as a batch consumer reading `batch.values()` does it. */
function decodeValues(batches: Buffer[]): number {
  const started = performance.now();
  let bytes = 0;
  for (const batch of batches)
    for (const v of new RecordBatchView('t', 0, batch, 0n, decodeLimits, null).values()) bytes += v!.length;
  if (bytes !== messages * VALUE_BYTES) throw new Error(`decoded ${bytes} bytes`);
  return performance.now() - started;
}

/** The bare floor: the same bytes through a Node TCP echo in another process, 8 MB in flight at most. */
async function echo(port: number): Promise<number> {
  const socket = await connectEcho(port);
  const write = Buffer.alloc(1000 * (VALUE_BYTES + 10), 0x63);
  const total = messages * (VALUE_BYTES + 10);
  const window = 8 * 1024 * 1024;
  let received = 0;
  let wake: (() => void) | null = null;
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    wake?.();
  });
  const started = performance.now();
  let sent = 0;
  while (received < total) {
    if (sent < total && sent - received < window) {
      const n = Math.min(write.length, total - sent);
      if (!socket.write(n === write.length ? write : write.subarray(0, n)))
        await new Promise((resolve) => socket.once('drain', resolve));
      sent += n;
    } else {
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = null;
    }
  }
  const ms = performance.now() - started;
  socket.destroy();
  return ms;
}

type CaseName = string;
const results = new Map<CaseName, number[]>();
/** CPU per message of a TCP case, each round: the client process's and the server process's. */
const cpuResults = new Map<CaseName, { client: number[]; server: number[] }>();

/**
 * Runs one TCP case and records, beside its rate, the CPU time per message it took in this process
 * (the client) and in `serverPid` (the broker, or the echo server), from /proc.
 */
async function withCpu(name: CaseName, serverPid: number, run: () => Promise<number>): Promise<number> {
  const client = process.cpuUsage();
  const server = await cpuSeconds(serverPid);
  const ms = await run();
  const used = process.cpuUsage(client);
  const serverUsed = (await cpuSeconds(serverPid)) - server;
  if (!warmingUp) {
    const entry = cpuResults.get(name) ?? { client: [], server: [] };
    entry.client.push(Math.round(((used.user + used.system) * 1000) / messages));
    entry.server.push(Math.round((serverUsed * 1e9) / messages));
    cpuResults.set(name, entry);
  }
  return ms;
}
/** The first round warms the JIT and the connections up and is not counted. */
let warmingUp = true;
function record(name: CaseName, ms: number): void {
  if (warmingUp) return;
  const list = results.get(name) ?? [];
  list.push(rate(messages, ms));
  results.set(name, list);
  progress(`  ${name}: ${rate(messages, ms).toLocaleString('en-US')} msg/s`);
}

/**
 * The TCP cases, in a process with no broker of its own: a client application's process, glibc's
 * allocator as the application has it (a broker in the process fixes its thresholds,
 * docs/native-memory.md). The echo client runs here too, so both see the same process.
 */
async function runTcpPart(): Promise<void> {
  const brokerProcess = await startBrokerProcess();
  const echoServer = await startEchoServer();
  const tcp = await connect({ brokers: [`127.0.0.1:${brokerProcess.port}`] });
  try {
    for (let round = -1; round < rounds; round++) {
      warmingUp = round < 0;
      progress(warmingUp ? 'TCP: warm-up round (not counted)' : `TCP: round ${round + 1} of ${rounds}`);
      // Alternate which API goes first each round.
      const order = round % 2 === 0 ? [false, true] : [true, false];
      const echoName = 'TCP echo (floor)';
      record(echoName, await withCpu(echoName, echoServer.pid, () => echo(echoServer.port)));
      let replayTopic = '';
      const made: string[] = [];
      for (const batchApi of order) {
        const topic = await newTopic(tcp, 'disk');
        made.push(topic);
        const name = `TCP produce, ${batchApi ? 'sendMany' : 'send() each'}`;
        record(
          name,
          await withCpu(name, brokerProcess.pid, () => (batchApi ? produceMany : produceEach)(tcp, topic)),
        );
        if (batchApi) replayTopic = topic;
      }
      for (const batchApi of order) {
        const name = `TCP replay, ${batchApi ? 'batches()' : 'message each'}`;
        record(
          name,
          await withCpu(name, brokerProcess.pid, () =>
            (batchApi ? replayBatches : replayEach)(tcp, replayTopic),
          ),
        );
      }
      // A round's topics go once its cases are done: what one round wrote (and the kernel's
      // writeback of it) does not weigh on the next.
      for (const topic of made) await tcp.admin.deleteTopic(topic);
    }
  } finally {
    await tcp.close();
    await echoServer.stop();
    await brokerProcess.stop();
  }
}

/** The floors of one thread and the embedded cases, in a process with an embedded broker. */
async function runEmbeddedPart(): Promise<void> {
  const embeddedDir = await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), 'ms-batch-api-'));
  const embedded = await Broker.start({ dataDir: embeddedDir });
  const local = embedded.connect();
  const steady = await steadyTopic(local);
  try {
    for (let round = -1; round < rounds; round++) {
      warmingUp = round < 0;
      progress(
        warmingUp ? 'embedded: warm-up round (not counted)' : `embedded: round ${round + 1} of ${rounds}`,
      );
      const order = round % 2 === 0 ? [false, true] : [true, false];
      record('encode only (RecordBatchBuilder, no I/O)', encodeFloor());
      const sealed = sealedBatches();
      for (const batchApi of order)
        record(
          `decode only, ${batchApi ? 'batch.values()' : 'a record object each (per-message path)'}`,
          (batchApi ? decodeValues : decodeRecords)(sealed),
        );
      record('decode only, batch.forEachValue()', decodeInPlace(sealed));
      let replayTopic = '';
      const produced: string[] = [];
      for (const batchApi of order) {
        const topic = await newTopic(local, 'memory');
        produced.push(topic);
        record(
          `embedded produce, ${batchApi ? 'sendMany' : 'send() each'}`,
          await (batchApi ? produceMany : produceEach)(local, topic),
        );
        if (batchApi) replayTopic = topic;
      }
      for (const batchApi of order)
        record(
          `embedded replay, ${batchApi ? 'batches()' : 'message each'}`,
          await (batchApi ? replayBatches : replayEach)(local, replayTopic),
        );
      // A memory topic keeps what it was given (1 GiB of retention here): each one is deleted once
      // its cases are done, so the process does not carry gigabytes of earlier rounds.
      for (const topic of produced.splice(0)) await local.admin.deleteTopic(topic);
      for (const batchApi of order) {
        const topic = await newTopic(local, 'memory');
        record(
          `embedded produce-and-consume, new topic, ${batchApi ? 'sendMany + batches() values()' : 'send() + message each'}`,
          await produceAndConsume(local, topic, batchApi ? 'batch' : 'each'),
        );
        await local.admin.deleteTopic(topic);
      }
      if (warmingUp) {
        // Past its retention before anything counts: the warm-up round's own messages, and more.
        const fill = Math.ceil(STEADY_RETENTION_BYTES / (messages * 168)) + 1;
        for (let i = 0; i < fill; i++) await produceMany(local, steady);
      }
      for (const inPlace of round % 2 === 0 ? [false, true] : [true, false])
        record(
          `embedded produce-and-consume, a topic past its retention, sendMany + batches() ${inPlace ? 'forEachValue' : 'values()'}`,
          await produceAndConsume(local, steady, inPlace ? 'batch-in-place' : 'batch'),
        );
    }
  } finally {
    await local.close();
    await embedded.stop();
    await rm(embeddedDir, { recursive: true, force: true });
  }
}

// A child runs one part and prints its results as the last line; the parent runs the TCP part,
// then the embedded part (one after the other: they would compete for the two cores).
const partAt = process.argv.indexOf('--part');
if (partAt >= 0) {
  await (process.argv[partAt + 1] === 'tcp' ? runTcpPart() : runEmbeddedPart());
  process.stdout.write(
    `${JSON.stringify({ results: [...results.entries()], cpu: [...cpuResults.entries()] })}\n`,
  );
  process.exit(0);
}
const loadBefore = loadavg()[0]!;
for (const part of ['tcp', 'embedded']) {
  const output = execFileSync(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2), '--part', part],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 },
  );
  const printed = JSON.parse(output.trim().split('\n').pop()!) as {
    results: [CaseName, number[]][];
    cpu: [CaseName, { client: number[]; server: number[] }][];
  };
  for (const [name, values] of printed.results) results.set(name, values);
  for (const [name, cpu] of printed.cpu) cpuResults.set(name, cpu);
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : Math.round((sorted[middle - 1]! + sorted[middle]!) / 2);
};
const echoMedian = median(results.get('TCP echo (floor)')!);
// One thread that produces and consumes does both the encoding and the decoding: its ceiling, with
// no broker at all, is the two floors of each round taken one after the other.
const encoded = results.get('encode only (RecordBatchBuilder, no I/O)')!;
const decoded = results.get('decode only, batch.values()')!;
const decodedInPlace = results.get('decode only, batch.forEachValue()')!;
results.set(
  'encode + decode (values) in one thread, computed from the rows above',
  encoded.map((e, i) => Math.round(1 / (1 / e + 1 / decoded[i]!))),
);
results.set(
  'encode + decode (forEachValue) in one thread, computed from the rows above',
  encoded.map((e, i) => Math.round(1 / (1 / e + 1 / decodedInPlace[i]!))),
);
const rows: Row[] = [...results.entries()].map(([name, values]) => ({
  case: name,
  'msg/s (median)': median(values),
  'msg/s (each round)': values.map((v) => v.toLocaleString('en-US')).join(' / '),
  '× echo': name.startsWith('TCP') ? Number((median(values) / echoMedian).toFixed(2)) : null,
  'client CPU ns/msg': cpuResults.has(name) ? median(cpuResults.get(name)!.client) : null,
  'server CPU ns/msg': cpuResults.has(name) ? median(cpuResults.get(name)!.server) : null,
}));
printResult(
  writeResult({
    benchmark: 'batch-api',
    title: 'Per-message and batch APIs side by side, 100-byte messages, one partition (alternating rounds)',
    command: `npx tsx bench/batch-api.ts --messages ${messages} --rounds ${rounds}${perCall !== 2000 ? ` --batch ${perCall}` : ''}${CALLS_IN_FLIGHT !== 4 ? ` --calls-in-flight ${CALLS_IN_FLIGHT}` : ''}${tcpDurability !== 'interval' ? ` --durability ${tcpDurability}` : ''}`,
    settings: {
      messages,
      rounds,
      valueBytes: VALUE_BYTES,
      sendManyMessagesPerCall: perCall,
      sendManyCallsInFlight: CALLS_IN_FLIGHT,
      tcp: `broker in another process, disk topic, durability ${tcpDurability}, acks 1; the client and the echo client in a process with no broker (glibc malloc defaults)`,
      embedded:
        'memory topics, acks 1, in a process with an embedded broker (malloc thresholds fixed, docs/native-memory.md); the past-retention topic: 64 MiB retention, 8 MiB segments',
      loadAverageBefore: Number(loadBefore.toFixed(2)),
      loadAverageAfter: Number(loadavg()[0]!.toFixed(2)),
    },
    rows,
    notes: [
      'targets (issue 15): TCP produce and replay with the batch APIs ≥ 3M msg/s and ≥ 0.5 × the echo of the same run; embedded produce-and-consume with the batch APIs ≥ 5M msg/s',
      'the echo moves the same bytes (110 per message) through a Node TCP echo server in another process, nothing else',
      'CPU ns/msg (TCP cases, median of the rounds): user + system time of the client process and of the server process (the broker, or the echo server) during the case, over its messages; /proc counts in 10-ms ticks',
      'encode only: the same messages appended to a RecordBatchBuilder and sealed per --batch records (the producer floor, bench/record-batch.ts)',
    ],
  }),
);
