// One measurement of bench/ab/run.ts in a fresh process, against the src/ tree in `dir` (a commit
// exported by run.ts): prints one JSON line. Workloads, 100-byte messages, durability `interval`:
//   embedded-produce  sendMany of 1,000, 8 calls in flight, best of two 1M-message runs
//   tcp-produce       the same over TCP loopback (broker child process from that tree), then a
//                     replay of everything by one consumer
//   tcp-fixed / embedded-fixed  10,000 msg/s for 4 s after 1 s of warm-up, paced by a sleeping
//                     worker thread: P50/P99 from the intended send time, CPU µs per message
//   alloc-fixed       bytes the client process allocates per message at 10,000 msg/s over TCP
//                     (V8's sampling heap profiler, every 4 KiB, garbage included)
//   embedded-burst    a new producer's 100,000 `send()` calls made in one loop before any is
//                     answered (its producer id is not known yet), then all awaited: msg/s, best
//                     of three, each on a new producer
//   embedded-batch    produce-and-consume in process on a memory topic past its retention (64 MiB):
//                     sendMany of 2,000, 4 calls in flight, read by `batches()` + `values()`; msg/s
//                     from the first send to the last message read, and CPU ns per message, best
//                     of three 1M-message runs
//   embedded-produce-profile  one embedded sendMany run of 1M messages under the CPU profiler:
//                     the share of busy CPU time in Buffer copies (`_copyActual`, `copy`), in
//                     record encoding (producer `enqueue`, `writeRecord`, `writeField`, varints,
//                     `recordBodySize`) and in the garbage collector
//   always-ack        over TCP, one producer (`lingerMs` 0) sending at 2,000 msg/s for 3 s to a
//                     topic with durability `always` (group commit: every send waits for the
//                     fdatasync its batch shares); ack latency from the intended send time, P50/P99,
//                     the first 0.5 s excluded
//   frame-decode      the tree's FrameDecoder over 150,000 prepared PRODUCE frames (100-byte payload,
//                     payload CRC-32C) in 64 KiB chunks as from a socket: frames/s, best of 15 runs
//                     (8 with --quick) after two warm-up runs (bench/frame-decode.ts is the full
//                     benchmark beside a bare loop)
//   gate              the set bench/gate.ts compares, in one process and one broker: frame-decode,
//                     tcp-fixed (e2e P50/P99), always-ack, tcp-produce (produce + replay), with a
//                     `sync` before the broker starts;
//                     `--quick` as the third argument shortens each part (about half)
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

interface ClientLike {
  admin: { createTopic(topic: { name: string; config?: object }): Promise<unknown> };
  producer(options: object): {
    send(input: object): Promise<unknown>;
    sendMany(inputs: object[]): Promise<unknown>;
    close(): Promise<void>;
  };
  consumer(options: object): AsyncIterable<{ value: Buffer | null }> & {
    start(): Promise<void>;
    close(): Promise<void>;
  };
  close(): Promise<void>;
}

const [dir, test] = process.argv.slice(2) as [string, string];
const quick = process.argv.includes('--quick');
const value = Buffer.alloc(100, 0x63);
const dataDirs: string[] = [];
const dataDir = async () => {
  const made = await mkdtemp(join(tmpdir(), 'ms-ab-'));
  dataDirs.push(made);
  return made;
};

async function cpuSecondsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string } }>;
  samples: number[];
  timeDeltas: number[];
}

const ENCODING = new Set(['enqueue', 'writeRecord', 'writeField', 'writeVarint', 'varint', 'recordBodySize']);

/** Shares (%) of busy (non-idle) CPU time by self time of named functions. */
function shares(profile: CpuProfile): Record<string, number> {
  const names = new Map(profile.nodes.map((node) => [node.id, node.callFrame.functionName]));
  let busy = 0;
  let copy = 0;
  let encoding = 0;
  let gc = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const name = names.get(profile.samples[i]!) ?? '';
    const us = profile.timeDeltas[i] ?? 0;
    if (name === '(idle)') continue;
    busy += us;
    if (name === '_copyActual' || name === 'copy') copy += us;
    if (ENCODING.has(name)) encoding += us;
    if (name === '(garbage collector)') gc += us;
  }
  const share = (us: number) => Number(((100 * us) / busy).toFixed(1));
  return { 'Buffer copy %': share(copy), 'record encoding %': share(encoding), 'GC %': share(gc) };
}

