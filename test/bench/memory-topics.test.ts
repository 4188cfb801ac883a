// bench/memory-topics.ts runs end to end (briefly, BENCH_SMOKE=1 so bench/results/ stays as it
// is): both topics at every rate with ordered percentiles, and the three send loops, each with the
// produce requests the broker counted (an awaited send is one request per message).
import { expect, it } from 'vitest';
import { type BenchJson, runBenchScript } from './run-bench-script.js';

it('reports a memory and a disk topic side by side, and the send loops', async () => {
  const results = await runBenchScript('memory-topics.ts', [
    '--seconds',
    '1',
    '--rates',
    '1000,2000',
    '--loop-messages',
    '2000',
  ]);
  expect(results.map((r) => r.benchmark)).toEqual(['memory-topics', 'producer-flush']);
  const [latency, loops] = results as [BenchJson, BenchJson];
  expect(latency.command).toBe(
    'npx tsx bench/memory-topics.ts --seconds 1 --rates 1000,2000 --rounds 1 --loop-messages 2000',
  );
  expect(latency.rows.map((row) => [row.topic, row['msg/s']])).toEqual([
    ['memory', 1000],
    ['disk (interval)', 1000],
    ['memory', 2000],
    ['disk (interval)', 2000],
  ]);
  for (const row of latency.rows) {
    const [p50, p99, p999] = [row['p50 µs'], row['p99 µs'], row['p99.9 µs']] as number[];
    expect(p50).toBeGreaterThan(0);
    expect(p50).toBeLessThanOrEqual(p99!);
    expect(p99).toBeLessThanOrEqual(p999!);
    expect(row.met).toBe(p99! < (row['target p99 µs'] as number) ? 'yes' : 'no');
    expect(row['page faults/msg']).toBeGreaterThanOrEqual(0);
  }
  expect(loops.rows.map((row) => row.loop)).toEqual([
    'for await, one send per iteration',
    'plain loop, all sends in one turn',
    'await each send',
  ]);
  for (const row of loops.rows) expect(row['msg/s']).toBeGreaterThan(0);
  const awaited = loops.rows[2]!;
  expect(awaited['produce requests']).toBe(awaited.messages);
  // Sends made together share requests.
  expect(loops.rows[1]!['produce requests']).toBeLessThan(loops.rows[1]!.messages as number);
}, 60_000);
