// bench/authz.ts --profile runs end to end (briefly, BENCH_SMOKE=1 so bench/results/ stays as it
// is): the broker's busy CPU samples in the workload window are counted, those inside the
// authorization check are a part of them, and the share and its standard error follow from the two.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');

type Row = Record<string, string | number | null>;

it('counts the broker CPU samples inside the authorization check (--profile)', async () => {
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', join(root, 'bench', 'authz.ts'), '--profile', '--messages', '100000', '--json'],
    { cwd: root, env: { ...process.env, BENCH_SMOKE: '1' } },
  );
  const result = JSON.parse(stdout) as { command: string; rows: Row[]; settings: Record<string, unknown> };
  expect(result.command).toBe('npx tsx bench/authz.ts --profile --messages 100000');
  const [busy, check] = result.rows as [Row, Row];
  expect(busy.samples).toBeGreaterThan(0);
  expect(check.samples).toBeGreaterThanOrEqual(0);
  expect(check.samples).toBeLessThanOrEqual(busy.samples as number);
  expect(check['share %']).toBeCloseTo(((check.samples as number) / (busy.samples as number)) * 100, 2);
  expect(result.settings['replay msg/s (profiled)']).toBeGreaterThan(0);
}, 90_000);
