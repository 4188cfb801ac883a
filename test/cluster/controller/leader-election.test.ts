import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NO_LEADER, type PartitionState } from '../../../src/cluster/control-plane/metadata-records.js';
import { decidePartition, electPreferred } from '../../../src/cluster/controller/leader-election.js';
import { assignReplicas } from '../../../src/cluster/controller/replica-assignment.js';

const live = (...ids: number[]) => new Set(ids);

describe('assignReplicas', () => {
  it('rotates leaders and shifts followers round by round', () => {
    expect(assignReplicas([4, 2, 3, 1], 8, 3)).toEqual([
      [1, 2, 3],
      [2, 3, 4],
      [3, 4, 1],
      [4, 1, 2],
      [1, 3, 4],
      [2, 4, 1],
      [3, 1, 2],
      [4, 2, 3],
    ]);
  });

  it('refuses a replication factor above the live brokers, naming them', () => {
    expect(() => assignReplicas([1, 2], 1, 3)).toThrow(
      'replicationFactor 3 is larger than the 2 live broker(s) (1, 2)',
    );
    expect(() => assignReplicas([], 1, 1)).toThrow('(none)');
    expect(() => assignReplicas([1], 1, 0)).toThrow('at least 1');
  });

  it('always places distinct replicas and spreads leadership evenly', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 50 }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 0, max: 100 }),
        (brokers, partitions, start) => {
          const rf = 1 + (start % brokers.length);
          const assignment = assignReplicas(brokers, partitions, rf, start);
          expect(assignment).toHaveLength(partitions);
          const leaders = new Map<number, number>();
          for (const replicas of assignment) {
            expect(new Set(replicas).size).toBe(rf);
            for (const id of replicas) expect(brokers).toContain(id);
            leaders.set(replicas[0]!, (leaders.get(replicas[0]!) ?? 0) + 1);
          }
          const counts = [...leaders.values()];
          expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
        },
      ),
    );
  });
});

describe('decidePartition', () => {
  const replicas = [1, 2, 3];

  it('elects the first live replica for a new partition, epoch 0', () => {
    expect(
      decidePartition({ replicas, state: undefined, live: live(2, 3), uncleanElectionAllowed: false }),
    ).toEqual({
      state: { leader: 2, leaderEpoch: 0, isr: [2, 3] },
      unclean: false,
    });
  });

  it('changes nothing while the leader and the ISR are alive', () => {
    const state = { leader: 1, leaderEpoch: 4, isr: [1, 2] };
    expect(
      decidePartition({ replicas, state, live: live(1, 2, 3), uncleanElectionAllowed: false }),
    ).toBeNull();
  });

  it('drops a dead follower from the ISR without a new epoch', () => {
    const state = { leader: 1, leaderEpoch: 4, isr: [1, 2, 3] };
    expect(
      decidePartition({ replicas, state, live: live(1, 3), uncleanElectionAllowed: false })?.state,
    ).toEqual({
      leader: 1,
      leaderEpoch: 4,
      isr: [1, 3],
    });
  });

  it('moves leadership to a live ISR member with a new epoch when the leader dies', () => {
    const state = { leader: 1, leaderEpoch: 4, isr: [1, 3] };
    expect(decidePartition({ replicas, state, live: live(2, 3), uncleanElectionAllowed: false })).toEqual({
      state: { leader: 3, leaderEpoch: 5, isr: [3] },
      unclean: false,
    });
  });

  it('goes offline, keeping the last ISR member and fencing with a new epoch, unless unclean election is allowed', () => {
    const state = { leader: 1, leaderEpoch: 4, isr: [1] };
    const offline = decidePartition({ replicas, state, live: live(2, 3), uncleanElectionAllowed: false });
    expect(offline).toEqual({ state: { leader: NO_LEADER, leaderEpoch: 5, isr: [1] }, unclean: false });
    // Asked again while nothing changed: no write.
    expect(
      decidePartition({ replicas, state: offline!.state, live: live(2, 3), uncleanElectionAllowed: false }),
    ).toBeNull();
    // The last ISR member returns: it leads again.
    expect(
      decidePartition({ replicas, state: offline!.state, live: live(1, 2), uncleanElectionAllowed: false }),
    ).toEqual({
      state: { leader: 1, leaderEpoch: 6, isr: [1] },
      unclean: false,
    });
    expect(decidePartition({ replicas, state, live: live(2, 3), uncleanElectionAllowed: true })).toEqual({
      state: { leader: 2, leaderEpoch: 5, isr: [2] },
      unclean: true,
    });
  });

  it('never elects outside the ISR cleanly, never leaves a leader outside its ISR, never lowers an epoch', () => {
    const state = fc.record({
      leader: fc.constantFrom(NO_LEADER, 1, 2, 3),
      leaderEpoch: fc.integer({ min: 0, max: 10 }),
      isr: fc.subarray([1, 2, 3], { minLength: 1 }),
    });
    fc.assert(
      fc.property(
        fc.option(state, { nil: undefined }),
        fc.subarray([1, 2, 3]),
        fc.boolean(),
        (raw, alive, unclean) => {
          const current: PartitionState | undefined =
            raw === undefined
              ? undefined
              : {
                  ...raw,
                  leader: raw.leader !== NO_LEADER && !raw.isr.includes(raw.leader) ? NO_LEADER : raw.leader,
                };
          const result = decidePartition({
            replicas,
            state: current,
            live: new Set(alive),
            uncleanElectionAllowed: unclean,
          });
          const next = result?.state ?? current!;
          expect(next).toBeDefined();
          if (next.leader !== NO_LEADER) {
            expect(next.isr).toContain(next.leader);
            expect(alive).toContain(next.leader);
            if (!result?.unclean && current !== undefined && next.leader !== current.leader)
              expect(current.isr).toContain(next.leader);
          }
          expect(next.isr.length).toBeGreaterThan(0);
          if (current !== undefined) {
            expect(next.leaderEpoch).toBeGreaterThanOrEqual(current.leaderEpoch);
            if (next.leader !== current.leader) expect(next.leaderEpoch).toBeGreaterThan(current.leaderEpoch);
          }
        },
      ),
    );
  });
});

