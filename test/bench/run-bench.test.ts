import { describe, expect, it } from 'vitest';
import { monotonicMs } from '../../src/bench/clock.js';
import { LiveStatus } from '../../src/bench/live-status.js';
import { BENCH_DEFAULTS, parseBenchOptions } from '../../src/bench/options.js';
import { runBench } from '../../src/bench/run-bench.js';

describe('runBench', () => {
  it('ends a long run when aborted (Ctrl-C), still draining and reporting consistent counts', async () => {
    const options = parseBenchOptions(
      { ...BENCH_DEFAULTS, embedded: true, duration: '600', warmup: '0', rate: '2000' },
      { brokerFlag: false },
    );
    const controller = new AbortController();
    const report = await runBench(options, {
      brokers: '',
      signal: controller.signal,
      onStart: () => setTimeout(() => controller.abort(), 500),
    });
    expect(report.interrupted).toBe(true);
    expect(report.produce.totalMessages).toBeGreaterThan(0);
    // Far fewer than 600 s at 2,000 msg/s: the producers stopped when told.
    expect(report.produce.totalMessages).toBeLessThan(600 * 2000);
    expect(report.consume!.totalMessages).toBe(report.produce.totalMessages);
    expect(report.missing).toBe(0);
  });
});

describe('LiveStatus', () => {
  it('draws phase, counts and interval rates on a terminal, then clears its line', async () => {
    const writes: string[] = [];
    const stream = {
      isTTY: true,
      write: (text: string) => writes.push(text),
    } as unknown as NodeJS.WriteStream;
    const now = monotonicMs();
    let acked = 0;
    const status = new LiveStatus(
      { startAt: now, warmupEnd: now, endAt: now + 60_000 },
      () => {
        acked += 1000;
        return { sent: acked, acked, consumed: acked / 2 };
      },
      stream,
    );
    status.start();
    await new Promise((resolve) => setTimeout(resolve, 1100));
    status.stop();
    expect(writes.length).toBeGreaterThanOrEqual(2);
    expect(writes[0]).toMatch(
      /^\r\[measuring \d+\.\d s\] sent 1,000 {2}acked 1,000 \([\d,]+ msg\/s\) {2}consumed 500 \([\d,]+ msg\/s\)/,
    );
    expect(writes.at(-1)).toBe('\r\x1b[K');
  });

  it('draws nothing when stderr is not a terminal', async () => {
    const writes: string[] = [];
    const stream = {
      isTTY: false,
      write: (text: string) => writes.push(text),
    } as unknown as NodeJS.WriteStream;
    const status = new LiveStatus(
      { startAt: 0, warmupEnd: 0, endAt: null },
      () => ({ sent: 1, acked: 1, consumed: 1 }),
      stream,
    );
    status.start();
    await new Promise((resolve) => setTimeout(resolve, 600));
    status.stop();
    expect(writes).toEqual([]);
  });
});
