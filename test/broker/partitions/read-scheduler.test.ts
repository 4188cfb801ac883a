import { describe, expect, it } from 'vitest';
import { ReadScheduler } from '../../../src/broker/partitions/read-scheduler.js';

describe('ReadScheduler', () => {
  it('runs at most its concurrency at once and serves waiting owners in turn', async () => {
    const scheduler = new ReadScheduler(1);
    const a = {};
    const b = {};
    const order: string[] = [];
    await scheduler.acquire(a);
    const waiting = [
      scheduler.acquire(a).then(() => order.push('a2')),
      scheduler.acquire(a).then(() => order.push('a3')),
      scheduler.acquire(b).then(() => order.push('b1')),
    ];
    expect(scheduler.queued).toBe(3);
    for (let i = 0; i < 3; i++) {
      scheduler.release();
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(waiting);
    // a asked twice before b asked once; after a's turn, b goes before a's second read.
    expect(order).toEqual(['a2', 'b1', 'a3']);
    scheduler.release();
  });

  it('drops the waiting reads of an owner that left', async () => {
    const scheduler = new ReadScheduler(1);
    const gone = {};
    await scheduler.acquire({});
    const dropped = scheduler.acquire(gone);
    scheduler.cancel(gone);
    await expect(dropped).rejects.toMatchObject({ codeName: 'CONNECTION_CLOSED' });
    expect(scheduler.queued).toBe(0);
    scheduler.release();
    // The slot is free again: the next read starts at once.
    await scheduler.acquire({});
  });
});