describe('decidePartition with drained brokers', () => {
  const replicas = [1, 2, 3];
  const leading1: PartitionState = { leader: 1, leaderEpoch: 4, isr: [1, 2, 3] };

  it('moves leadership off a drained leader to the next live in-sync replica, with a new epoch', () => {
    expect(
      decidePartition({
        replicas,
        state: leading1,
        live: live(1, 2, 3),
        uncleanElectionAllowed: false,
        drained: live(1),
      }),
    ).toEqual({ state: { leader: 2, leaderEpoch: 5, isr: [1, 2, 3] }, unclean: false });
    // Passing over a drained follower too.
    expect(
      decidePartition({
        replicas,
        state: leading1,
        live: live(1, 2, 3),
        uncleanElectionAllowed: false,
        drained: live(1, 2),
      })?.state.leader,
    ).toBe(3);
  });

  it('keeps a drained leader when no other live in-sync replica can lead', () => {
    const alone: PartitionState = { leader: 1, leaderEpoch: 4, isr: [1] };
    expect(
      decidePartition({
        replicas,
        state: alone,
        live: live(1, 2, 3),
        uncleanElectionAllowed: false,
        drained: live(1),
      }),
    ).toBeNull();
    expect(
      decidePartition({
        replicas,
        state: leading1,
        live: live(1),
        uncleanElectionAllowed: false,
        drained: live(1),
      }),
    ).toEqual({ state: { leader: 1, leaderEpoch: 4, isr: [1] }, unclean: false });
  });

  it('elects a drained broker only when it is the only clean choice', () => {
    const offline: PartitionState = { leader: NO_LEADER, leaderEpoch: 5, isr: [1, 2] };
    expect(
      decidePartition({
        replicas,
        state: offline,
        live: live(1, 2),
        uncleanElectionAllowed: false,
        drained: live(1),
      })?.state.leader,
    ).toBe(2);
    expect(
      decidePartition({
        replicas,
        state: offline,
        live: live(1),
        uncleanElectionAllowed: false,
        drained: live(1),
      })?.state.leader,
    ).toBe(1);
  });
});

describe('electPreferred', () => {
  const state: PartitionState = { leader: 2, leaderEpoch: 7, isr: [1, 2, 3] };

  it('gives leadership back to the first replica when it is live, in sync and not drained', () => {
    expect(electPreferred([1, 2, 3], state, live(1, 2, 3), live())).toEqual({
      leader: 1,
      leaderEpoch: 8,
      isr: [1, 2, 3],
    });
  });

  it('changes nothing when the preferred replica leads, is down, out of the ISR or drained', () => {
    expect(electPreferred([2, 1, 3], state, live(1, 2, 3), live())).toBeNull();
    expect(electPreferred([1, 2, 3], state, live(2, 3), live())).toBeNull();
    expect(electPreferred([1, 2, 3], { ...state, isr: [2, 3] }, live(1, 2, 3), live())).toBeNull();
    expect(electPreferred([1, 2, 3], state, live(1, 2, 3), live(1))).toBeNull();
    expect(electPreferred([1, 2, 3], undefined, live(1, 2, 3), live())).toBeNull();
  });
});
