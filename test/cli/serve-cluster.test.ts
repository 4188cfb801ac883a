// `serve --cluster` as real processes on a real etcd: three brokers, a topic with replication
// factor 3 created through the controller, produces with acks 'all' on the leader; then the leader
// is killed (SIGKILL): another broker leads, every acknowledged message is there once, in order,
// and the survivors' copies are the same bytes; a consumer group whose coordinator was on the
// killed broker continues from its committed offset on the new one, and streams keep their
// versions (a stale expected version is refused, the current one appends).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OFFSETS_TOPIC } from '../../src/broker/broker-core.js';
import { groupOffsetsPartition } from '../../src/broker/groups/group-placement.js';
import { run } from '../../src/cli/main.js';
import type { Client } from '../../src/client/client.js';
import { connect } from '../../src/client/connect.js';
import { serveRefusal, type TestBroker } from '../harness/broker.js';
import { type ProcessCluster, startCluster } from '../harness/cluster.js';
import { etcdAvailable } from '../harness/etcd.js';
import { until } from '../harness/until.js';

let cluster: ProcessCluster;
/** Broker id N is `brokers[N - 1]` (the cluster's list: a restart replaces its entry). */
let brokers: TestBroker[];

async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { env: {}, out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** Reads `count` messages as a member of `group` and commits them. */
async function consumeAndCommit(client: Client, group: string, count: number): Promise<string[]> {
  const consumer = client.consumer({ topics: ['payments'], group, autoCommit: false });
  const values: string[] = [];
  try {
    while (values.length < count) {
      const message = await consumer.next();
      if (message !== null) values.push(message.value!.toString());
    }
    await consumer.commit();
  } finally {
    await consumer.close();
  }
  return values;
}

describe.skipIf(!etcdAvailable())('serve --cluster', () => {
  beforeAll(async () => {
    cluster = await startCluster({ name: 'serve' });
    brokers = cluster.brokers;
  }, 90_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('refuses cluster settings that cannot work', async () => {
    const missingId = await serveRefusal({ env: { MEMORYSTREAMER_CLUSTER_ETCD: 'etcd://127.0.0.1:2379' } });
    expect(missingId.stderr).toMatch(/INVALID_CONFIG.*cluster.broker_id/);
    const idAlone = await serveRefusal({ env: { MEMORYSTREAMER_CLUSTER_BROKER_ID: '4' } });
    expect(idAlone.stderr).toMatch(/INVALID_CONFIG.*need cluster.etcd/);
  });

  it('keeps every acknowledged message when the leader is killed', async () => {
    const addresses = cluster.addresses();
    // Topics are created on the controller; the other brokers name it (NOT_CONTROLLER).
    await until(async () => {
      for (const address of addresses) {
        const created = await cli(
          '--broker',
          address,
          'topic',
          'create',
          'payments',
          '--replication-factor',
          '3',
        );
        if (created.code === 0) return true;
        expect(created.err).toMatch(/NOT_CONTROLLER/);
      }
      return null;
    });
    const leaderOf = async (from: string): Promise<number> => {
      const described = await cli('--json', '--broker', from, 'topic', 'describe', 'payments');
      const leader = (JSON.parse(described.out) as { partitions: Array<{ leader: number }> }).partitions[0]!
        .leader;
      if (leader < 1) throw new Error('no leader yet');
      return leader;
    };
    const leader = await until(() => leaderOf(addresses[0]!));
    // The client bootstraps from a broker that does not lead the partition: it routes by itself.
    const bootstrap = addresses[leader % 3]!;
    const client = await connect({ brokers: [bootstrap, ...addresses.filter((a) => a !== bootstrap)] });
    try {
      const producer = client.producer({ acks: 'all' });
      const sent = await until(async () =>
        Promise.all(
          Array.from({ length: 300 }, (_, i) =>
            producer.send({ topic: 'payments', key: `c${i % 5}`, value: `p${i}` }),
          ),
        ),
      );
      expect(sent.at(-1)!.offset).toBe(299n);

      // A group whose coordinator is the broker about to be killed: the first lookup makes the
      // offsets topic, then a group id is picked whose offsets partition that broker leads.
      await until(async () => consumeAndCommit(client, 'warm-up', 1));
      const offsets = await until(async () => {
        const topic = (await client.admin.metadata([OFFSETS_TOPIC])).topics[0]!;
        return topic.partitions.every((partition) => partition.leader > 0) ? topic : null;
      });
      const group = Array.from({ length: 200 }, (_, i) => `audit-${i}`).find(
        (id) => offsets.partitions[groupOffsetsPartition(id, offsets.partitions.length)]!.leader === leader,
      )!;
      expect(group).toBeDefined();
      expect(await consumeAndCommit(client, group, 100)).toEqual(
        Array.from({ length: 100 }, (_, i) => `p${i}`),
      );

      await brokers[leader - 1]!.kill();
      const survivors = addresses.filter((_, i) => i !== leader - 1);
      const next = await until(async () => {
        const id = await leaderOf(survivors[0]!);
        return id === leader ? null : id;
      });
      // The same client and producer go on with the new leader (acks 'all': the other survivor is
      // in the ISR).
      const after = await until(async () => producer.send({ topic: 'payments', value: 'after the kill' }));
      expect(after.offset).toBe(300n);
      const consumer = client.consumer({ topics: ['payments'], from: 'earliest' });
      await consumer.start();
      const seen: string[] = [];
      while (seen.length < 301) {
        const message = await consumer.next();
        if (message !== null) seen.push(message.value!.toString());
      }
      await consumer.close();
      expect(seen).toEqual([...Array.from({ length: 300 }, (_, i) => `p${i}`), 'after the kill']);
      expect(next).not.toBe(leader);
      // The group's offsets partition has a new leader, which coordinates it from its own copy:
      // the group goes on at its committed offset.
      const resumed = await until(async () => consumeAndCommit(client, group, 201));
      expect(resumed).toEqual([...Array.from({ length: 200 }, (_, i) => `p${i + 100}`), 'after the kill']);
      // Streams keep their versions on the new leader: stream c0 holds every fifth of the 300.
      await expect(
        producer.send({ topic: 'payments', key: 'c0', value: 'stale', expectedVersion: 59 }),
      ).rejects.toMatchObject({ codeName: 'STREAM_VERSION_CONFLICT' });
      const appended = await producer.send({
        topic: 'payments',
        key: 'c0',
        value: 'c0 after the kill',
        expectedVersion: 60,
      });
      expect(appended).toMatchObject({ offset: 301n, sequence: 60 });

      // cluster status: two brokers left, the partition under-replicated (ISR 2 of 3 replicas).
      // The heartbeats replaced the leader before its etcd lease expired: the killed broker stays
      // registered (listed) until then.
      type Status = {
        brokers: unknown[];
        controller: number;
        underReplicated: Array<{ topic: string; isr: number[] }>;
        offline: unknown[];
      };
      const degraded = await until(async () => {
        const status = JSON.parse(
          (await cli('--json', '--broker', addresses[next - 1]!, 'cluster', 'status')).out,
        ) as Status;
        return status.brokers.length === 2 ? status : null;
      });
      expect(degraded.brokers).toHaveLength(2);
      expect(degraded.underReplicated).toMatchObject([{ topic: 'payments' }]);
      expect(degraded.underReplicated[0]!.isr).toHaveLength(2);
      expect(degraded.offline).toEqual([]);

      // The killed broker starts again on its data directory: it follows the new leader, takes
      // what it missed, and rejoins the ISR.
      await cluster.restart(leader);
      await until(async () => {
        const described = await cli(
          '--json',
          '--broker',
          addresses[next - 1]!,
          'topic',
          'describe',
          'payments',
        );
        const isr = (JSON.parse(described.out) as { partitions: Array<{ isr: number[] }> }).partitions[0]!
          .isr;
        return isr.includes(leader) ? true : null;
      });
      const more = await producer.send({ topic: 'payments', value: 'with the old leader back' });
      expect(more.offset).toBe(302n);
      const healthy = await cli('--broker', addresses[next - 1]!, 'cluster', 'status');
      expect(healthy.out).toMatch(/under-replicated:\s+0/);
      expect(healthy.out).toMatch(/brokers:\s+1 127\.0\.0\.1:\d+, 2 127\.0\.0\.1:\d+, 3 /);
    } finally {
      await client.close();
    }
  }, 120_000);
});
