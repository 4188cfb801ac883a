import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LeaderEpochCache } from '../../../src/cluster/replication/leader-epoch-cache.js';
import { type LeaderConfig, LeaderState } from '../../../src/cluster/replication/leader-state.js';
import type { LeaderAction } from '../../../src/cluster/replication/messages.js';
import { maxOffset, minOffset } from '../../../src/cluster/replication/offsets.js';

const BASE: LeaderConfig = {
  brokerId: 1,
  leaderEpoch: 5,
  replicas: [1, 2, 3],
  isr: [1, 2, 3],
  isrVersion: 10,
  replicaLagTimeMs: 100,
  minInsyncReplicas: 2,
  isrProposalRetryMs: 50,
};

function lead(
  overrides: Partial<LeaderConfig> = {},
  start: { logEndOffset?: bigint; localEnd?: bigint; highWatermark?: bigint; cache?: LeaderEpochCache } = {},
) {
  const cache = start.cache ?? new LeaderEpochCache([{ epoch: 3, startOffset: 0n }]);
  const logEndOffset = start.logEndOffset ?? 10n;
  const { leader, actions } = LeaderState.become({ ...BASE, ...overrides }, cache, {
    logStartOffset: 0n,
    logEndOffset,
    localEnd: start.localEnd ?? logEndOffset,
    highWatermark: start.highWatermark ?? 0n,
    nowMs: 0,
  });
  const fetch = (
    replicaId: number,
    fetchOffset: bigint,
    nowMs = 0,
    stableOffset = fetchOffset,
    leaderEpoch = 5,
  ) => leader.handleFetch({ replicaId, leaderEpoch, fetchOffset, stableOffset }, nowMs);
  return { leader, actions, cache, fetch };
}

const ofType = <T extends LeaderAction['type']>(actions: readonly LeaderAction[], type: T) =>
  actions.filter((action): action is Extract<LeaderAction, { type: T }> => action.type === type);

describe('LeaderState: taking over', () => {
  it('records its epoch at the log end and writes the checkpoint', () => {
    const { actions, cache } = lead();
    expect(cache.entries()).toEqual([
      { epoch: 3, startOffset: 0n },
      { epoch: 5, startOffset: 10n },
    ]);
    expect(LeaderEpochCache.decode(ofType(actions, 'write-epoch-checkpoint')[0]!.bytes).entries()).toEqual(
      cache.entries(),
    );
  });

  it('refuses an epoch older than the cache knows', () => {
    const cache = new LeaderEpochCache([{ epoch: 7, startOffset: 0n }]);
    expect(() => lead({}, { cache })).toThrow(/leader epoch or its start offset would go backwards/);
  });

  it('alone in its ISR, moves the high watermark to its own end at once', () => {
    const { leader, actions } = lead({ isr: [1] }, { logEndOffset: 10n, localEnd: 8n });
    expect(leader.highWatermark).toBe(8n);
    expect(ofType(actions, 'high-watermark')).toEqual([{ type: 'high-watermark', highWatermark: 8n }]);
  });
});

