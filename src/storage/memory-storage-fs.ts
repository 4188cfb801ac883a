// A StorageFs held in process memory, for topics created with `storage: 'memory'` (docs/storage.md,
// "Memory topics"): the whole partition log (segments, indexes, stream files, retention,
// compaction) runs on it unchanged, and nothing reaches the disk. Every operation completes in the
// calling turn (its promise is already settled: no thread-pool hop, no event-loop turn), so an
// append costs a memory copy. `datasync` and `syncDirectory` do nothing: there is nothing to make
// durable, and everything is gone when the process ends.
//
// Semantics follow node:fs for what the storage layer uses: positioned reads return fewer bytes at
// the end of a file, positioned writes past the end leave zeros in the gap, truncate shrinks or
// extends with zeros, rename replaces its target, readdir lists the direct children (files and
// directories), and a missing file or directory fails with an Error whose `code` is ENOENT (EEXIST,
// ENOTDIR, EISDIR, ENOTEMPTY likewise), as node's errors carry them.
//
// Layout of one file: `chunks[i]` holds bytes [i × CHUNK_BYTES, (i + 1) × CHUNK_BYTES); only the last
// chunk may be shorter than CHUNK_BYTES (a file's first chunk grows by doubling up to it; later
// ones are whole from the start), so a growing segment never copies what it holds, and a file
// costs at most one partly used chunk beyond its size. The bytes of the chunks past the size are
// undefined (a chunk handed out again keeps what it held): an extension zeroes what it exposes
// without writing it (the gap before a write past the end, the tail of a truncate that extends),
// so an append, which writes every byte it adds, zeroes nothing.
//
// Whole chunks come from a ChunkReserve that made them ahead of need. Memory fresh from the
// allocator is mapped on its first touch, page by page, and in a virtual machine such a fault
// costs 5–12 µs per 4 KiB page: a 64 KiB chunk allocated when an append crossed into it held that
// append (and the message waiting for it) about 300 µs, once every 64 KiB of log. The reserve
// allocates the next whole chunk ahead and touches it one page per event-loop turn instead, off
// any message's path. (A file's first chunk still doubles from 256 bytes, so that small files
// stay small: that costs a few faults once per file, not once per 64 KiB.)
//
// Whole chunks are also taken back. A file that is gone (unlinked, renamed over, or truncated
// below whole chunks) and that no handle holds any more returns its whole chunks to the reserve,
// which hands them out again before it makes new ones. A memory topic past its retention
// drops a sealed segment at every roll and fills the next one from those chunks: in that steady
// state its appends touch no fresh memory at all. Memory that goes back to the allocator and comes
// again is faulted in again (on this project's benchmark machine about 10 µs per 4 KiB page,
// docs/performance.md), so keeping it is what makes a busy memory topic cheap. The reserve keeps at
// most `recycleLimitBytes` (a segment's worth: the partition's memory bound has room for one
// segment beside its retention); chunks beyond that go to the garbage collector as before.

import { posix } from 'node:path';
import type { StorageFile, StorageFs } from './storage-fs.js';

/** Bytes per chunk of a memory file. */
export const CHUNK_BYTES = 64 * 1024;
/** The first allocation of a file's last chunk (small files: indexes, checkpoints). */
const FIRST_CHUNK_BYTES = 256;

/** Bytes of the next chunk zeroed (and so faulted in) per event-loop turn: one page. */
const PREPARE_BYTES_PER_TURN = 4096;

/**
 * Whole chunks for the files of one file system (one partition): chunks its files gave back, and
 * one made ahead of need. Taking the made one starts the next one, which is zeroed one page per
 * event-loop turn: each page's first touch is a page fault (about 10 µs on the benchmark machine),
 * and sixteen of them in one turn held whatever message arrived meanwhile for about 200 µs, where
 * one per turn holds it for one fault at most. A chunk taken before it is ready is finished in line,
 * and a burst that needs more than one chunk within a turn allocates the rest in line, as without
 * the reserve.
 */
