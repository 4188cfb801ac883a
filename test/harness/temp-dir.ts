// Temporary directories for tests that are always removed: at the end of the test (or of the
// hook's scope) that made them, after its own afterEach/afterAll hooks have stopped the brokers
// that use them, and, for any a crashed test left behind, when the test process exits.
//
//   const dir = useTempDir('ms-e2e-');            // a fresh one for every test of the file
//   beforeEach(async () => { broker = await Broker.start({ dataDir: dir.path }); });
//
//   const shared = useTempDir('ms-cli-', 'all');  // one for the whole file (or describe block)
//
//   it('...', async () => { const dir = await tempDir('ms-kill-'); ... });  // this test only
//
//   const ram = useTempDir('ms-crash-', 'all', { parent: MEMORY_TEMP_ROOT });  // in RAM where there is one

import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, beforeEach, onTestFinished } from 'vitest';

const existing = new Set<string>();

/**
 * A RAM-backed temp root where the machine has one (/dev/shm), else the OS temp dir: for tests that
 * write and throw away many logs (crash-state sweeps), where a disk would make them slow.
 */
export const MEMORY_TEMP_ROOT = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

export interface TempDirOptions {
  /** The directory to make it in (default the OS temp dir), e.g. MEMORY_TEMP_ROOT or another temp dir. */
  parent?: string;
}

process.once('exit', () => {
  for (const dir of existing) rmSync(dir, { recursive: true, force: true });
});

/** A new empty directory (under the OS temp dir by default); removed by removeTempDir or at process exit. */
export async function makeTempDir(prefix: string, options: TempDirOptions = {}): Promise<string> {
  const dir = await mkdtemp(join(options.parent ?? tmpdir(), prefix));
  existing.add(dir);
  return dir;
}

/** Removes a directory made by makeTempDir with everything in it (nothing when it is gone). */
export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  existing.delete(dir);
}

/**
 * Inside a test body: a new directory removed when the test has finished, whether it passed or
 * not (after its afterEach hooks and `finally` blocks).
 */
export async function tempDir(prefix: string, options: TempDirOptions = {}): Promise<string> {
  const dir = await makeTempDir(prefix, options);
  onTestFinished(() => removeTempDir(dir));
  return dir;
}

export interface ScopedTempDir {
  /** The current directory (read it in a test or a hook, not at the top of the file). */
  readonly path: string;
}

/**
 * Call at the top of a file or describe block: a new directory before each test ('each', the
 * default) or once before all of them ('all'), removed after the afterEach/afterAll hooks of the
 * same scope, so a broker those hooks stop is stopped before its data directory goes.
 */
export function useTempDir(
  prefix: string,
  scope: 'each' | 'all' = 'each',
  options: TempDirOptions = {},
): ScopedTempDir {
  let current: string | null = null;
  const make = async () => {
    const dir = await makeTempDir(prefix, options);
    current = dir;
    // Vitest runs a hook's returned function after the scope's after-hooks.
    return async () => {
      if (current === dir) current = null;
      await removeTempDir(dir);
    };
  };
  if (scope === 'each') beforeEach(make);
  else beforeAll(make);
  return {
    get path(): string {
      if (current === null) throw new Error(`no temporary directory ${prefix}* exists outside a test`);
      return current;
    },
  };
}
