// The file-system operations the storage layer uses, behind an interface so fault tests can inject
// ENOSPC, EIO and crashes (test/storage/helpers). Production code uses `nodeStorageFs`, a thin
// pass-through to node:fs/promises. Everything is asynchronous except `writevSync`, the one
// synchronous call: a small append's write into the page cache, made in line on the event loop
// because it costs less than the thread-pool round trip (docs/storage.md, "Append path").

import { constants, writevSync } from 'node:fs';
import * as fs from 'node:fs/promises';

export interface StorageFile {
  /** Positioned read; returns bytes read (fewer at end of file). */
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<number>;
  /** Positioned gather write of all buffers; resolves when every byte is written. */
  writev(buffers: Buffer[], position: number): Promise<void>;
  /**
   * The same write, synchronous: returns once every byte is in the file (the page cache), throws
   * the file system's error (ENOSPC, EIO) otherwise. Part of the write may have landed then.
   */
  writevSync(buffers: Buffer[], position: number): void;
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  size(): Promise<number>;
  close(): Promise<void>;
}

export interface StorageFs {
  open(path: string, mode: 'read-write' | 'create'): Promise<StorageFile>;
  readFile(path: string): Promise<Buffer>;
  /** Writes a whole file and fdatasyncs it (no rename: callers add one for atomicity). */
  writeFile(path: string, data: Buffer): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  mkdir(path: string): Promise<void>;
  /** fsync of a directory, so that creates, renames and unlinks in it are durable. */
  syncDirectory(path: string): Promise<void>;
  exists(path: string): Promise<boolean>;
}

/** What is left of `buffers` after a short write of `written` bytes. */
function unwritten(buffers: Buffer[], written: number): Buffer[] {
  let skip = written;
  const rest: Buffer[] = [];
  for (const buffer of buffers) {
    if (skip >= buffer.length) {
      skip -= buffer.length;
      continue;
    }
    rest.push(skip > 0 ? buffer.subarray(skip) : buffer);
    skip = 0;
  }
  return rest;
}

class NodeFile implements StorageFile {
  constructor(private readonly handle: fs.FileHandle) {}

  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
    const { bytesRead } = await this.handle.read(buffer, offset, length, position);
    return bytesRead;
  }

  async writev(buffers: Buffer[], position: number): Promise<void> {
    let pending = buffers;
    let at = position;
    // writev may write fewer bytes than asked (rare on regular files, but legal): finish the rest.
    while (pending.length > 0) {
      const { bytesWritten } = await this.handle.writev(pending, at);
      at += bytesWritten;
      pending = unwritten(pending, bytesWritten);
    }
  }

  writevSync(buffers: Buffer[], position: number): void {
    let pending = buffers;
    let at = position;
    while (pending.length > 0) {
      const bytesWritten = writevSync(this.handle.fd, pending, at);
      at += bytesWritten;
      pending = unwritten(pending, bytesWritten);
    }
  }

  datasync(): Promise<void> {
    return this.handle.datasync();
  }

  truncate(length: number): Promise<void> {
    return this.handle.truncate(length);
  }

  async size(): Promise<number> {
    return (await this.handle.stat()).size;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

export const nodeStorageFs: StorageFs = {
  async open(path, mode) {
    const flags = mode === 'create' ? constants.O_RDWR | constants.O_CREAT : constants.O_RDWR;
    return new NodeFile(await fs.open(path, flags, 0o644));
  },
  readFile: (path) => fs.readFile(path),
  async writeFile(path, data) {
    const handle = await fs.open(path, 'w', 0o644);
    try {
      await handle.writeFile(data);
      await handle.datasync();
    } finally {
      await handle.close();
    }
  },
  rename: (from, to) => fs.rename(from, to),
  unlink: (path) => fs.unlink(path),
  readdir: (path) => fs.readdir(path),
  async mkdir(path) {
    await fs.mkdir(path, { recursive: true });
  },
  async syncDirectory(path) {
    const handle = await fs.open(path, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
  async exists(path) {
    try {
      await fs.access(path);
      return true;
    } catch {
      return false;
    }
  },
};
