// Three brokers on a real etcd, operated: a partition of replication factor 2 moves to another
// pair of brokers while a producer writes to it with acks 'all' (the new replica catches up with
// the same bytes, the one that left drops its copy, the first new replica leads, no acknowledged
// message is lost); a broker is drained (leadership moves off it, produce and consume go on) and
// undrained (a preferred-leader election gives it its partitions back); bad plans are refused
// with their codes; a broker without a cluster answers NEEDS_CLUSTER.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerNode } from '../../../src/broker/broker-node.js';
import { run } from '../../../src/cli/main.js';
import type { Client } from '../../../src/client/client.js';
import { connect } from '../../../src/client/connect.js';
import { clusterPart } from '../../../src/cluster/cluster-node.js';
import { MemoryStreamerError } from '../../../src/common/errors.js';
import { createLogger } from '../../../src/metrics/logger.js';
import { type EtcdProcess, etcdAvailable, freePort, startEtcd } from '../../harness/etcd.js';
import { useTempDir } from '../../harness/temp-dir.js';
import { until } from '../../harness/until.js';

let etcd: EtcdProcess;
const nodes: BrokerNode[] = [];
let client: Client;

const node = (id: number) => nodes[id - 1]!;

async function createTopic(name: string, partitions: number, replicationFactor: number) {
  return until(async () => {
    try {
      return await client.admin.createTopic({ name, partitions, replicationFactor });
    } catch (error) {
      if (error instanceof MemoryStreamerError && error.codeName === 'NOT_CONTROLLER') return null;
      throw error;
    }
  });
}

async function leaders(topic: string): Promise<number[]> {
  const metadata = await client.admin.metadata([topic]);
  return metadata.topics[0]!.partitions.map((p) => p.leader);
}

async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const broker = `127.0.0.1:${nodes[0]!.address!.port}`;
  const code = await run(['--broker', broker, ...argv], {
    env: {},
    out: (t) => out.push(t),
    err: (t) => err.push(t),
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof MemoryStreamerError) return error.codeName;
    throw error;
  }
  throw new Error('not refused');
}

