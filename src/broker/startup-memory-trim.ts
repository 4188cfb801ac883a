// Starts the periodic malloc_trim of a broker node (memory-trimmer.ts decides when; this wires it to
// the native addon, the connections' held bytes, the metrics and the log) and says once in the log
// whether it can run and why not. Where it runs, it also fixes glibc's thresholds (below).

import { nativeMemory, setMallocThresholds, trimMallocAsync } from '../common/native-memory.js';
import type { BrokerLogger } from '../metrics/logger.js';
import type { BrokerCore } from './broker-core.js';
import { garbageCollector } from './collect-garbage.js';
import { DEFAULT_MEMORY_TRIM, MemoryTrimmer, type MemoryTrimSettings } from './memory-trimmer.js';
import type { NetworkServer } from './server/network-server.js';

/**
 * glibc's mmap threshold while the trimmer runs: its own ceiling for the threshold it raises by
 * itself after large frees (32 MiB on 64-bit), from the start. Buffers below it come from the
 * arenas and are used again after they are freed, instead of being mapped afresh each time.
 */
export const MALLOC_MMAP_THRESHOLD = 32 * 1024 * 1024;

/**
 * glibc's trim threshold while the trimmer runs: glibc by itself returns the top of the heap once
 * it holds twice the largest buffer freed (about 0.5 MiB after the producer's 256 KiB batches),
 * and the next batch then faults its pages in afresh (about 10 µs per 4 KiB page in a virtual
 * machine, docs/native-memory.md). At 64 MiB (twice the trimmer's default `thresholdBytes`), the
 * trimmer returns what stays free at its next check instead; glibc still trims a larger top at once.
 */
export const MALLOC_TRIM_THRESHOLD = 64 * 1024 * 1024;

/** The trimmer, started where malloc_trim is available; null when `settings` is false. */
export function startMemoryTrim(
  settings: Partial<MemoryTrimSettings> | false | undefined,
  core: BrokerCore,
  server: NetworkServer | null,
  logger: BrokerLogger,
): MemoryTrimmer | null {
  if (settings === false) return null;
  const resolved = { ...DEFAULT_MEMORY_TRIM, ...settings };
  const trimmer = new MemoryTrimmer(resolved, {
    status: nativeMemory,
    trim: trimMallocAsync,
    heldBytes: () => server?.heldBytes ?? 0,
    collectGarbage: server !== null ? garbageCollector() : null,
    onGc: (durationMs) => {
      core.metrics.recordForcedGc();
      logger.debug({ durationMs }, 'full garbage collection after connections released their buffers');
    },
    onError: (error) =>
      logger.warn({ error: (error as Error).message }, 'returning freed memory to the OS failed'),
    onTrim: (record) => {
      core.metrics.recordMemoryTrim(record.returnedBytes);
      logger.debug({ ...record }, 'freed malloc memory returned to the OS');
    },
  });
  if (nativeMemory.available) {
    const thresholds = {
      mmapThreshold: MALLOC_MMAP_THRESHOLD,
      trimThreshold: MALLOC_TRIM_THRESHOLD,
    };
    const fixed = setMallocThresholds(thresholds);
    logger.info(
      {
        glibc: nativeMemory.glibcVersion,
        ...resolved,
        ...(fixed ? thresholds : { thresholds: 'glibc defaults' }),
      },
      'freed malloc memory is returned to the OS',
    );
    trimmer.start();
  } else {
    logger.info(
      { reason: nativeMemory.reason },
      'freed malloc memory is not returned to the OS (no malloc_trim)',
    );
  }
  return trimmer;
}
