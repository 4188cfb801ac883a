// The data directory's lock and its checks, in one process: forged lock files stand for holders
// that died (kill -9), pids that were reused, another boot, another pid namespace.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdir, readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  bootId,
  LOCK_FILE,
  type LockRecord,
  lockDataDir,
  processStartTime,
} from '../../src/broker/data-dir-lock.js';
import { Broker } from '../../src/embedded/broker.js';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import { useTempDir } from '../harness/temp-dir.js';

let base: string;
let dataDir: string;
const children: ChildProcess[] = [];
const scratch = useTempDir('ms-lock-');
beforeEach(async () => {
  base = scratch.path;
  dataDir = join(base, 'data');
});
afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

function pidNamespace(): string {
  return execFileSync('readlink', ['/proc/self/ns/pid']).toString().trim();
}

async function forgeLock(record: Partial<LockRecord>): Promise<void> {
  await mkdir(dataDir, { recursive: true });
  const full: LockRecord = {
    token: 'forged',
    pid: 999_999,
    bootId: bootId(),
    startTime: '1',
    pidNamespace: pidNamespace(),
    host: hostname(),
    command: 'memorystreamer serve (forged)',
    since: new Date().toISOString(),
    ...record,
  };
  await writeFile(join(dataDir, LOCK_FILE), JSON.stringify(full));
}

/** A live process that is not this one: `sleep`, for its pid and start time. */
async function liveProcess(): Promise<number> {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  children.push(child);
  await new Promise((resolve) => child.once('spawn', resolve));
  return child.pid!;
}

describe('one broker per data directory', () => {
  it('refuses a second broker in the same process, naming the directory and the holder', async () => {
    const first = await Broker.start({ dataDir });
    try {
      const refused = await Broker.start({ dataDir }).catch((error: unknown) => error);
      expect(refused).toMatchObject({ code: ErrorCode.DATA_DIR_LOCKED });
      const message = (refused as Error).message;
      expect(message).toContain(dataDir);
      expect(message).toContain(`pid ${process.pid}`);
      expect(message).toContain(`host ${hostname()}`);
    } finally {
      await first.stop();
    }
    // Stopping gives the directory up: the next broker starts.
    const next = await Broker.start({ dataDir });
    await next.stop();
    expect(await readdir(dataDir)).not.toContain(LOCK_FILE);
  });

  it('takes over the lock of a process that no longer exists (kill -9)', async () => {
    await forgeLock({ pid: 999_999 });
    const broker = await Broker.start({ dataDir });
    const record = JSON.parse(await readFile(join(dataDir, LOCK_FILE), 'utf8')) as LockRecord;
    expect(record.pid).toBe(process.pid);
    await broker.stop();
  });

  it('sees through pid reuse: same pid, another start time, is a stale lock', async () => {
    const pid = await liveProcess();
    const startTime = processStartTime(pid)!;
    await forgeLock({ pid, startTime: String(Number(startTime) - 1) });
    const broker = await Broker.start({ dataDir });
    await broker.stop();
  });

  it('refuses while the recorded process lives with its recorded start time', async () => {
    const pid = await liveProcess();
    await forgeLock({ pid, startTime: processStartTime(pid)! });
    await expect(Broker.start({ dataDir })).rejects.toMatchObject({
      code: ErrorCode.DATA_DIR_LOCKED,
      message: expect.stringContaining(`pid ${pid}`),
    });
    // The command line shown is the live process's own.
    await expect(lockDataDir(dataDir)).rejects.toThrow(/sleep 60/);
  });

  it('treats a lock from an earlier boot of this host as stale', async () => {
    const pid = await liveProcess();
    await forgeLock({ pid, startTime: processStartTime(pid)!, bootId: 'an-earlier-boot' });
    const lock = await lockDataDir(dataDir);
    await lock.release();
  });

  it('judges a holder it cannot see (another pid namespace) by its heartbeat', async () => {
    await forgeLock({ pidNamespace: 'pid:[1]', pid: process.pid });
    // Fresh heartbeat: a live holder elsewhere. With no time to wait for expiry, refused.
    await expect(lockDataDir(dataDir, { maxWaitMs: 0 })).rejects.toMatchObject({
      code: ErrorCode.DATA_DIR_LOCKED,
    });
    // No heartbeat for a minute: stale.
    const old = new Date(Date.now() - 60_000);
    await utimes(join(dataDir, LOCK_FILE), old, old);
    const lock = await lockDataDir(dataDir, { maxWaitMs: 0 });
    await lock.release();
  });

  it('removes temporary lock files a process left behind long ago, and only those', async () => {
    await mkdir(dataDir, { recursive: true });
    const old = join(dataDir, `${LOCK_FILE}.dead-broker.tmp`);
    const young = join(dataDir, `${LOCK_FILE}.starting-broker.tmp`);
    await writeFile(old, '{}');
    await writeFile(young, '{}');
    const longAgo = new Date(Date.now() - 120_000);
    await utimes(old, longAgo, longAgo);
    const lock = await lockDataDir(dataDir);
    expect((await readdir(dataDir)).sort()).toEqual([LOCK_FILE, `${LOCK_FILE}.starting-broker.tmp`]);
    await lock.release();
  });

  it('lets exactly one of many contenders take over one stale lock', async () => {
    await forgeLock({ pid: 999_999 });
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => lockDataDir(dataDir)));
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const result of results) {
      if (result.status === 'rejected')
        expect(result.reason).toMatchObject({ code: ErrorCode.DATA_DIR_LOCKED });
    }
    await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof lockDataDir>>>).value.release();
    // Nothing is left behind: no temporary files, no takeover directory.
    expect(await readdir(dataDir)).toEqual([]);
  });
});

describe('an unusable data directory', () => {
  it('says that the data directory is a file', async () => {
    await writeFile(dataDir, 'not a directory');
    const refused = await Broker.start({ dataDir }).catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: ErrorCode.DATA_DIR_UNUSABLE });
    expect((refused as Error).message).toContain(`${dataDir}: is a file, not a directory`);
  });

  it('names the file that stands where a parent directory should be', async () => {
    await writeFile(join(base, 'file'), '');
    const nested = join(base, 'file', 'data');
    await expect(Broker.start({ dataDir: nested })).rejects.toMatchObject({
      code: ErrorCode.DATA_DIR_UNUSABLE,
      message: expect.stringContaining(`${join(base, 'file')} is a file`),
    });
  });

  it('creates missing parents', async () => {
    const broker = await Broker.start({ dataDir: join(base, 'a', 'b', 'data') });
    await broker.stop();
  });
});
