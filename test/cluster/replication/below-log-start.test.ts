// Three brokers on a real etcd: a replica whose log ends below its leader's log start (retention
// removed the leader's first segments) empties its log, starts it again at the leader's log start
// and catches up. Two ways to get there: a partition reassigned to a broker that holds no copy,
// and a follower stopped while the leader wrote and retention removed more than it holds.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerNode } from '../../../src/broker/broker-node.js';
import type { Client } from '../../../src/client/client.js';
import { connect } from '../../../src/client/connect.js';
import { clusterPart } from '../../../src/cluster/cluster-node.js';
import { MemoryStreamerError } from '../../../src/common/errors.js';
import type { PartitionLog } from '../../../src/storage/partition-log.js';
import { type NodeCluster, startNodeCluster } from '../../harness/cluster.js';
import { etcdAvailable } from '../../harness/etcd.js';
import { until } from '../../harness/until.js';

let cluster: NodeCluster;
let client: Client;

const node = (id: number) => cluster.nodes[id - 1]!;
const logOf = (id: number, topic: string): PartitionLog => node(id).core.partition(topic, 0).log;

async function createTopic(name: string, config: Record<string, unknown>) {
  return until(async () => {
    try {
      return await client.admin.createTopic({ name, partitions: 1, replicationFactor: 2, config } as never);
    } catch (error) {
      if (error instanceof MemoryStreamerError && error.codeName === 'NOT_CONTROLLER') return null;
      throw error;
    }
  });
}

async function partitionState(topic: string) {
  return (await client.admin.metadata([topic])).topics[0]!.partitions[0]!;
}

/** The partition once it has a leader and both replicas in its ISR. */
async function settled(topic: string) {
  return until(async () => {
    const state = await partitionState(topic);
    return state.leader > 0 && state.isr.length === 2 ? state : null;
  });
}

/** 300 messages of about 100 bytes with acks 'all', then retention on the leader: its log starts past 0. */
async function fillAndRetain(topic: string, leader: number): Promise<bigint> {
  const producer = client.producer({ acks: 'all' });
  for (let i = 0; i < 300; i++) await until(() => producer.send({ topic, value: `${'v'.repeat(100)}${i}` }));
  await node(leader).core.applyRetention();
  const start = logOf(leader, topic).logStartOffset;
  expect(start).toBeGreaterThan(0n);
  return start;
}

/** Every batch of the log from its start, as stored. */
async function bytesOf(log: PartitionLog): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (let at = log.logStartOffset; at < log.logEndOffset; ) {
    const { data, nextOffset } = await log.readForReplica(at, 1 << 20);
    if (data.length === 0) break;
    chunks.push(data);
    at = nextOffset;
  }
  return Buffer.concat(chunks);
}

/** Waits until broker `id` holds the leader's log exactly, from the leader's log start, and is in the ISR. */
async function caughtUp(topic: string, leader: number, id: number): Promise<void> {
  await until(
    async () => {
      if (node(id).core.localTopic(topic) === undefined) return null;
      const copy = logOf(id, topic);
      const original = logOf(leader, topic);
      if (copy.logEndOffset !== original.logEndOffset) return null;
      return (await partitionState(topic)).isr.includes(id) ? true : null;
    },
    { timeoutMs: 20_000 },
  );
  const copy = logOf(id, topic);
  const original = logOf(leader, topic);
  expect(copy.logStartOffset).toBe(original.logStartOffset);
  expect((await bytesOf(copy)).equals(await bytesOf(original))).toBe(true);
}

describe.skipIf(!etcdAvailable())('a replica below its leader log start', () => {
  beforeAll(async () => {
    cluster = await startNodeCluster({ name: 'below-start' });
    client = await connect({ brokers: cluster.addresses().join(',') });
    await until(async () => ((await client.admin.metadata()).brokers.length === 3 ? true : null));
  }, 60_000);

  afterAll(async () => {
    await client?.close();
    await cluster?.stop();
  });

  it('a partition reassigned after retention: the new replica starts at the leader log start, joins the ISR, the move completes', async () => {
    await createTopic('moved', { segmentBytes: 4096, retentionBytes: 8192 });
    const before = await settled('moved');
    const leader = before.leader;
    const joining = [1, 2, 3].find((id) => !before.replicas.includes(id))!;
    const start = await fillAndRetain('moved', leader);

    await client.admin.reassignPartitions([{ topic: 'moved', partition: 0, replicas: [leader, joining] }]);

    await caughtUp('moved', leader, joining);
    expect(logOf(joining, 'moved').logStartOffset).toBeGreaterThanOrEqual(start);
    await until(async () => ((await client.admin.reassignments()).length === 0 ? true : null), {
      timeoutMs: 20_000,
    });
    const after = await partitionState('moved');
    expect([...after.replicas].sort()).toEqual([leader, joining].sort());
    expect([...after.isr].sort()).toEqual([leader, joining].sort());
  }, 60_000);

  it('a follower away longer than retention: restarted, it starts at the leader log start and catches up', async () => {
    await createTopic('away', { segmentBytes: 4096, retentionBytes: 8192 });
    const state = await settled('away');
    const leader = state.leader;
    const follower = state.replicas.find((id) => id !== leader)!;
    const producer = client.producer({ acks: 'all' });
    for (let i = 0; i < 20; i++) await until(() => producer.send({ topic: 'away', value: `early ${i}` }));
    await until(() => (logOf(follower, 'away').logEndOffset === 20n ? true : null));

    await node(follower).stop({ deadlineMs: 500 });
    await until(async () => ((await partitionState('away')).isr.length === 1 ? true : null));
    const start = await fillAndRetain('away', leader);
    expect(start).toBeGreaterThan(20n);

    const port = Number(cluster.address(follower).split(':')[1]);
    cluster.nodes[follower - 1] = await BrokerNode.start(
      {
        dataDir: cluster.dataDir(follower),
        port,
        brokerId: follower,
        memoryTrim: false,
        raiseFileLimit: false,
      },
      [
        clusterPart({
          cluster: cluster.url,
          brokerId: follower,
          advertise: cluster.address(follower),
          leaseTtlSeconds: 2,
        }),
      ],
    );

    await caughtUp('away', leader, follower);
    // Its log on disk is the leader's from the leader's log start: it reopens as it is.
    expect(logOf(follower, 'away').leaderEpochs.entries()).toEqual(
      logOf(leader, 'away').leaderEpochs.entries(),
    );
  }, 60_000);
});
