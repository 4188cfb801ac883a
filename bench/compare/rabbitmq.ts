// RabbitMQ Streams: a throwaway RabbitMQ node (Debian rabbitmq-server) with the stream plugin,
// everything in a temp dir, every listener on 127.0.0.1, plus an epmd of its own on a free port
// (so nothing is left running and the system epmd on 4369 is not touched).
// Produce = publisher.send with publisher confirms, at most 16,384 unconfirmed; replay and the
// latency consumer subscribe from the first offset.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Client, connect, Offset, type Publisher } from 'rabbitmq-stream-js-client';
import { creditsOnChunkReceived } from 'rabbitmq-stream-js-client/dist/consumer_credit_policy.js';
import { allowPre311Servers } from './rabbitmq-compat.js';
import { freePort, type ServerProcess, startServer, tempDir } from './servers.js';
import { LATENCY_STREAM, type System, THROUGHPUT_STREAM } from './workload.js';

const SERVER_SCRIPT = '/usr/lib/rabbitmq/bin/rabbitmq-server';

/**
 * 10 chunks in flight, a new credit as each arrives. The client's default (1 credit, renewed when
 * a chunk's handler finished) allows one chunk per round trip, and at 10,000 msg/s the small chunks
 * fall behind by seconds; MemoryStreamer's consumer likewise keeps bytes in flight.
 */
const credits = () => creditsOnChunkReceived(10, 1);

/** Publisher confirms, by publishing id (the client reports them per connection, not per send). */
class Confirms {
  confirmed = 0;
  private failure: Error | null = null;
  private readonly waiters = new Map<bigint, { resolve: () => void; reject: (e: Error) => void }>();
  private readonly early = new Set<bigint>();
  private countWaiter: { target: number; resolve: () => void; reject: (e: Error) => void } | null = null;

  constructor(
    publisher: Publisher,
    /** Keep ids confirmed before anyone waits for them (only for per-message waiting). */
    private readonly byId: boolean,
  ) {
    publisher.on('publish_confirm', (error, ids) => {
      for (const id of ids) {
        this.confirmed++;
        const waiter = this.waiters.get(id);
        if (waiter !== undefined) {
          this.waiters.delete(id);
          if (error === null) waiter.resolve();
          else waiter.reject(new Error(`publish error ${error}`));
        } else if (this.byId) this.early.add(id);
      }
      if (error !== null) this.failure ??= new Error(`publish error ${error}`);
      this.wake();
    });
  }

  private wake(): void {
    const waiter = this.countWaiter;
    if (waiter === null) return;
    if (this.failure !== null) waiter.reject(this.failure);
    else if (this.confirmed >= waiter.target) waiter.resolve();
    else return;
    this.countWaiter = null;
  }

  /** Resolves once `target` messages in all are confirmed. */
  until(target: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.countWaiter = { target, resolve, reject };
      this.wake();
    });
  }

  forId(id: bigint): Promise<void> {
    if (this.early.delete(id)) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.set(id, { resolve, reject }));
  }
}

