// Rate limit of failed authentications per source address: each failure is answered after a delay
// that doubles with the failures of the last minute (first failure: the base delay), and an address
// with `maxPerMinute` failures in the last minute is refused at once until the oldest one is a
// minute old. Pure bookkeeping: the clock is passed in, the caller waits the delay.

export interface FailureLimiterOptions {
  /** Delay before the answer to a first failure, in ms (doubled per failure in the last minute). */
  readonly baseDelayMs: number;
  /** Largest delay, in ms. */
  readonly maxDelayMs: number;
  /** Failures one address may have within a minute before it is refused without trying. */
  readonly maxPerMinute: number;
  readonly now?: () => number;
}

const WINDOW_MS = 60_000;
/** Addresses tracked before old entries are swept (a flood from many addresses stays bounded). */
const SWEEP_AT = 10_000;

export class FailureLimiter {
  private readonly options: FailureLimiterOptions;
  private readonly now: () => number;
  /** Times of the failures of the last minute, per address, oldest first. */
  private readonly failures = new Map<string, number[]>();

  constructor(options: FailureLimiterOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  private recent(address: string, now: number): number[] {
    const times = this.failures.get(address);
    if (times === undefined) return [];
    while (times.length > 0 && times[0]! <= now - WINDOW_MS) times.shift();
    if (times.length === 0) this.failures.delete(address);
    return times;
  }

  /** Milliseconds until this address may try again (0: it may now). */
  blockedForMs(address: string): number {
    const now = this.now();
    const times = this.recent(address, now);
    if (times.length < this.options.maxPerMinute) return 0;
    return times[times.length - this.options.maxPerMinute]! + WINDOW_MS - now;
  }

  /** Records a failure; returns how long to wait before answering it. */
  recordFailure(address: string): number {
    const now = this.now();
    if (this.failures.size >= SWEEP_AT) this.sweep(now);
    const times = this.recent(address, now);
    times.push(now);
    // Kept to the last maxPerMinute: enough to know when the address may try again.
    if (times.length > this.options.maxPerMinute) times.shift();
    this.failures.set(address, times);
    const delay = this.options.baseDelayMs * 2 ** (times.length - 1);
    return Math.min(delay, this.options.maxDelayMs);
  }

  /** Failures of the last minute from this address. */
  failuresOf(address: string): number {
    return this.recent(address, this.now()).length;
  }

  private sweep(now: number): void {
    for (const address of [...this.failures.keys()]) this.recent(address, now);
  }
}
