// How long a synchronous job of a fixed amount of CPU work takes on this machine at P99: the floor
// under any latency target for a path that needs that much CPU. Two measurements:
//  - the time this thread loses while it never yields: a loop reads the clock as fast as it can
//    and counts, per second, the gaps between reads past 5, 10, 20, 50, 100, 500 µs and 1 ms
//    (interrupts, the hypervisor taking the vCPU, other threads scheduled on it);
//  - jobs of W µs of pure computation (an integer loop calibrated to take W µs at its median),
//    run on the fixed-rate schedule of the latency benchmarks (a sleeping pacer thread wakes
//    this thread for each one, as it does for each message there): each job's wall time.
// A path whose P50 is W µs of CPU cannot have a P99 below this job's P99 on the same machine; the
// embedded send → consumer path is one such job (docs/performance.md, "The floors").
// Run: npx tsx bench/job-floor.ts [--work 1,3,5,10,15,25] [--rate 10000] [--seconds 3]
//      [--spin-seconds 3] [--json]
import { type FixedRate, paced } from './lib/fixed-rate.js';
import {
  argNumber,
  argNumbers,
  latencyHistogram,
  printResult,
  progress,
  type Row,
  writeResult,
} from './lib/report.js';

const rate = argNumber('rate', 10_000);
const seconds = argNumber('seconds', 3);
const spinSeconds = argNumber('spin-seconds', 3);
const works = argNumbers('work', [1, 3, 5, 10, 15, 25]);
if (works.some((w) => w <= 0)) throw new Error('--work needs positive µs values');

const GAP_FLOORS_US = [5, 10, 20, 50, 100, 500, 1000] as const;

/** Spins for `ms`, counting the gaps between consecutive clock reads by floor. */
function lostTime(ms: number): { reads: number; perSecond: number[]; lostShare: number } {
  const counts = GAP_FLOORS_US.map(() => 0);
  let lostUs = 0;
  let reads = 0;
  const start = performance.now();
  let previous = start;
  const end = start + ms;
  for (;;) {
    const now = performance.now();
    const gapUs = (now - previous) * 1000;
    previous = now;
    reads++;
    if (gapUs >= GAP_FLOORS_US[0]) {
      lostUs += gapUs;
      for (let i = GAP_FLOORS_US.length - 1; i >= 0; i--)
        if (gapUs >= GAP_FLOORS_US[i]!) {
          counts[i]!++;
          break;
        }
    }
    if (now >= end) break;
  }
  return { reads, perSecond: counts.map((c) => c / (ms / 1000)), lostShare: lostUs / (ms * 1000) };
}

/** `iterations` steps of an integer recurrence the compiler cannot fold away. */
function work(iterations: number, seed: number): number {
  let x = seed | 0;
  for (let i = 0; i < iterations; i++) x = (Math.imul(x, 1103515245) + 12345) | 0;
  return x;
}

/** Iterations of `work` per µs: the median of many timed runs (the median, so interruptions do not count). */
function calibrate(): number {
  const iterations = 20_000;
  const samples: number[] = [];
  let sink = 0;
  for (let i = 0; i < 2_000; i++) {
    const t = performance.now();
    sink ^= work(iterations, i);
    samples.push((performance.now() - t) * 1000);
  }
  if (sink === 0.5) throw new Error('unreachable');
  samples.sort((a, b) => a - b);
  return iterations / samples[samples.length >> 1]!;
}

async function jobCase(iterations: number) {
  const durations = latencyHistogram();
  const options: FixedRate = { rate, seconds };
  let index = 0;
  let sink = 0;
  let overTen = 0;
  await paced(options, () => {
    const t = performance.now();
    sink ^= work(iterations, index);
    const us = (performance.now() - t) * 1000;
    // The first second warms up, as in the latency benchmarks.
    if (index++ < rate) return;
    durations.recordValue(Math.max(1, Math.round(us)));
    if (us > 10) overTen++;
  });
  if (sink === 0.5) throw new Error('unreachable');
  return { durations, overTen };
}

async function main(): Promise<void> {
  progress(`spinning ${spinSeconds} s to count lost time`);
  const lost = lostTime(spinSeconds * 1000);
  const perUs = calibrate();
  const rows: Row[] = [];
  for (const us of works) {
    progress(`jobs of ${us} µs at ${rate}/s for ${seconds} s`);
    const { durations, overTen } = await jobCase(Math.max(1, Math.round(us * perUs)));
    rows.push({
      'job (µs of work)': us,
      'p50 µs': durations.getValueAtPercentile(50),
      'p99 µs': durations.getValueAtPercentile(99),
      'p99.9 µs': durations.getValueAtPercentile(99.9),
      'max µs': durations.maxValue,
      'share over 10 µs': `${((100 * overTen) / durations.totalCount).toFixed(2)}%`,
    });
  }
  const gaps = GAP_FLOORS_US.map((floor, i) => `≥ ${floor} µs: ${lost.perSecond[i]!.toFixed(0)}/s`).join(
    ', ',
  );
  const result = writeResult({
    benchmark: 'job-floor',
    title: `Wall time of a synchronous job of fixed CPU work, ${rate} jobs/s on the latency benchmarks' pacer`,
    command: `npx tsx bench/job-floor.ts --work ${works.join(',')} --rate ${rate} --seconds ${seconds} --spin-seconds ${spinSeconds}`,
    settings: {
      rate,
      seconds,
      spinSeconds,
      'work iterations per µs': Math.round(perUs),
      'gaps while spinning (time the thread lost), by floor': gaps,
      'share of the spinning time lost in gaps ≥ 5 µs': `${(100 * lost.lostShare).toFixed(2)}%`,
    },
    rows,
    notes: [
      `A spinning thread lost the CPU for ≥ 5 µs at these rates: ${gaps}; ${(100 * lost.lostShare).toFixed(2)}% of its time.`,
      'Each job is a fixed number of integer steps, calibrated so that its median takes the stated µs; its wall time includes any interruption, fault or descheduling that lands on it.',
      'A path that needs W µs of CPU has at best the P99 of the W-µs job here.',
    ],
  });
  printResult(result);
}

await main();
