// A broker node's cluster part exports the replication and controller metrics: three brokers on a
// real etcd, a topic with replication factor 3; a follower stops, and its partition's leader
// reports it under-replicated with an ISR shrink counted; the follower comes back and the ISR
// expands again. A broker without a cluster exports none of these series.

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerNode } from '../../src/broker/broker-node.js';
import { connect } from '../../src/client/connect.js';
import { clusterPart } from '../../src/cluster/cluster-node.js';
import { MemoryStreamerError } from '../../src/common/errors.js';
import { REPLICATION_METRIC_NAMES } from '../../src/metrics/replication-metrics.js';
import { type EtcdProcess, etcdAvailable, freePort, startEtcd } from '../harness/etcd.js';
import { makeTempDir, removeTempDir } from '../harness/temp-dir.js';
import { until } from '../harness/until.js';

let etcd: EtcdProcess;
let root: string;
let cluster: string;
const nodes: Array<BrokerNode | null> = [null, null, null];
const ports: number[] = [];

async function startNode(index: number): Promise<BrokerNode> {
  const brokerId = index + 1;
  const node = await BrokerNode.start(
    {
      dataDir: join(root, `b${brokerId}`),
      port: ports[index]!,
      brokerId,
      memoryTrim: false,
      raiseFileLimit: false,
    },
    [
      clusterPart({
        cluster,
        brokerId,
        advertise: `127.0.0.1:${ports[index]!}`,
        leaseTtlSeconds: 2,
        replication: { replicaLagTimeMs: 1_000 },
      }),
    ],
  );
  nodes[index] = node;
  return node;
}

/** The value of one series in Prometheus text (labels given as they are printed), or null. */
function sample(text: string, name: string, labels = ''): number | null {
  const prefix = labels === '' ? `${name} ` : `${name}{${labels}} `;
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  return line === undefined ? null : Number(line.slice(prefix.length));
}

const metricsOf = (node: BrokerNode) => node.core.metrics.text();

