// A topic deleted and created again under its name, in a cluster of three brokers on a real etcd,
// where every broker hears of both changes before it looks (they are written in one etcd
// transaction here, which is what a delete and a create in quick succession look like to a broker
// whose reconcile is busy): every replica drops its copy of the old topic, so the new topic starts
// empty at offset 0, and none of the old messages can be read from it; and a group's committed
// offsets of the old topic are forgotten, also by a coordinator that holds no copy of it.

import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groupOffsetsPartition } from '../../../src/broker/groups/group-placement.js';
import type { Client } from '../../../src/client/client.js';
import { connect } from '../../../src/client/connect.js';
import { clusterPrefix, KEYS } from '../../../src/cluster/control-plane/metadata-keys.js';
import { decodeTopicRecord } from '../../../src/cluster/control-plane/metadata-records.js';
import { type NodeCluster, startNodeCluster } from '../../harness/cluster.js';
import { etcdAvailable } from '../../harness/etcd.js';
import { retryWhileRetriable, until } from '../../harness/until.js';

const NAME = 'recreated';
let cluster: NodeCluster;
let client: Client;

/**
 * Deletes `name` and creates it again with a new id in one etcd transaction: the record as it was
 * (the same replicas), no partition state (the controller elects leaders as for a new topic).
 */
async function recreateAtOnce(name: string, id: string): Promise<string | undefined> {
  const etcdClient = new Etcd3({ hosts: cluster.etcd.endpoint });
  const etcd = etcdClient.namespace(clusterPrefix(NAME));
  try {
    const stored = await etcd.get(KEYS.topic(name)).buffer();
    const record = decodeTopicRecord(KEYS.topic(name), stored!);
    const result = await etcd
      .if(KEYS.topic(name), 'Create', '>', 0)
      .then(
        etcd.delete().prefix(KEYS.topicPartitionsPrefix(name)),
        etcd.put(KEYS.topic(name)).value(JSON.stringify({ ...record, id })),
      )
      .commit();
    expect(result.succeeded).toBe(true);
    return record.id;
  } finally {
    etcdClient.close();
  }
}

describe.skipIf(!etcdAvailable())('a topic deleted and created again in a cluster', () => {
  beforeAll(async () => {
    cluster = await startNodeCluster({ name: NAME });
    client = await connect({ brokers: cluster.addresses().join(',') });
  }, 60_000);
  afterAll(async () => {
    await client?.close();
    await cluster?.stop();
  });

  it('starts empty on every replica, though each heard of the delete and the create at once', async () => {
    await retryWhileRetriable(() =>
      client.admin.createTopic({ name: 'reborn', partitions: 1, replicationFactor: 3 }),
    );
    const producer = client.producer({ acks: 'all' });
    for (let i = 0; i < 3; i++)
      await retryWhileRetriable(() => producer.send({ topic: 'reborn', value: `old${i}` }));
    // Every replica holds the old messages.
    await until(() =>
      cluster.nodes.every((node) => node.core.localTopic('reborn') !== undefined)
        ? cluster.nodes.every((node) => node.core.partition('reborn', 0).log.highWatermark === 3n)
        : false,
    );
    // Every copy carries the id the controller gave the topic, and so does the topic's description.
    const oldIds = cluster.nodes.map((node) => node.core.localTopic('reborn')!.id);
    expect(new Set(oldIds).size).toBe(1);
    expect((await retryWhileRetriable(() => client.admin.describeTopic('reborn'))).topic.id).toBe(oldIds[0]);

    // The delete and the create as one etcd transaction.
    expect(await recreateAtOnce('reborn', 'reborn-2')).toBe(oldIds[0]);

    // Each replica's copy now carries the new id, and holds nothing of the old topic.
    await until(
      () =>
        cluster.nodes.every((node) => node.core.localTopic('reborn')?.id === 'reborn-2') &&
        cluster.nodes.every((node) => node.core.partition('reborn', 0).log.highWatermark === 0n),
      { what: 'every replica emptied for the new topic', timeoutMs: 20_000 },
    );
    expect((await retryWhileRetriable(() => client.admin.describeTopic('reborn'))).topic.id).toBe('reborn-2');
    const receipt = await retryWhileRetriable(() => producer.send({ topic: 'reborn', value: 'new0' }));
    expect(receipt.offset).toBe(0n);
    await producer.close();
    const consumer = client.consumer({ topics: ['reborn'], from: 'earliest' });
    const values: string[] = [];
    for await (const message of consumer) {
      values.push(message.value!.toString());
      break;
    }
    expect(values).toEqual(['new0']);
    await until(() =>
      cluster.nodes.every((node) => node.core.partition('reborn', 0).log.highWatermark === 1n),
    );
  }, 90_000);

  it('leaves no committed offset of the old topic, also at a coordinator without a copy of it', async () => {
    await retryWhileRetriable(() =>
      client.admin.createTopic({ name: 'ledger', partitions: 1, replicationFactor: 1 }),
    );
    const producer = client.producer({ acks: 'all' });
    for (let i = 0; i < 3; i++)
      await retryWhileRetriable(() => producer.send({ topic: 'ledger', value: `old${i}` }));
    // The first lookup creates the offsets topic; then a group whose coordinator does not hold
    // `ledger` (its copy would go as recreated, forgetting the offsets on that path).
    await retryWhileRetriable(() => client.admin.groupOffsets('probe'));
    const holder = cluster.nodes.findIndex((node) => node.core.localTopic('ledger') !== undefined);
    expect(holder).toBeGreaterThanOrEqual(0);
    const metadata = await client.admin.metadata();
    const offsetsPartitions = metadata.topics.find(
      (topic) => topic.name === '__consumer_offsets',
    )!.partitions;
    const groupId = Array.from({ length: 64 }, (_, i) => `auditors-${i}`).find(
      (id) => offsetsPartitions[groupOffsetsPartition(id, offsetsPartitions.length)]!.leader !== holder + 1,
    )!;
    const consumer = client.consumer({ topics: ['ledger'], group: groupId, autoCommit: false });
    for (let read = 0; read < 3; ) if ((await consumer.next()) !== null) read++;
    await consumer.commit();
    await consumer.close();
    expect(await client.admin.groupOffsets(groupId)).toEqual([
      expect.objectContaining({ topic: 'ledger', partition: 0, offset: 3n }),
    ]);

    // Every broker names the topic by the cluster's id, those without a copy too.
    const ids = cluster.nodes.map(
      (node) => node.core.clusterMetadata!.metadata({ topics: ['ledger'] }).topics[0]!.id,
    );
    expect(new Set(ids)).toEqual(new Set([cluster.nodes[holder]!.core.localTopic('ledger')!.id]));
    expect(ids[0]).not.toBe('');

    await recreateAtOnce('ledger', 'ledger-2');
    await until(async () => (await client.admin.groupOffsets(groupId)).length === 0, {
      what: "the group's offsets of the old topic forgotten",
      timeoutMs: 10_000,
    });
    await retryWhileRetriable(() => producer.send({ topic: 'ledger', value: 'new0' }));
    await producer.close();
    // The group reads the new topic from its start.
    const again = client.consumer({ topics: ['ledger'], group: groupId, autoCommit: false });
    const first = await until(async () => await again.next(), { what: 'the new topic read' });
    expect(first.value!.toString()).toBe('new0');
    expect(first.offset).toBe(0n);
    await again.close();
  }, 90_000);
});
