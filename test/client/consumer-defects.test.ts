// The consumer where flow control, reconnects, refused messages, close and commits meet: a
// partition keeps delivering whatever the size of its next batch against the credit window; a
// batch held by the application keeps its partition's position across a resubscription; a long run
// of refused messages is skipped without growing the stack; a consumer closed before or while it
// starts leaves no subscription open; and a message whose handler failed is committed by no one, so
// it is delivered again, while one the application finished (its next read waits) is committed by a
// close.
// A real embedded broker listening on TCP; clients over TCP (directly or through a proxy the test
// can cut) and in process.

import { generateKeyPairSync } from 'node:crypto';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../../src/client/client.js';
import type { PushHandlers, RemoteSubscription, RequestOptions } from '../../src/client/transport.js';
import { Broker } from '../../src/embedded/broker.js';
import { InProcessTransport } from '../../src/embedded/in-process-transport.js';
import { connect, type Message } from '../../src/index.js';
import type { SubscribeRequest } from '../../src/protocol/commands/data-types.js';
import { useTempDir } from '../harness/temp-dir.js';
import { until } from '../harness/until.js';

const scratch = useTempDir('ms-consumer-defects-', 'all');
let broker: Broker;
const clients: Client[] = [];

beforeAll(async () => {
  broker = await Broker.start({ dataDir: scratch.path, port: 0 });
});
afterAll(async () => {
  await Promise.all(clients.map((client) => client.close()));
  await broker.stop();
});

const transports: Array<[string, () => Promise<Client>]> = [
  [
    'tcp',
    async () => {
      const client = await connect({ brokers: [`127.0.0.1:${broker.address!.port}`] });
      clients.push(client);
      return client;
    },
  ],
  [
    'embedded',
    async () => {
      const client = broker.connect();
      clients.push(client);
      return client;
    },
  ],
];

let topicCount = 0;

async function newTopic(client: Client, partitions = 1): Promise<string> {
  const topic = `defects-${topicCount++}`;
  await client.admin.createTopic({ name: topic, partitions });
  return topic;
}

/** Reads `count` messages (for await), then leaves the loop; their offsets in order. */
async function readOffsets(consumer: AsyncIterable<Message>, count: number): Promise<bigint[]> {
  const offsets: bigint[] = [];
  if (count === 0) return offsets;
  for await (const message of consumer) {
    offsets.push(message.offset);
    if (offsets.length === count) break;
  }
  return offsets;
}

/** A TCP proxy to the broker whose connections the test can cut, as a network failure would. */
interface CuttableProxy {
  readonly address: string;
  /** Connections accepted so far. */
  readonly accepted: number;
  cut(): void;
  close(): Promise<void>;
}

