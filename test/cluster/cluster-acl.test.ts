// Authorization and tenants in a cluster, for real: two brokers of one cluster on a real etcd,
// SCRAM for clients and TLS client certificates between brokers, authz on with the ACLs and the
// tenant registry in etcd (the options `serve` derives from its configuration: authzFrom,
// tenantsFrom). An ACL added through broker 1 allows a request on broker 2; removed through broker
// 2, the same request is denied on broker 1 on a connection that stayed open; an entry written to
// etcd offline (as `acl add --cluster` does) applies on both running brokers. A tenant created
// through broker 1 holds its principal to its topics on broker 2, and one tenant never sees the
// other's topics on any broker. A quota changed through broker 1 holds on broker 2. A broker that
// stops closes the user, ACL and tenant stores it opened in etcd. A record in etcd no broker wrote
// is skipped with a warning in every broker's log.

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerNode } from '../../src/broker/broker-node.js';
import { loadConfig } from '../../src/broker/config/load-config.js';
import { authzFrom, tenantsFrom } from '../../src/cli/broker-options.js';
import { Admin } from '../../src/client/admin.js';
import { TcpTransport } from '../../src/client/tcp-transport.js';
import { setUserPassword } from '../../src/client/user-admin.js';
import { clusterPart } from '../../src/cluster/cluster-node.js';
import { parseClusterUrl } from '../../src/cluster/control-plane/cluster-url.js';
import { clusterPrefix } from '../../src/cluster/control-plane/metadata-keys.js';
import { MemoryStreamerError } from '../../src/common/errors.js';
import type { BrokerLogger } from '../../src/metrics/logger.js';
import { tenantAlterCommand } from '../../src/protocol/commands/tenant-commands.js';
import type { AclEntry } from '../../src/security/acl.js';
import type { BrokerAuthOptions } from '../../src/security/broker-authenticator.js';
import { deriveCredential } from '../../src/security/credentials.js';
import { EtcdAclStore } from '../../src/security/etcd-acl-store.js';
import { etcdClient } from '../../src/security/etcd-client.js';
import { EtcdUserStore } from '../../src/security/etcd-user-store.js';
import type { TenantChange } from '../../src/security/tenant-store.js';
import { makeCertificates, opensslAvailable, type TestCertificates } from '../broker/server/helpers/certs.js';
import { type EtcdProcess, etcdAvailable, freePort, startEtcd } from '../harness/etcd.js';
import { makeTempDir, removeTempDir } from '../harness/temp-dir.js';
import { until } from '../harness/until.js';

let etcd: EtcdProcess;
let root: string;
let certs: TestCertificates;
let url: string;
const nodes: BrokerNode[] = [];
const transports: TcpTransport[] = [];
/** Per broker id: how often each store it opened was closed. */
const closes = new Map<number, { users: number; acls: number; tenants: number }>();

/** The store, its close() counted for `brokerId`. */
function counted<T extends { close(): Promise<void> }>(
  brokerId: number,
  kind: 'users' | 'acls' | 'tenants',
  store: T,
): T {
  const close = store.close.bind(store);
  store.close = async () => {
    const counts = closes.get(brokerId)!;
    counts[kind]++;
    await close();
  };
  return store;
}

/** Per broker id: the warnings its log got (store and reason of the etcd registries' ones). */
const warnings = new Map<number, Array<{ message: string; store?: unknown; reason?: unknown }>>();

function warningsOf(brokerId: number): BrokerLogger {
  const got: Array<{ message: string; store?: unknown; reason?: unknown }> = [];
  warnings.set(brokerId, got);
  return {
    info: () => undefined,
    debug: () => undefined,
    error: () => undefined,
    warn: (fields, message) => got.push({ message, store: fields.store, reason: fields.reason }),
  };
}

const PASSWORDS: Record<string, string> = {
  admin: 'admin-secret',
  alice: 'alice-secret',
  bob: 'bob-secret',
  carol: 'carol-secret',
};

/** A connection to one broker as `username` (SCRAM over TLS), authenticated by its first request. */
function transportTo(node: BrokerNode, username: string): TcpTransport {
  const transport = new TcpTransport({
    brokers: [{ host: '127.0.0.1', port: node.address!.port }],
    clientId: `test-${username}`,
    connectTimeoutMs: 5000,
    tls: { ca: certs.ca },
    sasl: { mechanism: 'SCRAM-SHA-256', username, password: PASSWORDS[username]! },
  });
  transports.push(transport);
  return transport;
}

function adminOf(transport: TcpTransport): Admin {
  return new Admin(transport, 30_000, () => undefined);
}

