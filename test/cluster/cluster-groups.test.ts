// Consumer groups in a cluster of three brokers on a real etcd: the first coordinator lookup makes
// the replicated internal topic `__consumer_offsets`; a group's requests go to the leader of its
// offsets partition from whichever broker the client started at; committed offsets are
// acknowledged once every in-sync replica holds them, so when the coordinator's broker stops,
// the new leader of that partition coordinates the group and a member continues from the
// committed offset.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OFFSETS_TOPIC } from '../../src/broker/broker-core.js';
import type { BrokerNode } from '../../src/broker/broker-node.js';
import type { Client } from '../../src/client/client.js';
import { connect } from '../../src/client/connect.js';
import { MemoryStreamerError } from '../../src/common/errors.js';
import { decodeHighWatermark, HIGH_WATERMARK_CHECKPOINT } from '../../src/storage/high-watermark-file.js';
import { type NodeCluster, startNodeCluster } from '../harness/cluster.js';
import { etcdAvailable } from '../harness/etcd.js';
import { until } from '../harness/until.js';

let cluster: NodeCluster;
const nodes: (BrokerNode | null)[] = [];
const clients: Client[] = [];

function coordinatorIndex(groupId: string): number {
  return nodes.findIndex((node) => node?.core.groups.list().some((group) => group.groupId === groupId));
}

async function readValues(client: Client, groupId: string, count: number): Promise<string[]> {
  const consumer = client.consumer({ topics: ['events'], group: groupId, autoCommit: false });
  const values: string[] = [];
  try {
    while (values.length < count) {
      const message = await consumer.next();
      if (message === null) break;
      values.push(message.value!.toString());
    }
    await consumer.commit();
  } finally {
    await consumer.close();
  }
  return values;
}

