// Scaling tables: throughput, P99 latency and broker memory against message size, producers,
// partitions, distinct stream keys and idle connections. Each row gets a fresh broker process (what
// `memorystreamer bench --spawn` starts: src/bench/spawned-broker.ts) that runBench drives as an
// existing broker over 127.0.0.1, so this script knows the broker's PID and reads its /proc memory.
// Per row: a fixed-rate run (P99) on the fresh broker, then a max-rate run (throughput) on it.
// Run: npx tsx bench/scaling.ts [--seconds 3] [--warmup 1] [--p99-seconds 2]
//        [--only size,producers,partitions,streams,idle] [--smoke] [--json]
import { BENCH_DEFAULTS, type BenchFlags, parseBenchOptions } from '../src/bench/options.js';
import type { BenchReport } from '../src/bench/report.js';
import { runBench } from '../src/bench/run-bench.js';
import { type IdleClients, openIdleConnections, procMemory } from './lib/idle-fleet.js';
import { argNumber, type BenchResult, printResult, progress, type Row, writeResult } from './lib/report.js';
import { type ScalingBroker, startScalingBroker } from './scaling/processes.js';

type DimensionName = 'size' | 'producers' | 'partitions' | 'streams' | 'idle';

interface Dimension {
  name: DimensionName;
  /** Column header of the parameter. */
  parameter: string;
  title: string;
  values: number[];
  smokeValues: number[];
  /** Bench flags for a value (on top of the defaults: 100-byte values, 1 producer, 1 consumer …). */
  flags(value: number): Partial<BenchFlags>;
  /** Idle connections to hold open during the row. */
  idle(value: number): number;
}

const DIMENSIONS: Dimension[] = [
  {
    name: 'size',
    parameter: 'size B',
    title: 'message size',
    values: [16, 256, 1024, 4096, 16384, 65536],
    smokeValues: [16, 65536],
    flags: (value) => ({ size: String(value) }),
    idle: () => 0,
  },
  {
    name: 'producers',
    parameter: 'producers',
    title: 'producer threads',
    values: [1, 4, 16, 64],
    smokeValues: [1, 4],
    flags: (value) => ({ producers: String(value) }),
    idle: () => 0,
  },
  {
    name: 'partitions',
    parameter: 'partitions',
    title: 'partitions of the topic',
    values: [1, 10, 100, 1000],
    smokeValues: [1, 100],
    flags: (value) => ({ partitions: String(value) }),
    idle: () => 0,
  },
  {
    name: 'streams',
    parameter: 'stream keys',
    title: 'distinct stream keys',
    values: [1, 1000, 100_000, 1_000_000],
    smokeValues: [1, 1000],
    flags: (value) => ({ streams: String(value) }),
    idle: () => 0,
  },
  {
    name: 'idle',
    parameter: 'idle connections',
    title: 'idle connections held open',
    values: [0, 1000, 10_000],
    smokeValues: [0, 100],
    flags: () => ({}),
    idle: (value) => value,
  },
];

/** Fixed rate of the P99 run: this many msg/s, or P99_BYTES_CAP of values per second if fewer. */
const P99_RATE_CAP = 5000;
const P99_BYTES_CAP = 50e6;
/** From this many idle connections the broker's per-address limit (1,024 by default) is raised. */
const IDLE_LIMIT_FROM = 500;

