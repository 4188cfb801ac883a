// A StorageFs that remembers how much of each file was made durable (fdatasync, or a synced
// whole-file write) and can simulate a power loss: every file is cut back to its durable size, and
// the "machine" refuses all further operations. Appends only ever extend log files, so what a power
// loss takes away is the unsynced tail.
import { truncate } from 'node:fs/promises';
import { nodeStorageFs, type StorageFile, type StorageFs } from '../../../src/storage/storage-fs.js';

export interface PowerLossFs {
  fs: StorageFs;
  /** Stops all I/O, waits for in-flight operations, then cuts every file to its synced size. */
  powerLoss(): Promise<void>;
}

export function powerLossFs(): PowerLossFs {
  const synced = new Map<string, number>();
  let dead = false;
  // Files still open at the power loss: closed then, as the kernel closes a dead process's files.
  const open = new Set<StorageFile>();
  const inFlight = new Set<Promise<unknown>>();
  const guard = <T>(operation: () => Promise<T>): Promise<T> => {
    if (dead) return Promise.reject(Object.assign(new Error('EIO: machine is off'), { code: 'EIO' }));
    const promise = operation();
    inFlight.add(promise);
    promise.then(
      () => inFlight.delete(promise),
      () => inFlight.delete(promise),
    );
    return promise;
  };
  const wrap = (path: string, file: StorageFile): StorageFile => ({
    read: (b, o, l, p) => guard(() => file.read(b, o, l, p)),
    writev: (buffers, position) => guard(() => file.writev(buffers, position)),
    writevSync(buffers, position) {
      if (dead) throw Object.assign(new Error('EIO: machine is off'), { code: 'EIO' });
      file.writevSync(buffers, position);
    },
    datasync: () =>
      guard(async () => {
        await file.datasync();
        synced.set(path, await file.size());
      }),
    truncate: (length) =>
      guard(async () => {
        await file.truncate(length);
        synced.set(path, Math.min(synced.get(path) ?? 0, length));
      }),
    size: () => guard(() => file.size()),
    close: () => {
      open.delete(file);
      return file.close();
    },
  });
  const fs: StorageFs = {
    ...nodeStorageFs,
    open: (path, mode) =>
      guard(async () => {
        const file = await nodeStorageFs.open(path, mode);
        if (!synced.has(path)) synced.set(path, mode === 'create' ? 0 : await file.size());
        open.add(file);
        return wrap(path, file);
      }),
    writeFile: (path, data) =>
      guard(async () => {
        await nodeStorageFs.writeFile(path, data);
        synced.set(path, data.length);
      }),
    rename: (from, to) =>
      guard(async () => {
        await nodeStorageFs.rename(from, to);
        synced.set(to, synced.get(from) ?? 0);
        synced.delete(from);
      }),
  };
  return {
    fs,
    async powerLoss() {
      dead = true;
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
      for (const file of open) await file.close().catch(() => undefined);
      open.clear();
      for (const [path, size] of synced) {
        await truncate(path, size).catch(() => undefined);
      }
    },
  };
}
