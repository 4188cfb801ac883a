// The authorization matrix on a real broker (embedded, port 0, SCRAM users, a temporary data
// directory): for every request type, on one open connection of User:alice, the request is refused
// with AUTHORIZATION_FAILED naming the operation and the resource when no entry allows it; allowed
// by a literal entry; refused again when a deny entry is added beside the allow; allowed by a prefix
// entry and by an entry for `*`; always allowed to the super-user. Every ACL change is made over the
// wire and applies to alice's open connection at once. Then: topic lists show only what may be
// described, a change to acls.json made offline applies within a second, a connection without
// authentication is User:ANONYMOUS, and a broker with neither a super-user nor an ACL does not start.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Admin } from '../../src/client/admin.js';
import { TcpTransport } from '../../src/client/tcp-transport.js';
import { MemoryStreamerError } from '../../src/common/errors.js';
import { Broker } from '../../src/embedded/broker.js';
import {
  AclAction,
  type AclEntry,
  aclAlterCommand,
  aclListCommand,
} from '../../src/protocol/commands/acl-commands.js';
import { encodeRecordBatch } from '../../src/protocol/record-batch.js';
import { FileAclStore } from '../../src/security/acl-store.js';
import type { AclDenial } from '../../src/security/authorizer.js';
import { deriveCredential } from '../../src/security/credentials.js';
import { UserStore } from '../../src/security/user-store.js';
import { startEmbeddedBroker } from '../harness/embedded.js';
import { tempDir, useTempDir } from '../harness/temp-dir.js';
import { until } from '../harness/until.js';

const OPTS = { timeoutMs: 10_000 };

async function addUser(dataDir: string, name: string): Promise<void> {
  const store = await UserStore.open(dataDir);
  await store.change({
    kind: 'add',
    name,
    credentials: { 'SCRAM-SHA-256': deriveCredential('SCRAM-SHA-256', `${name}-secret`) },
  });
}

function transportAs(port: number, user: string | null): TcpTransport {
  return new TcpTransport({
    brokers: [{ host: '127.0.0.1', port }],
    clientId: `authz-${user ?? 'anonymous'}`,
    ...(user !== null
      ? { sasl: { mechanism: 'SCRAM-SHA-256' as const, username: user, password: `${user}-secret` } }
      : {}),
  });
}

/** 'allowed' (answered, or refused for another reason than authorization), or the denial's message. */
async function outcome(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
    return 'allowed';
  } catch (error) {
    if (error instanceof MemoryStreamerError && error.codeName === 'AUTHORIZATION_FAILED')
      return error.message;
    if (error instanceof MemoryStreamerError) return 'allowed';
    throw error;
  }
}

type Resource = Pick<AclEntry, 'resourceType' | 'resourceName'>;
interface Case {
  request: string;
  operation: AclEntry['operation'];
  resource: Resource;
  run: (t: TcpTransport) => Promise<unknown>;
}

const topic = (name: string): Resource => ({ resourceType: 'topic', resourceName: name });
const group = (name: string): Resource => ({ resourceType: 'group', resourceName: name });
const CLUSTER: Resource = { resourceType: 'cluster', resourceName: 'cluster' };
const batch = () => encodeRecordBatch([{ value: Buffer.from('m') }]);
const member = { groupId: 'g1', memberId: 'm', generation: 1 };

