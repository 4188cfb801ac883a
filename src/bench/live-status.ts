// The live line on stderr while a run goes: phase, elapsed time, and per-second rates of the last
// interval (not the run average, so stalls show). Like src/cli/progress.ts it draws only on a
// terminal; that class counts one thing at an average rate, this needs three counts and a phase.

import { monotonicMs } from './clock.js';
import type { Schedule } from './protocol.js';

export interface Counts {
  sent: number;
  acked: number;
  consumed: number;
}

const REDRAW_MS = 500;
const integer = (n: number) => Math.round(n).toLocaleString('en-US');

export class LiveStatus {
  private previous: Counts = { sent: 0, acked: 0, consumed: 0 };
  private previousAt = monotonicMs();
  private timer: NodeJS.Timeout | null = null;
  private drawn = false;

  constructor(
    private readonly schedule: Schedule,
    private readonly read: () => Counts,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  start(): void {
    if (this.stream.isTTY !== true) return;
    this.timer = setInterval(() => this.draw(), REDRAW_MS);
    this.timer.unref();
  }

  private phase(now: number): string {
    if (now < this.schedule.warmupEnd) return `warmup ${((now - this.schedule.startAt) / 1000).toFixed(1)} s`;
    const measured = ((now - this.schedule.warmupEnd) / 1000).toFixed(1);
    if (this.schedule.endAt !== null && now >= this.schedule.endAt) return 'draining';
    return `measuring ${measured} s`;
  }

  private draw(): void {
    const now = monotonicMs();
    const counts = this.read();
    const seconds = Math.max((now - this.previousAt) / 1000, 0.001);
    const acked = integer((counts.acked - this.previous.acked) / seconds);
    const consumed = integer((counts.consumed - this.previous.consumed) / seconds);
    this.previous = counts;
    this.previousAt = now;
    const line =
      `[${this.phase(now)}] sent ${integer(counts.sent)}  acked ${integer(counts.acked)} (${acked} msg/s)` +
      `  consumed ${integer(counts.consumed)} (${consumed} msg/s)`;
    this.stream.write(`\r${line}\x1b[K`);
    this.drawn = true;
  }

  /** Clears the line so the summary starts on a clean one. */
  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    if (this.drawn) this.stream.write('\r\x1b[K');
  }
}
