// bench/job-floor.ts runs end to end (briefly, BENCH_SMOKE=1 so bench/results/ stays as it is):
// one row per job length, in the order asked, with ordered percentiles whose median is the job's
// calibrated length (within what a shared machine allows), and the lost-time counts of the spin.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');

interface Result {
  command: string;
  settings: Record<string, string | number>;
  rows: Array<Record<string, string | number>>;
}

it('reports each job length with its percentiles and the time a spinning thread lost', async () => {
  const { stdout } = await run(
    process.execPath,
    [
      '--import',
      'tsx',
      join(root, 'bench', 'job-floor.ts'),
      '--work',
      '2,20',
      '--rate',
      '2000',
      '--seconds',
      '1',
      '--spin-seconds',
      '0.5',
      '--json',
    ],
    { cwd: root, env: { ...process.env, BENCH_SMOKE: '1' } },
  );
  const result = JSON.parse(stdout) as Result;
  expect(result.command).toBe(
    'npx tsx bench/job-floor.ts --work 2,20 --rate 2000 --seconds 1 --spin-seconds 0.5',
  );
  expect(result.rows.map((row) => row['job (µs of work)'])).toEqual([2, 20]);
  for (const row of result.rows) {
    const [p50, p99, max] = [row['p50 µs'], row['p99 µs'], row['max µs']] as number[];
    expect(p50).toBeLessThanOrEqual(p99!);
    expect(p99).toBeLessThanOrEqual(max!);
  }
  // The calibrated 20-µs job takes about that at its median, and longer than the 2-µs one.
  const [short, long] = result.rows.map((row) => row['p50 µs'] as number);
  expect(long).toBeGreaterThan(short!);
  expect(long).toBeGreaterThanOrEqual(10);
  expect(result.settings['gaps while spinning (time the thread lost), by floor']).toMatch(/^≥ 5 µs: \d+\/s/);
});
