// bench/tls.ts runs end to end (briefly, BENCH_SMOKE=1 so bench/results/ stays as it is): a
// plaintext row, a TLS row that names the TLS version and cipher the connection negotiated (so
// the figures are of an encrypted connection), a TLS + SCRAM row that names the mechanism too, and
// the ratio rows computed from them.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');

type Row = Record<string, string | number>;

it('measures plaintext, TLS and TLS + SCRAM in one run, and their ratios', async () => {
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
  const [plain, tls, scram, tlsRatio, scramRatio] = result.rows as [Row, Row, Row, Row, Row];
  expect(plain.transport).toBe('plaintext');
  expect(plain.protocol).toBe('plain TCP');
  expect(tls.transport).toBe('tls');
  expect(tls.protocol).toMatch(/^TLSv1\.[23] /);
  expect(scram.transport).toBe('tls+scram');
  expect(scram.protocol).toMatch(/^TLSv1\.[23] .* \+ SCRAM-SHA-256$/);
  for (const row of [plain, tls, scram]) {
    expect(row['produce msg/s']).toBeGreaterThan(0);
    expect(row['replay msg/s']).toBeGreaterThan(0);
    expect(row['e2e p50 µs']).toBeLessThanOrEqual(row['e2e p99 µs'] as number);
  }
  for (const [row, ratio, label] of [
    [tls, tlsRatio, 'tls ÷ plaintext'],
    [scram, scramRatio, 'tls+scram ÷ plaintext'],
  ] as const) {
    expect(ratio.transport).toBe(label);
    expect(ratio['produce msg/s']).toBeCloseTo(
      (row['produce msg/s'] as number) / (plain['produce msg/s'] as number),
      1,
    );
    expect(ratio['replay msg/s']).toBeCloseTo(
      (row['replay msg/s'] as number) / (plain['replay msg/s'] as number),
      1,
    );
  }
}, 90_000);
