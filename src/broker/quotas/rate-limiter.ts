// A rate limit as a theoretical arrival time (GCRA): each amount taken pushes the time at which the
// limit would next be free by amount / rate; the caller is held for as long as that time runs more
// than the burst ahead of now. Over any long window the amount taken is held to the rate (plus one
// burst); nothing is refused, callers are only slowed down.

/** How far ahead of now the limit may run before callers are held (absorbs one request's size). */
export const DEFAULT_BURST_MS = 100;

export class RateLimiter {
  readonly ratePerSec: number;
  private readonly burstMs: number;
  /** When the amounts taken so far would have been spent at the rate. */
  private freeAt = 0;

  constructor(ratePerSec: number, burstMs = DEFAULT_BURST_MS) {
    this.ratePerSec = ratePerSec;
    this.burstMs = burstMs;
  }

  /** Nothing taken is still owed at `now`, and for at least `forMs`: dropping the limiter loses no hold. */
  idle(now: number, forMs = 0): boolean {
    return this.freeAt + forMs <= now;
  }

  /** Takes `amount` at `now`; returns how long (ms) the caller should wait before it takes more. */
  take(amount: number, now: number): number {
    if (this.ratePerSec <= 0) return 0;
    this.freeAt = Math.max(this.freeAt, now - this.burstMs) + (amount * 1000) / this.ratePerSec;
    return Math.max(0, Math.ceil(this.freeAt - now - this.burstMs));
  }
}
