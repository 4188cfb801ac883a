// The reassignment rules against a model of the metadata: a plan is checked whole (each bad
// target refused with its code), starting writes old + new replicas with the target recorded
// (a record the metadata decoder accepts), finishing waits for every target replica in the ISR,
// then leaves exactly the target, an ISR inside it, and the preferred leader when it can lead.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodePartitionState,
  decodeTopicRecord,
  encodeRecord,
  NO_LEADER,
  type PartitionState,
  type TopicRecord,
} from '../../../src/cluster/control-plane/metadata-records.js';
import {
  finishedRecord,
  finishReassignment,
  planReassignment,
} from '../../../src/cluster/controller/reassignment.js';

const ids = (...values: number[]) => new Set(values);

const orders: TopicRecord = {
  name: 'orders',
  partitions: 2,
  replicationFactor: 2,
  assignment: [
    [1, 2],
    [2, 3],
  ],
  config: {},
};
const topics = new Map([['orders', orders]]);
const live = ids(1, 2, 3, 4);

function codeOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    return (error as { codeName: string }).codeName;
  }
  return 'none';
}

describe('planReassignment', () => {
  it('starts with old + new replicas and records the target', () => {
    const [planned] = planReassignment(topics, live, [{ topic: 'orders', partition: 0, replicas: [2, 3] }]);
    expect(planned!.started).toEqual([{ partition: 0, from: [1, 2], to: [2, 3] }]);
    expect(planned!.record.assignment).toEqual([
      [1, 2, 3],
      [2, 3],
    ]);
    expect(planned!.record.reassigning).toEqual({ '0': [2, 3] });
    // The metadata decoder accepts the record: a reassigning partition may have more replicas.
    expect(decodeTopicRecord('topics/orders', encodeRecord(planned!.record))).toEqual(planned!.record);
    // ... and no other partition may.
    const broken = {
      ...planned!.record,
      assignment: [
        [1, 2, 3],
        [2, 3, 4],
      ],
    };
    expect(() => decodeTopicRecord('topics/orders', encodeRecord(broken))).toThrow(
      /partition 1 has 3 replicas/,
    );
  });

  it('the metadata decoder refuses a bad reassigning field', () => {
    const bad = (reassigning: unknown) => () =>
      decodeTopicRecord('topics/orders', JSON.stringify({ ...orders, reassigning }));
    expect(bad([[2, 3]])).toThrow(/reassigning must be an object/);
    expect(bad({ '2': [2, 3] })).toThrow(/reassigning names partition 2/);
    expect(bad({ '01': [2, 3] })).toThrow(/reassigning names partition 01/);
    expect(bad({ '0': [] })).toThrow(/reassigning\[0\] has no replicas/);
    expect(bad({ '0': [2, 2] })).toThrow(/names a broker twice/);
  });

  it.each([
    [[{ topic: 'nope', partition: 0, replicas: [1, 2] }], 'UNKNOWN_TOPIC'],
    [[{ topic: 'orders', partition: 2, replicas: [1, 2] }], 'UNKNOWN_PARTITION'],
    [[{ topic: 'orders', partition: 0, replicas: [1, 9] }], 'UNKNOWN_BROKER'],
    [[{ topic: 'orders', partition: 0, replicas: [3, 3] }], 'DUPLICATE_REPLICA'],
    [[{ topic: 'orders', partition: 0, replicas: [1, 2, 3] }], 'REPLICATION_FACTOR_MISMATCH'],
    [[{ topic: 'orders', partition: 0, replicas: [] }], 'INVALID_REQUEST'],
    [[], 'INVALID_REQUEST'],
    [
      [
        { topic: 'orders', partition: 0, replicas: [1, 3] },
        { topic: 'orders', partition: 0, replicas: [2, 3] },
      ],
      'INVALID_REQUEST',
    ],
  ])('refuses %j with %s', (plan, code) => {
    expect(codeOf(() => planReassignment(topics, live, plan))).toBe(code);
  });

  it('refuses a partition already being reassigned, unless asked to replace its target', () => {
    const moving = new Map([
      [
        'orders',
        {
          ...orders,
          assignment: [
            [1, 2],
            [2, 3, 4],
          ],
          reassigning: { '1': [3, 4] },
        },
      ],
    ]);
    const back = [{ topic: 'orders', partition: 1, replicas: [2, 3] }];
    expect(codeOf(() => planReassignment(moving, live, back))).toBe('REASSIGNMENT_IN_PROGRESS');
    // Back to the old replicas: broker 4 keeps its copy until the target is in sync, then leaves.
    const [planned] = planReassignment(moving, live, back, { replace: true });
    expect(planned!.record.assignment[1]).toEqual([2, 3, 4]);
    expect(planned!.record.reassigning).toEqual({ '1': [2, 3] });
    expect(planned!.started).toEqual([{ partition: 1, from: [2, 3, 4], to: [2, 3] }]);
    const state = { leader: 2, leaderEpoch: 3, isr: [2, 3] };
    expect(finishReassignment({ replicas: [2, 3, 4], target: [2, 3], state, live, drained: ids() })).toEqual(
      state,
    );
    expect(finishedRecord(planned!.record, [1]).assignment[1]).toEqual([2, 3]);
  });

  it('changes the replication factor only when asked, for every partition of the topic at once', () => {
    const three = [
      { topic: 'orders', partition: 0, replicas: [1, 2, 3] },
      { topic: 'orders', partition: 1, replicas: [2, 3, 4] },
    ];
    expect(codeOf(() => planReassignment(topics, live, three))).toBe('REPLICATION_FACTOR_MISMATCH');
    expect(
      codeOf(() => planReassignment(topics, live, three.slice(0, 1), { allowReplicationFactorChange: true })),
    ).toBe('REPLICATION_FACTOR_MISMATCH');
    const [planned] = planReassignment(topics, live, three, { allowReplicationFactorChange: true });
    expect(planned!.record.replicationFactor).toBe(3);
    expect(decodeTopicRecord('topics/orders', encodeRecord(planned!.record)).replicationFactor).toBe(3);
  });
});

