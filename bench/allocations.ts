// Where the bytes a lone message allocates come from: embedded (producer, broker and consumer in
// this process), a memory topic, 100-byte messages sent one by one at a fixed rate, as in
// bench/memory-topics.ts. V8's sampling heap profiler runs over the measured seconds and keeps the
// samples of objects the garbage collector has since freed too (includeObjectsCollectedByMinorGC /
// MajorGC), so a row is what a function allocated, not what it still holds. Every young-generation
// scavenge pauses the process for about a millisecond, and each one lands on the messages in
// flight: fewer bytes per message means fewer scavenges, which is what the embedded P99 waits on.
// The rows add up the samples per function (self bytes, the function that allocated), divided by
// the messages sent in the window; the bench's own pacer and histogram are in the total too.
// Run: npx tsx bench/allocations.ts [--rate 10000] [--seconds 3] [--top 20] [--json]

import { mkdtemp, rm } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from '../src/embedded/broker.js';
import { brokerFixedRate } from './lib/fixed-rate.js';
import { argNumber, latencyHistogram, printResult, progress, type Row, writeResult } from './lib/report.js';

const rate = argNumber('rate', 10_000);
const seconds = argNumber('seconds', 3);
const top = argNumber('top', 20);
/** Average bytes between two samples: small enough that a 100-byte object per message is seen. */
const SAMPLING_INTERVAL_BYTES = 512;

interface SamplingNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SamplingNode[];
}

/** `src/…`, `node:…` or the package, without the checkout's path. */
function whereOf(url: string): string {
  return url
    .replace(/^file:\/\//, '')
    .replace(/^.*\/(src|bench)\//, '$1/')
    .replace(/^.*\/node_modules\//, '');
}

function selfBytesByFunction(head: SamplingNode): Map<string, number> {
  const bytes = new Map<string, number>();
  const pending = [head];
  while (pending.length > 0) {
    const node = pending.pop()!;
    const { functionName, url } = node.callFrame;
    const key = `${functionName || '(anonymous)'} ${whereOf(url) || '(native)'}`;
    bytes.set(key, (bytes.get(key) ?? 0) + node.selfSize);
    pending.push(...node.children);
  }
  return bytes;
}

async function main(): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), 'ms-allocations-'));
  const broker = await Broker.start({ dataDir });
  const client = broker.connect();
  const session = new Session();
  session.connect();
  try {
    // A first run warms the code up (and the pools) before anything is counted.
    progress('warming up');
    await client.admin.createTopic({ name: 'warm-up', storage: 'memory' });
    await brokerFixedRate(client, 'warm-up', { rate, seconds: 1 }, latencyHistogram());
    await client.admin.createTopic({ name: 'measured', storage: 'memory' });
    progress(`measuring ${seconds} s at ${rate} msg/s`);
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: SAMPLING_INTERVAL_BYTES,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    const fromSend = latencyHistogram();
    await brokerFixedRate(client, 'measured', { rate, seconds }, latencyHistogram(), fromSend);
    const { profile } = await session.post('HeapProfiler.stopSampling');
    // brokerFixedRate sends one warm-up second more than it measures; all of it is sampled.
    const messages = rate * (seconds + 1);
    const bytes = selfBytesByFunction(profile.head as unknown as SamplingNode);
    const total = [...bytes.values()].reduce((sum, value) => sum + value, 0);
    const rows: Row[] = [
      { function: 'all', 'bytes per message': Math.round(total / messages), share: '100%' },
      ...[...bytes.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, top)
        .map(([where, value]) => ({
          function: where,
          'bytes per message': Math.round(value / messages),
          share: `${((100 * value) / total).toFixed(1)}%`,
        })),
    ];
    const result = writeResult({
      benchmark: 'allocations',
      title: `Bytes allocated per lone message, embedded, memory topic, ${rate} msg/s (100-byte messages)`,
      command: `npx tsx bench/allocations.ts --rate ${rate} --seconds ${seconds} --top ${top}`,
      settings: {
        rate,
        seconds,
        messageBytes: 100,
        samplingIntervalBytes: SAMPLING_INTERVAL_BYTES,
        messages,
        'from send call p50 / p99 µs': `${fromSend.getValueAtPercentile(50)} / ${fromSend.getValueAtPercentile(99)}`,
      },
      rows,
      notes: [
        "V8's sampling heap profiler with the samples of collected objects kept: bytes allocated (not held), by the function that allocated them, over the measured seconds and the warm-up second brokerFixedRate adds, divided by the messages sent then.",
        'Sampling is statistical (one sample per 512 bytes on average): small rows move by a few per cent between runs.',
        "The total includes the benchmark: the pacer thread's wake-ups (MessagePort events) and the latency histogram.",
      ],
    });
    printResult(result);
  } finally {
    session.disconnect();
    await client.close();
    await broker.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
