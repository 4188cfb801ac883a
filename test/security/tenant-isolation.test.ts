// Tenant isolation on a real broker (embedded, port 0, SCRAM users): alice is in tenant acme, bob
// in tenant bravo, carol in no tenant, admin a super-user. Both tenants create a topic `orders`;
// each sees, reads, writes, describes, deletes and commits only its own, a crafted name with the
// separator stays inside the tenant, errors never show the internal prefix, carol cannot reach
// into a tenant's namespace, and the super-user sees every topic as stored.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/client/connect.js';
import { TcpTransport } from '../../src/client/tcp-transport.js';
import type { MemoryStreamerError } from '../../src/common/errors.js';
import { Broker } from '../../src/embedded/broker.js';
import { deriveCredential } from '../../src/security/credentials.js';
import { TenantStore } from '../../src/security/tenant-store.js';
import { UserStore } from '../../src/security/user-store.js';
import { useTempDir } from '../harness/temp-dir.js';
import { until } from '../harness/until.js';

const USERS = ['alice', 'bob', 'carol', 'admin'] as const;
type User = (typeof USERS)[number];

async function setUp(dataDir: string): Promise<void> {
  const users = await UserStore.open(dataDir);
  for (const name of USERS)
    await users.change({
      kind: 'add',
      name,
      credentials: { 'SCRAM-SHA-256': deriveCredential('SCRAM-SHA-256', `${name}-secret`, 4096) },
    });
  const tenants = await TenantStore.open(dataDir);
  await tenants.change({ kind: 'add', tenant: 'acme' });
  await tenants.change({ kind: 'add', tenant: 'bravo' });
  await tenants.change({ kind: 'add-principal', tenant: 'acme', principal: 'User:alice' });
  await tenants.change({ kind: 'add-principal', tenant: 'bravo', principal: 'User:bob' });
}

function transportAs(port: number, user: User): TcpTransport {
  return new TcpTransport({
    brokers: [{ host: '127.0.0.1', port }],
    sasl: { mechanism: 'SCRAM-SHA-256', username: user, password: `${user}-secret` },
  });
}

async function failure(promise: Promise<unknown>): Promise<MemoryStreamerError> {
  const outcome = await promise.then(
    () => null,
    (error: unknown) => error as MemoryStreamerError,
  );
  if (outcome === null) throw new Error('expected the request to be refused');
  return outcome;
}

async function produce(port: number, user: User, topic: string, value: string): Promise<void> {
  const client = await connect({
    brokers: `127.0.0.1:${port}`,
    sasl: { mechanism: 'SCRAM-SHA-256', username: user, password: `${user}-secret` },
  });
  try {
    const producer = client.producer();
    await producer.send({ topic, value: Buffer.from(value) });
    await producer.close();
  } finally {
    await client.close();
  }
}

