// A consumer read that waits for data (nothing buffered): it resolves with the next message once
// one arrives, in order, through `for await` and `next()` alike; it ends with done / null when the
// consumer is closed while it waits; a read waiting while the consumer is paused resolves only after
// `resume()`. A real embedded broker, in process, on a memory topic and a disk topic.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '../../src/client/client.js';
import { Broker } from '../../src/embedded/broker.js';
import { useTempDir } from '../harness/temp-dir.js';
import { until } from '../harness/until.js';

const scratch = useTempDir('ms-consumer-wait-', 'all');
let broker: Broker;
let client: Client;

beforeAll(async () => {
  broker = await Broker.start({ dataDir: scratch.path });
  client = broker.connect();
  await client.admin.createTopic({ name: 'wait-memory', partitions: 1, storage: 'memory' });
  await client.admin.createTopic({ name: 'wait-disk', partitions: 1 });
  await client.admin.createTopic({ name: 'wait-close', partitions: 1 });
  await client.admin.createTopic({ name: 'wait-pause', partitions: 1 });
});
afterAll(async () => {
  await client.close();
  await broker.stop();
});

describe('a consumer read waiting for data', () => {
  for (const topic of ['wait-memory', 'wait-disk']) {
    it(`gets each message sent after it began waiting, in order (${topic})`, async () => {
      const consumer = client.consumer({ topics: [topic], from: 'latest' });
      await consumer.start();
      const producer = client.producer({ lingerMs: 0 });
      const seen: string[] = [];
      const reading = (async () => {
        for await (const message of consumer) {
          seen.push(message.value!.toString());
          if (seen.length === 20) break;
        }
      })();
      // One message at a time, each after the reader is waiting again (its previous one was read).
      for (let i = 0; i < 20; i++) {
        await until(() => seen.length === i, { timeoutMs: 10_000 });
        await producer.send({ topic, value: `m${i}` });
      }
      await reading;
      expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
      await producer.close();
    });
  }

  it('ends with done (for await) and null (next) when the consumer is closed while it waits', async () => {
    const iterated = client.consumer({ topics: ['wait-close'], from: 'latest' });
    await iterated.start();
    const iterator = iterated[Symbol.asyncIterator]();
    const waiting = iterator.next();
    await new Promise((resolve) => setImmediate(resolve));
    await iterated.close();
    expect(await waiting).toEqual({ done: true, value: undefined });

    const polled = client.consumer({ topics: ['wait-close'], from: 'latest' });
    await polled.start();
    const next = polled.next();
    await new Promise((resolve) => setImmediate(resolve));
    await polled.close();
    expect(await next).toBeNull();
  });

  it('started before a pause, resolves only after resume()', async () => {
    const consumer = client.consumer({ topics: ['wait-pause'], from: 'latest' });
    await consumer.start();
    let resolved = false;
    const waiting = consumer.next().then((message) => {
      resolved = true;
      return message;
    });
    await new Promise((resolve) => setImmediate(resolve));
    consumer.pause();
    const producer = client.producer();
    await producer.send({ topic: 'wait-pause', value: 'while paused' });
    // The push arrived (the broker had credit) but a paused consumer hands nothing out.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(resolved).toBe(false);
    consumer.resume();
    const message = await waiting;
    expect(message?.value?.toString()).toBe('while paused');
    await producer.close();
    await consumer.close();
  });
});
