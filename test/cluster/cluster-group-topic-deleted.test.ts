// Consumer groups in a cluster of three brokers on a real etcd, when a topic they committed
// offsets for is deleted: the group's coordinator may hold no copy of that topic (so it never
// deletes one), and still forgets the group's offsets of it, with tombstones in the replicated
// `__consumer_offsets` that the next coordinator reads too. A topic created again under the name
// starts without them. The cluster's offsets topic keeps offsets by compaction only.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OFFSETS_TOPIC } from '../../src/broker/broker-core.js';
import type { BrokerNode } from '../../src/broker/broker-node.js';
import { groupOffsetsPartition } from '../../src/broker/groups/group-placement.js';
import type { Client } from '../../src/client/client.js';
import { connect } from '../../src/client/connect.js';
import type { ClusterMember } from '../../src/cluster/cluster-member.js';
import { type NodeCluster, startNodeCluster } from '../harness/cluster.js';
import { etcdAvailable } from '../harness/etcd.js';
import { retryWhileRetriable, until } from '../harness/until.js';

let cluster: NodeCluster;
const nodes: (BrokerNode | null)[] = [];
let client: Client;

describe.skipIf(!etcdAvailable())('a deleted topic in a cluster', () => {
  beforeAll(async () => {
    cluster = await startNodeCluster({ name: 'group-topic-deleted' });
    nodes.push(...cluster.nodes);
    client = await connect({ brokers: cluster.addresses().join(',') });
  }, 60_000);
  afterAll(async () => {
    await client?.close();
    await cluster?.stop();
  });

  it('is forgotten by the coordinator of a group that committed for it, also one without a copy', async () => {
    await retryWhileRetriable(() =>
      client.admin.createTopic({ name: 'gone', partitions: 1, replicationFactor: 1 }),
    );
    const producer = client.producer({ acks: 'all' });
    for (let i = 0; i < 5; i++)
      await retryWhileRetriable(() => producer.send({ topic: 'gone', value: `old${i}` }));
    // The first lookup creates the offsets topic; then pick a group whose coordinator is not the
    // broker holding `gone`.
    await retryWhileRetriable(() => client.admin.groupOffsets('probe'));
    const holder = nodes.findIndex((node) => node!.core.localTopic('gone') !== undefined);
    expect(holder).toBeGreaterThanOrEqual(0);
    // The offsets topic as the cluster records it (what every broker creates its copy from).
    const { member } = nodes[0]!.core.clusterGroups as unknown as { member: ClusterMember };
    const offsetsTopic = await until(() => member.metadata.topic(OFFSETS_TOPIC)?.value ?? null);
    expect(offsetsTopic.config).toMatchObject({ cleanup: 'compact', retentionMs: -1, retentionBytes: -1 });
    const metadata = await client.admin.metadata();
    const offsetsPartitions = metadata.topics.find((topic) => topic.name === OFFSETS_TOPIC)!.partitions;
    const groupId = Array.from({ length: 64 }, (_, i) => `readers-${i}`).find((id) => {
      const leader = offsetsPartitions[groupOffsetsPartition(id, offsetsPartitions.length)]!.leader;
      return leader !== holder + 1;
    })!;

    const consumer = client.consumer({ topics: ['gone'], group: groupId, autoCommit: false });
    for (let read = 0; read < 5; ) if ((await consumer.next()) !== null) read++;
    await consumer.commit();
    await consumer.close();
    expect(await client.admin.groupOffsets(groupId)).toEqual([
      expect.objectContaining({ topic: 'gone', partition: 0, offset: 5n }),
    ]);
    const coordinator = nodes.findIndex((node) =>
      node!.core.groups.list().some((g) => g.groupId === groupId),
    );
    expect(coordinator).toBeGreaterThanOrEqual(0);
    expect(coordinator).not.toBe(holder);
    expect(nodes[coordinator]!.core.localTopic('gone')).toBeUndefined();

    await retryWhileRetriable(() => client.admin.deleteTopic('gone'));
    await until(async () => (await client.admin.groupOffsets(groupId)).length === 0, {
      what: "the group's offsets of the deleted topic forgotten",
      timeoutMs: 10_000,
    });
    // Created again on every broker, so it outlives the coordinator's stop below.
    await retryWhileRetriable(() =>
      client.admin.createTopic({ name: 'gone', partitions: 1, replicationFactor: 3 }),
    );
    for (let i = 0; i < 2; i++)
      await retryWhileRetriable(() => producer.send({ topic: 'gone', value: `new${i}` }));
    await producer.close();

    // The coordinator stops: the next one reads the group's offsets from its own replica, where
    // the tombstones are too.
    const stopping = nodes[coordinator]!;
    nodes[coordinator] = null;
    await stopping.stop({ deadlineMs: 500 });
    const survivor = nodes.findIndex((node) => node !== null);
    const other = await connect({ brokers: cluster.address(survivor + 1) });
    try {
      // A member reads from the start of the new topic: no offset of the deleted one came back.
      const again = other.consumer({ topics: ['gone'], group: groupId, autoCommit: false });
      const values: string[] = [];
      let failed: string | null = null;
      const reading = (async () => {
        while (values.length < 2) {
          const message = await again.next();
          if (message !== null) values.push(message.value!.toString());
        }
      })().catch((error: unknown) => {
        failed = String(error);
      });
      await until(() => values.length === 2, {
        what: 'the new topic read from its start',
        timeoutMs: 30_000,
        abortIf: () => failed,
      });
      await reading;
      expect(values).toEqual(['new0', 'new1']);
      await again.commit();
      await again.close();
      expect(await other.admin.groupOffsets(groupId)).toEqual([
        expect.objectContaining({ topic: 'gone', partition: 0, offset: 2n }),
      ]);
    } finally {
      await other.close();
    }
  }, 120_000);
});
