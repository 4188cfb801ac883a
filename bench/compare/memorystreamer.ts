// MemoryStreamer as the comparison sees it: the broker as a child process over loopback TCP, the
// client used as bench/end-to-end.ts uses it (sendMany of 1,000 with 8 calls in flight; a consumer
// from the earliest offset), topics with durability `interval`.
import { readFileSync } from 'node:fs';
import type { Client } from '../../src/client/client.js';
import { connect } from '../../src/client/connect.js';
import type { Consumer } from '../../src/client/consumer.js';
import { startBrokerProcess } from '../lib/broker-process.js';
import { track } from './servers.js';
import { LATENCY_STREAM, type System, THROUGHPUT_STREAM } from './workload.js';

export async function openMemoryStreamer(): Promise<System> {
  const broker = await startBrokerProcess();
  const tracked = track({ name: 'memorystreamer', stop: async () => void (await broker.stop()) });
  let client: Client | null = null;
  const consumers: Consumer[] = [];
  try {
    client = await connect({ brokers: `127.0.0.1:${broker.port}` });
    for (const name of [THROUGHPUT_STREAM, LATENCY_STREAM])
      await client.admin.createTopic({ name, partitions: 1, config: { durability: 'interval' } });
  } catch (error) {
    await client?.close();
    await tracked.stop();
    throw error;
  }
  const connected = client;
  const throughputProducer = connected.producer({ batchBytes: 256 * 1024 });
  const latencyProducer = connected.producer({ lingerMs: 0 });
  const version = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
  return {
    name: 'MemoryStreamer',
    version,
    ackMeans: 'durability interval: ack = written to the log (page cache), fdatasync every 100 ms',
    serverPid: broker.pid,
    async produce(count, value) {
      const chunk = Array.from({ length: 1000 }, () => ({ topic: THROUGHPUT_STREAM, value }));
      let window: Promise<unknown>[] = [];
      for (let sent = 0; sent < count; sent += chunk.length) {
        const part = count - sent < chunk.length ? chunk.slice(0, count - sent) : chunk;
        window.push(throughputProducer.sendMany(part));
        if (window.length === 8) {
          await Promise.all(window);
          window = [];
        }
      }
      await Promise.all(window);
    },
    async replay(count) {
      const consumer = connected.consumer({
        topics: [THROUGHPUT_STREAM],
        from: 'earliest',
        creditBytes: 8 * 1024 * 1024,
      });
      let received = 0;
      for await (const message of consumer) {
        if (message.value !== null) received++;
        if (received === count) break;
      }
      await consumer.close();
      return received;
    },
    async subscribe(onValue) {
      const consumer = connected.consumer({ topics: [LATENCY_STREAM], from: 'earliest' });
      consumers.push(consumer);
      await consumer.start();
      void (async () => {
        for await (const message of consumer) if (message.value !== null) onValue(message.value);
      })();
    },
    publish(value) {
      return latencyProducer.send({ topic: LATENCY_STREAM, value });
    },
    async close() {
      for (const consumer of consumers) await consumer.close().catch(() => undefined);
      await throughputProducer.close().catch(() => undefined);
      await latencyProducer.close().catch(() => undefined);
      await connected.close().catch(() => undefined);
      await tracked.stop();
    },
  };
}
