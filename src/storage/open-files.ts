// The storage layer's file descriptors, counted against one process-wide cap (LevelDB's and
// RocksDB's `max_open_files`): a broker with tens of thousands of segments must not need as many
// descriptors. Every file a log reads or writes through is a CachedFile: opened on first use,
// closed when the least recently used idle file must make room, reopened by path on the next use.
// A file in use is leased (a read, a write, an fdatasync, a scan, a compaction step) and is never
// closed under its user; only idle files are evicted. The short-lived descriptors of whole-file
// operations (index and stream files written or read at once, directory fsyncs, readdir) take a
// slot of the same cap for their duration (budgetedFs), so the total the storage holds open stays
// under the cap whatever the number of partitions. A caller that finds every slot leased waits for
// one: leases are held for one I/O call at a time, never while waiting for another slot, so a wait
// always ends.
//
// A file that must not be reopened by its path any more — its segment was deleted, replaced by a
// compacted copy renamed over it, or its log closed — is frozen first: kept open (pinned) when it
// is open, so reads in flight finish on the old inode, and refused with a FileRetiredError when a
// later use would have to reopen it (the reader then looks its segment up again).
// docs/storage.md, "Open files".

import { MemoryStreamerError } from '../common/errors.js';
import { ERROR_TABLE, errorOf } from '../protocol/error-codes.js';
import type { StorageFile, StorageFs } from './storage-fs.js';

/** Default cap on the files the storage layer holds open at once (configureOpenFiles changes it). */
export const DEFAULT_MAX_OPEN_FILES = 1024;
/**
 * The smallest cap accepted. Storage works with one slot (nothing holds two), but a cap this low
 * would serialize every partition's I/O behind one descriptor.
 */
export const MIN_MAX_OPEN_FILES = 8;
/**
 * Descriptors a partition holds of its own when idle: none. Every file of every partition comes out
 * of the one cap, so creating partitions never needs descriptors beyond it; opening, rolling or
 * compacting a partition uses at most 2 slots of the cap at once (a segment file and a directory
 * fsync or whole-file write).
 */
export const OPEN_FILES_PER_PARTITION = 0;

/** Thrown by a use of a file that was frozen (deleted, replaced or closed) and is no longer open. */
export class FileRetiredError extends MemoryStreamerError {
  constructor(readonly path: string) {
    super(
      { name: 'STORAGE_IO', ...ERROR_TABLE.STORAGE_IO },
      `${path} was removed or replaced while being read; read again`,
    );
  }
}

export interface OpenFileStats {
  /** Descriptors the storage layer holds now (open cached files and whole-file operations). */
  open: number;
  /** The most it held at once since the process started (or resetOpenFilesPeak). */
  peak: number;
  maxOpenFiles: number;
  /** Uses waiting for a slot because every open file is leased. */
  waiting: number;
  /** Files opened (first opens and reopens after eviction). */
  opens: number;
  /** Idle files closed to make room (for another file, or under a lowered cap). */
  evictions: number;
}

/** Maps an open error: out of descriptors and a vanished file become typed errors. */
function openError(error: unknown, path: string, reopen: boolean): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EMFILE' || code === 'ENFILE')
    return errorOf('STORAGE_NO_FILE_DESCRIPTORS', `opening ${path} (${code})`, { cause: error });
  if (!reopen) return error;
  if (code === 'ENOENT') return errorOf('STORAGE_FILE_MISSING', path, { cause: error });
  return errorOf('STORAGE_IO', `reopening ${path}: ${(error as Error).message}`, { cause: error });
}

/** The cap, the count, and the idle open files in least-recently-used order. */
class OpenFileBudget {
  maxOpenFiles = DEFAULT_MAX_OPEN_FILES;
  inUse = 0;
  peak = 0;
  opens = 0;
  evictions = 0;
  /** Idle open files, least recently used first (an intrusive doubly linked list). */
  idleHead: CachedFile | null = null;
  idleTail: CachedFile | null = null;
  private readonly waiters: (() => void)[] = [];

  get waiting(): number {
    return this.waiters.length;
  }

  /** One slot of the cap: immediately, by evicting the least recently used idle file, or by waiting. */
  async take(): Promise<void> {
    for (;;) {
      if (this.inUse < this.maxOpenFiles && this.waiters.length === 0) {
        this.inUse++;
        if (this.inUse > this.peak) this.peak = this.inUse;
        return;
      }
      const victim = this.idleHead;
      if (victim !== null && this.waiters.length === 0) {
        // Its slot is freed when the close completes (release), and taken by the loop's next turn.
        await victim.closeIdle();
        continue;
      }
      // Handed over by release(): the slot stays counted and becomes this caller's.
      await new Promise<void>((resolve) => this.waiters.push(resolve));
      return;
    }
  }

