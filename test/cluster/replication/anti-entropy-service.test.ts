// Anti-entropy on a running three-broker cluster (real etcd, three broker nodes in this process):
// bytes of a follower's sealed segment are corrupted on disk while the cluster runs; the follower's
// comparison with its leader finds the segment, fetches only the differing chunk and rewrites it,
// after which its segment is byte-identical to the leader's, its reads serve the right records
// again, and the repair is logged and counted in the metrics. Once triggered by hand (the check's
// report), once found by the periodic rounds (cluster.anti_entropy_interval).

import { randomBytes } from 'node:crypto';
import { open as openFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerNode } from '../../../src/broker/broker-node.js';
import { run } from '../../../src/cli/main.js';
import type { Client } from '../../../src/client/client.js';
import { connect } from '../../../src/client/connect.js';
import { TcpTransport } from '../../../src/client/tcp-transport.js';
import { clusterPart } from '../../../src/cluster/cluster-node.js';
import type { ReplicaManager } from '../../../src/cluster/replication/replica-manager.js';
import { MemoryStreamerError } from '../../../src/common/errors.js';
import type { BrokerLogger } from '../../../src/metrics/logger.js';
import {
  segmentChunkDigestsCommand,
  segmentRangeCommand,
  segmentRootsCommand,
} from '../../../src/protocol/commands/anti-entropy-commands.js';
import type { VerifyPartitionResponse } from '../../../src/protocol/commands/verify-partition.js';
import { iterateRecords, splitBatches } from '../../../src/protocol/record-batch.js';
import type { PartitionLog } from '../../../src/storage/partition-log.js';
import { digestOfBytes } from '../../../src/storage/segment-digest.js';
import { type EtcdProcess, etcdAvailable, freePort, startEtcd } from '../../harness/etcd.js';
import { makeTempDir, removeTempDir } from '../../harness/temp-dir.js';
import { until } from '../../harness/until.js';

const TOPIC = 'ledger';
/** 4 digest chunks of 64 KiB a segment. */
const SEGMENT_BYTES = 256 * 1024;

interface LogEntry {
  broker: number;
  level: string;
  message: string;
  fields: Record<string, unknown>;
}

function recordingLogger(broker: number, entries: LogEntry[]): BrokerLogger {
  const record = (level: string) => (fields: Record<string, unknown>, message: string) => {
    entries.push({ broker, level, message, fields });
  };
  return { info: record('info'), warn: record('warn'), error: record('error'), debug: record('debug') };
}

interface TestCluster {
  nodes: BrokerNode[];
  clients: Client[];
  logs: LogEntry[];
  stop(): Promise<void>;
}

async function startCluster(
  etcd: EtcdProcess,
  root: string,
  name: string,
  intervalMs: number,
): Promise<TestCluster> {
  const cluster = `${etcd.endpoint.replace('http://', 'etcd://')}/${name}`;
  const nodes: BrokerNode[] = [];
  const clients: Client[] = [];
  const logs: LogEntry[] = [];
  const stop = async () => {
    for (const client of clients) await client.close();
    for (const node of nodes) await node.stop({ deadlineMs: 500 });
  };
  try {
    for (const brokerId of [1, 2, 3]) {
      const port = await freePort();
      nodes.push(
        await BrokerNode.start(
          {
            dataDir: join(root, `${name}-b${brokerId}`),
            port,
            brokerId,
            memoryTrim: false,
            raiseFileLimit: false,
            logger: recordingLogger(brokerId, logs),
          },
          [
            clusterPart({
              cluster,
              brokerId,
              advertise: `127.0.0.1:${port}`,
              leaseTtlSeconds: 2,
              replication: { antiEntropyIntervalMs: intervalMs },
            }),
          ],
        ),
      );
    }
    for (const node of nodes) clients.push(await connect({ brokers: `127.0.0.1:${node.address!.port}` }));
  } catch (error) {
    await stop();
    throw error;
  }
  return { nodes, clients, logs, stop };
}

