// One owner per data directory across processes: a `serve` child and an embedded broker, both
// ways; kill -9 then restart; a data directory that is a file or on a read-only file system.
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type BrokerProcess, startBrokerProcess } from '../../bench/lib/broker-process.js';
import { LOCK_FILE, type LockRecord } from '../../src/broker/data-dir-lock.js';
import { Broker } from '../../src/embedded/broker.js';
import { ErrorCode } from '../../src/protocol/error-codes.js';

let base: string;
let dataDir: string;
const started: BrokerProcess[] = [];
beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'ms-owner-'));
  dataDir = join(base, 'data');
});
afterEach(async () => {
  for (const broker of started.splice(0))
    if (broker.child.exitCode === null && broker.child.signalCode === null) await broker.stop();
  await rm(base, { recursive: true, force: true });
});

async function serve(dir: string): Promise<BrokerProcess> {
  const broker = await startBrokerProcess({ dataDir: dir });
  started.push(broker);
  return broker;
}

/** Runs `serve` expecting it to refuse to start: its exit code and standard error. */
function serveRefused(dir: string): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--port', '0', '--admin-port', '0', '--data-dir', dir],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MEMORYSTREAMER_LOG_LEVEL: 'warn' } },
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.stdout.resume();
  // A serve that starts after all (the failure under test) is stopped, not left running.
  const stopper = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(stopper);
      resolve({ code, stderr });
    }),
  );
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
      const { code, stderr } = await serveRefused(dataDir);
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
    const exited = new Promise((resolve) => killed.child.once('exit', resolve));
    killed.child.kill('SIGKILL');
    await exited;
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
    const { code, stderr } = await serveRefused(dataDir);
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
      const { code, stderr } = await serveRefused(mount);
      expect(code).toBe(1);
      expect(stderr).toContain(`DATA_DIR_UNUSABLE (${ErrorCode.DATA_DIR_UNUSABLE})`);
      expect(stderr).toContain('read-only');
    } finally {
      execFileSync('umount', ['-l', mount], { stdio: 'pipe' });
    }
  });
});
