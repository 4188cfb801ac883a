// A StorageFs that wraps a real one and keeps an ordered journal of every mutating operation
// (create, positioned write, fdatasync, truncate, synced whole-file write, rename, unlink, mkdir,
// directory fsync), and a model that rebuilds, from that journal, what a disk could hold after a
// crash at any point of it (docs/storage.md, "Crash-state tests").
//
// The model follows POSIX, pessimistically:
// - file data (writes, truncates) is durable only after an fdatasync of that file, or when it came
//   from `writeFile` (which fdatasyncs);
// - directory entries (create, rename, unlink) are durable only after an fsync of the directory;
//   an fdatasync of a file does not make its name durable.
// Operations are journaled when they complete, so "crash at k" means: the first k operations
// completed, nothing after them started. All files live in one directory (a partition's).
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { StorageFile, StorageFs } from '../../../src/storage/storage-fs.js';

export type JournalOp =
  | { kind: 'create'; name: string; inode: number }
  /** `inline`: made with writevSync (the in-line write of a small append). */
  | { kind: 'writev'; name: string; inode: number; position: number; data: Buffer; inline?: true }
  | { kind: 'datasync'; name: string; inode: number }
  | { kind: 'truncate'; name: string; inode: number; length: number }
  /** open 'w' + write + fdatasync: the data is durable, the name (when new) is not. */
  | { kind: 'writeFile'; name: string; inode: number; data: Buffer }
  | { kind: 'rename'; from: string; to: string }
  | { kind: 'unlink'; name: string }
  | { kind: 'mkdir'; path: string }
  | { kind: 'syncDirectory'; path: string };

export interface RecordingOptions {
  /**
   * A broken disk for test-the-test: when this returns true for a file's n-th fdatasync (counted
   * from 1 per file name), the sync reports success but neither happens nor is journaled.
   */
  dropDatasync?: (name: string, n: number) => boolean;
}

export interface RecordingFs {
  fs: StorageFs;
  journal: JournalOp[];
  /** The one directory every recorded file lives in (set by the first file operation). */
  readonly dir: string | null;
}

export function recordingFs(real: StorageFs, options: RecordingOptions = {}): RecordingFs {
  const journal: JournalOp[] = [];
  /** The live directory as the recorded operations left it: name → inode. */
  const live = new Map<string, number>();
  const syncCounts = new Map<string, number>();
  let nextInode = 1;
  let root: string | null = null;

  const nameOf = (path: string): string => {
    const dir = dirname(path);
    if (root === null) root = dir;
    else if (root !== dir) throw new Error(`recordingFs models one directory: ${path} is outside ${root}`);
    return basename(path);
  };

  const wrap = (name: string, inode: number, file: StorageFile): StorageFile => ({
    read: (buffer, offset, length, position) => file.read(buffer, offset, length, position),
    async writev(buffers, position) {
      const data = Buffer.concat(buffers);
      await file.writev(buffers, position);
      journal.push({ kind: 'writev', name, inode, position, data });
    },
    writevSync(buffers, position) {
      const data = Buffer.concat(buffers);
      file.writevSync(buffers, position);
      journal.push({ kind: 'writev', name, inode, position, data, inline: true });
    },
    async datasync() {
      const n = (syncCounts.get(name) ?? 0) + 1;
      syncCounts.set(name, n);
      if (options.dropDatasync?.(name, n)) return;
      await file.datasync();
      journal.push({ kind: 'datasync', name, inode });
    },
    async truncate(length) {
      await file.truncate(length);
      journal.push({ kind: 'truncate', name, inode, length });
    },
    size: () => file.size(),
    close: () => file.close(),
  });

  const fs: StorageFs = {
    async open(path, mode) {
      const name = nameOf(path);
      const file = await real.open(path, mode);
      let inode = live.get(name);
      if (inode === undefined) {
        if (mode !== 'create') {
          await file.close();
          throw new Error(`recordingFs: ${path} existed before recording began`);
        }
        inode = nextInode++;
        live.set(name, inode);
        journal.push({ kind: 'create', name, inode });
      }
      return wrap(name, inode, file);
    },
    readFile: (path) => real.readFile(path),
    async writeFile(path, data) {
      const name = nameOf(path);
      await real.writeFile(path, data);
      let inode = live.get(name);
      if (inode === undefined) {
        inode = nextInode++;
        live.set(name, inode);
      }
      journal.push({ kind: 'writeFile', name, inode, data: Buffer.from(data) });
    },
    async rename(from, to) {
      const fromName = nameOf(from);
      const toName = nameOf(to);
      await real.rename(from, to);
      const inode = live.get(fromName);
      if (inode === undefined) throw new Error(`recordingFs: rename of unknown ${from}`);
      live.delete(fromName);
      live.set(toName, inode);
      journal.push({ kind: 'rename', from: fromName, to: toName });
    },
    async unlink(path) {
      const name = nameOf(path);
      await real.unlink(path);
      live.delete(name);
      journal.push({ kind: 'unlink', name });
    },
    readdir: (path) => real.readdir(path),
    async mkdir(path) {
      await real.mkdir(path);
      journal.push({ kind: 'mkdir', path });
    },
    async syncDirectory(path) {
      await real.syncDirectory(path);
      journal.push({ kind: 'syncDirectory', path });
    },
    exists: (path) => real.exists(path),
  };
  return {
    fs,
    journal,
    get dir() {
      return root;
    },
  };
}

