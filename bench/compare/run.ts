// Side-by-side comparison on loopback (127.0.0.1 only), one command: the same workload (100-byte
// messages, one producer, one consumer: max-rate produce, replay, end-to-end and publish-to-ack
// latency at a fixed rate) against MemoryStreamer, NATS JetStream, Redis Streams and RabbitMQ
// Streams, plus the bare limits of the machine (TCP echo, ping-pong, fdatasync), in one run.
// Each system runs in a fresh child process (bench/compare/child.ts) that starts and stops its
// server; a system that cannot run gets a "not available: <reason>" row, never figures.
// Run: bash bench/compare/install.sh && npx tsx bench/compare/run.ts
//        [--messages 1000000] [--rate 10000] [--seconds 5] [--pacing thread|spin] [--only nats,redis,...]
//        [--smoke] [--json]
import { type ChildProcess, spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { printResult, progress, writeResult } from '../lib/report.js';
import {
  argString,
  limitSettings,
  RESULT_PREFIX,
  SYSTEM_NAMES,
  type SystemKey,
  selectedSystems,
  settings,
  smoke,
} from './settings.js';
import { buildRows, LATENCY_COLUMNS, type Outcome, pick, THROUGHPUT_COLUMNS } from './table.js';

// A smoke run only checks that everything works: keep bench/results/compare.json as it is.
if (smoke) process.env.BENCH_SMOKE = '1';

let current: ChildProcess | null = null;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    // The child stops its servers on the signal, then exits; we follow.
    current?.kill(signal);
    process.stderr.write(`\n${signal}: stopping\n`);
    if (current === null) process.exit(130);
    else current.once('exit', () => process.exit(130));
  });
}

/** Runs child.ts for one system; its progress goes to our stderr, its outcome comes back. */
function runChild(key: SystemKey, timeoutMs: number): Promise<Outcome> {
  const forwarded = process.argv.slice(2).filter((a) => a !== '--json');
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/compare/child.ts', key, ...forwarded], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  current = child;
  let stdout = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  // A hung system must not hang the comparison: SIGTERM lets the child stop its servers.
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGTERM');
  }, timeoutMs);
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      current = null;
      const line = stdout.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
      if (line !== undefined) resolve(JSON.parse(line.slice(RESULT_PREFIX.length)) as Outcome);
      else {
        const why = timedOut ? `timed out after ${timeoutMs / 1000} s` : `run failed (${signal ?? code})`;
        resolve({ kind: 'unavailable', key, name: SYSTEM_NAMES[key], reason: why });
      }
    });
  });
}

const systems = selectedSystems();
const outcomes: Outcome[] = [];
// Generous: start-up, the latency run, and produce + replay at no less than 5k msg/s.
const timeoutMs = 120_000 + settings.seconds * 2000 + (settings.messages / 5000) * 2000;
for (const key of systems) {
  progress(`== ${SYSTEM_NAMES[key]}`);
  const outcome = await runChild(key, timeoutMs);
  if (outcome.kind === 'unavailable') progress(`${outcome.name}: not available: ${outcome.reason}`);
  outcomes.push(outcome);
}
progress('done');
if (process.stderr.isTTY) process.stderr.write('\n');

const result = writeResult({
  benchmark: 'compare',
  title: `MemoryStreamer vs peers on loopback, 100-byte messages, one producer, one consumer`,
  command: `npx tsx bench/compare/run.ts${process.argv.slice(2).length > 0 ? ` ${process.argv.slice(2).join(' ')}` : ''}`,
  settings: {
    systems: systems.join(','),
    messages: settings.messages,
    messageBytes: 100,
    producers: 1,
    consumers: 1,
    partitions: 1,
    latencyRate: settings.rate,
    latencySeconds: settings.seconds,
    latencyWarmupSeconds: settings.warmupSeconds,
    latencyPacing: settings.pacing,
    roundTrips: limitSettings.roundTrips,
    fsyncSeconds: limitSettings.fsyncSeconds,
    host: '127.0.0.1',
    ...(argString('only') === null ? {} : { only: argString('only') ?? '' }),
  },
  rows: buildRows(outcomes),
  notes: [
    'produce: max rate, every message acknowledged; replay: read all back from the start (messages as above)',
    `e2e = send → consumer receipt, ack = publish → acknowledgement; both from each message's intended send time at ${settings.rate} msg/s (no coordinated omission), after ${settings.warmupSeconds} s of warm-up; ${settings.pacing === 'thread' ? "paced by a sleeping thread that wakes the sender's event loop for each due message (the loop otherwise idle, as a service's is)" : 'paced by polling the clock every event-loop turn (one core kept busy)'}`,
    'the two fixed-rate echo rows run the same schedule, pacer and warm-up as the systems through the bare echo (the floor for a path through two Node processes on this machine) and through an echo that appends to a file before echoing (one write on the thread pool at a time, fdatasync every 100 ms: a reference for a server that delivers a message only once it is written; MemoryStreamer writes small appends in line instead)',
    'MS÷ produce/replay = MemoryStreamer msg/s ÷ that row (>1: MemoryStreamer faster); against the echo row, ÷ the echo msg/s',
    'MS÷ e2e/ack p99 = MemoryStreamer P99 ÷ that row (<1: MemoryStreamer lower); the fdatasync row is the floor of a per-message durable ack',
    'server CPU = server process CPU seconds ÷ wall seconds over produce + replay',
    `load 1m = the machine's 1-minute load average as that row began (${cpus().length} cores); figures taken under load are not comparable`,
    ...(systems.includes('nats')
      ? [
          'NATS produce: nats.js has no batch publish; one js.publish request per message bounds it in the client (compare its server CPU)',
        ]
      : []),
    'each system runs in a fresh client process against its own server in a fresh temp dir; all on 127.0.0.1',
  ],
});

if (process.argv.includes('--json')) printResult(result);
else {
  printResult({
    ...result,
    title: `${result.title}: throughput`,
    rows: pick(result.rows, THROUGHPUT_COLUMNS),
    notes: [],
  });
  printResult({
    ...result,
    title: `${result.title}: latency (µs)`,
    rows: pick(result.rows, LATENCY_COLUMNS),
  });
}