export class ChunkReserve {
  /** The next chunk, zeroed up to `prepared` bytes; ready when that is CHUNK_BYTES. */
  private next: Buffer | null = null;
  private prepared = 0;
  private refillScheduled = false;
  /** Chunks files gave back (their bytes as the files left them). */
  private readonly returned: Buffer[] = [];
  private readonly maxReturned: number;
  /** Chunks handed out again instead of new ones (tests and benchmarks read it). */
  reused = 0;

  /** `recycleLimitBytes`: how much given-back memory is kept for reuse (whole chunks). */
  constructor(recycleLimitBytes = 0) {
    this.maxReturned = Math.max(0, Math.floor(recycleLimitBytes / CHUNK_BYTES));
  }

  /**
   * A chunk of CHUNK_BYTES whose bytes are undefined (the file zeroes what it exposes unwritten).
   * One given back is memory already mapped; a new one is touched ahead where it can be.
   */
  take(): Buffer {
    const returned = this.returned.pop();
    if (returned !== undefined) {
      this.reused++;
      return returned;
    }
    let chunk: Buffer;
    if (this.next !== null) {
      // The pages not touched yet fault in on the write that needs them, as without the reserve.
      chunk = this.next;
      this.next = null;
    } else {
      chunk = Buffer.allocUnsafeSlow(CHUNK_BYTES);
    }
    this.scheduleRefill();
    return chunk;
  }

  /** Takes back whole chunks no file holds any more; beyond the limit they are left to the collector. */
  giveBack(chunks: readonly Buffer[]): void {
    for (const chunk of chunks) {
      if (this.returned.length >= this.maxReturned) return;
      if (chunk.length === CHUNK_BYTES) this.returned.push(chunk);
    }
  }

  /** Bytes held for reuse: the chunk being made ahead and the chunks given back. */
  get heldBytes(): number {
    return (this.next === null ? 0 : CHUNK_BYTES) + this.returned.length * CHUNK_BYTES;
  }

  /** Bytes of the next chunk already zeroed (tests). */
  get preparedBytes(): number {
    return this.next === null ? 0 : this.prepared;
  }

  private scheduleRefill(): void {
    if (this.refillScheduled) return;
    this.refillScheduled = true;
    setImmediate(this.refill).unref();
  }

  private readonly refill = (): void => {
    this.refillScheduled = false;
    // Given-back chunks come first; a new one is made only when there are none.
    if (this.returned.length > 0) return;
    if (this.next === null) {
      // allocUnsafeSlow, zeroed here page by page: Buffer.alloc's calloc may hand out fresh zero
      // pages untouched, which would move their faults to the first write after all.
      this.next = Buffer.allocUnsafeSlow(CHUNK_BYTES);
      this.prepared = 0;
    }
    if (this.prepared >= CHUNK_BYTES) return;
    const end = Math.min(CHUNK_BYTES, this.prepared + PREPARE_BYTES_PER_TURN);
    this.next.fill(0, this.prepared, end);
    this.prepared = end;
    if (end < CHUNK_BYTES) this.scheduleRefill();
  };
}

/** A node-style file-system error: `code`, `errno`, `syscall` and `path` as node:fs sets them. */
function fsError(code: 'ENOENT' | 'EEXIST' | 'ENOTDIR' | 'EISDIR' | 'EBADF', syscall: string, path: string) {
  const errnos = { ENOENT: -2, EEXIST: -17, ENOTDIR: -20, EISDIR: -21, EBADF: -9 } as const;
  const texts = {
    ENOENT: 'no such file or directory',
    EEXIST: 'file already exists',
    ENOTDIR: 'not a directory',
    EISDIR: 'illegal operation on a directory',
    EBADF: 'bad file descriptor',
  } as const;
  const error = new Error(`${code}: ${texts[code]}, ${syscall} '${path}'`) as NodeJS.ErrnoException;
  error.code = code;
  error.errno = errnos[code];
  error.syscall = syscall;
  error.path = path;
  return error;
}

