// Memory of a process as the kernel sees it (/proc/<pid>/status), sampled on a timer: the battery's
// measure of what an attack made the broker hold. A safety ceiling kills the broker by its PID
// before a runaway attack can take the machine's memory from everything else running on it.

import { readFileSync } from 'node:fs';

export interface ProcMemory {
  /** Resident set size, bytes (VmRSS). */
  rss: number;
  /** Virtual size, bytes (VmSize): address space reserved, touched or not. */
  virtual: number;
}

/** The memory of `pid`, or null when the process is gone. */
export function readProcMemory(pid: number): ProcMemory | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const kib = (field: string) => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    return match ? Number(match[1]) * 1024 : Number.NaN;
  };
  return { rss: kib('VmRSS'), virtual: kib('VmSize') };
}

export interface MemorySample extends ProcMemory {
  /** performance.now() of the sample. */
  at: number;
}

export class MemorySampler {
  readonly samples: MemorySample[] = [];
  /** Set when the sampler killed the process for crossing the safety ceiling. */
  killedAt: MemorySample | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly pid: number,
    private readonly safetyCeiling: number,
    private readonly intervalMs = 50,
  ) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Takes one sample now (also used by the recovery wait). */
  sample(): MemorySample | null {
    const memory = readProcMemory(this.pid);
    // A process that exited but was not reaped yet has no VmRSS line: not a sample.
    if (memory === null || !Number.isFinite(memory.rss)) return null;
    const sample = { at: performance.now(), ...memory };
    this.samples.push(sample);
    if (sample.rss > this.safetyCeiling && this.killedAt === null) {
      this.killedAt = sample;
      try {
        process.kill(this.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    return sample;
  }

  /** Largest value of `field` among samples taken in [from, to]. */
  peak(field: keyof ProcMemory, from = 0, to = Number.POSITIVE_INFINITY): number {
    let peak = Number.NaN;
    for (const s of this.samples) {
      if (s.at < from || s.at > to) continue;
      if (!(s[field] <= peak)) peak = s[field];
    }
    return peak;
  }

  latest(): MemorySample | undefined {
    return this.samples[this.samples.length - 1];
  }
}
