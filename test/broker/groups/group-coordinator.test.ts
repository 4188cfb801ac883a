import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { GroupCoordinator } from '../../../src/broker/groups/group-coordinator.js';
import { assignRange } from '../../../src/broker/groups/range-assignor.js';
import { assignSticky } from '../../../src/broker/groups/sticky-assignor.js';
import type { PartitionOffset } from '../../../src/protocol/commands/data-types.js';
import { ErrorCode, errorOf } from '../../../src/protocol/error-codes.js';

let now = 0;
const stored: Array<{ groupId: string; offsets: readonly PartitionOffset[] }> = [];
const removed: Array<{ groupId: string; partitions: readonly { topic: string; partition: number }[] }> = [];
const logged: Array<{ fields: Record<string, unknown>; message: string }> = [];
const logger = {
  info: () => undefined,
  debug: () => undefined,
  warn: (fields: Record<string, unknown>, message: string) => void logged.push({ fields, message }),
  error: (fields: Record<string, unknown>, message: string) => void logged.push({ fields, message }),
};
const coordinators: GroupCoordinator[] = [];
afterEach(() => {
  for (const c of coordinators.splice(0)) c.close();
  stored.length = 0;
  removed.length = 0;
  logged.length = 0;
});

function coordinator(partitions: Record<string, number> = { orders: 6, audit: 2 }) {
  const c = new GroupCoordinator({
    partitionsOf: (topic) => {
      const n = partitions[topic];
      if (n === undefined) throw errorOf('UNKNOWN_TOPIC', topic);
      return n;
    },
    highWatermark: () => 1000n,
    store: {
      append: async (groupId, offsets) => void stored.push({ groupId, offsets }),
      remove: async (groupId, partitions) => void removed.push({ groupId, partitions }),
    },
    now: () => now,
    logger,
  });
  coordinators.push(c);
  return c;
}

const join = (
  c: GroupCoordinator,
  memberId = '',
  topics = ['orders'],
  strategy: 'range' | 'cooperative-sticky' = 'range',
) => c.join({ groupId: 'g', memberId, topics, sessionTimeoutMs: 3000, strategy });

describe('range assignment', () => {
  it('splits partitions in contiguous ranges, extra ones to the first members', () => {
    const a = assignRange(
      [
        { memberId: 'b', topics: ['t'] },
        { memberId: 'a', topics: ['t'] },
      ],
      () => 5,
    );
    expect(a.get('a')).toEqual([{ topic: 't', partitions: [0, 1, 2] }]);
    expect(a.get('b')).toEqual([{ topic: 't', partitions: [3, 4] }]);
    const more = assignRange(
      [
        { memberId: 'a', topics: ['t'] },
        { memberId: 'b', topics: ['t'] },
        { memberId: 'c', topics: ['t'] },
      ],
      () => 1,
    );
    expect(more.get('b')).toEqual([]);
  });

  it('assigns every partition exactly once for any members and counts', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 0, max: 40 }),
        (ids, count) => {
          const assignment = assignRange(
            ids.map((memberId) => ({ memberId, topics: ['t'] })),
            () => count,
          );
          const all = [...assignment.values()]
            .flatMap((list) => list.flatMap((a) => a.partitions))
            .sort((x, y) => x - y);
          expect(all).toEqual(Array.from({ length: count }, (_, i) => i));
        },
      ),
    );
  });
});