/** The bytes of one memory file (shared by every handle open on it, like an inode). */
export class MemoryFileData {
  private chunks: Buffer[] = [];
  size = 0;
  /** Handles open on these bytes. */
  private handles = 0;
  /** No path names these bytes any more (unlinked, or another file renamed over them). */
  private unnamed = false;

  constructor(private readonly reserve: ChunkReserve) {}

  /** A handle opened on these bytes. */
  opened(): void {
    this.handles++;
  }

  /** A handle on these bytes closed: the last one of a file no path names gives its chunks back. */
  closed(): void {
    this.handles--;
    this.releaseIfGone();
  }

  /** No path names these bytes any more: given back now, or when the last handle closes. */
  unlinked(): void {
    this.unnamed = true;
    this.releaseIfGone();
  }

  private releaseIfGone(): void {
    if (!this.unnamed || this.handles > 0 || this.chunks.length === 0) return;
    this.reserve.giveBack(this.chunks);
    this.chunks = [];
    this.size = 0;
  }

  /** Bytes held, counting the unused tail of the last chunk (what the file costs). */
  get allocatedBytes(): number {
    let total = 0;
    for (const chunk of this.chunks) total += chunk.length;
    return total;
  }

  read(target: Buffer, offset: number, length: number, position: number): number {
    const end = Math.min(this.size, position + length);
    let at = position;
    let into = offset;
    while (at < end) {
      const chunk = this.chunks[Math.floor(at / CHUNK_BYTES)]!;
      const within = at % CHUNK_BYTES;
      const take = Math.min(end - at, CHUNK_BYTES - within);
      chunk.copy(target, into, within, within + take);
      at += take;
      into += take;
    }
    return Math.max(0, end - position);
  }

  write(source: Uint8Array, position: number): void {
    const end = position + source.length;
    if (end > this.size) this.grow(end, position);
    let at = position;
    let from = 0;
    while (from < source.length) {
      const chunk = this.chunks[Math.floor(at / CHUNK_BYTES)]!;
      const within = at % CHUNK_BYTES;
      const take = Math.min(source.length - from, CHUNK_BYTES - within);
      chunk.set(source.subarray(from, from + take), within);
      at += take;
      from += take;
    }
  }

  /** Shrinks (dropping whole chunks past the end) or extends with zeros. */
  truncate(length: number): void {
    if (length > this.size) {
      this.grow(length, length);
      return;
    }
    const keep = Math.ceil(length / CHUNK_BYTES);
    // Chunks wholly past the new end: handles read only up to the size, so nothing sees them again.
    // What stays past the end in the last chunk is zeroed by the extension that exposes it.
    if (this.chunks.length > keep) this.reserve.giveBack(this.chunks.slice(keep));
    this.chunks.length = keep;
    this.size = length;
  }

  /** A copy of the whole file. */
  contents(): Buffer {
    const out = Buffer.allocUnsafe(this.size);
    this.read(out, 0, this.size, 0);
    return out;
  }

  /**
   * Makes room up to `end` and sets the size. The new bytes before `writtenFrom` (the gap a write
   * past the end leaves, all of a truncate's extension) are zeroed; the caller writes the rest.
   */
  private grow(end: number, writtenFrom: number): void {
    const oldSize = this.size;
    const lastIndex = Math.floor((end - 1) / CHUNK_BYTES);
    // The current last chunk becomes whole when others follow it, or large enough for `end`.
    for (let i = Math.max(0, this.chunks.length - 1); i <= lastIndex; i++) {
      const needed = i < lastIndex ? CHUNK_BYTES : end - i * CHUNK_BYTES;
      const chunk = this.chunks[i];
      if (chunk !== undefined && chunk.length >= needed) continue;
      let capacity = Math.max(FIRST_CHUNK_BYTES, chunk?.length ?? 0);
      while (capacity < needed) capacity *= 2;
      // A file's first chunk doubles (small files stay small); past it a file is a large one, whose
      // chunks are whole from the start and come from the reserve.
      const grown = i > 0 || capacity >= CHUNK_BYTES ? this.reserve.take() : Buffer.allocUnsafe(capacity);
      if (chunk !== undefined) chunk.copy(grown);
      this.chunks[i] = grown;
    }
    for (let at = oldSize; at < writtenFrom; ) {
      const within = at % CHUNK_BYTES;
      const upTo = Math.min(writtenFrom - at, CHUNK_BYTES - within);
      this.chunks[Math.floor(at / CHUNK_BYTES)]!.fill(0, within, within + upTo);
      at += upTo;
    }
    this.size = end;
  }
}

