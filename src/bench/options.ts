// The settings of one benchmark run, parsed strictly from the command line: every wrong value names
// the flag, the value and what is allowed (commander's InvalidArgumentError, so the CLI exits 2).

import { availableParallelism } from 'node:os';
import { InvalidArgumentError } from 'commander';
import type { DurabilityPolicy } from '../broker/topics/topic-config.js';
import { MAX_PARTITIONS } from '../broker/topics/topic-config.js';
import { parseAcks, parseChoice, parseIntegerOption } from '../cli/options.js';
import type { Acks } from '../protocol/commands/data-types.js';
import type { CompressionCodecName } from '../protocol/compression.js';

/**
 * How a fixed-rate producer waits for its next message when that is under 2 ms away: `spin` polls
 * the event loop (most exact, one busy core per producer), `block` sleeps in 0.1 ms slices (frees
 * the core, adds up to 0.1 ms to measured latencies).
 */
export type Pacing = 'spin' | 'block';

/** Where the broker under test comes from. */
export type BrokerMode = 'embedded' | 'spawn' | 'external';

export interface BenchOptions {
  mode: BrokerMode;
  /** Value bytes per message; the first 8 carry the intended send time. */
  size: number;
  producers: number;
  /** 0 measures produce only. */
  consumers: number;
  topics: number;
  partitions: number;
  /** Copies of each partition of the topics the run creates (a cluster's brokers hold them). */
  replicationFactor: number;
  /** Distinct message keys (streams); 0 sends messages without key. */
  streams: number;
  batchBytes: number;
  lingerMs: number;
  compression: CompressionCodecName;
  acks: Acks;
  durability: DurabilityPolicy;
  /** Total messages per second over all producers; null = as fast as possible. */
  rate: number | null;
  /** Measured seconds (after warmup); null when `messages` bounds the run. */
  durationS: number | null;
  warmupS: number;
  /** Measured messages over all producers (after warmup); null when `durationS` bounds the run. */
  messages: number | null;
  /** Resolved from --pacing auto|spin|block. */
  pacing: Pacing;
  /** Parent directory of the temporary data directory (embedded and spawn modes). */
  dataDir: string | null;
}

/** The raw flag strings commander hands over. */
export interface BenchFlags {
  embedded?: boolean;
  spawn?: boolean;
  size: string;
  producers: string;
  consumers: string;
  topics: string;
  partitions: string;
  replicationFactor: string;
  streams: string;
  batchBytes: string;
  lingerMs: string;
  compression: string;
  acks: string;
  durability: string;
  rate?: string;
  duration?: string;
  warmup: string;
  messages?: string;
  pacing: string;
  dataDir?: string;
}

/** Defaults, shown by --help and used when a flag is absent. */
export const BENCH_DEFAULTS = {
  size: '100',
  producers: '1',
  consumers: '1',
  topics: '1',
  partitions: '1',
  replicationFactor: '1',
  streams: '0',
  // The producer's own defaults (src/client/producer.ts).
  batchBytes: String(512 * 1024),
  lingerMs: '0',
  compression: 'none',
  acks: '1',
  durability: 'interval',
  warmup: '1',
  duration: '10',
  pacing: 'auto',
} as const;

/** The timestamp the latency measurement needs lives in the first 8 bytes of every value. */
export const MIN_MESSAGE_BYTES = 8;
const MAX_MESSAGE_BYTES = 1024 * 1024;
const MAX_ACTORS = 256;
const COMPRESSIONS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
/** The topics' own names for the policies (`none`, an older spelling of `never`, is still taken). */
const DURABILITY_POLICIES = ['never', 'interval', 'always'] as const;

/** Notes for the user about what the run took differently from how it was written (stderr). */
export function benchOptionNotes(flags: BenchFlags): string[] {
  return flags.durability === 'none'
    ? ["note: --durability none is now spelled never (the topic setting's name); running with never"]
    : [];
}

