// What TLS costs: the same broker (a child process, `serve`) with a plain listener and with a TLS
// one ([tls] cert_file/key_file, an ECDSA P-256 certificate; the client checks it against its CA),
// measured in one run, back to back, with 100-byte messages, one producer and one consumer:
//  - produce throughput (sendMany, 1,000 messages per call, 8 calls in flight, 256 KiB batches),
//  - replay throughput (one consumer reads everything back, 8 MiB of credit),
//  - end-to-end latency at a fixed rate (send → consumer receipt, from each message's intended send
//    time: no coordinated omission).
// The TLS row names the protocol and cipher the connection negotiated, and its ratio to plaintext.
// Rounds (--rounds) alternate the order (plain, TLS; then TLS, plain; …) and keep the median.
// Run: npx tsx bench/tls.ts [--messages 300000] [--rate 5000] [--seconds 3] [--rounds 1] [--json]

import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import type { Client } from '../src/client/client.js';
import { type ClientTlsOptions, connect } from '../src/client/connect.js';
import { type BrokerProcess, cpuSeconds, startBrokerProcess } from './lib/broker-process.js';
import { makeBenchCertificates } from './lib/certs.js';
import { brokerFixedRate } from './lib/fixed-rate.js';
import {
  argNumber,
  latencyHistogram,
  printResult,
  progress,
  type Row,
  rate,
  writeResult,
} from './lib/report.js';

const messages = argNumber('messages', 300_000);
const fixedRate = argNumber('rate', 5000);
const seconds = argNumber('seconds', 3);
const rounds = argNumber('rounds', 1);
const value = Buffer.alloc(100, 0x63);

async function produceThroughput(client: Client, topic: string): Promise<number> {
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

async function replayThroughput(client: Client, topic: string): Promise<number> {
  const consumer = client.consumer({ topics: [topic], from: 'earliest', creditBytes: 8 * 1024 * 1024 });
  const total = Math.ceil(messages / 1000) * 1000;
  const started = performance.now();
  let count = 0;
  for await (const message of consumer) {
    if (message.value !== null) count++;
    if (count === total) break;
  }
  const ms = performance.now() - started;
  await consumer.close();
  return rate(count, ms);
}

/** The protocol and cipher a TLS connection to the broker negotiates (what the client gets). */
function negotiated(port: number, tls: ClientTlsOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: tls.ca }, () => {
      const text = `${socket.getProtocol()} ${socket.getCipher().standardName}`;
      socket.destroy();
      resolve(text);
    });
    socket.once('error', reject);
  });
}

interface Measured {
  produce: number;
  replay: number;
  p50: number;
  p99: number;
  brokerCpu: number;
  /** Broker CPU time per message over the produce and the replay (each message written and read once). */
  cpuPerMessageUs: number;
  protocol: string;
}

async function measure(
  label: string,
  broker: BrokerProcess,
  tls: ClientTlsOptions | undefined,
): Promise<Measured> {
  const client = await connect({
    brokers: `127.0.0.1:${broker.port}`,
    ...(tls !== undefined ? { tls } : {}),
  });
  try {
    for (const name of ['bench', 'latency'])
      await client.admin.createTopic({ name, partitions: 1, config: { durability: 'interval' } });
    progress(`${label}: latency at ${fixedRate} msg/s for ${seconds} s`);
    const histogram = latencyHistogram();
    await brokerFixedRate(client, 'latency', { rate: fixedRate, seconds, pacing: 'thread' }, histogram);
    const cpuBefore = await cpuSeconds(broker.pid);
    const wallBefore = performance.now();
    progress(`${label}: produce ${messages} messages`);
    const produce = await produceThroughput(client, 'bench');
    progress(`${label}: replay`);
    const replay = await replayThroughput(client, 'bench');
    const cpuUsed = (await cpuSeconds(broker.pid)) - cpuBefore;
    const brokerCpu = cpuUsed / ((performance.now() - wallBefore) / 1000);
    return {
      produce,
      replay,
      p50: histogram.getValueAtPercentile(50),
      p99: histogram.getValueAtPercentile(99),
      brokerCpu: Number(brokerCpu.toFixed(2)),
      cpuPerMessageUs: Number(((cpuUsed * 1e6) / (Math.ceil(messages / 1000) * 1000)).toFixed(2)),
      protocol: tls === undefined ? 'plain TCP' : await negotiated(broker.port, tls),
    };
  } finally {
    await client.close();
  }
}

/** The median without rounding to an integer (for small figures such as µs per message). */
function medianOf(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? sorted[middle]!
    : Number(((sorted[middle - 1]! + sorted[middle]!) / 2).toFixed(2));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : Math.round((sorted[middle - 1]! + sorted[middle]!) / 2);
}

