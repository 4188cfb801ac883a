// Reads for clients at once, process-wide: fetches and the catch-up reads of push subscriptions.
// A few run (as many as the libuv threadpool has threads), the rest wait in one queue per owner (a
// connection, a subscription), served in turn. Many large reads at once make each slower (they
// compete for the threadpool, the page-cache copy and the garbage collector) and hold the
// threadpool from produce writes, which queue behind them; and a read still waiting when its owner
// goes is dropped, so a crowd of clients that asked for gigabytes and left costs nothing after.
import { errorOf } from '../../protocol/error-codes.js';

interface Waiter {
  grant: () => void;
  refuse: (error: Error) => void;
}

export class ReadScheduler {
  private running = 0;
  /** Waiting fetches per owner (a connection); the Map's order is the turn order. */
  private readonly queues = new Map<object, Waiter[]>();

  constructor(private readonly concurrency: number) {}

  get queued(): number {
    let count = 0;
    for (const queue of this.queues.values()) count += queue.length;
    return count;
  }

  /** Resolves when the owner may read; `release` must follow exactly once. */
  acquire(owner: object): Promise<void> {
    if (this.running < this.concurrency && this.queues.size === 0) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((grant, refuse) => {
      const queue = this.queues.get(owner);
      if (queue === undefined) this.queues.set(owner, [{ grant, refuse }]);
      else queue.push({ grant, refuse });
    });
  }

  release(): void {
    this.running--;
    this.next();
  }

  /** The owner left: its waiting reads fail (CONNECTION_CLOSED) without reading anything. */
  cancel(owner: object): void {
    const queue = this.queues.get(owner);
    if (queue === undefined) return;
    this.queues.delete(owner);
    for (const waiter of queue) waiter.refuse(errorOf('CONNECTION_CLOSED', 'the client left'));
  }

  private next(): void {
    while (this.running < this.concurrency) {
      const first = this.queues.entries().next();
      if (first.done === true) return;
      const [owner, queue] = first.value;
      const waiter = queue.shift()!;
      // The owner goes to the back of the turn order (or leaves it when it has nothing waiting).
      this.queues.delete(owner);
      if (queue.length > 0) this.queues.set(owner, queue);
      this.running++;
      waiter.grant();
    }
  }
}

/** Reads at once: libuv's threadpool has four threads (UV_THREADPOOL_SIZE). */
export const sharedReads = new ReadScheduler(4);