describe('GroupCoordinator', () => {
  it('hands out a generation once all members joined, and rebalances when one joins or leaves', async () => {
    const c = coordinator();
    const first = await join(c);
    expect(first.generation).toBe(1);
    expect(first.assignment).toEqual([{ topic: 'orders', partitions: [0, 1, 2, 3, 4, 5] }]);
    c.heartbeat({ groupId: 'g', memberId: first.memberId, generation: 1 });

    const secondJoin = join(c);
    // The first member learns of the rebalance from its heartbeat, commits, and joins again.
    expect(() => c.heartbeat({ groupId: 'g', memberId: first.memberId, generation: 1 })).toThrow(
      /rebalancing/,
    );
    await c.commit({
      groupId: 'g',
      memberId: first.memberId,
      generation: 1,
      offsets: [{ topic: 'orders', partition: 5, offset: 10n }],
    });
    const [rejoined, second] = await Promise.all([join(c, first.memberId), secondJoin]);
    expect(rejoined.generation).toBe(2);
    expect(second.generation).toBe(2);
    const owned = [...rejoined.assignment, ...second.assignment].flatMap((a) => a.partitions).sort();
    expect(owned).toEqual([0, 1, 2, 3, 4, 5]);
    expect(c.fetchOffsets('g')).toEqual([{ topic: 'orders', partition: 5, offset: 10n }]);
    expect(stored).toHaveLength(1);

    c.leave({ groupId: 'g', memberId: second.memberId, generation: 2 });
    expect(c.describe('g').group.state).toBe('rebalancing');
    const alone = await join(c, first.memberId);
    expect(alone.generation).toBe(3);
    expect(alone.assignment[0]!.partitions).toHaveLength(6);
    const described = c.describe('g');
    expect(described.members).toHaveLength(1);
    expect(described.lag.find((l) => l.partition === 5)).toMatchObject({
      committed: 10n,
      highWatermark: 1000n,
      lag: 990n,
    });
    expect(c.list()).toEqual([{ groupId: 'g', state: 'stable', generation: 3, members: 1 }]);
  });

  it('drops members whose session expired and finishes rebalances at their deadline', async () => {
    now = 0;
    const c = coordinator();
    const a = await join(c);
    const bJoin = join(c);
    now = 10_000;
    c.sweep();
    const b = await bJoin;
    expect(b.generation).toBe(2);
    expect(b.assignment[0]!.partitions).toHaveLength(6);
    expect(() => c.heartbeat({ groupId: 'g', memberId: a.memberId, generation: 1 })).toThrow(/not in group/);
    now = 20_000;
    c.sweep();
    // Nothing left of it (no members, no committed offsets): the group is reclaimed.
    expect(c.list()).toEqual([]);
    expect(() => c.describe('g')).toThrow(/does not exist/);
  });

  it('rejects stale generations, unknown members, bad groups and foreign partitions', async () => {
    const c = coordinator();
    const a = await join(c, '', ['orders', 'audit']);
    const code = async (fn: () => unknown) => {
      try {
        await fn();
      } catch (error) {
        return (error as { code: number }).code;
      }
      return 0;
    };
    expect(await code(() => c.heartbeat({ groupId: 'g', memberId: a.memberId, generation: 7 }))).toBe(
      ErrorCode.ILLEGAL_GENERATION,
    );
    expect(await code(() => c.heartbeat({ groupId: 'g', memberId: 'nobody', generation: 1 }))).toBe(
      ErrorCode.UNKNOWN_MEMBER,
    );
    expect(await code(() => c.heartbeat({ groupId: 'other', memberId: 'x', generation: 1 }))).toBe(
      ErrorCode.UNKNOWN_GROUP,
    );
    expect(
      await code(() =>
        c.join({
          groupId: '../x',
          memberId: '',
          topics: ['orders'],
          sessionTimeoutMs: 3000,
          strategy: 'range',
        }),
      ),
    ).toBe(ErrorCode.INVALID_GROUP_ID);
    expect(
      await code(() =>
        c.join({
          groupId: 'g',
          memberId: 'ghost',
          topics: ['orders'],
          sessionTimeoutMs: 3000,
          strategy: 'range',
        }),
      ),
    ).toBe(ErrorCode.UNKNOWN_MEMBER);
    expect(
      await code(() =>
        c.join({ groupId: 'g', memberId: '', topics: ['orders'], sessionTimeoutMs: 10, strategy: 'range' }),
      ),
    ).toBe(ErrorCode.INVALID_REQUEST);
    expect(
      await code(() =>
        c.join({ groupId: 'g', memberId: '', topics: [], sessionTimeoutMs: 3000, strategy: 'range' }),
      ),
    ).toBe(ErrorCode.INVALID_REQUEST);
    expect(
      await code(() =>
        c.commit({
          groupId: 'g',
          memberId: a.memberId,
          generation: 1,
          offsets: [{ topic: 'orders', partition: 0, offset: 5000n }],
        }),
      ),
    ).toBe(ErrorCode.OFFSET_OUT_OF_RANGE);
    const b = join(c, '', ['audit']);
    const again = join(c, a.memberId, ['orders', 'audit']);
    const [, second] = await Promise.all([again, b]);
    const foreign = second.assignment[0]!;
    expect(
      await code(() =>
        c.commit({
          groupId: 'g',
          memberId: a.memberId,
          generation: 2,
          offsets: [{ topic: foreign.topic, partition: foreign.partitions[0]!, offset: 1n }],
        }),
      ),
    ).toBe(ErrorCode.INVALID_REQUEST);
    c.restore('g', [{ topic: 'orders', partition: 1, offset: 42n }]);
    expect(c.fetchOffsets('g')).toContainEqual({ topic: 'orders', partition: 1, offset: 42n });
    expect(c.fetchOffsets('missing')).toEqual([]);
  });
});

