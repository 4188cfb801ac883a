// Is the end-to-end latency tail ours or the machine's? The same fixed-rate schedule (100-byte
// messages, 10,000 msg/s, latency from each message's intended send time) through
//  - a bare Node TCP echo in another process: the floor for two processes on loopback,
//  - the same echo writing what it receives to a file before echoing it (bench/lib/echo-server.ts
//    --write: one writev on the threadpool at a time, fdatasync every 100 ms): the floor for a
//    broker in another process that delivers a message only once it is written, as ours does,
//  - MemoryStreamer over TCP (broker in another process; producer and consumer here),
//  - MemoryStreamer embedded (everything in this process, no sockets),
//  - the two floors of the embedded path: a setImmediate hop (the least a same-thread handoff
//    costs) and one fs.write of the 100 bytes on libuv's threadpool (the least an append costs
//    before it may become visible: a message is readable once written, never before),
// in alternating rounds so drifts of the machine hit all alike; histograms add up the rounds, and
// each round's P99 is listed too.
// Pacing (bench/lib/fixed-rate.ts): `thread` (default) wakes this process's event loop from a
// sleeping worker at each due time; `spin` polls every event-loop turn and keeps a core busy.
// Run: npx tsx bench/latency-floor.ts [--rate 10000] [--seconds 4] [--rounds 3] [--pacing thread|spin] [--json]
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import type * as hdr from 'hdr-histogram-js';
import { connect } from '../src/client/connect.js';
import { Broker } from '../src/embedded/broker.js';
import { median } from './gate/rule.js';
import { cpuSeconds, startBrokerProcess } from './lib/broker-process.js';
import {
  brokerFixedRate,
  echoFixedRate,
  immediateHopFixedRate,
  type Pacing,
  threadpoolWriteFixedRate,
} from './lib/fixed-rate.js';
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
const pacing: Pacing = process.argv.includes('--pacing')
  ? (process.argv[process.argv.indexOf('--pacing') + 1] as Pacing)
  : 'thread';

/** Every fixed-rate round sends a warm-up second before its measured seconds. */
const MESSAGES_PER_ROUND = rate * (seconds + 1);

const CASES = [
  'bare Node TCP echo',
  'TCP echo that writes first (threadpool)',
  'MemoryStreamer over TCP',
  'MemoryStreamer embedded',
  'in-process floor: setImmediate hop',
  'in-process floor: fs.write 100 B (threadpool)',
] as const;
type Case = (typeof CASES)[number];

/**
 * Where a tail comes from: event-loop delay (P99 over the round, µs; a stalled loop delays every
 * message behind it) and garbage-collection time (ms per second) of a process during a round.
 * For this process they come from perf_hooks; for the broker process from its /metrics, whose
 * event-loop histogram prom-client resets at every scrape (so a scrape before the round starts
 * the window).
 */
interface Stalls {
  loopP99Us: number;
  gcMsPerS: number;
}

/** A round's stalls, and CPU time (all threads) per message sent: this process's and a server process's. */
interface RoundCosts {
  here: Stalls;
  broker: Stalls | null;
  clientCpuUsPerMessage: number;
  serverCpuUsPerMessage: number | null;
}

/**
 * Node's event-loop delay histogram records each interval of its sampling timer whole, so an idle
 * loop reads as the timer's period (1 ms here; 10 ms in the broker, prom-client's default
 * precision): the columns give the delay beyond that period.
 */
const CLIENT_LOOP_SAMPLING_MS = 1;
const BROKER_LOOP_SAMPLING_MS = 10;

async function brokerMetrics(adminPort: number): Promise<{ loopP99: number; gcSeconds: number }> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const loop = /^memorystreamer_nodejs_eventloop_lag_p99_seconds (\S+)/m.exec(text);
  let gcSeconds = 0;
  for (const match of text.matchAll(/^memorystreamer_nodejs_gc_duration_seconds_sum\{[^}]*\} (\S+)/gm))
    gcSeconds += Number(match[1]);
  return { loopP99: Number(loop?.[1] ?? Number.NaN), gcSeconds };
}