  release(): void {
    if (this.inUse <= this.maxOpenFiles) {
      const next = this.waiters.shift();
      if (next !== undefined) {
        next();
        return;
      }
    }
    this.inUse--;
  }

  /** A file became idle: it joins the idle list, or is closed at once when someone waits for a slot. */
  idle(file: CachedFile): void {
    if (this.waiters.length > 0 || this.inUse > this.maxOpenFiles) {
      void file.closeIdle();
      return;
    }
    file.idlePrev = this.idleTail;
    file.idleNext = null;
    if (this.idleTail !== null) this.idleTail.idleNext = file;
    else this.idleHead = file;
    this.idleTail = file;
    file.inIdleList = true;
  }

  unlinkIdle(file: CachedFile): void {
    if (!file.inIdleList) return;
    if (file.idlePrev !== null) file.idlePrev.idleNext = file.idleNext;
    else this.idleHead = file.idleNext;
    if (file.idleNext !== null) file.idleNext.idlePrev = file.idlePrev;
    else this.idleTail = file.idlePrev;
    file.idlePrev = null;
    file.idleNext = null;
    file.inIdleList = false;
  }

  /** After the cap was raised: uses waiting for a slot get the new ones. */
  grant(): void {
    while (this.inUse < this.maxOpenFiles && this.waiters.length > 0) {
      this.inUse++;
      if (this.inUse > this.peak) this.peak = this.inUse;
      this.waiters.shift()!();
    }
  }

  /** Closes idle files until the count is within the cap (after the cap was lowered). */
  async shrink(): Promise<void> {
    while (this.inUse > this.maxOpenFiles && this.idleHead !== null) {
      await this.idleHead.closeIdle();
    }
  }
}

const budget = new OpenFileBudget();

/**
 * Sets the cap on files the storage layer holds open at once (process-wide, every log). Lowering
 * it closes idle files down to the new cap; files in use are closed when their use ends.
 */
export async function configureOpenFiles(options: { maxOpenFiles: number }): Promise<void> {
  const { maxOpenFiles } = options;
  if (!Number.isInteger(maxOpenFiles) || maxOpenFiles < MIN_MAX_OPEN_FILES)
    throw errorOf(
      'INVALID_CONFIG',
      `maxOpenFiles must be an integer ≥ ${MIN_MAX_OPEN_FILES}, got ${maxOpenFiles}`,
    );
  budget.maxOpenFiles = maxOpenFiles;
  budget.grant();
  await budget.shrink();
}

/** How many files the storage layer holds open now, at most so far, and under which cap. */
export function openFileStats(): OpenFileStats {
  return {
    open: budget.inUse,
    peak: budget.peak,
    maxOpenFiles: budget.maxOpenFiles,
    waiting: budget.waiting,
    opens: budget.opens,
    evictions: budget.evictions,
  };
}

/** Starts a new peak from the current count (for tests and measurements). */
export function resetOpenFilesPeak(): void {
  budget.peak = budget.inUse;
}

/**
 * One file of a log (a segment's `.log`, a sealed segment's `.streams`), open or not. `lease()`
 * returns the open file (opening it when needed) and keeps it open until `release()`.
 */
export class CachedFile {
  private file: StorageFile | null = null;
  private opening: Promise<StorageFile> | null = null;
  /** Uses in progress (and the freeze pin): the file is not closed while this is above 0. */
  private leases = 0;
  /** Set once the file must not be reopened by its path; `pinned` when freezing kept it open. */
  private frozen = false;
  private pinned = false;
  private disposed = false;
  private closing: Promise<void> | null = null;
  private whenClosed: (() => void) | null = null;
  /** Links of the budget's idle list. */
  idlePrev: CachedFile | null = null;
  idleNext: CachedFile | null = null;
  inIdleList = false;

  private constructor(
    private readonly fs: StorageFs,
    private filePath: string,
  ) {}

  /** A file that is opened on its first use. */
  static lazy(fs: StorageFs, path: string): CachedFile {
    return new CachedFile(fs, path);
  }

  /** Opens (or creates, with 'create') the file now; it stays open, idle, until evicted. */
  static async open(fs: StorageFs, path: string, mode: 'read-write' | 'create'): Promise<CachedFile> {
    const cached = new CachedFile(fs, path);
    await budget.take();
    try {
      cached.file = await fs.open(path, mode);
      budget.opens++;
    } catch (error) {
      budget.release();
      throw openError(error, path, false);
    }
    budget.idle(cached);
    return cached;
  }

  get path(): string {
    return this.filePath;
  }

  /** The file was renamed (a compacted copy committed): reopens use the new name. */
  renamed(path: string): void {
    this.filePath = path;
  }

  /** Whether the file is open now (for tests). */
  get isOpen(): boolean {
    return this.file !== null;
  }

