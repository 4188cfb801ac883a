// What TLS costs: the same broker (a child process, `serve`) with a plain listener, with a TLS
// one ([tls] cert_file/key_file, an ECDSA P-256 certificate; the client checks it against its CA),
// and with TLS and SCRAM-SHA-256 authentication (a user added to the data directory's users file
// before the broker starts; the client authenticates each connection), measured in one run, back
// to back, with 100-byte messages, one producer and one consumer:
//  - produce throughput (sendMany, 1,000 messages per call, 8 calls in flight, 256 KiB batches),
//  - replay throughput (one consumer reads everything back, 8 MiB of credit),
//  - end-to-end latency at a fixed rate (send → consumer receipt, from each message's intended send
//    time: no coordinated omission).
// The TLS rows name the protocol and cipher the connection negotiated, and their ratios to plaintext.
// Rounds (--rounds) rotate the order (plain, TLS, TLS+SCRAM; then TLS, TLS+SCRAM, plain; …) and
// keep the median.
// Run: npx tsx bench/tls.ts [--messages 300000] [--rate 5000] [--seconds 3] [--rounds 1] [--json]

import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import type { Client } from '../src/client/client.js';
import { type ClientTlsOptions, connect } from '../src/client/connect.js';
import type { SaslOptions } from '../src/client/sasl.js';
import { deriveCredential } from '../src/security/credentials.js';
import { UserStore } from '../src/security/user-store.js';
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
const MODES = ['plaintext', 'tls', 'tls+scram'] as const;
type Mode = (typeof MODES)[number];
const SCRAM_USER = 'bench';
const SCRAM_PASSWORD = 'bench-password';

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
  sasl: SaslOptions | undefined,
): Promise<Measured> {
  const client = await connect({
    brokers: `127.0.0.1:${broker.port}`,
    ...(tls !== undefined ? { tls } : {}),
    ...(sasl !== undefined ? { sasl } : {}),
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
      protocol:
        (tls === undefined ? 'plain TCP' : await negotiated(broker.port, tls)) +
        (sasl !== undefined ? ` + ${sasl.mechanism}` : ''),
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
const runs: Record<Mode, Measured[]> = { plaintext: [], tls: [], 'tls+scram': [] };
try {
  const certs = makeBenchCertificates(certDir);
  const clientTls: ClientTlsOptions = { ca: readFileSync(certs.caFile) };
  const tlsEnv = { MEMORYSTREAMER_TLS_CERT_FILE: certs.certFile, MEMORYSTREAMER_TLS_KEY_FILE: certs.keyFile };
  const sasl: SaslOptions = { mechanism: 'SCRAM-SHA-256', username: SCRAM_USER, password: SCRAM_PASSWORD };
  for (let round = 0; round < rounds; round++) {
    const order = MODES.map((_, i) => MODES[(i + round) % MODES.length]!);
    for (const mode of order) {
      let dataDir: string | undefined;
      if (mode === 'tls+scram') {
        // The user exists before the broker starts (offline, as `memorystreamer user add` does).
        dataDir = await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), 'ms-bench-scram-'));
        const users = await UserStore.open(dataDir);
        await users.change({
          kind: 'add',
          name: SCRAM_USER,
          credentials: { 'SCRAM-SHA-256': deriveCredential('SCRAM-SHA-256', SCRAM_PASSWORD) },
        });
      }
      const broker = await startBrokerProcess({
        ...(dataDir !== undefined ? { dataDir } : {}),
        env:
          mode === 'plaintext'
            ? {}
            : mode === 'tls'
              ? tlsEnv
              : { ...tlsEnv, MEMORYSTREAMER_AUTH_MECHANISMS: 'SCRAM-SHA-256' },
      });
      try {
        runs[mode].push(
          await measure(
            `round ${round + 1}/${rounds}, ${mode}`,
            broker,
            mode === 'plaintext' ? undefined : clientTls,
            mode === 'tls+scram' ? sasl : undefined,
          ),
        );
      } finally {
        await broker.stop();
        if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
      }
    }
  }
} finally {
  await rm(certDir, { recursive: true, force: true });
}

const summary = (mode: Mode) => ({
  produce: median(runs[mode].map((r) => r.produce)),
  replay: median(runs[mode].map((r) => r.replay)),
  p50: median(runs[mode].map((r) => r.p50)),
  p99: median(runs[mode].map((r) => r.p99)),
  brokerCpu: medianOf(runs[mode].map((r) => r.brokerCpu)),
  cpuPerMessageUs: medianOf(runs[mode].map((r) => r.cpuPerMessageUs)),
  protocol: runs[mode][0]!.protocol,
});
const plain = summary('plaintext');
const ratio = (a: number, b: number) => Number((a / b).toFixed(2));
const perRound = (mode: Mode, field: 'produce' | 'replay') =>
  runs[mode].map((r, i) => ratio(r[field], runs.plaintext[i]![field])).join(', ');
const rows: Row[] = [
  ...MODES.map((mode) => ({ transport: mode, ...rowOf(summary(mode)) })),
  ...(['tls', 'tls+scram'] as const).map((mode) => {
    const secure = summary(mode);
    return {
      transport: `${mode} ÷ plaintext`,
      protocol: '',
      'produce msg/s': ratio(secure.produce, plain.produce),
      'replay msg/s': ratio(secure.replay, plain.replay),
      'e2e p50 µs': ratio(secure.p50, plain.p50),
      'e2e p99 µs': ratio(secure.p99, plain.p99),
      'broker CPU (cores)': ratio(secure.brokerCpu, plain.brokerCpu),
      'broker CPU µs/msg': ratio(secure.cpuPerMessageUs, plain.cpuPerMessageUs),
    };
  }),
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
    title:
      'TLS and TLS + SCRAM against plaintext: produce and replay throughput, end-to-end latency, 100-byte messages',
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
      authentication:
        'tls+scram: SCRAM-SHA-256 (4,096 iterations), one user made offline before the broker starts',
    },
    rows,
    notes: [
      'target: TLS at least 0.7× plaintext throughput (produce and replay)',
      'the three brokers run as child processes on loopback, one after the other in the same run; with --rounds the order rotates and each figure is the median',
      'latency counts from the intended send time of each message (no coordinated omission)',
      `tls ÷ plaintext per round: produce ${perRound('tls', 'produce')}; replay ${perRound('tls', 'replay')}`,
      `tls+scram ÷ plaintext per round: produce ${perRound('tls+scram', 'produce')}; replay ${perRound('tls+scram', 'replay')}`,
      "broker CPU µs/msg: CPU time of the broker process over the produce and the replay, per message (each written once and read once): what TLS adds to the broker's own work, apart from the client's",
      `load average (1 min) of the machine: ${loadAtStart.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end, on ${cpus().length} cores (other work shares the machine: figures vary from run to run)`,
    ],
  }),
);
