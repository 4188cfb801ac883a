import { describe, expect, it } from 'vitest';
import { PushScheduler } from '../../../src/broker/server/push-scheduler.js';

const push = (priority: number, tag: string) => ({ priority, parts: [Buffer.from(tag)], bytes: tag.length });

describe('PushScheduler', () => {
  it('serves higher priorities first and equal priorities in arrival order', () => {
    const scheduler = new PushScheduler();
    expect(scheduler.empty).toBe(true);
    scheduler.enqueue(push(1, 'low-a'));
    scheduler.enqueue(push(9, 'high-a'));
    scheduler.enqueue(push(1, 'low-b'));
    scheduler.enqueue(push(9, 'high-b'));
    scheduler.enqueue(push(5, 'mid'));
    expect(scheduler.bytes).toBe(5 + 6 + 5 + 6 + 3);
    const order: string[] = [];
    for (let next = scheduler.next(); next !== undefined; next = scheduler.next())
      order.push(next.parts[0]!.toString());
    expect(order).toEqual(['high-a', 'high-b', 'mid', 'low-a', 'low-b']);
    expect(scheduler.bytes).toBe(0);
    expect(scheduler.empty).toBe(true);
    scheduler.enqueue(push(2, 'x'));
    scheduler.clear();
    expect(scheduler.next()).toBeUndefined();
  });
});
