// Gives freed malloc memory back to the operating system. Node allocates every Buffer's bytes with
// malloc; glibc keeps the pages of freed chunks in its arenas (chunks below the mmap threshold, and
// that threshold rises after large frees), so after a burst of traffic the broker's RSS stays high
// although nothing is held. The native addon (native/memory, glibc Linux only) calls malloc_trim(0),
// which returns every whole free page of every arena. Without the addon (not built, not glibc, or
// MEMORYSTREAMER_NATIVE_MEMORY=0) every function here does nothing and `nativeMemory.available` is
// false with the reason. See docs/native-memory.md.

import { createRequire } from 'node:module';

interface MemoryAddon {
  trim(): boolean;
  trimAsync(): Promise<boolean>;
  setMallocOption(name: 'mmapThreshold' | 'trimThreshold', value: number): boolean;
  freeBytes(): number;
  glibcVersion: string;
}

export type NativeMemoryStatus =
  | { available: true; glibcVersion: string }
  | { available: false; reason: string };

// Relative to this module's own file: src/common/native-memory.ts and dist/common/native-memory.js
// both sit two levels below the package root, where scripts/build-native.mjs builds the addon.
const ADDON_PATH = '../../native/memory/build/Release/memorystreamer_memory.node';

function loadAddon(): { addon: MemoryAddon | null; status: NativeMemoryStatus } {
  if (process.env.MEMORYSTREAMER_NATIVE_MEMORY === '0')
    return { addon: null, status: { available: false, reason: 'MEMORYSTREAMER_NATIVE_MEMORY=0' } };
  if (process.platform !== 'linux')
    return { addon: null, status: { available: false, reason: `not Linux (${process.platform})` } };
  try {
    const addon = createRequire(import.meta.url)(ADDON_PATH) as MemoryAddon;
    return { addon, status: { available: true, glibcVersion: addon.glibcVersion } };
  } catch (error) {
    // Not built (optional: npm install --ignore-scripts, no compiler, musl) or built elsewhere.
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    return { addon: null, status: { available: false, reason: `addon not loaded: ${message}` } };
  }
}

const loaded = loadAddon();

/** Whether malloc_trim is available in this process, and why not. */
export const nativeMemory: NativeMemoryStatus = loaded.status;

/**
 * malloc_trim(0): returns the whole free pages of every malloc arena to the operating system.
 * True when glibc returned some memory; false when it had nothing to return or the addon is missing.
 * Runs on the calling thread and takes the arena locks while it walks their free lists.
 */
export function trimMalloc(): boolean {
  return loaded.addon?.trim() ?? false;
}

/**
 * trimMalloc() on a libuv pool thread, so the event loop keeps running while glibc walks the arenas
 * (about 30 ms with 200 MiB free on a 2-vCPU VM); resolves false at once without the addon.
 */
export function trimMallocAsync(): Promise<boolean> {
  return loaded.addon?.trimAsync() ?? Promise.resolve(false);
}

/** Bytes in free chunks of all malloc arenas (glibc's mallinfo2 fordblks); null when unknown. */
export function mallocFreeBytes(): number | null {
  const bytes = loaded.addon?.freeBytes() ?? -1;
  return bytes < 0 ? null : bytes;
}

/**
 * Fixes glibc's mmap threshold (allocations at or above it get their own mapping, unmapped on
 * free) and trim threshold (free space at the top of the heap above it is returned at once).
 * Setting either also stops glibc raising the mmap threshold after each large free. False when the
 * addon is missing or glibc refused the value.
 */
export function setMallocThresholds(options: { mmapThreshold?: number; trimThreshold?: number }): boolean {
  const addon = loaded.addon;
  if (addon === null) return false;
  let accepted = true;
  if (options.mmapThreshold !== undefined)
    accepted = addon.setMallocOption('mmapThreshold', options.mmapThreshold) && accepted;
  if (options.trimThreshold !== undefined)
    accepted = addon.setMallocOption('trimThreshold', options.trimThreshold) && accepted;
  return accepted;
}
