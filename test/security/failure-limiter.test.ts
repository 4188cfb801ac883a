// The rate limit of failed authentications, on a clock the test moves: the delay doubles per
// failure of the last minute up to its cap, an address at the cap is refused until its oldest
// failure is a minute old, and addresses do not affect each other.

import { describe, expect, it } from 'vitest';
import { FailureLimiter } from '../../src/security/failure-limiter.js';

function limiter(maxPerMinute = 3) {
  const clock = { now: 1_000_000 };
  return {
    clock,
    limiter: new FailureLimiter({ baseDelayMs: 100, maxDelayMs: 350, maxPerMinute, now: () => clock.now }),
  };
}

describe('FailureLimiter', () => {
  it('doubles the delay per failure in the last minute, up to the cap', () => {
    const { limiter: l } = limiter(10);
    expect([1, 2, 3, 4].map(() => l.recordFailure('10.0.0.1'))).toEqual([100, 200, 350, 350]);
    expect(l.recordFailure('10.0.0.2')).toBe(100);
  });

  it('refuses an address at the cap until its oldest failure of the window is a minute old', () => {
    const { clock, limiter: l } = limiter(3);
    for (let i = 0; i < 3; i++) {
      expect(l.blockedForMs('a')).toBe(0);
      l.recordFailure('a');
      clock.now += 1000;
    }
    expect(l.blockedForMs('a')).toBe(57_000);
    expect(l.blockedForMs('b')).toBe(0);
    clock.now += 57_000;
    expect(l.blockedForMs('a')).toBe(0);
    expect(l.failuresOf('a')).toBe(2);
    clock.now += 60_000;
    expect(l.failuresOf('a')).toBe(0);
    expect(l.recordFailure('a')).toBe(100);
  });
});