async function startRabbit(): Promise<{ epmd: ServerProcess; rabbit: ServerProcess; streamPort: number }> {
  const [epmdPort, amqpPort, distPort, streamPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const epmd = await startServer({
    name: 'epmd',
    command: 'epmd',
    args: ['-address', '127.0.0.1', '-port', String(epmdPort)],
    dir: await tempDir('epmd'),
    readyPort: epmdPort,
  });
  try {
    const dir = await tempDir('rabbitmq');
    await writeFile(
      join(dir, 'rabbitmq.conf'),
      [
        `listeners.tcp.1 = 127.0.0.1:${amqpPort}`,
        `stream.listeners.tcp.1 = 127.0.0.1:${streamPort}`,
        // Clients connect to the host:port the node advertises for a stream's leader.
        'stream.advertised_host = 127.0.0.1',
        `stream.advertised_port = ${streamPort}`,
        '',
      ].join('\n'),
    );
    // What `rabbitmq-plugins enable rabbitmq_stream` writes, but in our own plugins file rather
    // than the system's /etc/rabbitmq/enabled_plugins.
    await writeFile(join(dir, 'enabled_plugins'), '[rabbitmq_stream].\n');
    const rabbit = await startServer({
      name: 'rabbitmq-server',
      command: SERVER_SCRIPT,
      args: [],
      dir,
      readyPort: streamPort,
      timeoutMs: 90_000,
      env: {
        ...process.env,
        HOME: dir, // the Erlang cookie is created here
        ERL_EPMD_PORT: String(epmdPort),
        RABBITMQ_NODENAME: `bench${streamPort}@localhost`,
        RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
        RABBITMQ_DIST_PORT: String(distPort),
        RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq'),
        RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
        RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config'),
        RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
        RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
        RABBITMQ_LOG_BASE: join(dir, 'log'),
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
        // Makes the script exec the Erlang VM instead of waiting on it, so our child's PID is the
        // broker itself: SIGTERM stops it cleanly and its CPU time is the broker's.
        RUNNING_UNDER_SYSTEMD: 'true',
      },
    });
    return { epmd, rabbit, streamPort };
  } catch (error) {
    await epmd.stop();
    throw error;
  }
}

export async function openRabbitMq(): Promise<System> {
  if (!existsSync(SERVER_SCRIPT)) throw new Error('rabbitmq-server is not installed');
  const version =
    execFileSync('dpkg-query', ['-W', 'rabbitmq-server']).toString().trim().split('\t')[1] ?? '';
  const shimmed = allowPre311Servers(version);
  const { epmd, rabbit, streamPort } = await startRabbit();
  const stopServers = async () => {
    await rabbit.stop();
    await epmd.stop();
  };
  let client: Client;
  let throughputPublisher: Publisher;
  let latencyPublisher: Publisher;
  try {
    client = await connect({
      hostname: '127.0.0.1',
      port: streamPort,
      username: 'guest',
      password: 'guest',
      vhost: '/',
    });
    for (const stream of [THROUGHPUT_STREAM, LATENCY_STREAM]) await client.createStream({ stream });
    throughputPublisher = await client.declarePublisher({ stream: THROUGHPUT_STREAM, maxChunkLength: 1000 });
    latencyPublisher = await client.declarePublisher({ stream: LATENCY_STREAM });
  } catch (error) {
    await stopServers();
    throw error;
  }
  const rabbitClient = client;
  const produceConfirms = new Confirms(throughputPublisher, false);
  const latencyConfirms = new Confirms(latencyPublisher, true);
  return {
    name: 'RabbitMQ Streams',
    version: shimmed ? `${version} (client handshake shim, see rabbitmq-compat.ts)` : version,
    ackMeans: 'stream, 1 node: confirm = chunk written to the segment file (page cache); streams never fsync',
    serverPid: rabbit.pid,
    async produce(count, value) {
      const start = produceConfirms.confirmed;
      for (let sent = 1; sent <= count; sent++) {
        await throughputPublisher.send(value);
        if (sent - (produceConfirms.confirmed - start) >= 16_384)
          await produceConfirms.until(start + sent - 8192);
      }
      await throughputPublisher.flush();
      await produceConfirms.until(start + count);
    },
    async replay(count) {
      let received = 0;
      let finished: () => void = () => undefined;
      const done = new Promise<void>((resolve) => {
        finished = resolve;
      });
      const consumer = await rabbitClient.declareConsumer(
        { stream: THROUGHPUT_STREAM, offset: Offset.first(), creditPolicy: credits() },
        (message) => {
          if (message.content.length > 0 && ++received === count) finished();
        },
      );
      await done;
      await consumer.close();
      return received;
    },
    async subscribe(onValue) {
      await rabbitClient.declareConsumer(
        { stream: LATENCY_STREAM, offset: Offset.first(), creditPolicy: credits() },
        (message) => onValue(message.content),
      );
    },
    async publish(value) {
      const { publishingId } = await latencyPublisher.send(value);
      await latencyConfirms.forId(publishingId);
    },
    async close() {
      await rabbitClient.close().catch(() => undefined);
      await stopServers();
    },
  };
}