describe('topics that change under a group', () => {
  const joinGroup = (c: GroupCoordinator, groupId: string, topics: string[], memberId = '') =>
    c.join({ groupId, memberId, topics, sessionTimeoutMs: 3000, strategy: 'range' });

  it('completes a pending join when a subscribed topic was deleted, on leave and on sweep', async () => {
    now = 0;
    const partitions: Record<string, number> = { orders: 2, audit: 2 };
    const c = coordinator(partitions);
    const a = await joinGroup(c, 'g', ['audit']);
    const bJoin = joinGroup(c, 'g', ['orders']);
    delete partitions.orders;
    // The last member that has not joined leaves: the waiting member gets the next generation,
    // with nothing of the deleted topic.
    c.leave({ groupId: 'g', memberId: a.memberId, generation: a.generation });
    const b = await bJoin;
    expect(b).toMatchObject({ generation: 2, assignment: [] });
    // The group goes on: a new member joins, and one cannot subscribe to the deleted topic.
    const cJoin = joinGroup(c, 'g', ['audit']);
    expect(() => joinGroup(c, 'g', ['orders'], b.memberId)).toThrow(/topic does not exist/);
    const [cJoined, bAgain] = await Promise.all([cJoin, joinGroup(c, 'g', ['audit'], b.memberId)]);
    expect([cJoined.generation, bAgain.generation]).toEqual([3, 3]);
    expect([...cJoined.assignment, ...bAgain.assignment].flatMap((x) => x.partitions).sort()).toEqual([0, 1]);

    // The same through the sweep: the rebalance's deadline passes while a member waits.
    partitions.orders = 2;
    const x = await joinGroup(c, 'h', ['audit']);
    const yJoin = joinGroup(c, 'h', ['orders']);
    delete partitions.orders;
    now += 20_000;
    expect(() => c.sweep()).not.toThrow();
    const y = await yJoin;
    expect(y).toMatchObject({ generation: 2, assignment: [] });
    expect(() => c.heartbeat({ groupId: 'h', memberId: x.memberId, generation: 1 })).toThrow(/not in group/);
  });

  it('keeps sweeping the other groups when one fails, and logs the failure once', async () => {
    now = 0;
    let broken = false;
    const c = new GroupCoordinator({
      partitionsOf: (topic) => {
        if (broken && topic === 'bad') throw new Error('metadata unreadable');
        return 2;
      },
      highWatermark: () => 0n,
      store: { append: async () => undefined, remove: async () => undefined },
      now: () => now,
      logger,
    });
    coordinators.push(c);
    await joinGroup(c, 'first', ['bad']);
    const stuck = joinGroup(c, 'first', ['bad']);
    stuck.catch(() => undefined);
    await joinGroup(c, 'second', ['good']);
    const waiting = joinGroup(c, 'second', ['good']);
    broken = true;
    now += 20_000;
    c.sweep();
    c.sweep();
    expect(await waiting).toMatchObject({ generation: 2 });
    expect(logged).toEqual([
      {
        fields: { group: 'first', reason: 'metadata unreadable' },
        message: 'consumer group maintenance failed; the group is tried again at the next sweep',
      },
    ]);
    // The failed group is untouched (still rebalancing) and completes once the topic is readable.
    expect(c.describe('first').group.state).toBe('rebalancing');
    broken = false;
    c.sweep();
    expect(await stuck).toMatchObject({ generation: 2 });
  });

  it('rebalances a stable group when a subscribed topic gains partitions', async () => {
    now = 0;
    const partitions: Record<string, number> = { orders: 1 };
    const c = coordinator(partitions);
    const a = await joinGroup(c, 'g', ['orders']);
    expect(a.assignment).toEqual([{ topic: 'orders', partitions: [0] }]);
    c.sweep();
    expect(() => c.heartbeat({ groupId: 'g', memberId: a.memberId, generation: 1 })).not.toThrow();
    partitions.orders = 3;
    c.sweep();
    expect(() => c.heartbeat({ groupId: 'g', memberId: a.memberId, generation: 1 })).toThrow(
      /REBALANCE_IN_PROGRESS|commit and join again/,
    );
    const again = await joinGroup(c, 'g', ['orders'], a.memberId);
    expect(again).toMatchObject({ generation: 2, assignment: [{ topic: 'orders', partitions: [0, 1, 2] }] });
    c.sweep();
    expect(() => c.heartbeat({ groupId: 'g', memberId: a.memberId, generation: 2 })).not.toThrow();
  });

  it('forgets offsets of a deleted topic in memory and in the store', async () => {
    now = 0;
    const c = coordinator({ orders: 2, audit: 1 });
    c.restore('g', [
      { topic: 'orders', partition: 0, offset: 5n },
      { topic: 'orders', partition: 1, offset: 6n },
      { topic: 'audit', partition: 0, offset: 7n },
    ]);
    c.restore('other', [{ topic: 'orders', partition: 0, offset: 1n }]);
    await c.forgetTopic('orders');
    expect(c.fetchOffsets('g')).toEqual([{ topic: 'audit', partition: 0, offset: 7n }]);
    expect(removed).toEqual([
      {
        groupId: 'g',
        partitions: [
          { topic: 'orders', partition: 0 },
          { topic: 'orders', partition: 1 },
        ],
      },
      { groupId: 'other', partitions: [{ topic: 'orders', partition: 0 }] },
    ]);
    // A group left with nothing (no members, no offsets) is reclaimed; one with offsets stays.
    expect(c.list().map((g) => g.groupId)).toEqual(['g']);
  });

  it('does not keep a commit stored while its topic was deleted, nor reclaim the group under it', async () => {
    now = 0;
    let release: () => void = () => undefined;
    const c = new GroupCoordinator({
      partitionsOf: () => 1,
      highWatermark: () => 10n,
      store: {
        append: () => new Promise<void>((resolve) => (release = resolve)),
        remove: async () => undefined,
      },
      now: () => now,
    });
    coordinators.push(c);
    const a = await joinGroup(c, 'g', ['orders']);
    const commit = c.commit({
      groupId: 'g',
      memberId: a.memberId,
      generation: a.generation,
      offsets: [{ topic: 'orders', partition: 0, offset: 5n }],
    });
    c.leave({ groupId: 'g', memberId: a.memberId, generation: a.generation });
    await c.forgetTopic('orders');
    expect(c.list()).toHaveLength(1);
    release();
    await commit;
    expect(c.fetchOffsets('g')).toEqual([]);
    c.sweep();
    expect(c.list()).toEqual([]);
  });

  it('drops offsets of topics that no longer exist on its sweep (a coordinator without a copy)', async () => {
    const existing = new Set(['orders', 'audit']);
    const c = new GroupCoordinator({
      partitionsOf: () => 1,
      topicExists: (topic) => existing.has(topic),
      highWatermark: () => null,
      store: {
        append: async () => undefined,
        remove: async (groupId, partitions) => void removed.push({ groupId, partitions }),
      },
      now: () => now,
    });
    coordinators.push(c);
    c.restore('g', [
      { topic: 'orders', partition: 0, offset: 5n },
      { topic: 'audit', partition: 0, offset: 7n },
    ]);
    c.sweep();
    expect(c.fetchOffsets('g')).toHaveLength(2);
    existing.delete('orders');
    c.sweep();
    expect(c.fetchOffsets('g')).toEqual([{ topic: 'audit', partition: 0, offset: 7n }]);
    expect(removed).toEqual([{ groupId: 'g', partitions: [{ topic: 'orders', partition: 0 }] }]);
  });

  it('reclaims a group once it has no members and no committed offsets', async () => {
    now = 0;
    const c = coordinator();
    const a = await join(c);
    c.leave({ groupId: 'g', memberId: a.memberId, generation: a.generation });
    expect(c.list()).toEqual([]);
    const b = await join(c);
    await c.commit({
      groupId: 'g',
      memberId: b.memberId,
      generation: b.generation,
      offsets: [{ topic: 'orders', partition: 0, offset: 1n }],
    });
    c.leave({ groupId: 'g', memberId: b.memberId, generation: b.generation });
    c.sweep();
    expect(c.list()).toEqual([{ groupId: 'g', state: 'empty', generation: 1, members: 0 }]);
    expect(c.fetchOffsets('g')).toEqual([{ topic: 'orders', partition: 0, offset: 1n }]);
  });
});

