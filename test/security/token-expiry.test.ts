// The expiry of a token-authenticated connection (src/security/token-expiry.ts): called once at the
// expiry, not before; at once when already past; never after cancel; and an expiry further away
// than setTimeout can wait (about 24.8 days) is reached in steps instead of firing at once.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { atExpiry } from '../../src/security/token-expiry.js';

const DAY = 24 * 60 * 60 * 1000;

describe('atExpiry', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('calls back once at the expiry, not before', () => {
    const expired = vi.fn();
    atExpiry(Date.now() + 1000, expired);
    vi.advanceTimersByTime(999);
    expect(expired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(expired).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(10_000);
    expect(expired).toHaveBeenCalledTimes(1);
  });

  it('calls back at once when the expiry is already past', () => {
    const expired = vi.fn();
    atExpiry(Date.now() - 1, expired);
    expect(expired).toHaveBeenCalledTimes(1);
  });

  it('never calls back once cancelled', () => {
    const expired = vi.fn();
    atExpiry(Date.now() + 1000, expired).cancel();
    vi.advanceTimersByTime(5000);
    expect(expired).not.toHaveBeenCalled();
  });

  it('waits out an expiry 30 days away, beyond the longest setTimeout', () => {
    const expired = vi.fn();
    atExpiry(Date.now() + 30 * DAY, expired);
    vi.advanceTimersByTime(1000);
    expect(expired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(29 * DAY);
    expect(expired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(DAY);
    expect(expired).toHaveBeenCalledTimes(1);
  });
});
