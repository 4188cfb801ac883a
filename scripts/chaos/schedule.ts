// The nemesis's plan: a list of faults drawn from a seed, each held for a while and then healed,
// with a quiet gap before the next. A step names a role (the leader of a partition, a follower,
// the controller), not a broker: who has the role is looked up when the step starts, and the
// step's `pick` chooses among the candidates, so the same seed gives the same kind of schedule
// whatever broker happens to lead. `--replay` runs a recorded schedule as it is.

import { Random } from './random.js';

export const FAULT_KINDS = [
  /** kill -9 of a partition's leader; started again when the step heals. */
  'kill-leader',
  /** kill -9 of a follower of a partition. */
  'kill-follower',
  /** kill -9 of the controller. */
  'kill-controller',
  /**
   * kill -9 of a leader, then of the broker that takes over, while the other brokers (slowed
   * down) reconcile their logs with it.
   */
  'kill-leader-twice',
  /**
   * kill -9 of a leader, then of the broker that takes over at the moment another survivor cuts
   * its log (seen as a log file that shrinks) while it reconciles with it: the new leader dies
   * before that survivor fetched again, so what it cut must not have been acknowledged.
   */
  'kill-leader-at-truncation',
  /**
   * kill -9 of a follower; when it is back and catching up (live, maybe not yet in the ISR),
   * kill -9 of the leader.
   */
  'kill-follower-then-leader',
  /**
   * SIGSTOP of a leader's followers for a moment shorter than the fencing time, and kill -9 of the
   * leader in that moment: whatever the leader acknowledged while they were stopped must already
   * be on them (it is, unless the leader acknowledges before its ISR has the batch).
   */
  'kill-leader-followers-paused',
  /** SIGSTOP of a partition's leader (SIGCONT when the step heals), longer than the lease. */
  'pause-leader',
  /** SIGSTOP of a follower. */
  'pause-follower',
  /** A leader cut off from every other broker and from etcd (clients still reach it). */
  'isolate-leader',
  /** A leader cut off from its followers only (it still reaches etcd and the controller). */
  'isolate-leader-from-followers',
  /** The brokers split in two groups (a minority and a majority), etcd with the majority. */
  'split',
  /** Etcd cut off from every broker. */
  'cut-etcd',
  /** Etcd killed (SIGKILL) and started again on its data directory. */
  'restart-etcd',
  /** The data disk of one broker filled to the last byte; freed, and the broker restarted, on heal. */
  'disk-full',
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

export const NETWORK_KINDS: readonly FaultKind[] = [
  'isolate-leader',
  'isolate-leader-from-followers',
  'split',
  'cut-etcd',
];

export interface FaultStep {
  readonly kind: FaultKind;
  /** Chooses the partition and the broker among the candidates when the step starts. */
  readonly pick: number;
  /** How long the fault lasts before it is healed (ms). */
  readonly holdMs: number;
  /** Quiet time after the heal (ms). */
  readonly gapMs: number;
}

/** Faults from `kinds` filling `durationMs`, all from `seed`. */
export function planSchedule(seed: number, durationMs: number, kinds: readonly FaultKind[]): FaultStep[] {
  if (kinds.length === 0) return [];
  const random = new Random(seed);
  const steps: FaultStep[] = [];
  let total = 0;
  while (total < durationMs) {
    const kind = random.pick(kinds);
    // Pauses outlast the brokers' lease (1 s) by seconds, so the cluster fences the paused one.
    const holdMs = kind.startsWith('pause') ? random.int(3_000, 6_000) : random.int(1_500, 5_000);
    const gapMs = random.int(2_000, 4_000);
    steps.push({ kind, pick: random.int(0, 1_000_000), holdMs, gapMs });
    total += holdMs + gapMs;
  }
  return steps;
}

export function parseKinds(list: string): FaultKind[] {
  return list.split(',').map((name) => {
    const kind = FAULT_KINDS.find((known) => known === name.trim());
    if (kind === undefined) throw new Error(`unknown fault kind ${name}; known: ${FAULT_KINDS.join(', ')}`);
    return kind;
  });
}
