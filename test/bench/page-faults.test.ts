// bench/page-faults.ts runs end to end (briefly, BENCH_SMOKE=1 so bench/results/ stays as it is):
// fresh memory faults on first touch and not on the second, and the transports' table of requests
// leaves no old-generation garbage per request where a Map and a Set are measured beside it.
import { expect, it } from 'vitest';
import { type BenchJson, runBenchScript } from './run-bench-script.js';

it('reports the cost of first touch and what one request in flight costs in each container', async () => {
  const results = await runBenchScript('page-faults.ts', [
    '--mib',
    '8',
    '--requests',
    '100000',
    '--rounds',
    '1',
  ]);
  expect(results.map((r) => r.benchmark)).toEqual(['page-faults', 'page-faults-containers']);
  const [touch, containers] = results as [BenchJson, BenchJson];
  expect(touch.command).toBe('npx tsx bench/page-faults.ts --mib 8 --requests 100000 --rounds 1');
  const [first, again] = touch.rows as [Record<string, number>, Record<string, number>];
  // Fresh pages fault on first touch (one fault per page, give or take the allocator's own pages).
  expect(first['page faults per page']).toBeGreaterThan(0.5);
  expect(first['µs per 4 KiB page (median)']).toBeGreaterThan(again['µs per 4 KiB page (median)']!);
  expect(containers.rows.map((row) => row.container)).toEqual(['Map', 'Set', 'CorrelationTable']);
  const table = containers.rows[2]!;
  expect(table['page faults per request']).toBeLessThan(0.001);
}, 60_000);
