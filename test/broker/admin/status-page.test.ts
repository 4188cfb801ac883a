// The status page's chart axis (its browser-side niceAxis, run here as the page runs it) and the
// page script's syntax. test/integration/status-page.test.ts checks the drawn page in Chromium.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { STATUS_PAGE_AXIS_SCRIPT, STATUS_PAGE_SCRIPT } from '../../../src/broker/admin/status-page.js';

interface Axis {
  max: number;
  ticks: number[];
  decimals: number;
}
const niceAxis = new Function(`${STATUS_PAGE_AXIS_SCRIPT}\nreturn niceAxis;`)() as (
  max: number,
  integer: boolean,
) => Axis;
const labels = (axis: Axis) => axis.ticks.map((tick) => tick.toFixed(axis.decimals));

describe('status page chart axis', () => {
  it('labels an idle chart 0, 0.5, 1 (0, 1 for counts), never 1,1,1,0,0', () => {
    expect(labels(niceAxis(0, false))).toEqual(['0.0', '0.5', '1.0']);
    expect(labels(niceAxis(0, true))).toEqual(['0', '1']);
    expect(niceAxis(Number.NaN, true).ticks).toEqual([0, 1]);
  });

  it('picks round steps of 1, 2 or 5 × 10^k', () => {
    expect(niceAxis(7, true).ticks).toEqual([0, 2, 4, 6, 8]);
    expect(niceAxis(1000, true).ticks).toEqual([0, 500, 1000]);
    expect(niceAxis(3.2, false).ticks).toEqual([0, 1, 2, 3, 4]);
    expect(labels(niceAxis(0.0003, false))).toEqual(['0.0000', '0.0001', '0.0002', '0.0003']);
    expect(niceAxis(0.3, true).ticks).toEqual([0, 1]);
  });

  it('always gives 2 to 4 intervals of distinct, ascending labels reaching the largest value', () => {
    fc.assert(
      fc.property(fc.double({ min: 1e-6, max: 1e12, noNaN: true }), fc.boolean(), (max, integer) => {
        const axis = niceAxis(max, integer);
        const texts = labels(axis);
        expect(new Set(texts).size).toBe(texts.length);
        const values = texts.map(Number);
        expect([...values].sort((a, b) => a - b)).toEqual(values);
        expect(axis.ticks[0]).toBe(0);
        // (rounding may leave the top a hair under the value: within a billionth of it)
        expect(axis.max).toBeGreaterThanOrEqual(max * (1 - 1e-9));
        expect(axis.ticks.length - 1).toBeGreaterThanOrEqual(integer && max <= 1 ? 1 : 2);
        expect(axis.ticks.length - 1).toBeLessThanOrEqual(4);
        if (integer) for (const tick of axis.ticks) expect(Number.isInteger(tick)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('ships a page script that parses', () => {
    expect(() => new Function(STATUS_PAGE_SCRIPT)).not.toThrow();
  });
});
