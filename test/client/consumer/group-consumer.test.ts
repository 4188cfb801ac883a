// A group member whose group state the broker lost (a restart on the same data directory: the
// members are gone, the committed offsets are kept; what a member meets when its group's
// coordinator moves to another broker) joins again by itself and reads on from the committed
// offsets, losing nothing; a commit refused meanwhile says so clearly. Real broker, TCP client.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Broker } from '../../../src/embedded/broker.js';
import { type Client, type Consumer, connect, type Message } from '../../../src/index.js';
import { useTempDir } from '../../harness/temp-dir.js';
import { until } from '../../harness/until.js';

const scratch = useTempDir('ms-group-consumer-');
let broker: Broker;
let clients: Client[] = [];

beforeEach(async () => {
  broker = await Broker.start({ dataDir: scratch.path, port: 0 });
});
afterEach(async () => {
  await Promise.all(clients.map((client) => client.close()));
  clients = [];
  await broker.stop();
});

async function tcpClient(): Promise<Client> {
  const client = await connect({ brokers: [`127.0.0.1:${broker.address!.port}`] });
  clients.push(client);
  return client;
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A new broker on the same port and data directory: committed offsets survive, members do not. */
async function restartBroker(downMs: number): Promise<void> {
  const port = broker.address!.port;
  await broker.stop();
  await delay(downMs);
  broker = await Broker.start({ dataDir: scratch.path, port });
}

async function produce(client: Client, topic: string, values: string[]): Promise<void> {
  await client.producer().sendMany(values.map((value, i) => ({ topic, key: `k${i}`, value })));
}

const names = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}${i}`);

/** Every delivery, in order, and which offsets of each partition came after a point in time. */
class Deliveries {
  readonly values = new Map<string, number>();
  readonly offsetsAfterMark = new Map<number, Set<bigint>>();
  private marked = false;

  record(message: Message | null): void {
    if (message === null) throw new Error('the consumer closed');
    const value = message.value!.toString();
    this.values.set(value, (this.values.get(value) ?? 0) + 1);
    if (!this.marked) return;
    const offsets = this.offsetsAfterMark.get(message.partition) ?? new Set<bigint>();
    offsets.add(message.offset);
    this.offsetsAfterMark.set(message.partition, offsets);
  }

  mark(): void {
    this.marked = true;
  }

  /** Reads until every one of `values` was delivered, with a deadline on each message. */
  async readAll(consumer: Consumer, values: string[]): Promise<void> {
    while (values.some((v) => !this.values.has(v))) {
      const missing = values.filter((v) => !this.values.has(v)).length;
      this.record(await within(consumer.next(), 20_000, `the next message (${missing} not read yet)`));
    }
  }
}

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not within ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until the restarted broker's group holds one member that owns every partition. */
async function rejoined(client: Client, group: string, partitions: number): Promise<void> {
  await until(async () => {
    const described = await client.admin.describeGroup(group);
    const owned = described.members.flatMap((m) => m.assignment.flatMap((a) => a.partitions));
    return described.members.length === 1 && owned.length === partitions ? true : null;
  }, 20_000);
}

/** Waits until the group has two members that own every partition between them, each some. */
async function sharedByTwo(client: Client, group: string, partitions: number): Promise<void> {
  await until(async () => {
    const described = await client.admin.describeGroup(group);
    const owned = described.members.flatMap((m) => m.assignment.flatMap((a) => a.partitions));
    const each = described.members.every((m) => m.assignment.length > 0);
    return described.members.length === 2 && each && owned.length === partitions ? true : null;
  }, 20_000);
}

describe('a group member whose coordinator lost the group', () => {
  it.each(['range', 'cooperative-sticky'] as const)(
    'with %s assignment, rides out the outage, joins again by itself and reads on from the committed offsets',
    async (assignment) => {
      const admin = await tcpClient();
      await admin.admin.createTopic({ name: 'orders', partitions: 2 });
      const before = names('o', 100);
      await produce(admin, 'orders', before);

      const client = await tcpClient();
      const consumer = client.consumer({
        topics: ['orders'],
        group: 'shipping',
        sessionTimeoutMs: 3000,
        autoCommitIntervalMs: 200,
        assignment,
      });
      const deliveries = new Deliveries();
      for (let i = 0; i < 60; i++) deliveries.record(await consumer.next());
      await consumer.commit();
      // Delivered, never committed: these come again after the member lost its partitions.
      for (let i = 0; i < 20; i++) deliveries.record(await consumer.next());

      const committed = await admin.admin.groupOffsets('shipping');
      expect(committed.reduce((n, o) => n + o.offset, 0n)).toBeGreaterThanOrEqual(60n);

      // The broker goes away; the application reads on, and its reads meet an auto-commit that
      // falls due while nothing answers.
      const port = broker.address!.port;
      await broker.stop();
      deliveries.mark();
      await delay(300);
      const after = names('p', 50);
      const reading = deliveries.readAll(consumer, [...before, ...after]);
      reading.catch(() => undefined); // awaited below; a failure must not surface as unhandled first
      await delay(500);
      broker = await Broker.start({ dataDir: scratch.path, port });
      await produce(admin, 'orders', after);
      await reading;
      await rejoined(admin, 'shipping', 2);

      // Nothing lost: every offset from the committed one on was delivered after the restart.
      const ends = (await admin.admin.describeTopic('orders')).partitions;
      for (const { partition, offset } of committed) {
        const end = ends.find((p) => p.partition === partition)!;
        const seen = deliveries.offsetsAfterMark.get(partition) ?? new Set<bigint>();
        for (let o = offset; o < end.logEndOffset; o++) expect(seen.has(o), `${partition}/${o}`).toBe(true);
      }
      await consumer.commit();
      const lag = (await admin.admin.describeGroup('shipping')).lag;
      expect(lag.reduce((n, l) => n + l.lag, 0n)).toBe(0n);
    },
    60_000,
  );

  it('joins again when the broker no longer knows the group at all, and can commit again', async () => {
    const admin = await tcpClient();
    await admin.admin.createTopic({ name: 'events', partitions: 2 });
    const before = names('e', 40);
    await produce(admin, 'events', before);
    const client = await tcpClient();
    // Never committed: the restarted broker has no trace of the group (UNKNOWN_GROUP).
    const consumer = client.consumer({
      topics: ['events'],
      group: 'audit',
      sessionTimeoutMs: 3000,
      autoCommit: false,
    });
    const deliveries = new Deliveries();
    for (let i = 0; i < 25; i++) deliveries.record(await consumer.next());

    await restartBroker(0);
    const after = names('f', 20);
    await produce(admin, 'events', after);
    // No read is needed for the member to notice and join again.
    await rejoined(admin, 'audit', 2);
    // With nothing committed, the group starts from `from` (earliest): everything comes again.
    await new Deliveries().readAll(consumer, [...before, ...after]);
    await consumer.commit();
    expect((await admin.admin.groupOffsets('audit')).reduce((n, o) => n + o.offset, 0n)).toBe(60n);
  }, 60_000);

  it('says clearly that a commit was refused because the member is out of the group, then reads on from the committed offsets', async () => {
    const admin = await tcpClient();
    await admin.admin.createTopic({ name: 'jobs', partitions: 1 });
    await produce(admin, 'jobs', names('j', 30));
    const client = await tcpClient();
    const consumer = client.consumer({
      topics: ['jobs'],
      group: 'workers',
      sessionTimeoutMs: 3000,
      autoCommit: false,
    });
    const deliveries = new Deliveries();
    for (let i = 0; i < 10; i++) deliveries.record(await consumer.next());
    await consumer.commit();
    for (let i = 0; i < 5; i++) deliveries.record(await consumer.next());

    await restartBroker(0);
    const refused = await consumer.commit().then(
      () => null,
      (error: unknown) => error,
    );
    expect(refused).toMatchObject({ codeName: 'UNKNOWN_MEMBER' });
    expect((refused as Error).message).toMatch(/not committed: this member is out of the group/);
    expect((refused as Error).message).toMatch(/joins again and reads on from the committed offsets/);

    // The next read rejoins: the first message is the one at the committed offset, 10.
    const next = await within(consumer.next(), 20_000, 'the first message after the rejoin');
    expect(next).toMatchObject({ partition: 0, offset: 10n });
    expect(next!.value!.toString()).toBe('j10');
  }, 60_000);

  it('two members that both lost their membership join again, share the partitions, and lose nothing', async () => {
    const admin = await tcpClient();
    await admin.admin.createTopic({ name: 'payments', partitions: 4 });
    const before = names('a', 400);
    const options = {
      topics: ['payments'],
      group: 'billing',
      sessionTimeoutMs: 3000,
      autoCommitIntervalMs: 100,
    };
    const members = [(await tcpClient()).consumer(options), (await tcpClient()).consumer(options)];
    const deliveries = new Deliveries();
    const reads = new Map<Consumer, number>(members.map((m) => [m, 0]));
    let stop = false;
    const loops = members.map(async (member) => {
      while (!stop) {
        const message = await member.next();
        deliveries.record(message);
        reads.set(member, reads.get(member)! + 1);
        // Slow enough that work is left when the broker goes away.
        await delay(5);
      }
    });
    for (const loop of loops) loop.catch(() => undefined);
    await sharedByTwo(admin, 'billing', 4);
    await produce(admin, 'payments', before);
    await until(async () => ([...reads.values()].every((n) => n > 10) ? true : null), 20_000);

    await restartBroker(300);
    const after = names('b', 100);
    await produce(admin, 'payments', after);
    await until(
      async () => ([...before, ...after].every((v) => deliveries.values.has(v)) ? true : null),
      30_000,
    );
    await sharedByTwo(admin, 'billing', 4);
    stop = true;
    // Wake the loops blocked in next() so they see `stop`.
    await Promise.all(members.map((member) => member.close()));
    await Promise.all(loops.map((loop) => loop.catch(() => undefined)));
  }, 60_000);
});
