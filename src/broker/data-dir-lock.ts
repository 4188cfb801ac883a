// One broker per data directory. Two brokers appending to the same partition files each hand out
// the same offsets and overwrite each other's acknowledged data, so the second one must refuse to
// start, naming the directory and the process that holds it. This file prepares the directory
// (clear errors for a file, a read-only or an uncreatable path) and takes the lock; it knows
// nothing of topics.
//
// Node has no flock(2), so the lock is a file created exclusively:
//
//   <dataDir>/broker.lock   JSON: { token, pid, bootId, startTime, pidNamespace, host, command, since }
//
// - Created complete: the record is written and fsynced to `broker.lock.<token>.tmp`, then
//   hard-linked to `broker.lock`. link(2) fails with EEXIST when the name exists, so exactly one
//   broker wins and a reader never sees a half-written lock (file systems without hard links fall
//   back to O_CREAT|O_EXCL and a write; a reader treats an unreadable lock by its age, below).
// - Liveness of the holder: a pid alone is not enough, since pids are reused after the holder died
//   (kill -9 leaves the file behind). The record keeps the kernel's boot id and the process start
//   time (field 22 of /proc/<pid>/stat, in clock ticks since boot): on the same boot, in the same
//   pid namespace, the holder is alive exactly when /proc/<pid>/stat exists with that start time.
//   A different boot id on the same host means the machine restarted since: the holder is gone.
// - Holders that cannot be checked by pid (another pid namespace, such as the previous container
//   on the same volume, or another host on a shared file system) refresh the lock's mtime every
//   LOCK_HEARTBEAT_MS; such a lock is stale once its mtime is older than LOCK_EXPIRY_MS. A starting
//   broker waits up to that long for a fresh unverifiable lock to expire (a restarted container
//   starts once the old lock expires); a heartbeat seen meanwhile means a live holder: refused.
// - Removing a stale lock is race-free: a contender takes the `broker.lock.takeover` directory
//   (mkdir is atomic), reads the lock again and unlinks it only if it still holds the stale token,
//   then retries the exclusive link. Two brokers that both judged one lock stale thus never both
//   win: the second finds the first one's fresh lock. A takeover directory left by a process that
//   died inside that millisecond-long section is removed once it is TAKEOVER_ABANDONED_MS old.

import { randomUUID } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rmdir, stat, unlink, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { MemoryStreamerError } from '../common/errors.js';
import { type BrokerLogger, silentLogger } from '../metrics/logger.js';
import { errorOf } from '../protocol/error-codes.js';
import { nodeStorageFs } from '../storage/storage-fs.js';

export const LOCK_FILE = 'broker.lock';
const TAKEOVER_DIR = 'broker.lock.takeover';
/** How often a holder refreshes the lock's mtime (read only for holders that cannot be checked by pid). */
export const LOCK_HEARTBEAT_MS = 5_000;
/** An unverifiable lock whose mtime is older than this is stale. */
export const LOCK_EXPIRY_MS = 30_000;
const TAKEOVER_ABANDONED_MS = 10_000;

/** What the lock file records about its holder. */
export interface LockRecord {
  token: string;
  pid: number;
  /** /proc/sys/kernel/random/boot_id of the holder's kernel. */
  bootId: string | null;
  /** Field 22 of /proc/<pid>/stat: start time in clock ticks since boot. */
  startTime: string | null;
  /** readlink /proc/self/ns/pid, e.g. "pid:[4026531836]". */
  pidNamespace: string | null;
  host: string;
  command: string;
  since: string;
}

function readOptional(read: () => string): string | null {
  try {
    return read().trim();
  } catch {
    return null;
  }
}

