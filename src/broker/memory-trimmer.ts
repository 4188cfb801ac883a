// Returns freed Buffer memory to the operating system while the broker runs (docs/native-memory.md).
// After a burst of traffic RSS stays high although the broker holds nothing, for two reasons:
//
// 1. V8 frees a Buffer's bytes only in a full collection, which an idle broker may not run for
//    minutes. So one full collection is run (at most one per `minGcIntervalMs`) when ArrayBuffers
//    hold more than `thresholdBytes` beyond what the connections hold and either
//    a. the connections' held bytes have fallen by more than `thresholdBytes` since their peak
//       (a burst of large frames or of queued responses ended), or
//    b. those unheld Buffer bytes grew by more than `thresholdBytes` over their level after the
//       last collection, and stayed level (within `thresholdBytes` / 16) since the previous
//       check. Bytes that went through the broker without ever being held for long (a catch-up
//       read pushed straight into the kernel's socket buffer) leave garbage no connection
//       counted; once the broker is quiet, V8 has no reason to collect it soon. A collection that
//       frees nothing (the bytes are live, such as a memory topic's data) raises that level, so it
//       is not repeated at every check.
// 2. glibc keeps the pages of freed chunks in its arenas. So when the memory that neither V8's heap
//    nor ArrayBuffers account for (rss − heapTotal − arrayBuffers) has grown by more than
//    `thresholdBytes` over its level after the last trim, the growth is almost all free malloc
//    pages, and malloc_trim(0) runs on a libuv pool thread. A trim that returns nothing (the growth
//    was native memory in use) raises that level, so it is not repeated at every check.
//
// arrayBuffers, not external: it falls as soon as V8 frees the bytes, while `external` lags.

import type { NativeMemoryStatus } from '../common/native-memory.js';

export interface MemoryTrimSettings {
  /** How often to look (default 2000 ms). */
  intervalMs: number;
  /** Growth of memory outside V8 and Buffers, over its level after the last trim, that triggers one. */
  thresholdBytes: number;
  /** At most one forced full collection this often (default 10 000 ms). */
  minGcIntervalMs: number;
}

export const DEFAULT_MEMORY_TRIM: MemoryTrimSettings = {
  intervalMs: 2000,
  thresholdBytes: 32 * 1024 * 1024,
  minGcIntervalMs: 10_000,
};

type Usage = Pick<NodeJS.MemoryUsage, 'rss' | 'heapTotal' | 'arrayBuffers'>;

export interface TrimRecord {
  rssBefore: number;
  rssAfter: number;
  /** RSS given back (rssBefore − rssAfter, at least 0). */
  returnedBytes: number;
  durationMs: number;
  /** Time of the full collection run just before, when one ran (ms). */
  gcMs: number | null;
}

export interface MemoryTrimmerDeps {
  status: NativeMemoryStatus;
  /** malloc_trim(0) off the event loop (src/common/native-memory.ts trimMallocAsync). */
  trim: () => Promise<boolean>;
  /** Bytes the connections hold now (undecoded input, requests in flight); 0 without a listener. */
  heldBytes: () => number;
  /** A full garbage collection (collect-garbage.ts), or null to never force one. */
  collectGarbage: (() => void) | null;
  onTrim: (record: TrimRecord) => void;
  onGc?: (durationMs: number) => void;
  /** A check that failed (the trim could not be queued); the next check tries again. */
  onError: (error: unknown) => void;
}

