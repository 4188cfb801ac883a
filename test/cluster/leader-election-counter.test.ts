import { describe, expect, it } from 'vitest';
import { MetadataCache, type MetadataEvent } from '../../src/cluster/control-plane/metadata-cache.js';
import { LeaderElectionCounter } from '../../src/cluster/leader-election-counter.js';

const put = (key: string, value: unknown, modRevision: bigint): MetadataEvent => ({
  type: 'put',
  key,
  value: Buffer.from(JSON.stringify(value)),
  createRevision: modRevision,
  modRevision,
});
const topic = {
  name: 't',
  partitions: 2,
  replicationFactor: 2,
  assignment: [
    [1, 2],
    [2, 1],
  ],
  config: {},
};

/** Applies events to the cache, then lets the counter see them, as the member's watch does. */
function step(
  cache: MetadataCache,
  counter: LeaderElectionCounter,
  events: MetadataEvent[],
  controller = true,
) {
  cache.apply(events);
  counter.observe(cache, events, controller);
}

describe('LeaderElectionCounter', () => {
  it('records the initial load without counting, then counts each new leader epoch with a leader', () => {
    const cache = new MetadataCache();
    const counter = new LeaderElectionCounter();
    const snapshot = [
      put('topics/t', topic, 2n),
      put('partitions/t/0', { leader: 1, leaderEpoch: 0, isr: [1, 2] }, 3n),
    ];
    cache.load(snapshot, 3n);
    counter.observe(cache, snapshot, true);
    expect(counter.elections).toBe(0);
    // A new partition's first leader is an election.
    step(cache, counter, [put('partitions/t/1', { leader: 2, leaderEpoch: 0, isr: [2, 1] }, 4n)]);
    expect(counter.elections).toBe(1);
    // An ISR change at the same epoch is not.
    step(cache, counter, [put('partitions/t/0', { leader: 1, leaderEpoch: 0, isr: [1] }, 5n)]);
    expect(counter.elections).toBe(1);
    // Going offline is not; coming back is.
    step(cache, counter, [put('partitions/t/0', { leader: -1, leaderEpoch: 1, isr: [1] }, 6n)]);
    expect(counter.elections).toBe(1);
    step(cache, counter, [put('partitions/t/0', { leader: 1, leaderEpoch: 2, isr: [1] }, 7n)]);
    expect(counter.elections).toBe(2);
  });

  it('counts only while this broker is the controller, and adds unclean elections as reported', () => {
    const cache = new MetadataCache();
    const counter = new LeaderElectionCounter();
    const snapshot = [
      put('topics/t', topic, 2n),
      put('partitions/t/0', { leader: 1, leaderEpoch: 0, isr: [1, 2] }, 3n),
    ];
    cache.load(snapshot, 3n);
    counter.observe(cache, snapshot, false);
    step(cache, counter, [put('partitions/t/0', { leader: 2, leaderEpoch: 1, isr: [2] }, 4n)], false);
    expect(counter.elections).toBe(0);
    step(cache, counter, [put('partitions/t/0', { leader: 1, leaderEpoch: 2, isr: [1] }, 5n)], true);
    expect(counter.elections).toBe(1);
    counter.addUnclean(2);
    expect(counter.uncleanElections).toBe(2);
  });
});
