// Descriptors of a wide broker: an embedded broker creates two topics of --partitions partitions
// each, stops, and starts again on the same directory. Reports the process's open descriptors
// (/proc/self/fd) after each step, the storage layer's count and cap (open-files.ts), and how long
// each step took. The data directory is on /dev/shm when there is one (descriptors are the point,
// not the disk), else in $BENCH_DIR or $TMPDIR; removed after.
// Run: npx tsx bench/wide-partitions.ts [--partitions 10000] [--max-open-files 1024] [--json]
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from '../src/embedded/broker.js';
import { configureOpenFiles, openFileStats } from '../src/storage/open-files.js';
import { argNumber, printResult, progress, type Row, writeResult } from './lib/report.js';

const partitions = argNumber('partitions', 10_000);
const maxOpenFiles = argNumber('max-open-files', 1024);
const base = existsSync('/dev/shm') ? '/dev/shm' : (process.env.BENCH_DIR ?? tmpdir());
const root = await mkdtemp(join(base, 'ms-bench-wide-'));
const descriptors = () => readdirSync('/proc/self/fd').length;
const rows: Row[] = [];
const step = async (name: string, run: () => Promise<void>): Promise<void> => {
  progress(name);
  const started = performance.now();
  await run();
  const stats = openFileStats();
  rows.push({
    step: name,
    seconds: Math.round((performance.now() - started) / 100) / 10,
    'process descriptors': descriptors(),
    'storage open': stats.open,
    'storage peak': stats.peak,
  });
};

await configureOpenFiles({ maxOpenFiles });
rows.push({
  step: 'before',
  seconds: null,
  'process descriptors': descriptors(),
  'storage open': 0,
  'storage peak': 0,
});
try {
  let broker = await Broker.start({ dataDir: root, port: 0, maxOpenFiles });
  const client = await broker.connect();
  for (const name of ['wide-a', 'wide-b'])
    await step(`create ${name} (${partitions} partitions)`, () =>
      client.admin.createTopic({ name, partitions }).then(() => undefined),
    );
  await client.close();
  await step('stop', () => broker.stop());
  await step(`start again (${2 * partitions} partitions)`, async () => {
    broker = await Broker.start({ dataDir: root, port: 0, maxOpenFiles });
  });
  await broker.stop();
} finally {
  await rm(root, { recursive: true, force: true });
}
printResult(
  writeResult({
    benchmark: 'wide-partitions',
    title: `A broker with 2 × ${partitions} partitions under a storage cap of ${maxOpenFiles} open files`,
    command: 'npx tsx bench/wide-partitions.ts',
    settings: { partitions, maxOpenFiles, dataDir: base },
    rows,
  }),
);
