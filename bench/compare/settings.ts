// Command-line settings of the comparison, shared by the runner and its per-system children.
import type { Pacing } from '../lib/fixed-rate.js';
import { argNumber } from '../lib/report.js';
import type { LimitSettings } from './limits.js';
import type { Settings } from './workload.js';

export const SYSTEMS = ['limits', 'memorystreamer', 'nats', 'redis', 'rabbitmq'] as const;
export type SystemKey = (typeof SYSTEMS)[number];

export const SYSTEM_NAMES: Record<SystemKey, string> = {
  limits: 'bare limits',
  memorystreamer: 'MemoryStreamer',
  nats: 'NATS JetStream',
  redis: 'Redis Streams',
  rabbitmq: 'RabbitMQ Streams',
};

/** Marks the one line of a child's stdout that carries its outcome. */
export const RESULT_PREFIX = 'RESULT ';

export const smoke = process.argv.includes('--smoke');

export function argString(name: string): string | null {
  const index = process.argv.indexOf(`--${name}`);
  return index < 0 ? null : (process.argv[index + 1] ?? null);
}

/** `--only nats,redis` (or all); unknown names are an error rather than silently skipped. */
export function selectedSystems(): SystemKey[] {
  const only = argString('only');
  if (only === null) return [...SYSTEMS];
  const wanted = only.split(',').map((s) => s.trim().toLowerCase());
  for (const name of wanted)
    if (!(SYSTEMS as readonly string[]).includes(name))
      throw new Error(`--only: unknown system ${name}; known: ${SYSTEMS.join(', ')}`);
  return SYSTEMS.filter((s) => wanted.includes(s));
}

// --smoke shrinks every default so the whole run takes seconds; explicit flags still win.
export const settings: Settings = {
  messages: argNumber('messages', smoke ? 20_000 : 1_000_000),
  rate: argNumber('rate', smoke ? 2_000 : 10_000),
  seconds: argNumber('seconds', smoke ? 1 : 5),
  warmupSeconds: argNumber('warmup', smoke ? 0.2 : 1),
  pacing: argPacing(),
};

/**
 * `--pacing spin|thread` (bench/lib/fixed-rate.ts). The default polls the clock every turn: it
 * keeps one core busy (which a server that needs more CPU per message feels more), but adds no
 * wake-up lag to any message. `thread` sleeps to each due time and adds that wake-up to every
 * message, as the other latency benchmarks do; under it nats.js's client fell behind the schedule
 * (its P50 grew to hundreds of milliseconds), so its row is not comparable there.
 */
function argPacing(): Pacing {
  const value = argString('pacing') ?? 'spin';
  if (value !== 'thread' && value !== 'spin') throw new Error(`--pacing: thread or spin, not ${value}`);
  return value;
}

export const limitSettings: LimitSettings = {
  ...settings,
  roundTrips: argNumber('round-trips', smoke ? 500 : 10_000),
  fsyncSeconds: argNumber('fsync-seconds', smoke ? 0.3 : 3),
};
