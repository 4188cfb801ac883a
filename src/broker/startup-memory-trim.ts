// Starts the periodic malloc_trim of a broker node (memory-trimmer.ts decides when; this wires it to
// the native addon, the connections' held bytes, the metrics and the log) and says once in the log
// whether it can run and why not.

import { nativeMemory, trimMallocAsync } from '../common/native-memory.js';
import type { BrokerLogger } from '../metrics/logger.js';
import type { BrokerCore } from './broker-core.js';
import { garbageCollector } from './collect-garbage.js';
import { DEFAULT_MEMORY_TRIM, MemoryTrimmer, type MemoryTrimSettings } from './memory-trimmer.js';
import type { NetworkServer } from './server/network-server.js';

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
    logger.info(
      { glibc: nativeMemory.glibcVersion, ...resolved },
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
