import { describe, expect, it } from 'vitest';
import { murmur2, partitionForKey, RoundRobinPartitioner } from '../../src/protocol/partitioner.js';

describe('murmur2', () => {
  // Reference values of Kafka's Java client (Utils.murmur2) for these keys.
  it.each([
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ['abc', 479470107],
  ])('hashes %j like Kafka', (key, expected) => {
    expect(murmur2(Buffer.from(key))).toBe(expected);
  });

  it('maps a key to a stable partition', () => {
    const key = Buffer.from('order-1');
    const p = partitionForKey(key, 12);
    expect(p).toBeGreaterThanOrEqual(0);
    expect(p).toBeLessThan(12);
    expect(partitionForKey(Buffer.from('order-1'), 12)).toBe(p);
  });

  it('rotates unkeyed messages per topic', () => {
    const rr = new RoundRobinPartitioner();
    expect([rr.next('a', 3), rr.next('a', 3), rr.next('a', 3), rr.next('a', 3)]).toEqual([0, 1, 2, 0]);
    expect(rr.next('b', 3)).toBe(0);
  });
});
