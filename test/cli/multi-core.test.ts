// The port plan and the --cores value of `serve --cores` (the processes themselves: serve-cores.test.ts).
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { parseCores, planMemberPorts } from '../../src/cli/multi-core.js';

describe('planMemberPorts', () => {
  it('puts the admin endpoints after the client ports when the defaults would overlap', () => {
    expect(planMemberPorts(2, 7400, 7401)).toEqual([
      { port: 7400, adminPort: 7402 },
      { port: 7401, adminPort: 7403 },
    ]);
  });

  it('keeps an admin range that does not overlap, and an admin endpoint that is off', () => {
    expect(planMemberPorts(3, 9000, 9100).map((member) => member.adminPort)).toEqual([9100, 9101, 9102]);
    expect(planMemberPorts(2, 9000, null).map((member) => member.adminPort)).toEqual([null, null]);
  });

  it('leaves port 0 for a free port per member', () => {
    expect(planMemberPorts(2, 0, 0)).toEqual([
      { port: 0, adminPort: 0 },
      { port: 0, adminPort: 0 },
    ]);
  });

  it('refuses a range past 65535', () => {
    expect(() => planMemberPorts(4, 65534, null)).toThrow(/INVALID_CONFIG|ports end at 65535/);
  });
});

describe('parseCores', () => {
  it('takes a number, auto, or nothing (one broker)', () => {
    expect(parseCores(undefined)).toBe(1);
    expect(parseCores('3')).toBe(3);
    expect(parseCores('auto')).toBe(Math.min(64, availableParallelism()));
    expect(() => parseCores('0')).toThrow(/--cores/);
    expect(() => parseCores('two')).toThrow(/--cores/);
  });
});
