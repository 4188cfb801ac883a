// What metrics cost: two brokers as child processes, one with request metrics on and one with
// them off (admin.metrics), driven alternately with the same produce workload over TCP loopback,
// 100-byte messages. Every round the two swap roles (a configuration reload by SIGHUP), so a
// difference between the processes themselves cancels out; alternating rounds spread the
// machine's drifts over both; the figures are the medians of the rounds. Metrics are recorded per request, not per message, so
// small batches are the worst case and are measured too. Broker CPU per message comes from
// /proc, which is steadier than throughput on a shared VM.
// Run: npx tsx bench/metrics-overhead.ts [--messages 300000] [--rounds 7] [--json]
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '../src/client/client.js';
import { connect } from '../src/client/connect.js';
import { BrokerMetrics } from '../src/metrics/broker-metrics.js';
import { type BrokerProcess, cpuSeconds, startBrokerProcess } from './lib/broker-process.js';
import { argNumber, printResult, progress, type Row, rate, writeResult } from './lib/report.js';

const messages = argNumber('messages', 300_000);
const rounds = argNumber('rounds', 7);
const value = Buffer.alloc(100, 0x6d);

interface Workload {
  name: string;
  /** Messages per sendMany call (each call is one produce request per partition). */
  batch: number;
  /** Calls in flight. */
  window: number;
  /** The producer's batch size: it bounds the messages per produce request. */
  batchBytes: number;
}

const WORKLOADS: Workload[] = [
  { name: 'large requests (256 KiB batches)', batch: 1000, window: 8, batchBytes: 256 * 1024 },
  { name: 'small requests (1 KiB batches)', batch: 100, window: 64, batchBytes: 1024 },
];

interface Side {
  label: 'on' | 'off';
  broker: BrokerProcess;
  client: Client;
  configFile: string;
}

/** Requests the broker has counted so far (all operations). */
async function requestsCounted(side: Side): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${side.broker.adminPort}/metrics`)).text();
  let total = 0;
  for (const match of text.matchAll(/^memorystreamer_requests_total\{[^}]*\} (\d+)/gm))
    total += Number(match[1]);
  return total;
}

/** Switches the broker's request metrics by rewriting its configuration and sending SIGHUP. */
async function setMetrics(side: Side, on: boolean): Promise<void> {
  await writeFile(side.configFile, `[admin]\nmetrics = ${on}\n`);
  side.broker.child.kill('SIGHUP');
  const deadline = Date.now() + 10_000;
  for (;;) {
    // Recording shows as a request counted for an admin call.
    const before = await requestsCounted(side);
    await side.client.admin.listTopics();
    if ((await requestsCounted(side)) > before === on) break;
    if (Date.now() > deadline)
      throw new Error(`broker ${side.broker.pid} did not switch metrics ${on ? 'on' : 'off'}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  side.label = on ? 'on' : 'off';
}

async function produceRound(
  side: Side,
  workload: Workload,
  topic: string,
): Promise<{ rate: number; cpuUsPerMsg: number }> {
  const producer = side.client.producer({ batchBytes: workload.batchBytes, lingerMs: 0 });
  const chunk = Array.from({ length: workload.batch }, () => ({ topic, value }));
  const calls = Math.ceil(messages / workload.batch);
  const cpuBefore = await cpuSeconds(side.broker.pid);
  const started = performance.now();
  let window: Promise<unknown>[] = [];
  for (let i = 0; i < calls; i++) {
    window.push(producer.sendMany(chunk));
    if (window.length === workload.window) {
      await Promise.all(window);
      window = [];
    }
  }
  await Promise.all(window);
  const ms = performance.now() - started;
  const cpu = (await cpuSeconds(side.broker.pid)) - cpuBefore;
  await producer.close();
  const sent = calls * workload.batch;
  return { rate: rate(sent, ms), cpuUsPerMsg: (cpu * 1e6) / sent };
}

/**
 * What recording one produce request costs on the request path (timer, counters, histogram), in
 * nanoseconds, measured in this process: deterministic enough to resolve what the end-to-end
 * comparison cannot on a noisy machine.
 */
function recordingCostNs(enabled: boolean): number {
  const metrics = new BrokerMetrics();
  metrics.enabled = enabled;
  const record = (n: number) => {
    for (let i = 0; i < n; i++) {
      const done = metrics.start('produce');
      metrics.recordProduce(1000, 100_000);
      done();
    }
  };
  record(100_000); // warm-up: JIT, label bindings
  const samples: number[] = [];
  for (let round = 0; round < 5; round++) {
    const started = process.hrtime.bigint();
    record(200_000);
    samples.push(Number(process.hrtime.bigint() - started) / 200_000);
  }
  return median(samples);
}