describe('tenants on a broker with authentication on', () => {
  const dir = useTempDir('ms-tenants-', 'all');
  let broker: Broker;
  let port = 0;
  const as = {} as Record<User, TcpTransport>;
  const timeout = { timeoutMs: 10_000 };

  beforeAll(async () => {
    const dataDir = dir.path;
    await setUp(dataDir);
    broker = await Broker.start({
      dataDir,
      port: 0,
      auth: { mechanisms: ['SCRAM-SHA-256'], superUsers: ['User:admin'] },
    });
    port = broker.address!.port;
    for (const user of USERS) as[user] = transportAs(port, user);
    await as.alice.request('createTopic', { name: 'orders', partitions: 1 }, timeout);
    await as.bob.request('createTopic', { name: 'orders', partitions: 1 }, timeout);
    await produce(port, 'alice', 'orders', 'acme-message');
    await produce(port, 'bob', 'orders', 'bravo-message');
  });

  afterAll(async () => {
    for (const user of USERS) await as[user]?.close();
    await broker?.stop({ deadlineMs: 200 });
  });

  it('lets two tenants create the same name, each seeing only its own', async () => {
    const names = async (user: User) =>
      (await as[user].request('listTopics', {}, timeout)).topics.map((t) => t.name).sort();
    expect(await names('alice')).toEqual(['orders']);
    expect(await names('bob')).toEqual(['orders']);
    expect(await names('admin')).toEqual(['acme.orders', 'bravo.orders']);
    // carol (no tenant) sees the global namespace, which holds no tenant's topic.
    expect(await names('carol')).toEqual([]);
    const metadata = await as.alice.request('metadata', {}, timeout);
    expect(metadata.topics.map((t) => t.name)).toEqual(['orders']);
    const described = await as.bob.request('describeTopic', { name: 'orders' }, timeout);
    expect(described.topic.name).toBe('orders');
  });

  it("reads each tenant's own messages only", async () => {
    for (const [user, mine, theirs] of [
      ['alice', 'acme-message', 'bravo-message'],
      ['bob', 'bravo-message', 'acme-message'],
    ] as const) {
      const fetched = await as[user].request(
        'fetch',
        { topic: 'orders', partition: 0, offset: 0n, maxBytes: 1 << 20, maxWaitMs: 0 },
        timeout,
      );
      expect(fetched.batches.includes(Buffer.from(mine))).toBe(true);
      expect(fetched.batches.includes(Buffer.from(theirs))).toBe(false);
    }
  });

  it("pushes a subscriber its own tenant's messages only", async () => {
    for (const [user, mine, theirs] of [
      ['alice', 'acme-message', 'bravo-message'],
      ['bob', 'bravo-message', 'acme-message'],
    ] as const) {
      const pushed: Buffer[] = [];
      const subscription = await as[user].subscribe(
        { topic: 'orders', partition: 0, offset: 0n, credit: 1 << 20 },
        { onBatches: (chunks) => pushed.push(...chunks), onError: () => undefined },
        timeout,
      );
      await until(() => pushed.some((b) => b.includes(Buffer.from(mine))), { timeoutMs: 10_000 });
      expect(pushed.some((b) => b.includes(Buffer.from(theirs)))).toBe(false);
      await subscription.close();
    }
    const crafted = await failure(
      as.bob.subscribe(
        { topic: 'acme.orders', partition: 0, offset: 0n, credit: 1 << 20 },
        { onBatches: () => undefined, onError: () => undefined },
        timeout,
      ),
    );
    expect(crafted.codeName).toBe('UNKNOWN_TOPIC');
    expect(crafted.message).not.toContain('bravo.');
  });

  it("cannot produce to, fetch from, describe or delete the other tenant's topic by a crafted name", async () => {
    const crafted = 'acme.orders';
    const refusals = [
      await failure(as.bob.request('describeTopic', { name: crafted }, timeout)),
      await failure(
        as.bob.request(
          'fetch',
          { topic: crafted, partition: 0, offset: 0n, maxBytes: 1 << 20, maxWaitMs: 0 },
          timeout,
        ),
      ),
      await failure(as.bob.request('deleteTopic', { name: crafted }, timeout)),
      await failure(produce(port, 'bob', crafted, 'intruder')),
    ];
    for (const error of refusals) {
      expect(error.codeName).toBe('UNKNOWN_TOPIC');
      // The error names the topic as bob named it, never as it is stored (bravo.acme.orders).
      expect(error.message).not.toContain('bravo.');
    }
    const metadata = await as.bob.request('metadata', { topics: [crafted] }, timeout);
    expect(metadata.topics.map((t) => [t.name, t.error])).toEqual([[crafted, 'UNKNOWN_TOPIC']]);
    // acme's topic is untouched, and holds nothing of bob's.
    const stored = await as.admin.request('describeTopic', { name: 'acme.orders' }, timeout);
    expect(stored.partitions[0]!.highWatermark).toBe(1n);
  });

  it("keeps groups apart: a commit into a group of the same name stays in the committer's tenant", async () => {
    const member = async (user: User) =>
      as[user].request(
        'joinGroup',
        {
          groupId: 'billing',
          memberId: '',
          topics: ['orders'],
          sessionTimeoutMs: 10_000,
          strategy: 'range',
        },
        timeout,
      );
    const alice = await member('alice');
    const bob = await member('bob');
    expect(alice.assignment).toEqual([{ topic: 'orders', partitions: [0] }]);
    await as.alice.request(
      'commitOffsets',
      {
        groupId: 'billing',
        memberId: alice.memberId,
        generation: alice.generation,
        offsets: [{ topic: 'orders', partition: 0, offset: 1n }],
      },
      timeout,
    );
    // bob, in "his" billing group, names acme's topic through the separator: it is not his.
    const crafted = await failure(
      as.bob.request(
        'commitOffsets',
        {
          groupId: 'billing',
          memberId: bob.memberId,
          generation: bob.generation,
          offsets: [{ topic: 'acme.orders', partition: 0, offset: 99n }],
        },
        timeout,
      ),
    );
    expect(crafted.message).toContain('acme.orders/0 is not assigned');
    expect(crafted.message).not.toContain('bravo.');
    await as.bob.request(
      'commitOffsets',
      {
        groupId: 'billing',
        memberId: bob.memberId,
        generation: bob.generation,
        offsets: [{ topic: 'orders', partition: 0, offset: 0n }],
      },
      timeout,
    );
    const aliceOffsets = await as.alice.request('fetchOffsets', { groupId: 'billing' }, timeout);
    expect(aliceOffsets.offsets).toEqual([{ topic: 'orders', partition: 0, offset: 1n }]);
    const bobOffsets = await as.bob.request('fetchOffsets', { groupId: 'billing' }, timeout);
    expect(bobOffsets.offsets).toEqual([{ topic: 'orders', partition: 0, offset: 0n }]);
    const groups = (user: User) => as[user].request('listGroups', {}, timeout);
    expect((await groups('alice')).groups.map((g) => g.groupId)).toEqual(['billing']);
    expect((await groups('admin')).groups.map((g) => g.groupId).sort()).toEqual([
      'acme.billing',
      'bravo.billing',
    ]);
    expect((await groups('carol')).groups).toEqual([]);
    const described = await as.alice.request('describeGroup', { groupId: 'billing' }, timeout);
    expect(described.group.groupId).toBe('billing');
    expect(described.lag.map((l) => l.topic)).toEqual(['orders']);
  });

  it("refuses a principal without a tenant any name inside a tenant's namespace", async () => {
    for (const request of [
      as.carol.request('createTopic', { name: 'acme.stolen', partitions: 1 }, timeout),
      as.carol.request('describeTopic', { name: 'acme.orders' }, timeout),
      as.carol.request('fetchOffsets', { groupId: 'acme.billing' }, timeout),
    ]) {
      const error = await failure(request);
      expect(['INVALID_TOPIC_NAME', 'INVALID_GROUP_ID']).toContain(error.codeName);
      expect(error.message).toMatch(/belong to a tenant/);
    }
    // Its own topics are global names.
    await as.carol.request('createTopic', { name: 'carol-topic', partitions: 1 }, timeout);
    expect((await as.admin.request('listTopics', {}, timeout)).topics.map((t) => t.name)).toContain(
      'carol-topic',
    );
  });

  it("refuses a tenant's principal the cluster's administrative requests", async () => {
    const error = await failure(as.alice.request('configHistory', { topic: null }, timeout));
    expect(error.codeName).toBe('AUTHORIZATION_FAILED');
    expect(error.message).toMatch(/tenant acme/);
  });
});
