// One owner per data directory across processes: a `serve` child and an embedded broker, both
// ways; kill -9 then restart; a data directory that is a file or on a read-only file system.
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LOCK_FILE, type LockRecord } from '../../src/broker/data-dir-lock.js';
import { Broker } from '../../src/embedded/broker.js';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import { serveRefusal, startBroker, type TestBroker } from '../harness/broker.js';
import { useTempDir } from '../harness/temp-dir.js';

const scratch = useTempDir('ms-owner-');
let base: string;
let dataDir: string;
const started: TestBroker[] = [];
beforeEach(() => {
  base = scratch.path;
  dataDir = join(base, 'data');
});
afterEach(async () => {
  for (const broker of started.splice(0)) await broker.stop();
});

async function serve(dir: string): Promise<TestBroker> {
  const broker = await startBroker({ dataDir: dir });
  started.push(broker);
  return broker;
}

describe('one owner per data directory', () => {
  it('an embedded broker refuses a directory a serve process holds, naming it', async () => {
    const holder = await serve(dataDir);
    const refused = await Broker.start({ dataDir }).catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: ErrorCode.DATA_DIR_LOCKED });
    const message = (refused as Error).message;
    expect(message).toContain(dataDir);
    expect(message).toContain(`pid ${holder.pid}`);
    expect(message).toMatch(/src\/cli\/main\.ts serve/);
  });

  it('serve refuses a directory an embedded broker holds, with exit code 1 and the holder', async () => {
    const holder = await Broker.start({ dataDir });
    try {
      const { code, stderr } = await serveRefusal({ dataDir });
      expect(code).toBe(1);
      expect(stderr).toContain(`DATA_DIR_LOCKED (${ErrorCode.DATA_DIR_LOCKED})`);
      expect(stderr).toContain(`pid ${process.pid}`);
      expect(stderr).toContain(dataDir);
    } finally {
      await holder.stop();
    }
  });

  it('after kill -9 the lock is stale: serve and an embedded broker both start again', async () => {
    const killed = await serve(dataDir);
    const record = JSON.parse(await readFile(join(dataDir, LOCK_FILE), 'utf8')) as LockRecord;
    expect(record.pid).toBe(killed.pid);
    await killed.kill();
    // The lock file is still there, naming a process that is gone.
    expect(JSON.parse(await readFile(join(dataDir, LOCK_FILE), 'utf8'))).toMatchObject({ pid: killed.pid });
    const restarted = await serve(dataDir);
    expect(await restarted.stop()).toBe(0);
    const embedded = await Broker.start({ dataDir });
    await embedded.stop();
  });
});

describe('an unusable data directory at start', () => {
  it('serve names a data directory that is a file, exit code 1', async () => {
    await writeFile(dataDir, 'x');
    const { code, stderr } = await serveRefusal({ dataDir });
    expect(code).toBe(1);
    expect(stderr).toContain(`DATA_DIR_UNUSABLE (${ErrorCode.DATA_DIR_UNUSABLE})`);
    expect(stderr).toContain(`${dataDir}: is a file, not a directory`);
    expect(stderr).not.toMatch(/ENOTDIR|ENOENT/);
  });

  // A read-only file system: a tmpfs mounted read-only (root only; skipped where mounting is not allowed).
  it('names a read-only file system, for serve and Broker.start', async (context) => {
    const mount = join(base, 'ro');
    await mkdir(mount);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', mount], { stdio: 'pipe' });
    } catch (error) {
      context.skip(`cannot mount a tmpfs: ${(error as Error).message}`);
    }
    try {
      await expect(Broker.start({ dataDir: mount })).rejects.toMatchObject({
        code: ErrorCode.DATA_DIR_UNUSABLE,
        message: expect.stringContaining('the file system is read-only'),
      });
      const missing = join(mount, 'missing', 'data');
      await expect(Broker.start({ dataDir: missing })).rejects.toMatchObject({
        code: ErrorCode.DATA_DIR_UNUSABLE,
        message: expect.stringContaining(`${missing}: does not exist and cannot be created`),
      });
      const { code, stderr } = await serveRefusal({ dataDir: mount });
      expect(code).toBe(1);
      expect(stderr).toContain(`DATA_DIR_UNUSABLE (${ErrorCode.DATA_DIR_UNUSABLE})`);
      expect(stderr).toContain('read-only');
    } finally {
      execFileSync('umount', ['-l', mount], { stdio: 'pipe' });
    }
  });
});