async function produceMany(client: ClientLike, topic: string, messages: number): Promise<number> {
  const producer = client.producer({ batchBytes: 256 * 1024 });
  const chunk = Array.from({ length: 1000 }, () => ({ topic, value }));
  const started = performance.now();
  let window: Promise<unknown>[] = [];
  for (let i = 0; i < messages / 1000; i++) {
    window.push(producer.sendMany(chunk));
    if (window.length === 8) {
      await Promise.all(window);
      window = [];
    }
  }
  await Promise.all(window);
  const rate = Math.round(messages / ((performance.now() - started) / 1000));
  await producer.close();
  return rate;
}

interface BatchConsumerLike {
  start(): Promise<void>;
  close(): Promise<void>;
  batches(): AsyncIterable<{ count: number; values(): Iterable<Buffer | null> }>;
}

/**
 * Produce and consume at once on `topic`: the consumer starts at the end, then `messages` go out in
 * sendMany calls of 2,000, 4 in flight; msg/s until the consumer read the last, CPU ns per message.
 */
async function produceAndConsumeBatches(
  client: ClientLike,
  topic: string,
  messages: number,
): Promise<{ rate: number; cpuNs: number }> {
  const consumer = client.consumer({ topics: [topic], from: 'latest' }) as unknown as BatchConsumerLike;
  await consumer.start();
  const producer = client.producer({});
  const chunk = Array.from({ length: 2000 }, () => ({ topic, partition: 0, value }));
  const cpu = process.cpuUsage();
  const started = performance.now();
  const consumed = (async () => {
    let count = 0;
    let bytes = 0;
    for await (const batch of consumer.batches()) {
      for (const v of batch.values()) bytes += v!.length;
      count += batch.count;
      if (count >= messages) break;
    }
    if (bytes !== messages * value.length) throw new Error(`read ${bytes} bytes`);
  })();
  const window: Promise<unknown>[] = [];
  for (let sent = 0; sent < messages; sent += 2000) {
    window.push(producer.sendMany(chunk));
    if (window.length >= 4) await window.shift();
  }
  await Promise.all(window);
  await consumed;
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  await producer.close();
  await consumer.close();
  return {
    rate: Math.round(messages / seconds),
    cpuNs: Math.round(((used.user + used.system) * 1000) / messages),
  };
}

/** A new producer's `messages` sends in one synchronous loop, then all awaited: msg/s. */
async function produceBurst(client: ClientLike, topic: string, messages: number): Promise<number> {
  const producer = client.producer({});
  const input = { topic, value };
  const started = performance.now();
  const receipts = new Array<Promise<unknown>>(messages);
  for (let i = 0; i < messages; i++) receipts[i] = producer.send(input);
  await Promise.all(receipts);
  const rate = Math.round(messages / ((performance.now() - started) / 1000));
  await producer.close();
  return rate;
}

/**
 * A worker thread that sleeps to each due time (Atomics.wait) and posts how many messages are due,
 * so the event loop under test stays idle between sends (bench/lib/fixed-rate.ts does the same).
 */
async function startPacer(): Promise<Worker> {
  const ticker = new Worker(
    `const { parentPort } = require('node:worker_threads');
     parentPort.once('message', ({ origin, interval, total }) => {
       const sleeper = new Int32Array(new SharedArrayBuffer(4));
       let posted = 0;
       while (posted < total) {
         const t = Number(process.hrtime.bigint()) / 1e6;
         const due = Math.min(total, Math.floor((t - origin) / interval) + 1);
         if (due > posted) { parentPort.postMessage(due); posted = due; continue; }
         Atomics.wait(sleeper, 0, 0, origin + posted * interval - t);
       }
     });`,
    { eval: true },
  );
  await new Promise((resolve) => ticker.once('online', resolve));
  return ticker;
}

