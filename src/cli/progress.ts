// Progress of long runs on standard error, never on standard output (which carries the result, or
// the JSON document with --json). On a terminal: one line redrawn in place. Elsewhere (a pipe, a log
// file, CI): when asked, one line every `lineIntervalMs` (a JSON line with --json), so a long run
// shows that it is alive and how fast it goes before its summary. Rate is over the whole run.

export interface ProgressOutput {
  /** Raw writes to standard error when it is a terminal; null otherwise. */
  terminal: { write(text: string): void } | null;
  /** One line to standard error. */
  err(text: string): void;
  json: boolean;
}

export class Progress {
  private readonly started = Date.now();
  private lastDraw = 0;
  private done = 0;
  private readonly timer: NodeJS.Timeout | null = null;

  /** `lineIntervalMs`: when standard error is not a terminal, a line this often (null: none). */
  constructor(
    private readonly label: string,
    private readonly total: number | null,
    private readonly output: ProgressOutput,
    lineIntervalMs: number | null = null,
  ) {
    if (output.terminal === null && lineIntervalMs !== null && lineIntervalMs > 0) {
      // A timer rather than a check per tick: a run that stalls still reports (with no progress).
      this.timer = setInterval(() => this.printLine(), lineIntervalMs);
      this.timer.unref();
    }
  }

  tick(count = 1): void {
    this.done += count;
    const terminal = this.output.terminal;
    if (terminal === null) return;
    const now = Date.now();
    if (now - this.lastDraw < 100) return;
    this.lastDraw = now;
    terminal.write(`\r${this.line()}`);
  }

  private printLine(): void {
    if (this.output.json) {
      this.output.err(
        JSON.stringify({
          progress: {
            label: this.label,
            messages: this.done,
            total: this.total,
            elapsedMs: this.elapsedMs,
            messagesPerSecond: Math.round(this.rate()),
          },
        }),
      );
    } else {
      this.output.err(`${this.line()} after ${(this.elapsedMs / 1000).toFixed(1)} s`);
    }
  }

  private rate(): number {
    return this.done / Math.max((Date.now() - this.started) / 1000, 0.001);
  }

  private line(): string {
    const rate = Math.round(this.rate()).toLocaleString('en-US');
    const of = this.total === null ? '' : `/${this.total.toLocaleString('en-US')}`;
    return `${this.label} ${this.done.toLocaleString('en-US')}${of} messages (${rate} msg/s)`;
  }

  get count(): number {
    return this.done;
  }

  get elapsedMs(): number {
    return Date.now() - this.started;
  }

  finish(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.output.terminal?.write(`\r${this.line()}\n`);
  }
}
