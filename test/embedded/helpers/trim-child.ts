// Child process for test/embedded/memory-trimmer.test.ts (run with --expose-gc). Frees about
// 200 MiB of 16-64 KiB Buffers, then, by argv[2]:
//   check   calls MemoryTrimmer.check() twice and prints both results
//   broker  starts an in-process Broker that checks every 100 ms and prints its trim metrics once
//           they count a trim (or after 20 s)
import { nativeMemory, trimMallocAsync } from '../../../src/common/native-memory.js';
import { Broker } from '../../../src/embedded/broker.js';
import { MemoryTrimmer } from '../../../src/embedded/memory-trimmer.js';

const MiB = 1024 * 1024;

function churn(total: number): void {
  let held: Buffer[] = [];
  for (let i = 0, bytes = 0; bytes < total; i++) {
    const size = (16 + (i % 7) * 8) * 1024;
    held.push(Buffer.alloc(size, i & 0xff));
    bytes += size;
  }
  held = [];
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with --expose-gc');
  gc();
  gc();
}

/** A metric's value in Prometheus text, 0 when absent. */
function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.slice(name.length + 1));
}

if (process.argv[1]?.endsWith('trim-child.ts')) {
  const mode = process.argv[2];
  if (mode === 'check') {
    const trimmer = new MemoryTrimmer(
      { intervalMs: 60_000, thresholdBytes: 32 * MiB },
      { status: nativeMemory, trim: trimMallocAsync, onTrim: () => undefined },
    );
    churn(200 * MiB);
    const first = await trimmer.check();
    const second = await trimmer.check();
    console.log(JSON.stringify({ status: nativeMemory, active: trimmer.active, first, second }));
  } else if (mode === 'broker') {
    const dataDir = process.argv[3]!;
    const broker = await Broker.start({ dataDir, memoryTrim: { intervalMs: 100 } });
    churn(200 * MiB);
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
