// A StorageFs that wraps the real one and counts or fails chosen operations, for fault tests.
import { nodeStorageFs, type StorageFile, type StorageFs } from '../../../src/storage/storage-fs.js';

export interface Faults {
  /** Error code to throw from the next writev calls (e.g. 'ENOSPC'), or null. */
  writeError: string | null;
  /** Error code to throw from the next datasync calls (e.g. 'EIO'), or null. */
  syncError: string | null;
  writes: number;
  syncs: number;
}

function errno(code: string): NodeJS.ErrnoException {
  const error = new Error(`${code}: injected`) as NodeJS.ErrnoException;
  error.code = code;
  return error;
}

export function faultyFs(): { fs: StorageFs; faults: Faults } {
  const faults: Faults = { writeError: null, syncError: null, writes: 0, syncs: 0 };
  const wrap = (file: StorageFile): StorageFile => ({
    read: (b, o, l, p) => file.read(b, o, l, p),
    async writev(buffers, position) {
      faults.writes++;
      if (faults.writeError !== null) {
        // Land part of the write first, as a real short write before ENOSPC would.
        const first = buffers[0];
        if (first !== undefined && first.length > 8) await file.writev([first.subarray(0, 8)], position);
        throw errno(faults.writeError);
      }
      return file.writev(buffers, position);
    },
    async datasync() {
      faults.syncs++;
      if (faults.syncError !== null) throw errno(faults.syncError);
      return file.datasync();
    },
    truncate: (l) => file.truncate(l),
    size: () => file.size(),
    close: () => file.close(),
  });
  const fs: StorageFs = {
    ...nodeStorageFs,
    open: async (path, mode) => wrap(await nodeStorageFs.open(path, mode)),
  };
  return { fs, faults };
}
