// Authentication in a cluster, for real: three brokers on a real etcd, SCRAM for clients and TLS
// client certificates between brokers (mtls, CN=broker is the broker principal), the users shared
// in etcd. The first user is written to etcd before any broker starts (as `user add --cluster`
// does); a user added through broker 1 authenticates on broker 3; replication works (acks all, RF
// 3, every replica in the ISR); a client authenticated as a user that is not a broker is refused
// replica fetches and heartbeats; a user removed through broker 2 fails on every broker. The
// configuration of such a cluster is accepted at start, and refused without the broker principals.

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerNode } from '../../src/broker/broker-node.js';
import { loadConfig } from '../../src/broker/config/load-config.js';
import { authFrom } from '../../src/cli/broker-options.js';
import type { Client } from '../../src/client/client.js';
import { connect } from '../../src/client/connect.js';
import { TcpTransport } from '../../src/client/tcp-transport.js';
import { removeUser, setUserPassword } from '../../src/client/user-admin.js';
import { clusterPart } from '../../src/cluster/cluster-node.js';
import { parseClusterUrl } from '../../src/cluster/control-plane/cluster-url.js';
import { ControlPlane } from '../../src/cluster/control-plane/control-plane.js';
import { clusterPrefix, KEYS } from '../../src/cluster/control-plane/metadata-keys.js';
import { MemoryStreamerError } from '../../src/common/errors.js';
import { segmentRootsCommand } from '../../src/protocol/commands/anti-entropy-commands.js';
import { brokerHeartbeatCommand } from '../../src/protocol/commands/broker-heartbeat-command.js';
import { REPLICATION_COMMANDS } from '../../src/protocol/commands/replication-commands.js';
import type { BrokerAuthOptions } from '../../src/security/broker-authenticator.js';
import { deriveCredential } from '../../src/security/credentials.js';
import { EtcdUserStore } from '../../src/security/etcd-user-store.js';
import { makeCertificates, opensslAvailable, type TestCertificates } from '../broker/server/helpers/certs.js';
import { type EtcdProcess, etcdAvailable, freePort, startEtcd } from '../harness/etcd.js';
import { makeTempDir, removeTempDir } from '../harness/temp-dir.js';
import { until } from '../harness/until.js';

let etcd: EtcdProcess;
let root: string;
let certs: TestCertificates;
let url: string;
const nodes: BrokerNode[] = [];
const stores: EtcdUserStore[] = [];
const transports: TcpTransport[] = [];
let client: Client | null = null;

async function usersOf(): Promise<EtcdUserStore> {
  const address = parseClusterUrl(url);
  const store = await EtcdUserStore.open({ address, prefix: clusterPrefix(address.name), url });
  stores.push(store);
  return store;
}

/** A connection to one broker as `username` (SCRAM over TLS), authenticated by its first request. */
function transportTo(node: BrokerNode, username: string, password: string, cert?: boolean): TcpTransport {
  const transport = new TcpTransport({
    brokers: [{ host: '127.0.0.1', port: node.address!.port }],
    clientId: `test-${username}`,
    connectTimeoutMs: 5000,
    tls: { ca: certs.ca, ...(cert === true ? { cert: certs.clientCert, key: certs.clientKey } : {}) },
    ...(cert === true ? {} : { sasl: { mechanism: 'SCRAM-SHA-256' as const, username, password } }),
  });
  transports.push(transport);
  return transport;
}

/** Resolves when `username` authenticates on `node`; rejects with the broker's error otherwise. */
async function authenticates(node: BrokerNode, username: string, password: string): Promise<void> {
  const transport = transportTo(node, username, password);
  try {
    await transport.request('listTopics', {}, { timeoutMs: 5000 });
  } finally {
    await transport.close();
  }
}