/** Produce requests and messages the broker counted, from its /metrics. */
async function produceCounts(adminPort: number): Promise<{ requests: number; messages: number }> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  // A series is absent until its first request.
  const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? 0);
  return {
    requests: value(/^memorystreamer_requests_total\{operation="produce"\} (\d+)/m),
    messages: value(/^memorystreamer_produce_messages_total (\d+)/m),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function main(): Promise<void> {
  const sides: Side[] = [];
  const cleanup: Array<() => Promise<void>> = [];
  try {
    const configDir = await mkdtemp(join(tmpdir(), 'ms-overhead-'));
    cleanup.push(() => rm(configDir, { recursive: true, force: true }));
    for (const label of ['on', 'off'] as const) {
      const configFile = join(configDir, `${label}.toml`);
      await writeFile(configFile, `[admin]\nmetrics = ${label === 'on'}\n`);
      const broker = await startBrokerProcess({ configFile });
      const client = await connect({ brokers: [`127.0.0.1:${broker.port}`] });
      sides.push({ label, broker, client, configFile });
    }
    progress('recording cost in process');
    const recordingNs = recordingCostNs(true);
    const recordingOffNs = recordingCostNs(false);
    const rows: Row[] = [];
    for (const workload of WORKLOADS) {
      const results: Record<'on' | 'off', Array<{ rate: number; cpuUsPerMsg: number }>> = { on: [], off: [] };
      const countsBefore = await Promise.all(sides.map((side) => produceCounts(side.broker.adminPort)));
      for (let round = 0; round < rounds; round++) {
        // Swap roles every round, and alternate which goes first.
        await setMetrics(sides[0]!, round % 2 === 0);
        await setMetrics(sides[1]!, round % 2 !== 0);
        const order = round % 2 === 0 ? sides : [...sides].reverse();
        for (const side of order) {
          const topic = `overhead-${workload.batch}-${round}`;
          await side.client.admin.createTopic({ name: topic });
          progress(`${workload.name}: round ${round + 1}/${rounds}, metrics ${side.label}`);
          results[side.label].push(await produceRound(side, workload, topic));
          await side.client.admin.deleteTopic(topic);
        }
      }
      // Counted only while a broker records, which is half the rounds of each: the ratio holds.
      const countsAfter = await Promise.all(sides.map((side) => produceCounts(side.broker.adminPort)));
      const delta = (key: 'messages' | 'requests') =>
        countsAfter.reduce((sum, after, i) => sum + after[key] - countsBefore[i]![key], 0);
      const messagesPerRequest = delta('messages') / delta('requests');
      const onRate = median(results.on.map((r) => r.rate));
      const offRate = median(results.off.map((r) => r.rate));
      const onCpu = median(results.on.map((r) => r.cpuUsPerMsg));
      const offCpu = median(results.off.map((r) => r.cpuUsPerMsg));
      rows.push({
        workload: workload.name,
        'metrics on msg/s': onRate,
        'metrics off msg/s': offRate,
        'throughput cost %': Number((((offRate - onRate) / offRate) * 100).toFixed(2)),
        'broker CPU on µs/msg': Number(onCpu.toFixed(3)),
        'broker CPU off µs/msg': Number(offCpu.toFixed(3)),
        'CPU cost %': Number((((onCpu - offCpu) / offCpu) * 100).toFixed(2)),
        'msgs/request': Math.round(messagesPerRequest),
        'recording ns/request': Math.round(recordingNs),
        'implied cost %': Number(
          (((recordingNs - recordingOffNs) / 1000 / (offCpu * messagesPerRequest)) * 100).toFixed(3),
        ),
        'spread on msg/s': `${Math.min(...results.on.map((r) => r.rate))}..${Math.max(...results.on.map((r) => r.rate))}`,
        'spread off msg/s': `${Math.min(...results.off.map((r) => r.rate))}..${Math.max(...results.off.map((r) => r.rate))}`,
      });
    }
    const result = writeResult({
      benchmark: 'metrics-overhead',
      title: 'Cost of request metrics: produce throughput and broker CPU with metrics on vs off',
      command: `npx tsx bench/metrics-overhead.ts --messages ${messages} --rounds ${rounds}`,
      settings: {
        transport: 'TCP loopback, broker child processes',
        messageBytes: value.length,
        messagesPerRound: messages,
        rounds,
        durability: 'interval (default)',
        statistic: 'median of rounds',
      },
      rows,
      notes: [
        'Both brokers run at once and swap roles every round (admin.metrics by SIGHUP), so per-process differences cancel; the figures are medians of the rounds.',
        'A negative cost means the difference is below what this machine can resolve (the spread columns show the run-to-run range).',
        'recording ns/request: in-process cost of timing and counting one produce request with metrics on (median of 5 × 200,000); implied cost % = (that − the cost with metrics off) ÷ (broker CPU per message with metrics off × messages per request, as the broker counted them).',
      ],
    });
    printResult(result);
  } finally {
    for (const side of sides) {
      await side.client.close();
      await side.broker.stop();
    }
    for (const clean of cleanup) await clean();
  }
}

await main();
