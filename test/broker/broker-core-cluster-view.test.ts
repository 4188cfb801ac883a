// A broker without a cluster, as the cluster protocol shows it: it is broker 0 (or the id it was
// given), leads every partition as its only replica and ISR at epoch 0, answers METADATA with
// itself, takes acks 'all' as acks 1, and refuses what it cannot keep (a replication factor above
// 1, minInsyncReplicas above the replication factor). Over TCP and in process, against a real broker.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '../../src/client/client.js';
import { connect } from '../../src/client/connect.js';
import { Broker } from '../../src/embedded/broker.js';
import { BinaryWriter } from '../../src/protocol/codec/binary-writer.js';
import { replicaFetchCommand } from '../../src/protocol/commands/replication-commands.js';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import { FrameFlags } from '../../src/protocol/frame-header.js';
import { Opcode } from '../../src/protocol/opcodes.js';
import { tempDir, useTempDir } from '../harness/temp-dir.js';
import { RawClient } from './server/helpers/raw-client.js';

const scratch = useTempDir('ms-cluster-view-', 'all');
let dataDir: string;
let broker: Broker;
let tcp: Client;
let local: Client;

beforeAll(async () => {
  dataDir = scratch.path;
  broker = await Broker.start({ dataDir, port: 0, host: '127.0.0.1' });
  tcp = await connect({ brokers: `127.0.0.1:${broker.address!.port}` });
  local = broker.connect();
});
afterAll(async () => {
  await tcp?.close();
  await local?.close();
  await broker?.stop();
});

