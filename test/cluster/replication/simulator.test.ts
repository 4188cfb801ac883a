// The replication state machines under thousands of seeded fault schedules (time-boxed: a few
// seconds, longer with SIM_BUDGET_MS), and the proof that the checker catches a wrong rule: four
// deliberately broken variants must each be caught within a fixed range of seeds.
// A failure prints its options (seed included); replay that run alone, with a trace of its events:
//   SIM_OPTIONS='<the printed JSON>' npx vitest run test/cluster/replication/simulator.test.ts

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FollowerState } from '../../../src/cluster/replication/follower-state.js';
import type { LeaderEpochCache } from '../../../src/cluster/replication/leader-epoch-cache.js';
import {
  type LeaderConfig,
  type LeaderStart,
  LeaderState,
} from '../../../src/cluster/replication/leader-state.js';
import type { FollowerAction } from '../../../src/cluster/replication/messages.js';
import { DEFAULT_SIMULATION, type SimulationOptions, simulate } from './simulator.js';

// CI runs the short budget too (a long run is on demand with SIM_BUDGET_MS): a 30 s CI budget found
// seed 1362182267, a schedule whose replicas do not converge within 1 s of healing (docs/replication.md,
// "Open"); it is a liveness gap of the state machine, not yet wired into the broker, and is replayed
// with SIM_OPTIONS until it is fixed.
const BUDGET_MS = Number(process.env.SIM_BUDGET_MS ?? 4_000);

/** Truncates to its high watermark instead of where its history and the leader's part (pre-KIP-101). */
class TruncateToHighWatermarkFollower extends FollowerState {
  protected override truncateFor(_epoch: number, _endOffset: bigint, actions: FollowerAction[]): boolean {
    this.truncateTo(this.highWatermark, actions);
    return true;
  }
}

/** Moves the high watermark to the furthest replica instead of the slowest in-sync one. */
class MaxHighWatermarkLeader extends LeaderState {
  static override become(config: LeaderConfig, cache: LeaderEpochCache, start: LeaderStart) {
    const leader = new MaxHighWatermarkLeader(config, cache, start);
    return { leader, actions: leader.begin() };
  }

  protected override computeHighWatermark(): bigint | null {
    const { localEnd, followers } = this.positions();
    let highest = localEnd;
    for (const position of followers.values())
      if (position !== null && position > highest) highest = position;
    return highest;
  }
}

/**
 * Waits only for the committed ISR: a member proposed for addition does not hold the high
 * watermark back, although the controller may commit it (and then elect it) at any moment.
 */
class CommittedIsrLeader extends LeaderState {
  static override become(config: LeaderConfig, cache: LeaderEpochCache, start: LeaderStart) {
    const leader = new CommittedIsrLeader(config, cache, start);
    return { leader, actions: leader.begin() };
  }

  protected override computeHighWatermark(): bigint | null {
    const { localEnd, followers } = this.positions();
    let lowest = localEnd;
    for (const id of this.isr) {
      if (!followers.has(id)) continue; // the leader itself
      const position = followers.get(id) ?? null;
      if (position === null) return null;
      if (position < lowest) lowest = position;
    }
    return lowest;
  }
}

const faults = fc.record({
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  replicas: fc.integer({ min: 3, max: 5 }),
  minInsyncFraction: fc.double({ min: 0, max: 1, noNaN: true }),
  lossRate: fc.constantFrom(0, 0.05, 0.2),
  crashRate: fc.constantFrom(0.005, 0.02, 0.04),
  leaderMoveRate: fc.constantFrom(0, 0.01, 0.05),
  maxDelayMs: fc.constantFrom(2, 8, 20),
  durability: fc.constantFrom('always' as const, 'interval' as const),
});

function optionsOf(drawn: {
  seed: number;
  replicas: number;
  minInsyncFraction: number;
  lossRate: number;
  crashRate: number;
  leaderMoveRate: number;
  maxDelayMs: number;
  durability: 'always' | 'interval';
}): SimulationOptions {
  const { minInsyncFraction, ...rest } = drawn;
  return {
    ...DEFAULT_SIMULATION,
    ...rest,
    minInsyncReplicas: 1 + Math.floor(minInsyncFraction * drawn.replicas * 0.999),
  };
}