/** Creates the topic (on the controller), fills it with sealed segments; returns the leader's index. */
async function fill(cluster: TestCluster): Promise<number> {
  await until(async () => {
    for (const client of cluster.clients) {
      try {
        return await client.admin.createTopic({
          name: TOPIC,
          partitions: 1,
          replicationFactor: 3,
          config: { segmentBytes: SEGMENT_BYTES },
        });
      } catch (error) {
        if (!(error instanceof MemoryStreamerError && error.codeName === 'NOT_CONTROLLER')) throw error;
      }
    }
    return null;
  });
  const producer = cluster.clients[0]!.producer({ acks: 'all' });
  await until(() => producer.send({ topic: TOPIC, key: 'k', value: 'first' }));
  const sends = [];
  for (let i = 1; i < 1000; i++)
    sends.push(
      producer.send({ topic: TOPIC, key: `k${i % 13}`, value: `m${i}-${randomBytes(500).toString('hex')}` }),
    );
  await Promise.all(sends);
  const leader = cluster.nodes.findIndex((node) => {
    try {
      node.core.replicaRoles!.checkRead(TOPIC, 0);
      return true;
    } catch {
      return false;
    }
  });
  expect(leader).toBeGreaterThanOrEqual(0);
  const logs = cluster.nodes.map((node) => node.core.partition(TOPIC, 0).log);
  await until(() => logs.every((log) => log.highWatermark === 1000n && log.settledSegments.length >= 2), {
    what: 'every replica holds two settled segments',
    timeoutMs: 15_000,
  }).catch((error: Error) => {
    const state = logs.map(
      (log) => `hw ${log.highWatermark}, ${log.settledSegments.length} settled of ${log.segmentCount}`,
    );
    throw new Error(`${error.message}: ${state.join('; ')}`);
  });
  return leader;
}

async function corrupt(path: string, position: number): Promise<void> {
  const file = await openFile(path, 'r+');
  try {
    await file.write(Buffer.from('bit rot on a bad disk'), 0, 21, position);
  } finally {
    await file.close();
  }
}

/** The records of `log` in [from, to), read as a consumer's fetch reads them (CRC-checked). */
async function readValues(log: PartitionLog, from: bigint, to: bigint): Promise<string[]> {
  const values: string[] = [];
  for (let at = from; at < to; ) {
    const result = await log.read(at, 1024 * 1024);
    for (const batch of splitBatches(result.data))
      for (const record of iterateRecords(batch, { maxDecompressedBytes: 1 << 24 }))
        values.push(record.value!.toString());
    at = result.nextOffset;
  }
  return values;
}

