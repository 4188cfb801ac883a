// A topic's minInsyncReplicas altered while its partitions have leaders, on three broker nodes on
// a real etcd: the leader applies the new value at once (not only at its next election), so once
// the ISR is smaller than it an acks 'all' produce is refused with NOT_ENOUGH_REPLICAS instead of
// being acknowledged by fewer copies than the topic demands.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '../../../src/client/client.js';
import { connect } from '../../../src/client/connect.js';
import type { ReplicaManager } from '../../../src/cluster/replication/replica-manager.js';
import { type NodeCluster, startNodeCluster } from '../../harness/cluster.js';
import { etcdAvailable } from '../../harness/etcd.js';
import { retryWhileRetriable, until } from '../../harness/until.js';

let cluster: NodeCluster;
let client: Client;

describe.skipIf(!etcdAvailable())('minInsyncReplicas altered on a led partition', () => {
  beforeAll(async () => {
    cluster = await startNodeCluster({ name: 'min-isr' });
    client = await connect({ brokers: cluster.addresses().join(',') });
  }, 60_000);
  afterAll(async () => {
    await client?.close();
    await cluster?.stop();
  });

  it('an acks all produce is refused once the ISR is below the altered minimum', async () => {
    await retryWhileRetriable(() =>
      client.admin.createTopic({
        name: 'payments',
        partitions: 1,
        replicationFactor: 2,
        config: { minInsyncReplicas: 1 },
      }),
    );
    const producer = client.producer({ acks: 'all', retries: 0 });
    await retryWhileRetriable(() => producer.send({ topic: 'payments', value: 'before the alter' }));
    const { leader, replicas } = (await client.admin.metadata(['payments'])).topics[0]!.partitions[0]!;
    const follower = replicas.find((id) => id !== leader)!;

    await retryWhileRetriable(() =>
      client.admin.alterTopic({ name: 'payments', config: { minInsyncReplicas: 2 } }),
    );
    await until(() =>
      cluster.nodes[leader - 1]!.core.localTopic('payments')?.config.minInsyncReplicas === 2 ? true : null,
    );
    // Both replicas in sync: acks 'all' is acknowledged as before.
    expect((await producer.send({ topic: 'payments', value: 'two copies' })).offset).toBe(1n);

    // The follower's broker stops; a controlled shutdown takes it out of the ISR, and the leader
    // stays where it is.
    await cluster.nodes[follower - 1]!.stop({ deadlineMs: 500 });
    await until(
      async () => {
        const partition = (await client.admin.metadata(['payments'])).topics[0]!.partitions[0]!;
        return partition.leader === leader && partition.isr.length === 1 ? true : null;
      },
      { what: 'the ISR down to the leader' },
    );
    // The leader itself has applied the smaller ISR.
    const manager = cluster.nodes[leader - 1]!.core.replicaRequests as ReplicaManager;
    await until(() =>
      manager.replicationStats().partitions.find((p) => p.topic === 'payments')?.isr.length === 1
        ? true
        : null,
    );
    await expect(producer.send({ topic: 'payments', value: 'one copy' })).rejects.toMatchObject({
      codeName: 'NOT_ENOUGH_REPLICAS',
    });
    // acks 1 still needs the leader alone.
    expect((await client.producer({ acks: 1 }).send({ topic: 'payments', value: 'acks 1' })).offset).toBe(2n);
  }, 60_000);
});
