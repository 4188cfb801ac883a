// Where a message's end-to-end time goes, stage by stage: the fixed-rate schedule of
// bench/end-to-end.ts (100-byte messages, one producer, one consumer, lingerMs 0) with every
// message stamped at each stage it passes (bench/lib/stage-probe.ts; CLOCK_MONOTONIC, common to
// the client and the broker process):
//   intended send time → send() called → batch sealed by the producer → frame handed to the
//   socket → broker 'data' event → produce handler → segment write issued → write done (seen by JS) →
//   push written → push decoded by the client → delivered by the consumer.
// Per stage: the distribution of its own time, and its mean share of the slowest 1% of messages
// (the tail). Also: how many tail messages overlap a garbage collection (client, broker) or an
// fdatasync, and how long writes take while an fdatasync of the log runs and while none does.
// Run: npx tsx bench/latency-stages.ts [--transport tcp|embedded] [--rate 10000] [--seconds 5]
//      [--durability interval|never] [--storage disk|memory] [--pacing thread|spin] [--json]
// (`--storage memory`: a memory topic, whose log is written to process memory; embedded only.
// `--inline-write-slow <ms>`: the broker's storage.inline_write_slow, the in-line write
// time past which a log goes to thread-pool writes for a while; raising it on a loaded machine
// measures the in-line path the guard would otherwise leave while the machine is busy.)
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Client } from '../src/client/client.js';
import { connect } from '../src/client/connect.js';
import { Broker } from '../src/embedded/broker.js';
import { cpuSeconds, startBrokerProcess } from './lib/broker-process.js';
import { argNumber, printResult, progress, type Row, writeResult } from './lib/report.js';
import { dump, installClientProbe, nowUs, type ProbeDump, stamp } from './lib/stage-probe.js';

const rate = argNumber('rate', 10_000);
const seconds = argNumber('seconds', 5);
const arg = (name: string, fallback: string) =>
  process.argv.includes(`--${name}`) ? process.argv[process.argv.indexOf(`--${name}`) + 1]! : fallback;
const transport = arg('transport', 'tcp') as 'tcp' | 'embedded';
const durability = arg('durability', 'interval') as 'interval' | 'never';
const pacing = arg('pacing', 'thread') as 'thread' | 'spin';
const storage = arg('storage', 'disk') as 'disk' | 'memory';
const inlineWriteSlowMs = process.argv.includes('--inline-write-slow')
  ? argNumber('inline-write-slow', 2)
  : null;
if (storage === 'memory' && transport !== 'embedded')
  throw new Error('--storage memory needs --transport embedded');
const warmup = rate;
const total = rate * (seconds + 1);

const ORDER_TCP = [
  'intended',
  'client: send called',
  'client: batch sealed',
  'client: frame to socket',
  'broker: data event',
  'broker: produce start',
  'broker: write start',
  'broker: write done (JS)',
  'broker: push written',
  'client: push decoded',
  'client: delivered',
];
const ORDER_EMBEDDED = ORDER_TCP.filter(
  (s) => !['client: frame to socket', 'broker: data event', 'client: push decoded'].includes(s),
);

/** Sends on schedule: a worker sleeps to each due time (`thread`), or this thread polls (`spin`). */
async function schedule(send: (index: number, intendedUs: number) => void): Promise<void> {
  const interval = 1e6 / rate;
  let sent = 0;
  const sendDue = (origin: number, due: number) => {
    for (; sent < due; sent++) send(sent, origin + sent * interval);
  };
  if (pacing === 'spin') {
    const origin = nowUs();
    while (sent < total) {
      sendDue(origin, Math.min(total, Math.floor((nowUs() - origin) / interval) + 1));
      await new Promise((resolve) => setImmediate(resolve));
    }
    return;
  }
  const worker = new Worker(
    `const { parentPort } = require('node:worker_threads');
     parentPort.once('message', ({ origin, interval, total }) => {
       const sleeper = new Int32Array(new SharedArrayBuffer(4));
       let posted = 0;
       while (posted < total) {
         const t = Number(process.hrtime.bigint()) / 1000;
         const due = Math.min(total, Math.floor((t - origin) / interval) + 1);
         if (due > posted) { parentPort.postMessage(due); posted = due; continue; }
         Atomics.wait(sleeper, 0, 0, (origin + posted * interval - t) / 1000);
       }
     });`,
    { eval: true },
  );
  await new Promise((resolve) => worker.once('online', resolve));
  const origin = nowUs();
  await new Promise<void>((resolve) => {
    worker.on('message', (due: number) => {
      sendDue(origin, due);
      if (due >= total) resolve();
    });
    worker.postMessage({ origin, interval, total });
  });
  await worker.terminate();
}

