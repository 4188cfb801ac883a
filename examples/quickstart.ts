// The README's and docs/client.md's example, run by test/docs/examples.test.ts.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker, connect, valueJson } from '../src/index.js';

export async function quickstart(): Promise<string[]> {
  const dataDir = await mkdtemp(join(tmpdir(), 'memorystreamer-example-'));
  const seen: string[] = [];

  // --- example start ---
  const broker = await Broker.start({ dataDir, port: 0 }); // in this process; also listening on TCP
  const client = broker.connect(); // in-process client: same API as `await connect({ brokers })`
  await client.admin.createTopic({ name: 'orders', partitions: 4 });

  const producer = client.producer({ lingerMs: 1 });
  const receipt = await producer.send({
    topic: 'orders',
    key: 'order-1',
    value: '{"total":3}',
    expectedVersion: 0,
  });
  // receipt: { topic: 'orders', partition, offset: 0n, sequence: 0, durability: 'written' }
  await producer.send({ topic: 'orders', key: 'order-1', value: '{"total":4}', headers: { source: 'web' } });

  // Every partition of the topic, from the beginning:
  const consumer = client.consumer({ topics: ['orders'], from: 'earliest' });
  for await (const message of consumer) {
    seen.push(
      `${message.key?.toString()} #${message.offset}: ${valueJson<{ total: number }>(message)?.total}`,
    );
    if (seen.length === 2) break;
  }

  // One stream (all messages of one key), with its sequence numbers:
  const stream = client.consumer({ stream: { topic: 'orders', key: 'order-1' }, from: 0 });
  for await (const message of stream) {
    seen.push(`stream seq ${message.sequence}: ${message.value?.toString()}`);
    if (message.sequence === 1) break;
  }

  // The same broker over TCP, from another client:
  const remote = await connect({ brokers: [`127.0.0.1:${broker.address!.port}`] });
  seen.push(`topics over TCP: ${(await remote.admin.listTopics()).map((t) => t.name).join(',')}`);
  await remote.close();

  await client.close(); // flushes producers, closes consumers
  await broker.stop();
  // --- example end ---

  await rm(dataDir, { recursive: true, force: true });
  seen.push(`first receipt at offset ${receipt.offset}, sequence ${receipt.sequence}`);
  return seen;
}
