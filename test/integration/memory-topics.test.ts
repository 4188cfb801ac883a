// Memory topics (docs/storage.md, "Memory topics"): the same API, offsets, streams and groups as a
// disk topic, a log bounded by retentionBytes, nothing under the data directory but the topic's
// definition, empty again after a restart, refused by a cluster. Real brokers: embedded and TCP.

import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Client } from '../../src/client/client.js';
import { connect } from '../../src/client/connect.js';
import { Broker } from '../../src/embedded/broker.js';
import { ErrorCode, valueString } from '../../src/index.js';
import { startNodeCluster } from '../harness/cluster.js';
import { etcdAvailable } from '../harness/etcd.js';
import { useTempDir } from '../harness/temp-dir.js';
import { until } from '../harness/until.js';

const scratch = useTempDir('ms-memory-topics-');
let broker: Broker;
beforeEach(async () => {
  broker = await Broker.start({ dataDir: scratch.path, port: 0 });
});
afterEach(async () => {
  await broker.stop();
});

/** Every file and directory under `dir`, relative to it. */
async function tree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  return entries.map(String).sort();
}

const transports: Array<[string, () => Promise<Client>]> = [
  ['embedded', async () => broker.connect()],
  ['tcp', async () => connect({ brokers: [`127.0.0.1:${broker.address!.port}`] })],
];

describe.each(transports)('a memory topic over the %s transport', (_name, makeClient) => {
  it('produces, consumes, reads streams and serves a consumer group like a disk topic, writing nothing of its log to disk', async () => {
    const client = await makeClient();
    try {
      const created = await client.admin.createTopic({ name: 'ticks', partitions: 2, storage: 'memory' });
      expect(created.storage).toBe('memory');
      expect(created.config).toMatchObject({
        retentionBytes: 64 * 1024 * 1024,
        segmentBytes: 8 * 1024 * 1024,
        durability: 'never',
      });
      const described = await client.admin.describeTopic('ticks');
      expect(described.topic.storage).toBe('memory');
      expect((await client.admin.listTopics()).map((t) => [t.name, t.storage])).toEqual([
        ['ticks', 'memory'],
      ]);
      await client.admin.createTopic({ name: 'orders' });
      expect((await client.admin.describeTopic('orders')).topic.storage).toBe('disk');

      const producer = client.producer();
      const first = await producer.send({ topic: 'ticks', key: 'acct-1', value: 'v0', expectedVersion: 0 });
      expect(first).toMatchObject({ offset: 0n, sequence: 0 });
      await expect(
        producer.send({ topic: 'ticks', key: 'acct-1', value: 'x', expectedVersion: 0 }),
      ).rejects.toMatchObject({ code: ErrorCode.STREAM_VERSION_CONFLICT });
      await producer.sendMany(
        Array.from({ length: 99 }, (_, i) => ({ topic: 'ticks', key: `acct-${i % 3}`, value: `v${i + 1}` })),
      );

      // Offsets from 0 in each partition, every message once.
      const consumer = client.consumer({ topics: ['ticks'], from: 'earliest' });
      const seen: string[] = [];
      for await (const message of consumer) {
        seen.push(valueString(message)!);
        if (seen.length === 100) break;
      }
      await consumer.close();
      expect(new Set(seen).size).toBe(100);

      // A stream from a sequence.
      const stream = client.consumer({ stream: { topic: 'ticks', key: 'acct-1' }, from: 1 });
      const fromStream: string[] = [];
      for await (const message of stream) {
        fromStream.push(`${message.sequence}:${valueString(message)}`);
        if (fromStream.length === 2) break;
      }
      await stream.close();
      expect(fromStream).toEqual(['1:v2', '2:v5']);

      // A consumer group reads everything and commits.
      const group = client.consumer({ topics: ['ticks'], group: 'audit', sessionTimeoutMs: 1500 });
      const read = new Set<string>();
      for await (const message of group) {
        read.add(valueString(message)!);
        if (read.size === 100) {
          // The message in hand counts as processed once committed (or once the next is asked for).
          await group.commit();
          break;
        }
      }
      await group.close();
      await until(
        async () => (await client.admin.groupOffsets('audit')).reduce((n, o) => n + o.offset, 0n) === 100n,
        { what: 'the group committed all 100' },
      );

      // Only the definition is on disk: no partition directory, no segment.
      expect(await tree(join(scratch.path, 'topics', 'ticks'))).toEqual(['topic.json']);
      expect(await tree(join(scratch.path, 'topics', 'orders'))).toContain('0');
    } finally {
      await client.close();
    }
  });
});

