// Many streams in one topic: produce messages with N distinct keys (one message per key), report
// produce throughput, the broker's heap per stream, and how long a restart takes to rebuild the
// stream index from the log. Embedded broker, durability interval, 100-byte values.
// Run: node --expose-gc --import tsx bench/streams.ts [--streams 1000000] [--json]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from '../src/embedded/broker.js';
import { argNumber, printResult, progress, rate, writeResult } from './lib/report.js';

const streams = argNumber('streams', 1_000_000);
const partitions = argNumber('partitions', 1);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
const heap = () => {
  gc();
  return process.memoryUsage().heapUsed;
};

const dataDir = await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), 'ms-bench-streams-'));
try {
  let broker = await Broker.start({ dataDir });
  let client = broker.connect();
  await client.admin.createTopic({ name: 'entities', partitions, config: { durability: 'interval' } });
  const producer = client.producer({ batchBytes: 256 * 1024 });
  const value = Buffer.alloc(100, 0x65);
  const heapBefore = heap();
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
  const heapAfter = heap();
  const probe = await client
    .producer()
    .send({ topic: 'entities', key: 'entity-12345', value: 'next', expectedVersion: 1 });
  await client.close();
  await broker.stop();

  const restartStarted = performance.now();
  broker = await Broker.start({ dataDir });
  const restartMs = performance.now() - restartStarted;
  client = broker.connect();
  const again = await client
    .producer()
    .send({ topic: 'entities', key: `entity-${streams - 1}`, value: 'after restart', expectedVersion: 1 });
  await client.close();
  await broker.stop();

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
        keys: 'entity-<n> (8-14 bytes)',
      },
      rows: [
        {
          streams,
          'produce msg/s': rate(streams, produceMs),
          'heap per stream (bytes)': Math.round((heapAfter - heapBefore) / streams),
          'restart with index rebuild (s)': Number((restartMs / 1000).toFixed(2)),
          'expected-version append ok': probe.sequence === 1 && again.sequence === 1 ? 'yes' : 'no',
        },
      ],
      notes: [
        'heap per stream includes the key string and the index entry; the stream index is rebuilt from the log at start',
      ],
    }),
  );
} finally {
  await rm(dataDir, { recursive: true, force: true });
}
