// The nemesis's schedule is a function of its seed: the same seed gives the same faults (what a
// replay relies on), the steps fill the asked duration, and only the asked kinds are drawn.

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { History, readHeader } from '../../scripts/chaos/history.js';
import { FAULT_KINDS, parseKinds, planSchedule } from '../../scripts/chaos/schedule.js';
import { makeTempDir, removeTempDir } from '../harness/temp-dir.js';

describe('fault schedule', () => {
  it('is the same for the same seed and differs for another', () => {
    const once = planSchedule(7, 120_000, FAULT_KINDS);
    expect(planSchedule(7, 120_000, FAULT_KINDS)).toEqual(once);
    expect(planSchedule(8, 120_000, FAULT_KINDS)).not.toEqual(once);
    const total = once.reduce((sum, step) => sum + step.holdMs + step.gapMs, 0);
    expect(total).toBeGreaterThanOrEqual(120_000);
    expect(total - once.at(-1)!.holdMs - once.at(-1)!.gapMs).toBeLessThan(120_000);
  });

  it('draws only the kinds asked for, and pauses outlast the lease by seconds', () => {
    const steps = planSchedule(3, 300_000, parseKinds('pause-leader,split'));
    expect(new Set(steps.map((step) => step.kind))).toEqual(new Set(['pause-leader', 'split']));
    for (const step of steps.filter((s) => s.kind === 'pause-leader'))
      expect(step.holdMs).toBeGreaterThanOrEqual(3_000);
    expect(() => parseKinds('kill-leader,unplug')).toThrow(/unknown fault kind unplug/);
  });

  it('is written at the head of the history, where a replay reads it', async () => {
    const dir = await makeTempDir('ms-chaos-history-');
    try {
      const schedule = planSchedule(11, 30_000, ['kill-leader']);
      const history = new History(join(dir, 'history.jsonl'), {
        type: 'run',
        seed: 11,
        minutes: 0.5,
        brokers: 3,
        faultSwitch: null,
        schedule,
        skipped: [],
      });
      history.record({ type: 'ack', partition: 0, offset: '0', value: 'v' });
      await history.close();
      expect(readHeader(history.file)).toMatchObject({ seed: 11, schedule });
    } finally {
      await removeTempDir(dir);
    }
  });
});