/** A decimal number of seconds (or messages per second), e.g. 0.5, 10. */
function parseDecimal(name: string, value: string, min: number, max: number, allowMin: boolean): number {
  const number = Number(value);
  const inRange = allowMin ? number >= min : number > min;
  if (!/^\d+(\.\d+)?$/.test(value.trim()) || !Number.isFinite(number) || !inRange || number > max) {
    const lower = allowMin ? `from ${min}` : `greater than ${min}`;
    throw new InvalidArgumentError(`${name} ${JSON.stringify(value)}: a number ${lower} up to ${max}`);
  }
  return number;
}

/**
 * `auto` spins only when every thread of the run can have a core of its own: the producers, the
 * consumers, the orchestrator and the broker (its own process, or the orchestrator's thread).
 */
function resolvePacing(flag: string, threads: number, cores: number): Pacing {
  const pacing = parseChoice('--pacing', flag, ['auto', 'spin', 'block'] as const);
  if (pacing !== 'auto') return pacing;
  return cores >= threads + 2 ? 'spin' : 'block';
}

export function parseBenchOptions(
  flags: BenchFlags,
  context: { brokerFlag: boolean; cores?: number },
): BenchOptions {
  if (flags.embedded === true && flags.spawn === true) {
    throw new InvalidArgumentError('--embedded and --spawn cannot be combined: choose one broker');
  }
  const mode: BrokerMode = flags.embedded === true ? 'embedded' : flags.spawn === true ? 'spawn' : 'external';
  if (mode !== 'external' && context.brokerFlag) {
    throw new InvalidArgumentError(
      `--broker and --${mode} cannot be combined: --${mode} starts its own broker`,
    );
  }
  if (flags.duration !== undefined && flags.messages !== undefined) {
    throw new InvalidArgumentError('--duration and --messages cannot be combined: one bounds the run');
  }
  if (flags.dataDir !== undefined && mode === 'external') {
    throw new InvalidArgumentError('--data-dir needs --embedded or --spawn (an existing broker has its own)');
  }
  const topics = parseIntegerOption('--topics', flags.topics, 1, 1000);
  const partitions = parseIntegerOption('--partitions', flags.partitions, 1, MAX_PARTITIONS);
  const consumers = parseIntegerOption('--consumers', flags.consumers, 0, MAX_ACTORS);
  if (consumers > topics * partitions) {
    throw new InvalidArgumentError(
      `--consumers ${consumers}: at most topics × partitions = ${topics * partitions}, since each consumer reads its own partitions`,
    );
  }
  const durability = parseChoice(
    '--durability',
    flags.durability === 'none' ? 'never' : flags.durability,
    DURABILITY_POLICIES,
  );
  const messages =
    flags.messages === undefined
      ? null
      : parseIntegerOption('--messages', flags.messages, 1, Number.MAX_SAFE_INTEGER);
  const producers = parseIntegerOption('--producers', flags.producers, 1, MAX_ACTORS);
  return {
    mode,
    size: parseIntegerOption('--size', flags.size, MIN_MESSAGE_BYTES, MAX_MESSAGE_BYTES),
    producers,
    consumers,
    topics,
    partitions,
    replicationFactor: parseIntegerOption('--replication-factor', flags.replicationFactor, 1, 100),
    streams: parseIntegerOption('--streams', flags.streams, 0, 100_000_000),
    batchBytes: parseIntegerOption('--batch-bytes', flags.batchBytes, 1, 64 * 1024 * 1024),
    lingerMs: parseIntegerOption('--linger-ms', flags.lingerMs, 0, 60_000),
    compression: parseChoice('--compression', flags.compression, COMPRESSIONS),
    acks: parseAcks('--acks', flags.acks),
    durability,
    rate: flags.rate === undefined ? null : parseDecimal('--rate', flags.rate, 0, 1e9, false),
    durationS:
      messages !== null
        ? null
        : parseDecimal('--duration', flags.duration ?? BENCH_DEFAULTS.duration, 0, 86_400, false),
    warmupS: parseDecimal('--warmup', flags.warmup, 0, 3600, true),
    messages,
    pacing: resolvePacing(flags.pacing, producers + consumers, context.cores ?? availableParallelism()),
    dataDir: flags.dataDir ?? null,
  };
}
