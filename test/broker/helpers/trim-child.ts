// Child process for test/embedded/memory-trimmer.test.ts. Frees about 200 MiB of 16-64 KiB Buffers,
// then, by argv[2]:
//   check    (--expose-gc) collects them, calls MemoryTrimmer.check() twice, prints both results
//   release  (no --expose-gc) reports them held as a connection would, lets go of them without a
//            collection, calls MemoryTrimmer.check() with the runtime garbage collector and prints
//            the result
//   quiet    (no --expose-gc) lets go of them unheld by any connection (bytes that passed through
//            the broker) without a collection and calls check() three times: while they grow, once
//            quiet, and again; then keeps 200 MiB live and calls check() twice more
//   broker   (--expose-gc) starts an in-process Broker that checks every 100 ms and prints its trim
//            metrics once they count a trim (or after 20 s)

import { garbageCollector } from '../../../src/broker/collect-garbage.js';
import { MemoryTrimmer } from '../../../src/broker/memory-trimmer.js';
import { nativeMemory, trimMallocAsync } from '../../../src/common/native-memory.js';
import { Broker } from '../../../src/embedded/broker.js';

const MiB = 1024 * 1024;

function allocate(total: number): Buffer[] {
  const held: Buffer[] = [];
  for (let i = 0, bytes = 0; bytes < total; i++) {
    const size = (16 + (i % 7) * 8) * 1024;
    held.push(Buffer.alloc(size, i & 0xff));
    bytes += size;
  }
  return held;
}

/** Allocates and drops `total` bytes of Buffers, collects, and waits until V8 freed their bytes. */
async function churn(total: number): Promise<void> {
  allocate(total);
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with --expose-gc');
  gc();
  gc();
  // V8 frees ArrayBuffer bytes on a background thread after the collection.
  const deadline = Date.now() + 10_000;
  while (process.memoryUsage().arrayBuffers > 32 * MiB && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 10));
}

/** A trimmer that checks only when told (check()), trims for real and throws what fails. */
function trimmerFor(
  heldBytes: () => number,
  collectGarbage: (() => void) | null,
  onGc?: (ms: number) => void,
): MemoryTrimmer {
  return new MemoryTrimmer(
    { intervalMs: 60_000, thresholdBytes: 32 * MiB, minGcIntervalMs: 0 },
    {
      status: nativeMemory,
      trim: trimMallocAsync,
      heldBytes,
      collectGarbage,
      onTrim: () => undefined,
      ...(onGc === undefined ? {} : { onGc }),
      onError: (error: unknown) => {
        throw error;
      },
    },
  );
}

/** A metric's value in Prometheus text, 0 when absent. */
function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.slice(name.length + 1));
}

if (process.argv[1]?.endsWith('trim-child.ts')) {
  const mode = process.argv[2];
  if (mode === 'check') {
    const trimmer = trimmerFor(() => 0, null);
    await churn(200 * MiB);
    const first = await trimmer.check();
    const second = await trimmer.check();
    console.log(JSON.stringify({ status: nativeMemory, active: trimmer.active, first, second }));
  } else if (mode === 'release') {
    let held: Buffer[] | null = allocate(200 * MiB);
    let heldBytes = held.reduce((sum, b) => sum + b.length, 0);
    const trimmer = trimmerFor(() => heldBytes, garbageCollector());
    const whileHeld = await trimmer.check();
    held = null;
    heldBytes = 0;
    const arrayBuffersBefore = process.memoryUsage().arrayBuffers;
    const released = await trimmer.check();
    console.log(
      JSON.stringify({
        status: nativeMemory,
        exposedGc: typeof (globalThis as { gc?: unknown }).gc === 'function',
        collector: garbageCollector() !== null,
        whileHeld,
        arrayBuffersBefore,
        released,
        arrayBuffersAfter: process.memoryUsage().arrayBuffers,
        dropped: held === null,
      }),
    );
  } else if (mode === 'quiet') {
    const collections: number[] = [];
    const trimmer = trimmerFor(
      () => 0,
      garbageCollector(),
      (ms) => collections.push(ms),
    );
    allocate(200 * MiB);
    const arrayBuffersBefore = process.memoryUsage().arrayBuffers;
    const growing = await trimmer.check();
    const gcsWhileGrowing = collections.length;
    const quiet = await trimmer.check();
    const gcsWhenQuiet = collections.length;
    const arrayBuffersAfter = process.memoryUsage().arrayBuffers;
    const again = await trimmer.check();
    const gcsAgain = collections.length;
    // Live Buffers no connection holds (a memory topic's data): one collection finds them live,
    // and the next check does not collect again.
    const live = allocate(200 * MiB);
    await trimmer.check();
    await trimmer.check();
    const gcsLiveFirst = collections.length - gcsAgain;
    await trimmer.check();
    const gcsLiveAfter = collections.length - gcsAgain - gcsLiveFirst;
    console.log(
      JSON.stringify({
        status: nativeMemory,
        arrayBuffersBefore,
        growing,
        gcsWhileGrowing,
        quiet,
        gcsWhenQuiet,
        arrayBuffersAfter,
        again,
        gcsAgain,
        gcsLiveFirst,
        gcsLiveAfter,
        liveKept: live.length > 0,
      }),
    );
  } else if (mode === 'broker') {
    const dataDir = process.argv[3]!;
    const broker = await Broker.start({ dataDir, memoryTrim: { intervalMs: 100 } });
    await churn(200 * MiB);
    const deadline = Date.now() + 20_000;
    let text = await broker.core.metrics.text();
    while (metric(text, 'memorystreamer_memory_trims_total') === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      text = await broker.core.metrics.text();
    }
    await broker.stop();
    console.log(
      JSON.stringify({
        status: nativeMemory,
        trims: metric(text, 'memorystreamer_memory_trims_total'),
        trimmedBytes: metric(text, 'memorystreamer_memory_trimmed_bytes_total'),
      }),
    );
  } else throw new Error(`unknown mode ${mode}`);
}