export function bootId(): string | null {
  return readOptional(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8'));
}

function pidNamespace(): string | null {
  return readOptional(() => readlinkSync('/proc/self/ns/pid'));
}

/**
 * The start time of a process (field 22 of /proc/<pid>/stat), or null when there is no such
 * process. The command name (field 2) is in parentheses and may hold spaces and parentheses, so
 * fields are counted from the last ')'.
 */
export function processStartTime(pid: number): string | null {
  const stat = readOptional(() => readFileSync(`/proc/${pid}/stat`, 'utf8'));
  if (stat === null) return null;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so field 22 is fields[19].
  return fields[19] ?? null;
}

function commandLineOf(pid: number): string | null {
  const raw = readOptional(() => readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
  return raw === null || raw === '' ? null : raw.split('\0').filter(Boolean).join(' ');
}

function ourRecord(): LockRecord {
  return {
    token: randomUUID(),
    pid: process.pid,
    bootId: bootId(),
    startTime: processStartTime(process.pid),
    pidNamespace: pidNamespace(),
    host: hostname(),
    command: process.argv.join(' '),
    since: new Date().toISOString(),
  };
}

type Holder =
  | { state: 'alive'; record: LockRecord | null; detail: string }
  | { state: 'gone'; token: string | null; why: string }
  | { state: 'unverifiable'; record: LockRecord | null; mtimeMs: number; detail: string };

function parseRecord(text: string): LockRecord | null {
  try {
    const value = JSON.parse(text) as Partial<LockRecord>;
    if (typeof value.token !== 'string' || typeof value.pid !== 'number') return null;
    return value as LockRecord;
  } catch {
    return null;
  }
}

function describeHolder(record: LockRecord | null): string {
  if (record === null) return 'an unreadable lock file';
  const command = commandLineOf(record.pid) ?? record.command;
  return `pid ${record.pid} on host ${record.host} (${command}), since ${record.since}`;
}

/** Reads the lock and decides whether its holder is alive; null when there is no lock now. */
async function judge(lockPath: string, now: number): Promise<Holder | null> {
  let text: string;
  let mtimeMs: number;
  try {
    [text, mtimeMs] = await Promise.all([readFile(lockPath, 'utf8'), stat(lockPath).then((s) => s.mtimeMs)]);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  const record = parseRecord(text);
  const ourBoot = bootId();
  if (record !== null && record.bootId !== null && record.bootId === ourBoot) {
    if (record.pidNamespace !== null && record.pidNamespace === pidNamespace()) {
      const startTime = processStartTime(record.pid);
      if (startTime === null)
        return { state: 'gone', token: record.token, why: `process ${record.pid} no longer exists` };
      if (record.startTime !== null && startTime !== record.startTime) {
        return {
          state: 'gone',
          token: record.token,
          why: `process ${record.pid} is gone (its pid now belongs to a process started later)`,
        };
      }
      return { state: 'alive', record, detail: describeHolder(record) };
    }
  } else if (record !== null && record.bootId !== null && ourBoot !== null && record.host === hostname()) {
    return { state: 'gone', token: record.token, why: 'the machine restarted since the lock was taken' };
  }
  // Another pid namespace or another host: the heartbeat (mtime) tells.
  const age = now - mtimeMs;
  if (age > LOCK_EXPIRY_MS) {
    return {
      state: 'gone',
      token: record?.token ?? null,
      why: `no heartbeat for ${Math.round(age / 1000)} s (${describeHolder(record)})`,
    };
  }
  return { state: 'unverifiable', record, mtimeMs, detail: describeHolder(record) };
}

/** Why a path cannot be used, in words, from the error the file system gave. */
function reasonOf(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case 'EROFS':
      return 'the file system is read-only';
    case 'EACCES':
    case 'EPERM':
      return `permission denied for user ${process.getuid?.() ?? '?'}`;
    case 'ENOTDIR':
      return 'a component of the path is a file, not a directory';
    case 'ENOSPC':
      return 'no space left on the device';
    case 'EDQUOT':
      return 'disk quota exceeded';
    default:
      return `${code ?? 'error'}: ${(error as Error).message}`;
  }
}

export function dataDirUnusable(dir: string, what: string, cause?: unknown): MemoryStreamerError {
  return errorOf(
    'DATA_DIR_UNUSABLE',
    `${dir}: ${what}${cause === undefined ? '' : ` (${reasonOf(cause)})`}; set storage.data_dir (--data-dir) to a writable directory`,
    cause === undefined ? undefined : { cause },
  );
}

/** The first existing ancestor of `path` that is not a directory, if any. */
async function fileInPath(path: string): Promise<string | null> {
  for (let at = path; ; at = dirname(at)) {
    const info = await stat(at).catch(() => null);
    if (info !== null) return info.isDirectory() ? null : at;
    if (dirname(at) === at) return null;
  }
}

/** Makes sure `dataDir` is a directory (creating it and its parents); clear errors otherwise. */
export async function prepareDataDir(dataDir: string): Promise<void> {
  const dir = resolve(dataDir);
  const info = await stat(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    if (error.code === 'ENOTDIR') return 'file-in-path' as const;
    throw dataDirUnusable(dir, 'cannot be read', error);
  });
  if (info === 'file-in-path' || (info !== null && !info.isDirectory())) {
    const file = info === 'file-in-path' ? await fileInPath(dir) : dir;
    throw dataDirUnusable(
      dir,
      file === dir ? 'is a file, not a directory' : `${file} is a file, so the directory cannot be made`,
    );
  }
  if (info === null) {
    try {
      await mkdir(dir, { recursive: true });
    } catch (error) {
      if (
        (error as NodeJS.ErrnoException).code === 'ENOTDIR' ||
        (error as NodeJS.ErrnoException).code === 'EEXIST'
      ) {
        const file = await fileInPath(dir);
        if (file !== null) throw dataDirUnusable(dir, `${file} is a file, so the directory cannot be made`);
      }
      throw dataDirUnusable(dir, 'does not exist and cannot be created', error);
    }
  }
}

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

/** The held lock: refreshed while held, removed by `release`. */
export class DataDirLock {
  private heartbeat: NodeJS.Timeout | null = null;
  private lostReported = false;

  constructor(
    readonly dataDir: string,
    readonly record: LockRecord,
    private readonly logger: BrokerLogger,
  ) {
    this.heartbeat = setInterval(() => void this.beat(), LOCK_HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  get path(): string {
    return join(this.dataDir, LOCK_FILE);
  }

  /** Refreshes the mtime, and says loudly if the lock is no longer ours (removed by hand). */
  private async beat(): Promise<void> {
    const now = new Date();
    try {
      const current = parseRecord(await readFile(this.path, 'utf8'));
      if (current?.token !== this.record.token) throw new Error('the lock file names another holder');
      await utimes(this.path, now, now);
    } catch (error) {
      if (this.lostReported) return;
      this.lostReported = true;
      this.logger.error(
        { dataDir: this.dataDir, reason: (error as Error).message },
        'the data directory lock is no longer held by this broker: another broker may write here',
      );
    }
  }

  /** Removes the lock if it is still ours. */
  async release(): Promise<void> {
    if (this.heartbeat === null) return;
    clearInterval(this.heartbeat);
    this.heartbeat = null;
    const current = await readFile(this.path, 'utf8').then(parseRecord, () => null);
    if (current?.token === this.record.token) await unlink(this.path).catch(() => undefined);
  }
}

/** Takes the takeover mutex, unlinks the lock if it still has `staleToken`, releases the mutex. */
async function removeStale(dataDir: string, staleToken: string | null): Promise<void> {
  const lockPath = join(dataDir, LOCK_FILE);
  const mutex = join(dataDir, TAKEOVER_DIR);
  for (;;) {
    try {
      await mkdir(mutex);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const info = await stat(mutex).catch(() => null);
      if (info !== null && Date.now() - info.mtimeMs > TAKEOVER_ABANDONED_MS)
        await rmdir(mutex).catch(() => undefined);
      else await sleep(20);
    }
  }
  try {
    const text = await readFile(lockPath, 'utf8').catch(() => null);
    if (text === null) return;
    const token = parseRecord(text)?.token ?? null;
    if (token === staleToken) await unlink(lockPath).catch(() => undefined);
  } finally {
    await rmdir(mutex).catch(() => undefined);
  }
}

/**
 * Prepares the data directory and takes its lock for this process, or throws DATA_DIR_LOCKED
 * naming the holder, or DATA_DIR_UNUSABLE naming what is wrong with the directory.
 */
export async function lockDataDir(
  dataDir: string,
  options: { logger?: BrokerLogger; maxWaitMs?: number } = {},
): Promise<DataDirLock> {
  const logger = options.logger ?? silentLogger;
  await prepareDataDir(dataDir);
  const dir = resolve(dataDir);
  const lockPath = join(dir, LOCK_FILE);
  const record = ourRecord();
  const text = `${JSON.stringify(record)}\n`;
  const tmp = join(dir, `${LOCK_FILE}.${record.token}.tmp`);
  try {
    const handle = await open(tmp, 'wx');
    try {
      await handle.writeFile(text);
      await handle.datasync();
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw dataDirUnusable(dir, 'is not writable', error);
  }
  const deadline = Date.now() + (options.maxWaitMs ?? LOCK_EXPIRY_MS + LOCK_HEARTBEAT_MS);
  try {
    for (;;) {
      try {
        await link(tmp, lockPath);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') {
          // No hard links on this file system: an exclusive create, then the record.
          try {
            const handle = await open(lockPath, 'wx');
            try {
              await handle.writeFile(text);
              await handle.datasync();
            } finally {
              await handle.close();
            }
          } catch (inner) {
            if ((inner as NodeJS.ErrnoException).code !== 'EEXIST') throw inner;
            await waitOrRefuse(dir, lockPath, deadline, logger);
            continue;
          }
        } else if (code === 'EEXIST') {
          await waitOrRefuse(dir, lockPath, deadline, logger);
          continue;
        } else {
          throw dataDirUnusable(dir, 'is not writable', error);
        }
      }
      await nodeStorageFs.syncDirectory(dir).catch(() => undefined);
      await removeLeftoverTemporaries(dir, record.token);
      return new DataDirLock(dir, record, logger);
    }
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/**
 * Removes `broker.lock.<token>.tmp` files a process left when it died while taking the lock. Only
 * old ones: a young one may belong to a broker starting right now, which would then fail its link.
 */
async function removeLeftoverTemporaries(dir: string, ownToken: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    if (!name.startsWith(`${LOCK_FILE}.`) || !name.endsWith('.tmp') || name.includes(ownToken)) continue;
    const info = await stat(join(dir, name)).catch(() => null);
    if (info !== null && Date.now() - info.mtimeMs > LOCK_EXPIRY_MS)
      await unlink(join(dir, name)).catch(() => undefined);
  }
}

/** An existing lock: removes it when stale, waits while it may still expire, else refuses. */
async function waitOrRefuse(dir: string, lockPath: string, deadline: number, logger: BrokerLogger) {
  const holder = await judge(lockPath, Date.now());
  if (holder === null) return;
  if (holder.state === 'gone') {
    logger.warn({ dataDir: dir, reason: holder.why }, 'removing a stale data directory lock');
    await removeStale(dir, holder.token);
    return;
  }
  if (holder.state === 'unverifiable') {
    const expiresIn = holder.mtimeMs + LOCK_EXPIRY_MS + 100 - Date.now();
    if (Date.now() + expiresIn <= deadline) {
      logger.warn(
        { dataDir: dir, holder: holder.detail, waitMs: Math.max(0, Math.round(expiresIn)) },
        'the data directory lock belongs to a process this broker cannot see; waiting for its heartbeat to expire',
      );
      await sleep(Math.max(0, expiresIn));
      return;
    }
  }
  throw errorOf(
    'DATA_DIR_LOCKED',
    `${dir} is in use by ${holder.detail} (lock file ${lockPath}); stop that broker or choose another storage.data_dir (--data-dir)`,
  );
}
