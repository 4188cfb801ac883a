// What SCRAM authentication costs: two brokers as child processes, one with `auth.mechanisms` on
// (a user in its users file) and one open, driven alternately. (1) Connection setup: connect() to
// the first answered request, one connection after another, with SCRAM-SHA-256 and SCRAM-SHA-512
// against the open broker (its PBKDF2 of 4096 iterations runs in the client; the broker does a few
// HMACs and hashes). (2) Produce throughput of 100-byte messages on an authenticated connection
// against the open broker: after the handshake a request costs the same (one boolean checked per
// frame), so the two should not differ beyond the machine's noise. Medians of rounds, roles
// alternating so that drifts of a shared machine spread over both.
// Run: npx tsx bench/auth.ts [--connections 50] [--messages 200000] [--rounds 5] [--json]
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '../src/client/client.js';
import { type ConnectOptions, connect } from '../src/client/connect.js';
import { deriveCredential } from '../src/security/credentials.js';
import type { ScramMechanism } from '../src/security/scram.js';
import { UserStore } from '../src/security/user-store.js';
import { type BrokerProcess, cpuSeconds, startBrokerProcess } from './lib/broker-process.js';
import { argNumber, printResult, progress, type Row, rate, writeResult } from './lib/report.js';

const connections = argNumber('connections', 50);
const messages = argNumber('messages', 200_000);
const rounds = argNumber('rounds', 5);
const value = Buffer.alloc(100, 0x61);
const BATCH = 1000;
const WINDOW = 8;
const PASSWORD = 'bench-password';

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** connect() until the first request is answered, then close: milliseconds. */
async function setupTime(options: ConnectOptions): Promise<number> {
  const started = performance.now();
  const client = await connect(options);
  await client.admin.listTopics();
  const ms = performance.now() - started;
  await client.close();
  return ms;
}

async function produceRound(client: Client, broker: BrokerProcess, topic: string) {
  const producer = client.producer({ lingerMs: 0 });
  const chunk = Array.from({ length: BATCH }, () => ({ topic, value }));
  const calls = Math.ceil(messages / BATCH);
  const cpuBefore = await cpuSeconds(broker.pid);
  const started = performance.now();
  let window: Promise<unknown>[] = [];
  for (let i = 0; i < calls; i++) {
    window.push(producer.sendMany(chunk));
    if (window.length === WINDOW) {
      await Promise.all(window);
      window = [];
    }
  }
  await Promise.all(window);
  const ms = performance.now() - started;
  const cpu = (await cpuSeconds(broker.pid)) - cpuBefore;
  await producer.close();
  return { rate: rate(calls * BATCH, ms), cpuUsPerMsg: (cpu * 1e6) / (calls * BATCH) };
}

