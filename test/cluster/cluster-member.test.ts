// Joining and leaving a cluster on a real etcd: the data directory's identity is checked before
// etcd is touched, a directory never joins as another broker or into another cluster, an
// unreachable etcd fails the join with a code and leaves nothing behind, and a member that leaves
// is gone from every other member's view.

import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterMember, validateMemberOptions } from '../../src/cluster/cluster-member.js';
import { type EtcdProcess, etcdAvailable, startEtcd } from '../harness/etcd.js';
import { makeTempDir, removeTempDir } from '../harness/temp-dir.js';

let etcd: EtcdProcess;
let root: string;

async function until(condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

let dirs = 0;
async function dataDir(): Promise<string> {
  const dir = join(root, `broker-${++dirs}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

const clusterUrl = (name: string) => `${etcd.endpoint.replace('http://', 'etcd://')}/${name}`;

describe('cluster member: options', () => {
  it('refuses a broker id or an advertised address that cannot work, before anything starts', () => {
    expect(() => validateMemberOptions({ brokerId: -1, advertise: '127.0.0.1:7400' })).toThrow(
      expect.objectContaining({ codeName: 'INVALID_CONFIG' }),
    );
    expect(() => validateMemberOptions({ brokerId: 1.5, advertise: '127.0.0.1:7400' })).toThrow(/broker id/);
    expect(() => validateMemberOptions({ brokerId: 1, advertise: 'localhost' })).toThrow(/advertise/);
    expect(() => validateMemberOptions({ brokerId: 1, advertise: 'host:70000' })).toThrow(/advertise/);
    expect(() => validateMemberOptions({ brokerId: 3, advertise: '[::1]:7400' })).not.toThrow();
  });
});

describe.skipIf(!etcdAvailable())('cluster member on etcd', () => {
  beforeAll(async () => {
    etcd = await startEtcd();
    root = await makeTempDir('ms-member-');
  });
  afterAll(async () => {
    await etcd?.stop();
    await removeTempDir(root);
  });

  it('joins, records its identity, sees the others, and is gone from their view when it leaves', async () => {
    const url = clusterUrl('join');
    const dirA = await dataDir();
    const a = await ClusterMember.join({
      cluster: url,
      brokerId: 1,
      advertise: '127.0.0.1:7401',
      dataDir: dirA,
    });
    const b = await ClusterMember.join({
      cluster: url,
      brokerId: 2,
      advertise: '127.0.0.1:7402',
      dataDir: await dataDir(),
    });
    try {
      expect(b.clusterId).toBe(a.clusterId);
      const identity = JSON.parse(await readFile(join(dirA, 'cluster.json'), 'utf8')) as Record<
        string,
        unknown
      >;
      expect(identity).toEqual({ version: 1, clusterId: a.clusterId, brokerId: 1 });
      await until(() => a.metadata.brokers().length === 2 && b.metadata.brokers().length === 2);
      await until(() => [a, b].filter((m) => m.isController).length === 1);
      await b.leave();
      await until(() => a.metadata.brokers().length === 1);
      expect(a.metadata.brokers().map((broker) => broker.brokerId)).toEqual([1]);
      // With b gone, a is the controller.
      await until(() => a.isController);
      // The same directory joins again as the same broker, into the same cluster.
      await a.leave();
      const again = await ClusterMember.join({
        cluster: url,
        brokerId: 1,
        advertise: '127.0.0.1:7401',
        dataDir: dirA,
      });
      expect(again.clusterId).toBe(a.clusterId);
      await again.leave();
    } finally {
      await a.leave();
      await b.leave();
    }
  });

  it('never joins a directory as another broker id (checked before etcd is reached) or into another cluster', async () => {
    const dir = await dataDir();
    const member = await ClusterMember.join({
      cluster: clusterUrl('first'),
      brokerId: 7,
      advertise: '127.0.0.1:7407',
      dataDir: dir,
    });
    await member.leave();
    // Another broker id: refused from the directory alone (this etcd address does not answer).
    await expect(
      ClusterMember.join({
        cluster: 'etcd://127.0.0.1:1/first',
        brokerId: 8,
        advertise: '127.0.0.1:7408',
        dataDir: dir,
        connectTimeoutMs: 200,
      }),
    ).rejects.toMatchObject({
      codeName: 'CLUSTER_ID_MISMATCH',
      message: expect.stringMatching(/--broker-id 7/),
    });
    // Another cluster (another name on the same etcd has its own cluster id).
    const other = await ClusterMember.join({
      cluster: clusterUrl('second'),
      brokerId: 1,
      advertise: '127.0.0.1:7409',
      dataDir: await dataDir(),
    });
    try {
      await expect(
        ClusterMember.join({
          cluster: clusterUrl('second'),
          brokerId: 7,
          advertise: '127.0.0.1:7407',
          dataDir: dir,
        }),
      ).rejects.toMatchObject({ codeName: 'CLUSTER_ID_MISMATCH' });
      // The refused broker left no registration behind.
      await until(() => other.metadata.brokers().length === 1);
      expect(other.metadata.brokers().map((broker) => broker.brokerId)).toEqual([1]);
    } finally {
      await other.leave();
    }
  });

  it('refuses an id held by a live broker, and a directory that holds single-node topics, leaving nothing behind', async () => {
    const url = clusterUrl('refusals');
    const holder = await ClusterMember.join({
      cluster: url,
      brokerId: 1,
      advertise: '127.0.0.1:7411',
      dataDir: await dataDir(),
    });
    try {
      const second = await dataDir();
      await expect(
        ClusterMember.join({ cluster: url, brokerId: 1, advertise: '127.0.0.1:7412', dataDir: second }),
      ).rejects.toMatchObject({
        codeName: 'BROKER_ID_IN_USE',
        message: expect.stringMatching(/127\.0\.0\.1:7411/),
      });
      await expect(stat(join(second, 'cluster.json'))).rejects.toMatchObject({ code: 'ENOENT' });

      const singleNode = await dataDir();
      await mkdir(join(singleNode, 'topics', 'orders'), { recursive: true });
      await expect(
        ClusterMember.join({ cluster: url, brokerId: 2, advertise: '127.0.0.1:7413', dataDir: singleNode }),
      ).rejects.toMatchObject({
        codeName: 'CLUSTER_ID_MISMATCH',
        message: expect.stringMatching(/single-node/),
      });
      // Its registration was revoked: broker 2 is not in the live set.
      await until(() => holder.metadata.brokers().length === 1);
      expect(holder.metadata.brokers().map((broker) => broker.brokerId)).toEqual([1]);
    } finally {
      await holder.leave();
    }
  });

  it('registers again after losing its lease, and the cluster gets a controller again', async () => {
    const url = clusterUrl('rejoin');
    const lost: number[] = [];
    const rejoined: number[] = [];
    const member = (brokerId: number, dir: string) =>
      ClusterMember.join({
        cluster: url,
        brokerId,
        advertise: `127.0.0.1:74${30 + brokerId}`,
        dataDir: dir,
        onLeaseLost: () => lost.push(brokerId),
        onRejoined: () => rejoined.push(brokerId),
      });
    const a = await member(1, await dataDir());
    const b = await member(2, await dataDir());
    const etcdClient = new Etcd3({ hosts: etcd.endpoint });
    try {
      // (No broker serves these members' addresses, so heartbeats go unanswered: fencing is not
      // looked at here; fencing.test.ts runs whole brokers.)
      await until(() => [a, b].every((m) => m.metadata.brokers().length === 2));
      const before = new Map(a.metadata.brokers().map((r) => [r.brokerId, r.startedAtMs]));
      // Every lease at once, as when etcd was out of reach of every broker for longer than the lease:
      // no registration and no controller key is left.
      const { leases } = await etcdClient.leaseClient.leaseLeases();
      for (const { ID } of leases) await etcdClient.leaseClient.leaseRevoke({ ID });
      await until(() => lost.length === 2);
      await until(
        () =>
          rejoined.length === 2 &&
          [a, b].every((m) => m.metadata.brokers().length === 2) &&
          [a, b].filter((m) => m.isController).length === 1,
        20_000,
      );
      // New registrations (a restarted broker's kind).
      for (const record of a.metadata.brokers())
        expect(record.startedAtMs).toBeGreaterThan(before.get(record.brokerId) ?? Infinity);
      expect(a.metadata.controller).not.toBeNull();
    } finally {
      etcdClient.close();
      await a.leave();
      await b.leave();
    }
  });

  it('fails with CONTROL_PLANE_UNAVAILABLE when etcd does not answer, after retrying, and writes nothing', async () => {
    const dir = await dataDir();
    const retries: number[] = [];
    await expect(
      ClusterMember.join({
        cluster: 'etcd://127.0.0.1:1/nowhere',
        brokerId: 1,
        advertise: '127.0.0.1:7421',
        dataDir: dir,
        connectTimeoutMs: 700,
        onConnectRetry: (attempt) => retries.push(attempt),
      }),
    ).rejects.toMatchObject({ codeName: 'CONTROL_PLANE_UNAVAILABLE' });
    expect(retries.length).toBeGreaterThanOrEqual(2);
    await expect(stat(join(dir, 'cluster.json'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
