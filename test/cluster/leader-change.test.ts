// What a partition's state means to clients survives a change of leader: the stream index and
// the idempotent producers' sequences are derived from the appended batches on every replica (the
// leader and the followers run the same hook), so the new leader holds the same stream versions
// (expected-version appends go on where they were, a stale one is refused) and the same producer
// sequences (a retried batch is answered as a duplicate, a gap is refused). Three brokers in
// process on a real etcd; the leader's broker stops and another replica takes over.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrokerNode } from '../../src/broker/broker-node.js';
import type { Client } from '../../src/client/client.js';
import { connect } from '../../src/client/connect.js';
import { encodeRecordBatch } from '../../src/protocol/record-batch.js';
import { type NodeCluster, startNodeCluster } from '../harness/cluster.js';
import { etcdAvailable } from '../harness/etcd.js';
import { retryWhileRetriable, until } from '../harness/until.js';

let cluster: NodeCluster;
const nodes: (BrokerNode | null)[] = [];
let client: Client;

function leaderIndex(topic: string): number {
  return nodes.findIndex((node) => {
    try {
      node?.core.replicaRoles?.checkRead(topic, 0);
      return node !== null;
    } catch {
      return false;
    }
  });
}

describe.skipIf(!etcdAvailable())('a leader change keeps streams and producer state', () => {
  beforeAll(async () => {
    cluster = await startNodeCluster({ name: 'change' });
    nodes.push(...cluster.nodes);
    client = await connect({ brokers: cluster.addresses().join(',') });
  }, 60_000);
  afterAll(async () => {
    await client?.close();
    await cluster?.stop();
  });

  it('expected-version appends and idempotent retries go on at the new leader', async () => {
    await retryWhileRetriable(() =>
      client.admin.createTopic({ name: 'ledger', partitions: 1, replicationFactor: 3 }),
    );
    const producer = client.producer({ acks: 'all' });
    // Stream acct-1: five events, each appended only at the version the writer expects.
    let receipt = await retryWhileRetriable(() =>
      producer.send({ topic: 'ledger', key: 'acct-1', value: 'e0' }),
    );
    for (let i = 1; i < 5; i++)
      receipt = await producer.send({
        topic: 'ledger',
        key: 'acct-1',
        value: `e${i}`,
        expectedVersion: receipt.sequence + 1,
      });
    const versionBefore = receipt.sequence + 1;

    // A raw idempotent batch: producer id, epoch 0, sequence 0, acknowledged by every replica.
    const before = leaderIndex('ledger');
    expect(before).toBeGreaterThanOrEqual(0);
    const { producerId } = await nodes[before]!.core.execute('initProducerId', {});
    const stamped = (baseSequence: number, value: string) =>
      encodeRecordBatch([{ key: 'acct-2', value }], { producerId, producerEpoch: 0, baseSequence });
    const first = await nodes[before]!.core.execute('produce', {
      topic: 'ledger',
      partition: 0,
      acks: 'all',
      batch: stamped(0, 'p0'),
    });
    expect(first.duplicate).toBe(false);

    // The leader's broker stops; another replica leads at a new epoch.
    const stopping = nodes[before]!;
    nodes[before] = null;
    await stopping.stop({ deadlineMs: 500 });
    const after = await until(async () => {
      const index = leaderIndex('ledger');
      return index >= 0 ? index : null;
    }, 30_000);
    expect(after).not.toBe(before);
    const leader = nodes[after]!.core;

    // The retry of the acknowledged batch (its answer was lost, say) is a duplicate: same offsets.
    const retried = await leader.execute('produce', {
      topic: 'ledger',
      partition: 0,
      acks: 'all',
      batch: stamped(0, 'p0'),
    });
    expect(retried).toMatchObject({ duplicate: true, baseOffset: first.baseOffset });
    // The producer's next sequence goes on; a gap is refused.
    await expect(
      leader.execute('produce', { topic: 'ledger', partition: 0, acks: 'all', batch: stamped(2, 'p2') }),
    ).rejects.toMatchObject({ codeName: 'OUT_OF_ORDER_SEQUENCE' });
    const next = await leader.execute('produce', {
      topic: 'ledger',
      partition: 0,
      acks: 'all',
      batch: stamped(1, 'p1'),
    });
    expect(next.duplicate).toBe(false);
    expect(next.baseOffset).toBe(first.baseOffset + 1n);

    // The stream is at the same version on the new leader: a stale expected version is refused,
    // the current one appends. The same client found the new leader by itself.
    await expect(
      producer.send({ topic: 'ledger', key: 'acct-1', value: 'stale', expectedVersion: versionBefore - 2 }),
    ).rejects.toMatchObject({ codeName: 'STREAM_VERSION_CONFLICT' });
    const appended = await retryWhileRetriable(() =>
      producer.send({ topic: 'ledger', key: 'acct-1', value: 'e5', expectedVersion: versionBefore }),
    );
    expect(appended.sequence).toBe(versionBefore);

    // The whole stream reads back in order with its sequences from the new leader.
    const stream = await leader.execute('readStream', {
      topic: 'ledger',
      key: Buffer.from('acct-1'),
      fromSequence: 0,
      maxRecords: 100,
      maxWaitMs: 0,
    });
    const values = stream.records.map((record) => record.value?.toString());
    expect(values).toEqual(['e0', 'e1', 'e2', 'e3', 'e4', 'e5']);
  }, 90_000);
});