describe('memory topic bounds, restart and refusals', () => {
  it('retention by bytes bounds each partition to retentionBytes + segmentBytes as it is written', async () => {
    const client = broker.connect();
    try {
      const retentionBytes = 64 * 1024;
      const created = await client.admin.createTopic({
        name: 'bounded',
        storage: 'memory',
        config: { retentionBytes },
      });
      // An eighth of the retention per segment.
      expect(created.config.segmentBytes).toBe(8 * 1024);
      const producer = client.producer();
      const value = Buffer.alloc(1000, 0x61);
      // Batches of 4 (about 4 KB, under a segment: a larger batch makes a segment of its own).
      for (let round = 0; round < 250; round++)
        await producer.sendMany(Array.from({ length: 4 }, () => ({ topic: 'bounded', value })));
      // 1,000 messages of 1 KB: 15 times the bound. Retention runs at each roll, not on a timer.
      const partition = await until(
        async () => {
          const p = (await client.admin.describeTopic('bounded')).partitions[0]!;
          return p.sizeBytes <= retentionBytes + created.config.segmentBytes ? p : null;
        },
        { what: 'the partition within its bound' },
      );
      expect(partition.highWatermark).toBe(1000n);
      expect(partition.logStartOffset).toBeGreaterThan(800n);
    } finally {
      await client.close();
    }
  });

  it('keeps its definition across a restart and starts again empty, from offset 0', async () => {
    let client = broker.connect();
    await client.admin.createTopic({ name: 'ticks', storage: 'memory', config: { retentionBytes: 1 << 20 } });
    await client
      .producer()
      .sendMany(Array.from({ length: 10 }, (_, i) => ({ topic: 'ticks', value: `a${i}` })));
    const group = { topics: ['ticks'], group: 'audit', sessionTimeoutMs: 1500 };
    let consumer = client.consumer(group);
    let read = 0;
    for await (const _ of consumer) {
      if (++read === 10) {
        await consumer.commit();
        break;
      }
    }
    await consumer.close();
    await until(async () => (await client.admin.groupOffsets('audit'))[0]?.offset === 10n, {
      what: 'the group committed 10',
    });
    await client.close();
    const port = broker.address!.port;
    await broker.stop();
    broker = await Broker.start({ dataDir: scratch.path, port });
    client = broker.connect();
    try {
      const described = await client.admin.describeTopic('ticks');
      expect(described.topic.storage).toBe('memory');
      expect(described.topic.config.retentionBytes).toBe(1 << 20);
      expect(described.partitions[0]).toMatchObject({ logStartOffset: 0n, highWatermark: 0n });
      const receipt = await client.producer().send({ topic: 'ticks', value: 'after' });
      expect(receipt.offset).toBe(0n);
      // The group's commit (10) is past the emptied log: it reads what came since the restart.
      consumer = client.consumer(group);
      const after: string[] = [];
      for await (const message of consumer) {
        after.push(`${message.offset}:${valueString(message)}`);
        break;
      }
      await consumer.close();
      expect(after).toEqual(['0:after']);
      expect(await tree(join(scratch.path, 'topics', 'ticks'))).toEqual(['topic.json']);
    } finally {
      await client.close();
    }
  });

  it('refuses settings that would not bound its memory or that do not apply, and a storage it does not know', async () => {
    const client = broker.connect();
    try {
      const create = (config: Record<string, unknown>, storage = 'memory') =>
        client.admin.createTopic({ name: 'm', storage: storage as 'memory', config });
      await expect(create({ retentionBytes: -1 })).rejects.toMatchObject({
        code: ErrorCode.MEMORY_TOPIC_UNBOUNDED,
      });
      await expect(create({ retentionBytes: 8192, segmentBytes: 16384 })).rejects.toMatchObject({
        code: ErrorCode.MEMORY_TOPIC_UNBOUNDED,
      });
      await expect(create({ durability: 'always' })).rejects.toMatchObject({
        code: ErrorCode.MEMORY_TOPIC_NO_DURABILITY,
      });
      await expect(create({}, 'tape')).rejects.toMatchObject({ code: ErrorCode.INVALID_CONFIG });
      await create({});
      await expect(
        client.admin.alterTopic({ name: 'm', config: { retentionBytes: -1 } }),
      ).rejects.toMatchObject({
        code: ErrorCode.MEMORY_TOPIC_UNBOUNDED,
      });
      await expect(
        client.admin.alterTopic({ name: 'm', storage: 'disk' } as unknown as { name: string }),
      ).rejects.toMatchObject({ code: ErrorCode.INVALID_CONFIG });
      // Growing makes more memory partitions, still nothing on disk.
      await client.admin.alterTopic({ name: 'm', partitions: 3 });
      await client.producer().send({ topic: 'm', partition: 2, value: 'x' });
      expect(await tree(join(scratch.path, 'topics', 'm'))).toEqual(['topic.json']);
    } finally {
      await client.close();
    }
  });
});

describe.skipIf(!etcdAvailable())('a memory topic in a cluster', () => {
  it('is refused with MEMORY_TOPIC_NOT_REPLICATED', async () => {
    const cluster = await startNodeCluster({ brokers: 1, name: 'memory-topics' });
    const client = await connect({ brokers: cluster.addresses().join(',') });
    try {
      await expect(client.admin.createTopic({ name: 'ticks', storage: 'memory' })).rejects.toMatchObject({
        code: ErrorCode.MEMORY_TOPIC_NOT_REPLICATED,
      });
    } finally {
      await client.close();
      await cluster.stop();
    }
  }, 60_000);
});
