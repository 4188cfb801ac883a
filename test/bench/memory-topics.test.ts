// bench/memory-topics.ts runs end to end (briefly, BENCH_SMOKE=1 so bench/results/ stays as it
// is): both topics and the floors under them (the broker alone, the encoding alone) at every rate
// with ordered percentiles, and the three send loops, each with the
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
  const cases = [
    'memory',
    'disk (interval)',
    'floor: memory, broker alone',
    'floor: disk (interval), broker alone',
    'floor: encode a batch of one',
  ];
  expect(latency.rows.map((row) => [row.topic, row['msg/s']])).toEqual([
    ...cases.map((name) => [name, 1000]),
    ...cases.map((name) => [name, 2000]),
  ]);
  for (const row of latency.rows) {
    const [p50, p99, p999] = [row['p50 µs'], row['p99 µs'], row['p99.9 µs']] as number[];
    expect(p50).toBeGreaterThan(0);
    expect(p50).toBeLessThanOrEqual(p99!);
    expect(p99).toBeLessThanOrEqual(p999!);
    expect(row['page faults/msg']).toBeGreaterThanOrEqual(0);
    if (String(row.topic).startsWith('floor: ')) {
      // A floor has no target of its own, and no produce requests: it calls the partition directly.
      expect([row['target p99 µs'], row.met, row['msgs/request']]).toEqual(['–', '–', '–']);
    } else {
      expect(row.met).toBe(p99! < (row['target p99 µs'] as number) ? 'yes' : 'no');
      expect(row['msgs/request']).toBeGreaterThanOrEqual(1);
    }
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
}, 120_000);