/** CPU seconds used during the run: this process, and the broker process over TCP. */
const cpu = { client: 0, broker: 0 };

async function run(client: Client, topic: string, brokerPid: number | null): Promise<void> {
  const consumer = client.consumer({ topics: [topic], from: 'latest' });
  await consumer.start();
  const producer = client.producer({ lingerMs: 0 });
  // The producer id first, so message i carries sequence i.
  await producer.send({ topic, value: Buffer.alloc(100) });
  const clientBefore = process.cpuUsage();
  const brokerBefore = brokerPid === null ? 0 : await cpuSeconds(brokerPid);
  const received = (async () => {
    let count = 0;
    for await (const message of consumer) {
      const index = message.value!.readUInt32LE(8) - 1;
      if (index >= 0) stamp('client: delivered', index + 1);
      if (++count === total + 1) break;
    }
  })();
  await schedule((index, intendedUs) => {
    const value = Buffer.allocUnsafe(100);
    value.writeDoubleLE(intendedUs, 0);
    // Sequence 0 was the first message above: message `index` of the schedule is sequence index+1.
    value.writeUInt32LE(index + 1, 8);
    stamp('intended', index + 1, intendedUs);
    stamp('client: send called', index + 1);
    void producer.send({ topic, value });
  });
  await received;
  const used = process.cpuUsage(clientBefore);
  cpu.client = (used.user + used.system) / 1e6;
  if (brokerPid !== null) cpu.broker = (await cpuSeconds(brokerPid)) - brokerBefore;
  await producer.close();
  await consumer.close();
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function overlaps(intervals: number[], from: number, to: number): boolean {
  for (let i = 0; i < intervals.length; i += 2)
    if (intervals[i]! < to && intervals[i + 1]! > from) return true;
  return false;
}

function analyse(
  merged: ProbeDump,
  brokerDump: ProbeDump | null,
  order: string[],
): { rows: Row[]; notes: string[] } {
  const from = warmup + 1;
  const to = total + 1;
  const stageTimes = order.map((s) => merged.stages[s] ?? []);
  const complete: number[] = [];
  for (let i = from; i < to; i++) if (stageTimes.every((t) => (t[i] ?? 0) > 0)) complete.push(i);
  const missing = order.map((s, k) => {
    let n = 0;
    for (let i = from; i < to; i++) if ((stageTimes[k]![i] ?? 0) === 0) n++;
    return n > 0 ? `${s}: ${n}` : '';
  });
  const last = stageTimes.length - 1;
  const totalOf = (i: number) => stageTimes[last]![i]! - stageTimes[0]![i]!;
  const totals = complete.map(totalOf).sort((a, b) => a - b);
  const p99 = quantile(totals, 0.99);
  const tail = complete.filter((i) => totalOf(i) >= p99);
  const rows: Row[] = [];
  for (let s = 1; s < order.length; s++) {
    const deltas = complete.map((i) => stageTimes[s]![i]! - stageTimes[s - 1]![i]!).sort((a, b) => a - b);
    const tailMean =
      tail.reduce((sum, i) => sum + stageTimes[s]![i]! - stageTimes[s - 1]![i]!, 0) / tail.length;
    rows.push({
      stage: `${order[s - 1]} → ${order[s]}`,
      'p50 µs': Math.round(quantile(deltas, 0.5)),
      'p99 µs': Math.round(quantile(deltas, 0.99)),
      'p99.9 µs': Math.round(quantile(deltas, 0.999)),
      'max µs': Math.round(deltas[deltas.length - 1] ?? Number.NaN),
      'mean in slowest 1% µs': Math.round(tailMean),
    });
  }
  rows.push({
    stage: 'end to end (intended → delivered)',
    'p50 µs': Math.round(quantile(totals, 0.5)),
    'p99 µs': Math.round(p99),
    'p99.9 µs': Math.round(quantile(totals, 0.999)),
    'max µs': Math.round(totals[totals.length - 1] ?? Number.NaN),
    'mean in slowest 1% µs': Math.round(tail.reduce((sum, i) => sum + totalOf(i), 0) / tail.length),
  });
  // The targets count from the send call (the pacer's wake-up lag is the benchmark's, not ours).
  const fromSend = complete.map((i) => stageTimes[last]![i]! - stageTimes[1]![i]!).sort((a, b) => a - b);
  const fromSendTail = fromSend.slice(Math.min(fromSend.length - 1, Math.floor(0.99 * fromSend.length)));
  rows.push({
    stage: 'end to end from the send call (send called → delivered)',
    'p50 µs': Math.round(quantile(fromSend, 0.5)),
    'p99 µs': Math.round(quantile(fromSend, 0.99)),
    'p99.9 µs': Math.round(quantile(fromSend, 0.999)),
    'max µs': Math.round(fromSend[fromSend.length - 1] ?? Number.NaN),
    'mean in slowest 1% µs': Math.round(
      fromSendTail.reduce((sum, v) => sum + v, 0) / Math.max(1, fromSendTail.length),
    ),
  });
  const life = (i: number): [number, number] => [stageTimes[0]![i]!, stageTimes[last]![i]!];
  const share = (pred: (i: number) => boolean, set: number[]) =>
    `${((100 * set.filter(pred).length) / Math.max(1, set.length)).toFixed(1)}%`;
  const clientGc = (i: number) => overlaps(merged.gcs, ...life(i));
  const brokerGc = (i: number) => brokerDump !== null && overlaps(brokerDump.gcs, ...life(i));
  const syncs = (brokerDump ?? merged).syncs;
  const synced = (i: number) => overlaps(syncs, ...life(i));
  const readBack = merged.stages['broker: read back from the log'] ?? [];
  const wasRead = (i: number) => (readBack[i] ?? 0) > 0;
  const notes = [
    `${complete.length} messages measured (of ${to - from}${missing.some((m) => m !== '') ? `; without a stamp: ${missing.filter((m) => m !== '').join(', ')}` : ''}), ${tail.length} in the slowest 1% (≥ ${Math.round(p99)} µs)`,
    `overlapping a garbage collection of the client process: slowest 1% ${share(clientGc, tail)}, all ${share(clientGc, complete)}`,
    `overlapping a garbage collection of the broker process: slowest 1% ${share(brokerGc, tail)}, all ${share(brokerGc, complete)}`,
    `pushed after a read back from the log (the subscription was catching up) instead of from the append: slowest 1% ${share(wasRead, tail)}, all ${share(wasRead, complete)}`,
    `overlapping an fdatasync of the broker: slowest 1% ${share(synced, tail)}, all ${share(synced, complete)}`,
  ];
  const inline = merged.stages['broker: written in line'] ?? [];
  notes.push(
    `written in line (a synchronous write into the page cache, no thread-pool hop): all ${share((i) => (inline[i] ?? 0) > 0, complete)}`,
  );
  const ws = merged.stages['broker: write start'];
  const wd = merged.stages['broker: write done (JS)'];
  if (ws !== undefined && wd !== undefined) {
    const during: number[] = [];
    const outside: number[] = [];
    for (const i of complete) (overlaps(syncs, ws[i]!, wd[i]!) ? during : outside).push(wd[i]! - ws[i]!);
    during.sort((a, b) => a - b);
    outside.sort((a, b) => a - b);
    notes.push(
      `write (issued → done seen by JS) while an fdatasync runs: ${during.length} writes, p50 ${Math.round(quantile(during, 0.5))} µs, p99 ${Math.round(quantile(during, 0.99))} µs; otherwise: p50 ${Math.round(quantile(outside, 0.5))} µs, p99 ${Math.round(quantile(outside, 0.99))} µs; ${syncs.length / 2} fdatasyncs, p50 ${Math.round(quantile(pairs(syncs), 0.5))} µs`,
    );
  }
  const gcTime = (g: number[]) =>
    `${pairs(g).length} pauses, ${Math.round(pairs(g).reduce((a, b) => a + b, 0) / 1000)} ms`;
  notes.push(
    `GC, whole run: client ${gcTime(merged.gcs)}${brokerDump !== null ? `, broker ${gcTime(brokerDump.gcs)}` : ''}`,
  );
  return { rows, notes };
}

function pairs(intervals: number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < intervals.length; i += 2) out.push(intervals[i + 1]! - intervals[i]!);
  return out.sort((a, b) => a - b);
}

