// An idempotent producer pipelines many batches to one partition. When one of them is refused with
// a retriable error (here the broker's in-flight limit) the ones behind it are refused for a gap in
// the sequence (OUT_OF_ORDER_SEQUENCE). The producer must retry them in order behind the first, so
// every send succeeds and the log holds every message once, in send order.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/client/connect.js';
import { Broker } from '../../src/embedded/broker.js';
import { useTempDir } from '../harness/temp-dir.js';

let dataDir: string;
let broker: Broker;

const scratch = useTempDir('ms-retry-order-', 'all');
beforeAll(async () => {
  dataDir = scratch.path;
  broker = await Broker.start({ dataDir, port: 0, limits: { maxInFlightRequests: 2 } });
  const admin = broker.connect();
  await admin.admin.createTopic({ name: 'ordered', partitions: 1, config: { durability: 'always' } });
  await admin.admin.createTopic({ name: 'strict', partitions: 1, config: { maxMessageBytes: 1024 } });
  await admin.close();
});
afterAll(async () => {
  await broker.stop();
});

describe('producer: retries keep the partition order', () => {
  it('retries the batches refused behind a retried one, in order, without gaps or duplicates', async () => {
    const client = await connect({ brokers: `127.0.0.1:${broker.address!.port}` });
    try {
      const producer = client.producer({ retries: 20 });
      const count = 120;
      // The first send learns the partition count and the producer id; the rest take the fast path.
      const sends: Promise<unknown>[] = [producer.send({ topic: 'ordered', value: 'm0' })];
      await sends[0];
      for (let i = 1; i < count; i++) {
        sends.push(producer.send({ topic: 'ordered', value: `m${i}` }));
        // One batch per message, all sent at once: more requests in flight than the broker allows.
        void producer.flush();
      }
      const results = await Promise.allSettled(sends);
      const failed = results.filter((r) => r.status === 'rejected');
      expect(failed.map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
      const consumer = client.consumer({ topics: ['ordered'], from: 'earliest' });
      await consumer.start();
      const seen: string[] = [];
      while (seen.length < count) {
        const message = await consumer.next();
        if (message !== null) seen.push(message.value!.toString());
      }
      await consumer.close();
      expect(seen).toEqual(Array.from({ length: count }, (_, i) => `m${i}`));
      const offsets = await client.admin.describeTopic('ordered');
      expect(offsets.partitions[0]!.logEndOffset).toBe(BigInt(count));
    } finally {
      await client.close();
    }
  });

  it('fails only the batch refused for good; the batches behind it move to a new producer id', async () => {
    const client = await connect({ brokers: `127.0.0.1:${broker.address!.port}` });
    try {
      const producer = client.producer();
      await producer.send({ topic: 'strict', value: 'first' });
      const sends: Promise<unknown>[] = [];
      for (let i = 0; i < 12; i++) {
        // The 4th batch is larger than the topic takes (maxMessageBytes, which the broker applies).
        const value = i === 3 ? Buffer.alloc(2048, 0x61) : `s${i}`;
        sends.push(producer.send({ topic: 'strict', value }));
        void producer.flush();
      }
      const results = await Promise.allSettled(sends);
      const refused = results.flatMap((r, i) => (r.status === 'rejected' ? [i] : []));
      expect(refused).toEqual([3]);
      expect((results[3] as PromiseRejectedResult).reason).toMatchObject({ codeName: 'MESSAGE_TOO_LARGE' });
      const consumer = client.consumer({ topics: ['strict'], from: 'earliest' });
      await consumer.start();
      const seen: string[] = [];
      while (seen.length < 12) {
        const message = await consumer.next();
        if (message !== null) seen.push(message.value!.toString());
      }
      await consumer.close();
      expect(seen).toEqual(['first', ...[0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11].map((i) => `s${i}`)]);
    } finally {
      await client.close();
    }
  });
});
