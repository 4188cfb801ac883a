import { describe, expect, it } from 'vitest';
import { type FollowerConfig, FollowerState } from '../../../src/cluster/replication/follower-state.js';
import { LeaderEpochCache } from '../../../src/cluster/replication/leader-epoch-cache.js';
import { LeaderState } from '../../../src/cluster/replication/leader-state.js';
import type { FollowerAction, ReplicaBatch } from '../../../src/cluster/replication/messages.js';

const CONFIG: FollowerConfig = {
  brokerId: 2,
  leaderId: 1,
  leaderEpoch: 6,
  reportStableOffset: false,
  requestTimeoutMs: 100,
  idleFetchBackoffMs: 10,
  errorBackoffMs: 20,
};

const cacheOf = (...entries: [number, number][]) =>
  new LeaderEpochCache(entries.map(([epoch, start]) => ({ epoch, startOffset: BigInt(start) })));

function follow(
  cache: LeaderEpochCache,
  logEnd: bigint,
  options: { highWatermark?: bigint; stable?: bigint; config?: Partial<FollowerConfig> } = {},
) {
  return new FollowerState({ ...CONFIG, ...options.config }, cache, {
    logEndOffset: logEnd,
    stableOffset: options.stable ?? logEnd,
    highWatermark: options.highWatermark ?? 0n,
    nowMs: 0,
  });
}

const ofType = <T extends FollowerAction['type']>(actions: readonly FollowerAction[], type: T) =>
  actions.filter((action): action is Extract<FollowerAction, { type: T }> => action.type === type);

function onlyRequest(actions: readonly FollowerAction[]) {
  const requests = actions.filter((a) => a.type === 'send-fetch' || a.type === 'send-epoch-query');
  expect(requests).toHaveLength(1);
  return requests[0]!;
}

const batch = (offset: number, epoch: number): ReplicaBatch => ({
  baseOffset: BigInt(offset),
  lastOffset: BigInt(offset),
  leaderEpoch: epoch,
  bytes: Buffer.from([offset]),
});

/** Runs the truncation protocol against a real leader's epoch cache; returns the follower's actions. */
function truncateAgainst(follower: FollowerState, leaderCache: LeaderEpochCache, leaderLogEnd: bigint) {
  const { leader } = LeaderState.become(
    {
      brokerId: 1,
      leaderEpoch: 6,
      replicas: [1, 2],
      isr: [1],
      isrVersion: 1,
      replicaLagTimeMs: 100,
      minInsyncReplicas: 1,
      isrProposalRetryMs: 50,
    },
    leaderCache,
    { logStartOffset: 0n, logEndOffset: leaderLogEnd, localEnd: leaderLogEnd, highWatermark: 0n, nowMs: 0 },
  );
  const all: FollowerAction[] = [];
  let actions = follower.poll(0);
  for (let round = 0; round < 10; round++) {
    all.push(...actions);
    const request = actions.find((a) => a.type === 'send-epoch-query');
    if (request === undefined) break;
    actions = follower.onEpochAnswer(request.requestId, leader.handleEpochQuery(request.query), 0);
  }
  return all;
}