function argList(name: string): string[] | null {
  const index = process.argv.indexOf(`--${name}`);
  if (index < 0) return null;
  const value = process.argv[index + 1];
  if (value === undefined || value.startsWith('--'))
    throw new Error(`--${name} needs a comma-separated list`);
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

const smoke = process.argv.includes('--smoke');
// A smoke run only checks that the sweep works: its figures are not written to bench/results.
if (smoke) process.env.BENCH_SMOKE = '1';
const seconds = argNumber('seconds', smoke ? 0.5 : 3);
const warmup = argNumber('warmup', smoke ? 0.2 : 1);
const p99Seconds = argNumber('p99-seconds', seconds);
const P99_WARMUP_S = warmup;
const only = argList('only');
const known = DIMENSIONS.map((d) => d.name as string);
for (const name of only ?? []) {
  if (!known.includes(name)) throw new Error(`--only ${name}: one of ${known.join(', ')}`);
}
const selected = DIMENSIONS.filter((d) => only === null || only.includes(d.name));

const MiB = 2 ** 20;
const ms = (us: number | undefined): number | null =>
  us === undefined ? null : Number((us / 1000).toFixed(2));
const errorText = (error: unknown): string =>
  (error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ').slice(0, 300);

function benchOptions(
  dimension: Dimension,
  value: number,
  rate: number | null,
  duration: number,
  warm: number,
) {
  const flags: BenchFlags = {
    ...BENCH_DEFAULTS,
    ...dimension.flags(value),
    duration: String(duration),
    warmup: String(warm),
    ...(rate === null ? {} : { rate: String(rate) }),
  };
  // Neither --embedded nor --spawn: the broker this script started, as an existing broker.
  return parseBenchOptions(flags, { brokerFlag: true });
}

interface PointResult {
  max: BenchReport | null;
  fixed: BenchReport | null;
  fixedRate: number | null;
  peakRss: number | null;
  problems: string[];
}

/** The fixed rate of a row's P99 run: P99_RATE_CAP msg/s, fewer for large values. */
function p99Rate(dimension: Dimension, value: number): number {
  const size = dimension.name === 'size' ? value : 100;
  return Math.min(P99_RATE_CAP, Math.floor(P99_BYTES_CAP / size));
}

/** Broker settings per dimension (MEMORYSTREAMER_* variables). */
function brokerEnv(dimension: Dimension, value: number): Record<string, string> {
  const idle = dimension.idle(value);
  // The default allows 1,024 connections per client address; idle + bench clients all come from 127.0.0.1.
  return idle >= IDLE_LIMIT_FROM
    ? { MEMORYSTREAMER_SERVER_MAX_CONNECTIONS_PER_ADDRESS: String(idle + 1000) }
    : {};
}

async function runPoint(dimension: Dimension, value: number): Promise<PointResult> {
  const result: PointResult = { max: null, fixed: null, fixedRate: null, peakRss: null, problems: [] };
  let broker: ScalingBroker | null = null;
  let idle: IdleClients | null = null;
  try {
    broker = await startScalingBroker(brokerEnv(dimension, value));
    const idleCount = dimension.idle(value);
    if (idleCount > 0) {
      progress(`  opening ${idleCount.toLocaleString('en-US')} idle connections`);
      idle = await openIdleConnections(Number(broker.address.split(':')[1]), idleCount);
    }
    // Fixed rate first, on the fresh broker: after a max-rate run the broker is still flushing,
    // deleting and collecting what that run left, which showed up as stalls of hundreds of ms.
    result.fixedRate = p99Rate(dimension, value);
    try {
      result.fixed = await runBench(
        benchOptions(dimension, value, result.fixedRate, p99Seconds, P99_WARMUP_S),
        {
          brokers: broker.address,
        },
      );
      if (result.fixed.missing > 0)
        result.problems.push(`fixed-rate run: ${result.fixed.missing} messages missing`);
    } catch (error) {
      result.problems.push(`fixed-rate run: ${errorText(error)}`);
    }
    try {
      result.max = await runBench(benchOptions(dimension, value, null, seconds, warmup), {
        brokers: broker.address,
      });
      if (result.max.missing > 0)
        result.problems.push(`max-rate run: ${result.max.missing} messages missing`);
    } catch (error) {
      result.problems.push(`max-rate run: ${errorText(error)}`);
    }
    // Peak resident set since the broker started: idle connections + both runs.
    try {
      result.peakRss = (await procMemory(broker.pid)).peak;
    } catch (error) {
      result.problems.push(`memory: ${errorText(error)}`);
    }
  } catch (error) {
    result.problems.push(errorText(error));
  } finally {
    await idle?.stop().catch((error: unknown) => result.problems.push(`idle clients: ${errorText(error)}`));
    await broker?.stop().catch((error: unknown) => result.problems.push(`broker stop: ${errorText(error)}`));
  }
  return result;
}

function toRow(dimension: Dimension, value: number, point: PointResult): Row {
  const { max, fixed } = point;
  const row: Row = {
    [dimension.parameter]: value,
    'produce msg/s': max?.produce.msgPerSec ?? null,
    'MB/s': max?.produce.mbPerSec ?? null,
    'consume msg/s': max?.consume?.msgPerSec ?? null,
    'e2e P99 ms': ms(fixed?.latencyUs.endToEnd?.p99),
    'ack P99 ms': ms(fixed?.latencyUs.publishToAck?.p99),
    'P99 at msg/s': point.fixedRate,
    'broker RSS MiB': point.peakRss === null ? null : Math.round(point.peakRss / MiB),
  };
  if (dimension.name === 'streams') {
    // Keys are used round-robin, so a short run writes only as many keys as it sends messages.
    row['keys written'] = max === null ? null : Math.min(value, max.produce.totalMessages);
  }
  row.problems = point.problems.length === 0 ? null : point.problems.join('; ');
  return row;
}

function notes(dimension: Dimension): string[] {
  const list = [
    `Each row: a fresh broker process (memorystreamer serve, as --spawn starts it, 127.0.0.1, durability interval, acks 1), 1 topic, 1 consumer thread, ${dimension.name === 'size' ? '' : '100-byte values, '}default batching; the broker and all client threads share this machine's cores.`,
    `Throughput: max rate (producers keep up to 8 MiB unacknowledged), ${seconds} s measured after ${warmup} s warm-up; MB/s counts value bytes produced.`,
    `P99 columns come from a separate fixed-rate run (${p99Seconds} s after ${P99_WARMUP_S} s warm-up) on the fresh broker before the max-rate run, at the rate in 'P99 at msg/s' = min(${P99_RATE_CAP.toLocaleString('en-US')} msg/s, ${P99_BYTES_CAP / 1e6} MB/s of values); latency counts from the intended send time. Max-rate P99 is not reported: it only measures the producers' 8 MiB queue of unacknowledged sends.`,
    "broker RSS MiB: the broker's VmHWM (peak resident set since it started) read after both runs, i.e. startup + idle connections + the max-rate load.",
  ];
  if (dimension.name === 'streams')
    list.push(
      "Stream keys are assigned round-robin (stream-<i mod keys>); 'keys written' = distinct keys the max-rate run actually wrote, fewer than the row's keys when the run sent fewer messages.",
    );
  if (dimension.name === 'idle')
    list.push(
      `Idle connections: handshake done then silent, held by 4 client processes (bench/lib/idle-clients.ts) for the whole row, opened before the runs. From ${IDLE_LIMIT_FROM.toLocaleString('en-US')} idle connections the broker runs with server.max_connections_per_address = idle + 1,000 (default 1,024: all clients come from 127.0.0.1).`,
    );
  return list;
}

const started = performance.now();
const results: BenchResult[] = [];
for (const dimension of selected) {
  const values = smoke ? dimension.smokeValues : dimension.values;
  const rows: Row[] = [];
  for (const value of values) {
    const t0 = performance.now();
    progress(`scaling-${dimension.name}: ${dimension.parameter} ${value.toLocaleString('en-US')}`);
    const point = await runPoint(dimension, value);
    const row = toRow(dimension, value, point);
    rows.push(row);
    progress(
      `  ${row['produce msg/s'] ?? '-'} msg/s produced, e2e P99 ${row['e2e P99 ms'] ?? '-'} ms, RSS ${row['broker RSS MiB'] ?? '-'} MiB` +
        `${row.problems === null ? '' : `, problems: ${row.problems}`} (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    );
  }
  const result = writeResult({
    benchmark: `scaling-${dimension.name}`,
    title: `Scaling with ${dimension.title}: throughput, P99 and broker memory`,
    command: `npx tsx bench/scaling.ts --only ${dimension.name}${seconds === 3 ? '' : ` --seconds ${seconds}`}`,
    settings: {
      broker: 'child process (spawned-broker.ts), fresh per row',
      measuredSeconds: seconds,
      warmupSeconds: warmup,
      p99Seconds,
      p99RateCap: P99_RATE_CAP,
      p99BytesPerSecondCap: P99_BYTES_CAP,
      consumers: 1,
      topics: 1,
      durability: 'interval',
      acks: 1,
      smoke,
    },
    rows,
    notes: notes(dimension),
  });
  results.push(result);
  printResult(result);
}
progress(`scaling sweep done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