/** Memory the process holds that neither V8's heap nor ArrayBuffers (Buffers) account for, bytes. */
export function unaccountedBytes(usage: Usage): number {
  return usage.rss - usage.heapTotal - usage.arrayBuffers;
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class MemoryTrimmer {
  private readonly settings: MemoryTrimSettings;
  private readonly deps: MemoryTrimmerDeps;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<TrimRecord | null> | null = null;
  /** Level of unaccounted memory after the last trim (or at start); lowered whenever it falls. */
  private floor: number;
  /** Highest held bytes since the last forced collection (or since the drop was seen freed). */
  private heldPeak = 0;
  private lastGcAt = Number.NEGATIVE_INFINITY;
  /** Buffer bytes no connection held after the last forced collection (or at start); lowered whenever they fall. */
  private unheldFloor: number;
  /** Buffer bytes no connection held at the previous check. */
  private unheldBefore: number;

  constructor(settings: MemoryTrimSettings, deps: MemoryTrimmerDeps) {
    if (!(settings.intervalMs > 0) || !(settings.thresholdBytes >= 0) || !(settings.minGcIntervalMs >= 0))
      throw new RangeError('memory trim: intervalMs must be > 0, thresholdBytes and minGcIntervalMs >= 0');
    this.settings = settings;
    this.deps = deps;
    const usage = process.memoryUsage();
    this.floor = unaccountedBytes(usage);
    this.unheldFloor = usage.arrayBuffers;
    this.unheldBefore = usage.arrayBuffers;
  }

  /** Whether trims can happen in this process (the addon loaded). */
  get active(): boolean {
    return this.deps.status.available;
  }

  /** Starts the periodic check (unref'd: it never keeps the process alive). No-op without the addon. */
  start(): void {
    if (!this.active || this.timer !== null) return;
    this.timer = setInterval(() => {
      this.check().catch(this.deps.onError);
    }, this.settings.intervalMs);
    this.timer.unref();
  }

  /** Stops the periodic check and waits for a trim in progress. */
  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /**
   * One check: a full collection when the connections let go of much more than ArrayBuffers gave
   * back, then a trim when unaccounted memory grew by more than the threshold since the last trim.
   * Resolves with what the trim returned, or null when none ran (one at a time, at most one per check).
   */
  check(): Promise<TrimRecord | null> {
    if (!this.active || this.running !== null) return Promise.resolve(null);
    this.running = this.run().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async run(): Promise<TrimRecord | null> {
    const sampled = process.memoryUsage();
    const gcMs = await this.collectIfReleased(sampled.arrayBuffers);
    // Sampled again only when a collection changed it.
    const before = gcMs === null ? sampled : process.memoryUsage();
    const level = unaccountedBytes(before);
    if (level < this.floor) this.floor = level;
    if (level - this.floor <= this.settings.thresholdBytes) return null;
    const started = performance.now();
    await this.deps.trim();
    const after = process.memoryUsage();
    const record: TrimRecord = {
      rssBefore: before.rss,
      rssAfter: after.rss,
      returnedBytes: Math.max(0, before.rss - after.rss),
      durationMs: performance.now() - started,
      gcMs,
    };
    this.floor = unaccountedBytes(after);
    this.deps.onTrim(record);
    return record;
  }

  /** Step 1 of the header comment; resolves with the collection's time, or null when none ran. */
  private async collectIfReleased(arrayBuffers: number): Promise<number | null> {
    const held = this.deps.heldBytes();
    if (held > this.heldPeak) this.heldPeak = held;
    const collect = this.deps.collectGarbage;
    if (collect === null) return null;
    const threshold = this.settings.thresholdBytes;
    const unheld = arrayBuffers - held;
    const grewSinceLastCheck = unheld - this.unheldBefore;
    this.unheldBefore = unheld;
    if (unheld < this.unheldFloor) this.unheldFloor = unheld;
    const released = this.heldPeak - held > threshold;
    // Already collected by V8 itself: nothing to force; watch for the next drop from here.
    if (released && unheld <= threshold) this.heldPeak = held;
    if (unheld <= threshold) return null;
    // Level, not merely not growing: a broker under load swings by far more between checks, falling
    // as V8 collects by itself, and is left to it.
    const quietGarbage =
      unheld - this.unheldFloor > threshold && Math.abs(grewSinceLastCheck) <= threshold / 16;
    if (!released && !quietGarbage) return null;
    if (performance.now() - this.lastGcAt < this.settings.minGcIntervalMs) return null;
    const started = performance.now();
    collect();
    const gcMs = performance.now() - started;
    this.lastGcAt = performance.now();
    this.heldPeak = held;
    this.deps.onGc?.(gcMs);
    // V8 frees ArrayBuffer bytes on a background thread just after the collection.
    await pause(100);
    const survived = process.memoryUsage().arrayBuffers - this.deps.heldBytes();
    this.unheldFloor = survived;
    this.unheldBefore = survived;
    return gcMs;
  }
}