describe('FollowerState: truncation (OffsetsForLeaderEpoch)', () => {
  it('cuts where its history and the leader part, not at the high watermark (KIP-101)', () => {
    // Follower: epoch 1 at 0..4, epoch 2 (a leader that lost its election) at 5..7.
    // Leader:   epoch 1 at 0..5, epoch 3 from 6. Agreement ends at 5.
    const follower = follow(cacheOf([1, 0], [2, 5]), 8n, { highWatermark: 2n });
    const actions = truncateAgainst(follower, cacheOf([1, 0], [3, 6]), 9n);
    expect(ofType(actions, 'send-epoch-query').map((a) => a.query.queryEpoch)).toEqual([2]);
    expect(ofType(actions, 'truncate')).toEqual([{ type: 'truncate', offset: 5n }]);
    expect(follower.phase).toBe('fetching');
    expect(follower.logEndOffset).toBe(5n);
    const fetch = actions.at(-1)!;
    expect(fetch).toMatchObject({ type: 'send-fetch', to: 1, request: { fetchOffset: 5n, leaderEpoch: 6 } });
  });

  it('keeps its whole log when it agrees with the leader, whatever its high watermark', () => {
    const follower = follow(cacheOf([1, 0], [3, 6]), 9n, { highWatermark: 0n });
    const actions = truncateAgainst(follower, cacheOf([1, 0], [3, 6]), 12n);
    expect(ofType(actions, 'truncate')).toEqual([]);
    expect(follower.logEndOffset).toBe(9n);
    expect(actions.at(-1)).toMatchObject({ type: 'send-fetch', request: { fetchOffset: 9n } });
  });

  it('cuts to the leader end of the shared epoch when the leader has less of it', () => {
    const follower = follow(cacheOf([1, 0], [3, 6]), 12n);
    const actions = truncateAgainst(follower, cacheOf([1, 0], [3, 6], [5, 9]), 15n);
    expect(ofType(actions, 'truncate')).toEqual([{ type: 'truncate', offset: 9n }]);
  });

  it('asks again with the answered epoch when the leader does not have ours (KIP-279)', () => {
    // Follower: 1@0, 2@4, 4@6, log end 9. Leader: 1@0, 3@5, 5@8, log end 12.
    // Ask 4 → leader (3, 8); we lack 3: cut epochs above 2 (at 6), ask 2 → leader (1, 5); we end
    // epoch 1 at 4: cut at 4.
    const cache = cacheOf([1, 0], [2, 4], [4, 6]);
    const follower = follow(cache, 9n);
    const actions = truncateAgainst(follower, cacheOf([1, 0], [3, 5], [5, 8]), 12n);
    expect(ofType(actions, 'send-epoch-query').map((a) => a.query.queryEpoch)).toEqual([4, 2]);
    expect(ofType(actions, 'truncate')).toEqual([
      { type: 'truncate', offset: 6n },
      { type: 'truncate', offset: 4n },
    ]);
    expect(cache.entries()).toEqual([{ epoch: 1, startOffset: 0n }]);
    const checkpoints = ofType(actions, 'write-epoch-checkpoint');
    expect(LeaderEpochCache.decode(checkpoints.at(-1)!.bytes).entries()).toEqual(cache.entries());
    expect(actions.at(-1)).toMatchObject({ type: 'send-fetch', request: { fetchOffset: 4n } });
  });

  it('empties a log whose every epoch is newer than what the leader answers', () => {
    const follower = follow(cacheOf([4, 0]), 3n);
    const actions = truncateAgainst(follower, cacheOf([2, 0], [5, 2]), 6n);
    expect(ofType(actions, 'truncate')).toEqual([{ type: 'truncate', offset: 0n }]);
  });

  it('an empty log fetches at once', () => {
    const follower = follow(new LeaderEpochCache(), 0n);
    expect(follower.phase).toBe('fetching');
    expect(onlyRequest(follower.poll(0))).toMatchObject({ type: 'send-fetch', request: { fetchOffset: 0n } });
  });

  it('stops and asks for metadata when the leader knows no epoch at or below ours', () => {
    const follower = follow(cacheOf([1, 0]), 3n);
    const query = onlyRequest(follower.poll(0));
    expect(follower.onEpochAnswer(query.requestId, { error: null, epoch: -1, endOffset: -1n }, 0)).toEqual([
      { type: 'refresh-metadata', reason: 'FENCED_LEADER_EPOCH' },
    ]);
    expect(follower.phase).toBe('stopped');
    expect(follower.poll(1_000)).toEqual([]);
  });

  it('refuses an answer about a newer epoch than asked, or with a negative offset, truncating nothing', () => {
    for (const answer of [
      { error: null, epoch: 3, endOffset: 2n },
      { error: null, epoch: 1, endOffset: -5n },
    ]) {
      const cache = cacheOf([1, 0], [2, 2]);
      const follower = follow(cache, 4n);
      const query = onlyRequest(follower.poll(0));
      expect(() => follower.onEpochAnswer(query.requestId, answer, 0)).toThrow(
        /does not continue the follower log: asked where epoch 2 ends/,
      );
      expect(follower.logEndOffset).toBe(4n);
      expect(cache.entries()).toHaveLength(2);
    }
  });

  it('refuses to follow a leader whose epoch is older than its own log', () => {
    const follower = follow(cacheOf([7, 0]), 3n);
    expect(follower.poll(0)).toEqual([{ type: 'refresh-metadata', reason: 'FENCED_LEADER_EPOCH' }]);
  });
});

