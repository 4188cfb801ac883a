// Three broker nodes on a real etcd, each with its cluster part: a topic created on the controller
// with replication factor 3 gets a replica on every broker, produces with acks 'all' on the
// leader are acknowledged once every replica holds them, the followers' logs hold the leader's
// batches byte for byte, and the other brokers refuse produces with NOT_LEADER.

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerNode } from '../../../src/broker/broker-node.js';
import type { Client } from '../../../src/client/client.js';
import { connect } from '../../../src/client/connect.js';
import { clusterPart } from '../../../src/cluster/cluster-node.js';
import { MemoryStreamerError } from '../../../src/common/errors.js';
import { createLogger } from '../../../src/metrics/logger.js';
import { type EtcdProcess, etcdAvailable, freePort, startEtcd } from '../../harness/etcd.js';
import { makeTempDir, removeTempDir } from '../../harness/temp-dir.js';
import { until } from '../../harness/until.js';

let etcd: EtcdProcess;
let root: string;
const nodes: BrokerNode[] = [];
const clients: Client[] = [];

describe.skipIf(!etcdAvailable())('replica manager: three brokers', () => {
  beforeAll(async () => {
    etcd = await startEtcd();
    root = await makeTempDir('ms-replicas-');
    const cluster = `${etcd.endpoint.replace('http://', 'etcd://')}/three`;
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
            ...(process.env.REPLICA_TEST_LOG
              ? { logger: createLogger({ level: 'info', pretty: false }) }
              : {}),
          },
          [clusterPart({ cluster, brokerId, advertise: `127.0.0.1:${port}`, leaseTtlSeconds: 2 })],
        ),
      );
    }
    for (const node of nodes) clients.push(await connect({ brokers: `127.0.0.1:${node.address!.port}` }));
  }, 60_000);
  afterAll(async () => {
    for (const client of clients) await client.close();
    for (const node of nodes) await node.stop({ deadlineMs: 500 });
    await etcd?.stop();
    if (root !== undefined) await removeTempDir(root);
  });

  it('replicates a topic to every broker; acks all waits for all; followers hold the same bytes', async () => {
    // Only the controller creates topics; the others say which broker is.
    const created = await until(async () => {
      for (const client of clients) {
        try {
          return await client.admin.createTopic({ name: 'orders', partitions: 1, replicationFactor: 3 });
        } catch (error) {
          if (!(error instanceof MemoryStreamerError && error.codeName === 'NOT_CONTROLLER')) throw error;
        }
      }
      return null;
    });
    expect(created.replicationFactor).toBe(3);
    // Each client routes the partition's requests to its leader, whichever broker it started from.
    await until(async () =>
      clients[0]!.producer({ acks: 'all' }).send({ topic: 'orders', key: 'k', value: 'first' }),
    );
    const leaderIndex = nodes.findIndex((node) => {
      try {
        node.core.replicaRoles!.checkRead('orders', 0);
        return true;
      } catch {
        return false;
      }
    });
    expect(leaderIndex).toBeGreaterThanOrEqual(0);
    const producer = clients[leaderIndex]!.producer({ acks: 'all' });
    const receipts = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        producer.send({ topic: 'orders', key: `k${i % 7}`, value: `m${i}` }),
      ),
    );
    expect(receipts.at(-1)!.offset).toBe(200n);
    // acks 'all': every replica held the last batch when it was acknowledged.
    const logs = nodes.map((node) => node.core.partition('orders', 0).log);
    for (const log of logs) expect(log.logEndOffset).toBe(201n);
    // Followers learn the high watermark with their next fetch; then they serve all of it.
    await until(async () => (logs.every((log) => log.highWatermark === 201n) ? true : null));
    const bytes = await Promise.all(
      logs.map(async (log) => (await log.readForReplica(0n, 64 * 1024 * 1024)).data),
    );
    expect(bytes[leaderIndex]!.length).toBeGreaterThan(201 * 10);
    for (const copy of bytes) expect(copy.equals(bytes[leaderIndex]!)).toBe(true);
    // Every broker describes the cluster's view: the leader, three replicas, the ISR, and METADATA
    // lists the brokers with their addresses.
    for (const client of clients) {
      const described = await client.admin.describeTopic('orders');
      expect(described.partitions[0]).toMatchObject({
        leader: leaderIndex + 1,
        leaderEpoch: expect.any(Number),
      });
      expect([...described.partitions[0]!.replicas].sort()).toEqual([1, 2, 3]);
      const metadata = await client.admin.metadata(['orders']);
      expect(metadata.brokers.map((broker) => broker.id).sort()).toEqual([1, 2, 3]);
      expect(metadata.brokers.map((broker) => broker.port).sort()).toEqual(
        nodes.map((node) => node.address!.port).sort(),
      );
      expect(metadata.clusterId).toMatch(/^[0-9a-f-]{36}$/);
      expect(metadata.topics[0]!.partitions[0]!.leader).toBe(leaderIndex + 1);
      expect((await client.admin.listTopics()).map((topic) => topic.name)).toContain('orders');
    }
    // Another broker refuses a produce for the partition, naming the leader.
    const other = nodes[(leaderIndex + 1) % 3]!;
    expect(() => other.core.replicaRoles!.leaderEpochForProduce('orders', 0, 1)).toThrow(
      expect.objectContaining({ codeName: 'NOT_LEADER', message: expect.stringMatching(/led by broker/) }),
    );
    // A client bootstrapped from a follower writes through to the leader.
    const viaFollower = await clients[(leaderIndex + 1) % 3]!.producer().send({
      topic: 'orders',
      value: 'routed',
    });
    expect(viaFollower.offset).toBe(201n);
    // Consumers of the leader read everything below the high watermark.
    const consumer = clients[leaderIndex]!.consumer({ topics: ['orders'], from: 'earliest' });
    await consumer.start();
    const seen: string[] = [];
    while (seen.length < 202) {
      const message = await consumer.next();
      if (message !== null) seen.push(message.value!.toString());
    }
    await consumer.close();
    expect(seen[0]).toBe('first');
    expect(seen.at(-1)).toBe('routed');
  }, 60_000);

  it('serves a topic with one replica from any broker: listed everywhere, described and written through its leader', async () => {
    await until(async () => {
      for (const client of clients) {
        try {
          return await client.admin.createTopic({ name: 'single', partitions: 1 });
        } catch (error) {
          if (!(error instanceof MemoryStreamerError && error.codeName === 'NOT_CONTROLLER')) throw error;
        }
      }
      return null;
    });
    const holders = await until(async () => {
      const found = nodes.filter((node) => node.core.localTopic('single') !== undefined);
      return found.length > 0 ? found : null;
    });
    expect(holders).toHaveLength(1);
    for (const client of clients) {
      expect((await client.admin.listTopics()).map((topic) => topic.name)).toContain('single');
      const described = await until(async () => client.admin.describeTopic('single'));
      expect(described.partitions[0]!.replicas).toHaveLength(1);
      const receipt = await until(async () => client.producer().send({ topic: 'single', value: 'x' }));
      expect(receipt.partition).toBe(0);
    }
  }, 60_000);

  it('alters and deletes topics through the controller; every copy follows', async () => {
    const onController = async <T>(act: (client: Client) => Promise<T>): Promise<T> =>
      until(async () => {
        for (const client of clients) {
          try {
            return await act(client);
          } catch (error) {
            if (!(error instanceof MemoryStreamerError && error.codeName === 'NOT_CONTROLLER')) throw error;
          }
        }
        return null;
      });
    await onController((client) =>
      client.admin.createTopic({ name: 'audit', partitions: 1, replicationFactor: 3 }),
    );
    await until(async () =>
      nodes.every((node) => node.core.localTopic('audit') !== undefined) ? true : null,
    );
    // Growth needs allowKeyMovement unless the controller's copy shows no keyed messages (none here).
    await onController((client) =>
      client.admin.alterTopic({ name: 'audit', partitions: 3, config: { retentionMs: 3_600_000 } }),
    );
    await until(async () =>
      nodes.every((node) => {
        const local = node.core.localTopic('audit');
        return local?.partitions === 3 && local.config.retentionMs === 3_600_000;
      })
        ? true
        : null,
    );
    const described = await clients[0]!.admin.describeTopic('audit');
    expect(described.partitions.map((p) => p.leader).every((leader) => leader >= 1)).toBe(true);
    await onController((client) => client.admin.deleteTopic('audit'));
    await until(async () =>
      nodes.every((node) => node.core.localTopic('audit') === undefined) ? true : null,
    );
    await expect(clients[0]!.admin.describeTopic('audit')).rejects.toMatchObject({
      codeName: 'UNKNOWN_TOPIC',
    });
  }, 60_000);

  it('a new leader is elected when the leader stops; it holds everything acknowledged and takes new writes', async () => {
    const findLeader = () =>
      until(async () => {
        for (let i = 0; i < nodes.length; i++) {
          if (stopped.has(i)) continue;
          try {
            nodes[i]!.core.replicaRoles!.checkRead('orders', 0);
            return i;
          } catch {}
        }
        return null;
      });
    const stopped = new Set<number>();
    const oldLeader = await findLeader();
    await clients[oldLeader]!.close();
    await nodes[oldLeader]!.stop({ deadlineMs: 500 });
    stopped.add(oldLeader);
    const newLeader = await findLeader();
    expect(newLeader).not.toBe(oldLeader);
    const producer = clients[newLeader]!.producer({ acks: 'all' });
    // Two replicas are left in the ISR: acks 'all' needs both.
    const receipt = await until(async () =>
      producer.send({ topic: 'orders', key: 'k', value: 'after failover' }),
    );
    expect(receipt.offset).toBe(202n);
    const consumer = clients[newLeader]!.consumer({ topics: ['orders'], from: 'earliest' });
    await consumer.start();
    const seen: string[] = [];
    while (seen.length < 203) {
      const message = await consumer.next();
      if (message !== null) seen.push(message.value!.toString());
    }
    await consumer.close();
    expect(seen.slice(0, 2)).toEqual(['first', 'm0']);
    expect(seen.slice(-2)).toEqual(['routed', 'after failover']);
    // The surviving follower holds the new leader's log byte for byte.
    const survivor = [0, 1, 2].find((i) => i !== oldLeader && i !== newLeader)!;
    const leaderLog = nodes[newLeader]!.core.partition('orders', 0).log;
    const followerLog = nodes[survivor]!.core.partition('orders', 0).log;
    await until(async () => (followerLog.highWatermark === 203n ? true : null));
    const [a, b] = await Promise.all(
      [leaderLog, followerLog].map((log) => log.readForReplica(0n, 64 * 1024 * 1024)),
    );
    expect(a!.data.equals(b!.data)).toBe(true);
    clients.splice(oldLeader, 1, await connect({ brokers: `127.0.0.1:${nodes[newLeader]!.address!.port}` }));
  }, 60_000);
});