describe.skipIf(!etcdAvailable() || !opensslAvailable())('authentication in a cluster', () => {
  beforeAll(async () => {
    root = await makeTempDir('ms-cluster-auth-');
    certs = await makeCertificates(await makeTempDir('ms-cluster-auth-certs-'));
    etcd = await startEtcd();
    url = `etcd://${etcd.endpoint.replace('http://', '')}/secure`;
    // The first user, before any broker starts (memorystreamer user add admin --cluster URL).
    await (await usersOf()).change({
      kind: 'add',
      name: 'admin',
      credentials: { 'SCRAM-SHA-256': deriveCredential('SCRAM-SHA-256', 'admin-secret') },
    });
    const auth: BrokerAuthOptions = {
      mechanisms: ['SCRAM-SHA-256', 'mtls'],
      superUsers: ['User:admin'],
      brokerPrincipals: ['User:broker'],
      failureDelayMs: 0,
      maxFailuresPerMinute: 1000,
      openUsers: usersOf,
    };
    for (const brokerId of [1, 2, 3]) {
      const port = await freePort();
      nodes.push(
        await BrokerNode.start(
          {
            dataDir: join(root, `b${brokerId}`),
            port,
            brokerId,
            memoryTrim: false,
            raiseFileLimit: false,
            // Clients may come without a certificate (SCRAM); brokers present theirs (CN=broker).
            tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca, clientAuth: 'request' },
            auth,
          },
          [clusterPart({ cluster: url, brokerId, advertise: `127.0.0.1:${port}`, leaseTtlSeconds: 2 })],
        ),
      );
    }
    client = await connect({
      brokers: nodes.map((node) => `memorystreamer+tls://127.0.0.1:${node.address!.port}`),
      tls: { ca: certs.ca },
      sasl: { mechanism: 'SCRAM-SHA-256', username: 'admin', password: 'admin-secret' },
    });
  }, 60_000);

  afterAll(async () => {
    for (const transport of transports) await transport.close().catch(() => undefined);
    await client?.close();
    for (const node of nodes) await node.stop({ deadlineMs: 500 });
    for (const store of stores) await store.close();
    await etcd?.stop();
    if (root !== undefined) await removeTempDir(root);
    if (certs !== undefined) await removeTempDir(certs.dir);
  });

  it('replicates between brokers that authenticate with their certificates (acks all, RF 3, full ISR)', async () => {
    await until(async () => {
      try {
        return await client!.admin.createTopic({ name: 'guarded', partitions: 1, replicationFactor: 3 });
      } catch (error) {
        if (error instanceof MemoryStreamerError && error.retriable) return null;
        throw error;
      }
    });
    const producer = client!.producer({ acks: 'all' });
    await until(async () => producer.send({ topic: 'guarded', value: 'first' }), { timeoutMs: 30_000 });
    for (let i = 0; i < 19; i++) await producer.send({ topic: 'guarded', value: `m${i}` });
    await until(
      async () =>
        nodes.every((node) => node.core.partition('guarded', 0).log.logEndOffset === 20n) ? true : null,
      { what: 'all three replicas hold 20 messages', timeoutMs: 30_000 },
    );
    const plane = await ControlPlane.connect({ address: parseClusterUrl(url) });
    try {
      await until(
        async () => {
          const state = await plane.read(KEYS.partition('guarded', 0));
          const isr = (JSON.parse(state.value?.toString('utf8') ?? '{}') as { isr?: number[] }).isr ?? [];
          return isr.length === 3 ? isr : null;
        },
        { what: 'every replica in the ISR', timeoutMs: 30_000 },
      );
    } finally {
      await plane.close();
    }
  });

  it('authenticates on broker 3 a user added through broker 1', async () => {
    const admin = transportTo(nodes[0]!, 'admin', 'admin-secret');
    await setUserPassword(admin, 'add', 'alice', 'alice-secret', ['SCRAM-SHA-256']);
    await until(
      async () => {
        try {
          await authenticates(nodes[2]!, 'alice', 'alice-secret');
          return true;
        } catch (error) {
          if (error instanceof MemoryStreamerError && error.codeName === 'AUTHENTICATION_FAILED') return null;
          throw error;
        }
      },
      { what: 'alice authenticates on broker 3', timeoutMs: 10_000 },
    );
    await expect(authenticates(nodes[2]!, 'alice', 'wrong')).rejects.toMatchObject({
      codeName: 'AUTHENTICATION_FAILED',
    });
  });

  it('refuses replica fetches, epoch queries, anti-entropy and heartbeats to a client that is not a broker', async () => {
    const fetch = {
      replicaId: 2,
      maxWaitMs: 0,
      minBytes: 0,
      maxBytes: 1024 * 1024,
      partitions: [
        {
          topic: 'guarded',
          partition: 0,
          leaderEpoch: 0,
          lastFetchedEpoch: -1,
          fetchOffset: 0n,
          stableOffset: 0n,
          maxBytes: 1024 * 1024,
        },
      ],
    };
    // A valid user (even a super-user) over SCRAM, and a valid client certificate (User:client).
    for (const transport of [
      transportTo(nodes[0]!, 'admin', 'admin-secret'),
      transportTo(nodes[1]!, 'client', '', true),
    ]) {
      await expect(
        transport.call(REPLICATION_COMMANDS.replicaFetch, fetch, { timeoutMs: 5000 }),
      ).rejects.toMatchObject({
        codeName: 'AUTHORIZATION_FAILED',
        message: expect.stringMatching(/replicaFetch is for the brokers of the cluster/),
      });
      await expect(
        transport.call(
          REPLICATION_COMMANDS.offsetsForLeaderEpoch,
          {
            replicaId: 2,
            partitions: [{ topic: 'guarded', partition: 0, leaderEpoch: 0, queryEpoch: 0 }],
          },
          { timeoutMs: 5000 },
        ),
      ).rejects.toMatchObject({ codeName: 'AUTHORIZATION_FAILED' });
      await expect(
        transport.call(
          segmentRootsCommand,
          {
            replicaId: 2,
            topic: 'guarded',
            partition: 0,
            leaderEpoch: 0,
            chunkBytes: 65536,
            baseOffsets: [0n],
          },
          { timeoutMs: 5000 },
        ),
      ).rejects.toMatchObject({ codeName: 'AUTHORIZATION_FAILED' });
      await expect(
        transport.call(
          brokerHeartbeatCommand,
          {
            brokerId: 2,
            startedAtMs: Date.now(),
            controllerEpoch: -1n,
            shuttingDown: true,
          },
          { timeoutMs: 5000 },
        ),
      ).rejects.toMatchObject({ codeName: 'AUTHORIZATION_FAILED' });
    }
  });

  it('refuses a removed user on every broker', async () => {
    const admin = transportTo(nodes[1]!, 'admin', 'admin-secret');
    await setUserPassword(admin, 'add', 'bob', 'bob-secret', ['SCRAM-SHA-256']);
    for (const node of nodes)
      await until(
        async () => {
          try {
            await authenticates(node, 'bob', 'bob-secret');
            return true;
          } catch {
            return null;
          }
        },
        { what: 'bob authenticates everywhere', timeoutMs: 10_000 },
      );
    await removeUser(admin, 'bob');
    for (const node of nodes)
      await until(
        async () => {
          try {
            await authenticates(node, 'bob', 'bob-secret');
            return null;
          } catch (error) {
            if (error instanceof MemoryStreamerError && error.codeName === 'AUTHENTICATION_FAILED')
              return true;
            throw error;
          }
        },
        { what: 'bob refused on every broker', timeoutMs: 10_000 },
      );
  });

  it('starts a cluster with authentication on, and refuses one whose brokers could not authenticate', async () => {
    const flags = {
      'cluster.etcd': url,
      'cluster.broker_id': 1,
      'cluster.advertise': '127.0.0.1:9999',
      'auth.mechanisms': 'SCRAM-SHA-256,mtls',
    };
    const accepted = authFrom(
      await loadConfig({
        file: null,
        env: {},
        flags: { ...flags, 'cluster.broker_principals': 'User:broker' },
      }),
    );
    expect(accepted?.brokerPrincipals).toEqual(['User:broker']);
    expect(accepted?.openUsers).toBeTypeOf('function');
    const refused = await loadConfig({ file: null, env: {}, flags });
    expect(() => authFrom(refused)).toThrow(/cluster.broker_principals/);
    const scramOnly = await loadConfig({
      file: null,
      env: {},
      flags: { ...flags, 'auth.mechanisms': 'SCRAM-SHA-256', 'cluster.broker_principals': 'User:broker' },
    });
    expect(() => authFrom(scramOnly)).toThrow(/"mtls"/);
  });
});
