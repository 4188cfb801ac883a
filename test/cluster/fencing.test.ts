// Fencing with real `serve --cluster` processes: a partition leader is frozen (SIGSTOP). Its etcd
// lease is long (10 s) here, so only the direct heartbeats can explain what follows: the controller
// fences it and another in-sync replica leads while the frozen broker is still registered, and
// acks 'all' produce goes on. Thawed (SIGCONT), the old leader must not acknowledge a write as
// leader: a produce sent to it while it was frozen is answered with an error, and it rejoins as a
// follower holding exactly what the new leader holds. A partition with one replica on it (no
// other replica can lead: offline while it is fenced) shows self-fencing alone: thawed, the
// broker would find itself the leader of an ISR of one, and must still refuse.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/client/connect.js';
import { TcpTransport } from '../../src/client/tcp-transport.js';
import { MemoryStreamerError } from '../../src/common/errors.js';
import { encodeRecordBatch } from '../../src/protocol/record-batch.js';
import { type ProcessCluster, startCluster } from '../harness/cluster.js';
import { etcdAvailable } from '../harness/etcd.js';
import { until } from '../harness/until.js';

let cluster: ProcessCluster;

describe.skipIf(!etcdAvailable())('fencing a frozen leader', () => {
  beforeAll(async () => {
    cluster = await startCluster({ name: 'fencing', leaseTtlSeconds: 10 });
  }, 90_000);
  afterAll(async () => {
    for (const broker of cluster?.brokers ?? []) {
      try {
        process.kill(broker.pid, 'SIGCONT');
      } catch {
        // already gone
      }
    }
    await cluster?.stop();
  });

  it('elects a new leader while the frozen one is still registered; the thawed one acknowledges nothing', async () => {
    const addresses = cluster.addresses();
    const client = await connect({ brokers: addresses });
    try {
      await until(async () => {
        try {
          return await client.admin.createTopic({ name: 'frozen', partitions: 3, replicationFactor: 3 });
        } catch (error) {
          if (error instanceof MemoryStreamerError && error.retriable) return null;
          throw error;
        }
      });
      const producer = client.producer({ acks: 'all' });
      // A partition led by a broker that is not the controller (the controller's death is the
      // etcd path, measured by the failover benchmark).
      const { partition, leader, controller } = await until(async () => {
        const metadata = await client.admin.metadata(['frozen']);
        const led = metadata.topics[0]!.partitions.find(
          (p) => p.leader > 0 && p.leader !== metadata.controllerId && p.isr.length === 3,
        );
        return led === undefined
          ? null
          : { partition: led.partition, leader: led.leader, controller: metadata.controllerId };
      });
      await until(async () => {
        try {
          return await client.admin.createTopic({ name: 'solo', partitions: 3, replicationFactor: 1 });
        } catch (error) {
          if (error instanceof MemoryStreamerError && error.retriable) return null;
          throw error;
        }
      });
      const soloPartition = await until(async () => {
        const solo = (await client.admin.metadata(['solo'])).topics[0]!.partitions;
        return solo.every((p) => p.leader > 0) ? solo.find((p) => p.leader === leader)!.partition : null;
      });
      await until(() => producer.send({ topic: 'solo', partition: soloPartition, value: 'solo-0' }));
      for (let i = 0; i < 20; i++)
        await until(() => producer.send({ topic: 'frozen', partition, value: `before-${i}` }));

      const frozen = cluster.brokers[leader - 1]!;
      // A connection to the leader, open before it is frozen: the produce requests sent on it
      // while the leader cannot run are in its socket when it thaws, and are read before any
      // heartbeat of its own can be answered. Whatever it answers them, it must not be an
      // acknowledgement. (A connection opened during the freeze would send them only after its
      // handshake, once thawed: by then the broker may rightly lead the solo partition again.)
      const direct = new TcpTransport({
        brokers: [{ host: '127.0.0.1', port: Number(cluster.address(leader).split(':')[1]) }],
        clientId: 'fencing-test',
        connectTimeoutMs: 10_000,
      });
      await direct.request('metadata', { topics: ['solo'] }, { timeoutMs: 10_000 });
      const stoppedAt = Date.now();
      process.kill(frozen.pid, 'SIGSTOP');
      const refusedOrAcknowledged = (sent: Promise<unknown>) =>
        sent.then(
          (answer) => ({ acknowledged: answer }),
          (error: unknown) => ({ refused: error as Error }),
        );
      const soloStale = refusedOrAcknowledged(
        direct.request(
          'produce',
          {
            topic: 'solo',
            partition: soloPartition,
            acks: 'all',
            batch: encodeRecordBatch([{ value: Buffer.from('to the frozen only replica') }]),
          },
          { timeoutMs: 30_000 },
        ),
      );
      const stale = direct
        .request(
          'produce',
          {
            topic: 'frozen',
            partition,
            acks: 'all',
            batch: encodeRecordBatch([{ value: Buffer.from('to the frozen leader') }]),
          },
          { timeoutMs: 30_000 },
        )
        .then(
          (answer) => ({ acknowledged: answer }),
          (error: unknown) => ({ refused: error as Error }),
        );

      const observer = addresses[[1, 2, 3].find((id) => id !== leader && id !== controller)! - 1]!;
      const watcher = await connect({ brokers: [observer] });
      try {
        const moved = await until(
          async () => {
            const metadata = await watcher.admin.metadata(['frozen']);
            const state = metadata.topics[0]!.partitions[partition]!;
            if (state.leader <= 0 || state.leader === leader) return null;
            return { state, brokers: metadata.brokers.map((b) => b.id), atMs: Date.now() };
          },
          { timeoutMs: 20_000, intervalMs: 10, what: 'a new leader in place of the frozen one' },
        );
        // Still registered (its lease has 10 s): the heartbeats fenced it, not etcd.
        expect(moved.brokers).toContain(leader);
        expect(moved.state.isr).not.toContain(leader);
        console.log(`fencing: new leader ${moved.state.leader} ${moved.atMs - stoppedAt} ms after SIGSTOP`);

        // acks 'all' goes on with the new leader and the remaining in-sync replica (a client
        // that reads the metadata now: one holding a request on the frozen broker's connection
        // waits for its request timeout first).
        const fresh = await connect({ brokers: [observer] });
        try {
          const after = await until(
            () => fresh.producer({ acks: 'all' }).send({ topic: 'frozen', partition, value: 'after' }),
            { timeoutMs: 20_000 },
          );
          expect(after.offset).toBe(20n);
        } finally {
          await fresh.close();
        }
      } finally {
        await watcher.close();
      }

      process.kill(frozen.pid, 'SIGCONT');
      const answer = await stale;
      const soloAnswer = await soloStale;
      await direct.close();
      expect('acknowledged' in answer ? answer.acknowledged : null).toBeNull();
      expect((answer as { refused: Error }).refused).toBeInstanceOf(MemoryStreamerError);
      expect('acknowledged' in soloAnswer ? soloAnswer.acknowledged : null).toBeNull();
      expect((soloAnswer as { refused: MemoryStreamerError }).refused.retriable).toBe(true);

      // Thawed, it rejoins as a follower: back in the ISR, holding what the new leader holds.
      await until(
        async () => {
          const state = (await client.admin.metadata(['frozen'])).topics[0]!.partitions[partition]!;
          return state.isr.includes(leader) && state.leader !== leader;
        },
        { timeoutMs: 20_000, what: 'the thawed broker back in the ISR' },
      );
      const consumer = client.consumer({ topics: ['frozen'], from: 'earliest' });
      const seen: string[] = [];
      try {
        await consumer.start();
        const deadline = Date.now() + 20_000;
        while (seen.length < 21 && Date.now() < deadline) {
          const message = await consumer.next();
          if (message !== null && message.partition === partition) seen.push(message.value!.toString());
        }
      } finally {
        await consumer.close();
      }
      expect(seen).toEqual([...Array.from({ length: 20 }, (_, i) => `before-${i}`), 'after']);
    } finally {
      await client.close();
    }
  }, 120_000);

  it('a client whose request timed out on a frozen leader reads the metadata again and finds the new one', async () => {
    const addresses = cluster.addresses();
    const client = await connect({ brokers: addresses, requestTimeoutMs: 2_000 });
    try {
      await until(async () => {
        try {
          return await client.admin.createTopic({ name: 'patient', partitions: 3, replicationFactor: 3 });
        } catch (error) {
          if (error instanceof MemoryStreamerError && error.retriable) return null;
          throw error;
        }
      });
      const { partition, leader } = await until(async () => {
        const metadata = await client.admin.metadata(['patient']);
        const led = metadata.topics[0]!.partitions.find(
          (p) => p.leader > 0 && p.leader !== metadata.controllerId && p.isr.length === 3,
        );
        return led === undefined ? null : { partition: led.partition, leader: led.leader };
      });
      const producer = client.producer({ acks: 'all' });
      // Its connection to the leader is open (and stays open while the leader is frozen).
      await until(() => producer.send({ topic: 'patient', partition, value: 'before' }));
      const frozen = cluster.brokers[leader - 1]!;
      process.kill(frozen.pid, 'SIGSTOP');
      try {
        // The first attempt times out on the frozen leader; the metadata read after it names the
        // new leader, and the producer's retry goes there.
        const after = await Promise.race([
          producer.send({ topic: 'patient', partition, value: 'after' }),
          new Promise<never>((_, reject) =>
            setTimeout(() => reject(new Error('the send did not reach the new leader in 20 s')), 20_000),
          ),
        ]);
        expect(after.offset).toBe(1n);
      } finally {
        process.kill(frozen.pid, 'SIGCONT');
      }
    } finally {
      await client.close();
    }
  }, 60_000);
});
