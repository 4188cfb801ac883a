// Compacted topics end to end: created over TCP with cleanup=compact, compacted by the broker,
// consumed from the start; and the compacted __consumer_offsets across a restart.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Broker, type BrokerOptions } from '../../src/embedded/broker.js';
import { type Client, connect, type Message } from '../../src/index.js';
import { useTempDir } from '../harness/temp-dir.js';

const scratch = useTempDir('ms-compaction-');
let dataDir: string;
let broker: Broker;
const options = (): BrokerOptions => ({
  dataDir,
  port: 0,
  // Tombstones go at the first compaction; small offsets-topic segments so that it has sealed ones.
  compaction: { deleteRetentionMs: 0 },
  offsetsSegmentBytes: 4096,
});

beforeEach(async () => {
  dataDir = scratch.path;
  broker = await Broker.start(options());
});
afterEach(async () => {
  await broker.stop();
});

async function tcpClient(): Promise<Client> {
  return connect({ brokers: [`127.0.0.1:${broker.address!.port}`] });
}

/** Reads `topic` from the earliest offset until `count` messages arrived. */
async function readFromStart(client: Client, topic: string, count: number): Promise<Message[]> {
  const consumer = client.consumer({ topics: [topic], from: 'earliest' });
  const messages: Message[] = [];
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`only ${messages.length} of ${count} messages arrived`)),
      20_000,
    );
  });
  try {
    while (messages.length < count) {
      const message = await Promise.race([consumer.next(), expired]);
      if (message === null) break;
      messages.push(message);
    }
  } finally {
    clearTimeout(timer);
    await consumer.close();
  }
  return messages;
}

describe('compacted topics', () => {
  it('keeps the latest value per key and drops deleted keys, read from the start over TCP', async () => {
    const client = await tcpClient();
    const created = await client.admin.createTopic({
      name: 'profiles',
      partitions: 1,
      config: { cleanup: 'compact', segmentBytes: 4096 },
    });
    expect(created.config.cleanup).toBe('compact');
    const producer = client.producer();
    // Compaction keeps the latest record per key: a message without one is refused, as in Kafka.
    await expect(producer.send({ topic: 'profiles', value: 'no key' })).rejects.toMatchObject({
      codeName: 'INVALID_REQUEST',
      message: expect.stringContaining('every message needs a key'),
    });
    for (let version = 0; version < 20; version++) {
      await producer.sendMany(
        Array.from({ length: 10 }, (_, user) => ({
          topic: 'profiles',
          key: `user${user}`,
          value: `user${user} v${version} ${'p'.repeat(40)}`,
        })),
      );
    }
    await producer.sendMany(
      ['user0', 'user1', 'user2'].map((key) => ({ topic: 'profiles', key, value: null })),
    );
    // Filler under keys of their own, so the versions and tombstones above are all in sealed segments.
    for (let i = 0; i < 3; i++)
      await producer.send({ topic: 'profiles', key: `filler${i}`, value: 'f'.repeat(3000) });
    const before = await broker.core.compact({ topic: 'profiles', force: true });
    const [report] = before;
    expect(report!.recordsRemoved).toBeGreaterThan(150);
    expect(report!.tombstonesRemoved).toBe(3);

    const messages = await readFromStart(client, 'profiles', 10);
    const byKey = new Map(messages.map((m) => [m.key!.toString(), m.value?.toString() ?? null]));
    expect([...byKey.keys()].sort()).toEqual(
      ['filler0', 'filler1', 'filler2', ...Array.from({ length: 7 }, (_, i) => `user${i + 3}`)].sort(),
    );
    for (let user = 3; user < 10; user++)
      expect(byKey.get(`user${user}`)).toMatch(new RegExp(`^user${user} v19 `));
    for (const gone of ['user0', 'user1', 'user2']) expect(byKey.has(gone)).toBe(false);
    // Offsets are kept: increasing, with gaps where records went.
    const offsets = messages.map((m) => m.offset);
    expect(offsets).toEqual([...offsets].sort((a, b) => (a < b ? -1 : 1)));
    expect(offsets.at(-1)! - offsets[0]!).toBeGreaterThan(9n);
    const metrics = await broker.core.metrics.registry.getSingleMetricAsString(
      'memorystreamer_compaction_removed_records_total',
    );
    expect(metrics).toMatch(/memorystreamer_compaction_removed_records_total \d{3}/);
    await client.close();
  });

  it('compacts __consumer_offsets; committed offsets survive a compaction and a restart', async () => {
    let client = await broker.connect();
    await client.admin.createTopic({ name: 'events', partitions: 2 });
    await client
      .producer()
      .sendMany(Array.from({ length: 200 }, (_, i) => ({ topic: 'events', key: `e${i}`, value: `e${i}` })));
    const consumer = client.consumer({ topics: ['events'], group: 'audit', autoCommit: false });
    for (let i = 0; i < 200; i++) {
      expect(await consumer.next()).not.toBeNull();
      // One commit per message: many versions of the same two keys in __consumer_offsets.
      await consumer.commit();
    }
    await consumer.close();
    const committed = await client.admin.groupOffsets('audit');
    expect(committed.reduce((n, o) => n + o.offset, 0n)).toBe(200n);
    await client.close();

    const offsetsDir = join(dataDir, 'topics', '__consumer_offsets', '0');
    const segmentsBefore = (await readdir(offsetsDir)).filter((n) => n.endsWith('.log')).length;
    expect(segmentsBefore).toBeGreaterThan(3);
    const [report] = await broker.core.compact({ topic: '__consumer_offsets', force: true });
    expect(report!.recordsRemoved).toBeGreaterThan(100);
    const segmentsAfter = (await readdir(offsetsDir)).filter((n) => n.endsWith('.log')).length;
    expect(segmentsAfter).toBeLessThan(segmentsBefore);

    const port = broker.address!.port;
    await broker.stop();
    broker = await Broker.start({ ...options(), port });
    client = await broker.connect();
    const restored = await client.admin.groupOffsets('audit');
    expect(new Set(restored.map((o) => `${o.topic}/${o.partition}=${o.offset}`))).toEqual(
      new Set(committed.map((o) => `${o.topic}/${o.partition}=${o.offset}`)),
    );
    await client.close();
  });
});