/** Runs `round`, measuring this process's event loop, GC and CPU, the broker's when given, and a server process's CPU. */
async function withStalls(
  adminPort: number | null,
  serverPid: number | null,
  round: () => Promise<void>,
): Promise<RoundCosts> {
  const loop = monitorEventLoopDelay({ resolution: CLIENT_LOOP_SAMPLING_MS });
  let gcMs = 0;
  const gc = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcMs += entry.duration;
  });
  gc.observe({ entryTypes: ['gc'] });
  const before = adminPort === null ? null : await brokerMetrics(adminPort);
  const serverCpuBefore = serverPid === null ? 0 : await cpuSeconds(serverPid);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  loop.enable();
  await round();
  loop.disable();
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const serverCpu = serverPid === null ? null : (await cpuSeconds(serverPid)) - serverCpuBefore;
  gc.disconnect();
  const after = adminPort === null ? null : await brokerMetrics(adminPort);
  const perMessage = (us: number) => Number((us / MESSAGES_PER_ROUND).toFixed(1));
  return {
    here: {
      loopP99Us: Math.max(0, Math.round(loop.percentile(99) / 1000 - CLIENT_LOOP_SAMPLING_MS * 1000)),
      gcMsPerS: Number((gcMs / seconds).toFixed(1)),
    },
    broker:
      before === null || after === null
        ? null
        : {
            loopP99Us: Math.max(0, Math.round(after.loopP99 * 1e6 - BROKER_LOOP_SAMPLING_MS * 1000)),
            gcMsPerS: Number((((after.gcSeconds - before.gcSeconds) * 1000) / seconds).toFixed(1)),
          },
    clientCpuUsPerMessage: perMessage(cpu.user + cpu.system),
    serverCpuUsPerMessage: serverCpu === null ? null : perMessage(serverCpu * 1e6),
  };
}