async function tenantChange(node: BrokerNode, change: TenantChange): Promise<void> {
  await transportTo(node, 'admin').call(tenantAlterCommand, { change }, { timeoutMs: 10_000 });
}

/** The error code of a request, or 'ok'. */
async function outcome(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
    return 'ok';
  } catch (error) {
    if (error instanceof MemoryStreamerError) return error.codeName;
    throw error;
  }
}

async function topicNames(transport: TcpTransport): Promise<string[]> {
  const { topics } = await transport.request('listTopics', {}, { timeoutMs: 10_000 });
  return topics.map((t) => t.name).sort();
}

/**
 * Creates a topic as `username`, retrying while the cluster is not ready for it. Topics are created
 * on the controller (NOT_CONTROLLER elsewhere), so each broker is tried in turn.
 */
async function createTopic(username: string, name: string, replicationFactor: number): Promise<void> {
  let last = '';
  let turn = 0;
  await until(async () => {
    const node = nodes[turn++ % nodes.length]!;
    const result = await outcome(() =>
      transportTo(node, username).request(
        'createTopic',
        { name, partitions: 1, replicationFactor },
        { timeoutMs: 10_000 },
      ),
    );
    last = result;
    if (result === 'ok' || result === 'TOPIC_ALREADY_EXISTS') return true;
    if (result === 'AUTHORIZATION_FAILED' || result === 'TENANT_TOPIC_QUOTA_EXCEEDED')
      throw new Error(`createTopic ${name}: ${result}`);
    return null;
  }).catch((error: unknown) => {
    throw new Error(`createTopic ${name}: ${last} (${(error as Error).message})`);
  });
}

const aliceDescribes: AclEntry = {
  principal: 'User:alice',
  resourceType: 'topic',
  resourceName: 'guarded',
  pattern: 'literal',
  operation: 'describe',
  permission: 'allow',
};

