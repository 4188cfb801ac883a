// Fetches reading at once, server-wide: a few (as many as the libuv threadpool has threads), the
// rest wait in one queue per connection, served in turn. Many large reads at once make each
// slower (they compete for the threadpool, the page cache copy and the garbage collector) and hold
// the threadpool from produce writes; and a fetch still queued when its connection closes is
// dropped, so a crowd of clients that asked for gigabytes and left costs nothing after it left.
import { errorOf } from '../../protocol/error-codes.js';

interface Waiter {
  grant: () => void;
  refuse: (error: Error) => void;
}

export class FetchScheduler {
  private running = 0;
  /** Waiting fetches per owner (a connection); the Map's order is the turn order. */
  private readonly queues = new Map<object, Waiter[]>();

  constructor(private readonly concurrency: number) {}

  get queued(): number {
    let count = 0;
    for (const queue of this.queues.values()) count += queue.length;
    return count;
  }

  /** Resolves when the owner's fetch may read; `release` must follow exactly once. */
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

  /** The owner left: its waiting fetches fail (CONNECTION_CLOSED) without reading anything. */
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
