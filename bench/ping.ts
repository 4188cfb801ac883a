// Round trip of one request at a time over loopback: our PING against the broker (a child process)
// side by side with a bare Node TCP echo of a 40-byte message (the size of a PING frame) in another
// child process. Both servers stay up and the two are measured in alternating rounds, so drifts of
// the machine (frequency, neighbours) hit both alike; the histograms add up all rounds.
// Run: npx tsx bench/ping.ts [--count 10000] [--rounds 6] [--json]
import type { Client } from '../src/client/client.js';
import { connect } from '../src/client/connect.js';
import { startBrokerProcess } from './lib/broker-process.js';
import {
  argNumber,
  latencyHistogram,
  percentiles,
  printResult,
  progress,
  writeResult,
} from './lib/report.js';
import { connectEcho, echoRoundTrips, startEchoServer } from './lib/round-trip.js';

const count = argNumber('count', 10_000);
const rounds = argNumber('rounds', 6);
const warmup = Math.min(2000, count);

async function pingRoundTrips(
  client: Client,
  n: number,
  record: ((us: number) => void) | null,
): Promise<void> {
  for (let i = 0; i < n; i++) {
    const rttMs = await client.ping();
    record?.(Math.max(1, Math.round(rttMs * 1000)));
  }
}

const echo = await startEchoServer();
const broker = await startBrokerProcess();
try {
  const socket = await connectEcho(echo.port);
  const client = await connect({ brokers: `127.0.0.1:${broker.port}` });
  await echoRoundTrips(socket, warmup, null);
  await pingRoundTrips(client, warmup, null);
  const bare = latencyHistogram();
  const ours = latencyHistogram();
  const ratios: number[] = [];
  for (let round = 0; round < rounds; round++) {
    progress(`round ${round + 1}/${rounds}`);
    const bareRound = latencyHistogram();
    const oursRound = latencyHistogram();
    await echoRoundTrips(socket, count, (us) => {
      bare.recordValue(us);
      bareRound.recordValue(us);
    });
    await pingRoundTrips(client, count, (us) => {
      ours.recordValue(us);
      oursRound.recordValue(us);
    });
    ratios.push(oursRound.getValueAtPercentile(99) / bareRound.getValueAtPercentile(99));
  }
  socket.destroy();
  await client.close();
  const sorted = [...ratios].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  const overall = ours.getValueAtPercentile(99) / bare.getValueAtPercentile(99);
  printResult(
    writeResult({
      benchmark: 'ping',
      title: 'Round trip, one request in flight, loopback TCP, client and server in separate processes',
      command: 'npx tsx bench/ping.ts',
      settings: { roundTripsPerRound: count, rounds, warmup, alternating: true },
      rows: [
        { case: 'bare Node TCP echo, 40 bytes', 'round trips': count * rounds, ...percentiles(bare) },
        {
          case: 'MemoryStreamer PING frame (40 bytes) via the client',
          'round trips': count * rounds,
          ...percentiles(ours),
        },
      ],
      notes: [
        `P99 ours / bare over all rounds: ${overall.toFixed(2)}; per round: ${ratios.map((r) => r.toFixed(2)).join(', ')} (median ${median.toFixed(2)}); target ≤ 1.2`,
      ],
    }),
  );
} finally {
  await echo.stop();
  await broker.stop();
}
