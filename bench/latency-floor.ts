// Is the end-to-end latency tail ours or the machine's? The same fixed-rate schedule (100-byte
// messages, 10,000 msg/s, latency from each message's intended send time) through
//  - a bare Node TCP echo in another process: the floor for two processes on loopback,
//  - MemoryStreamer over TCP (broker in another process; producer and consumer here),
//  - MemoryStreamer embedded (everything in this process, no sockets),
// in alternating rounds so drifts of the machine hit all three alike; histograms add up the
// rounds, and each round's P99 is listed too.
// Run: npx tsx bench/latency-floor.ts [--rate 10000] [--seconds 4] [--rounds 3] [--json]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as hdr from 'hdr-histogram-js';
import { connect } from '../src/client/connect.js';
import { Broker } from '../src/embedded/broker.js';
import { startBrokerProcess } from './lib/broker-process.js';
import { brokerFixedRate, echoFixedRate } from './lib/fixed-rate.js';
import {
  argNumber,
  latencyHistogram,
  percentiles,
  printResult,
  progress,
  type Row,
  writeResult,
} from './lib/report.js';
import { connectEcho, startEchoServer } from './lib/round-trip.js';

const rate = argNumber('rate', 10_000);
const seconds = argNumber('seconds', 4);
const rounds = argNumber('rounds', 3);

const CASES = ['bare Node TCP echo', 'MemoryStreamer over TCP', 'MemoryStreamer embedded'] as const;
type Case = (typeof CASES)[number];

async function main(): Promise<void> {
  const echo = await startEchoServer();
  const broker = await startBrokerProcess();
  const dataDir = await mkdtemp(join(tmpdir(), 'ms-floor-'));
  const embedded = await Broker.start({ dataDir });
  const tcpClient = await connect({ brokers: [`127.0.0.1:${broker.port}`] });
  const embeddedClient = embedded.connect();
  const socket = await connectEcho(echo.port);
  const pooled = new Map<Case, hdr.Histogram>(CASES.map((c) => [c, latencyHistogram()]));
  const perRound = new Map<Case, number[]>(CASES.map((c) => [c, []]));
  try {
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? CASES : [...CASES].reverse();
      for (const which of order) {
        progress(`round ${round + 1}/${rounds}: ${which}`);
        const histogram = latencyHistogram();
        if (which === 'bare Node TCP echo') await echoFixedRate(socket, { rate, seconds }, histogram);
        else {
          const client = which === 'MemoryStreamer over TCP' ? tcpClient : embeddedClient;
          const topic = `floor-${round}`;
          await client.admin.createTopic({ name: topic, config: { durability: 'interval' } });
          await brokerFixedRate(client, topic, { rate, seconds }, histogram);
        }
        pooled.get(which)!.add(histogram);
        perRound.get(which)!.push(histogram.getValueAtPercentile(99));
      }
    }
  } finally {
    socket.destroy();
    await tcpClient.close();
    await embeddedClient.close();
    await embedded.stop();
    await broker.stop();
    await echo.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
  const floorP99 = pooled.get('bare Node TCP echo')!.getValueAtPercentile(99);
  const rows: Row[] = CASES.map((which) => {
    const histogram = pooled.get(which)!;
    return {
      case: which,
      messages: histogram.totalCount,
      ...percentiles(histogram),
      'p99 ÷ echo p99': Number((histogram.getValueAtPercentile(99) / floorP99).toFixed(2)),
      'p99 per round µs': perRound.get(which)!.join(', '),
    };
  });
  const result = writeResult({
    benchmark: 'latency-floor',
    title: `End-to-end latency at a fixed ${rate} msg/s against the bare echo floor (100-byte messages)`,
    command: `npx tsx bench/latency-floor.ts --rate ${rate} --seconds ${seconds} --rounds ${rounds}`,
    settings: {
      rate,
      secondsPerRound: seconds,
      rounds,
      messageBytes: 100,
      durability: 'interval',
      pacing:
        'send when due, checked every event-loop turn (setImmediate); latency from the intended send time',
    },
    rows,
    notes: [
      'The echo row is the same schedule through a Node TCP echo server in another process: what two processes on loopback cost at this rate on this machine, with no broker.',
      'Rounds alternate the order of the three cases; the histograms add up all rounds.',
    ],
  });
  printResult(result);
}

await main();