/** Calls `send(intended time, index)` for `total` messages at `rate` per second, paced by `ticker`. */
async function pace(
  ticker: Worker,
  rate: number,
  total: number,
  send: (intended: number, index: number) => void,
): Promise<void> {
  const origin = performance.now();
  const offset = Number(process.hrtime.bigint()) / 1e6 - origin;
  let sent = 0;
  await new Promise<void>((resolve) => {
    ticker.on('message', (due: number) => {
      for (; sent < due; sent++) send(origin + sent * (1000 / rate), sent);
      if (due >= total) resolve();
    });
    ticker.postMessage({ origin: origin + offset, interval: 1000 / rate, total });
  });
}

const percentile = (sorted: readonly number[], q: number) =>
  Math.round(sorted[Math.floor(sorted.length * q)]! * 1000);

/** Ack latency with durability `always` at a modest fixed rate: P50/P99 µs from the intended send time. */
async function alwaysAck(client: ClientLike): Promise<Record<string, number>> {
  const rate = 2_000;
  const total = rate * (quick ? 2 : 3);
  const warmUp = rate / 2;
  await client.admin.createTopic({ name: 'always', config: { durability: 'always' } });
  const producer = client.producer({ lingerMs: 0 });
  const ticker = await startPacer();
  const latencies: number[] = [];
  const acks: Promise<unknown>[] = [];
  await pace(ticker, rate, total, (intended, index) => {
    acks.push(
      producer.send({ topic: 'always', value }).then(() => {
        if (index >= warmUp) latencies.push(performance.now() - intended);
      }),
    );
  });
  await Promise.all(acks);
  await ticker.terminate();
  await producer.close();
  latencies.sort((a, b) => a - b);
  return {
    'always ack p50 µs': percentile(latencies, 0.5),
    'always ack p99 µs': percentile(latencies, 0.99),
  };
}

interface DecodedFrame {
  header: { opcode: number };
  payload: Buffer;
}
interface FrameDecoderLike {
  push(chunk: Buffer): void;
  next(): DecodedFrame | null;
}

/** The tree's frame decoder over prepared PRODUCE frames: frames/s, best of 15 runs after a warm-up. */
async function frameDecode(): Promise<Record<string, number>> {
  const { FrameDecoder } = (await import(join(dir, 'src/protocol/frame-decoder.ts'))) as {
    FrameDecoder: new (limits: object) => FrameDecoderLike;
  };
  const { encodeFrame } = (await import(join(dir, 'src/protocol/frame-header.ts'))) as {
    encodeFrame(header: { opcode: number; correlationId: number }, payload: Buffer): Buffer;
  };
  const { Opcode } = (await import(join(dir, 'src/protocol/opcodes.ts'))) as { Opcode: { PRODUCE: number } };
  const frames = 150_000;
  const frame = encodeFrame({ opcode: Opcode.PRODUCE, correlationId: 1 }, Buffer.alloc(100, 7));
  const stream = Buffer.concat(Array.from({ length: frames }, () => frame));
  const chunks: Buffer[] = [];
  for (let at = 0; at < stream.length; at += 64 * 1024) chunks.push(stream.subarray(at, at + 64 * 1024));
  const run = (): number => {
    const decoder = new FrameDecoder({ maxPayloadBytes: 1 << 20, maxControlPayloadBytes: 1 << 16 });
    let count = 0;
    const started = performance.now();
    for (const chunk of chunks) {
      decoder.push(chunk);
      for (let f = decoder.next(); f !== null; f = decoder.next()) {
        if (f.header.opcode !== Opcode.PRODUCE || f.payload.length !== 100) throw new Error('bad frame');
        count++;
      }
    }
    if (count !== frames) throw new Error(`decoded ${count} of ${frames} frames`);
    return Math.round(count / ((performance.now() - started) / 1000));
  };
  run();
  run();
  // Best of many short runs: on a shared machine the fastest run is the one least interrupted.
  return { 'frame decode frames/s': Math.max(...Array.from({ length: quick ? 8 : 15 }, run)) };
}