const loadAtStart = loadavg()[0]!;
const certDir = await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), 'ms-bench-certs-'));
const runs: Record<'plaintext' | 'tls', Measured[]> = { plaintext: [], tls: [] };
try {
  const certs = makeBenchCertificates(certDir);
  const clientTls: ClientTlsOptions = { ca: readFileSync(certs.caFile) };
  for (let round = 0; round < rounds; round++) {
    const order: Array<'plaintext' | 'tls'> = round % 2 === 0 ? ['plaintext', 'tls'] : ['tls', 'plaintext'];
    for (const mode of order) {
      const broker = await startBrokerProcess(
        mode === 'tls'
          ? {
              env: {
                MEMORYSTREAMER_TLS_CERT_FILE: certs.certFile,
                MEMORYSTREAMER_TLS_KEY_FILE: certs.keyFile,
              },
            }
          : {},
      );
      try {
        runs[mode].push(
          await measure(
            `round ${round + 1}/${rounds}, ${mode}`,
            broker,
            mode === 'tls' ? clientTls : undefined,
          ),
        );
      } finally {
        await broker.stop();
      }
    }
  }
} finally {
  await rm(certDir, { recursive: true, force: true });
}

const summary = (mode: 'plaintext' | 'tls') => ({
  produce: median(runs[mode].map((r) => r.produce)),
  replay: median(runs[mode].map((r) => r.replay)),
  p50: median(runs[mode].map((r) => r.p50)),
  p99: median(runs[mode].map((r) => r.p99)),
  brokerCpu: medianOf(runs[mode].map((r) => r.brokerCpu)),
  cpuPerMessageUs: medianOf(runs[mode].map((r) => r.cpuPerMessageUs)),
  protocol: runs[mode][0]!.protocol,
});
const plain = summary('plaintext');
const secure = summary('tls');
const ratio = (a: number, b: number) => Number((a / b).toFixed(2));
const perRound = (field: 'produce' | 'replay') =>
  runs.tls.map((r, i) => ratio(r[field], runs.plaintext[i]![field])).join(', ');
const rows: Row[] = [
  { transport: 'plaintext', ...rowOf(plain) },
  { transport: 'tls', ...rowOf(secure) },
  {
    transport: 'tls ÷ plaintext',
    protocol: '',
    'produce msg/s': ratio(secure.produce, plain.produce),
    'replay msg/s': ratio(secure.replay, plain.replay),
    'e2e p50 µs': ratio(secure.p50, plain.p50),
    'e2e p99 µs': ratio(secure.p99, plain.p99),
    'broker CPU (cores)': ratio(secure.brokerCpu, plain.brokerCpu),
    'broker CPU µs/msg': ratio(secure.cpuPerMessageUs, plain.cpuPerMessageUs),
  },
];

function rowOf(m: ReturnType<typeof summary>): Row {
  return {
    protocol: m.protocol,
    'produce msg/s': m.produce,
    'replay msg/s': m.replay,
    'e2e p50 µs': m.p50,
    'e2e p99 µs': m.p99,
    'broker CPU (cores)': m.brokerCpu,
    'broker CPU µs/msg': m.cpuPerMessageUs,
  };
}

const command = `npx tsx bench/tls.ts --messages ${messages} --rate ${fixedRate} --seconds ${seconds} --rounds ${rounds}`;
printResult(
  writeResult({
    benchmark: 'tls',
    title: 'TLS against plaintext: produce and replay throughput, end-to-end latency, 100-byte messages',
    command,
    settings: {
      messages,
      messageBytes: 100,
      producers: 1,
      consumers: 1,
      partitions: 1,
      batching: 'sendMany of 1,000 messages, 8 calls in flight, 256 KiB batches',
      acks: 1,
      durability: 'interval (fdatasync every 100 ms)',
      latencyRate: fixedRate,
      latencySeconds: seconds,
      rounds,
      certificate: 'ECDSA P-256, checked by the client against its CA',
    },
    rows,
    notes: [
      'target: TLS at least 0.7× plaintext throughput (produce and replay)',
      'both brokers run as child processes on loopback, one after the other in the same run; with --rounds the order alternates and each figure is the median',
      'latency counts from the intended send time of each message (no coordinated omission)',
      `tls ÷ plaintext per round: produce ${perRound('produce')}; replay ${perRound('replay')}`,
      "broker CPU µs/msg: CPU time of the broker process over the produce and the replay, per message (each written once and read once): what TLS adds to the broker's own work, apart from the client's",
      `load average (1 min) of the machine: ${loadAtStart.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end, on ${cpus().length} cores (other work shares the machine: figures vary from run to run)`,
    ],
  }),
);
