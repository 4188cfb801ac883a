// bench/tls.ts runs end to end (briefly, BENCH_SMOKE=1 so bench/results/ stays as it is): a
// plaintext row, a TLS row that names the TLS version and cipher the connection negotiated (so
// the figures are of an encrypted connection), and the ratio row computed from the two.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');

type Row = Record<string, string | number>;

it('measures plaintext and TLS in one run, and their ratio', async () => {
  const { stdout } = await run(
    process.execPath,
    [
      '--import',
      'tsx',
      join(root, 'bench', 'tls.ts'),
      '--messages',
      '10000',
      '--seconds',
      '1',
      '--rate',
      '500',
      '--json',
    ],
    { cwd: root, env: { ...process.env, BENCH_SMOKE: '1' } },
  );
  const result = JSON.parse(stdout) as { command: string; rows: Row[] };
  expect(result.command).toBe('npx tsx bench/tls.ts --messages 10000 --rate 500 --seconds 1 --rounds 1');
  const [plain, tls, ratio] = result.rows as [Row, Row, Row];
  expect(plain.transport).toBe('plaintext');
  expect(plain.protocol).toBe('plain TCP');
  expect(tls.transport).toBe('tls');
  expect(tls.protocol).toMatch(/^TLSv1\.[23] /);
  for (const row of [plain, tls]) {
    expect(row['produce msg/s']).toBeGreaterThan(0);
    expect(row['replay msg/s']).toBeGreaterThan(0);
    expect(row['e2e p50 µs']).toBeLessThanOrEqual(row['e2e p99 µs'] as number);
  }
  expect(ratio['produce msg/s']).toBeCloseTo(
    (tls['produce msg/s'] as number) / (plain['produce msg/s'] as number),
    1,
  );
  expect(ratio['replay msg/s']).toBeCloseTo(
    (tls['replay msg/s'] as number) / (plain['replay msg/s'] as number),
    1,
  );
}, 90_000);