async function metric(node: BrokerNode, name: string): Promise<number> {
  const line = (await node.core.metrics.text()).split('\n').find((row) => row.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

const linkTo = (node: BrokerNode) =>
  new TcpTransport({
    brokers: [{ host: '127.0.0.1', port: node.address!.port }],
    clientId: 'anti-entropy-test',
  });

const antiEntropyOf = (node: BrokerNode) => (node.core.replicaRequests as ReplicaManager).antiEntropy;

let etcd: EtcdProcess;
let root: string;

describe.skipIf(!etcdAvailable())('anti-entropy between replicas', () => {
  beforeAll(async () => {
    etcd = await startEtcd();
    root = await makeTempDir('ms-anti-entropy-');
  }, 30_000);
  afterAll(async () => {
    await etcd?.stop();
    if (root !== undefined) await removeTempDir(root);
  });

  it('a check finds the corrupted chunk of a follower, repairs it from the leader, logs and counts it', async () => {
    const cluster = await startCluster(etcd, root, 'manual', 0);
    try {
      const leader = await fill(cluster);
      const follower = (leader + 1) % 3;
      const leaderLog = cluster.nodes[leader]!.core.partition(TOPIC, 0).log;
      const followerLog = cluster.nodes[follower]!.core.partition(TOPIC, 0).log;
      // The largest settled segment (the producer's first batch may have a segment of its own).
      const segment = [...followerLog.settledSegments].sort((a, b) => b.size - a.size)[0]!;
      expect(segment.size).toBeGreaterThan(2 * 64 * 1024);
      const leaderSegment = leaderLog.settledSegments.find((s) => s.baseOffset === segment.baseOffset)!;
      expect(leaderSegment).toBeDefined();
      const good = await readFile(leaderSegment.path('log'));
      expect((await readFile(segment.path('log'))).equals(good)).toBe(true);
      const expected = await readValues(leaderLog, segment.baseOffset, segment.nextOffset);

      // Bit rot in the second 64 KiB chunk of the follower's segment, while the cluster runs.
      await corrupt(segment.path('log'), 70_000);
      expect((await readFile(segment.path('log'))).equals(good)).toBe(false);
      await expect(readValues(followerLog, segment.baseOffset, segment.nextOffset)).rejects.toMatchObject({
        codeName: 'CORRUPT_DATA',
      });

      const checks = await antiEntropyOf(cluster.nodes[follower]!).checkNow({ topic: TOPIC });
      expect(checks).toHaveLength(1);
      expect(checks[0]).toMatchObject({
        topic: TOPIC,
        partition: 0,
        leader: leader + 1,
        segmentsDiffering: 1,
        segmentsRepaired: 1,
        // Only the differing chunk travelled.
        bytesRepaired: 64 * 1024,
        problems: [],
      });
      expect(checks[0]!.segmentsCompared).toBe(followerLog.settledSegments.length);

      const repaired = followerLog.settledSegments.find((s) => s.baseOffset === segment.baseOffset)!;
      expect((await readFile(repaired.path('log'))).equals(good)).toBe(true);
      expect(await readValues(followerLog, segment.baseOffset, segment.nextOffset)).toEqual(expected);
      expect(
        cluster.logs.some(
          (entry) =>
            entry.broker === follower + 1 &&
            entry.level === 'warn' &&
            entry.message.includes('repaired') &&
            entry.fields.baseOffset === String(segment.baseOffset),
        ),
      ).toBe(true);
      const node = cluster.nodes[follower]!;
      expect(await metric(node, 'memorystreamer_anti_entropy_segments_repaired_total')).toBe(1);
      expect(await metric(node, 'memorystreamer_anti_entropy_repaired_bytes_total')).toBe(64 * 1024);
      expect(await metric(node, 'memorystreamer_anti_entropy_segments_differing_total')).toBe(1);

      // A second check finds nothing more to do; the other follower had nothing to repair.
      const again = await antiEntropyOf(node).checkNow();
      expect(again.map((check) => check.segmentsDiffering)).toEqual([0]);
      const other = cluster.nodes[(leader + 2) % 3]!;
      const otherChecks = await antiEntropyOf(other).checkNow();
      expect(otherChecks[0]).toMatchObject({ segmentsDiffering: 0, segmentsRepaired: 0, problems: [] });
      // The leader follows nothing of this topic: it checks nothing.
      expect(await antiEntropyOf(cluster.nodes[leader]!).checkNow({ topic: TOPIC })).toEqual([]);

      // Over the wire: the leader answers at its epoch only, names segments it does not have, and
      // keeps ranges inside the segment; a broker that does not lead the partition says so.
      const epoch = cluster.nodes[leader]!.core.replicaRoles!.leaderEpochForProduce(TOPIC, 0, 1);
      const ask = { replicaId: follower + 1, topic: TOPIC, partition: 0, leaderEpoch: epoch };
      const toLeader = linkTo(cluster.nodes[leader]!);
      const toFollower = linkTo(node);
      try {
        const roots = await toLeader.call(
          segmentRootsCommand,
          { ...ask, chunkBytes: 64 * 1024, baseOffsets: [segment.baseOffset, segment.baseOffset + 1n] },
          { timeoutMs: 10_000 },
        );
        expect(roots.segments[0]).toMatchObject({
          error: null,
          size: good.length,
          nextOffset: segment.nextOffset,
        });
        expect(roots.segments[0]!.root.equals(digestOfBytes(good, 64 * 1024).root)).toBe(true);
        expect(roots.segments[1]).toMatchObject({ error: 'SEGMENT_NOT_FOUND' });
        await expect(
          toLeader.call(
            segmentRootsCommand,
            { ...ask, leaderEpoch: epoch + 1, chunkBytes: 64 * 1024, baseOffsets: [segment.baseOffset] },
            { timeoutMs: 10_000 },
          ),
        ).rejects.toMatchObject({ codeName: 'UNKNOWN_LEADER_EPOCH' });
        await expect(
          toLeader.call(
            segmentRangeCommand,
            { ...ask, baseOffset: segment.baseOffset, position: good.length - 10, length: 20 },
            { timeoutMs: 10_000 },
          ),
        ).rejects.toMatchObject({ codeName: 'SEGMENT_RANGE_INVALID' });
        await expect(
          toFollower.call(
            segmentChunkDigestsCommand,
            { ...ask, chunkBytes: 64 * 1024, baseOffset: segment.baseOffset },
            { timeoutMs: 10_000 },
          ),
        ).rejects.toMatchObject({ codeName: 'NOT_LEADER' });
      } finally {
        await toLeader.close();
        await toFollower.close();
      }

      // The admin's trigger: `partition verify` asked of the leader runs on every follower.
      const otherFollower = (leader + 2) % 3;
      const otherLog = cluster.nodes[otherFollower]!.core.partition(TOPIC, 0).log;
      const victim = otherLog.settledSegments.find((s) => s.baseOffset === segment.baseOffset)!;
      await corrupt(victim.path('log'), 10);
      const out: string[] = [];
      const cli = (...argv: string[]) =>
        run(['--broker', `127.0.0.1:${cluster.nodes[leader]!.address!.port}`, ...argv], {
          env: {},
          out: (text) => out.push(text),
          err: () => undefined,
        });
      expect(await cli('--json', 'partition', 'verify', TOPIC, '--partition', '0')).toBe(0);
      const verified = JSON.parse(out.pop()!) as VerifyPartitionResponse;
      expect(verified.failed).toEqual([]);
      expect(verified.results.map((r) => r.broker).sort()).toEqual([follower + 1, otherFollower + 1].sort());
      expect(verified.results.find((r) => r.broker === otherFollower + 1)).toMatchObject({
        partition: 0,
        leader: leader + 1,
        segmentsDiffering: 1,
        segmentsRepaired: 1,
        bytesRepaired: 64 * 1024,
        problems: [],
      });
      expect(verified.results.find((r) => r.broker === follower + 1)).toMatchObject({ segmentsDiffering: 0 });
      const healed = otherLog.settledSegments.find((s) => s.baseOffset === segment.baseOffset)!;
      expect((await readFile(healed.path('log'))).equals(good)).toBe(true);
      expect(await cli('partition', 'verify', TOPIC)).toBe(0);
      expect(out.pop()).toMatch(
        /2 follower replicas checked: 0 of \d+ segments differed from their leader, 0 repaired/,
      );
    } finally {
      await cluster.stop();
    }
  }, 60_000);

  it('the periodic rounds find and repair a corrupted segment by themselves', async () => {
    const cluster = await startCluster(etcd, root, 'rounds', 300);
    try {
      const leader = await fill(cluster);
      const follower = (leader + 2) % 3;
      const leaderLog = cluster.nodes[leader]!.core.partition(TOPIC, 0).log;
      const followerLog = cluster.nodes[follower]!.core.partition(TOPIC, 0).log;
      // The largest settled segment (the producer's first batch may have a segment of its own).
      const segment = [...followerLog.settledSegments].sort((a, b) => b.size - a.size)[0]!;
      const leaderSegment = leaderLog.settledSegments.find((s) => s.baseOffset === segment.baseOffset)!;
      const good = await readFile(leaderSegment.path('log'));
      await corrupt(segment.path('log'), Math.floor(segment.size / 2));
      await until(
        async () => {
          const now = followerLog.settledSegments.find((s) => s.baseOffset === segment.baseOffset);
          // A check's counts join the metrics when the check of the partition ends.
          return (
            now !== undefined &&
            (await readFile(now.path('log'))).equals(good) &&
            (await metric(
              cluster.nodes[follower]!,
              'memorystreamer_anti_entropy_segments_repaired_total',
            )) === 1
          );
        },
        { what: "the follower's segment is the leader's again, and the repair counted", timeoutMs: 20_000 },
      );
      expect(
        await metric(cluster.nodes[follower]!, 'memorystreamer_anti_entropy_checks_total'),
      ).toBeGreaterThan(0);
      expect((await readValues(followerLog, 0n, segment.nextOffset)).length).toBe(Number(segment.nextOffset));
    } finally {
      await cluster.stop();
    }
  }, 60_000);
});
