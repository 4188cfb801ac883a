// `sendMany`, the producer's throughput path: receipts in input order with each message's offset
// (messages of one call share one waiter per batch they land in, however the call is split over
// partitions and batches), and message security applied to every message of the call.
// A real embedded broker, in process.

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker } from '../../src/embedded/broker.js';
import type { Client, Message, SendInput } from '../../src/index.js';
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

describe('RecordBatchBuilder.appendValue, the plain-value path of sendMany', () => {
  // A generator with a fixed seed: every failure names the case it met.
  let seed = 0x9e3779b9;
  const random = (n: number): number => {
    seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return seed % n;
  };

  it('writes exactly what append writes for a record with no key and no headers', () => {
    const general = new RecordBatchBuilder(64);
    const plain = new RecordBatchBuilder(64);
    const base = 1_700_000_000_000;
    for (let i = 0; i < 3000; i++) {
      const length = [0, 1, 63, 64, 100, 127, 128, 8191, 8192, 9000][random(10)]!;
      const value = random(12) === 0 ? null : Buffer.alloc(length, i & 0xff);
      // Timestamps before the first, equal, after, and far after (multi-byte deltas).
      const timestamp = base + [0, -3, 5, 70_000, 5_000_000_000][random(5)]! + i;
      const before = plain.sizeInBytes;
      general.append({ key: null, value, timestamp });
      const added = plain.appendValue(value, timestamp, Number.POSITIVE_INFINITY);
      expect(added, `record ${i}`).toBe(plain.sizeInBytes - before);
      expect(plain.sizeInBytes, `record ${i}`).toBe(general.sizeInBytes);
      if (random(500) === 0 || i === 2999) {
        const written = plain.finish({ producerId: 7n, baseSequence: 3 });
        const expected = general.finish({ producerId: 7n, baseSequence: 3 });
        // Buffer.equals: toEqual walks megabytes element by element.
        expect(written.equals(expected), `batch ending at record ${i}`).toBe(true);
      }
    }
  });

  it('refuses a record that would take a non-empty batch past the limit, and changes nothing', () => {
    const builder = new RecordBatchBuilder(64);
    const value = Buffer.alloc(100, 1);
    const first = builder.appendValue(value, 1000, 150);
    // The first record always goes in, whatever the limit: a batch holds at least one.
    expect(first).toBeGreaterThan(100);
    expect(builder.appendValue(value, 1001, 150)).toBe(-1);
    expect(builder.count).toBe(1);
    expect(builder.sizeInBytes).toBe(first + 61);
    expect(builder.appendValue(value, 1001, 61 + 2 * first)).toBe(first);
    const batch = builder.finish();
    expect(batch.readInt32BE(57)).toBe(2);
    // maxTimestamp: the refused record's timestamp did not count.
    expect(Number(batch.readBigInt64BE(35))).toBe(1001);
  });
});

describe('sendMany', () => {
  it('keeps every message and its order when plain values run between keyed, headed and text ones', async () => {
    await client.admin.createTopic({ name: 'runs', partitions: 3 });
    const producer = client.producer({ batchBytes: 1500 });
    const base = 1_700_000_000_000;
    const inputs = Array.from({ length: 900 }, (_, i) => {
      const value = i % 97 === 0 ? null : Buffer.from(`value-${i}-${'y'.repeat(i % 50)}`);
      const input: SendInput = { topic: 'runs', value };
      // Runs of plain values to an explicit partition, runs without one (sticky), and messages the
      // general path takes (a key, headers, a text value) between them.
      if (i % 200 < 120) input.partition = Math.floor(i / 40) % 3;
      if (i % 31 === 0) input.key = `key-${i}`;
      if (i % 37 === 0) input.headers = { h: `${i}` };
      if (i % 41 === 0) input.value = `text-${i}`;
      if (i % 3 === 0) input.timestamp = base + i * 1000 - (i % 7) * 5000;
      return input;
    });
    const receipts = await producer.sendMany(inputs);
    await producer.close();
    const byPartition = new Map<number, bigint[]>();
    receipts.forEach((receipt, i) => {
      if (inputs[i]!.partition !== undefined) expect(receipt.partition).toBe(inputs[i]!.partition);
      byPartition.set(receipt.partition, [...(byPartition.get(receipt.partition) ?? []), receipt.offset]);
    });
    // Per partition, the call's messages took consecutive offsets in call order.
    for (const offsets of byPartition.values())
      expect(offsets).toEqual(Array.from({ length: offsets.length }, (_, i) => BigInt(i)));
    const stored = await readAll('runs', 900);
    const byPlace = new Map(stored.map((m) => [`${m.partition}:${m.offset}`, m]));
    receipts.forEach((receipt, i) => {
      const input = inputs[i]!;
      const message = byPlace.get(`${receipt.partition}:${receipt.offset}`)!;
      const expected = input.value === null ? null : Buffer.from(input.value as Buffer | string);
      expect(message.value, `message ${i}`).toEqual(expected);
      expect(message.key?.toString() ?? null, `message ${i}`).toBe((input.key as string | undefined) ?? null);
      expect(message.headers.find((h) => h.key === 'h')?.value?.toString(), `message ${i}`).toBe(
        input.headers === undefined ? undefined : `${i}`,
      );
      if (input.timestamp !== undefined) expect(message.timestamp, `message ${i}`).toBe(input.timestamp);
    });
  });

  it('stores a message without a value (a JavaScript caller) with a null value, as send does', async () => {
    await client.admin.createTopic({ name: 'no-value', partitions: 1 });
    const producer = client.producer();
    const receipts = await producer.sendMany([
      { topic: 'no-value', value: Buffer.from('a') },
      { topic: 'no-value' } as unknown as SendInput,
      { topic: 'no-value', value: Buffer.from('c') },
    ]);
    await producer.close();
    expect(receipts.map((r) => r.offset)).toEqual([0n, 1n, 2n]);
    const stored = await readAll('no-value', 3);
    expect(stored.map((m) => m.value?.toString() ?? null)).toEqual(['a', null, 'c']);
  });

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
