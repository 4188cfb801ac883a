import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  Broker,
  type Client,
  connect,
  ErrorCode,
  type Message,
  valueJson,
  valueString,
} from '../../src/index.js';
import { useTempDir } from '../harness/temp-dir.js';

const scratch = useTempDir('ms-e2e-');
let dataDir: string;
let broker: Broker;
beforeEach(async () => {
  dataDir = scratch.path;
  broker = await Broker.start({ dataDir, port: 0 });
});
afterEach(async () => {
  await broker.stop();
});

async function take(iterator: AsyncIterable<Message>, count: number): Promise<Message[]> {
  const out: Message[] = [];
  if (count === 0) return out;
  for await (const message of iterator) {
    out.push(message);
    if (out.length === count) break;
  }
  return out;
}

const transports: Array<[string, () => Promise<Client>]> = [
  ['embedded', async () => broker.connect()],
  ['tcp', async () => connect({ brokers: [`127.0.0.1:${broker.address!.port}`] })],
];

describe.each(transports)('over the %s transport', (_name, makeClient) => {
  it('creates topics, produces with keys and streams, and consumes in order', async () => {
    const client = await makeClient();
    await client.admin.createTopic({ name: 'orders', partitions: 4 });
    expect((await client.admin.listTopics()).map((t) => t.name)).toEqual(['orders']);
    expect(await client.ping()).toBeGreaterThanOrEqual(0);
    const producer = client.producer();
    const receipt = await producer.send({
      topic: 'orders',
      key: 'order-1',
      value: '{"total":3}',
      expectedVersion: 0,
    });
    expect(receipt).toMatchObject({ topic: 'orders', offset: 0n, sequence: 0 });
    const second = await producer.send({ topic: 'orders', key: 'order-1', value: '{"total":4}' });
    expect(second.sequence).toBe(1);
    expect(second.partition).toBe(receipt.partition);
    await expect(
      producer.send({ topic: 'orders', key: 'order-1', value: 'x', expectedVersion: 1 }),
    ).rejects.toMatchObject({
      code: ErrorCode.STREAM_VERSION_CONFLICT,
    });
    const sends = [];
    for (let i = 0; i < 1000; i++)
      sends.push(
        producer.send({ topic: 'orders', key: `k${i % 10}`, value: `v${i}`, headers: { n: String(i) } }),
      );
    await Promise.all(sends);

    const consumer = client.consumer({ topics: ['orders'], from: 'earliest' });
    const messages = await take(consumer, 1002);
    expect(messages).toHaveLength(1002);
    const firstOrder = messages.filter((m) => valueString(m)?.startsWith('{'));
    expect(firstOrder.map((m) => valueJson<{ total: number }>(m)?.total)).toEqual([3, 4]);
    // Per key, order is preserved.
    const k3 = messages
      .filter((m) => m.key?.toString() === 'k3')
      .map((m) => Number(m.headers[0]!.value!.toString()));
    expect(k3).toEqual([...k3].sort((a, b) => a - b));
    expect(k3).toHaveLength(100);
    await consumer.close();

    const stream = client.consumer({ stream: { topic: 'orders', key: 'order-1' }, from: 0 });
    const events = await take(stream, 2);
    expect(events.map((e) => [e.sequence, valueString(e)])).toEqual([
      [0, '{"total":3}'],
      [1, '{"total":4}'],
    ]);
    await stream.close();
    await client.close();
  });

  it('delivers new messages to a live subscriber, with long-poll stream reads', async () => {
    const client = await makeClient();
    await client.admin.createTopic({ name: 'live', partitions: 1 });
    const consumer = client.consumer({ topics: ['live'], from: 'latest' });
    await consumer.start();
    const received = take(consumer, 3);
    const producer = client.producer({ lingerMs: 2 });
    for (const v of ['a', 'b', 'c']) await producer.send({ topic: 'live', value: v });
    expect((await received).map(valueString)).toEqual(['a', 'b', 'c']);
    const stream = client.consumer({ stream: { topic: 'live', key: 'entity' } });
    const pending = take(stream, 1);
    await producer.send({ topic: 'live', key: 'entity', value: 'created' });
    expect((await pending).map(valueString)).toEqual(['created']);
    await client.close();
  });

  it('reports unknown topics and partitions and bad configuration with codes', async () => {
    const client = await makeClient();
    await expect(client.admin.describeTopic('missing')).rejects.toMatchObject({
      code: ErrorCode.UNKNOWN_TOPIC,
    });
    await expect(client.producer().send({ topic: 'missing', value: 'x' })).rejects.toMatchObject({
      code: ErrorCode.UNKNOWN_TOPIC,
    });
    await expect(client.admin.createTopic({ name: '../etc', partitions: 1 })).rejects.toMatchObject({
      code: ErrorCode.INVALID_TOPIC_NAME,
    });
    await expect(
      client.admin.createTopic({ name: 'bad', config: { cleanup: 'shred' as 'delete' } }),
    ).rejects.toBeDefined();
    await client.admin.createTopic({ name: 'small', partitions: 2, config: { maxMessageBytes: 1024 } });
    await expect(client.producer().send({ topic: 'small', partition: 5, value: 'x' })).rejects.toMatchObject({
      code: ErrorCode.UNKNOWN_PARTITION,
    });
    await expect(client.producer().send({ topic: 'small', value: 'x'.repeat(5000) })).rejects.toMatchObject({
      code: ErrorCode.MESSAGE_TOO_LARGE,
    });
    await expect(client.admin.createTopic({ name: 'small' })).rejects.toMatchObject({
      code: ErrorCode.TOPIC_ALREADY_EXISTS,
    });
    await client.admin.deleteTopic('small');
    await expect(client.admin.describeTopic('small')).rejects.toMatchObject({
      code: ErrorCode.UNKNOWN_TOPIC,
    });
    await client.close();
  });

  it('keeps acknowledged messages across a broker restart', async () => {
    let client = await makeClient();
    await client.admin.createTopic({ name: 'durable', partitions: 2, config: { durability: 'always' } });
    const producer = client.producer();
    const receipts = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        producer.send({ topic: 'durable', key: `k${i % 7}`, value: `v${i}` }),
      ),
    );
    expect(receipts.every((r) => r.durability === 'synced')).toBe(true);
    await client.close();
    const port = broker.address!.port;
    await broker.stop();
    broker = await Broker.start({ dataDir, port });
    client = await makeClient();
    const messages = await take(client.consumer({ topics: ['durable'] }), 200);
    expect(messages.map(valueString).sort()).toEqual(receipts.map((_, i) => `v${i}`).sort());
    const version = await client
      .producer()
      .send({ topic: 'durable', key: 'k0', value: 'next', expectedVersion: 29 });
    expect(version.sequence).toBe(29);
    await client.close();
  });
});
