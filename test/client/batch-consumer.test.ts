// The consumer's batch form (`batches()`, `run({ eachBatch })`) over TCP and in process: whole
// batches with the offsets and contents sent, lazy decoding that gives the same messages as the
// per-message API, compressed batches inflated once, and commits per batch (a batch counts as
// processed only once the next is asked for, its handler returned, or it was committed).
// A real embedded broker listening on TCP; one client over TCP, one in process.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MessageBatch } from '../../src/client/consumer.js';
import { Broker } from '../../src/embedded/broker.js';
import { type Client, type ConsumerOptions, connect, type Message } from '../../src/index.js';
import { useTempDir } from '../harness/temp-dir.js';

const scratch = useTempDir('ms-batch-consumer-', 'all');
let broker: Broker;
const clients: Client[] = [];

beforeAll(async () => {
  broker = await Broker.start({ dataDir: scratch.path, port: 0 });
});
afterAll(async () => {
  await Promise.all(clients.map((client) => client.close()));
  await broker.stop();
});

const transports: Array<[string, () => Promise<Client>]> = [
  [
    'tcp',
    async () => {
      const client = await connect({ brokers: [`127.0.0.1:${broker.address!.port}`] });
      clients.push(client);
      return client;
    },
  ],
  [
    'embedded',
    async () => {
      const client = broker.connect();
      clients.push(client);
      return client;
    },
  ],
];

let topicCount = 0;

/** A new one-partition topic holding one batch per group of values (each group one `sendMany`). */
async function topicWithBatches(
  client: Client,
  groups: string[][],
  compression?: 'lz4' | 'zstd',
): Promise<string> {
  const topic = `batches-${topicCount++}`;
  await client.admin.createTopic({ name: topic, partitions: 1 });
  const producer = client.producer(compression === undefined ? {} : { compression });
  for (const values of groups) {
    await producer.sendMany(
      values.map((value, i) => ({
        topic,
        partition: 0,
        key: `k${i % 3}`,
        value,
        headers: i % 2 === 0 ? { h: `v${i}` } : undefined,
      })),
    );
  }
  await producer.close();
  return topic;
}

