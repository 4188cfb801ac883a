// Orders push frames when a connection's socket is backed up: frames of higher-priority channels
// go out first, channels of equal priority in arrival order. While the socket keeps up, frames are
// written at once and this queue stays empty. Its bytes count towards the connection's outbound
// limit, so a client that grants credit but never reads is still cut.

export interface QueuedPush {
  priority: number;
  parts: Buffer[];
  bytes: number;
}

export class PushScheduler {
  /** One FIFO per priority in use, highest priority first. */
  private readonly queues = new Map<number, QueuedPush[]>();
  private priorities: number[] = [];
  private queuedBytes = 0;

  get bytes(): number {
    return this.queuedBytes;
  }

  get empty(): boolean {
    return this.queuedBytes === 0 && this.priorities.every((p) => (this.queues.get(p)?.length ?? 0) === 0);
  }

  enqueue(push: QueuedPush): void {
    let queue = this.queues.get(push.priority);
    if (queue === undefined) {
      queue = [];
      this.queues.set(push.priority, queue);
      this.priorities = [...this.queues.keys()].sort((a, b) => b - a);
    }
    queue.push(push);
    this.queuedBytes += push.bytes;
  }

  /** The next frame to write: the oldest of the highest priority that has one. */
  next(): QueuedPush | undefined {
    for (const priority of this.priorities) {
      const queue = this.queues.get(priority)!;
      const push = queue.shift();
      if (push !== undefined) {
        this.queuedBytes -= push.bytes;
        return push;
      }
    }
    return undefined;
  }

  clear(): void {
    this.queues.clear();
    this.priorities = [];
    this.queuedBytes = 0;
  }
}
