// The FIFO ring: order kept across growth and wrap-around, removeWhere keeps the rest in order,
// and it matches an array used as a queue under a random mix of operations.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Fifo } from '../../src/common/fifo.js';

describe('Fifo', () => {
  it('keeps order across growth while its head has wrapped around', () => {
    const fifo = new Fifo<number>();
    for (let i = 0; i < 10; i++) fifo.push(i);
    for (let i = 0; i < 8; i++) expect(fifo.shift()).toBe(i);
    // The head is at 8 of 16: the next pushes wrap around, then the ring doubles twice.
    for (let i = 10; i < 60; i++) fifo.push(i);
    expect(fifo.length).toBe(52);
    expect(fifo.peek()).toBe(8);
    const out: number[] = [];
    while (fifo.length > 0) out.push(fifo.shift()!);
    expect(out).toEqual(Array.from({ length: 52 }, (_, i) => i + 8));
    expect(fifo.shift()).toBeUndefined();
    expect(fifo.peek()).toBeUndefined();
  });

  it('removeWhere returns what it took, oldest first, and keeps the rest in order', () => {
    const fifo = new Fifo<number>();
    for (let i = 0; i < 40; i++) fifo.push(i);
    fifo.shift();
    expect(fifo.removeWhere((n) => n % 3 === 0)).toEqual([3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36, 39]);
    const rest: number[] = [];
    while (fifo.length > 0) rest.push(fifo.shift()!);
    expect(rest).toEqual(Array.from({ length: 39 }, (_, i) => i + 1).filter((n) => n % 3 !== 0));
  });

  it('behaves as an array queue under any mix of operations', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: 0, max: 99 }), fc.constant(-1), fc.constant(-2))),
        (ops) => {
          const fifo = new Fifo<number>();
          let model: number[] = [];
          for (const op of ops) {
            if (op === -1) expect(fifo.shift()).toBe(model.shift());
            else if (op === -2) {
              expect(fifo.removeWhere((n) => n % 2 === 1)).toEqual(model.filter((n) => n % 2 === 1));
              model = model.filter((n) => n % 2 === 0);
            } else {
              fifo.push(op);
              model.push(op);
            }
            expect(fifo.length).toBe(model.length);
            expect(fifo.peek()).toBe(model[0]);
          }
        },
      ),
    );
  });
});
