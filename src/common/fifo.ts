// A first-in, first-out queue on a ring that doubles when full: push and shift are O(1) however
// long it gets, where Array#shift moves every element of a long array, and nothing is allocated
// per item once the ring is large enough.

export class Fifo<T> {
  private items: Array<T | undefined> = new Array<T | undefined>(16);
  private head = 0;
  private count = 0;

  get length(): number {
    return this.count;
  }

  push(item: T): void {
    if (this.count === this.items.length) this.grow();
    this.items[(this.head + this.count) & (this.items.length - 1)] = item;
    this.count++;
  }

  /** The oldest item, left in the queue. */
  peek(): T | undefined {
    return this.count === 0 ? undefined : this.items[this.head];
  }

  /** Takes the oldest item out. */
  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) & (this.items.length - 1);
    this.count--;
    return item;
  }

  /** Takes out every item `remove` chooses and returns them, oldest first; the rest keep their order. */
  removeWhere(remove: (item: T) => boolean): T[] {
    const removed: T[] = [];
    const kept: T[] = [];
    while (this.count > 0) {
      const item = this.shift() as T;
      (remove(item) ? removed : kept).push(item);
    }
    for (const item of kept) this.push(item);
    return removed;
  }

  private grow(): void {
    const bigger = new Array<T | undefined>(this.items.length * 2);
    for (let i = 0; i < this.count; i++) bigger[i] = this.items[(this.head + i) & (this.items.length - 1)];
    this.items = bigger;
    this.head = 0;
  }
}