describe.skipIf(!etcdAvailable() || !opensslAvailable())('authorization and tenants in a cluster', () => {
  beforeAll(async () => {
    root = await makeTempDir('ms-cluster-acl-');
    certs = await makeCertificates(await makeTempDir('ms-cluster-acl-certs-'));
    etcd = await startEtcd();
    url = `etcd://${etcd.endpoint.replace('http://', '')}/guarded`;
    const address = parseClusterUrl(url);
    const users = await EtcdUserStore.open({ address, prefix: clusterPrefix(address.name), url });
    await users.change({
      kind: 'add',
      name: 'admin',
      credentials: { 'SCRAM-SHA-256': deriveCredential('SCRAM-SHA-256', PASSWORDS.admin!) },
    });
    await users.close();
    const config = await loadConfig({
      file: null,
      env: {},
      flags: {
        'cluster.etcd': url,
        'cluster.broker_id': 1,
        'cluster.advertise': '127.0.0.1:9999',
        'auth.mechanisms': 'SCRAM-SHA-256,mtls',
        'cluster.broker_principals': 'User:broker',
        'authz.enabled': 'true',
        'authz.super_users': 'User:admin',
      },
    });
    const authz = authzFrom(config)!;
    const openTenants = tenantsFrom(config)!;
    expect(authz.brokerPrincipals).toEqual(['User:broker']);
    for (const brokerId of [1, 2]) {
      closes.set(brokerId, { users: 0, acls: 0, tenants: 0 });
      const auth: BrokerAuthOptions = {
        mechanisms: ['SCRAM-SHA-256', 'mtls'],
        superUsers: ['User:admin'],
        brokerPrincipals: ['User:broker'],
        failureDelayMs: 0,
        maxFailuresPerMinute: 1000,
        openUsers: async (_dataDir, onResync) =>
          counted(
            brokerId,
            'users',
            await EtcdUserStore.open({
              address,
              prefix: clusterPrefix(address.name),
              url,
              ...(onResync !== undefined ? { onResync } : {}),
            }),
          ),
      };
      const port = await freePort();
      nodes.push(
        await BrokerNode.start(
          {
            dataDir: join(root, `b${brokerId}`),
            port,
            brokerId,
            memoryTrim: false,
            raiseFileLimit: false,
            tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca, clientAuth: 'request' },
            auth,
            authz: {
              ...authz,
              openStore: async (onResync) => counted(brokerId, 'acls', await authz.openStore!(onResync)),
            },
            openTenants: async (onResync) => counted(brokerId, 'tenants', await openTenants(onResync)),
            logger: warningsOf(brokerId),
          },
          [clusterPart({ cluster: url, brokerId, advertise: `127.0.0.1:${port}`, leaseTtlSeconds: 2 })],
        ),
      );
    }
    const admin = transportTo(nodes[0]!, 'admin');
    for (const name of ['alice', 'bob', 'carol'])
      await setUserPassword(admin, 'add', name, PASSWORDS[name]!, ['SCRAM-SHA-256']);
    // Replicated on both brokers (RF 2): both can describe it once allowed.
    await createTopic('admin', 'guarded', 2);
  }, 60_000);

  afterAll(async () => {
    for (const transport of transports) await transport.close().catch(() => undefined);
    for (const node of nodes) await node.stop({ deadlineMs: 500 });
    await etcd?.stop();
    if (root !== undefined) await removeTempDir(root);
    if (certs !== undefined) await removeTempDir(certs.dir);
  });

  it('applies an ACL added through one broker on the other, and its removal on open connections', async () => {
    const describeOn = (transport: TcpTransport) =>
      outcome(() => transport.request('describeTopic', { name: 'guarded' }, { timeoutMs: 10_000 }));
    // Both connections open before any change, and kept open throughout.
    const onOne = transportTo(nodes[0]!, 'alice');
    const onTwo = transportTo(nodes[1]!, 'alice');
    expect(await describeOn(onOne)).toBe('AUTHORIZATION_FAILED');
    expect(await describeOn(onTwo)).toBe('AUTHORIZATION_FAILED');

    expect(await adminOf(transportTo(nodes[0]!, 'admin')).createAcls([aliceDescribes])).toBe(1);
    await until(async () => (await describeOn(onTwo)) === 'ok', { what: 'broker 2 allows alice' });
    await until(async () => (await describeOn(onOne)) === 'ok', { what: 'broker 1 allows alice' });
    expect(await adminOf(transportTo(nodes[1]!, 'admin')).listAcls()).toEqual([aliceDescribes]);

    expect(await adminOf(transportTo(nodes[1]!, 'admin')).deleteAcls([aliceDescribes])).toBe(1);
    await until(async () => (await describeOn(onOne)) === 'AUTHORIZATION_FAILED', {
      what: 'broker 1 denies alice on her open connection',
    });
    expect(await describeOn(onTwo)).toBe('AUTHORIZATION_FAILED');
  });

  it('applies an entry added offline in etcd (as acl add --cluster does) on every running broker', async () => {
    const address = parseClusterUrl(url);
    const offline = await EtcdAclStore.open({ address, prefix: clusterPrefix(address.name), url });
    const carolDescribes: AclEntry = { ...aliceDescribes, principal: 'User:carol' };
    const connections = nodes.map((node) => transportTo(node, 'carol'));
    const describeOn = (transport: TcpTransport) =>
      outcome(() => transport.request('describeTopic', { name: 'guarded' }, { timeoutMs: 10_000 }));
    try {
      for (const connection of connections) expect(await describeOn(connection)).toBe('AUTHORIZATION_FAILED');
      await offline.change({ kind: 'add', entries: [carolDescribes] });
      for (const connection of connections)
        await until(async () => (await describeOn(connection)) === 'ok', { what: 'carol allowed' });
      await offline.change({ kind: 'remove', entries: [carolDescribes] });
      for (const connection of connections)
        await until(async () => (await describeOn(connection)) === 'AUTHORIZATION_FAILED', {
          what: 'carol denied again',
        });
    } finally {
      await offline.close();
    }
  });

  it("keeps a tenant created through one broker to its own topics on the other, and out of another tenant's sight", async () => {
    await tenantChange(nodes[0]!, { kind: 'add', tenant: 'acme' });
    await tenantChange(nodes[0]!, { kind: 'add-principal', tenant: 'acme', principal: 'User:alice' });
    await tenantChange(nodes[1]!, { kind: 'add', tenant: 'bravo' });
    await tenantChange(nodes[1]!, { kind: 'add-principal', tenant: 'bravo', principal: 'User:bob' });
    // Both may do everything with topics: what they see is their tenant's namespace.
    const all = (principal: string): AclEntry => ({
      principal,
      resourceType: 'topic',
      resourceName: '*',
      pattern: 'literal',
      operation: 'all',
      permission: 'allow',
    });
    await adminOf(transportTo(nodes[0]!, 'admin')).createAcls([all('User:alice'), all('User:bob')]);

    // alice, on broker 2 (the tenant was created through broker 1), sees acme's empty namespace
    // (not the global topic guarded); the topics she and bob create are their tenants'.
    const alice = transportTo(nodes[1]!, 'alice');
    await until(async () => (await topicNames(alice)).length === 0, { what: 'alice sees acme only' });
    await createTopic('alice', 'orders', 1);
    await createTopic('bob', 'orders', 1);
    await createTopic('bob', 'payments', 1);

    const admin = transportTo(nodes[0]!, 'admin');
    await until(
      async () => {
        const names = await topicNames(admin);
        return names.includes('acme.orders') && names.includes('bravo.payments') ? names : null;
      },
      { what: 'the admin sees both tenants topics' },
    );
    for (const node of nodes) {
      await until(async () => (await topicNames(transportTo(node, 'alice'))).join() === 'orders', {
        what: 'alice sees only acme.orders, as orders',
      });
      await until(async () => (await topicNames(transportTo(node, 'bob'))).join() === 'orders,payments', {
        what: "bob sees only bravo's topics",
      });
      // alice naming bravo's topic reaches acme.bravo.orders, which does not exist.
      expect(
        await outcome(() =>
          transportTo(node, 'alice').request(
            'describeTopic',
            { name: 'bravo.orders' },
            { timeoutMs: 10_000 },
          ),
        ),
      ).not.toBe('ok');
    }

    // A topic quota counts the tenant's topics in the whole cluster, not the copies on the
    // controller (with one copy each, bravo's two topics may sit on different brokers).
    await tenantChange(nodes[1]!, { kind: 'set-quota', tenant: 'bravo', quota: { topics: 2 } });
    await until(
      async () => {
        // Topics are created on the controller: the others answer NOT_CONTROLLER.
        const results = [];
        for (const node of nodes)
          results.push(
            await outcome(() =>
              transportTo(node, 'bob').request(
                'createTopic',
                { name: 'refunds', partitions: 1, replicationFactor: 1 },
                { timeoutMs: 10_000 },
              ),
            ),
          );
        if (results.includes('ok')) throw new Error(`bravo's third topic was created: ${results.join()}`);
        return results.includes('TENANT_TOPIC_QUOTA_EXCEEDED');
      },
      { what: 'a third topic of bravo refused' },
    );
  });

  it('holds a principal on one broker to a quota set through the other', async () => {
    // carol has no quota yet: two connections to broker 2 are fine.
    const first = transportTo(nodes[1]!, 'carol');
    const second = transportTo(nodes[1]!, 'carol');
    expect(await outcome(() => first.request('listTopics', {}, { timeoutMs: 10_000 }))).toBe('ok');
    expect(await outcome(() => second.request('listTopics', {}, { timeoutMs: 10_000 }))).toBe('ok');
    await second.close();

    await tenantChange(nodes[0]!, { kind: 'set-quota', principal: 'User:carol', quota: { connections: 1 } });
    await until(
      async () => {
        const third = transportTo(nodes[1]!, 'carol');
        const result = await outcome(() => third.request('listTopics', {}, { timeoutMs: 10_000 }));
        await third.close();
        return result === 'CONNECTION_QUOTA_EXCEEDED';
      },
      { what: 'broker 2 refuses a second connection of carol' },
    );
    expect(await outcome(() => first.request('listTopics', {}, { timeoutMs: 10_000 }))).toBe('ok');
  });

  it('logs on every broker a record in etcd that its registries skip, and keeps serving', async () => {
    const writer = etcdClient({ endpoints: [etcd.endpoint] });
    try {
      const store = writer.namespace(clusterPrefix('guarded'));
      await store.put('users/mallory').value('{ not json');
      await store.put(`acls/${'0'.repeat(64)}`).value('{ "principal": 7 }');
      for (const brokerId of [1, 2])
        await until(
          () => {
            const stores = new Set((warnings.get(brokerId) ?? []).map((warning) => warning.store));
            return stores.has('users') && stores.has('acls');
          },
          { what: `broker ${brokerId} logs the skipped user and ACL` },
        );
      const logged = warnings.get(1)!.find((warning) => warning.store === 'users')!;
      expect(logged.message).toBe('a registry in etcd was read again or skipped a record');
      expect(String(logged.reason)).toContain('user mallory in etcd is not valid, ignored');
      // The other users still authenticate.
      expect(
        await outcome(() => transportTo(nodes[1]!, 'alice').request('listTopics', {}, { timeoutMs: 10_000 })),
      ).toBe('ok');
    } finally {
      writer.close();
    }
  });

  it('closes the user, ACL and tenant stores a broker opened when it stops', async () => {
    expect(closes.get(2)).toEqual({ users: 0, acls: 0, tenants: 0 });
    await nodes[1]!.stop({ deadlineMs: 500 });
    expect(closes.get(2)).toEqual({ users: 1, acls: 1, tenants: 1 });
  });
});