describe.skipIf(!etcdAvailable())('consumer groups in a cluster', () => {
  beforeAll(async () => {
    cluster = await startNodeCluster({ name: 'groups' });
    nodes.push(...cluster.nodes);
    const all = cluster.addresses().join(',');
    for (let i = 0; i < 3; i++) clients.push(await connect({ brokers: all }));
  }, 60_000);
  afterAll(async () => {
    for (const client of clients) await client.close();
    await cluster?.stop();
  });

  it('keeps committed offsets on the new coordinator when the old one stops', async () => {
    await until(async () => {
      try {
        return await clients[0]!.admin.createTopic({ name: 'events', partitions: 2, replicationFactor: 3 });
      } catch (error) {
        if (error instanceof MemoryStreamerError && error.retriable) return null;
        throw error;
      }
    });
    const producer = clients[0]!.producer({ acks: 'all' });
    await until(async () => producer.send({ topic: 'events', partition: 0, value: 'warm-up-0' }));
    await until(async () => producer.send({ topic: 'events', partition: 1, value: 'warm-up-1' }));
    for (let i = 0; i < 60; i++) await producer.send({ topic: 'events', partition: i % 2, value: `m${i}` });

    // The first member finds the coordinator through any broker; the lookup makes the offsets topic.
    const first = await readValues(clients[0]!, 'billing', 30);
    expect(first).toHaveLength(30);
    const metadata = await clients[1]!.admin.metadata();
    const offsets = metadata.topics.find((topic) => topic.name === OFFSETS_TOPIC);
    expect(offsets).toMatchObject({ internal: true });
    expect(offsets!.partitions.length).toBe(8);
    for (const partition of offsets!.partitions) expect([...partition.replicas].sort()).toEqual([1, 2, 3]);
    // Internal: not listed as a user's topic.
    expect((await clients[1]!.admin.listTopics()).map((topic) => topic.name)).toEqual(['events']);

    const coordinator = coordinatorIndex('billing');
    expect(coordinator).toBeGreaterThanOrEqual(0);
    // Only the coordinator serves the group; the others say NOT_COORDINATOR.
    for (const [index, node] of nodes.entries()) {
      if (index === coordinator) continue;
      await expect(node!.core.execute('fetchOffsets', { groupId: 'billing' })).rejects.toMatchObject({
        codeName: 'NOT_COORDINATOR',
      });
    }
    // Every client lists and describes the group wherever it started.
    for (const client of clients) {
      expect((await client.admin.listGroups()).map((group) => group.groupId)).toEqual(['billing']);
      const described = await client.admin.describeGroup('billing');
      expect(described.group.groupId).toBe('billing');
    }
    const committedBefore = await clients[2]!.admin.describeGroup('billing');

    // The coordinator's broker stops: another replica of the group's offsets partition leads it
    // and reads the committed offsets from its own copy.
    const stopping = nodes[coordinator]!;
    nodes[coordinator] = null;
    const eventsDir = stopping.core.partition('events', 0).log.dir;
    await stopping.stop({ deadlineMs: 500 });
    // Its replicas keep their high watermark across the stop: all 31 messages of events/0 were
    // acknowledged by every replica, and the checkpoint written at close says so.
    const checkpoint = await readFile(join(eventsDir, HIGH_WATERMARK_CHECKPOINT));
    expect(decodeHighWatermark(checkpoint)).toBe(31n);
    const survivor = clients[(coordinator + 1) % 3]!;
    const next = await until(async () => {
      try {
        return await readValues(survivor, 'billing', 32);
      } catch (error) {
        if (error instanceof MemoryStreamerError && error.retriable) return null;
        throw error;
      }
    }, 30_000);
    const newCoordinator = coordinatorIndex('billing');
    expect(newCoordinator).toBeGreaterThanOrEqual(0);
    expect(newCoordinator).not.toBe(coordinator);
    // Nothing read and committed before comes again, nothing is skipped: together, every message.
    const everything = [...first, ...next].sort();
    const produced = ['warm-up-0', 'warm-up-1', ...Array.from({ length: 60 }, (_, i) => `m${i}`)].sort();
    expect(everything).toEqual(produced);
    // The new coordinator has every replica of `events` here, so it reports the group's lag: none.
    const committedAfter = await survivor.admin.describeGroup('billing');
    expect(committedAfter.lag.map((entry) => [entry.partition, entry.committed, entry.lag])).toEqual([
      [0, 31n, 0n],
      [1, 31n, 0n],
    ]);
    expect(committedBefore.lag.map((entry) => entry.committed).reduce((a, b) => a + b, 0n)).toBe(30n);
  }, 90_000);

  it('describes a group with lag for every partition, also those the coordinator holds no copy of', async () => {
    const client = clients.find((_, i) => nodes[i] !== null)!;
    await until(async () => {
      try {
        return await client.admin.createTopic({ name: 'solo', partitions: 3, replicationFactor: 1 });
      } catch (error) {
        if (error instanceof MemoryStreamerError && error.retriable) return null;
        throw error;
      }
    });
    const producer = client.producer({ acks: 'all' });
    for (let i = 0; i < 30; i++)
      await until(async () => producer.send({ topic: 'solo', partition: i % 3, value: `s${i}` }));
    const consumer = client.consumer({ topics: ['solo'], group: 'solo-readers', autoCommit: false });
    for (let read = 0; read < 20; ) if ((await consumer.next()) !== null) read++;
    await consumer.commit();
    await consumer.close();
    // Each partition has one copy, on one of the two live brokers: the coordinator leads some of
    // them, not all, and reports lag for those it leads; the client completes the others.
    const coordinator = nodes[coordinatorIndex('solo-readers')]!;
    const reported = await coordinator.core.execute('describeGroup', { groupId: 'solo-readers' });
    expect(reported.lag.length).toBeLessThan(3);
    const described = await client.admin.describeGroup('solo-readers');
    expect(described.lag.map((entry) => entry.partition)).toEqual([0, 1, 2]);
    for (const entry of described.lag) {
      expect(entry.highWatermark).toBe(10n);
      expect(entry.lag).toBe(10n - entry.committed);
    }
    expect(described.lag.reduce((sum, entry) => sum + entry.committed, 0n)).toBe(20n);
  }, 60_000);
});
