// A group coordinator that fences itself stops coordinating. Three brokers in process on a real
// etcd; brokers 2 and 3 reach etcd through proxies, so the test can make one of them (the victim,
// which leads the offsets partition of the groups used here) stop hearing from the controller while
// it keeps serving clients:
//
//   - its etcd answers held back (the controller answers its heartbeats with a metadata revision
//     its watch has not reached): it fences itself for a moment but the controller does not
//     replace it. Meanwhile it answers group requests NOT_COORDINATOR, saying it is fenced; heard
//     again, it coordinates the group again, from the committed offsets in its log and without the
//     members it had before (they were told NOT_COORDINATOR, so they join again anyway);
//   - its etcd cut off: its lease expires, the controller moves its leadership, and its metadata
//     stays where it was (it still believes it leads). It answers NOT_COORDINATOR all the same, and
//     a consumer group member that was coordinated there goes on at the new coordinator.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OFFSETS_TOPIC } from '../../src/broker/broker-core.js';
import { groupOffsetsPartition } from '../../src/broker/groups/group-placement.js';
import type { Client } from '../../src/client/client.js';
import { connect } from '../../src/client/connect.js';
import type { Consumer } from '../../src/client/consumer/consumer.js';
import type { Message } from '../../src/client/message.js';
import { TcpTransport } from '../../src/client/tcp-transport.js';
import { MemoryStreamerError } from '../../src/common/errors.js';
import { type NodeCluster, startNodeCluster } from '../harness/cluster.js';
import { type DelayProxy, startDelayProxy } from '../harness/delay-proxy.js';
import { etcdAvailable } from '../harness/etcd.js';
import { retryWhileRetriable, until } from '../harness/until.js';

/** How late etcd's answers reach the victim in the first test: well past the fencing time (300 ms). */
const LAG_MS = 1_500;

/** The error a request ended with (null when it succeeded). */
async function failureOf(action: Promise<unknown>): Promise<MemoryStreamerError | null> {
  try {
    await action;
    return null;
  } catch (error) {
    if (error instanceof MemoryStreamerError) return error;
    throw error;
  }
}

/**
 * Reads `consumer` with a time limit: `next(ms)` is its next message, or null when none came within
 * `ms` (the read under way is kept for the next call, so no message is lost to a timeout).
 */
function reader(consumer: Consumer): (ms: number) => Promise<Message | null> {
  let pending: Promise<Message | null> | null = null;
  return async (ms) => {
    pending ??= consumer.next();
    const read = pending;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = Symbol('timed out');
    try {
      const result = await Promise.race([
        read,
        new Promise<typeof timedOut>((resolve) => {
          timer = setTimeout(() => resolve(timedOut), ms);
        }),
      ]);
      if (result === timedOut) return null;
      pending = null;
      return result;
    } finally {
      clearTimeout(timer);
    }
  };
}

