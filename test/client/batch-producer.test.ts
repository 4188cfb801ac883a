// `sendMany`, the producer's throughput path: receipts in input order with each message's offset
// (messages of one call share one waiter per batch they land in, however the call is split over
// partitions and batches), and message security applied to every message of the call.
// A real embedded broker, in process.

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker } from '../../src/embedded/broker.js';
import type { Client, Message } from '../../src/index.js';
import { RecordBatchBuilder } from '../../src/protocol/record-batch.js';
import { useTempDir } from '../harness/temp-dir.js';

const scratch = useTempDir('ms-batch-producer-', 'all');
let broker: Broker;
let client: Client;

beforeAll(async () => {
  broker = await Broker.start({ dataDir: scratch.path });
  client = broker.connect();
});
afterAll(async () => {
  await client.close();
  await broker.stop();
});

async function readAll(topic: string, count: number, options: object = {}): Promise<Message[]> {
  const consumer = client.consumer({ topics: [topic], ...options });
  const messages: Message[] = [];
  for await (const message of consumer) {
    messages.push(message);
    if (messages.length === count) break;
  }
  return messages;
}

describe('RecordBatchBuilder.sizeOf, how the producer sizes each record once', () => {
  it('is exactly what append adds, whatever the timestamp, key and headers', () => {
    const builder = new RecordBatchBuilder(64);
    const base = 1_700_000_000_000;
    const records = [
      { key: null, value: Buffer.alloc(100), timestamp: base },
      { key: Buffer.from('k'), value: 'x'.repeat(300), timestamp: base + 5_000_000 },
      { key: null, value: null, headers: [{ key: 'h', value: 'v' }], timestamp: base - 3 },
    ];
    for (const record of records) {
      const before = builder.sizeInBytes;
      const size = builder.sizeOf(record);
      builder.append(record, builder.sizedBody);
      expect(builder.sizeInBytes - before).toBe(size);
    }
    expect(builder.count).toBe(3);
  });
});

describe('sendMany', () => {
  it('resolves every receipt with its own offset, across partitions and batch splits', async () => {
    await client.admin.createTopic({ name: 'many', partitions: 3 });
    // Small batches: one call is split over several batches per partition.
    const producer = client.producer({ batchBytes: 2048 });
    const inputs = Array.from({ length: 300 }, (_, i) => ({
      topic: 'many',
      partition: i % 3,
      value: `v${i}-${'x'.repeat(40)}`,
    }));
    const receipts = await producer.sendMany(inputs);
    expect(receipts.map((r) => r.partition)).toEqual(inputs.map((input) => input.partition));
    for (let p = 0; p < 3; p++) {
      const offsets = receipts.filter((r) => r.partition === p).map((r) => r.offset);
      expect(offsets).toEqual(Array.from({ length: 100 }, (_, i) => BigInt(i)));
    }
    const stored = await readAll('many', 300);
    const byPlace = new Map(stored.map((m) => [`${m.partition}:${m.offset}`, m.value!.toString()]));
    receipts.forEach((receipt, i) => {
      expect(byPlace.get(`${receipt.partition}:${receipt.offset}`)).toBe(inputs[i]!.value);
    });
    // Conditional appends among them leave their batch and keep the call's order.
    const mixed = await producer.sendMany([
      { topic: 'many', partition: 0, key: 'k', value: 'one' },
      { topic: 'many', partition: 0, key: 'k', value: 'two', expectedVersion: 1 },
      { topic: 'many', partition: 0, key: 'k', value: 'three' },
    ]);
    expect(mixed.map((r) => [r.offset, r.sequence])).toEqual([
      [100n, 0],
      [101n, 1],
      [102n, 2],
    ]);
    await producer.close();
  });

  it('seals every message of the call with the producer security', async () => {
    await client.admin.createTopic({ name: 'sealed-many', partitions: 1 });
    const k1 = randomBytes(32);
    const producer = client.producer({ security: { encrypt: { current: 'k1', keys: { k1 } } } });
    const values = ['secret-a', 'secret-b', 'secret-c'];
    await producer.sendMany(values.map((value) => ({ topic: 'sealed-many', value })));
    await producer.close();
    const raw = await readAll('sealed-many', 3);
    for (const message of raw) expect(message.value!.includes(Buffer.from('secret'))).toBe(false);
    const opened = await readAll('sealed-many', 3, { security: { decrypt: { k1 } } });
    expect(opened.map((m) => m.value!.toString())).toEqual(values);
  });
});
