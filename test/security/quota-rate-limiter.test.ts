// The rate limiter of src/broker/quotas/rate-limiter.ts, on a clock the test drives: a caller
// taking more than the rate is told to wait exactly as long as it ran ahead, past one burst.

import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/broker/quotas/rate-limiter.js';

describe('RateLimiter', () => {
  it('lets a burst through, then holds a caller to the rate', () => {
    const limiter = new RateLimiter(1000, 100);
    // 100 units at 1000/s is 100 ms of the rate: within the burst.
    expect(limiter.take(100, 0)).toBe(0);
    // 500 more run 500 ms ahead of the clock beyond the burst.
    expect(limiter.take(500, 0)).toBe(500);
    // A caller that waited as told finds the limit free again up to the burst.
    expect(limiter.take(100, 500)).toBe(100);
  });

  it('holds a steady caller to the rate over a long window', () => {
    const limiter = new RateLimiter(10_000, 100);
    let now = 0;
    let taken = 0;
    while (now < 60_000) {
      taken += 2_000;
      now += Math.max(1, limiter.take(2_000, now));
    }
    expect(taken / (now / 1000)).toBeGreaterThan(9_900);
    expect(taken / (now / 1000)).toBeLessThan(10_100);
  });

  it('never holds when the rate is zero (no limit) ', () => {
    expect(new RateLimiter(0).take(1e9, 0)).toBe(0);
  });
});