async function main(): Promise<void> {
  const echo = await startEchoServer();
  const dataDir = await mkdtemp(join(tmpdir(), 'ms-floor-'));
  const writingEcho = await startEchoServer(join(dataDir, 'echo.bin'));
  const broker = await startBrokerProcess();
  const embedded = await Broker.start({ dataDir: join(dataDir, 'broker') });
  const tcpClient = await connect({ brokers: [`127.0.0.1:${broker.port}`] });
  const embeddedClient = embedded.connect();
  const socket = await connectEcho(echo.port);
  const writingSocket = await connectEcho(writingEcho.port);
  const file = await open(join(dataDir, 'floor.bin'), 'w');
  const pooled = new Map<Case, hdr.Histogram>(CASES.map((c) => [c, latencyHistogram()]));
  const pooledFromSend = new Map<Case, hdr.Histogram>(CASES.map((c) => [c, latencyHistogram()]));
  const perRound = new Map<Case, number[]>(CASES.map((c) => [c, []]));
  const stalls = new Map<Case, RoundCosts[]>(CASES.map((c) => [c, []]));
  try {
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? CASES : [...CASES].reverse();
      for (const which of order) {
        progress(`round ${round + 1}/${rounds}: ${which}`);
        const histogram = latencyHistogram();
        const fromSend = pooledFromSend.get(which)!;
        const schedule = { rate, seconds, pacing };
        let measured: RoundCosts;
        if (which === 'bare Node TCP echo')
          measured = await withStalls(null, echo.pid, () =>
            echoFixedRate(socket, schedule, histogram, fromSend),
          );
        else if (which === 'TCP echo that writes first (threadpool)')
          measured = await withStalls(null, writingEcho.pid, () =>
            echoFixedRate(writingSocket, schedule, histogram, fromSend),
          );
        else if (which === 'in-process floor: setImmediate hop')
          measured = await withStalls(null, null, () => immediateHopFixedRate(schedule, histogram, fromSend));
        else if (which === 'in-process floor: fs.write 100 B (threadpool)')
          measured = await withStalls(null, null, () =>
            threadpoolWriteFixedRate(schedule, file.fd, histogram, fromSend),
          );
        else {
          const client = which === 'MemoryStreamer over TCP' ? tcpClient : embeddedClient;
          const topic = `floor-${round}`;
          await client.admin.createTopic({ name: topic, config: { durability: 'interval' } });
          const overTcp = which === 'MemoryStreamer over TCP';
          measured = await withStalls(overTcp ? broker.adminPort : null, overTcp ? broker.pid : null, () =>
            brokerFixedRate(client, topic, schedule, histogram, fromSend),
          );
        }
        stalls.get(which)!.push(measured);
        pooled.get(which)!.add(histogram);
        perRound.get(which)!.push(histogram.getValueAtPercentile(99));
      }
    }
  } finally {
    socket.destroy();
    writingSocket.destroy();
    await writingEcho.stop();
    await file.close();
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
      'from send call: p50 / p99 µs': `${pooledFromSend.get(which)!.getValueAtPercentile(50)} / ${pooledFromSend.get(which)!.getValueAtPercentile(99)}`,
      'p99 per round µs': perRound.get(which)!.join(', '),
      'client CPU µs/msg': median(stalls.get(which)!.map((m) => m.clientCpuUsPerMessage)),
      'server CPU µs/msg':
        which === 'MemoryStreamer embedded'
          ? '(same process as the client)'
          : stalls.get(which)![0]?.serverCpuUsPerMessage === null
            ? '-'
            : median(stalls.get(which)!.map((m) => m.serverCpuUsPerMessage ?? Number.NaN)),
      'client loop delay p99 µs': stalls
        .get(which)!
        .map((m) => m.here.loopP99Us)
        .join(', '),
      'client GC ms/s': stalls
        .get(which)!
        .map((m) => m.here.gcMsPerS)
        .join(', '),
      'broker loop delay p99 µs':
        which === 'MemoryStreamer over TCP'
          ? stalls
              .get(which)!
              .map((m) => m.broker?.loopP99Us ?? '-')
              .join(', ')
          : which === 'MemoryStreamer embedded'
            ? '(same process as the client)'
            : '-',
      'broker GC ms/s':
        which === 'MemoryStreamer over TCP'
          ? stalls
              .get(which)!
              .map((m) => m.broker?.gcMsPerS ?? '-')
              .join(', ')
          : '-',
    };
  });
  const result = writeResult({
    benchmark: 'latency-floor',
    title: `End-to-end latency at a fixed ${rate} msg/s against the bare echo floor (100-byte messages)`,
    command: `npx tsx bench/latency-floor.ts --rate ${rate} --seconds ${seconds} --rounds ${rounds} --pacing ${pacing}`,
    settings: {
      rate,
      secondsPerRound: seconds,
      rounds,
      messageBytes: 100,
      durability: 'interval',
      pacing:
        pacing === 'thread'
          ? 'a worker thread sleeps to each due time and wakes the event loop; latency from the intended send time'
          : 'send when due, checked every event-loop turn (setImmediate, one core busy); latency from the intended send time',
    },
    rows,
    notes: [
      'The echo row is the same schedule through a Node TCP echo server in another process: what two processes on loopback cost at this rate on this machine, with no broker.',
      'The writing echo appends each received chunk to a file before echoing it (one writev on libuv\'s threadpool at a time, chunks arriving meanwhile go together in the next, fdatasync every 100 ms): the floor for a broker process that delivers a message only once it is written, as MemoryStreamer does (docs/storage.md, "Visibility"), when that write goes through the thread pool; it adds a threadpool round trip and a second wake-up of the server per message. MemoryStreamer writes small appends in line (no thread-pool hop), so against this floor it has an advantage the echo does not take.',
      'Rounds alternate the order of the cases; the histograms add up all rounds.',
      'The two in-process floors run the same schedule with no broker: a setImmediate hop per message, and one fs.write of the 100 bytes per message on libuv\'s threadpool (a file in the temporary directory), recorded in its callback. An append the log writes on the thread pool (a large one, or any while the log\'s slow-write guard holds it there) cannot become visible before such a write has completed; a small one written in line into the page cache (docs/storage.md, "Append path") costs a synchronous write instead, below this floor.',
      "CPU columns: CPU time (user + system, all threads) per message sent, the median over the rounds; the client is this process (producer, consumer and the pacer's thread, or the echo client), the server the echo or broker process. At a fixed rate a process whose thread is busy a share ρ of the time turns a stall of S into a backlog that takes about S ÷ (1 − ρ) to clear, so CPU per message sets how far a GC pause or a descheduling spreads into the tail.",
      "'from send call' counts from the moment the pacer handed the message over, without the pacer's own wake-up lag; the other columns count from the intended send time.",
      "Stall columns, per round: event-loop delay P99 beyond the sampling timer's own period (perf_hooks monitorEventLoopDelay in this process with a 1 ms timer; the broker process reports its own through /metrics with prom-client's 10 ms timer; Node records each timer interval whole, so the period is subtracted and an idle loop reads about 0) and garbage-collection time per second. This process is the client (producer and consumer) in every case and also the broker in the embedded case.",
    ],
  });
  printResult(result);
}

await main();