describe.skipIf(!etcdAvailable())('cluster node metrics: three brokers', () => {
  beforeAll(async () => {
    etcd = await startEtcd();
    root = await makeTempDir('ms-cluster-metrics-');
    cluster = `${etcd.endpoint.replace('http://', 'etcd://')}/metrics`;
    for (let i = 0; i < 3; i++) ports.push(await freePort());
    for (let i = 0; i < 3; i++) await startNode(i);
  }, 60_000);
  afterAll(async () => {
    for (const node of nodes) await node?.stop({ deadlineMs: 500 });
    await etcd?.stop();
    if (root !== undefined) await removeTempDir(root);
  });

  it('counts under-replication and ISR shrinks on the leader, and the ISR expanding again', async () => {
    const client = await connect({ brokers: ports.map((port) => `127.0.0.1:${port}`).join(',') });
    try {
      await until(async () => {
        try {
          return await client.admin.createTopic({ name: 'metered', partitions: 1, replicationFactor: 3 });
        } catch (error) {
          if (error instanceof MemoryStreamerError && error.retriable) return null;
          if (error instanceof MemoryStreamerError && error.codeName === 'NOT_CONTROLLER') return null;
          throw error;
        }
      });
      await until(async () =>
        client
          .producer({ acks: 'all' })
          .send({ topic: 'metered', value: 'one' })
          .catch(() => null),
      );
    } finally {
      await client.close();
    }
    const leaderIndex = nodes.findIndex((node) => {
      try {
        node!.core.replicaRoles!.checkRead('metered', 0);
        return true;
      } catch {
        return false;
      }
    });
    expect(leaderIndex).toBeGreaterThanOrEqual(0);
    const leader = nodes[leaderIndex]!;
    const series = 'topic="metered",partition="0"';
    const healthy = await metricsOf(leader);
    expect(sample(healthy, 'memorystreamer_replication_under_replicated_partitions')).toBe(0);
    expect(sample(healthy, 'memorystreamer_replication_led_partitions')).toBeGreaterThanOrEqual(1);
    const shrinksBefore = sample(healthy, 'memorystreamer_replication_isr_shrinks_total') ?? 0;
    const expandsBefore = sample(healthy, 'memorystreamer_replication_isr_expands_total') ?? 0;

    // Exactly one controller among the three, with the same epoch everywhere, and the elections
    // it made counted there; nothing is offline.
    const texts = await Promise.all(nodes.map((node) => metricsOf(node!)));
    const clusterId = leader.core.clusterMetadata!.metadata({}).clusterId;
    const active = texts.map((t) =>
      sample(t, 'memorystreamer_controller_active', `cluster_id="${clusterId}"`),
    );
    expect(active.filter((v) => v === 1)).toHaveLength(1);
    expect(active.filter((v) => v === 0)).toHaveLength(2);
    const epochs = new Set(texts.map((t) => sample(t, 'memorystreamer_controller_epoch')));
    expect(epochs.size).toBe(1);
    expect([...epochs][0]).toBeGreaterThan(0);
    const controllerText = texts[active.indexOf(1)]!;
    expect(sample(controllerText, 'memorystreamer_controller_leader_elections_total')).toBeGreaterThanOrEqual(
      1,
    );
    expect(sample(controllerText, 'memorystreamer_controller_unclean_leader_elections_total')).toBe(0);
    for (const t of texts) expect(sample(t, 'memorystreamer_replication_offline_partitions')).toBe(0);

    // A follower stops: the leader shows the partition under-replicated, an ISR shrink, and the
    // stopped follower's lag.
    const followerIndex = [0, 1, 2].find((i) => i !== leaderIndex && nodes[i] !== null)!;
    const followerId = followerIndex + 1;
    await nodes[followerIndex]!.stop({ deadlineMs: 500 });
    nodes[followerIndex] = null;
    await until(
      async () => {
        const text = await metricsOf(leader);
        if (sample(text, 'memorystreamer_replication_under_replicated_partitions') === 1) return text;
        // What the leader sees, for the report if it never comes.
        const view = leader.core.clusterMetadata!.metadata({ topics: ['metered'] });
        throw new Error(
          `leader ${leaderIndex + 1}: under-replicated ${sample(text, 'memorystreamer_replication_under_replicated_partitions')}, partition ${JSON.stringify(view.topics[0]?.partitions[0])}, controller ${view.controllerId}, brokers ${view.brokers.map((b) => b.id).join(',')}`,
        );
      },
      { timeoutMs: 30_000, what: 'the leader reports the partition under-replicated' },
    ).then((text) => {
      expect(sample(text, 'memorystreamer_replication_isr_shrinks_total')).toBe(shrinksBefore + 1);
      expect(
        sample(text, 'memorystreamer_replication_follower_lag_seconds', `${series},follower="${followerId}"`),
      ).not.toBeNull();
    });
    // Messages written meanwhile are what the stopped follower lacks.
    const writer = await connect({ brokers: `127.0.0.1:${ports[leaderIndex]!}` });
    try {
      for (let i = 0; i < 5; i++)
        await writer.producer({ acks: 1 }).send({ topic: 'metered', value: `m${i}` });
    } finally {
      await writer.close();
    }
    const lagging = await metricsOf(leader);
    expect(
      sample(
        lagging,
        'memorystreamer_replication_follower_lag_messages',
        `${series},follower="${followerId}"`,
      ),
    ).toBeGreaterThanOrEqual(5);

    // It comes back: it catches up, rejoins the ISR (an expand), and the partition is healthy.
    await startNode(followerIndex);
    const recovered = await until(async () => {
      const text = await metricsOf(leader);
      return sample(text, 'memorystreamer_replication_under_replicated_partitions') === 0 ? text : null;
    }, 30_000);
    expect(sample(recovered, 'memorystreamer_replication_isr_expands_total')).toBe(expandsBefore + 1);
    expect(
      sample(
        recovered,
        'memorystreamer_replication_follower_lag_messages',
        `${series},follower="${followerId}"`,
      ),
    ).toBe(0);
  }, 90_000);

  it('elects a leader from outside the ISR only on a topic that allows it, and counts it', async () => {
    // Every broker runs (whatever the test before left stopped).
    for (let i = 0; i < 3; i++) if (nodes[i] === null) await startNode(i);
    const client = await connect({
      brokers: ports.map((port) => `127.0.0.1:${port}`).join(','),
    });
    try {
      for (const [name, unclean] of [
        ['risky', true],
        ['careful', false],
      ] as const)
        await until(async () => {
          try {
            return await client.admin.createTopic({
              name,
              partitions: 1,
              replicationFactor: 2,
              config: { uncleanLeaderElection: unclean },
            });
          } catch (error) {
            if (error instanceof MemoryStreamerError && error.retriable) return null;
            if (error instanceof MemoryStreamerError && error.codeName === 'NOT_CONTROLLER') return null;
            throw error;
          }
        });
      for (const [name, unclean] of [
        ['risky', true],
        ['careful', false],
      ] as const) {
        const described = await until(() => client.admin.describeTopic(name));
        expect(described.topic.config.uncleanLeaderElection).toBe(unclean);
      }
    } finally {
      await client.close();
    }
    const uncleanTotal = async () => {
      let total = 0;
      for (const node of nodes)
        if (node !== null)
          total +=
            sample(await metricsOf(node), 'memorystreamer_controller_unclean_leader_elections_total') ?? 0;
      return total;
    };
    const before = await uncleanTotal();
    for (const topic of ['risky', 'careful']) {
      const admin = nodes.find((node) => node !== null)!.core.clusterMetadata!;
      const placed = await until(async () => {
        const view = admin.metadata({ topics: [topic] }).topics[0]!.partitions[0]!;
        return view.leader > 0 && view.isr.length === 2 ? view : null;
      });
      const leaderId = placed.leader;
      const followerId = placed.replicas.find((id) => id !== leaderId)!;
      // Watched from the broker that holds no replica of it (it stays up throughout).
      const observer =
        nodes[[1, 2, 3].find((id) => !placed.replicas.includes(id))! - 1]!.core.clusterMetadata!;
      // The follower stops (the ISR is the leader alone), then the leader: nobody of the ISR is left.
      await nodes[followerId - 1]!.stop({ deadlineMs: 500 });
      nodes[followerId - 1] = null;
      await until(async () => (observer.partitionRoles(topic, 0)?.isr.length === 1 ? true : null), {
        timeoutMs: 30_000,
        what: `${topic}: ISR of one after the follower stopped`,
      });
      await nodes[leaderId - 1]!.stop({ deadlineMs: 500 });
      nodes[leaderId - 1] = null;
      // The follower returns, behind the ISR. Only the topic that allows it takes it as leader.
      await startNode(followerId - 1);
      const roles = nodes[followerId - 1]!.core.clusterMetadata!;
      if (topic === 'risky') {
        await until(async () => (roles.partitionRoles(topic, 0)?.leader === followerId ? true : null), {
          timeoutMs: 30_000,
          what: `${topic}: the returned follower leads`,
        });
        expect(roles.partitionRoles(topic, 0)!.isr).toEqual([followerId]);
        await until(async () => ((await uncleanTotal()) === before + 1 ? true : null), {
          timeoutMs: 30_000,
          what: 'one unclean election counted',
        });
      } else {
        // Offline until the last ISR member (the old leader) returns: the follower, live but
        // outside the ISR, is not chosen.
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        expect(roles.partitionRoles(topic, 0)!.leader).toBe(-1);
        expect(roles.partitionRoles(topic, 0)!.isr).toEqual([leaderId]);
      }
      await startNode(leaderId - 1);
      await until(async () => (roles.partitionRoles(topic, 0)?.leader !== -1 ? true : null), 30_000);
    }
  }, 180_000);

  it('exports no replication series on a broker without a cluster', async () => {
    const alone = await BrokerNode.start({
      dataDir: join(root, 'alone'),
      memoryTrim: false,
      raiseFileLimit: false,
    });
    try {
      const text = await alone.core.metrics.text();
      for (const name of REPLICATION_METRIC_NAMES) expect(text).not.toContain(name);
    } finally {
      await alone.stop({ deadlineMs: 500 });
    }
  });
});