const CASES: Case[] = [
  {
    request: 'createTopic',
    operation: 'create',
    resource: topic('fresh'),
    run: (t) => t.request('createTopic', { name: 'fresh', partitions: 1 }, OPTS),
  },
  {
    request: 'alterTopic',
    operation: 'alter',
    resource: topic('orders'),
    run: (t) => t.request('alterTopic', { name: 'orders' }, OPTS),
  },
  {
    request: 'deleteTopic',
    operation: 'delete',
    resource: topic('ghost'),
    run: (t) => t.request('deleteTopic', { name: 'ghost' }, OPTS),
  },
  {
    request: 'describeTopic',
    operation: 'describe',
    resource: topic('orders'),
    run: (t) => t.request('describeTopic', { name: 'orders' }, OPTS),
  },
  {
    request: 'metadata',
    operation: 'describe',
    resource: topic('orders'),
    run: (t) => t.request('metadata', { topics: ['orders'] }, OPTS),
  },
  {
    request: 'produce',
    operation: 'write',
    resource: topic('orders'),
    run: (t) => t.request('produce', { topic: 'orders', partition: 0, acks: 1, batch: batch() }, OPTS),
  },
  {
    request: 'fetch',
    operation: 'read',
    resource: topic('orders'),
    run: (t) =>
      t.request('fetch', { topic: 'orders', partition: 0, offset: 0n, maxBytes: 1024, maxWaitMs: 0 }, OPTS),
  },
  {
    request: 'listOffsets',
    operation: 'describe',
    resource: topic('orders'),
    run: (t) => t.request('listOffsets', { topic: 'orders', partition: 0, spec: 'latest' }, OPTS),
  },
  {
    request: 'readStream',
    operation: 'read',
    resource: topic('orders'),
    run: (t) =>
      t.request(
        'readStream',
        { topic: 'orders', key: Buffer.from('k'), fromSequence: 0, maxRecords: 1, maxWaitMs: 0 },
        OPTS,
      ),
  },
  {
    request: 'subscribe',
    operation: 'read',
    resource: topic('orders'),
    run: async (t) => {
      const sub = await t.subscribe(
        { topic: 'orders', partition: 0, offset: -2n, credit: 1024 },
        { onBatches() {}, onError() {} },
        OPTS,
      );
      await sub.close();
    },
  },
  {
    request: 'joinGroup',
    operation: 'read',
    resource: group('g1'),
    run: (t) =>
      t.request(
        'joinGroup',
        { groupId: 'g1', memberId: '', topics: [], sessionTimeoutMs: 10_000, strategy: 'range' },
        OPTS,
      ),
  },
  {
    request: 'heartbeat',
    operation: 'read',
    resource: group('g1'),
    run: (t) => t.request('heartbeat', member, OPTS),
  },
  {
    request: 'leaveGroup',
    operation: 'read',
    resource: group('g1'),
    run: (t) => t.request('leaveGroup', member, OPTS),
  },
  {
    request: 'commitOffsets',
    operation: 'read',
    resource: group('g1'),
    run: (t) => t.request('commitOffsets', { ...member, offsets: [] }, OPTS),
  },
  {
    request: 'fetchOffsets',
    operation: 'describe',
    resource: group('g1'),
    run: (t) => t.request('fetchOffsets', { groupId: 'g1' }, OPTS),
  },
  {
    request: 'describeGroup',
    operation: 'describe',
    resource: group('g1'),
    run: (t) => t.request('describeGroup', { groupId: 'g1' }, OPTS),
  },
  {
    request: 'findCoordinator',
    operation: 'describe',
    resource: group('g1'),
    run: (t) => t.request('findCoordinator', { groupId: 'g1' }, OPTS),
  },
  {
    request: 'initProducerId',
    operation: 'idempotent_write',
    resource: CLUSTER,
    run: (t) => t.request('initProducerId', {}, OPTS),
  },
  {
    request: 'configSet',
    operation: 'alter_configs',
    resource: CLUSTER,
    run: (t) => t.request('configSet', { settings: {} }, OPTS),
  },
  {
    request: 'configHistory',
    operation: 'describe_configs',
    resource: CLUSTER,
    run: (t) => t.request('configHistory', {}, OPTS),
  },
  {
    request: 'configRollback',
    operation: 'alter_configs',
    resource: CLUSTER,
    run: (t) => t.request('configRollback', { version: 999 }, OPTS),
  },
  {
    request: 'reassignPartitions',
    operation: 'alter',
    resource: CLUSTER,
    run: (t) => t.request('reassignPartitions', { partitions: [] }, OPTS),
  },
  {
    request: 'reassignmentStatus',
    operation: 'describe',
    resource: CLUSTER,
    run: (t) => t.request('reassignmentStatus', {}, OPTS),
  },
  {
    request: 'drainBroker',
    operation: 'alter',
    resource: CLUSTER,
    run: (t) => t.request('drainBroker', { brokerId: 99 }, OPTS),
  },
  {
    request: 'electLeaders',
    operation: 'alter',
    resource: CLUSTER,
    run: (t) => t.request('electLeaders', { topics: ['ghost'] }, OPTS),
  },
  {
    request: 'verifyPartition',
    operation: 'alter',
    resource: CLUSTER,
    run: (t) => t.request('verifyPartition', { topic: 'ghost', partition: -1, here: false }, OPTS),
  },
  {
    request: 'brokerHeartbeat',
    operation: 'cluster_action',
    resource: CLUSTER,
    run: (t) =>
      t.request(
        'brokerHeartbeat',
        { brokerId: 99, startedAtMs: 0, controllerEpoch: -1n, shuttingDown: false },
        OPTS,
      ),
  },
  {
    request: 'ACL_LIST',
    operation: 'describe',
    resource: CLUSTER,
    run: (t) => t.call(aclListCommand, {}, OPTS),
  },
  {
    request: 'ACL_ALTER',
    operation: 'alter',
    resource: CLUSTER,
    run: (t) =>
      t.call(
        aclAlterCommand,
        {
          action: AclAction.ADD,
          entries: [
            {
              principal: 'User:nobody',
              ...topic('x'),
              pattern: 'literal',
              operation: 'read',
              permission: 'allow',
            },
          ],
        },
        OPTS,
      ),
  },
];