class MemoryFile implements StorageFile {
  private closed = false;

  constructor(
    private readonly data: MemoryFileData,
    private readonly path: string,
  ) {
    data.opened();
  }

  private check(syscall: string): void {
    if (this.closed) throw fsError('EBADF', syscall, this.path);
  }

  read(buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
    try {
      this.check('read');
      return Promise.resolve(this.data.read(buffer, offset, length, position));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  writev(buffers: Buffer[], position: number): Promise<void> {
    try {
      this.writevSync(buffers, position);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  writevSync(buffers: Buffer[], position: number): void {
    this.check('writev');
    let at = position;
    for (const buffer of buffers) {
      this.data.write(buffer, at);
      at += buffer.length;
    }
  }

  datasync(): Promise<void> {
    return this.closed ? Promise.reject(fsError('EBADF', 'fdatasync', this.path)) : Promise.resolve();
  }

  truncate(length: number): Promise<void> {
    try {
      this.check('ftruncate');
      this.data.truncate(length);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  size(): Promise<number> {
    return this.closed
      ? Promise.reject(fsError('EBADF', 'fstat', this.path))
      : Promise.resolve(this.data.size);
  }

  close(): Promise<void> {
    if (this.closed) return Promise.reject(fsError('EBADF', 'close', this.path));
    this.closed = true;
    this.data.closed();
    return Promise.resolve();
  }
}

/** A StorageFs in memory, plus what it holds (for tests and memory accounting). */
export interface MemoryStorageFs extends StorageFs {
  /** Always true: lets callers tell a memory file system from one on disk. */
  readonly inMemory: true;
  /** Bytes the files hold now (their sizes). */
  usedBytes(): number;
  /** Bytes allocated for the files (sizes plus the unused tails of their last chunks) and the reserve chunk. */
  allocatedBytes(): number;
  /** Paths of every file, sorted (tests). */
  files(): string[];
  /** Chunks handed out again from files that were gone, instead of newly allocated ones. */
  reusedChunks(): number;
}

/**
 * A new, empty file system in memory. Paths are normalized as POSIX paths; the root `/` always
 * exists, and any other directory must be made with `mkdir` (recursive) before files go in it.
 * The returned object holds its operations as own properties, so spreading it (budgetedFs) keeps them.
 */
export function createMemoryStorageFs(options: { recycleLimitBytes?: number } = {}): MemoryStorageFs {
  const files = new Map<string, MemoryFileData>();
  const directories = new Set<string>(['/']);
  const reserve = new ChunkReserve(options.recycleLimitBytes ?? 0);
  const norm = (path: string): string => posix.resolve('/', path);

  /** The parent directory of `path`, which must exist (ENOENT otherwise, as open(2) reports). */
  const requireParent = (path: string, syscall: string): void => {
    const parent = posix.dirname(path);
    if (directories.has(parent)) return;
    throw fsError(files.has(parent) ? 'ENOTDIR' : 'ENOENT', syscall, path);
  };

  const run = <T>(operation: () => T): Promise<T> => {
    try {
      return Promise.resolve(operation());
    } catch (error) {
      return Promise.reject(error);
    }
  };

  return {
    inMemory: true,
    open: (rawPath, mode) =>
      run(() => {
        const path = norm(rawPath);
        if (directories.has(path)) throw fsError('EISDIR', 'open', rawPath);
        let data = files.get(path);
        if (data === undefined) {
          if (mode !== 'create') throw fsError('ENOENT', 'open', rawPath);
          requireParent(path, 'open');
          data = new MemoryFileData(reserve);
          files.set(path, data);
        }
        return new MemoryFile(data, rawPath) as StorageFile;
      }),
    readFile: (rawPath) =>
      run(() => {
        const path = norm(rawPath);
        if (directories.has(path)) throw fsError('EISDIR', 'read', rawPath);
        const data = files.get(path);
        if (data === undefined) throw fsError('ENOENT', 'open', rawPath);
        return data.contents();
      }),
    writeFile: (rawPath, bytes) =>
      run(() => {
        const path = norm(rawPath);
        if (directories.has(path)) throw fsError('EISDIR', 'open', rawPath);
        requireParent(path, 'open');
        // A new inode's worth of bytes: handles open on the old file keep theirs only through
        // rename, so replacing the contents in place matches `open(path, 'w')` + write.
        const data = files.get(path) ?? new MemoryFileData(reserve);
        data.truncate(0);
        data.write(bytes, 0);
        files.set(path, data);
      }),
    rename: (rawFrom, rawTo) =>
      run(() => {
        const from = norm(rawFrom);
        const to = norm(rawTo);
        const data = files.get(from);
        if (data === undefined) {
          if (directories.has(from)) throw fsError('EISDIR', 'rename', rawFrom);
          throw fsError('ENOENT', 'rename', rawFrom);
        }
        if (directories.has(to)) throw fsError('EISDIR', 'rename', rawTo);
        requireParent(to, 'rename');
        // The target's old bytes stay with handles open on it (as an unlinked inode does).
        const replaced = files.get(to);
        files.delete(from);
        files.set(to, data);
        if (replaced !== undefined && replaced !== data) replaced.unlinked();
      }),
    unlink: (rawPath) =>
      run(() => {
        const path = norm(rawPath);
        if (directories.has(path)) throw fsError('EISDIR', 'unlink', rawPath);
        const data = files.get(path);
        if (data === undefined) throw fsError('ENOENT', 'unlink', rawPath);
        files.delete(path);
        data.unlinked();
      }),
    readdir: (rawPath) =>
      run(() => {
        const path = norm(rawPath);
        if (!directories.has(path)) throw fsError(files.has(path) ? 'ENOTDIR' : 'ENOENT', 'scandir', rawPath);
        const prefix = path === '/' ? '/' : `${path}/`;
        const names: string[] = [];
        for (const entry of [...files.keys(), ...directories]) {
          if (entry === path || !entry.startsWith(prefix)) continue;
          const rest = entry.slice(prefix.length);
          if (!rest.includes('/')) names.push(rest);
        }
        return names.sort();
      }),
    mkdir: (rawPath) =>
      run(() => {
        const path = norm(rawPath);
        // Recursive, like the node one: every missing ancestor is made; an existing directory is fine.
        const missing: string[] = [];
        for (let at = path; !directories.has(at); at = posix.dirname(at)) {
          if (files.has(at)) throw fsError('EEXIST', 'mkdir', rawPath);
          missing.push(at);
        }
        for (const dir of missing) directories.add(dir);
      }),
    syncDirectory: (rawPath) =>
      run(() => {
        const path = norm(rawPath);
        if (!directories.has(path)) throw fsError('ENOENT', 'open', rawPath);
      }),
    exists: (rawPath) =>
      run(() => {
        const path = norm(rawPath);
        return files.has(path) || directories.has(path);
      }),
    usedBytes() {
      let total = 0;
      for (const data of files.values()) total += data.size;
      return total;
    },
    allocatedBytes() {
      let total = reserve.heldBytes;
      for (const data of files.values()) total += data.allocatedBytes;
      return total;
    },
    files: () => [...files.keys()].sort(),
    reusedChunks: () => reserve.reused,
  };
}
