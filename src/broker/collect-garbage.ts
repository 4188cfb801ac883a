// A full garbage collection on demand, for the memory trimmer (memory-trimmer.ts). The broker lets
// go of the Buffers of a burst of traffic at once (connections closed, frames dropped), but V8 frees
// their bytes only in a full collection, which an idle broker may not run for minutes: RSS stays up
// with memory nobody holds. `global.gc` exists only under --expose-gc; setting the flag at run time
// exposes `gc` in new contexts (the way jest's leak detector gets it), without changing how the
// process was started.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let collector: (() => void) | null | undefined;

/** A function that runs a full (major) collection, or null where it cannot be had. */
export function garbageCollector(): (() => void) | null {
  if (collector !== undefined) return collector;
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') collector = exposed;
  else {
    try {
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as unknown;
      collector = typeof gc === 'function' ? (gc as () => void) : null;
    } catch {
      collector = null;
    }
  }
  return collector;
}
