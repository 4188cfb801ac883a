// The attack catalogue: for each attack class, what its attacker processes do (per budget), and the
// checks that belong to it alone. The checks every attack shares (memory, the good clients, health,
// recovery, the read-back) are applied by attack-runner.ts.

import type { AttackerJob, AttackerReport } from './attacker-jobs.js';
import { type CheckResult, check, MiB } from './checks.js';

export type BudgetName = 'ci' | 'long';

/** Limits the broker runs with (and that the checks hold it to). */
export interface BatteryLimits {
  maxConnections: number;
  maxConnectionsPerAddress: number;
  handshakeTimeoutMs: number;
  idleTimeoutMs: number;
  maxPayloadBytes: number;
  connectionBudget: number;
  globalBudget: number;
  maxOutbound: number;
  nofileSoft: number;
  nofileHard: number;
  /** topics.max_partitions: what the partition flood can make the broker hold. */
  maxPartitions: number;
}

export const LIMITS: BatteryLimits = {
  maxConnections: 1000,
  maxConnectionsPerAddress: 400,
  handshakeTimeoutMs: 2000,
  idleTimeoutMs: 20_000,
  maxPayloadBytes: 8 * MiB,
  connectionBudget: 16 * MiB,
  globalBudget: 64 * MiB,
  maxOutbound: 16 * MiB,
  nofileSoft: 1024,
  nofileHard: 1024,
  maxPartitions: 4000,
};

/** The MEMORYSTREAMER_* variables that give the broker these limits. */
export function limitsEnv(limits: BatteryLimits): Record<string, string> {
  return {
    MEMORYSTREAMER_SERVER_MAX_CONNECTIONS: String(limits.maxConnections),
    MEMORYSTREAMER_SERVER_MAX_CONNECTIONS_PER_ADDRESS: String(limits.maxConnectionsPerAddress),
    MEMORYSTREAMER_SERVER_HANDSHAKE_TIMEOUT: String(limits.handshakeTimeoutMs),
    MEMORYSTREAMER_SERVER_IDLE_TIMEOUT: String(limits.idleTimeoutMs),
    MEMORYSTREAMER_SERVER_MAX_PAYLOAD_BYTES: String(limits.maxPayloadBytes),
    MEMORYSTREAMER_SERVER_CONNECTION_BUDGET: String(limits.connectionBudget),
    MEMORYSTREAMER_SERVER_GLOBAL_BUDGET: String(limits.globalBudget),
    MEMORYSTREAMER_SERVER_MAX_OUTBOUND: String(limits.maxOutbound),
    MEMORYSTREAMER_TOPICS_MAX_PARTITIONS: String(limits.maxPartitions),
  };
}

export interface AttackContext {
  budget: BudgetName;
  limits: BatteryLimits;
  /** The durability-`always` topic of the good clients. */
  goodTopic: string;
  /** A prefilled topic the read attacks point at (tens of MiB). */
  bulkTopic: string;
}

/** A job without the fields the runner fills in (port, seed). */
export type JobSpec = AttackerJob extends infer J
  ? J extends AttackerJob
    ? Omit<J, 'port' | 'seed'>
    : never
  : never;

export interface MemoryWindow {
  /** RSS rise over the pre-attack baseline during the attack, bytes. */
  rssRise: number;
  /** Virtual size rise over the pre-attack baseline during the attack, bytes. */
  virtualRise: number;
  /** Most file descriptors the broker held during the attack. */
  peakFds: number;
}

export interface AttackDefinition {
  name: string;
  /** Row of the battery table in RELIABILITY.md this attack belongs to. */
  table: string;
  summary: string;
  jobs(ctx: AttackContext): JobSpec[];
  /** Attack-specific checks, from the attackers' reports. */
  checks?(ctx: AttackContext, reports: AttackerReport[], memory: MemoryWindow): CheckResult[];
  /** Stop and start the broker on the same data directory after the attack (must succeed). */
  restartAfter?: boolean;
  /**
   * Memory of durable state the attack may create and the broker keeps by design: added to the RSS
   * ceiling and to the after-attack return target (0 when absent).
   */
  stateBytes?(ctx: AttackContext): number;
}