/** The first seed in [1, seeds] whose run the checker rejects, with its violations. */
function firstCaught(
  variant: Partial<SimulationOptions>,
  seeds: number,
): { seed: number; violations: readonly string[] } | null {
  for (let seed = 1; seed <= seeds; seed++) {
    const result = simulate({ ...DEFAULT_SIMULATION, replicas: 3 + (seed % 3), seed, ...variant });
    if (result.violations.length > 0) return { seed, violations: result.violations };
  }
  return null;
}

describe('replication simulator', () => {
  it('converges when fetch answers outlive the fetch timeout (seed 1362182267: late answers are used)', () => {
    const result = simulate({
      ...DEFAULT_SIMULATION,
      replicas: 4,
      minInsyncReplicas: 1,
      durationMs: 400,
      lossRate: 0,
      maxDelayMs: 20,
      crashRate: 0.04,
      leaderMoveRate: 0.05,
      durability: 'interval',
      seed: 1362182267,
    });
    expect(result.violations).toEqual([]);
    expect(result.stats.converged).toBe(1);
  });

  it('keeps every invariant over thousands of seeded fault schedules', () => {
    const replay = process.env.SIM_OPTIONS;
    if (replay !== undefined) {
      const options: SimulationOptions = { ...DEFAULT_SIMULATION, ...JSON.parse(replay) };
      const result = simulate({ ...options, trace: (line) => console.log(line) });
      expect(result.violations, replay).toEqual([]);
      return;
    }
    let runs = 0;
    const totals = { produced: 0, ackedAll: 0, crashes: 0, elections: 0, isrChanges: 0, converged: 0 };
    fc.assert(
      fc.property(faults, (drawn) => {
        const options = optionsOf(drawn);
        const result = simulate(options);
        runs++;
        for (const key of Object.keys(totals) as (keyof typeof totals)[]) totals[key] += result.stats[key];
        if (result.violations.length > 0)
          throw new Error(
            `seed ${options.seed} (${JSON.stringify(options)}): ${result.violations.slice(0, 3).join('; ')}`,
          );
      }),
      { numRuns: 1_000_000, interruptAfterTimeLimit: BUDGET_MS, markInterruptAsFailure: false },
    );
    console.log(`replication simulator: ${runs} schedules in ${BUDGET_MS} ms, ${JSON.stringify(totals)}`);
    // The schedules did exercise the faults, not just the happy path.
    expect(runs).toBeGreaterThan(100);
    expect(totals.crashes).toBeGreaterThan(runs);
    expect(totals.elections).toBeGreaterThan(runs);
    expect(totals.ackedAll).toBeGreaterThan(runs);
    expect(totals.converged).toBe(runs);
  });

  it('is deterministic: the same seed gives the same run', () => {
    const options = { ...DEFAULT_SIMULATION, seed: 424242, replicas: 4 };
    const lines: string[][] = [[], []];
    for (const run of [0, 1]) simulate({ ...options, trace: (line) => lines[run]!.push(line) });
    expect(lines[0]!.length).toBeGreaterThan(50);
    expect(lines[1]).toEqual(lines[0]);
  });

  describe('catches a deliberately broken rule', () => {
    it('followers that truncate to the high watermark instead of the epoch boundary', () => {
      const caught = firstCaught(
        { follower: (config, cache, start) => new TruncateToHighWatermarkFollower(config, cache, start) },
        400,
      );
      expect(caught, 'no seed in 1..400 caught it').not.toBeNull();
      console.log(`truncate-to-high-watermark caught at seed ${caught?.seed}: ${caught?.violations[0]}`);
    });

    it('a high watermark taken from the furthest replica', () => {
      const caught = firstCaught({ leader: MaxHighWatermarkLeader.become }, 400);
      expect(caught, 'no seed in 1..400 caught it').not.toBeNull();
      console.log(`max high watermark caught at seed ${caught?.seed}: ${caught?.violations[0]}`);
    });

    it('a high watermark that ignores a member proposed for the ISR', () => {
      const caught = firstCaught({ leader: CommittedIsrLeader.become }, 400);
      expect(caught, 'no seed in 1..400 caught it').not.toBeNull();
      console.log(`committed-ISR high watermark caught at seed ${caught?.seed}: ${caught?.violations[0]}`);
    });

    it('leader election from outside the ISR', () => {
      const caught = firstCaught({ election: 'any-live-replica' }, 400);
      expect(caught, 'no seed in 1..400 caught it').not.toBeNull();
      console.log(`unclean election caught at seed ${caught?.seed}: ${caught?.violations[0]}`);
    });
  });
});
