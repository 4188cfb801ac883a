// bench/page-faults.ts runs end to end (briefly, BENCH_SMOKE=1 so bench/results/ stays as it is):
// fresh memory faults on first touch and not on the second, and the transports' table of requests
// leaves no old-generation garbage per request where a Map and a Set are measured beside it.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');

interface Result {
  benchmark: string;
  command: string;
  rows: Array<Record<string, string | number>>;
}

it('reports the cost of first touch and what one request in flight costs in each container', async () => {
  const { stdout } = await run(
    process.execPath,
    [
      '--import',
      'tsx',
      join(root, 'bench', 'page-faults.ts'),
      '--mib',
      '8',
      '--requests',
      '100000',
      '--rounds',
      '1',
      '--json',
    ],
    { cwd: root, env: { ...process.env, BENCH_SMOKE: '1' } },
  );
  const results = stdout
    .trim()
    .split(/\n(?=\{\n {2}"benchmark")/)
    .map((text) => JSON.parse(text) as Result);
  expect(results.map((r) => r.benchmark)).toEqual(['page-faults', 'page-faults-containers']);
  const [touch, containers] = results as [Result, Result];
  expect(touch.command).toBe('npx tsx bench/page-faults.ts --mib 8 --requests 100000 --rounds 1');
  const [first, again] = touch.rows as [Record<string, number>, Record<string, number>];
  // Fresh pages fault on first touch (one fault per page, give or take the allocator's own pages).
  expect(first['page faults per page']).toBeGreaterThan(0.5);
  expect(first['µs per 4 KiB page (median)']).toBeGreaterThan(again['µs per 4 KiB page (median)']!);
  expect(containers.rows.map((row) => row.container)).toEqual(['Map', 'Set', 'CorrelationTable']);
  const table = containers.rows[2]!;
  expect(table['page faults per request']).toBeLessThan(0.001);
}, 60_000);
