// What malloc_trim gives back, and what it costs (test/common/native-memory.test.ts runs it as a
// child too). Run: node --expose-gc --import tsx bench/malloc-trim.ts sync|async [MiB]
// Allocates about 200 MiB as Buffers of 16-64 KiB (the sizes of socket read chunks), frees them, collects garbage,
// then prints one JSON line: which backend the loader chose, RSS before and after trimMalloc() (argv
// "sync") or trimMallocAsync() ("async"), how long the trim took and the longest the event loop
// went without running a timer meanwhile.
import { mallocFreeBytes, nativeMemory, trimMalloc, trimMallocAsync } from '../src/common/native-memory.js';

const MiB = 1024 * 1024;

function rss(): number {
  return process.memoryUsage.rss();
}

function collect(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with --expose-gc');
  gc();
  gc();
}

if (process.argv[1]?.endsWith('malloc-trim.ts')) {
  const mode = process.argv[2] === 'async' ? 'async' : 'sync';
  const total = Number(process.argv[3] ?? 200) * MiB;
  let held: Buffer[] = [];
  let bytes = 0;
  for (let i = 0; bytes < total; i++) {
    // 16, 24, ... 64 KiB, touched (Buffer.alloc fills with zeros) so the pages are resident.
    const size = (16 + (i % 7) * 8) * 1024;
    held.push(Buffer.alloc(size, i & 0xff));
    bytes += size;
  }
  // Keep a few scattered survivors, as a broker keeps some buffers: they pin the top of the heap,
  // so glibc's automatic trimming of the top alone cannot give the rest back.
  const survivors = held.filter((_, i) => i % 500 === 499);
  held = [];
  collect();
  const before = rss();
  const freeBefore = mallocFreeBytes();
  let last = performance.now();
  let longestGapMs = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    longestGapMs = Math.max(longestGapMs, now - last);
    last = now;
  }, 1);
  await new Promise((resolve) => setTimeout(resolve, 20));
  longestGapMs = 0;
  last = performance.now();
  const started = process.hrtime.bigint();
  const returned = mode === 'sync' ? trimMalloc() : await trimMallocAsync();
  const micros = Number(process.hrtime.bigint() - started) / 1000;
  const after = rss();
  await new Promise((resolve) => setTimeout(resolve, 5));
  clearInterval(ticker);
  console.log(
    JSON.stringify({
      status: nativeMemory,
      mode,
      allocated: bytes,
      survivors: survivors.length,
      before,
      after,
      freeBefore,
      returned,
      micros,
      longestGapMs,
    }),
  );
}
