// NATS JetStream: nats-server -js with a file-storage stream per subject, in a temp dir.
// Produce = js.publish (async, each resolves on the stream's PubAck) with 4,096 in flight (the
// window bench/end-to-end.ts uses for one-promise-per-message sends); replay and the latency
// consumer are ordered pull consumers (the client's recommended way to read a whole stream).
import { execFileSync } from 'node:child_process';
import {
  type ConsumerMessages,
  connect,
  DeliverPolicy,
  type JsMsg,
  type NatsConnection,
  StorageType,
} from 'nats';
import { freePort, startServer, tempDir } from './servers.js';
import { LATENCY_STREAM, type System, THROUGHPUT_STREAM } from './workload.js';

function asBuffer(message: JsMsg): Buffer {
  return Buffer.from(message.data.buffer, message.data.byteOffset, message.data.byteLength);
}

export async function openNats(): Promise<System> {
  const version = execFileSync('nats-server', ['--version'])
    .toString()
    .trim()
    .replace(/^nats-server: /, '');
  const port = await freePort();
  const dir = await tempDir('nats');
  const server = await startServer({
    name: 'nats-server',
    command: 'nats-server',
    args: ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir],
    dir,
    readyPort: port,
  });
  let connection: NatsConnection;
  try {
    connection = await connect({ servers: `127.0.0.1:${port}` });
    const manager = await connection.jetstreamManager();
    for (const name of [THROUGHPUT_STREAM, LATENCY_STREAM])
      await manager.streams.add({ name, subjects: [name], storage: StorageType.File });
  } catch (error) {
    await server.stop();
    throw error;
  }
  const nc = connection;
  const js = nc.jetstream();
  const feeds: ConsumerMessages[] = [];
  return {
    name: 'NATS JetStream',
    version,
    ackMeans:
      'file store: ack = written to the stream block file (page cache), fsync per sync interval (2 min default)',
    serverPid: server.pid,
    async produce(count, value) {
      let window: Promise<unknown>[] = [];
      for (let i = 0; i < count; i++) {
        window.push(js.publish(THROUGHPUT_STREAM, value));
        if (window.length === 4096) {
          await Promise.all(window);
          window = [];
        }
      }
      await Promise.all(window);
    },
    async replay(count) {
      const consumer = await js.consumers.get(THROUGHPUT_STREAM, { deliver_policy: DeliverPolicy.All });
      const messages = await consumer.consume({ max_messages: 10_000 });
      let received = 0;
      for await (const message of messages) {
        if (message.data.byteLength > 0) received++;
        if (received === count) break;
      }
      await messages.close();
      return received;
    },
    async subscribe(onValue) {
      const consumer = await js.consumers.get(LATENCY_STREAM, { deliver_policy: DeliverPolicy.All });
      const messages = await consumer.consume({ max_messages: 1000 });
      feeds.push(messages);
      void (async () => {
        for await (const message of messages) onValue(asBuffer(message));
      })();
    },
    publish(value) {
      return js.publish(LATENCY_STREAM, value);
    },
    async close() {
      for (const feed of feeds) await feed.close().catch(() => undefined);
      await nc.close().catch(() => undefined);
      await server.stop();
    },
  };
}
