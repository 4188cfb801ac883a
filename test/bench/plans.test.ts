import { describe, expect, it } from 'vitest';
import { BENCH_DEFAULTS, parseBenchOptions } from '../../src/bench/options.js';
import { consumerPlans, producerPlans } from '../../src/bench/plans.js';

const options = (flags: Record<string, string>) =>
  parseBenchOptions({ ...BENCH_DEFAULTS, duration: undefined, ...flags }, { brokerFlag: false });

describe('bench plans', () => {
  it('splits --messages and --rate over the producers without losing a remainder', () => {
    const plans = producerPlans(options({ producers: '3', messages: '1000', rate: '900' }), ['t'], ['b:1']);
    expect(plans.map((p) => p.quota)).toEqual([334, 333, 333]);
    expect(plans.map((p) => p.ratePerSecond)).toEqual([300, 300, 300]);
    expect(plans.map((p) => p.index)).toEqual([0, 1, 2]);
  });

  it('leaves quota and rate open for a timed run at max rate', () => {
    const [plan] = producerPlans(options({}), ['t'], ['b:1']);
    expect(plan).toMatchObject({ quota: null, ratePerSecond: null });
    expect(plan!.maxOutstanding).toBeGreaterThan(0);
  });

  it('gives every topic × partition to exactly one consumer', () => {
    const topics = ['a', 'b', 'c'];
    const plans = consumerPlans(options({ consumers: '4', topics: '3', partitions: '5' }), topics, ['b:1']);
    expect(plans).toHaveLength(4);
    const owned = plans.flatMap((p) =>
      p.assignments.flatMap((a) => a.partitions.map((partition) => `${a.topic}/${partition}`)),
    );
    expect(owned.sort()).toEqual(topics.flatMap((t) => [0, 1, 2, 3, 4].map((p) => `${t}/${p}`)).sort());
    for (const plan of plans) {
      for (const assignment of plan.assignments) expect(topics[assignment.topicIndex]).toBe(assignment.topic);
    }
    // 15 partitions over 4 consumers: nobody gets more than one extra.
    const loads = plans.map((p) => p.assignments.reduce((n, a) => n + a.partitions.length, 0));
    expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(1);
  });

  it('plans no consumers for a produce-only run', () => {
    expect(consumerPlans(options({ consumers: '0' }), ['t'], ['b:1'])).toEqual([]);
  });
});