async function produceAndReplay(client: ClientLike): Promise<Record<string, number>> {
  const messages = quick ? 500_000 : 1_000_000;
  const warmUp = quick ? 100_000 : 200_000;
  await client.admin.createTopic({ name: 'bench', config: { durability: 'interval' } });
  await produceMany(client, 'bench', warmUp);
  const produce = await produceMany(client, 'bench', messages);
  const consumer = client.consumer({ topics: ['bench'], from: 'earliest', creditBytes: 8 << 20 });
  const started = performance.now();
  let count = 0;
  for await (const _ of consumer) if (++count === warmUp + messages) break;
  const replay = Math.round(count / ((performance.now() - started) / 1000));
  await consumer.close();
  return { 'produce msg/s': produce, 'replay msg/s': replay };
}

async function fixedRate(client: ClientLike, brokerPid: number | null, profile: boolean): Promise<object> {
  const rate = 10_000;
  const total = rate * (quick ? 3 : 5);
  await client.admin.createTopic({ name: 'fixed', config: { durability: 'interval' } });
  const consumer = client.consumer({ topics: ['fixed'], from: 'latest' });
  await consumer.start();
  const producer = client.producer({ lingerMs: 0 });
  const latencies: number[] = [];
  let count = 0;
  const received = (async () => {
    for await (const message of consumer) {
      if (count >= rate) latencies.push(performance.now() - message.value!.readDoubleLE(0));
      if (++count === total) break;
    }
  })();
  const ticker = await startPacer();
  const session = profile ? new Session() : null;
  if (session !== null) {
    session.connect();
    await session.post('HeapProfiler.enable');
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: 4096,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    } as never);
  }
  const cpuBefore = process.cpuUsage();
  const brokerBefore = brokerPid === null ? 0 : await cpuSecondsOf(brokerPid);
  await pace(ticker, rate, total, (intended) => {
    const payload = Buffer.allocUnsafe(100);
    payload.writeDoubleLE(intended, 0);
    void producer.send({ topic: 'fixed', value: payload });
  });
  await received;
  await ticker.terminate();
  const cpu = process.cpuUsage(cpuBefore);
  const brokerCpu = brokerPid === null ? 0 : (await cpuSecondsOf(brokerPid)) - brokerBefore;
  let allocated: number | null = null;
  if (session !== null) {
    const { profile: heap } = (await session.post('HeapProfiler.stopSampling')) as unknown as {
      profile: { head: { selfSize: number; children: unknown[] } };
    };
    const sum = (node: { selfSize: number; children: unknown[] }): number =>
      node.selfSize + node.children.reduce<number>((s, c) => s + sum(c as typeof node), 0);
    allocated = Math.round(sum(heap.head) / total);
    session.disconnect();
  }
  latencies.sort((a, b) => a - b);
  await producer.close();
  await consumer.close();
  return {
    'p50 µs': percentile(latencies, 0.5),
    'p99 µs': percentile(latencies, 0.99),
    'client CPU µs/msg': Number(((cpu.user + cpu.system) / total).toFixed(1)),
    ...(brokerPid === null ? {} : { 'broker CPU µs/msg': Number(((brokerCpu * 1e6) / total).toFixed(1)) }),
    ...(allocated === null ? {} : { 'client bytes allocated/msg': allocated }),
  };
}

