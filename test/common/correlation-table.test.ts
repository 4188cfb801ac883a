// The table of requests in flight: a Map's behaviour for what the transports do with it (add by a
// rising id, find, remove, visit all while removing), whatever the ids and however long a request
// waits, and without the old-generation garbage per request that a Map left.

import { getHeapSpaceStatistics } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { CorrelationTable } from '../../src/common/correlation-table.js';

/** The same operations on the table and on a Map; both must hold the same entries. */
function mirror() {
  const table = new CorrelationTable<string>(8);
  const map = new Map<number, string>();
  return {
    table,
    set(id: number) {
      table.set(id, `r${id}`);
      map.set(id, `r${id}`);
    },
    delete(id: number) {
      expect(table.delete(id)).toBe(map.delete(id));
    },
    check() {
      expect(table.size).toBe(map.size);
      for (const [id, value] of map) expect(table.get(id)).toBe(value);
      const visited = new Map<number, string>();
      table.forEach((value, id) => {
        visited.set(id, value);
      });
      expect(visited).toEqual(map);
    },
  };
}

describe('CorrelationTable', () => {
  it('finds, removes and visits requests as a Map would, ids in order', () => {
    const m = mirror();
    for (let id = 1; id <= 100; id++) {
      m.set(id);
      if (id % 3 === 0) m.delete(id - 2);
    }
    m.check();
    expect(m.table.get(1000)).toBeUndefined();
    expect(m.table.delete(1000)).toBe(false);
    for (let id = 1; id <= 100; id++) m.delete(id);
    m.check();
    expect(m.table.size).toBe(0);
  });

  it('keeps a request that waits while the ids come round its slot (a long-poll beside many requests)', () => {
    const m = mirror();
    m.set(5);
    // Thousands of requests come and go, one or two at a time, while request 5 waits: their ids
    // pass its slot again and again, and the table stays small.
    for (let id = 7; id < 5000; id++) {
      m.set(id);
      if (id % 2 === 0) {
        m.delete(id - 1);
        m.delete(id);
      }
    }
    m.check();
    expect(m.table.get(5)).toBe('r5');
    expect(m.table.capacity).toBeLessThanOrEqual(16);
    m.delete(5);
    m.check();
  });

  it('grows with the requests in flight and finds every one after growing, overflowed ones too', () => {
    const m = mirror();
    m.set(3);
    for (let id = 11; id < 11 + 8 * 3; id += 8) m.set(id); // 11, 19, 27 share slot 3's neighbour
    for (let id = 1000; id < 1300; id++) m.set(id);
    m.check();
    expect(m.table.capacity).toBeGreaterThanOrEqual(2 * m.table.size);
    for (let id = 1000; id < 1300; id += 2) m.delete(id);
    m.check();
  });

  it('takes ids up to 2^32 − 1 (the wire’s correlation ids) and the wrap back to 1', () => {
    const m = mirror();
    for (let id = 0xffffffff - 20; id <= 0xffffffff; id++) m.set(id);
    for (let id = 1; id <= 20; id++) m.set(id);
    m.check();
    m.delete(0xffffffff);
    m.delete(1);
    m.check();
  });

  it('lets a visit remove the request it is given (expiry, a closed connection)', () => {
    const m = mirror();
    for (let id = 1; id <= 40; id++) m.set(id);
    const seen: number[] = [];
    m.table.forEach((_, id) => {
      seen.push(id);
      if (id % 2 === 1) m.delete(id);
    });
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    m.check();
    expect(m.table.size).toBe(20);
  });

  it('leaves no old-generation garbage per request at one request in flight', () => {
    const oldSpaceUsed = () =>
      getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!.space_used_size;
    const table = new CorrelationTable<{ id: number }>();
    const requests = 200_000;
    // The table of a transport lives as long as its connection: in the old generation. Enough
    // young garbage for a few scavenges moves it there, as time would.
    let sink: unknown[] = [];
    for (let i = 0; i < 2_000_000; i++) sink = [i, sink.length];
    expect(sink.length).toBe(2);
    // Warm up (the table itself and the loop's code settle first).
    for (let id = 0; id < 10_000; id++) {
      table.set(id, { id });
      table.delete(id);
    }
    const before = oldSpaceUsed();
    for (let id = 10_000; id < 10_000 + requests; id++) {
      table.set(id, { id });
      table.delete(id);
    }
    // A Map here grows the old generation by about 50 bytes a request (10 MB over this loop).
    expect(oldSpaceUsed() - before).toBeLessThan(1024 * 1024);
  });
});
