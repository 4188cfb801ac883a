// NATS JetStream: nats-server -js with a file-storage stream per subject, in a temp dir.
// Produce = js.publish (async, each resolves on the stream's PubAck) with 4,096 in flight (the
// window bench/end-to-end.ts uses for one-promise-per-message sends); replay and the latency
// consumer are ephemeral pull consumers without acks, read with consume(). (The client's ordered
// consumers, which would be the same thing, never deliver against nats-server 2.9 here.)
import { execFileSync } from 'node:child_process';
import {
  AckPolicy,
  type ConsumerMessages,
  connect,
  DeliverPolicy,
  type JetStreamManager,
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
  let manager: JetStreamManager;
  try {
    connection = await connect({ servers: `127.0.0.1:${port}` });
    manager = await connection.jetstreamManager();
    for (const name of [THROUGHPUT_STREAM, LATENCY_STREAM])
      await manager.streams.add({ name, subjects: [name], storage: StorageType.File });
  } catch (error) {
    await server.stop();
    throw error;
  }
  const nc = connection;
  const js = nc.jetstream();
  const feeds: ConsumerMessages[] = [];
  /** An ephemeral, unacknowledged pull consumer of a whole stream, being consumed. */
  // Callback style: leaving a `for await` over consume() with break never returns in this client.
  const readAll = async (
    stream: string,
    batch: number,
    callback: (message: JsMsg) => void,
  ): Promise<ConsumerMessages> => {
    const info = await manager.consumers.add(stream, {
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.All,
    });
    const consumer = await js.consumers.get(stream, info.name);
    const messages = await consumer.consume({ max_messages: batch, callback });
    feeds.push(messages);
    return messages;
  };
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
      let received = 0;
      let finished: () => void = () => undefined;
      const done = new Promise<void>((resolve) => {
        finished = resolve;
      });
      const messages = await readAll(THROUGHPUT_STREAM, 10_000, (message) => {
        if (message.data.byteLength > 0 && ++received === count) finished();
      });
      await done;
      await messages.close();
      return received;
    },
    async subscribe(onValue) {
      await readAll(LATENCY_STREAM, 1000, (message) => onValue(asBuffer(message)));
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