async function main(): Promise<object> {
  if (test === 'frame-decode') return frameDecode();
  if (test.startsWith('embedded')) {
    const { Broker } = await import(join(dir, 'src/embedded/broker.ts'));
    const broker = await Broker.start({ dataDir: await dataDir() });
    const client = broker.connect() as ClientLike;
    let result: object;
    if (test === 'embedded-fixed') result = await fixedRate(client, null, false);
    else if (test === 'embedded-batch') {
      await client.admin.createTopic({
        name: 'steady',
        storage: 'memory',
        config: { retentionBytes: 64 * 1024 * 1024, segmentBytes: 8 * 1024 * 1024 },
      } as { name: string; config: object });
      await produceAndConsumeBatches(client, 'steady', 600_000);
      const runs = [];
      for (let i = 0; i < 3; i++) runs.push(await produceAndConsumeBatches(client, 'steady', 1_000_000));
      result = {
        'produce-and-consume msg/s': Math.max(...runs.map((r) => r.rate)),
        'CPU ns/msg': Math.min(...runs.map((r) => r.cpuNs)),
      };
    } else if (test === 'embedded-burst') {
      await client.admin.createTopic({ name: 'bench', config: { durability: 'interval' } });
      const rates: number[] = [];
      for (let i = 0; i < 3; i++) rates.push(await produceBurst(client, 'bench', 100_000));
      result = { 'burst msg/s': Math.max(...rates) };
    } else if (test === 'embedded-produce-profile') {
      await client.admin.createTopic({ name: 'bench', config: { durability: 'interval' } });
      await produceMany(client, 'bench', 300_000);
      const session = new Session();
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
      const rate = await produceMany(client, 'bench', 1_000_000);
      const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: CpuProfile };
      session.disconnect();
      result = { 'produce msg/s (profiled)': rate, ...shares(profile) };
    } else {
      await client.admin.createTopic({ name: 'bench', config: { durability: 'interval' } });
      await produceMany(client, 'bench', 300_000);
      const rates = [
        await produceMany(client, 'bench', 1_000_000),
        await produceMany(client, 'bench', 1_000_000),
      ];
      result = { 'produce msg/s': Math.max(...rates) };
    }
    await client.close();
    await broker.stop();
    return result;
  }
  const decoded = test === 'gate' ? await frameDecode() : null;
  if ((test === 'gate' || test === 'always-ack') && process.platform !== 'win32') execFileSync('sync');
  const { connect } = await import(join(dir, 'src/client/connect.ts'));
  const brokerDir = await dataDir();
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(dir, 'src/cli/main.ts'),
      'serve',
      '--port',
      '0',
      '--admin-port',
      '0',
      '--data-dir',
      brokerDir,
      '--json',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, MEMORYSTREAMER_LOG_LEVEL: 'warn' } },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      if (buffered.includes('\n')) resolve((JSON.parse(buffered.split('\n')[0]!) as { port: number }).port);
    });
    child.once('exit', (code) => reject(new Error(`broker exited with ${code}`)));
  });
  try {
    const client = (await connect({ brokers: `127.0.0.1:${port}` })) as ClientLike;
    let result: object;
    if (test === 'tcp-produce') result = await produceAndReplay(client);
    else if (test === 'always-ack') result = await alwaysAck(client);
    else if (test === 'gate') {
      // The decoder ran before the broker started (no other work in the process); then the
      // fixed-rate latency on a fresh broker, `always`, and last the throughput runs, each on its
      // own topic. `always` waits for fdatasyncs, so it runs before the throughput runs leave
      // hundreds of MB for the kernel to write back, and after a `sync` (main) has flushed what
      // earlier processes (the other side's measurement, the tests before the gate) left: an
      // fdatasync that queues behind someone else's writeback measures the disk's backlog, not us.
      const fixed = (await fixedRate(client, null, false)) as Record<string, number>;
      const always = await alwaysAck(client);
      result = {
        ...decoded!,
        'e2e p50 µs': fixed['p50 µs']!,
        'e2e p99 µs': fixed['p99 µs']!,
        ...always,
        ...(await produceAndReplay(client)),
      };
    } else result = await fixedRate(client, child.pid!, test === 'alloc-fixed');
    await client.close();
    return result;
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

try {
  process.stdout.write(`${JSON.stringify(await main())}\n`);
} finally {
  for (const made of dataDirs) await rm(made, { recursive: true, force: true });
}
