import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  mallocFreeBytes,
  nativeMemory,
  setMallocThresholds,
  trimMalloc,
  trimMallocAsync,
} from '../../src/common/native-memory.js';

const MiB = 1024 * 1024;

interface ChurnResult {
  status: { available: boolean; reason?: string; glibcVersion?: string };
  allocated: number;
  before: number;
  after: number;
  returned: boolean;
}

/** bench/malloc-trim.ts in a child, so this runner's own heap does not count. */
async function churn(mode: 'sync' | 'async', env: NodeJS.ProcessEnv = {}): Promise<ChurnResult> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', 'bench/malloc-trim.ts', mode, '200'],
    { env: { ...process.env, ...env }, timeout: 60_000 },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as ChurnResult;
}

/** glibc Linux, where scripts/build-native.mjs builds the addon. */
const glibc =
  process.platform === 'linux' &&
  typeof (process.report.getReport() as { header?: { glibcVersionRuntime?: unknown } }).header
    ?.glibcVersionRuntime === 'string';

describe('native memory (malloc_trim)', () => {
  it('is available in CI on glibc Linux (where scripts/build-native.mjs --require built it)', () => {
    if (process.env.CI === 'true' && glibc) expect(nativeMemory).toMatchObject({ available: true });
    if (nativeMemory.available) expect(nativeMemory.glibcVersion).toMatch(/^2\.\d+$/);
    else expect(nativeMemory.reason).not.toBe('');
  });

  it('answers every call in-process, whichever backend loaded', async () => {
    expect(typeof trimMalloc()).toBe('boolean');
    expect(typeof (await trimMallocAsync())).toBe('boolean');
    const free = mallocFreeBytes();
    if (nativeMemory.available) expect(free).toBeGreaterThanOrEqual(0);
    else expect(free).toBeNull();
    // glibc's defaults (128 KiB, 128 KiB): accepted, and they leave the process as it was.
    expect(setMallocThresholds({ mmapThreshold: 128 * 1024, trimThreshold: 128 * 1024 })).toBe(
      nativeMemory.available,
    );
  });

  it('returns the memory of 200 MiB of freed 16-64 KiB Buffers to the OS (trimMalloc)', async () => {
    const result = await churn('sync');
    if (!result.status.available) return expect(glibc && process.env.CI === 'true').toBe(false);
    expect(result.returned).toBe(true);
    // About 210 MiB is free in the arenas; glibc keeps it resident until trimmed.
    expect(result.before - result.after).toBeGreaterThan(100 * MiB);
  }, 90_000);

  it('returns it from a pool thread too (trimMallocAsync)', async () => {
    const result = await churn('async');
    if (!result.status.available) return expect(glibc && process.env.CI === 'true').toBe(false);
    expect(result.returned).toBe(true);
    expect(result.before - result.after).toBeGreaterThan(100 * MiB);
  }, 90_000);

  it('falls back to doing nothing, with the reason, when the addon is turned off', async () => {
    const result = await churn('sync', { MEMORYSTREAMER_NATIVE_MEMORY: '0' });
    expect(result.status).toEqual({ available: false, reason: 'MEMORYSTREAMER_NATIVE_MEMORY=0' });
    expect(result.returned).toBe(false);
    expect(result.allocated).toBeGreaterThanOrEqual(200 * MiB);
  }, 90_000);
});