async function main(): Promise<void> {
  const cleanup: Array<() => Promise<void>> = [];
  try {
    const authDir = await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), 'ms-bench-auth-'));
    cleanup.push(() => rm(authDir, { recursive: true, force: true }));
    const users = await UserStore.open(authDir);
    await users.change({
      kind: 'add',
      name: 'bench',
      credentials: {
        'SCRAM-SHA-256': deriveCredential('SCRAM-SHA-256', PASSWORD),
        'SCRAM-SHA-512': deriveCredential('SCRAM-SHA-512', PASSWORD),
      },
    });
    progress('starting two brokers (authentication on, off)');
    const authBroker = await startBrokerProcess({
      dataDir: authDir,
      env: { MEMORYSTREAMER_AUTH_MECHANISMS: 'SCRAM-SHA-256,SCRAM-SHA-512' },
    });
    cleanup.unshift(async () => void (await authBroker.stop()));
    const openBroker = await startBrokerProcess();
    cleanup.unshift(async () => void (await openBroker.stop()));
    const sasl = (mechanism: ScramMechanism) => ({ mechanism, username: 'bench', password: PASSWORD });

    const rows: Row[] = [];
    const setups: Array<{ name: string; options: ConnectOptions }> = [
      { name: 'connection setup, open broker', options: { brokers: `127.0.0.1:${openBroker.port}` } },
      {
        name: 'connection setup, SCRAM-SHA-256',
        options: { brokers: `127.0.0.1:${authBroker.port}`, sasl: sasl('SCRAM-SHA-256') },
      },
      {
        name: 'connection setup, SCRAM-SHA-512',
        options: { brokers: `127.0.0.1:${authBroker.port}`, sasl: sasl('SCRAM-SHA-512') },
      },
    ];
    // One connection of each kind in turn, so that the machine's drifts spread over all three.
    const times = setups.map(() => [] as number[]);
    for (let i = -3; i < connections; i++) {
      if (i % 10 === 0) progress(`connection setup: ${i}/${connections} of each kind`);
      for (const [index, setup] of setups.entries()) {
        const ms = await setupTime(setup.options);
        if (i >= 0) times[index]!.push(ms); // the first three of each warm up (JIT, first connections)
      }
    }
    for (const [index, setup] of setups.entries())
      rows.push({
        measurement: setup.name,
        'p50 ms': Number(median(times[index]!).toFixed(2)),
        'p99 ms': Number(quantile(times[index]!, 0.99).toFixed(2)),
        'msg/s': null,
        'spread msg/s': null,
        'broker CPU µs/msg': null,
      });

    const sides = [
      { label: 'produce, SCRAM-SHA-256 connection', broker: authBroker, options: setups[1]!.options },
      { label: 'produce, open broker', broker: openBroker, options: setups[0]!.options },
    ];
    const results = new Map<string, Array<{ rate: number; cpuUsPerMsg: number }>>();
    const clients = await Promise.all(sides.map((side) => connect(side.options)));
    cleanup.unshift(async () => {
      for (const client of clients) await client.close();
    });
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? [0, 1] : [1, 0];
      for (const index of order) {
        const side = sides[index]!;
        const client = clients[index]!;
        const topic = `auth-bench-${round}`;
        await client.admin.createTopic({ name: topic });
        progress(`${side.label}: round ${round + 1}/${rounds}`);
        const result = await produceRound(client, side.broker, topic);
        results.set(side.label, [...(results.get(side.label) ?? []), result]);
        await client.admin.deleteTopic(topic);
      }
    }
    for (const side of sides) {
      const list = results.get(side.label)!;
      rows.push({
        measurement: side.label,
        'p50 ms': null,
        'p99 ms': null,
        'msg/s': median(list.map((r) => r.rate)),
        'spread msg/s': `${Math.min(...list.map((r) => r.rate))}..${Math.max(...list.map((r) => r.rate))}`,
        'broker CPU µs/msg': Number(median(list.map((r) => r.cpuUsPerMsg)).toFixed(3)),
      });
    }
    const result = writeResult({
      benchmark: 'auth',
      title: 'SCRAM authentication: connection setup, and produce throughput with authentication on vs off',
      command: `npx tsx bench/auth.ts --connections ${connections} --messages ${messages} --rounds ${rounds}`,
      settings: {
        transport: 'TCP loopback, broker child processes',
        scramIterations: 4096,
        connectionsPerMeasurement: connections,
        messageBytes: value.length,
        messagesPerRound: messages,
        batch: `${BATCH} messages per sendMany, ${WINDOW} in flight, lingerMs 0`,
        acks: 'default (1)',
        durability: 'interval (default)',
        rounds,
        statistic: 'median of rounds (throughput); p50/p99 of the connections (setup)',
      },
      rows,
      notes: [
        `Load average of the machine at the end of the run: ${loadavg()
          .map((l) => l.toFixed(1))
          .join(' / ')} (1 / 5 / 15 min), from other work sharing it.`,
        'Connection setup is connect() (TCP, handshake, metadata, and the SCRAM exchange when on) until the first LIST_TOPICS is answered; the client computes PBKDF2 (4096 iterations) for each connection.',
        'Both brokers run at once; produce rounds alternate which goes first, and setup measurements take one connection of each kind in turn, so drifts of the shared machine spread over all. The two brokers are separate processes: a difference between them that the rounds do not cancel shows in the spread.',
      ],
    });
    printResult(result);
  } finally {
    for (const step of cleanup) await step().catch(() => undefined);
  }
}

await main();