/** Memory one open partition costs (docs/operations.md, "Partitions and memory": 13–15 KiB measured), rounded up. */
export const PARTITION_STATE_BYTES = 16 * 1024;

const scale = (ctx: AttackContext, ci: number, long: number) => (ctx.budget === 'ci' ? ci : long);

function sum(reports: AttackerReport[], field: string): number {
  return reports.reduce((total, r) => total + (typeof r[field] === 'number' ? (r[field] as number) : 0), 0);
}

export const ATTACKS: AttackDefinition[] = [
  {
    name: 'control',
    table: 'test-the-tests',
    summary: 'no attack: the good clients alone, so every shared check is seen to pass on a healthy run',
    jobs: () => [],
  },
  {
    name: 'pipelined-fetch',
    table: 'pipelining',
    summary:
      'connections pipeline thousands of FETCH requests with maxBytes 2^32-1 at offset 0 of a prefilled topic and never read an answer',
    jobs: (ctx) =>
      Array.from({ length: 2 }, () => ({
        kind: 'pipelined-fetch' as const,
        connections: scale(ctx, 3, 12),
        requestsPerConnection: scale(ctx, 4000, 40_000),
        topic: ctx.bulkTopic,
        maxBytes: 0xffffffff,
      })),
  },
  {
    name: 'huge-credit',
    table: 'pipelining',
    summary:
      'connections open 8 subscriptions each from the earliest offset of a prefilled topic, declaring 4 GiB of credit, and never read',
    jobs: (ctx) =>
      Array.from({ length: 2 }, () => ({
        kind: 'huge-credit' as const,
        connections: scale(ctx, 4, 16),
        subscriptionsPerConnection: 8,
        topic: ctx.bulkTopic,
        credit: 0xffffffff,
      })),
    checks: (_ctx, reports) => [
      check(
        'subscriptions were opened',
        sum(reports, 'subscriptions') > 0,
        `${sum(reports, 'subscriptions')} subscriptions`,
      ),
    ],
  },
  {
    name: 'partial-frames',
    table: 'pipelining',
    summary:
      'many connections each send most (7.5 MiB) of an 8 MiB produce frame, then nothing more, and hold the socket',
    jobs: (ctx) =>
      Array.from({ length: 2 }, () => ({
        kind: 'partial-frames' as const,
        connections: scale(ctx, 40, 150),
        frameBytes: ctx.limits.maxPayloadBytes - 1024,
        sendBytes: Math.floor(7.5 * MiB),
        topic: ctx.goodTopic,
      })),
  },
  {
    name: 'flood',
    table: 'flood / fd-exhaustion',
    summary:
      'connections from several client addresses (127.0.0.2 past its per-address cap; 127.0.0.3 and on, each at the cap, together past the connection cap and the descriptor soft limit); most handshake and hold, some stay silent, some dribble one byte a second',
    jobs: (ctx) => {
      const perAddress = ctx.limits.maxConnectionsPerAddress;
      // One address past its cap, all handshaking; the others, each at its cap, together past the
      // connection cap and the descriptor soft limit.
      return [
        {
          kind: 'flood' as const,
          connections: perAddress + 150,
          localAddress: '127.0.0.2',
          handshakeTenths: 10,
          startDelayMs: 0,
        },
        ...Array.from({ length: scale(ctx, 3, 6) }, (_, i) => ({
          kind: 'flood' as const,
          connections: perAddress,
          localAddress: `127.0.0.${3 + i}`,
          handshakeTenths: 8,
          // After the first address has met its cap, so that cap is what limits it there.
          startDelayMs: 2000,
        })),
      ];
    },
    checks: (ctx, reports, memory) => {
      const { maxConnectionsPerAddress: perAddress, maxConnections, handshakeTimeoutMs } = ctx.limits;
      const first = reports[0] ?? {};
      const handshaked = sum(reports, 'handshaked');
      const silentOpen = sum(reports, 'silentOpen') + sum(reports, 'dribblersOpen');
      const silentTotal = sum(reports, 'silentTotal') + sum(reports, 'dribblersTotal');
      return [
        check(
          'per-address cap holds',
          (first.handshaked as number) <= perAddress,
          `${first.handshaked} handshakes accepted from ${first.localAddress} of ${first.attempted} attempts; cap ${perAddress}`,
        ),
        check(
          'connection cap holds',
          handshaked <= maxConnections,
          `${handshaked} handshakes accepted over all addresses of ${sum(reports, 'attempted')} attempts; cap ${maxConnections}; peak broker fds ${memory.peakFds}`,
        ),
        check(
          'the flood was refused with TOO_MANY_CONNECTIONS',
          sum(reports, 'refusedTooMany') > 0,
          `${sum(reports, 'refusedTooMany')} refusals`,
        ),
        check(
          'silent and dribbling connections closed by the handshake timeout',
          silentTotal > 0 && silentOpen === 0,
          `${silentOpen} of ${silentTotal} still open ${handshakeTimeoutMs} ms + the hold after they connected`,
        ),
      ];
    },
  },
  {
    name: 'slow-readers',
    table: 'slow-consumer',
    summary:
      'connections subscribe (16 MiB credit) and pipeline 8 fetches of 16 MiB each on a prefilled topic, then read 16 bytes every 250 ms',
    jobs: (ctx) =>
      Array.from({ length: 2 }, () => ({
        kind: 'slow-readers' as const,
        connections: scale(ctx, 8, 32),
        topic: ctx.bulkTopic,
        credit: 16 * MiB,
        fetches: 8,
        fetchMaxBytes: 16 * MiB,
        bytesPerTick: 16,
        tickMs: 250,
      })),
  },
  {
    name: 'tiny-flood',
    table: 'pipelining',
    summary:
      'connections send PING and LIST_TOPICS frames as fast as their sockets take them; half read the answers, half never do',
    jobs: (ctx) =>
      Array.from({ length: 2 }, () => ({ kind: 'tiny-flood' as const, connections: scale(ctx, 32, 128) })),
    checks: (_ctx, reports) => [
      check(
        'the flood ran',
        sum(reports, 'requestsWritten') > 10_000,
        `${sum(reports, 'requestsWritten')} requests written, ${sum(reports, 'answersRead')} answers read`,
      ),
    ],
  },
  {
    name: 'malformed-records',
    table: 'records',
    summary:
      'produce batches with a correct batch CRC but malformed records (offset deltas, lengths, counts, header shapes, varints, timestamps, random record bytes), plain and in gzip/snappy/lz4/zstd, to the good partition',
    jobs: (ctx) => [
      { kind: 'malformed-records' as const, topic: ctx.goodTopic, randomPerCodec: scale(ctx, 6, 200) },
    ],
    checks: (_ctx, reports) => {
      const cases = (reports[0]?.cases ?? []) as Array<{
        name: string;
        codec: string;
        valid: boolean;
        accepted: boolean;
        offset: string | null;
        error: string | null;
      }>;
      const bad = cases.filter((c) => !c.valid);
      const accepted = bad.filter((c) => c.accepted);
      const validRefused = cases.filter((c) => c.valid && !c.accepted);
      const unclear = bad.filter(
        (c) => !c.accepted && (c.error === 'INTERNAL_ERROR' || c.error?.startsWith('no answer')),
      );
      const list = (xs: typeof cases) =>
        xs
          .slice(0, 6)
          .map((c) => `${c.name}/${c.codec}${c.offset !== null ? ` @${c.offset}` : ` ${c.error}`}`)
          .join('; ');
      return [
        check(
          'every malformed batch refused (nothing appended)',
          bad.length > 0 && accepted.length === 0,
          accepted.length === 0
            ? `${bad.length} malformed batches refused`
            : `${accepted.length} of ${bad.length} acknowledged: ${list(accepted)}${accepted.length > 6 ? ' …' : ''}`,
        ),
        check(
          'malformed batches refused with a clear error',
          unclear.length === 0,
          unclear.length === 0
            ? `codes: ${[...new Set(bad.filter((c) => !c.accepted).map((c) => c.error))].join(', ') || 'none'}`
            : `${unclear.length} answered without a typed error: ${list(unclear)}`,
        ),
        check(
          'well-formed control batches accepted (in every codec)',
          cases.some((c) => c.valid) && validRefused.length === 0,
          validRefused.length === 0
            ? `${cases.filter((c) => c.valid).length} accepted`
            : `${validRefused.length} refused: ${list(validRefused)}`,
        ),
      ];
    },
  },
  {
    name: 'partition-flood',
    table: 'fd-exhaustion',
    summary:
      'createTopic with 2,000 partitions, repeated (the same name twice, then new names) past topics.max_partitions (4,000), then a broker restart on the same data directory',
    restartAfter: true,
    stateBytes: (ctx) => ctx.limits.maxPartitions * PARTITION_STATE_BYTES,
    jobs: (ctx) => [
      {
        kind: 'partition-flood' as const,
        names: ['wide', 'wide', ...Array.from({ length: scale(ctx, 1, 8) }, (_, i) => `wide-${i + 2}`)],
        partitions: 2_000,
        requestTimeoutMs: scale(ctx, 30_000, 120_000),
      },
    ],
    checks: (_ctx, reports) => {
      const requests = (reports[0]?.requests ?? []) as Array<{
        name: string;
        created: boolean;
        error: string | null;
        ms: number;
      }>;
      const unclear = requests.filter(
        (r) => !r.created && (r.error === 'INTERNAL_ERROR' || r.error?.startsWith('no answer')),
      );
      return [
        check(
          'every createTopic created the topic or was refused with a clear error',
          requests.length > 0 && unclear.length === 0,
          requests.map((r) => `${r.name}: ${r.created ? 'created' : r.error} (${r.ms} ms)`).join('; '),
        ),
      ];
    },
  },
  {
    name: 'huge-lengths',
    table: 'huge-lengths',
    summary:
      'connections declare 2^32-1 and 2^31-byte frames, a frame at the payload limit with 1 KiB sent, and a bogus handshake before any handshake; after it, requests declaring 2^32-1 elements',
    jobs: (ctx) => [
      {
        kind: 'huge-lengths' as const,
        connections: scale(ctx, 320, 1600),
        maxPayloadBytes: ctx.limits.maxPayloadBytes,
        closeWithinMs: ctx.limits.handshakeTimeoutMs + 3000,
      },
    ],
    checks: (ctx, reports, memory) => {
      const probes = (reports[0]?.probes ?? []) as Array<{
        name: string;
        beforeHandshake: boolean;
        sent: number;
        closedWithError: number;
        answeredWithError: number;
        noAnswer: number;
        codes: Record<string, number>;
      }>;
      const pre = probes.filter((p) => p.beforeHandshake);
      const post = probes.filter((p) => !p.beforeHandshake);
      const describe = (ps: typeof probes) =>
        ps
          .map(
            (p) =>
              `${p.name}: ${p.closedWithError + p.answeredWithError}/${p.sent} (${Object.keys(p.codes).join(',') || 'no error'})`,
          )
          .join('; ');
      return [
        check(
          'pre-handshake huge lengths closed with a protocol error',
          pre.length > 0 && pre.every((p) => p.sent > 0 && p.closedWithError === p.sent),
          describe(pre),
        ),
        check(
          'huge element counts answered with an error',
          post.length > 0 &&
            post.every((p) => p.sent > 0 && p.closedWithError + p.answeredWithError === p.sent),
          describe(post),
        ),
        check(
          'broker RSS rose by less than 32 MiB',
          memory.rssRise < 32 * MiB,
          `rose ${(memory.rssRise / MiB).toFixed(1)} MiB over the pre-attack baseline`,
        ),
        // 128 MiB: a new glibc malloc arena for a pool thread reserves 64 MiB of address space by
        // itself; reserving each declared frame (the defect) takes 40 × 8 MiB = 320 MiB here.
        check(
          'broker address space rose by less than 128 MiB (nothing reserved for declared lengths)',
          memory.virtualRise < 128 * MiB,
          `VmSize rose ${(memory.virtualRise / MiB).toFixed(1)} MiB over the pre-attack baseline (${scale(ctx, 320, 1600) / 8} connections declared ${ctx.limits.maxPayloadBytes / MiB} MiB each)`,
        ),
      ];
    },
  },
];

export function attackNamed(name: string): AttackDefinition | undefined {
  return ATTACKS.find((a) => a.name === name);
}