const values = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}${i}`);
const text = (value: Buffer | null) => (value === null ? null : value.toString('utf8'));

/** A batch's values read with `forEachValue` (in place, nothing allocated per value by the batch). */
function visitedValues(batch: MessageBatch): Array<string | null> {
  const out: Array<string | null> = [];
  batch.forEachValue((buffer, start, end) => {
    out.push(start === -1 ? null : buffer.toString('utf8', start, end));
  });
  return out;
}

async function readBatches(client: Client, options: ConsumerOptions, count: number): Promise<MessageBatch[]> {
  const consumer = client.consumer(options);
  const batches: MessageBatch[] = [];
  for await (const batch of consumer.batches()) {
    batches.push(batch);
    if (batches.length === count) break;
  }
  return batches;
}

async function readMessages(client: Client, options: ConsumerOptions, count: number): Promise<Message[]> {
  const consumer = client.consumer(options);
  const messages: Message[] = [];
  for await (const message of consumer) {
    messages.push(message);
    if (messages.length === count) break;
  }
  return messages;
}

describe.each(transports)('batches over %s', (_name, newClient) => {
  it('hands out each batch whole, with the offsets and values sent', async () => {
    const client = await newClient();
    const groups = [values('a', 5), values('b', 3), values('c', 7)];
    const topic = await topicWithBatches(client, groups);
    const batches = await readBatches(client, { topics: [topic] }, 3);
    expect(batches.map((b) => [b.partition, b.baseOffset, b.firstOffset, b.lastOffset, b.count])).toEqual([
      [0, 0n, 0n, 4n, 5],
      [0, 5n, 5n, 7n, 3],
      [0, 8n, 8n, 14n, 7],
    ]);
    expect(batches.map((b) => [...b.values()].map(text))).toEqual(groups);
    expect(batches.map(visitedValues)).toEqual(groups);
    for (const batch of batches) {
      expect(batch.topic).toBe(topic);
      expect(batch.compression).toBe('none');
      // The bytes are the stored batch: its length field covers the rest of it.
      expect(batch.bytes.readInt32BE(8) + 12).toBe(batch.bytes.length);
      expect(batch.bytes.readBigInt64BE(0)).toBe(batch.baseOffset);
    }
  });

  it('reads every partition, in order per partition, or only the partitions assigned', async () => {
    const client = await newClient();
    const topic = `batches-${topicCount++}`;
    await client.admin.createTopic({ name: topic, partitions: 3 });
    const producer = client.producer();
    for (let round = 0; round < 2; round++)
      for (let p = 0; p < 3; p++)
        await producer.sendMany(
          values(`p${p}r${round}-`, 4).map((value) => ({ topic, partition: p, value })),
        );
    await producer.close();
    const all = await readBatches(client, { topics: [topic] }, 6);
    for (let p = 0; p < 3; p++) {
      const mine = all.filter((b) => b.partition === p);
      expect(mine.map((b) => b.baseOffset)).toEqual([0n, 4n]);
      expect(mine.flatMap((b) => [...b.values()].map(text))).toEqual([
        ...values(`p${p}r0-`, 4),
        ...values(`p${p}r1-`, 4),
      ]);
    }
    const assigned = await readBatches(client, { topics: [topic], partitions: [1] }, 2);
    expect(assigned.map((b) => [b.partition, b.baseOffset])).toEqual([
      [1, 0n],
      [1, 4n],
    ]);
  });

  it('decodes the same messages as the per-message API', async () => {
    const client = await newClient();
    const topic = await topicWithBatches(client, [values('x', 4), values('y', 6)]);
    const batches = await readBatches(client, { topics: [topic] }, 2);
    const fromBatches = batches.flatMap((batch) => [...batch.messages()]);
    const perMessage = await readMessages(client, { topics: [topic] }, 10);
    expect(fromBatches).toEqual(perMessage);
    // The batch itself iterates its messages too.
    expect([...batches[1]!]).toEqual(perMessage.slice(4));
    expect(perMessage[0]!.headers).toEqual([{ key: 'h', value: Buffer.from('v0') }]);
  });

  it('starts inside a batch where the consumer was told to start', async () => {
    const client = await newClient();
    const topic = await topicWithBatches(client, [values('p', 6), values('q', 2)]);
    const [first, second] = await readBatches(client, { topics: [topic], from: 4n }, 2);
    expect([first!.baseOffset, first!.firstOffset, first!.lastOffset, first!.count]).toEqual([0n, 4n, 5n, 2]);
    expect([...first!.values()].map(text)).toEqual(['p4', 'p5']);
    expect(visitedValues(first!)).toEqual(['p4', 'p5']);
    expect([...first!.messages()].map((m) => m.offset)).toEqual([4n, 5n]);
    expect([...second!.values()].map(text)).toEqual(['q0', 'q1']);
  });

  it('inflates a compressed batch once and reads it like any other', async () => {
    const client = await newClient();
    // Over 4 KiB inflated: a section of its own, not a slice of Node's shared pool.
    const groups = [values('z', 50).map((v) => v.padEnd(200, '-')), values('w', 20)];
    const topic = await topicWithBatches(client, groups, 'lz4');
    const batches = await readBatches(client, { topics: [topic] }, 2);
    expect(batches.map((b) => b.compression)).toEqual(['lz4', 'lz4']);
    expect(batches.map((b) => [...b.values()].map(text))).toEqual(groups);
    expect(batches.map(visitedValues)).toEqual(groups);
    const [first] = batches;
    const once = [...first!.values()][0]!;
    const again = [...first!.messages()][0]!.value!;
    // Inflated once: both walks read the same section.
    expect(again.buffer).toBe(once.buffer);
    expect(again.byteOffset).toBe(once.byteOffset);
    expect(batches.flatMap((b) => [...b.messages()])).toEqual(
      await readMessages(client, { topics: [topic] }, 70),
    );
  });

  it('forEachValue visits null values as -1 and empty ones as start = end, as values() gives them', async () => {
    const client = await newClient();
    const topic = `batches-${topicCount++}`;
    await client.admin.createTopic({ name: topic, partitions: 1 });
    const producer = client.producer();
    await producer.sendMany([
      { topic, partition: 0, key: 'gone', value: null },
      { topic, partition: 0, value: '' },
      { topic, partition: 0, value: 'x'.repeat(9000) },
    ]);
    await producer.close();
    const [batch] = await readBatches(client, { topics: [topic] }, 1);
    const places: Array<[number, number]> = [];
    batch!.forEachValue((buffer, start, end) => {
      places.push([start, end]);
      if (start >= 0) expect(buffer.subarray(start, end)).toEqual([...batch!.values()][places.length - 1]);
    });
    expect(places[0]).toEqual([-1, -1]);
    expect(places[1]![1] - places[1]![0]).toBe(0);
    expect(places[2]![1] - places[2]![0]).toBe(9000);
    expect([...batch!.values()].map(text)).toEqual([null, '', 'x'.repeat(9000)]);
  });

  it('commits a batch once the next is asked for: leaving the loop on an error resumes at that batch', async () => {
    const client = await newClient();
    const topic = await topicWithBatches(client, [values('a', 3), values('b', 3), values('c', 3)]);
    const group = `${topic}-loop`;
    const consumer = client.consumer({ topics: [topic], group });
    const seen: bigint[] = [];
    await expect(
      (async () => {
        for await (const batch of consumer.batches()) {
          seen.push(batch.baseOffset);
          if (batch.baseOffset === 3n) throw new Error('handler failed');
        }
      })(),
    ).rejects.toThrow('handler failed');
    expect(seen).toEqual([0n, 3n]);
    const [resumed] = await readBatches(client, { topics: [topic], group }, 1);
    expect(resumed!.firstOffset).toBe(3n);
  });

  it('run({ eachBatch }): a handler that throws leaves its batch uncommitted', async () => {
    const client = await newClient();
    const topic = await topicWithBatches(client, [values('a', 2), values('b', 2), values('c', 2)]);
    const group = `${topic}-run`;
    const consumer = client.consumer({ topics: [topic], group });
    const seen: bigint[] = [];
    await expect(
      consumer.run({
        eachBatch: (batch) => {
          seen.push(batch.firstOffset);
          if (batch.firstOffset === 4n) throw new Error('third batch failed');
        },
      }),
    ).rejects.toThrow('third batch failed');
    await consumer.close();
    expect(seen).toEqual([0n, 2n, 4n]);
    const [resumed] = await readBatches(client, { topics: [topic], group }, 1);
    expect(resumed!.firstOffset).toBe(4n);
  });

  it('batch.commit() commits that batch at once, without auto-commit', async () => {
    const client = await newClient();
    const topic = await topicWithBatches(client, [values('a', 4), values('b', 4), values('c', 4)]);
    const group = `${topic}-commit`;
    const consumer = client.consumer({ topics: [topic], group, autoCommit: false });
    const first = await consumer.nextBatch();
    const second = await consumer.nextBatch();
    // Only the first is processed: the second is still held.
    await first!.commit();
    expect(consumer.positions()).toEqual([{ topic, partition: 0, offset: 4n }]);
    await consumer.close();
    const [resumed] = await readBatches(client, { topics: [topic], group }, 1);
    expect(resumed!.firstOffset).toBe(second!.firstOffset);
    expect(resumed!.firstOffset).toBe(4n);
  });
});

describe('batches refused', () => {
  it('for a stream consumer, with a clear error', async () => {
    const client = broker.connect();
    clients.push(client);
    const stream = client.consumer({ stream: { topic: 't', key: 'k' } });
    expect(() => stream.batches()).toThrow(/stream consumer delivers messages/);
    await stream.close();
  });
});
