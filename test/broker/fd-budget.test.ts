import { execFileSync } from 'node:child_process';
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  ADMIN_RESERVE,
  countOpenFds,
  PROCESS_SLACK,
  planFdBudget,
  readFdLimits,
  STORAGE_MIN_FILES,
  storageCapFor,
} from '../../src/broker/fd-budget.js';
import { tempDir, useTempDir } from '../harness/temp-dir.js';

let dir: string;
const scratch = useTempDir('ms-fd-budget-');
beforeEach(async () => {
  dir = scratch.path;
});

describe('reading the limit', () => {
  it('parses "Max open files" from a limits file, unlimited included', async () => {
    const limits = join(dir, 'limits');
    await writeFile(
      limits,
      'Limit                     Soft Limit           Hard Limit           Units     \n' +
        'Max processes             63704                63704                processes \n' +
        'Max open files            1024                 524288               files     \n',
    );
    expect(readFdLimits(limits)).toEqual({ soft: 1024, hard: 524288 });
    await writeFile(limits, 'Max open files            unlimited            unlimited            files\n');
    expect(readFdLimits(limits)).toEqual({ soft: Number.MAX_SAFE_INTEGER, hard: Number.MAX_SAFE_INTEGER });
    expect(readFdLimits(join(dir, 'missing'))).toBeNull();
  });

  it('raises the soft limit of its own process to the hard one (prlimit)', () => {
    // Node raises its soft limit to the hard one as it starts, so the child lowers its own soft
    // limit to 256 first (as a launcher that set one would), then raises it and reports both.
    const script = [
      "import { execFileSync } from 'node:child_process';",
      "execFileSync('prlimit', ['--pid', String(process.pid), '--nofile=256:1024']);",
      "const m = await import('./src/broker/fd-budget.ts');",
      'console.log(JSON.stringify(m.raiseFdLimit()));',
    ].join('\n');
    const out = execFileSync(
      'prlimit',
      ['--nofile=1024:1024', process.execPath, '--import', 'tsx', '--input-type=module', '-e', script],
      { encoding: 'utf8' },
    );
    expect(JSON.parse(out)).toEqual({
      before: { soft: 256, hard: 1024 },
      after: { soft: 1024, hard: 1024 },
      problem: null,
    });
  });

  it('counts the descriptors open on files under a directory', async () => {
    const before = countOpenFds(dir)!;
    const handle = await open(join(dir, 'segment.log'), 'w');
    try {
      const during = countOpenFds(dir)!;
      expect(during.under).toBe(before.under + 1);
      expect(during.total).toBe(before.total + 1);
    } finally {
      await handle.close();
    }
    expect(countOpenFds(dir)!.under).toBe(before.under);
  });
});

describe('splitting the limit', () => {
  it('gives connections what is left after the process, admin and storage reserves', () => {
    const budget = planFdBudget({
      limit: 1024,
      openNow: 30,
      storageOpen: 10,
      admin: true,
      configuredMaxConnections: 20_000,
    });
    // Process: 20 open besides storage + slack; storage: 10 open + a quarter of the limit.
    expect(budget.processReserve).toBe(20 + PROCESS_SLACK);
    expect(budget.adminReserve).toBe(ADMIN_RESERVE);
    expect(budget.allowedConnections).toBe(1024 - (20 + PROCESS_SLACK) - ADMIN_RESERVE - (10 + 256));
    expect(budget.maxConnections).toBe(budget.allowedConnections);
    expect(budget.storageReserve).toBe(10 + 256);
    expect(budget.processReserve + budget.adminReserve + budget.storageReserve + budget.maxConnections).toBe(
      1024,
    );
  });

  it('leaves what fewer configured connections do not need to storage', () => {
    const budget = planFdBudget({
      limit: 1_048_576,
      openNow: 40,
      storageOpen: 20,
      admin: false,
      configuredMaxConnections: 20_000,
    });
    expect(budget.maxConnections).toBe(20_000);
    expect(budget.adminReserve).toBe(0);
    expect(budget.storageReserve).toBe(1_048_576 - (20 + PROCESS_SLACK) - 20_000);
  });

  it('gives storage a quarter of the limit as its open-file cap, never fewer than the minimum', () => {
    expect(storageCapFor(20_000)).toBe(5000);
    expect(storageCapFor(100)).toBe(STORAGE_MIN_FILES);
  });

  it('uses a storage cap when storage has one, and never goes below zero', () => {
    expect(
      planFdBudget({
        limit: 4096,
        openNow: 20,
        storageOpen: 0,
        admin: true,
        configuredMaxConnections: 20_000,
        storageCap: 1000,
      }).maxConnections,
    ).toBe(4096 - (20 + PROCESS_SLACK) - ADMIN_RESERVE - 1000);
    const tiny = planFdBudget({
      limit: 100,
      openNow: 50,
      storageOpen: 0,
      admin: true,
      configuredMaxConnections: 10,
    });
    expect(tiny.maxConnections).toBe(0);
    expect(tiny.allowedConnections).toBe(0);
  });
});

describe("storage's share", () => {
  it('is the open-file cap Broker.start gives storage: a quarter of the limit, or maxOpenFiles', async () => {
    const { Broker } = await import('../../src/embedded/broker.js');
    const { openFileStats } = await import('../../src/storage/open-files.js');
    const dataDir = await tempDir('ms-fd-share-');
    let broker = await Broker.start({ dataDir, maxOpenFiles: 32 });
    expect(openFileStats().maxOpenFiles).toBe(32);
    await broker.stop();
    broker = await Broker.start({ dataDir });
    expect(openFileStats().maxOpenFiles).toBe(storageCapFor(readFdLimits()!.soft));
    await broker.stop();
  });
});