describe('a broker without a cluster', () => {
  it('describes each partition as led by itself, broker 0, its only replica and ISR, at epoch 0', async () => {
    await tcp.admin.createTopic({ name: 'orders', partitions: 2 });
    for (const client of [tcp, local]) {
      const described = await client.admin.describeTopic('orders');
      expect(described.topic.replicationFactor).toBe(1);
      expect(described.topic.config.minInsyncReplicas).toBe(1);
      expect(
        described.partitions.map(({ partition, leader, replicas, isr, leaderEpoch }) => ({
          partition,
          leader,
          replicas,
          isr,
          leaderEpoch,
        })),
      ).toEqual([
        { partition: 0, leader: 0, replicas: [0], isr: [0], leaderEpoch: 0 },
        { partition: 1, leader: 0, replicas: [0], isr: [0], leaderEpoch: 0 },
      ]);
    }
  });

  it('answers METADATA with itself as the only broker and the controller', async () => {
    broker.core.advertisedListener = { host: '127.0.0.1', port: broker.address!.port };
    await tcp.admin.createTopic({ name: 'metadata-a', partitions: 3 });
    const all = await tcp.admin.metadata();
    expect(all.clusterId).toBeNull();
    expect(all.controllerId).toBe(0);
    expect(all.brokers).toEqual([{ id: 0, host: '127.0.0.1', port: broker.address!.port }]);
    const names = all.topics.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['orders', 'metadata-a', '__consumer_offsets']));
    expect(all.topics.find((t) => t.name === '__consumer_offsets')!.internal).toBe(true);

    const named = await tcp.admin.metadata(['metadata-a', 'missing']);
    expect(named.topics).toHaveLength(2);
    const [found, missing] = named.topics;
    expect(found).toMatchObject({ name: 'metadata-a', error: null, internal: false });
    expect(found!.id).toBe((await tcp.admin.describeTopic('metadata-a')).topic.id);
    expect(found!.partitions).toEqual(
      [0, 1, 2].map((partition) => ({
        partition,
        error: null,
        leader: 0,
        leaderEpoch: 0,
        replicas: [0],
        isr: [0],
        offlineReplicas: [],
      })),
    );
    expect(missing).toEqual({
      name: 'missing',
      error: 'UNKNOWN_TOPIC',
      id: '',
      internal: false,
      partitions: [],
    });
  });

  it('reports host "" and port 0 while nothing told it where it is reachable', async () => {
    broker.core.advertisedListener = null;
    expect((await local.admin.metadata([])).brokers).toEqual([{ id: 0, host: '', port: 0 }]);
  });

  it("acknowledges acks 'all' as acks 1: written, readable, with its stream sequence", async () => {
    await tcp.admin.createTopic({ name: 'acks-all' });
    for (const client of [tcp, local]) {
      const producer = client.producer({ acks: 'all' });
      const receipt = await producer.send({ topic: 'acks-all', key: 'k', value: 'v' });
      expect(receipt.offset).toBeGreaterThanOrEqual(0n);
      await producer.close();
    }
    const fetched = await tcp.admin.offsetOf('acks-all', 0, 'latest');
    expect(fetched).toBe(2n);
  });

  it('refuses a replication factor above 1, naming the cause, and creates nothing', async () => {
    for (const client of [tcp, local]) {
      await expect(
        client.admin.createTopic({ name: 'replicated', replicationFactor: 3 }),
      ).rejects.toMatchObject({
        code: ErrorCode.NOT_ENOUGH_BROKERS,
        message: expect.stringContaining('replicationFactor 3 needs 3 brokers, and this broker runs alone'),
      });
    }
    expect((await tcp.admin.listTopics()).map((t) => t.name)).not.toContain('replicated');
    // In process nothing is encoded: a value that is no replication factor is INVALID_CONFIG first.
    await expect(
      local.admin.createTopic({ name: 'replicated', replicationFactor: '3' as unknown as number }),
    ).rejects.toMatchObject({
      code: ErrorCode.INVALID_CONFIG,
      message: expect.stringContaining('replicationFactor="3"'),
    });
    const one = await tcp.admin.createTopic({ name: 'replicated', replicationFactor: 1 });
    expect(one.replicationFactor).toBe(1);
  });

  it('refuses minInsyncReplicas above the replication factor, at create and alter; keeps it in topic.json', async () => {
    await expect(
      tcp.admin.createTopic({ name: 'min-isr', config: { minInsyncReplicas: 2 } }),
    ).rejects.toMatchObject({ code: ErrorCode.INVALID_CONFIG });
    await tcp.admin.createTopic({ name: 'min-isr', config: { minInsyncReplicas: 1 } });
    await expect(
      tcp.admin.alterTopic({ name: 'min-isr', config: { minInsyncReplicas: 2 } }),
    ).rejects.toMatchObject({
      code: ErrorCode.INVALID_CONFIG,
      message: expect.stringContaining('minInsyncReplicas=2 is more than replicationFactor=1'),
    });
    const stored = JSON.parse(await readFile(join(dataDir, 'topics', 'min-isr', 'topic.json'), 'utf8'));
    expect(stored).toMatchObject({ replicationFactor: 1, config: { minInsyncReplicas: 1 } });
  });

  it('names itself by the broker id it was given', async () => {
    const otherDir = await tempDir('ms-cluster-view-id-');
    const other = await Broker.start({ dataDir: otherDir, brokerId: 5 });
    try {
      const client = other.connect();
      await client.admin.createTopic({ name: 't' });
      expect((await client.admin.describeTopic('t')).partitions[0]).toMatchObject({
        leader: 5,
        replicas: [5],
        isr: [5],
      });
      const metadata = await client.admin.metadata(['t']);
      expect(metadata.controllerId).toBe(5);
      expect(metadata.brokers.map((b) => b.id)).toEqual([5]);
      expect(metadata.topics[0]!.partitions[0]!.leader).toBe(5);
      await client.close();
    } finally {
      await other.stop();
    }
  });

  it('answers a replica fetch UNKNOWN_OPCODE (it has no followers) and keeps the connection', async () => {
    const raw = await RawClient.open(broker.address!.port);
    try {
      await raw.handshake();
      const w = new BinaryWriter(64);
      replicaFetchCommand.encodeRequest(w, {
        replicaId: 1,
        maxWaitMs: 0,
        minBytes: 1,
        maxBytes: 1 << 20,
        partitions: [
          {
            topic: 'orders',
            partition: 0,
            leaderEpoch: 0,
            lastFetchedEpoch: -1,
            fetchOffset: 0n,
            stableOffset: 0n,
            maxBytes: 1 << 20,
          },
        ],
      });
      raw.send(Opcode.REPLICA_FETCH, w.finish(), 41);
      const answer = await raw.waitFor((f) => f.header.correlationId === 41);
      expect(answer.header.flags & FrameFlags.ERROR).toBe(FrameFlags.ERROR);
      expect(answer.header.errorCode).toBe(ErrorCode.UNKNOWN_OPCODE);
      raw.send(Opcode.PING, Buffer.alloc(0), 42);
      await raw.waitFor((f) => f.header.correlationId === 42);
      expect(raw.closed).toBe(false);
    } finally {
      raw.destroy();
    }
  });
});