describe.skipIf(!etcdAvailable())('a self-fenced group coordinator', () => {
  let cluster: NodeCluster;
  const proxies = new Map<number, DelayProxy>();
  let client: Client;
  /** The broker whose etcd is held back, then cut off; it leads `partition` of the offsets topic. */
  let victim: number;
  let partition: number;
  /** A connection straight to the victim, for group requests it must refuse. */
  let direct: TcpTransport;

  const addressOf = (id: number) => ({ host: '127.0.0.1', port: Number(cluster.address(id).split(':')[1]) });

  /** A group id whose offsets (and so coordination) are in the victim's offsets partition. */
  const groupOn = (prefix: string) => {
    for (let i = 0; ; i++)
      if (groupOffsetsPartition(`${prefix}-${i}`, 8) === partition) return `${prefix}-${i}`;
  };

  /** Waits until the victim refuses to lead because it is fenced (its produce path says so). */
  const fenced = (timeoutMs: number) =>
    until(
      () => {
        try {
          cluster.nodes[victim - 1]!.core.replicaRoles!.leaderEpochForProduce(OFFSETS_TOPIC, partition, 1);
          return null;
        } catch (error) {
          return /is fenced/.test((error as Error).message);
        }
      },
      { timeoutMs, intervalMs: 5, what: `broker ${victim} fenced` },
    );

  beforeAll(async () => {
    cluster = await startNodeCluster({
      name: 'fenced-coordinator',
      // The held-back lease keep-alives come back LAG_MS late too: a lease far longer than that.
      leaseTtlSeconds: 6,
      etcdEndpointFor: async (id, etcd) => {
        if (id === 1) return etcd.endpoint;
        const url = new URL(etcd.endpoint);
        const proxy = await startDelayProxy({ host: url.hostname, port: Number(url.port) });
        proxies.set(id, proxy);
        return `http://${proxy.address}`;
      },
    });
    client = await connect({ brokers: cluster.address(1) });
    await retryWhileRetriable(() =>
      client.admin.createTopic({ name: 'orders', partitions: 2, replicationFactor: 3 }),
    );
    const producer = client.producer({ acks: 'all' });
    for (let i = 0; i < 10; i++)
      await retryWhileRetriable(() => producer.send({ topic: 'orders', partition: i % 2, value: `m${i}` }));
    // The first coordinator lookup makes the offsets topic (on the controller).
    const lookup = new TcpTransport({ brokers: [addressOf(1)] });
    try {
      await retryWhileRetriable(() =>
        lookup.request('findCoordinator', { groupId: 'warm-up' }, { timeoutMs: 15_000 }),
      );
    } finally {
      await lookup.close();
    }
    // An offsets partition led by broker 2 or 3 (not the controller) with every replica in sync,
    // so that another broker can take it over.
    ({ victim, partition } = await until(
      async () => {
        const metadata = await client.admin.metadata([OFFSETS_TOPIC]);
        const partitions = metadata.topics[0]!.partitions;
        if (partitions.length !== 8 || partitions.some((p) => p.leader <= 0 || p.isr.length !== 3))
          return null;
        const led = partitions.find((p) => p.leader !== 1 && p.leader !== metadata.controllerId);
        return led === undefined ? null : { victim: led.leader, partition: led.partition };
      },
      { what: 'an offsets partition led by broker 2 or 3 with a full ISR' },
    ));
    // Its own metadata agrees (so it coordinates the partition's groups).
    await until(
      () =>
        cluster.nodes[victim - 1]!.core.clusterMetadata?.metadata({ topics: [OFFSETS_TOPIC] }).topics[0]
          ?.partitions[partition]?.leader === victim,
    );
    direct = new TcpTransport({ brokers: [addressOf(victim)] });
  }, 90_000);

  afterAll(async () => {
    await direct?.close();
    await client?.close();
    await cluster?.stop();
    for (const proxy of proxies.values()) await proxy.close();
  });

  it('refuses group requests while fenced, and coordinates afresh once heard again', async () => {
    const groupId = groupOn('held');
    const joined = await retryWhileRetriable(() =>
      direct.request(
        'joinGroup',
        { groupId, memberId: '', topics: ['orders'], sessionTimeoutMs: 120_000, strategy: 'range' },
        { timeoutMs: 10_000 },
      ),
    );
    await direct.request(
      'commitOffsets',
      {
        groupId,
        memberId: joined.memberId,
        generation: joined.generation,
        offsets: [{ topic: 'orders', partition: 0, offset: 3n }],
      },
      { timeoutMs: 10_000 },
    );
    expect((await direct.request('describeGroup', { groupId }, { timeoutMs: 5_000 })).members).toHaveLength(
      1,
    );

    // The controller's metadata moves on (a new topic) while the victim's watch lags LAG_MS: the
    // controller names a revision the victim has not reached, so it stops counting as heard.
    proxies.get(victim)!.setDelay(LAG_MS);
    await client.admin.createTopic({ name: 'bump', partitions: 1, replicationFactor: 1 });
    await fenced(10_000);
    const refused = await Promise.all([
      failureOf(direct.request('describeGroup', { groupId }, { timeoutMs: 5_000 })),
      failureOf(direct.request('fetchOffsets', { groupId }, { timeoutMs: 5_000 })),
      failureOf(
        direct.request(
          'heartbeat',
          { groupId, memberId: joined.memberId, generation: joined.generation },
          { timeoutMs: 5_000 },
        ),
      ),
    ]);
    for (const error of refused) {
      expect(error?.codeName).toBe('NOT_COORDINATOR');
      expect(error?.message).toMatch(new RegExp(`broker ${victim} is fenced`));
    }

    // Heard again (the controller never replaced it): it coordinates the group again, with the
    // offsets committed before, and without the member it held before it was fenced.
    const described = await until(() => direct.request('describeGroup', { groupId }, { timeoutMs: 5_000 }), {
      timeoutMs: 20_000,
      what: `broker ${victim} coordinating again`,
    });
    expect(described.members).toEqual([]);
    expect((await direct.request('fetchOffsets', { groupId }, { timeoutMs: 5_000 })).offsets).toEqual([
      { topic: 'orders', partition: 0, offset: 3n },
    ]);
    const metadata = await client.admin.metadata([OFFSETS_TOPIC]);
    expect(metadata.topics[0]!.partitions[partition]!.leader).toBe(victim);
    // etcd's answers reach the victim at once again (once those held back are through).
    proxies.get(victim)!.setDelay(0);
  }, 60_000);

  // Last: the victim loses etcd for good.
  it('refuses group requests once replaced, and the group goes on at the new coordinator', async () => {
    const groupId = groupOn('moved');
    const consumer = client.consumer({
      topics: ['orders'],
      group: groupId,
      autoCommit: false,
      from: 'earliest',
      // A heartbeat every second.
      sessionTimeoutMs: 3_000,
    });
    const next = reader(consumer);
    try {
      const seen = new Set<string>();
      const first = Date.now() + 20_000;
      while (seen.size < 10 && Date.now() < first) {
        const message = await next(1_000);
        if (message !== null) seen.add(message.value!.toString());
      }
      expect(seen.size).toBe(10);
      expect(cluster.nodes[victim - 1]!.core.groups.list().map((g) => g.groupId)).toContain(groupId);

      await proxies.get(victim)!.close();
      proxies.delete(victim);
      // Its lease expires in etcd: the controller moves the offsets partition to another broker,
      // which coordinates the group from then on; the victim hears of none of it.
      const successor = await until(
        async () => {
          const leader = (await client.admin.metadata([OFFSETS_TOPIC])).topics[0]!.partitions[partition]!
            .leader;
          return leader > 0 && leader !== victim ? leader : null;
        },
        { timeoutMs: 20_000, what: 'a new leader of the offsets partition' },
      );
      await fenced(10_000);
      const stale = cluster.nodes[victim - 1]!.core.clusterMetadata!.metadata({ topics: [OFFSETS_TOPIC] });
      expect(stale.topics[0]!.partitions[partition]!.leader).toBe(victim);
      const refused = await failureOf(direct.request('describeGroup', { groupId }, { timeoutMs: 5_000 }));
      expect(refused?.codeName).toBe('NOT_COORDINATOR');
      expect(refused?.message).toMatch(new RegExp(`broker ${victim} is fenced`));

      // The member, told NOT_COORDINATOR by the victim at its next heartbeat, finds the new
      // coordinator and joins the group there (reading on meanwhile: the consumer takes its group
      // steps as it is read).
      const coordinator = cluster.nodes[successor - 1]!.core.groups;
      const joinedBy = Date.now() + 20_000;
      const joinedThere = () => {
        try {
          return coordinator.describe(groupId).members.length === 1;
        } catch {
          return false;
        }
      };
      while (!joinedThere() && Date.now() < joinedBy) {
        const message = await next(200);
        if (message !== null) seen.add(message.value!.toString());
      }
      expect(joinedThere()).toBe(true);
      expect(cluster.nodes[victim - 1]!.core.groups.list().map((g) => g.groupId)).not.toContain(groupId);

      // It goes on reading, and its commit is taken by the new coordinator.
      const producer = client.producer({ acks: 'all' });
      for (let i = 0; i < 10; i++)
        await retryWhileRetriable(() => producer.send({ topic: 'orders', partition: i % 2, value: `n${i}` }));
      const wanted = Array.from({ length: 10 }, (_, i) => `n${i}`);
      const readBy = Date.now() + 20_000;
      while (wanted.some((v) => !seen.has(v)) && Date.now() < readBy) {
        const message = await next(1_000);
        if (message !== null) seen.add(message.value!.toString());
      }
      expect([...seen].filter((v) => v.startsWith('n')).sort()).toEqual(wanted);
      await consumer.commit();
      expect(
        coordinator
          .fetchOffsets(groupId)
          .map((o) => [o.topic, o.partition, o.offset])
          .sort(),
      ).toEqual([
        ['orders', 0, 10n],
        ['orders', 1, 10n],
      ]);
    } finally {
      await consumer.close();
    }
  }, 90_000);
});
