// A StorageFs that wraps the real one and counts or fails chosen operations, for fault tests. The
// same faults apply to the thread-pool write (writev) and the in-line one (writevSync).
import { nodeStorageFs, type StorageFile, type StorageFs } from '../../../src/storage/storage-fs.js';

/** A thread-pool write held by `holdWrites`: it lands (or fails) when the test releases it. */
export interface HeldWrite {
  position: number;
  bytes: number;
  /** Makes the write (or fails it with `errorCode`, having landed its first bytes) and ends it. */
  release(errorCode?: string): void;
}

export interface Faults {
  /** Error code to throw from the next writes, in line or not (e.g. 'ENOSPC'), or null. */
  writeError: string | null;
  /** Error code to throw from the next datasync calls (e.g. 'EIO'), or null. */
  syncError: string | null;
  /** Thread-pool writes (writev) so far. */
  writes: number;
  /** In-line writes (writevSync) so far. */
  inlineWrites: number;
  syncs: number;
  /** Each in-line write busy-waits this long first (a slow disk, writeback throttling). */
  inlineWriteDelayMs: number;
  /** While true, thread-pool writes wait in `held` until the test releases them, in any order. */
  holdWrites: boolean;
  held: HeldWrite[];
}

function errno(code: string): NodeJS.ErrnoException {
  const error = new Error(`${code}: injected`) as NodeJS.ErrnoException;
  error.code = code;
  return error;
}

export function faultyFs(): { fs: StorageFs; faults: Faults } {
  const faults: Faults = {
    writeError: null,
    syncError: null,
    writes: 0,
    inlineWrites: 0,
    syncs: 0,
    inlineWriteDelayMs: 0,
    holdWrites: false,
    held: [],
  };
  const wrap = (file: StorageFile): StorageFile => {
    /** Lands part of the write first, as a real short write before ENOSPC would. */
    const failAfterPart = async (buffers: Buffer[], position: number, code: string): Promise<never> => {
      const first = buffers[0];
      if (first !== undefined && first.length > 8) await file.writev([first.subarray(0, 8)], position);
      throw errno(code);
    };
    const write = async (buffers: Buffer[], position: number): Promise<void> => {
      if (faults.writeError !== null) await failAfterPart(buffers, position, faults.writeError);
      return file.writev(buffers, position);
    };
    return {
      read: (b, o, l, p) => file.read(b, o, l, p),
      async writev(buffers, position) {
        faults.writes++;
        if (!faults.holdWrites) return write(buffers, position);
        let bytes = 0;
        for (const buffer of buffers) bytes += buffer.length;
        const released = await new Promise<string | undefined>((resolve) =>
          faults.held.push({ position, bytes, release: resolve }),
        );
        if (released !== undefined) await failAfterPart(buffers, position, released);
        return write(buffers, position);
      },
      writevSync(buffers, position) {
        faults.inlineWrites++;
        if (faults.inlineWriteDelayMs > 0) {
          const until = performance.now() + faults.inlineWriteDelayMs;
          while (performance.now() < until) {
            // A write that blocks the thread, as a throttled one does.
          }
        }
        if (faults.writeError !== null) {
          const first = buffers[0];
          if (first !== undefined && first.length > 8) file.writevSync([first.subarray(0, 8)], position);
          throw errno(faults.writeError);
        }
        file.writevSync(buffers, position);
      },
      async datasync() {
        faults.syncs++;
        if (faults.syncError !== null) throw errno(faults.syncError);
        return file.datasync();
      },
      truncate: (l) => file.truncate(l),
      size: () => file.size(),
      close: () => file.close(),
    };
  };
  const fs: StorageFs = {
    ...nodeStorageFs,
    open: async (path, mode) => wrap(await nodeStorageFs.open(path, mode)),
  };
  return { fs, faults };
}