describe('authorization matrix (SCRAM users, authz.enabled)', () => {
  const dir = useTempDir('ms-authz-', 'all');
  let broker: Broker;
  let admin: Admin;
  let adminTransport: TcpTransport;
  let alice: TcpTransport;
  const denials: AclDenial[] = [];

  beforeAll(async () => {
    for (const user of ['admin', 'alice']) await addUser(dir.path, user);
    broker = await Broker.start({
      dataDir: dir.path,
      port: 0,
      auth: { mechanisms: ['SCRAM-SHA-256'], superUsers: ['User:admin'], failureDelayMs: 10 },
      authz: { superUsers: ['User:admin'], onDenied: (d) => denials.push(d) },
    });
    adminTransport = transportAs(broker.address!.port, 'admin');
    admin = new Admin(adminTransport, 10_000, () => undefined);
    await admin.createTopic({ name: 'orders', partitions: 1 });
    await admin.createTopic({ name: 'pub-news', partitions: 1 });
    alice = transportAs(broker.address!.port, 'alice');
  });

  afterAll(async () => {
    await alice?.close();
    await adminTransport?.close();
    await broker?.stop({ deadlineMs: 200 });
  });

  const entryFor = (c: Case, fields: Partial<AclEntry> = {}): AclEntry => ({
    principal: 'User:alice',
    ...c.resource,
    pattern: 'literal',
    operation: c.operation,
    permission: 'allow',
    ...fields,
  });

  it.each(CASES.map((c) => [c.request, c] as const))('%s', async (_name, c) => {
    const what =
      c.resource.resourceType === 'cluster'
        ? 'cluster'
        : `${c.resource.resourceType}:${c.resource.resourceName}`;
    const absent = await outcome(() => c.run(alice));
    expect(absent).toBe(`not authorized: User:alice may not ${c.operation} ${what}: no entry allows it`);
    expect(denials.at(-1)).toMatchObject({ principal: 'User:alice', operation: c.operation });

    const allow = entryFor(c);
    await admin.createAcls([allow]);
    expect(await outcome(() => c.run(alice))).toBe('allowed');

    const deny = entryFor(c, { permission: 'deny' });
    await admin.createAcls([deny]);
    expect(await outcome(() => c.run(alice))).toMatch(
      new RegExp(
        `^not authorized: User:alice may not ${c.operation} ${what}: denied by the entry "deny User:alice ${c.operation} ${what}"$`,
      ),
    );
    await admin.deleteAcls([allow, deny]);
    expect(await outcome(() => c.run(alice))).toMatch(/no entry allows it/);

    // Prefix (the cluster has one literal name: the `*` principal instead) and `*` principal.
    const others =
      c.resource.resourceType === 'cluster'
        ? [entryFor(c, { principal: '*' })]
        : [
            entryFor(c, { resourceName: c.resource.resourceName.slice(0, 2), pattern: 'prefix' }),
            entryFor(c, { principal: '*' }),
            entryFor(c, { resourceName: '*' }),
          ];
    for (const other of others) {
      await admin.createAcls([other]);
      expect(await outcome(() => c.run(alice)), JSON.stringify(other)).toBe('allowed');
      await admin.deleteAcls([other]);
    }

    expect(await outcome(() => c.run(adminTransport))).toBe('allowed');
    // What ACL_ALTER added for User:nobody goes again.
    await admin
      .deleteAcls((await admin.listAcls()).filter((e) => e.principal === 'User:nobody'))
      .catch(() => 0);
  });

  it('lists only the topics the principal may describe; naming one it may not is refused', async () => {
    await admin.createAcls([
      {
        principal: 'User:alice',
        ...topic('pub-'),
        pattern: 'prefix',
        operation: 'read',
        permission: 'allow',
      },
    ]);
    const listed = await alice.request('listTopics', {}, OPTS);
    expect(listed.topics.map((t) => t.name)).toEqual(['pub-news']);
    const metadata = await alice.request('metadata', {}, OPTS);
    expect(metadata.topics.map((t) => t.name)).toEqual(['pub-news']);
    expect(await outcome(() => alice.request('metadata', { topics: ['pub-news', 'orders'] }, OPTS))).toMatch(
      /may not describe topic:orders/,
    );
    // A topic that does not exist is refused the same way as one that does: nothing is learnt.
    expect(await outcome(() => alice.request('describeTopic', { name: 'nothing-here' }, OPTS))).toMatch(
      /may not describe topic:nothing-here/,
    );
    const all = await adminTransport.request('listTopics', {}, OPTS);
    expect(all.topics.map((t) => t.name).sort()).toEqual(expect.arrayContaining(['orders', 'pub-news']));
  });

  it('applies a change made offline to acls.json within a second', async () => {
    const store = await FileAclStore.open(dir.path);
    const entry: AclEntry = {
      principal: 'User:alice',
      ...topic('orders'),
      pattern: 'literal',
      operation: 'describe',
      permission: 'allow',
    };
    expect(await outcome(() => alice.request('describeTopic', { name: 'orders' }, OPTS))).toMatch(/no entry/);
    await store.change({ kind: 'add', entries: [entry] });
    await until(
      async () =>
        (await outcome(() => alice.request('describeTopic', { name: 'orders' }, OPTS))) === 'allowed',
      {
        timeoutMs: 10_000,
      },
    );
    await store.change({ kind: 'remove', entries: [entry] });
  });
});

