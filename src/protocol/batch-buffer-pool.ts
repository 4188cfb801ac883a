// Buffers of sealed batches given back once nothing refers to them any more, for the next batches
// to be written into. Memory fresh from the allocator costs a page fault per 4 KiB page on first
// touch (about 10 µs each in a virtual machine: docs/native-memory.md), which at full rate is more
// than encoding the batch; a producer whose batches go over a socket gives each batch's buffer back
// when its request is answered, and its builders take them again. One pool per producer, shared by
// its partitions' builders, holding a few buffers at most: it never keeps more memory than that
// beside the batches in flight.

/** Smaller buffers are not worth keeping (and may be slices of Node's shared pool). */
export const RECYCLE_MIN_BYTES = 64 * 1024;

export class BatchBufferPool {
  private readonly free: Buffer[] = [];

  /** `maxBuffers`: how many given-back buffers are kept at most; others go to the collector. */
  constructor(private readonly maxBuffers = 4) {}

  /**
   * Takes back the memory of `batch` (a batch a builder sealed; the caller must not use it again).
   * Kept only when it is a whole buffer of its own of at least RECYCLE_MIN_BYTES and the pool has room.
   */
  give(batch: Buffer): void {
    if (this.free.length >= this.maxBuffers || batch.byteOffset !== 0) return;
    const memory = batch.buffer;
    if (memory.byteLength < RECYCLE_MIN_BYTES) return;
    this.free.push(Buffer.from(memory, 0, memory.byteLength));
  }

  /** A kept buffer of at least `bytes`, or null (its contents are the old batch's). */
  take(bytes: number): Buffer | null {
    for (let i = this.free.length - 1; i >= 0; i--) {
      const buffer = this.free[i]!;
      if (buffer.length >= bytes) {
        this.free[i] = this.free[this.free.length - 1]!;
        this.free.pop();
        return buffer;
      }
    }
    return null;
  }

  /** Buffers kept now. */
  get size(): number {
    return this.free.length;
  }
}
