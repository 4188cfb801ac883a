// Long-poll waiters of one partition: fetches and stream reads that found nothing new wait here
// until new batches become visible, the partition closes, or their time is up.

export class DataWaiters {
  private readonly waiters = new Set<() => void>();

  /** Settles when data becomes visible (`wakeAll`) or after `maxWaitMs`, whichever comes first. */
  wait(maxWaitMs: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, maxWaitMs);
      this.waiters.add(wake);
    });
  }

  /** Wakes every waiter (called on every publish: with none waiting it allocates nothing). */
  wakeAll(): void {
    if (this.waiters.size === 0) return;
    for (const wake of [...this.waiters]) wake();
  }
}
