// TopicPresenceCheck: one etcd read per name at a time, a cap on names looked up at once (past it
// the answer is 'unchecked'), and an etcd that cannot answer is 'failed'.

import { describe, expect, it } from 'vitest';
import { TopicPresenceCheck } from '../../../src/cluster/replication/topic-presence.js';

function deferredReads(stored: ReadonlySet<string>) {
  const reads: Array<{ topic: string; answer: () => void; fail: () => void }> = [];
  const check = new TopicPresenceCheck({
    maxConcurrent: 2,
    stored: (topic) =>
      new Promise<boolean>((resolve, reject) => {
        reads.push({
          topic,
          answer: () => resolve(stored.has(topic)),
          fail: () => reject(new Error('etcd down')),
        });
      }),
  });
  return { check, reads };
}

describe('TopicPresenceCheck', () => {
  it('answers stored or absent from the read, sharing one read among lookups of one name', async () => {
    const { check, reads } = deferredReads(new Set(['orders']));
    const first = check.check('orders');
    const second = check.check('orders');
    const absent = check.check('ghost');
    expect(reads.map((read) => read.topic)).toEqual(['orders', 'ghost']);
    for (const read of reads) read.answer();
    expect(await Promise.all([first, second, absent])).toEqual(['stored', 'stored', 'absent']);
    // Done: the next lookup reads again.
    const again = check.check('orders');
    expect(reads).toHaveLength(3);
    reads[2]!.answer();
    expect(await again).toBe('stored');
  });

  it('looks up at most maxConcurrent names at once; past that it is unchecked; an etcd failure is failed', async () => {
    const { check, reads } = deferredReads(new Set());
    const a = check.check('a');
    const b = check.check('b');
    expect(await check.check('c')).toBe('unchecked');
    expect(reads).toHaveLength(2);
    reads[0]!.fail();
    reads[1]!.answer();
    expect(await a).toBe('failed');
    expect(await b).toBe('absent');
    const c = check.check('c');
    expect(reads).toHaveLength(3);
    reads[2]!.answer();
    expect(await c).toBe('absent');
  });
});