describe.skipIf(!etcdAvailable())('partition reassign and broker drain: three brokers', () => {
  const dir = useTempDir('ms-reassign-', 'all');
  beforeAll(async () => {
    etcd = await startEtcd();
    const cluster = `${etcd.endpoint.replace('http://', 'etcd://')}/operate`;
    for (const brokerId of [1, 2, 3]) {
      const port = await freePort();
      nodes.push(
        await BrokerNode.start(
          {
            dataDir: join(dir.path, `b${brokerId}`),
            port,
            brokerId,
            memoryTrim: false,
            raiseFileLimit: false,
            ...(process.env.REPLICA_TEST_LOG
              ? { logger: createLogger({ level: 'info', pretty: false }) }
              : {}),
          },
          [
            clusterPart({
              cluster,
              brokerId,
              advertise: `127.0.0.1:${port}`,
              leaseTtlSeconds: 2,
              replication: { replicaLagTimeMs: 2_000 },
            }),
          ],
        ),
      );
    }
    client = await connect({ brokers: nodes.map((n) => `127.0.0.1:${n.address!.port}`).join(',') });
    await until(async () => ((await client.admin.metadata()).brokers.length === 3 ? true : null));
  }, 60_000);
  afterAll(async () => {
    await client?.close();
    for (const n of nodes) await n.stop({ deadlineMs: 500 });
    await etcd?.stop();
  });

  it('moves a partition to new replicas under load: caught up byte for byte, old copy gone, nothing acknowledged lost', async () => {
    await createTopic('moves', 1, 2);
    const [from] = (await client.admin.metadata(['moves'])).topics[0]!.partitions.map((p) => p.replicas);
    const [leaving, staying] = from!;
    const joining = [1, 2, 3].find((id) => !from!.includes(id))!;
    const producer = client.producer({ acks: 'all' });
    const acknowledged: string[] = [];
    for (let i = 0; i < 300; i++) {
      await until(() => producer.send({ topic: 'moves', key: `k${i % 5}`, value: `before-${i}` }));
      acknowledged.push(`before-${i}`);
    }

    // A producer keeps writing while the partition moves; only acknowledged messages count.
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        try {
          await producer.send({ topic: 'moves', key: `k${i % 5}`, value: `during-${i}` });
          acknowledged.push(`during-${i}`);
        } catch (error) {
          if (!(error instanceof MemoryStreamerError && error.retriable)) throw error;
        }
      }
    })();
    try {
      const started = await client.admin.reassignPartitions([
        { topic: 'moves', partition: 0, replicas: [staying!, joining] },
      ]);
      expect(started).toEqual([{ topic: 'moves', partition: 0, from, to: [staying, joining] }]);
      // The same partition cannot be reassigned twice at once.
      expect(
        await refusal(client.admin.reassignPartitions([{ topic: 'moves', partition: 0, replicas: [1, 2] }])),
      ).toBe('REASSIGNMENT_IN_PROGRESS');
      await until(async () => ((await client.admin.reassignments()).length === 0 ? true : null), 30_000);
      await new Promise((resolve) => setTimeout(resolve, 300));
    } finally {
      writing = false;
      await writer;
    }

    const after = (await client.admin.metadata(['moves'])).topics[0]!.partitions[0]!;
    expect(after.replicas).toEqual([staying, joining]);
    expect(after.leader).toBe(staying);
    // The replica that left drops its copy; the one that joined holds the leader's bytes.
    await until(async () => (node(leaving!).core.localTopic('moves') === undefined ? true : null));
    const leaderLog = node(staying!).core.partition('moves', 0).log;
    const joinedLog = node(joining).core.partition('moves', 0).log;
    await until(async () =>
      joinedLog.logEndOffset === leaderLog.logEndOffset && joinedLog.highWatermark === leaderLog.highWatermark
        ? true
        : null,
    );
    const [leaderBytes, joinedBytes] = await Promise.all(
      [leaderLog, joinedLog].map(async (log) => (await log.readForReplica(0n, 64 * 1024 * 1024)).data),
    );
    expect(joinedBytes!.length).toBeGreaterThan(300 * 10);
    expect(joinedBytes!.equals(leaderBytes!)).toBe(true);
    await until(async () => {
      const state = (await client.admin.metadata(['moves'])).topics[0]!.partitions[0]!;
      return [...state.isr].sort().join() === [staying, joining].sort().join() ? true : null;
    });

    // Every acknowledged message is there, once, in order.
    const consumer = client.consumer({ topics: ['moves'], from: 'earliest' });
    await consumer.start();
    const seen: string[] = [];
    const end = leaderLog.highWatermark;
    while (BigInt(seen.length) < end) {
      const message = await consumer.next();
      if (message !== null) seen.push(message.value!.toString());
    }
    await consumer.close();
    expect(acknowledged.length).toBeGreaterThan(300);
    const positions = acknowledged.map((value) => seen.indexOf(value));
    expect(positions.every((p) => p >= 0)).toBe(true);
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
    expect(new Set(seen).size).toBe(seen.length);
  }, 90_000);

  it('a broker that keeps other partitions of the topic empties the moved one', async () => {
    await createTopic('split', 2, 2);
    const [r0, r1] = (await client.admin.metadata(['split'])).topics[0]!.partitions.map((p) => p.replicas);
    const holder = r0!.find((id) => r1!.includes(id))!;
    const joining = [1, 2, 3].find((id) => !r0!.includes(id))!;
    const producer = client.producer({ acks: 'all' });
    for (let i = 0; i < 50; i++)
      await until(() => producer.send({ topic: 'split', partition: i % 2, value: `v${i}` }));
    const holderLog = node(holder).core.partition('split', 0).log;
    expect(holderLog.logEndOffset).toBe(25n);
    const target = [...r0!.filter((id) => id !== holder), joining];
    await client.admin.reassignPartitions([{ topic: 'split', partition: 0, replicas: target }]);
    await until(async () => ((await client.admin.reassignments()).length === 0 ? true : null), 30_000);
    // Its copy of partition 0 is gone; partition 1 stays and is still replicated.
    await until(async () => (holderLog.logEndOffset === holderLog.logStartOffset ? true : null));
    expect(node(holder).core.localTopic('split')).toBeDefined();
    expect(node(holder).core.partition('split', 1).log.logEndOffset).toBe(25n);
    await until(async () =>
      node(joining).core.partition('split', 0).log.logEndOffset === 25n ? true : null,
    );
    expect((await client.admin.metadata(['split'])).topics[0]!.partitions[0]!.replicas).toEqual(target);
  }, 60_000);

  it('refuses bad plans with their codes', async () => {
    await createTopic('plans', 2, 2);
    const plan = (replicas: number[], partition = 0, topic = 'plans') =>
      client.admin.reassignPartitions([{ topic, partition, replicas }]);
    expect(await refusal(plan([1, 9]))).toBe('UNKNOWN_BROKER');
    expect(await refusal(plan([2, 2]))).toBe('DUPLICATE_REPLICA');
    expect(await refusal(plan([1, 2, 3]))).toBe('REPLICATION_FACTOR_MISMATCH');
    expect(await refusal(plan([1, 2], 5))).toBe('UNKNOWN_PARTITION');
    expect(await refusal(plan([1, 2], 0, 'nope'))).toBe('UNKNOWN_TOPIC');
    expect(await refusal(client.admin.drainBroker(9))).toBe('UNKNOWN_BROKER');
    // Nothing started.
    expect(await client.admin.reassignments()).toEqual([]);
    // A move replaced by a move back (cancelled, or already done and undone): the old replicas.
    const original = (await client.admin.metadata(['plans'])).topics[0]!.partitions[1]!.replicas;
    const elsewhere = [[1, 2, 3].find((id) => !original.includes(id))!, original[0]!];
    await client.admin.reassignPartitions([{ topic: 'plans', partition: 1, replicas: elsewhere }]);
    await client.admin.reassignPartitions([{ topic: 'plans', partition: 1, replicas: original }], {
      replace: true,
    });
    await until(async () => ((await client.admin.reassignments()).length === 0 ? true : null), 30_000);
    expect((await client.admin.metadata(['plans'])).topics[0]!.partitions[1]!.replicas).toEqual(original);
  }, 30_000);

  it('drains a leader: leadership moves off it, produce and consume go on; undrain and elect give it back', async () => {
    await createTopic('drained', 3, 3);
    const before = await until(async () => {
      const ids = await leaders('drained');
      return ids.every((id) => id > 0) ? ids : null;
    });
    const target = before[0]!;
    const result = await client.admin.drainBroker(target);
    expect(result.drained).toBe(true);
    expect(result.drainedBrokers).toEqual([target]);
    expect(result.stayed).toEqual([]);
    const led = before.map((id, p) => ({ id, p })).filter(({ id }) => id === target);
    // Every topic's partitions move; this topic's are the ones it led.
    const movedHere = result.moved.filter((m) => m.topic === 'drained');
    expect(movedHere.map((m) => m.partition).sort()).toEqual(led.map(({ p }) => p).sort());
    for (const move of result.moved) {
      expect(move.from).toBe(target);
      expect(move.to).not.toBe(target);
    }
    const during = await leaders('drained');
    expect(during).not.toContain(target);

    // Produce and consume continue on the new leaders.
    const producer = client.producer({ acks: 'all' });
    for (let p = 0; p < 3; p++)
      await until(() => producer.send({ topic: 'drained', partition: p, value: `after-drain-${p}` }));
    const consumer = client.consumer({ topics: ['drained'], from: 'earliest' });
    await consumer.start();
    const seen = new Set<string>();
    while (seen.size < 3) {
      const message = await consumer.next();
      if (message !== null) seen.add(message.value!.toString());
    }
    await consumer.close();

    // While drained, a preferred-leader election does not give it its partitions back.
    expect((await client.admin.electLeaders(['drained'])).filter((m) => m.to === target)).toEqual([]);
    const undrained = await client.admin.undrainBroker(target);
    expect(undrained).toMatchObject({ drained: false, drainedBrokers: [] });
    const preferred = (await client.admin.metadata(['drained'])).topics[0]!.partitions.filter(
      (p) => p.replicas[0] === target,
    ).map((p) => p.partition);
    const back = await client.admin.electLeaders(['drained']);
    expect(back.every((m) => m.topic === 'drained')).toBe(true);
    expect(
      back
        .filter((m) => m.to === target)
        .map((m) => m.partition)
        .sort(),
    ).toEqual(preferred.sort());
    const final = await leaders('drained');
    for (const p of preferred) expect(final[p]).toBe(target);
  }, 60_000);

  it('the CLI: reassign --wait with progress, a plan file, drain, undrain, elect-leaders', async () => {
    await createTopic('cli', 2, 2);
    const [r0, r1] = (await client.admin.metadata(['cli'])).topics[0]!.partitions.map((p) => p.replicas);
    const other = (replicas: number[]) => [1, 2, 3].find((id) => !replicas.includes(id))!;
    await until(() => client.producer({ acks: 'all' }).send({ topic: 'cli', partition: 0, value: 'x' }));
    const target0 = [other(r0!), r0![0]!];
    const human = await cli(
      'partition',
      'reassign',
      '--topic',
      'cli',
      '--partition',
      '0',
      '--replicas',
      target0.join(','),
      '--wait',
    );
    expect(human.code).toBe(0);
    expect(human.out).toMatch(/TOPIC\s+PARTITION\s+FROM\s+REPLICAS\s+LEADER\s+ISR/);
    expect(human.out).toMatch(
      new RegExp(
        `cli\\s+0\\s+${r0!.join(',')}\\s+${target0.join(',')}\\s+${target0[0]}\\s+${target0.join(',')}`,
      ),
    );
    expect(human.err).toMatch(/cli\/0: replicas .* -> /);
    const plan = join(dir.path, 'plan.json');
    const target1 = [other(r1!), r1![1]!];
    await writeFile(
      plan,
      JSON.stringify({ version: 1, partitions: [{ topic: 'cli', partition: 1, replicas: target1 }] }),
    );
    const json = await cli('--json', 'partition', 'reassign', '--plan', plan, '--wait');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.out)).toMatchObject({
      finished: [{ topic: 'cli', partition: 1, replicas: target1, leader: target1[0] }],
    });
    expect(
      await cli('partition', 'reassign', '--topic', 'cli', '--partition', '0', '--replicas', '1,1'),
    ).toMatchObject({
      code: 1,
      err: expect.stringMatching(/DUPLICATE_REPLICA \(736\)/),
    });
    expect((await cli('partition', 'reassign', '--topic', 'cli')).code).toBe(2);
    expect((await cli('partition', 'reassignments')).out).toBe('no reassignment under way');

    const leader = (await client.admin.metadata(['cli'])).topics[0]!.partitions[0]!.leader;
    const drained = await cli('broker', 'drain', '--broker-id', String(leader));
    expect(drained.code).toBe(0);
    expect(drained.out).toMatch(/drained:\s+yes/);
    expect(drained.out).toMatch(new RegExp(`cli\\s+0\\s+${leader}\\s+\\d`));
    const undrained = JSON.parse(
      (await cli('--json', 'broker', 'undrain', '--broker-id', String(leader))).out,
    );
    expect(undrained).toMatchObject({ brokerId: leader, drained: false });
    const elected = JSON.parse((await cli('--json', 'partition', 'elect-leaders', '--topic', 'cli')).out);
    expect(elected.moved).toContainEqual(expect.objectContaining({ topic: 'cli', partition: 0, to: leader }));
  }, 60_000);

  it('a broker without a cluster answers NEEDS_CLUSTER', async () => {
    const alone = await BrokerNode.start({
      dataDir: join(dir.path, 'alone'),
      port: 0,
      memoryTrim: false,
      raiseFileLimit: false,
    });
    const single = await connect({ brokers: `127.0.0.1:${alone.address!.port}` });
    try {
      expect(await refusal(single.admin.drainBroker(0))).toBe('NEEDS_CLUSTER');
      expect(
        await refusal(single.admin.reassignPartitions([{ topic: 't', partition: 0, replicas: [0] }])),
      ).toBe('NEEDS_CLUSTER');
    } finally {
      await single.close();
      await alone.stop({ deadlineMs: 500 });
    }
  }, 30_000);
});