async function startProxy(port: number): Promise<CuttableProxy> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((client) => {
    accepted++;
    const upstream = createConnection({ host: '127.0.0.1', port });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no port');
  return {
    address: `127.0.0.1:${address.port}`,
    get accepted() {
      return accepted;
    },
    cut() {
      for (const socket of sockets) socket.destroy();
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe.each(transports)('credit (%s)', (_name, newClient) => {
  it('keeps delivering when the next batch is larger than the credit returned so far', async () => {
    const client = await newClient();
    const topic = await newTopic(client);
    const producer = client.producer();
    // 200 KB of small messages (under a quarter of the window), then one batch of 900 KiB: it
    // fits the window only once the bytes read before it are granted back.
    await producer.sendMany(Array.from({ length: 200 }, () => ({ topic, value: Buffer.alloc(1000) })));
    await producer.send({ topic, value: Buffer.alloc(900 * 1024) });
    const consumer = client.consumer({ topics: [topic], creditBytes: 1024 * 1024 });
    const offsets = await readOffsets(consumer, 201);
    expect(offsets).toEqual(Array.from({ length: 201 }, (_, i) => BigInt(i)));
  });

  it('keeps delivering to a caught-up reader when an append is larger than the credit left', async () => {
    const client = await newClient();
    const topic = await newTopic(client);
    const producer = client.producer();
    const consumer = client.consumer({ topics: [topic], from: 'earliest', creditBytes: 1024 * 1024 });
    await consumer.start();
    // Read live, each as it comes: the reader is caught up with 200 KB read and not yet granted.
    let read = 0;
    for (let i = 0; i < 200; i++) {
      await producer.send({ topic, value: Buffer.alloc(1000) });
      const message = await consumer.next();
      read += message === null ? 0 : 1;
    }
    expect(read).toBe(200);
    await producer.send({ topic, value: Buffer.alloc(900 * 1024) });
    const large = await consumer.next();
    expect(large?.offset).toBe(200n);
    expect(large?.value?.length).toBe(900 * 1024);
  });

  it('delivers a batch larger than the whole credit window, as the first batch or after others', async () => {
    const client = await newClient();
    const topic = await newTopic(client);
    const producer = client.producer();
    await producer.send({ topic, value: Buffer.alloc(300 * 1024, 1) });
    await producer.sendMany(Array.from({ length: 10 }, () => ({ topic, value: Buffer.alloc(100) })));
    await producer.send({ topic, value: Buffer.alloc(500 * 1024, 2) });
    await producer.send({ topic, value: 'after' });
    const consumer = client.consumer({ topics: [topic], creditBytes: 64 * 1024 });
    const seen: Array<[bigint, number]> = [];
    for await (const message of consumer) {
      seen.push([message.offset, message.value!.length]);
      if (seen.length === 13) break;
    }
    expect(seen[0]).toEqual([0n, 300 * 1024]);
    expect(seen[11]).toEqual([11n, 500 * 1024]);
    expect(seen[12]).toEqual([12n, 5]);
    expect(seen.map(([offset]) => offset)).toEqual(Array.from({ length: 13 }, (_, i) => BigInt(i)));
  });
});

describe('a batch held by the application', () => {
  it('keeps its partition at the batch start when the subscription breaks and resubscribes meanwhile', async () => {
    const setup = broker.connect();
    clients.push(setup);
    const topic = await newTopic(setup);
    const producer = setup.producer();
    await producer.sendMany(Array.from({ length: 10 }, (_, i) => ({ topic, value: `a${i}` })));
    await producer.sendMany(Array.from({ length: 10 }, (_, i) => ({ topic, value: `b${i}` })));
    const proxy = await startProxy(broker.address!.port);
    try {
      const client = await connect({ brokers: [proxy.address] });
      clients.push(client);
      const group = `${topic}-held`;
      const consumer = client.consumer({ topics: [topic], group });
      const batch = await consumer.nextBatch();
      expect([batch!.firstOffset, batch!.lastOffset]).toEqual([0n, 9n]);
      // The connection breaks while the application works on the batch; the consumer resubscribes.
      const before = proxy.accepted;
      proxy.cut();
      await until(() => proxy.accepted > before, { what: 'the consumer reconnects' });
      expect(consumer.positions()).toEqual([{ topic, partition: 0, offset: 0n }]);
      // The handler fails; the application shuts down: the batch is not processed.
      await consumer.close();
      expect(await setup.admin.groupOffsets(group)).toEqual([{ topic, partition: 0, offset: 0n }]);
      const again = client.consumer({ topics: [topic], group });
      const redelivered = await again.nextBatch();
      expect(redelivered!.firstOffset).toBe(0n);
      await again.close();
    } finally {
      await proxy.close();
    }
  });
});

describe('refused messages', () => {
  it('skips a run of refused messages longer than any call stack', async () => {
    const client = broker.connect();
    clients.push(client);
    const topic = await newTopic(client);
    const unsigned = client.producer();
    const count = 50_000;
    for (let i = 0; i < count; i += 10_000)
      await unsigned.sendMany(Array.from({ length: 10_000 }, (_, j) => ({ topic, value: `u${i + j}` })));
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    await client
      .producer({ security: { sign: { keyId: 'k', privateKey } } })
      .send({ topic, value: 'signed' });
    let refused = 0;
    const consumer = client.consumer({
      topics: [topic],
      security: { verify: { publicKeys: { k: publicKey }, require: true } },
      onRefusedMessage: () => {
        refused++;
      },
    });
    const message = await consumer.next();
    expect(message!.value!.toString()).toBe('signed');
    expect(message!.offset).toBe(BigInt(count));
    expect(refused).toBe(count);
    await consumer.close();
  });
});

/** The in-process transport, counting the subscriptions it has open. */
class CountingTransport extends InProcessTransport {
  open = 0;

  override async subscribe(
    request: SubscribeRequest,
    handlers: PushHandlers,
    _options?: RequestOptions,
  ): Promise<RemoteSubscription> {
    const subscription = await super.subscribe(request, handlers);
    this.open++;
    let closed = false;
    return {
      offset: subscription.offset,
      grant: (bytes) => subscription.grant(bytes),
      close: async () => {
        if (!closed) this.open--;
        closed = true;
        await subscription.close();
      },
    };
  }
}

describe('a plain consumer closed before it has started', () => {
  async function countingClient(): Promise<{ client: Client; transport: CountingTransport; topic: string }> {
    const transport = new CountingTransport(broker.core);
    const client = new Client(transport);
    clients.push(client);
    const topic = await newTopic(client, 4);
    return { client, transport, topic };
  }

  it('opens no subscription for a read after close()', async () => {
    const { client, transport, topic } = await countingClient();
    const control = client.consumer({ topics: [topic] });
    await control.start();
    expect(transport.open).toBe(4);
    await control.close();
    expect(transport.open).toBe(0);

    const consumer = client.consumer({ topics: [topic] });
    await consumer.close();
    expect(await consumer.next()).toBeNull();
    expect(await consumer.nextBatch()).toBeNull();
    expect(transport.open).toBe(0);
  });

  it('leaves no subscription open when closed while start() is under way', async () => {
    const { client, transport, topic } = await countingClient();
    for (const from of ['earliest', { timestamp: 0 }] as const) {
      const consumer = client.consumer({ topics: [topic], from });
      const started = consumer.start();
      await Promise.resolve();
      await consumer.close();
      await started;
      expect(transport.open).toBe(0);
      expect(await consumer.next()).toBeNull();
      expect(transport.open).toBe(0);
    }
  });
});

describe('at least once, message by message', () => {
  async function groupTopic(client: Client, count: number): Promise<string> {
    const topic = await newTopic(client);
    await client.producer().sendMany(Array.from({ length: count }, (_, i) => ({ topic, value: `m${i}` })));
    return topic;
  }

  it('a for await loop left by an exception commits nothing of the message it was on', async () => {
    const client = broker.connect();
    clients.push(client);
    const topic = await groupTopic(client, 5);
    const group = `${topic}-loop`;
    const consumer = client.consumer({ topics: [topic], group });
    await expect(
      (async () => {
        for await (const message of consumer) {
          if (message.offset === 2n) throw new Error('handler failed on offset 2');
        }
      })(),
    ).rejects.toThrow('handler failed on offset 2');
    expect(await client.admin.groupOffsets(group)).toEqual([{ topic, partition: 0, offset: 2n }]);
    const again = client.consumer({ topics: [topic], group });
    expect(await readOffsets(again, 3)).toEqual([2n, 3n, 4n]);
  });

  it('run(handler): a handler that throws leaves its message to be delivered again', async () => {
    const client = broker.connect();
    clients.push(client);
    const topic = await groupTopic(client, 5);
    const group = `${topic}-run`;
    const consumer = client.consumer({ topics: [topic], group });
    const seen: bigint[] = [];
    await expect(
      consumer.run((message) => {
        seen.push(message.offset);
        if (message.offset === 3n) throw new Error('handler failed on offset 3');
      }),
    ).rejects.toThrow('handler failed on offset 3');
    await consumer.close();
    expect(seen).toEqual([0n, 1n, 2n, 3n]);
    expect(await client.admin.groupOffsets(group)).toEqual([{ topic, partition: 0, offset: 3n }]);
  });

  it('commit() counts the message in hand: a close after it does not move the offset back', async () => {
    const client = broker.connect();
    clients.push(client);
    const topic = await groupTopic(client, 5);
    const group = `${topic}-commit`;
    const consumer = client.consumer({ topics: [topic], group });
    for await (const message of consumer) {
      if (message.offset === 1n) {
        await consumer.commit();
        break;
      }
    }
    expect(await client.admin.groupOffsets(group)).toEqual([{ topic, partition: 0, offset: 2n }]);
  });

  it('a message counts as processed once the next is asked for', async () => {
    const client = broker.connect();
    clients.push(client);
    const topic = await groupTopic(client, 5);
    const group = `${topic}-next`;
    const consumer = client.consumer({ topics: [topic], group });
    expect((await consumer.next())!.offset).toBe(0n);
    expect((await consumer.next())!.offset).toBe(1n);
    await consumer.close();
    expect(await client.admin.groupOffsets(group)).toEqual([{ topic, partition: 0, offset: 1n }]);
  });

  it('a close hands out no more buffered messages while its commit is on its way', async () => {
    const client = broker.connect();
    clients.push(client);
    const topic = await groupTopic(client, 5);
    const group = `${topic}-closing`;
    const consumer = client.consumer({ topics: [topic], group });
    expect((await consumer.next())!.offset).toBe(0n);
    expect((await consumer.next())!.offset).toBe(1n);
    // Offsets 2-4 came in the same batch and are buffered. The close's commit starts now (offset 1,
    // the message in hand); a read meanwhile gets nothing, so nothing is processed outside it.
    const closing = consumer.close();
    expect(await consumer.next()).toBeNull();
    await closing;
    expect(await client.admin.groupOffsets(group)).toEqual([{ topic, partition: 0, offset: 1n }]);
    const next = client.consumer({ topics: [topic], group });
    expect(await readOffsets(next, 4)).toEqual([1n, 2n, 3n, 4n]);
  });

  it('a close while the next read waits commits the last message: the next member repeats nothing', async () => {
    const client = broker.connect();
    clients.push(client);
    const topic = await groupTopic(client, 2);
    const group = `${topic}-waiting`;
    const consumer = client.consumer({ topics: [topic], group });
    expect((await consumer.next())!.offset).toBe(0n);
    expect((await consumer.next())!.offset).toBe(1n);
    // The application is done with offset 1 and waits for more: a clean hand-over.
    const waiting = consumer.next();
    await consumer.close();
    expect(await waiting).toBeNull();
    expect(await client.admin.groupOffsets(group)).toEqual([{ topic, partition: 0, offset: 2n }]);
    await client.producer().send({ topic, value: 'm2' });
    const next = client.consumer({ topics: [topic], group });
    expect(await readOffsets(next, 1)).toEqual([2n]);
  });
});