describe('finishReassignment', () => {
  const base = { replicas: [1, 2, 3], target: [2, 3], live: ids(1, 2, 3), drained: ids() };

  it('waits for a leader and for every target replica in the ISR', () => {
    expect(finishReassignment({ ...base, state: undefined })).toBeNull();
    expect(
      finishReassignment({ ...base, state: { leader: NO_LEADER, leaderEpoch: 3, isr: [1, 2, 3] } }),
    ).toBeNull();
    expect(finishReassignment({ ...base, state: { leader: 1, leaderEpoch: 3, isr: [1, 2] } })).toBeNull();
  });

  it('drops the leaving replicas from the ISR and moves leadership to the preferred replica', () => {
    expect(finishReassignment({ ...base, state: { leader: 1, leaderEpoch: 3, isr: [1, 2, 3] } })).toEqual({
      leader: 2,
      leaderEpoch: 4,
      isr: [2, 3],
    });
    // The preferred replica leads already: same epoch (the leader re-reads its replicas).
    expect(finishReassignment({ ...base, state: { leader: 2, leaderEpoch: 3, isr: [3, 1, 2] } })).toEqual({
      leader: 2,
      leaderEpoch: 3,
      isr: [2, 3],
    });
  });

  it('passes over a drained or dead preferred replica', () => {
    const state = { leader: 1, leaderEpoch: 3, isr: [1, 2, 3] };
    expect(finishReassignment({ ...base, state, drained: ids(2) })?.leader).toBe(3);
    expect(finishReassignment({ ...base, state, live: ids(1, 3) })?.leader).toBe(3);
  });

  it('keeps the other partitions when one finishes', () => {
    const moving: TopicRecord = {
      ...orders,
      assignment: [
        [1, 2, 3],
        [2, 3, 4],
      ],
      reassigning: { '0': [2, 3], '1': [3, 4] },
    };
    const once = finishedRecord(moving, [0]);
    expect(once.assignment).toEqual([
      [2, 3],
      [2, 3, 4],
    ]);
    expect(once.reassigning).toEqual({ '1': [3, 4] });
    const done = finishedRecord(once, [1]);
    expect(done.assignment).toEqual([
      [2, 3],
      [3, 4],
    ]);
    expect('reassigning' in done).toBe(false);
  });

  it('model: whatever the ISR grows through, the end state is the target with a valid ISR and leader', () => {
    const brokers = [1, 2, 3, 4];
    fc.assert(
      fc.property(
        fc.shuffledSubarray(brokers, { minLength: 2, maxLength: 2 }),
        fc.shuffledSubarray(brokers, { minLength: 2, maxLength: 2 }),
        fc.array(fc.constantFrom(...brokers), { maxLength: 8 }),
        fc.subarray(brokers, { maxLength: 1 }),
        (from, to, joinOrder, drainedList) => {
          const record: TopicRecord = { ...orders, partitions: 1, assignment: [from] };
          const [planned] = planReassignment(new Map([['orders', record]]), ids(...brokers), [
            { topic: 'orders', partition: 0, replicas: to },
          ]);
          const replicas = planned!.record.assignment[0]!;
          let state: PartitionState = { leader: from[0]!, leaderEpoch: 1, isr: [...from] };
          const drained = ids(...drainedList);
          const finish = () =>
            finishReassignment({ replicas, target: to, state, live: ids(...brokers), drained });
          let finished = finish();
          // The leader takes replicas into the ISR one by one, in any order (only replicas join).
          for (const joining of [...joinOrder, ...replicas]) {
            if (finished !== null) break;
            if (replicas.includes(joining) && !state.isr.includes(joining))
              state = { ...state, isr: [...state.isr, joining] };
            finished = finish();
            // Not before every target replica is in the ISR.
            if (!to.every((id) => state.isr.includes(id))) expect(finished).toBeNull();
          }
          expect(finished).not.toBeNull();
          const end = finishedRecord(planned!.record, [0]);
          expect(end.assignment[0]).toEqual(to);
          // What the controller writes is a consistent partition state for the new replicas.
          const written = decodePartitionState('partitions/orders/0', encodeRecord(finished!));
          expect(written.isr.every((id) => to.includes(id))).toBe(true);
          expect(written.isr).toContain(written.leader);
          expect([...written.isr].sort()).toEqual([...to].sort());
          const preferred = to.find((id) => !drained.has(id));
          expect(written.leader).toBe(preferred);
          if (written.leader !== state.leader) expect(written.leaderEpoch).toBe(state.leaderEpoch + 1);
          else expect(written.leaderEpoch).toBe(state.leaderEpoch);
        },
      ),
    );
  });
});
