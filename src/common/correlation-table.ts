// Requests in flight on one connection, keyed by their correlation ids, without a Map.
//
// Why not a Map: a Map (or Set) that one request enters and leaves grows and shrinks its hash
// table as it goes between empty and one entry, and V8 makes a new table each time. A table of a
// long-lived Map lives in the old generation, so at one request in flight (a lone message at a
// fixed rate, the latency path) every request left old-generation garbage: the old generation
// grew by about 50 bytes a request, each new 256 KiB heap page it took was mapped afresh (64 page
// faults, about 10 µs each on the benchmark machine) and mark-compactions ran to clear it.
// `npx tsx bench/page-faults.ts` measures it with one request in flight at a time: a Map about
// 420 ns and 0.025 page faults per request, a Set about 340 ns and 0.020, this table 11 ns and
// none (docs/performance.md, "Fresh memory").
//
// Here: correlation ids are handed out in increasing order, so request `id` goes to slot
// `id & mask` of two fixed arrays (its id, and its value). A slot still held by an older request
// (one that waits long, such as a long-poll fetch, while the ids came round) sends the newer one to
// an overflow Map instead; the table doubles when more than half its slots are taken. Entering and
// leaving a slot allocates nothing.

const FREE = -1;

export class CorrelationTable<T> {
  private ids: Float64Array;
  private values: Array<T | undefined>;
  private mask: number;
  private live = 0;
  /** Requests whose slot an older one held when they were added. */
  private readonly overflow = new Map<number, T>();

  constructor(initialCapacity = 64) {
    let capacity = 8;
    while (capacity < initialCapacity) capacity *= 2;
    this.ids = new Float64Array(capacity).fill(FREE);
    this.values = new Array<T | undefined>(capacity).fill(undefined);
    this.mask = capacity - 1;
  }

  /** Requests in the table. */
  get size(): number {
    return this.live;
  }

  /** Slots in the table (tests). */
  get capacity(): number {
    return this.ids.length;
  }

  /** Adds request `id` (a non-negative integer not in the table). */
  set(id: number, value: T): void {
    if ((this.live + 1) * 2 > this.ids.length) this.grow();
    this.place(id, value);
    this.live++;
  }

  get(id: number): T | undefined {
    const slot = id & this.mask;
    if (this.ids[slot] === id) return this.values[slot];
    return this.overflow.size === 0 ? undefined : this.overflow.get(id);
  }

  /** Removes request `id`; false when it was not in the table. */
  delete(id: number): boolean {
    const slot = id & this.mask;
    if (this.ids[slot] === id) {
      this.ids[slot] = FREE;
      this.values[slot] = undefined;
      this.live--;
      return true;
    }
    if (this.overflow.size > 0 && this.overflow.delete(id)) {
      this.live--;
      return true;
    }
    return false;
  }

  /**
   * Calls `visit` for every request in the table; `visit` may delete the request it is given (a
   * request that failed or timed out), but no other.
   */
  forEach(visit: (value: T, id: number) => void): void {
    const { ids, values } = this;
    for (let slot = 0; slot < ids.length; slot++) {
      const id = ids[slot]!;
      if (id !== FREE) visit(values[slot] as T, id);
    }
    if (this.overflow.size > 0) for (const [id, value] of [...this.overflow]) visit(value, id);
  }

  private place(id: number, value: T): void {
    const slot = id & this.mask;
    if (this.ids[slot] === FREE) {
      this.ids[slot] = id;
      this.values[slot] = value;
    } else {
      this.overflow.set(id, value);
    }
  }

  /** Doubles the slots and places every request again (overflowed ones may find their slot now). */
  private grow(): void {
    const { ids, values } = this;
    const moved = [...this.overflow];
    this.overflow.clear();
    const capacity = ids.length * 2;
    this.ids = new Float64Array(capacity).fill(FREE);
    this.values = new Array<T | undefined>(capacity).fill(undefined);
    this.mask = capacity - 1;
    for (let slot = 0; slot < ids.length; slot++) {
      if (ids[slot] !== FREE) this.place(ids[slot]!, values[slot] as T);
    }
    for (const [id, value] of moved) this.place(id, value);
  }
}
