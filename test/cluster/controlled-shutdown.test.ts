// Controlled shutdown with real `serve --cluster` processes: a rolling restart of all three
// brokers (SIGTERM, wait for the exit, start again, wait until it is back in every ISR) under a
// steady acks 'all' load. Each broker moves its leadership away before it stops serving, so the
// producer, with its ordinary retries, surfaces no error; every acknowledged message is there
// once, in order per partition.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/client/connect.js';
import { MemoryStreamerError } from '../../src/common/errors.js';
import { type ProcessCluster, startCluster } from '../harness/cluster.js';
import { etcdAvailable } from '../harness/etcd.js';
import { until } from '../harness/until.js';

let cluster: ProcessCluster;

describe.skipIf(!etcdAvailable())('controlled shutdown', () => {
  beforeAll(async () => {
    cluster = await startCluster({ name: 'rolling', logLevel: 'info' }); // info: a failed stop shows what the broker did
  }, 90_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('restarts every broker in turn under acks all load without a produce error', async () => {
    const client = await connect({ brokers: cluster.addresses() });
    const errors: Error[] = [];
    const acknowledged = new Map<number, string[]>();
    let running = true;
    try {
      await until(async () => {
        try {
          return await client.admin.createTopic({ name: 'rolling', partitions: 3, replicationFactor: 3 });
        } catch (error) {
          if (error instanceof MemoryStreamerError && error.retriable) return null;
          throw error;
        }
      });
      const allInSync = async () => {
        const metadata = await client.admin.metadata(['rolling']);
        return metadata.topics[0]!.partitions.every((p) => p.leader > 0 && p.isr.length === 3);
      };
      await until(allInSync, { timeoutMs: 30_000, what: 'every replica in sync' });
      const producer = client.producer({ acks: 'all' });
      // Warm up the route, then a steady load: one send at a time per partition, all the time.
      await until(() => producer.send({ topic: 'rolling', partition: 0, value: 'warm-up' }));
      acknowledged.set(0, ['warm-up']);
      const load = [0, 1, 2].map(async (partition) => {
        for (let i = 0; running; i++) {
          const value = `p${partition}-${i}`;
          try {
            await producer.send({ topic: 'rolling', partition, value });
            const list = acknowledged.get(partition) ?? [];
            list.push(value);
            acknowledged.set(partition, list);
          } catch (error) {
            errors.push(error as Error);
          }
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      });

      for (const id of [1, 2, 3]) {
        const before = [...acknowledged.values()].reduce((n, list) => n + list.length, 0);
        const broker = cluster.brokers[id - 1]!;
        const stopStarted = Date.now();
        const code = await broker.stop();
        if (code !== 0)
          console.log(
            `broker ${id} exit ${code} after ${Date.now() - stopStarted} ms`,
            broker.stderr().slice(-6000),
          );
        expect(code).toBe(0);
        await cluster.restart(id);
        await until(allInSync, { timeoutMs: 60_000, what: `broker ${id} back in every ISR` });
        // The load went on meanwhile.
        await until(() => [...acknowledged.values()].reduce((n, list) => n + list.length, 0) > before + 20);
      }
      running = false;
      await Promise.all(load);
      expect(errors.map((error) => error.message)).toEqual([]);

      const consumer = client.consumer({ topics: ['rolling'], from: 'earliest' });
      const seen = new Map<number, string[]>();
      const total = [...acknowledged.values()].reduce((n, list) => n + list.length, 0);
      try {
        await consumer.start();
        let count = 0;
        const deadline = Date.now() + 30_000;
        while (count < total && Date.now() < deadline) {
          const message = await consumer.next();
          if (message === null) continue;
          const list = seen.get(message.partition) ?? [];
          list.push(message.value!.toString());
          seen.set(message.partition, list);
          count++;
        }
      } finally {
        await consumer.close();
      }
      for (const partition of [0, 1, 2]) expect(seen.get(partition)).toEqual(acknowledged.get(partition));
    } finally {
      running = false;
      await client.close();
    }
  }, 240_000);
});
