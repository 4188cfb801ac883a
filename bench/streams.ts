// Many streams in one topic: produce messages with N distinct keys (one message per key), report
// produce throughput, memory per stream (heap + typed-array buffers), how long a restart takes
// with the stream index files valid and with every one of them deleted (rebuilt from the log),
// and the latency of reading one stream among N through the client. Embedded broker, durability
// interval, 100-byte values, 16 MiB segments (so most streams live in sealed segments' files).
// Run: node --expose-gc --import tsx bench/streams.ts [--streams 1000000] [--segment-mb 16] [--json]
import { mkdtemp, readdir, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from '../src/embedded/broker.js';
import { PartitionLog } from '../src/storage/partition-log.js';
import { argNumber, printResult, progress, rate, writeResult } from './lib/report.js';

const streams = argNumber('streams', 1_000_000);
const partitions = argNumber('partitions', 1);
const segmentMb = argNumber('segment-mb', 16);
const rounds = argNumber('rounds', 3);
const reads = argNumber('reads', 2000);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
/** Heap plus ArrayBuffer backing stores (typed arrays live outside the V8 heap). */
const memory = () => {
  gc();
  gc();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
};
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const dataDir = await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), 'ms-bench-streams-'));
try {
  const memoryBeforeStart = memory();
  let broker = await Broker.start({ dataDir });
  let client = broker.connect();
  await client.admin.createTopic({
    name: 'entities',
    partitions,
    config: { durability: 'interval', segmentBytes: segmentMb * 1024 * 1024 },
  });
  const producer = client.producer({ batchBytes: 256 * 1024 });
  const value = Buffer.alloc(100, 0x65);
  const memoryBefore = memory();
  const started = performance.now();
  const chunk = 1000;
  for (let i = 0; i < streams; i += chunk) {
    const messages = Array.from({ length: Math.min(chunk, streams - i) }, (_, j) => ({
      topic: 'entities',
      key: `entity-${i + j}`,
      value,
    }));
    await producer.sendMany(messages);
    if (i % 100_000 === 0) progress(`produced ${i.toLocaleString('en-US')} streams`);
  }
  const produceMs = performance.now() - started;
  await producer.close();
  const memoryAfter = memory();
  const probe = await client
    .producer()
    .send({ topic: 'entities', key: 'entity-12345', value: 'next', expectedVersion: 1 });
  await client.close();
  await broker.stop();

  // Restarts, alternating: stream files as written, and every stream file deleted first.
  const partitionDirs: string[] = [];
  for (let p = 0; p < partitions; p++) partitionDirs.push(join(dataDir, 'topics', 'entities', String(p)));
  const restart: Record<'valid' | 'missing', number[]> = { valid: [], missing: [] };
  let memoryRestarted = 0;
  for (let round = 0; round < rounds; round++) {
    for (const mode of ['valid', 'missing'] as const) {
      if (mode === 'missing')
        for (const dir of partitionDirs)
          for (const name of await readdir(dir)) if (name.endsWith('.streams')) await unlink(join(dir, name));
      const t0 = performance.now();
      broker = await Broker.start({ dataDir });
      restart[mode].push(performance.now() - t0);
      if (mode === 'valid' && round === 0) memoryRestarted = memory();
      progress(`restart ${mode} round ${round}: ${(restart[mode].at(-1)! / 1000).toFixed(2)} s`);
      await broker.stop();
    }
  }

  // The partition log alone (no broker, no producer-table scan): the stream index's own open.
  const logOpen: Record<'valid' | 'missing', number[]> = { valid: [], missing: [] };
  for (let round = 0; round < rounds; round++) {
    for (const mode of ['valid', 'missing'] as const) {
      const dir = partitionDirs[0]!;
      if (mode === 'missing')
        for (const name of await readdir(dir)) if (name.endsWith('.streams')) await unlink(join(dir, name));
      const t0 = performance.now();
      const log = await PartitionLog.open({
        dir,
        config: { segmentBytes: segmentMb * 1024 * 1024 },
        streams: { maxDecompressedBytes: 64 * 1024 * 1024 },
      });
      logOpen[mode].push(performance.now() - t0);
      const report = log.recovery.streams!;
      if (mode === 'missing' ? report.loaded !== 0 : report.rebuilt !== 0)
        throw new Error(`unexpected stream recovery ${JSON.stringify(report)}`);
      if (log.streams!.size < streams / partitions) throw new Error(`only ${log.streams!.size} streams`);
      await log.close();
    }
  }

  broker = await Broker.start({ dataDir });
  client = broker.connect();
  const again = await client
    .producer()
    .send({ topic: 'entities', key: `entity-${streams - 1}`, value: 'after restart', expectedVersion: 1 });
  // Reading one stream among N: a fresh stream consumer per read, time to its first message.
  const latencies: number[] = [];
  let seed = 12345;
  for (let r = 0; r < reads; r++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const key = `entity-${seed % streams}`;
    const t0 = performance.now();
    const consumer = client.consumer({ stream: { topic: 'entities', key } });
    for await (const message of consumer) {
      if (message.sequence !== 0) throw new Error(`${key}: sequence ${message.sequence}`);
      break;
    }
    latencies.push(performance.now() - t0);
  }
  await client.close();
  await broker.stop();
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    Number(latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]!.toFixed(3));

  printResult(
    writeResult({
      benchmark: 'streams',
      title: `${streams.toLocaleString('en-US')} distinct streams (one message each) in one topic, embedded broker`,
      command: 'node --expose-gc --import tsx bench/streams.ts',
      settings: {
        streams,
        partitions,
        valueBytes: 100,
        durability: 'interval',
        segmentBytes: `${segmentMb} MiB`,
        keys: 'entity-<n> (8-14 bytes)',
        restartRounds: rounds,
        reads,
      },
      rows: [
        {
          streams,
          'produce msg/s': rate(streams, produceMs),
          'memory per stream after produce (bytes)': Math.round((memoryAfter - memoryBefore) / streams),
          'memory per stream after restart (bytes)': Math.round(
            (memoryRestarted - memoryBeforeStart) / streams,
          ),
          'partition log open, stream files valid (s)': Number((median(logOpen.valid) / 1000).toFixed(2)),
          'partition log open, stream files deleted (s)': Number((median(logOpen.missing) / 1000).toFixed(2)),
          'restart, stream files valid (s)': Number((median(restart.valid) / 1000).toFixed(2)),
          'restart, stream files deleted (s)': Number((median(restart.missing) / 1000).toFixed(2)),
          'read one stream p50 (ms)': pct(0.5),
          'read one stream p99 (ms)': pct(0.99),
          'expected-version append ok': probe.sequence === 1 && again.sequence === 1 ? 'yes' : 'no',
        },
      ],
      notes: [
        'memory = V8 heapUsed + ArrayBuffer bytes (typed arrays), after gc; it includes the key string, the version entry and, after produce, the active segment entries',
        'after restart: the whole broker (index loaded from the stream files, plus the active segment scan) against the process before the broker started',
        'restart medians of alternating rounds; "deleted" removes every .streams file first, so each sealed segment is scanned and its file rewritten',
        'partition log open: PartitionLog.open of partition 0 alone with its stream index (no broker, no producer-table scan), medians of alternating rounds',
        'broker restart includes the idempotent-producer table rebuild, which still reads every batch of the log',
        'read: a new stream consumer for a random key (from sequence 0), time until its first message arrives',
      ],
    }),
  );
} finally {
  await rm(dataDir, { recursive: true, force: true });
}