/**
 * - `keep-all`: everything completed before the crash is on disk (a process crash).
 * - `lose-unsynced`: power loss on a strict file system: every file holds what its last fdatasync
 *   covered, and the directory holds what its last fsync covered.
 * - `lose-unsynced-data`: unsynced file data is lost, but directory operations survive (a
 *   file system that journals metadata in order, like ext4 data=ordered without the data).
 * - `lose-unsynced-dir`: file data survives, directory operations since the directory's last
 *   fsync are lost.
 * - `torn-last-write`: everything survives except the last write, if still unsynced: only a prefix
 *   of it ending on a 512 B or 4 KiB boundary lands, the file cut there or (when the write extended
 *   the file) left at its new size with zeros where the lost sectors were.
 */
export type CrashVariant =
  | 'keep-all'
  | 'lose-unsynced'
  | 'lose-unsynced-data'
  | 'lose-unsynced-dir'
  | 'torn-last-write';

export const CRASH_VARIANTS: readonly CrashVariant[] = [
  'keep-all',
  'lose-unsynced',
  'lose-unsynced-data',
  'lose-unsynced-dir',
  'torn-last-write',
];

export interface CrashState {
  /** Which crash this is, for failure messages. */
  label: string;
  /** File name → content. */
  files: Map<string, Buffer>;
}

interface Inode {
  data: Buffer;
  durable: Buffer;
}

function applyWrite(base: Buffer, position: number, data: Buffer): Buffer {
  const out = Buffer.alloc(Math.max(base.length, position + data.length));
  base.copy(out);
  data.copy(out, position);
  return out;
}

function resize(base: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  base.copy(out, 0, 0, Math.min(length, base.length));
  return out;
}

/** The disk states a crash after the first `k` journal operations can leave, under `variant`. */
export function crashStates(journal: readonly JournalOp[], k: number, variant: CrashVariant): CrashState[] {
  const inodes = new Map<number, Inode>();
  const volatileDir = new Map<string, number>();
  let durableDir = new Map<string, number>();
  let lastWrite: { inode: number; before: Buffer; position: number; data: Buffer } | null = null;
  const inodeOf = (id: number): Inode => {
    let inode = inodes.get(id);
    if (inode === undefined) {
      inode = { data: Buffer.alloc(0), durable: Buffer.alloc(0) };
      inodes.set(id, inode);
    }
    return inode;
  };
  for (let i = 0; i < k; i++) {
    const op = journal[i]!;
    switch (op.kind) {
      case 'create':
        inodeOf(op.inode);
        volatileDir.set(op.name, op.inode);
        break;
      case 'writev': {
        const inode = inodeOf(op.inode);
        lastWrite = { inode: op.inode, before: inode.data, position: op.position, data: op.data };
        inode.data = applyWrite(inode.data, op.position, op.data);
        break;
      }
      case 'datasync': {
        const inode = inodeOf(op.inode);
        inode.durable = inode.data;
        if (lastWrite?.inode === op.inode) lastWrite = null;
        break;
      }
      case 'truncate': {
        const inode = inodeOf(op.inode);
        inode.data = resize(inode.data, op.length);
        if (lastWrite?.inode === op.inode) lastWrite = null;
        break;
      }
      case 'writeFile': {
        const inode = inodeOf(op.inode);
        inode.data = op.data;
        inode.durable = op.data;
        volatileDir.set(op.name, op.inode);
        if (lastWrite?.inode === op.inode) lastWrite = null;
        break;
      }
      case 'rename': {
        const inode = volatileDir.get(op.from);
        if (inode === undefined) throw new Error(`journal ${i}: rename of missing ${op.from}`);
        volatileDir.delete(op.from);
        volatileDir.set(op.to, inode);
        break;
      }
      case 'unlink':
        volatileDir.delete(op.name);
        break;
      case 'mkdir':
        break;
      case 'syncDirectory':
        durableDir = new Map(volatileDir);
        break;
    }
  }
  const state = (label: string, dir: Map<string, number>, content: (id: number) => Buffer): CrashState => {
    const files = new Map<string, Buffer>();
    for (const [name, id] of dir) files.set(name, content(id));
    return { label: `k=${k} ${label}`, files };
  };
  switch (variant) {
    case 'keep-all':
      return [state(variant, volatileDir, (id) => inodeOf(id).data)];
    case 'lose-unsynced':
      return [state(variant, durableDir, (id) => inodeOf(id).durable)];
    case 'lose-unsynced-data':
      return [state(variant, volatileDir, (id) => inodeOf(id).durable)];
    case 'lose-unsynced-dir':
      return [state(variant, durableDir, (id) => inodeOf(id).data)];
    case 'torn-last-write': {
      if (lastWrite === null) return [];
      const torn = lastWrite;
      const end = torn.position + torn.data.length;
      const cuts = new Set<number>([torn.position]);
      for (const sector of [512, 4096]) {
        for (let b = Math.ceil((torn.position + 1) / sector) * sector; b < end; b += sector) cuts.add(b);
      }
      const states: CrashState[] = [];
      for (const cut of [...cuts].sort((a, b) => a - b)) {
        const landed = applyWrite(torn.before, torn.position, torn.data.subarray(0, cut - torn.position));
        states.push(
          state(`torn at byte ${cut} (cut)`, volatileDir, (id) =>
            id === torn.inode ? landed : inodeOf(id).data,
          ),
        );
        if (end > landed.length) {
          const zeros = resize(landed, end);
          states.push(
            state(`torn at byte ${cut} (zero tail to ${end})`, volatileDir, (id) =>
              id === torn.inode ? zeros : inodeOf(id).data,
            ),
          );
        }
      }
      return states;
    }
  }
}

/** Writes a crash state's files into `dir` (created if missing). */
export async function materialize(state: CrashState, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, content] of state.files) await writeFile(join(dir, name), content);
}