describe('authorization without authentication, and its start', () => {
  it('authorizes a connection that did not authenticate as User:ANONYMOUS', async () => {
    const dataDir = await tempDir('ms-authz-anon-');
    const store = await FileAclStore.open(dataDir);
    await store.change({
      kind: 'add',
      entries: [
        {
          principal: 'User:ANONYMOUS',
          ...topic('pub-'),
          pattern: 'prefix',
          operation: 'all',
          permission: 'allow',
        },
      ],
    });
    const broker = await startEmbeddedBroker({ dataDir, port: 0, authz: {} });
    const anonymous = transportAs(broker.address!.port, null);
    try {
      await anonymous.request('createTopic', { name: 'pub-a', partitions: 1 }, OPTS);
      expect(
        await outcome(() => anonymous.request('createTopic', { name: 'private', partitions: 1 }, OPTS)),
      ).toBe('not authorized: User:ANONYMOUS may not create topic:private: no entry allows it');
      expect((await anonymous.request('listTopics', {}, OPTS)).topics.map((t) => t.name)).toEqual(['pub-a']);
      expect(await outcome(() => anonymous.call(aclListCommand, {}, OPTS))).toMatch(
        /may not describe cluster/,
      );
    } finally {
      await anonymous.close();
    }
  });

  it('does not start with neither a super-user nor an ACL (fail closed)', async () => {
    const dataDir = await tempDir('ms-authz-empty-');
    await expect(startEmbeddedBroker({ dataDir, port: 0, authz: {} })).rejects.toThrow(
      /authz.enabled = true but there is no super-user \(authz.super_users\) and .*acls.json holds no ACL/,
    );
  });

  it('answers ACL requests with AUTHORIZATION_DISABLED on a broker without authorization', async () => {
    const broker = await startEmbeddedBroker({ port: 0 });
    const t = transportAs(broker.address!.port, null);
    try {
      await expect(t.call(aclListCommand, {}, OPTS)).rejects.toMatchObject({
        codeName: 'AUTHORIZATION_DISABLED',
      });
      // Without authorization every request is served as before.
      await t.request('createTopic', { name: 'open', partitions: 1 }, OPTS);
    } finally {
      await t.close();
    }
  });
});