describe('LeaderState: high watermark', () => {
  it('is the smallest position in the ISR, and waits for every member to fetch in this epoch', () => {
    const { leader, fetch } = lead();
    fetch(2, 10n);
    expect(leader.highWatermark).toBe(0n); // follower 3 has not fetched in this epoch
    const { answer, actions } = fetch(3, 7n);
    expect(leader.highWatermark).toBe(7n);
    expect(answer).toMatchObject({ error: null, fetchOffset: 7n, endOffset: 10n, highWatermark: 7n });
    expect(ofType(actions, 'high-watermark')).toEqual([{ type: 'high-watermark', highWatermark: 7n }]);
  });

  it('never moves backwards, even when an older fetch arrives late', () => {
    const { leader, fetch } = lead();
    fetch(2, 9n);
    fetch(3, 9n);
    expect(leader.highWatermark).toBe(9n);
    fetch(3, 4n);
    expect(leader.highWatermark).toBe(9n);
    expect(leader.follower(3)?.position).toBe(9n);
  });

  it('counts a follower by what it reports as stable, and the leader by its own input', () => {
    const { leader, fetch } = lead({}, { logEndOffset: 10n, localEnd: 6n });
    fetch(2, 10n, 0, 8n);
    fetch(3, 10n, 0, 9n);
    expect(leader.highWatermark).toBe(6n); // the leader's own fsync holds it back
    leader.onLocalProgress({ logEndOffset: 10n, localEnd: 10n });
    expect(leader.highWatermark).toBe(8n);
  });

  it('keeps the high watermark it knew before leading, capped at its log end', () => {
    expect(lead({}, { highWatermark: 4n }).leader.highWatermark).toBe(4n);
    expect(lead({}, { highWatermark: 40n }).leader.highWatermark).toBe(10n);
  });

  // Model: the high watermark is the running maximum of min(positions in the maximal ISR).
  it('matches a model under random fetches and appends', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({
              replica: fc.constantFrom(2, 3),
              fraction: fc.double({ min: 0, max: 1, noNaN: true }),
            }),
            fc.record({ grow: fc.integer({ min: 1, max: 5 }) }),
          ),
          { maxLength: 40 },
        ),
        (steps) => {
          const { leader, fetch } = lead({ isr: [1, 2, 3] }, { logEndOffset: 0n });
          let logEnd = 0n;
          const best = new Map<number, bigint>();
          let model = 0n;
          for (const step of steps) {
            if ('grow' in step) {
              logEnd += BigInt(step.grow);
              leader.onLocalProgress({ logEndOffset: logEnd, localEnd: logEnd });
            } else {
              const offset = BigInt(
                Math.min(Math.floor(step.fraction * Number(logEnd + 1n)), Number(logEnd)),
              );
              fetch(step.replica, offset);
              best.set(step.replica, maxOffset(best.get(step.replica) ?? -1n, offset));
            }
            if (best.has(2) && best.has(3)) {
              const lowest = [logEnd, best.get(2)!, best.get(3)!].reduce(minOffset);
              if (lowest > model) model = lowest;
            }
            expect(leader.highWatermark).toBe(model);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('LeaderState: fencing and bad fetches', () => {
  it('answers a stale epoch FENCED_LEADER_EPOCH and a newer one UNKNOWN_LEADER_EPOCH', () => {
    const { fetch, leader } = lead();
    expect(fetch(2, 5n, 0, 5n, 4).answer.error).toBe('FENCED_LEADER_EPOCH');
    expect(fetch(2, 5n, 0, 5n, 6).answer.error).toBe('UNKNOWN_LEADER_EPOCH');
    expect(leader.handleEpochQuery({ replicaId: 2, leaderEpoch: 4, queryEpoch: 3 })).toEqual({
      error: 'FENCED_LEADER_EPOCH',
    });
    expect(leader.handleEpochQuery({ replicaId: 2, leaderEpoch: 6, queryEpoch: 3 })).toEqual({
      error: 'UNKNOWN_LEADER_EPOCH',
    });
    // Refused fetches change nothing.
    expect(leader.follower(2)?.position).toBeNull();
  });

  it('refuses a broker that is no replica, and offsets outside the log', () => {
    const { fetch } = lead();
    expect(fetch(9, 5n).answer.error).toBe('NOT_A_REPLICA');
    expect(fetch(1, 5n).answer.error).toBe('NOT_A_REPLICA');
    expect(fetch(2, 11n).answer.error).toBe('OFFSET_OUT_OF_RANGE');
  });

  it('answers a fetch below its log start OFFSET_OUT_OF_RANGE with the log start retention left', () => {
    const { fetch, leader, cache } = lead();
    expect(fetch(2, 11n).answer).toEqual({
      error: 'OFFSET_OUT_OF_RANGE',
      leaderEpoch: 5,
      logStartOffset: 0n,
    });
    expect(ofType(leader.onLogStartOffset(4n), 'write-epoch-checkpoint')).toHaveLength(1);
    expect(cache.entries()[0]).toEqual({ epoch: 3, startOffset: 4n });
    expect(fetch(2, 3n).answer).toEqual({ error: 'OFFSET_OUT_OF_RANGE', leaderEpoch: 5, logStartOffset: 4n });
    expect(fetch(2, 4n).answer).toMatchObject({ error: null, logStartOffset: 4n });
  });

  it('answers OffsetsForLeaderEpoch from its epoch cache and its log end', () => {
    const { leader } = lead();
    expect(leader.handleEpochQuery({ replicaId: 2, leaderEpoch: 5, queryEpoch: 3 })).toEqual({
      error: null,
      epoch: 3,
      endOffset: 10n,
    });
    expect(leader.handleEpochQuery({ replicaId: 2, leaderEpoch: 5, queryEpoch: 4 })).toEqual({
      error: null,
      epoch: 3,
      endOffset: 10n,
    });
    leader.onLocalProgress({ logEndOffset: 14n, localEnd: 14n });
    expect(leader.handleEpochQuery({ replicaId: 2, leaderEpoch: 5, queryEpoch: 5 })).toEqual({
      error: null,
      epoch: 5,
      endOffset: 14n,
    });
  });

  it('after resigning answers everything NOT_LEADER', () => {
    const { leader, fetch } = lead();
    leader.resign();
    expect(fetch(2, 5n).answer.error).toBe('NOT_LEADER');
    expect(leader.checkAppend(1)).toBe('NOT_LEADER');
  });
});

describe('LeaderState: ISR', () => {
  it('proposes removing a follower that has not caught up for longer than replicaLagTimeMs', () => {
    const { leader, fetch } = lead();
    fetch(2, 10n, 20);
    fetch(3, 4n, 20);
    expect(leader.tick(100)).toEqual([]); // follower 3 counted as caught up when the epoch began
    expect(leader.tick(101)).toEqual([{ type: 'propose-isr', leaderEpoch: 5, isrVersion: 10, isr: [1, 2] }]);
    expect(leader.pendingIsr).toEqual([1, 2]);
    // Until the controller writes it, the removed member still counts for the high watermark.
    expect(leader.maximalIsr).toEqual([1, 2, 3]);
    expect(leader.highWatermark).toBe(4n);
    leader.applyIsr([1, 2], 11, 110);
    expect(leader.isr).toEqual([1, 2]);
    expect(leader.highWatermark).toBe(10n);
  });

  it("Kafka's caught-up rule: reaching the leader's end as of the previous fetch counts from then", () => {
    const { leader, fetch } = lead({ replicaLagTimeMs: 100 });
    fetch(3, 2n, 50); // leader end was 10 at this fetch
    leader.onLocalProgress({ logEndOffset: 20n, localEnd: 20n });
    fetch(3, 10n, 140); // holds what the leader had at t=50: caught up at 50
    expect(leader.follower(3)?.lastCaughtUpTimeMs).toBe(50);
    fetch(2, 20n, 140);
    expect(leader.tick(150)).toEqual([]);
    expect(leader.tick(151)).toEqual([{ type: 'propose-isr', leaderEpoch: 5, isrVersion: 10, isr: [1, 2] }]);
  });

  it('a follower holding the whole log is in sync however long ago it caught up', () => {
    const { leader, fetch } = lead();
    fetch(2, 10n, 0);
    fetch(3, 10n, 0);
    expect(leader.tick(10_000)).toEqual([]);
  });

  it('proposes adding a follower once it reaches the high watermark and this epoch', () => {
    const { leader, fetch } = lead({ isr: [1, 2] }, { logEndOffset: 10n });
    fetch(2, 10n);
    expect(leader.highWatermark).toBe(10n);
    expect(ofType(fetch(3, 9n).actions, 'propose-isr')).toEqual([]);
    const { actions } = fetch(3, 10n);
    expect(ofType(actions, 'propose-isr')).toEqual([
      { type: 'propose-isr', leaderEpoch: 5, isrVersion: 10, isr: [1, 2, 3] },
    ]);
    // Proposed: it holds the high watermark back from now on, since the controller may commit it.
    leader.onLocalProgress({ logEndOffset: 15n, localEnd: 15n });
    fetch(2, 15n);
    expect(leader.highWatermark).toBe(10n);
    fetch(3, 12n);
    expect(leader.highWatermark).toBe(12n);
  });

  it('does not add a follower that has not fetched past the start of this epoch', () => {
    // The high watermark (4) is below the epoch start (10): a follower at 6 has not truncated
    // against this leader yet.
    const { fetch } = lead({ isr: [1, 2] }, { logEndOffset: 10n, highWatermark: 4n });
    expect(ofType(fetch(3, 6n).actions, 'propose-isr')).toEqual([]);
    expect(ofType(fetch(3, 10n).actions, 'propose-isr')).toHaveLength(1);
  });

  it('keeps a proposal pending when the answer is at the same version (a late reply), and sends it again', () => {
    const { leader, fetch } = lead({ isr: [1, 2] }, { logEndOffset: 10n });
    fetch(2, 10n, 0);
    fetch(3, 10n, 0);
    expect(leader.pendingIsr).toEqual([1, 2, 3]);
    // A reply to an earlier attempt, written before this proposal reached the controller.
    expect(leader.applyIsr([1, 2], 10, 5)).toEqual([]);
    expect(leader.pendingIsr).toEqual([1, 2, 3]);
    expect(leader.maximalIsr).toEqual([1, 2, 3]);
    expect(leader.tick(49)).toEqual([]);
    expect(leader.tick(50)).toEqual([
      { type: 'propose-isr', leaderEpoch: 5, isrVersion: 10, isr: [1, 2, 3] },
    ]);
    // A newer version settles it, whatever it says.
    leader.applyIsr([1, 2], 11, 60);
    expect(leader.pendingIsr).toBeNull();
    expect(leader.isrVersion).toBe(11);
    expect(leader.applyIsr([1], 9, 70)).toEqual([]);
    expect(leader.isr).toEqual([1, 2]);
  });
});

describe('LeaderState: acks', () => {
  it('refuses acks=all when the ISR is smaller than minInsyncReplicas, never acks 0 or 1', () => {
    const { leader } = lead({ isr: [1], minInsyncReplicas: 2 });
    expect(leader.checkAppend('all')).toBe('NOT_ENOUGH_REPLICAS');
    expect(leader.checkAppend(1)).toBeNull();
    expect(leader.checkAppend(0)).toBeNull();
  });

  it('acknowledges acks=all once the high watermark passes the last offset', () => {
    const { leader, fetch } = lead();
    leader.onLocalProgress({ logEndOffset: 13n, localEnd: 13n });
    expect(leader.awaitReplication(7, 12n, 1_000)).toEqual([]);
    fetch(2, 13n);
    expect(ofType(fetch(3, 12n).actions, 'complete-produce')).toEqual([]);
    expect(ofType(fetch(3, 13n).actions, 'complete-produce')).toEqual([
      { type: 'complete-produce', requestId: 7, error: null },
    ]);
    // Already replicated: answered at once.
    expect(leader.awaitReplication(8, 12n, 1_000)).toEqual([
      { type: 'complete-produce', requestId: 8, error: null },
    ]);
  });

  it('answers NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR shrank below the minimum before replication', () => {
    const { leader, fetch } = lead({ minInsyncReplicas: 3 });
    leader.onLocalProgress({ logEndOffset: 11n, localEnd: 11n });
    leader.awaitReplication(1, 10n, 1_000);
    fetch(2, 11n, 0);
    leader.tick(101); // follower 3 never fetched: proposed out
    const actions = leader.applyIsr([1, 2], 11, 102);
    expect(ofType(actions, 'complete-produce')).toEqual([
      { type: 'complete-produce', requestId: 1, error: 'NOT_ENOUGH_REPLICAS_AFTER_APPEND' },
    ]);
    expect(leader.checkAppend('all')).toBe('NOT_ENOUGH_REPLICAS');
  });

  it('checks appends and waiting requests against a minInsyncReplicas changed while leading', () => {
    const { leader, fetch } = lead({ isr: [1, 2], minInsyncReplicas: 2 });
    leader.onLocalProgress({ logEndOffset: 11n, localEnd: 11n });
    leader.awaitReplication(1, 10n, 1_000);
    expect(leader.checkAppend('all')).toBeNull();
    leader.setMinInsyncReplicas(3);
    expect(leader.checkAppend('all')).toBe('NOT_ENOUGH_REPLICAS');
    expect(ofType(fetch(2, 11n).actions, 'complete-produce')).toEqual([
      { type: 'complete-produce', requestId: 1, error: 'NOT_ENOUGH_REPLICAS_AFTER_APPEND' },
    ]);
    leader.setMinInsyncReplicas(1);
    expect(leader.checkAppend('all')).toBeNull();
  });

  it('times out waiters at their deadline and fails them all on resignation', () => {
    const { leader } = lead();
    leader.onLocalProgress({ logEndOffset: 12n, localEnd: 12n });
    leader.awaitReplication(1, 10n, 100);
    leader.awaitReplication(2, 11n, 300);
    expect(ofType(leader.tick(99), 'complete-produce')).toEqual([]);
    expect(ofType(leader.tick(100), 'complete-produce')).toEqual([
      { type: 'complete-produce', requestId: 1, error: 'REQUEST_TIMEOUT' },
    ]);
    expect(leader.resign()).toEqual([{ type: 'complete-produce', requestId: 2, error: 'NOT_LEADER' }]);
    expect(leader.awaitReplication(3, 11n, 300)).toEqual([
      { type: 'complete-produce', requestId: 3, error: 'NOT_LEADER' },
    ]);
  });
});
