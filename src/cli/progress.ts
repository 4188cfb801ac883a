// Progress of long runs on stderr: a single updating line on a terminal, nothing otherwise (logs and
// pipes get the final summary only). Rate is computed over the whole run.

export class Progress {
  private readonly started = Date.now();
  private lastDraw = 0;
  private done = 0;

  constructor(
    private readonly label: string,
    private readonly total: number | null,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  get enabled(): boolean {
    return this.stream.isTTY === true;
  }

  tick(count = 1): void {
    this.done += count;
    const now = Date.now();
    if (!this.enabled || now - this.lastDraw < 100) return;
    this.lastDraw = now;
    this.stream.write(`\r${this.line()}`);
  }

  private line(): string {
    const seconds = Math.max((Date.now() - this.started) / 1000, 0.001);
    const rate = Math.round(this.done / seconds).toLocaleString('en-US');
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
    if (this.enabled) this.stream.write(`\r${this.line()}\n`);
  }
}