describe('cooperative-sticky', () => {
  it('takes a moving partition from its owner first and hands it over one round later', async () => {
    const c = coordinator({ orders: 6 });
    const a = await join(c, '', ['orders'], 'cooperative-sticky');
    expect(a.assignment).toEqual([{ topic: 'orders', partitions: [0, 1, 2, 3, 4, 5] }]);
    const bJoin = join(c, '', ['orders'], 'cooperative-sticky');
    expect(() => c.heartbeat({ groupId: 'g', memberId: a.memberId, generation: 1 })).toThrow(/rebalancing/);
    const [a2, b2] = await Promise.all([join(c, a.memberId, ['orders'], 'cooperative-sticky'), bJoin]);
    // Round one: the first member keeps half and releases the rest; nobody receives it yet.
    expect(a2.generation).toBe(2);
    const keptByA = a2.assignment.flatMap((x) => x.partitions);
    expect(keptByA).toHaveLength(3);
    expect(b2.assignment).toEqual([]);
    const released = [0, 1, 2, 3, 4, 5].filter((p) => !keptByA.includes(p));
    // It may still commit its final position of a released partition.
    await c.commit({
      groupId: 'g',
      memberId: a.memberId,
      generation: 2,
      offsets: [{ topic: 'orders', partition: released[0]!, offset: 7n }],
    });
    // Round two starts at once; the released partitions go to the second member.
    expect(() => c.heartbeat({ groupId: 'g', memberId: b2.memberId, generation: 2 })).toThrow(/rebalancing/);
    const [a3, b3] = await Promise.all([
      join(c, a.memberId, ['orders'], 'cooperative-sticky'),
      join(c, b2.memberId, ['orders'], 'cooperative-sticky'),
    ]);
    expect(a3.assignment.flatMap((x) => x.partitions)).toEqual(keptByA);
    expect(b3.assignment.flatMap((x) => x.partitions)).toEqual(released);
    await expect(
      c.commit({
        groupId: 'g',
        memberId: a.memberId,
        generation: 3,
        offsets: [{ topic: 'orders', partition: released[0]!, offset: 8n }],
      }),
    ).rejects.toMatchObject({ code: ErrorCode.INVALID_REQUEST });
    expect(() => join(c, '', ['orders'], 'range')).toThrow(/uses cooperative-sticky assignment, not range/);
  });

  it('moves the minimum when members come and go', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 6 }),
        (count, before, after) => {
          const ids = (n: number) => Array.from({ length: n }, (_, i) => `m${i}`);
          const first = assignSticky(
            ids(before).map((memberId) => ({ memberId, topics: ['t'], owned: [] })),
            () => count,
          );
          const second = assignSticky(
            ids(after).map((memberId) => ({ memberId, topics: ['t'], owned: first.get(memberId) ?? [] })),
            () => count,
          );
          const all = [...second.values()]
            .flatMap((l) => l.flatMap((a) => a.partitions))
            .sort((x, y) => x - y);
          expect(all).toEqual(Array.from({ length: count }, (_, i) => i));
          // Balanced: quotas differ by at most one.
          const sizes = [...second.values()].map((l) => l.reduce((n, a) => n + a.partitions.length, 0));
          expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
          // Sticky: a member that stays keeps min(its old share, its new quota) of its partitions.
          for (const memberId of ids(Math.min(before, after))) {
            const old = new Set((first.get(memberId) ?? []).flatMap((a) => a.partitions));
            const now = (second.get(memberId) ?? []).flatMap((a) => a.partitions);
            const keptCount = now.filter((p) => old.has(p)).length;
            expect(keptCount).toBe(Math.min(old.size, now.length));
          }
        },
      ),
    );
  });
});
