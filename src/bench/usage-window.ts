// The CPU time and event-loop busyness of the calling thread over its measured window: opened when
// warmup ends, closed when the actor finishes.

import type { EventLoopUtilization } from 'node:perf_hooks';
import { monotonicMs } from './clock.js';
import { threadCpuSeconds } from './cpu.js';
import type { ThreadUsage } from './protocol.js';

export class UsageWindow {
  private startedAt: number | null = null;
  private cpuAtStart: number | null = null;
  private eluAtStart: EventLoopUtilization | null = null;
  private timer: NodeJS.Timeout | null = null;

  /** Opens the window at monotonic time `at` (now if that has passed). */
  openAt(at: number): void {
    const delay = at - monotonicMs();
    if (delay <= 0) this.open();
    else this.timer = setTimeout(() => this.open(), delay);
  }

  private open(): void {
    if (this.startedAt !== null) return;
    this.startedAt = monotonicMs();
    this.cpuAtStart = threadCpuSeconds();
    this.eluAtStart = performance.eventLoopUtilization();
  }

  close(): ThreadUsage {
    if (this.timer !== null) clearTimeout(this.timer);
    // A run stopped before warmup ended has an empty window.
    this.open();
    const cpu = threadCpuSeconds();
    return {
      cpuSeconds: cpu === null || this.cpuAtStart === null ? null : cpu - this.cpuAtStart,
      wallSeconds: (monotonicMs() - this.startedAt!) / 1000,
      eventLoopUtilization: performance.eventLoopUtilization(this.eluAtStart!).utilization,
    };
  }
}
