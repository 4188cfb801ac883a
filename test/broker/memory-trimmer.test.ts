import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MEMORY_TRIM, MemoryTrimmer, unaccountedBytes } from '../../src/broker/memory-trimmer.js';
import { MALLOC_MMAP_THRESHOLD, MALLOC_TRIM_THRESHOLD } from '../../src/broker/startup-memory-trim.js';
import { nativeMemory } from '../../src/common/native-memory.js';
import { Broker } from '../../src/embedded/broker.js';
import { tempDir } from '../harness/temp-dir.js';

const MiB = 1024 * 1024;

/** test/broker/helpers/trim-child.ts in a child, so this runner's own heap does not count. */
async function child(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Record<string, unknown>> {
  const exposeGc = args[0] === 'release' || args[0] === 'quiet' ? [] : ['--expose-gc'];
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [...exposeGc, '--import', 'tsx', 'test/broker/helpers/trim-child.ts', ...args],
    { env: { ...process.env, ...env }, timeout: 60_000 },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

describe('MemoryTrimmer', () => {
  it('measures memory outside V8 and Buffers as rss − heapTotal − arrayBuffers', () => {
    expect(unaccountedBytes({ rss: 300 * MiB, heapTotal: 40 * MiB, arrayBuffers: 60 * MiB })).toBe(200 * MiB);
  });

  it('rejects settings that cannot work', () => {
    const deps = {
      status: nativeMemory,
      trim: async () => false,
      heldBytes: () => 0,
      collectGarbage: null,
      onTrim: () => undefined,
      onError: () => undefined,
    };
    const settings = DEFAULT_MEMORY_TRIM;
    expect(() => new MemoryTrimmer({ ...settings, intervalMs: 0 }, deps)).toThrow(RangeError);
    expect(() => new MemoryTrimmer({ ...settings, thresholdBytes: -1 }, deps)).toThrow(RangeError);
    expect(() => new MemoryTrimmer({ ...settings, minGcIntervalMs: Number.NaN }, deps)).toThrow(RangeError);
    expect(new MemoryTrimmer(DEFAULT_MEMORY_TRIM, deps).active).toBe(nativeMemory.available);
  });

  it('trims once after 200 MiB of Buffers were freed, then not again until memory grows', async () => {
    const result = (await child(['check'])) as {
      active: boolean;
      first: { rssBefore: number; rssAfter: number; returnedBytes: number } | null;
      second: unknown;
    };
    if (!nativeMemory.available) {
      expect(result.active).toBe(false);
      expect(result.first).toBeNull();
      return;
    }
    expect(result.first).not.toBeNull();
    expect(result.first!.returnedBytes).toBeGreaterThan(100 * MiB);
    expect(result.first!.rssAfter).toBe(result.first!.rssBefore - result.first!.returnedBytes);
    expect(result.second).toBeNull();
  }, 90_000);

  it('forces a full collection when connections let go of Buffers V8 has not freed, then trims', async () => {
    const result = (await child(['release'])) as {
      exposedGc: boolean;
      collector: boolean;
      whileHeld: unknown;
      arrayBuffersBefore: number;
      released: { returnedBytes: number; gcMs: number | null } | null;
      arrayBuffersAfter: number;
    };
    // Started without --expose-gc: the collector comes from the flag set at run time.
    expect(result.exposedGc).toBe(false);
    expect(result.collector).toBe(true);
    expect(result.whileHeld).toBeNull();
    if (!nativeMemory.available) return expect(result.released).toBeNull();
    expect(result.arrayBuffersBefore).toBeGreaterThan(150 * MiB);
    expect(result.released).not.toBeNull();
    expect(result.released!.gcMs).not.toBeNull();
    expect(result.arrayBuffersAfter).toBeLessThan(50 * MiB);
    expect(result.released!.returnedBytes).toBeGreaterThan(100 * MiB);
  }, 90_000);

  it('collects Buffers no connection held once the broker is quiet, then not again while they stay live', async () => {
    const result = (await child(['quiet'])) as {
      arrayBuffersBefore: number;
      growing: unknown;
      gcsWhileGrowing: number;
      quiet: { returnedBytes: number; gcMs: number | null } | null;
      gcsWhenQuiet: number;
      arrayBuffersAfter: number;
      again: unknown;
      gcsAgain: number;
      gcsLiveFirst: number;
      gcsLiveAfter: number;
    };
    if (!nativeMemory.available) return expect(result.gcsAgain).toBe(0);
    expect(result.arrayBuffersBefore).toBeGreaterThan(150 * MiB);
    // Still growing at the first check: V8 is busy and may collect them itself.
    expect(result.gcsWhileGrowing).toBe(0);
    expect(result.growing).toBeNull();
    // Level since the previous check: one collection, and the trim returns the pages.
    expect(result.gcsWhenQuiet).toBe(1);
    expect(result.quiet).not.toBeNull();
    expect(result.quiet!.gcMs).not.toBeNull();
    expect(result.arrayBuffersAfter).toBeLessThan(50 * MiB);
    expect(result.quiet!.returnedBytes).toBeGreaterThan(100 * MiB);
    expect(result.gcsAgain).toBe(1);
    expect(result.again).toBeNull();
    // 200 MiB kept live: collected once when quiet, found live, then left alone.
    expect(result.gcsLiveFirst).toBe(1);
    expect(result.gcsLiveAfter).toBe(0);
  }, 90_000);

  it('does nothing without the addon', async () => {
    const result = await child(['check'], { MEMORYSTREAMER_NATIVE_MEMORY: '0' });
    expect(result).toMatchObject({ active: false, first: null, second: null });
  }, 90_000);

  it("a trimming broker fixes glibc's mmap and trim thresholds, and says so; memoryTrim false leaves them", async () => {
    // What the thresholds do to page faults is measured by bench/malloc-thresholds.ts (a count of
    // faults in a test ran into the collector's timing on a loaded machine).
    const started = async (memoryTrim: false | undefined) => {
      const records: Array<{ fields: Record<string, unknown>; message: string }> = [];
      const note = (fields: Record<string, unknown>, message: string) => records.push({ fields, message });
      const logger = { info: note, warn: note, error: note, debug: note };
      const broker = await Broker.start({
        dataDir: await tempDir('ms-trim-'),
        logger,
        ...(memoryTrim === false ? { memoryTrim } : {}),
      });
      await broker.stop();
      return records.find((r) => r.message.startsWith('freed malloc memory'));
    };
    const trimming = await started(undefined);
    const off = await started(false);
    expect(off).toBeUndefined();
    if (!nativeMemory.available) return;
    expect(trimming?.fields).toMatchObject({
      mmapThreshold: MALLOC_MMAP_THRESHOLD,
      trimThreshold: MALLOC_TRIM_THRESHOLD,
    });
    expect(MALLOC_MMAP_THRESHOLD).toBe(32 * MiB);
    expect(MALLOC_TRIM_THRESHOLD).toBe(64 * MiB);
  }, 90_000);

  it('a broker counts its trims and the bytes they returned in its metrics', async () => {
    const dataDir = await tempDir('ms-trim-');
    const result = (await child(['broker', dataDir])) as { trims: number; trimmedBytes: number };
    if (!nativeMemory.available) return expect(result.trims).toBe(0);
    expect(result.trims).toBeGreaterThanOrEqual(1);
    expect(result.trimmedBytes).toBeGreaterThan(100 * MiB);
  }, 90_000);
});
