// The small files of the security layer (users, ACLs, tenants): replaced so that a crash at any
// moment leaves either the old file or the new one, never a mix (a temporary file beside it,
// fsync, rename over the old one, fsync of the directory so the rename itself is durable), readable
// by the owner only (they hold credentials and access rules); and stamped, so a store can tell
// that the file changed since it read it (an offline edit).

import { mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

export async function replaceFileDurably(path: string, text: string): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  const handle = await open(tmp, 'w', 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, path);
  } catch (error) {
    await unlink(tmp).catch(() => undefined);
    throw error;
  }
  const directory = await open(dir, 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

/**
 * What tells a changed file from the one read before (modification time, size, inode), or null
 * when there is no file; any other failure is `problem`'s error.
 */
export async function fileStamp(path: string, problem: (detail: string) => Error): Promise<string | null> {
  try {
    const s = await stat(path);
    return `${s.mtimeMs}:${s.size}:${s.ino}`;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw problem((error as Error).message);
  }
}
