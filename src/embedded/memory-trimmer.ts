// Returns freed malloc memory to the operating system while the broker runs. glibc keeps the pages
// of freed Buffers in its arenas (docs/native-memory.md), so after a burst of traffic RSS stays
// high although the broker holds nothing. Every `intervalMs` this looks at how much of RSS neither
// V8's heap nor Buffers account for (rss − heapTotal − external; external includes every Buffer's
// bytes); when that has grown by more than `thresholdBytes` over its level after the last trim, the
// difference is almost all free malloc pages, and it calls malloc_trim(0) on a libuv pool thread.
//
// Why this signal and not the connections' held bytes falling: a Buffer's memory goes back to
// malloc only when V8 collects it, seconds after the broker let go of it. Until then RSS and
// external fall together and there is nothing to trim; after it, external falls and RSS does not.
// A trim that returns nothing (the growth was native memory in use) raises the floor to the new
// level, so it is not repeated at every tick.

import type { NativeMemoryStatus } from '../common/native-memory.js';

export interface MemoryTrimSettings {
  /** How often to look (default 2000 ms). */
  intervalMs: number;
  /** Growth of memory outside V8 and Buffers, over its level after the last trim, that triggers one. */
  thresholdBytes: number;
}

export const DEFAULT_MEMORY_TRIM: MemoryTrimSettings = { intervalMs: 2000, thresholdBytes: 32 * 1024 * 1024 };

export interface TrimRecord {
  rssBefore: number;
  rssAfter: number;
  /** RSS given back (rssBefore − rssAfter, at least 0). */
  returnedBytes: number;
  durationMs: number;
}

export interface MemoryTrimmerDeps {
  status: NativeMemoryStatus;
  /** malloc_trim(0) off the event loop (src/common/native-memory.ts trimMallocAsync). */
  trim: () => Promise<boolean>;
  onTrim: (record: TrimRecord) => void;
}

/** Memory the process holds that neither V8's heap nor Buffers account for, bytes. */
export function unaccountedBytes(usage: Pick<NodeJS.MemoryUsage, 'rss' | 'heapTotal' | 'external'>): number {
  return usage.rss - usage.heapTotal - usage.external;
}

export class MemoryTrimmer {
  private readonly settings: MemoryTrimSettings;
  private readonly deps: MemoryTrimmerDeps;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<TrimRecord | null> | null = null;
  /** Level of unaccounted memory after the last trim (or at start); lowered whenever it falls. */
  private floor: number;

  constructor(settings: MemoryTrimSettings, deps: MemoryTrimmerDeps) {
    if (!(settings.intervalMs > 0) || !(settings.thresholdBytes >= 0))
      throw new RangeError('memory trim: intervalMs must be > 0 and thresholdBytes >= 0');
    this.settings = settings;
    this.deps = deps;
    this.floor = unaccountedBytes(process.memoryUsage());
  }

  /** Whether trims can happen in this process (the addon loaded). */
  get active(): boolean {
    return this.deps.status.available;
  }

  /** Starts the periodic check (unref'd: it never keeps the process alive). No-op without the addon. */
  start(): void {
    if (!this.active || this.timer !== null) return;
    this.timer = setInterval(() => void this.check(), this.settings.intervalMs);
    this.timer.unref();
  }

  /** Stops the periodic check and waits for a trim in progress. */
  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /**
   * One check: trims when unaccounted memory grew by more than the threshold since the last trim.
   * Resolves with what the trim returned, or null when none ran (one at a time, at most one per check).
   */
  check(): Promise<TrimRecord | null> {
    if (!this.active || this.running !== null) return Promise.resolve(null);
    const before = process.memoryUsage();
    const level = unaccountedBytes(before);
    if (level < this.floor) this.floor = level;
    if (level - this.floor <= this.settings.thresholdBytes) return Promise.resolve(null);
    this.running = this.trimNow(before.rss).finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async trimNow(rssBefore: number): Promise<TrimRecord> {
    const started = performance.now();
    await this.deps.trim();
    const after = process.memoryUsage();
    const record: TrimRecord = {
      rssBefore,
      rssAfter: after.rss,
      returnedBytes: Math.max(0, rssBefore - after.rss),
      durationMs: performance.now() - started,
    };
    this.floor = unaccountedBytes(after);
    this.deps.onTrim(record);
    return record;
  }
}
