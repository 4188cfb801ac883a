// A group member that keeps running while its group's coordinator moves: three brokers on a real
// etcd, the coordinator's broker stops, the leader of the group's offsets partition moves to a
// surviving replica, which knows the committed offsets but not the members. The member notices
// (NOT_COORDINATOR, a lost connection, then UNKNOWN_MEMBER or UNKNOWN_GROUP from the new
// coordinator), joins again there by itself and reads on from the committed offset: every message
// read, none lost.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrokerNode } from '../../../src/broker/broker-node.js';
import type { Client } from '../../../src/client/client.js';
import { connect } from '../../../src/client/connect.js';
import { MemoryStreamerError } from '../../../src/common/errors.js';
import { type NodeCluster, startNodeCluster } from '../../harness/cluster.js';
import { etcdAvailable } from '../../harness/etcd.js';
import { until } from '../../harness/until.js';

let cluster: NodeCluster;
const nodes: (BrokerNode | null)[] = [];
const clients: Client[] = [];

function coordinatorIndex(groupId: string): number {
  return nodes.findIndex((node) => node?.core.groups.list().some((group) => group.groupId === groupId));
}

describe.skipIf(!etcdAvailable())('a group member whose coordinator moves', () => {
  beforeAll(async () => {
    cluster = await startNodeCluster({ name: 'moves' });
    nodes.push(...cluster.nodes);
    const all = cluster.addresses().join(',');
    for (let i = 0; i < 2; i++) clients.push(await connect({ brokers: all }));
  }, 60_000);
  afterAll(async () => {
    for (const client of clients) await client.close();
    await cluster?.stop();
  });

  it('joins the new coordinator by itself and reads on from the committed offset', async () => {
    const [admin, memberClient] = clients as [Client, Client];
    await until(async () => {
      try {
        return await admin.admin.createTopic({ name: 'events', partitions: 2, replicationFactor: 3 });
      } catch (error) {
        if (error instanceof MemoryStreamerError && error.retriable) return null;
        throw error;
      }
    });
    const producer = admin.producer({ acks: 'all' });
    const produced: string[] = [];
    const send = async (value: string, partition: number) => {
      await until(async () => {
        try {
          return await producer.send({ topic: 'events', partition, value });
        } catch (error) {
          if (error instanceof MemoryStreamerError && error.retriable) return null;
          throw error;
        }
      }, 30_000);
      produced.push(value);
    };
    for (let i = 0; i < 40; i++) await send(`m${i}`, i % 2);

    const consumer = memberClient.consumer({
      topics: ['events'],
      group: 'billing',
      sessionTimeoutMs: 3000,
      // Auto-commits fall due all through the move: they meet the coordinator gone and then
      // not yet elected, and must not stop the member.
      autoCommitIntervalMs: 100,
    });
    const seen = new Set<string>();
    let failure: unknown = null;
    const reading = (async () => {
      for (;;) {
        const message = await consumer.next();
        if (message === null) return;
        seen.add(message.value!.toString());
      }
    })().catch((error: unknown) => {
      failure = error;
    });
    await until(async () => (seen.size >= 20 ? true : null), 30_000);
    await until(async () => consumer.commit().then(() => true));
    const committed = await admin.admin.groupOffsets('billing');
    expect(committed.reduce((n, o) => n + o.offset, 0n)).toBeGreaterThan(0n);

    const coordinator = coordinatorIndex('billing');
    expect(coordinator).toBeGreaterThanOrEqual(0);
    const stopping = nodes[coordinator]!;
    nodes[coordinator] = null;
    const stopped = stopping.stop({ deadlineMs: 500 });
    // More is written during and after the move; the same member, never restarted, reads all of it.
    for (let i = 40; i < 60; i++) await send(`m${i}`, i % 2);
    await stopped;
    await until(async () => {
      if (failure !== null) throw failure;
      return produced.every((value) => seen.has(value)) ? true : null;
    }, 45_000);
    expect(failure).toBeNull();
    const newCoordinator = coordinatorIndex('billing');
    expect(newCoordinator).toBeGreaterThanOrEqual(0);
    expect(newCoordinator).not.toBe(coordinator);
    // The member is in the group on the new coordinator, and its commits land there.
    await until(async () => {
      const described = await admin.admin.describeGroup('billing');
      return described.members.length === 1 ? true : null;
    }, 30_000);
    await until(async () => consumer.commit().then(() => true), 30_000);
    const lag = (await admin.admin.describeGroup('billing')).lag;
    expect(lag.reduce((n, l) => n + l.lag, 0n)).toBe(0n);
    await consumer.close();
    await reading;
  }, 120_000);
});