async function main(): Promise<void> {
  const loadAtStart = loadavg()[0]!;
  await installClientProbe(transport === 'embedded');
  const topic = `stages-${Date.now()}`;
  let merged: ProbeDump;
  let brokerDump: ProbeDump | null = null;
  if (transport === 'embedded') {
    const dataDir = await mkdtemp(join(tmpdir(), 'ms-stages-'));
    try {
      const broker = await Broker.start({
        dataDir,
        ...(inlineWriteSlowMs !== null ? { storageWrites: { inlineWriteSlowMs } } : {}),
      });
      const client = broker.connect();
      await client.admin.createTopic(
        storage === 'memory' ? { name: topic, storage: 'memory' } : { name: topic, config: { durability } },
      );
      progress(`embedded, ${storage} topic, ${rate} msg/s for ${seconds + 1} s`);
      await run(client, topic, null);
      await client.close();
      await broker.stop();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
    merged = dump(0, total + 1);
  } else {
    const out = join(tmpdir(), `ms-stages-${process.pid}.json`);
    // The guard's threshold goes to the broker process as its storage.inline_write_slow.
    const configFile = join(tmpdir(), `ms-stages-${process.pid}.toml`);
    if (inlineWriteSlowMs !== null)
      await writeFile(configFile, `[storage]\ninline_write_slow = "${inlineWriteSlowMs}ms"\n`);
    const broker = await startBrokerProcess({
      ...(inlineWriteSlowMs !== null ? { configFile } : {}),
      nodeArgs: ['--import', 'tsx', '--import', './bench/lib/stage-probe.ts'],
      env: { STAGE_PROBE: 'broker', STAGE_PROBE_OUT: out, STAGE_PROBE_COUNT: String(total + 1) },
    });
    try {
      const client = await connect({ brokers: `127.0.0.1:${broker.port}` });
      await client.admin.createTopic({ name: topic, config: { durability } });
      progress(`tcp, ${rate} msg/s for ${seconds + 1} s`);
      await run(client, topic, broker.pid);
      await client.close();
      process.kill(broker.pid, 'SIGUSR2');
      for (let i = 0; i < 100; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        try {
          brokerDump = JSON.parse(await readFile(out, 'utf8')) as ProbeDump;
          break;
        } catch {
          // Not written (completely) yet.
        }
      }
    } finally {
      await broker.stop();
      await rm(out, { force: true });
      await rm(configFile, { force: true });
    }
    if (brokerDump === null) throw new Error('the broker did not write its stage stamps');
    const own = dump(0, total + 1);
    merged = { stages: { ...own.stages, ...brokerDump.stages }, gcs: own.gcs, syncs: brokerDump.syncs };
  }
  const { rows, notes } = analyse(merged, brokerDump, transport === 'tcp' ? ORDER_TCP : ORDER_EMBEDDED);
  const perMessage = (s: number) => ((s * 1e6) / total).toFixed(1);
  notes.push(
    transport === 'tcp'
      ? `CPU per message over the run (probes included): client process ${perMessage(cpu.client)} µs (producer, consumer, pacing), broker process ${perMessage(cpu.broker)} µs`
      : `CPU per message over the run (probes included): ${perMessage(cpu.client)} µs (producer, broker, consumer and pacing in one process)`,
  );
  notes.push(
    `a short run on a shared 2-core machine (1-minute load average ${loadAtStart.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end)`,
  );
  const result = {
    benchmark: `latency-stages-${transport}${storage === 'memory' ? '-memory' : ''}`,
    title: `Where the end-to-end time goes, ${transport === 'tcp' ? 'over TCP loopback' : 'embedded'}: ${rate} msg/s, 100-byte messages, ${storage === 'memory' ? 'memory topic' : `durability ${durability}`}`,
    command: `npx tsx bench/latency-stages.ts --transport ${transport} --rate ${rate} --seconds ${seconds} --durability ${durability}${storage === 'memory' ? ' --storage memory' : ''}${inlineWriteSlowMs !== null ? ` --inline-write-slow ${inlineWriteSlowMs}` : ''} --pacing ${pacing}`,
    settings: {
      rate,
      seconds,
      messageBytes: 100,
      storage,
      durability,
      pacing,
      lingerMs: 0,
      acks: 1,
      inlineWriteSlowMs: inlineWriteSlowMs ?? 'default',
    },
    rows,
    notes,
  };
  printResult(writeResult(result));
}

await main();
