// A leader's progress, on three broker nodes on a real etcd: an idle partition's followers each
// wait out their long poll (about two replica fetches a second each, as docs/cluster.md says)
// instead of releasing each other's; and an acks 0 produce, answered before its batch is written,
// still moves the high watermark, so consumers read it without waiting for a later acks 1 produce.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrokerNode } from '../../../src/broker/broker-node.js';
import type { Client } from '../../../src/client/client.js';
import { connect } from '../../../src/client/connect.js';
import type { ReplicaManager } from '../../../src/cluster/replication/replica-manager.js';
import { type NodeCluster, startNodeCluster } from '../../harness/cluster.js';
import { etcdAvailable } from '../../harness/etcd.js';
import { retryWhileRetriable, until } from '../../harness/until.js';

let cluster: NodeCluster;
let client: Client;

function leaderOf(topic: string): BrokerNode {
  const leader = cluster.nodes.find((node) => {
    try {
      node.core.replicaRoles?.checkRead(topic, 0);
      return true;
    } catch {
      return false;
    }
  });
  if (leader === undefined) throw new Error(`no leader of ${topic}/0`);
  return leader;
}

/** Replica fetches the leader of `topic`/0 has answered so far. */
function replicaFetches(topic: string): number {
  const stats = (leaderOf(topic).core.replicaRequests as ReplicaManager).replicationStats();
  const led = stats.partitions.find((p) => p.topic === topic && p.partition === 0);
  if (led === undefined) throw new Error(`${topic}/0 is not led`);
  return led.replicaFetches;
}

async function readAll(topic: string, count: number): Promise<string[]> {
  const consumer = client.consumer({ topics: [topic], from: 'earliest' });
  await consumer.start();
  const seen: string[] = [];
  try {
    const deadline = Date.now() + 5_000;
    while (seen.length < count && Date.now() < deadline) {
      const message = await consumer.next();
      if (message !== null) seen.push(message.value!.toString());
    }
  } finally {
    await consumer.close();
  }
  return seen;
}

describe.skipIf(!etcdAvailable())('leader progress: waking the followers', () => {
  beforeAll(async () => {
    cluster = await startNodeCluster({ name: 'progress' });
    client = await connect({ brokers: cluster.addresses().join(',') });
  }, 60_000);
  afterAll(async () => {
    await client?.close();
    await cluster?.stop();
  });

  it('an idle partition with two followers gets about two replica fetches a second from each', async () => {
    await retryWhileRetriable(() =>
      client.admin.createTopic({ name: 'idle', partitions: 1, replicationFactor: 3 }),
    );
    const producer = client.producer({ acks: 'all' });
    await retryWhileRetriable(() => producer.send({ topic: 'idle', value: 'only' }));
    // Both followers hold it and know the high watermark: nothing is left to replicate.
    await until(() =>
      cluster.nodes.every((node) => node.core.partition('idle', 0).log.highWatermark === 1n) ? true : null,
    );
    const before = replicaFetches('idle');
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const served = replicaFetches('idle') - before;
    // Two followers, each long-polling 500 ms at a time: about 8 in 2 s. Releasing each other's
    // polls, they made thousands.
    expect(served).toBeGreaterThan(0);
    expect(served).toBeLessThanOrEqual(16);
  }, 60_000);

  it('acks 0 messages after an acks 1 message reach consumers of a one-replica topic', async () => {
    await retryWhileRetriable(() =>
      client.admin.createTopic({ name: 'zero', partitions: 1, replicationFactor: 1 }),
    );
    // The acks 1 produce makes the leader set a replicated high watermark on its log.
    await retryWhileRetriable(() => client.producer({ acks: 1 }).send({ topic: 'zero', value: 'acks-1' }));
    const fireAndForget = client.producer({ acks: 0 });
    for (let i = 0; i < 10; i++) await fireAndForget.send({ topic: 'zero', value: `acks-0-${i}` });
    const log = leaderOf('zero').core.partition('zero', 0).log;
    await until(() => (log.logEndOffset === 11n ? true : null));
    await until(() => (log.highWatermark === 11n ? true : null), {
      what: 'the high watermark past the acks 0 messages',
      timeoutMs: 5_000,
    });
    expect(await readAll('zero', 11)).toEqual([
      'acks-1',
      ...Array.from({ length: 10 }, (_, i) => `acks-0-${i}`),
    ]);
  }, 60_000);
});