  /**
   * The open file without waiting, leased, when it is open; null when it must be opened (then
   * `lease()`). The hot paths (appends, tail reads) take this branch: no system call, no promise.
   */
  tryLease(): StorageFile | null {
    const file = this.file;
    if (file === null) return null;
    if (this.leases++ === 0) budget.unlinkIdle(this);
    return file;
  }

  /** The open file, leased: opened (taking a slot of the cap) when it is not. */
  async lease(): Promise<StorageFile> {
    const file = this.tryLease();
    if (file !== null) return file;
    if (this.frozen) throw new FileRetiredError(this.filePath);
    // Counted before the open, so the file is never idle (evictable) between its open and this use.
    this.leases++;
    try {
      this.opening ??= this.reopen();
      return await this.opening;
    } catch (error) {
      this.release();
      throw error;
    }
  }

  private async reopen(): Promise<StorageFile> {
    try {
      await budget.take();
      if (this.frozen) {
        budget.release();
        throw new FileRetiredError(this.filePath);
      }
      try {
        const file = await this.fs.open(this.filePath, 'read-write');
        budget.opens++;
        this.file = file;
        return file;
      } catch (error) {
        budget.release();
        throw openError(error, this.filePath, true);
      }
    } finally {
      this.opening = null;
    }
  }

  /** Ends one use; the file becomes idle (evictable) when it was the last. */
  release(): void {
    if (--this.leases > 0) return;
    if (this.file === null) {
      this.whenClosed?.();
      return;
    }
    if (this.disposed) void this.closeIdle();
    else budget.idle(this);
  }

  /** Runs `use` with the file leased (for paths that are not hot). */
  async with<T>(use: (file: StorageFile) => Promise<T>): Promise<T> {
    const file = this.tryLease() ?? (await this.lease());
    try {
      return await use(file);
    } finally {
      this.release();
    }
  }

  /**
   * From now on the file is not reopened by its path (it is about to be deleted, or another file
   * renamed over it): call it before that rename or unlink. When the file is open it stays open
   * (pinned) until `thaw` or `dispose`, so reads in flight and reads that still hold the segment
   * finish on this inode. An open in progress is waited for, so it cannot land on the new file.
   */
  async freeze(): Promise<void> {
    if (this.frozen) return;
    this.frozen = true;
    if (this.opening !== null) await this.opening.catch(() => undefined);
    if (this.file !== null) {
      this.pinned = true;
      if (this.leases++ === 0) budget.unlinkIdle(this);
    }
  }

  /** Undoes `freeze` (the replacement did not happen). */
  thaw(): void {
    if (!this.frozen || this.closing !== null) return;
    this.frozen = false;
    if (this.pinned) {
      this.pinned = false;
      this.release();
    }
  }

  /** Closes the file for good once no use holds it; it is never reopened. */
  dispose(): Promise<void> {
    this.closing ??= (async () => {
      await this.freeze();
      this.disposed = true;
      const closed = new Promise<void>((resolve) => (this.whenClosed = resolve));
      if (this.pinned) {
        this.pinned = false;
        this.release();
      } else if (this.leases === 0) {
        // Not open (freezing pins an open file); a use waiting to reopen it ends with an error.
        this.whenClosed?.();
      }
      await closed;
    })();
    return this.closing;
  }

  /** Closes an idle file (eviction, or disposal once idle) and gives its slot back. */
  async closeIdle(): Promise<void> {
    budget.unlinkIdle(this);
    const file = this.file;
    if (file === null || this.leases > 0) return;
    this.file = null;
    if (!this.disposed) budget.evictions++;
    try {
      await file.close();
    } catch {
      // A close error loses nothing: every write was checked when it was made, and syncs are
      // explicit. The descriptor is gone either way.
    } finally {
      budget.release();
      this.whenClosed?.();
    }
  }
}

/**
 * `fs` with its whole-file operations (readFile, writeFile, syncDirectory, readdir: each holds a
 * descriptor while it runs) taking a slot of the cap. `open` is passed through: CachedFile counts
 * the files it opens itself.
 */
export function budgetedFs(fs: StorageFs): StorageFs {
  const slot = async <T>(operation: () => Promise<T>): Promise<T> => {
    await budget.take();
    try {
      return await operation();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EMFILE' || code === 'ENFILE')
        throw errorOf('STORAGE_NO_FILE_DESCRIPTORS', code, { cause: error });
      throw error;
    } finally {
      budget.release();
    }
  };
  return {
    ...fs,
    open: (path, mode) => fs.open(path, mode),
    readFile: (path) => slot(() => fs.readFile(path)),
    writeFile: (path, data) => slot(() => fs.writeFile(path, data)),
    readdir: (path) => slot(() => fs.readdir(path)),
    syncDirectory: (path) => slot(() => fs.syncDirectory(path)),
  };
}
