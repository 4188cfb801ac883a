// bench/cores.ts runs end to end (briefly, BENCH_SMOKE=1 so bench/results/ stays as it is): both
// cases are measured in one run, the 2-broker case spreads the partitions over both members, every
// send is acknowledged, and no broker, etcd or producer process is left behind.
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { etcdAvailable } from '../harness/etcd.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const script = join(root, 'bench', 'cores.ts');

interface Row {
  case: string;
  brokers: number;
  msgPerSec: number;
  ratio: number;
  cpuPercent: { brokers: number; producers: number; etcd: number };
  idleCpuPercent: number;
  brokerUsPerMsg: number;
  producerUsPerMsg: number;
  partitionsPerBroker: Record<string, number>;
  failed: number;
  msgPerSecPerRound: number[];
}

/** Command lines of live processes of the benchmark: its producers, and serve on its data directories. */
async function leftovers(): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const args = await readFile(join('/proc', entry, 'cmdline'), 'utf8').catch(() => '');
    const stat = await readFile(join('/proc', entry, 'stat'), 'utf8').catch(() => '');
    if (stat.split(') ')[1]?.startsWith('Z')) continue;
    if ((args.includes(script) && args.includes('--role')) || args.includes('ms-cores-bench-'))
      found.push(`${entry}: ${args.replaceAll('\0', ' ')}`);
  }
  return found;
}

it.skipIf(!etcdAvailable())(
  'measures 1 broker and 2 brokers side by side',
  async () => {
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', script, '--seconds', '1', '--warmup', '0.5', '--window', '500', '--json'],
      { cwd: root, env: { ...process.env, BENCH_SMOKE: '1' } },
    );
    const result = JSON.parse(stdout) as { command: string; settings: string; rows: Row[] };
    expect(result.command).toBe(
      'npx tsx bench/cores.ts --seconds 1 --warmup 0.5 --producers 2 --partitions 8 --window 500 --rounds 1',
    );
    expect(result.settings).toMatch(/100-byte messages, acks 1, durability interval/);
    expect(result.rows.map((row) => row.brokers)).toEqual([1, 1, 2]);
    for (const row of result.rows) {
      expect(row.msgPerSec).toBeGreaterThan(0);
      expect(row.failed).toBe(0);
      expect(row.msgPerSecPerRound).toEqual([row.msgPerSec]);
      expect(row.cpuPercent.brokers).toBeGreaterThan(0);
      expect(row.cpuPercent.producers).toBeGreaterThan(0);
      expect(row.idleCpuPercent).toBeGreaterThanOrEqual(0);
      expect(row.brokerUsPerMsg).toBeGreaterThan(0);
      expect(row.producerUsPerMsg).toBeGreaterThan(0);
      expect(Object.values(row.partitionsPerBroker).reduce((sum, count) => sum + count, 0)).toBe(8);
    }
    expect(result.rows[0]!.ratio).toBe(1);
    // Two members lead four partitions each (replication factor 1, assigned round-robin).
    expect(result.rows[1]!.partitionsPerBroker).toEqual({ 1: 8 });
    expect(result.rows[2]!.partitionsPerBroker).toEqual({ 1: 4, 2: 4 });
    expect(await leftovers()).toEqual([]);
  },
  120_000,
);