describe('FollowerState: fetching', () => {
  function fetching(options: Parameters<typeof follow>[2] = {}) {
    const cache = new LeaderEpochCache();
    const follower = follow(cache, 0n, options);
    const first = onlyRequest(follower.poll(0));
    return { follower, cache, first };
  }

  it("appends the leader's batches as they are, with their epochs, and keeps the leader's high watermark", () => {
    const { follower, cache, first } = fetching();
    const batches = [batch(0, 3), batch(1, 3), batch(2, 5)];
    const actions = follower.onFetchResponse(first.requestId, { error: null, batches, highWatermark: 2n }, 1);
    expect(ofType(actions, 'append').map((a) => a.batch)).toEqual(batches);
    expect(cache.entries()).toEqual([
      { epoch: 3, startOffset: 0n },
      { epoch: 5, startOffset: 2n },
    ]);
    expect(ofType(actions, 'write-epoch-checkpoint')).toHaveLength(1);
    expect(ofType(actions, 'high-watermark')).toEqual([{ type: 'high-watermark', highWatermark: 2n }]);
    // The next fetch goes out at once, from the new log end.
    expect(actions.at(-1)).toMatchObject({ type: 'send-fetch', request: { fetchOffset: 3n } });
    // The action order is the order to perform: appends, then the checkpoint, then the rest.
    expect(actions.map((a) => a.type)).toEqual([
      'append',
      'append',
      'append',
      'write-epoch-checkpoint',
      'high-watermark',
      'send-fetch',
    ]);
  });

  it('caps the high watermark at its own log end', () => {
    const { follower, first } = fetching();
    follower.onFetchResponse(first.requestId, { error: null, batches: [batch(0, 3)], highWatermark: 9n }, 1);
    expect(follower.highWatermark).toBe(1n);
  });

  it('reports its stable end as its position when durability is always', () => {
    const { follower, first } = fetching({ config: { reportStableOffset: true } });
    const actions = follower.onFetchResponse(
      first.requestId,
      { error: null, batches: [batch(0, 3), batch(1, 3)], highWatermark: 0n },
      1,
    );
    expect(actions.at(-1)).toMatchObject({ request: { fetchOffset: 2n, stableOffset: 0n } });
    follower.onLocalStable(1n);
    const next = actions.at(-1)!;
    const later = follower.onFetchResponse(
      next.type === 'send-fetch' ? next.requestId : -1,
      {
        error: null,
        batches: [],
        highWatermark: 0n,
      },
      2,
    );
    expect(later).toEqual([]); // empty: waits idleFetchBackoffMs
    expect(onlyRequest(follower.poll(12))).toMatchObject({ request: { fetchOffset: 2n, stableOffset: 1n } });
  });

  it('ignores answers to requests it never sent, and resends after the timeout, waiting longer each time', () => {
    const { follower, first } = fetching();
    expect(
      follower.onFetchResponse(
        first.requestId + 1,
        { error: null, batches: [batch(0, 3)], highWatermark: 0n },
        1,
      ),
    ).toEqual([]);
    expect(follower.poll(99)).toEqual([]);
    const again = onlyRequest(follower.poll(100));
    expect(again.requestId).not.toBe(first.requestId);
    // The timeout doubles while requests time out in a row: 200 ms now.
    expect(follower.poll(299)).toEqual([]);
    const third = onlyRequest(follower.poll(300));
    expect(third.requestId).not.toBe(again.requestId);
    expect(follower.logEndOffset).toBe(0n);
  });

  it("uses a timed-out fetch's late answer when it continues the log; the newer fetch's answer is then dropped", () => {
    const { follower, first } = fetching();
    const again = onlyRequest(follower.poll(100));
    // The late answer to the first fetch arrives before the answer to the second: it is used.
    const actions = follower.onFetchResponse(
      first.requestId,
      { error: null, batches: [batch(0, 3)], highWatermark: 1n },
      120,
    );
    expect(ofType(actions, 'append').map((a) => a.batch.baseOffset)).toEqual([0n]);
    expect(follower.logEndOffset).toBe(1n);
    // The second fetch asked from offset 0 too: its answer no longer continues the log.
    expect(
      follower.onFetchResponse(
        again.requestId,
        { error: null, batches: [batch(0, 3)], highWatermark: 1n },
        130,
      ),
    ).toEqual([]);
    expect(follower.logEndOffset).toBe(1n);
    // The next fetch went out from the new log end.
    const next = actions.at(-1)!;
    expect(next).toMatchObject({ type: 'send-fetch', request: { fetchOffset: 1n } });
  });

  it('refuses a response that does not continue its log, appending nothing', () => {
    const { follower, cache, first } = fetching();
    expect(() =>
      follower.onFetchResponse(
        first.requestId,
        { error: null, batches: [batch(0, 3), batch(2, 3)], highWatermark: 0n },
        1,
      ),
    ).toThrow(/does not continue the follower log/);
    expect(follower.logEndOffset).toBe(0n);
    expect(cache.entries()).toEqual([]);
  });

  it('refuses a batch from an epoch newer than its leader, or older than its log', () => {
    const { follower, first } = fetching();
    expect(() =>
      follower.onFetchResponse(
        first.requestId,
        { error: null, batches: [batch(0, 7)], highWatermark: 0n },
        1,
      ),
    ).toThrow(/INCONSISTENT|does not continue/);
    const cache = cacheOf([4, 0]);
    const other = follow(cache, 1n);
    const query = onlyRequest(other.poll(0));
    const next = other.onEpochAnswer(query.requestId, { error: null, epoch: 4, endOffset: 1n }, 0);
    const fetch = onlyRequest(next);
    expect(() =>
      other.onFetchResponse(fetch.requestId, { error: null, batches: [batch(1, 3)], highWatermark: 0n }, 1),
    ).toThrow(/does not continue the follower log/);
  });

  it('stops on fencing, retries later on UNKNOWN_LEADER_EPOCH, truncates again on OFFSET_OUT_OF_RANGE', () => {
    const fenced = fetching();
    expect(
      fenced.follower.onFetchResponse(fenced.first.requestId, { error: 'FENCED_LEADER_EPOCH' }, 1),
    ).toEqual([{ type: 'refresh-metadata', reason: 'FENCED_LEADER_EPOCH' }]);
    expect(fenced.follower.phase).toBe('stopped');

    const early = fetching();
    expect(
      early.follower.onFetchResponse(early.first.requestId, { error: 'UNKNOWN_LEADER_EPOCH' }, 1),
    ).toEqual([]);
    expect(early.follower.poll(20)).toEqual([]);
    expect(onlyRequest(early.follower.poll(21))).toMatchObject({ type: 'send-fetch' });

    const follower = follow(cacheOf([6, 0]), 4n);
    const query = onlyRequest(follower.poll(0));
    const fetch = onlyRequest(
      follower.onEpochAnswer(query.requestId, { error: null, epoch: 6, endOffset: 9n }, 0),
    );
    follower.onFetchResponse(fetch.requestId, { error: 'OFFSET_OUT_OF_RANGE' }, 1);
    expect(follower.phase).toBe('truncating');
    expect(onlyRequest(follower.poll(21))).toMatchObject({ type: 'send-epoch-query' });
  });

  it("below the leader's log start: empties its log, starts at the leader's log start, fetches from there", () => {
    // A log of epoch 6 up to 4; the leader's retention removed everything below 230.
    const cache = cacheOf([2, 0], [6, 3]);
    const follower = follow(cache, 4n, { highWatermark: 3n });
    const query = onlyRequest(follower.poll(0));
    const fetch = onlyRequest(
      follower.onEpochAnswer(query.requestId, { error: null, epoch: 6, endOffset: 300n }, 0),
    );
    const actions = follower.onFetchResponse(
      fetch.requestId,
      { error: 'OFFSET_OUT_OF_RANGE', logStartOffset: 230n },
      1,
    );
    expect(actions[0]).toEqual({ type: 'truncate-fully', offset: 230n });
    expect(cache.entries()).toEqual([]);
    expect([follower.phase, follower.logEndOffset, follower.highWatermark]).toEqual(['fetching', 230n, 230n]);
    const next = onlyRequest(actions);
    expect(next).toMatchObject({ type: 'send-fetch', request: { fetchOffset: 230n, stableOffset: 230n } });
    // The leader's batches from there continue the emptied log.
    const appended = follower.onFetchResponse(
      next.requestId,
      { error: null, batches: [batch(230, 6)], highWatermark: 231n },
      2,
    );
    expect(ofType(appended, 'append')).toHaveLength(1);
    expect(cache.entries()).toEqual([{ epoch: 6, startOffset: 230n }]);
    expect(follower.logEndOffset).toBe(231n);

    // At or above the leader's log start the answer means what it always did: truncate again.
    const other = fetching();
    other.follower.onFetchResponse(
      other.first.requestId,
      { error: 'OFFSET_OUT_OF_RANGE', logStartOffset: 0n },
      1,
    );
    expect(other.follower.logEndOffset).toBe(0n);
    expect(other.follower.phase).toBe('truncating');
  });
});
