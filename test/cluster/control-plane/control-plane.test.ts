// The control plane against a real etcd (Debian's etcd-server): membership under leases, the
// controller election and its fencing, compare-and-swap metadata writes, snapshot + watch.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseClusterUrl } from '../../../src/cluster/control-plane/cluster-url.js';
import {
  ControlPlane,
  MAX_PARTITION_UPDATES_PER_WRITE,
} from '../../../src/cluster/control-plane/control-plane.js';
import { MetadataCache } from '../../../src/cluster/control-plane/metadata-cache.js';
import type { TopicRecord } from '../../../src/cluster/control-plane/metadata-records.js';
import { MemoryStreamerError } from '../../../src/common/errors.js';
import { type EtcdProcess, etcdAvailable, startEtcd } from '../../harness/etcd.js';

const hasEtcd = etcdAvailable();
let etcd: EtcdProcess;
let clusterCount = 0;

function url(): string {
  return `${etcd.endpoint.replace('http://', 'etcd://')}/test-${process.pid}-${clusterCount++}`;
}

async function connect(address = url()): Promise<ControlPlane> {
  return await ControlPlane.connect({ address: parseClusterUrl(address) });
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof MemoryStreamerError) return error.codeName;
    throw error;
  }
  return 'NONE';
}

async function until(condition: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const topic = (name: string, partitions = 2): TopicRecord => ({
  name,
  partitions,
  replicationFactor: 2,
  assignment: Array.from({ length: partitions }, (_, p) => [1 + (p % 2), 1 + ((p + 1) % 2)]),
  config: { durability: 'interval' },
});

describe.skipIf(!hasEtcd)('control plane on etcd', () => {
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it('gives up on an unreachable etcd with CONTROL_PLANE_UNAVAILABLE after retrying with backoff', async () => {
    const delays: number[] = [];
    const started = Date.now();
    const code = await codeOf(
      ControlPlane.connect({
        address: parseClusterUrl('etcd://127.0.0.1:1'),
        connectTimeoutMs: 700,
        callTimeoutMs: 200,
        onRetry: (_attempt, _error, delayMs) => delays.push(delayMs),
      }),
    );
    expect(code).toBe('CONTROL_PLANE_UNAVAILABLE');
    expect(delays.length).toBeGreaterThanOrEqual(2);
    expect(delays[1]).toBe(delays[0]! * 2);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('keeps the first cluster id written', async () => {
    const address = url();
    const a = await connect(address);
    const b = await connect(address);
    try {
      expect(await a.clusterId('first')).toBe('first');
      expect(await b.clusterId('second')).toBe('first');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('one live broker per id; the id is free again when the broker leaves or its lease expires', async () => {
    const address = url();
    const plane = await connect(address);
    const crashing = await connect(address);
    try {
      const session = await plane.register({ brokerId: 1, advertise: '127.0.0.1:7401', startedAtMs: 1 }, 5);
      const refused = plane.register({ brokerId: 1, advertise: '127.0.0.1:9999', startedAtMs: 2 }, 5);
      await expect(refused).rejects.toThrow(/held by the live broker at 127\.0\.0\.1:7401/);
      expect(
        await codeOf(plane.register({ brokerId: 1, advertise: '127.0.0.1:9999', startedAtMs: 2 }, 5)),
      ).toBe('BROKER_ID_IN_USE');
      await session.close();
      const again = await plane.register({ brokerId: 1, advertise: '127.0.0.1:9999', startedAtMs: 3 }, 5);
      await again.close();

      // A broker that dies without leaving: its lease (1 s) expires and the registration goes.
      await crashing.register({ brokerId: 2, advertise: '127.0.0.1:7402', startedAtMs: 4 }, 1);
      const cache = new MetadataCache();
      const loaded = await plane.snapshot();
      cache.load(loaded.events, loaded.revision);
      expect(cache.brokers().map((b) => b.brokerId)).toEqual([2]);
      await crashing.close(); // closes the client: no more keep-alives, no revoke
      await until(async () => {
        const now = await plane.snapshot();
        cache.load(now.events, now.revision);
        return cache.brokers().length === 0;
      });
    } finally {
      await plane.close();
      await crashing.close();
    }
  });

  it('elects one controller; a replaced controller is fenced from every write', async () => {
    const plane = await connect();
    try {
      const one = await plane.register({ brokerId: 1, advertise: 'h:1', startedAtMs: 1 }, 5);
      const two = await plane.register({ brokerId: 2, advertise: 'h:2', startedAtMs: 1 }, 5);
      const [termOne, termTwo] = await Promise.all([plane.campaign(one), plane.campaign(two)]);
      expect([termOne, termTwo].filter((t) => t !== null)).toHaveLength(1);
      const first = (termOne ?? termTwo)!;
      const firstSession = first.brokerId === 1 ? one : two;
      const secondSession = first.brokerId === 1 ? two : one;
      await plane.createTopic(first, topic('orders'));

      // The first controller's lease goes (it left); the other broker wins a later term.
      await firstSession.close();
      const second = await plane.campaign(secondSession);
      expect(second).not.toBeNull();
      expect(second!.epoch).toBeGreaterThan(first.epoch);

      expect(await codeOf(plane.createTopic(first, topic('late')))).toBe('NOT_CONTROLLER');
      const update = {
        topic: 'orders',
        partition: 0,
        expectedModRevision: 0n,
        state: { leader: 1, leaderEpoch: 1, isr: [1, 2] },
      };
      expect(await codeOf(plane.writePartitionStates(first, [update]))).toBe('NOT_CONTROLLER');
      expect(await codeOf(plane.deleteTopic(first, 'orders'))).toBe('NOT_CONTROLLER');
      expect(await plane.writePartitionStates(second!, [update])).toBe(true);
      await secondSession.close();
    } finally {
      await plane.close();
    }
  });

  it('topic and partition writes are compare-and-swap on what the controller read', async () => {
    const plane = await connect();
    try {
      const session = await plane.register({ brokerId: 1, advertise: 'h:1', startedAtMs: 1 }, 5);
      const term = (await plane.campaign(session))!;
      await plane.createTopic(term, topic('orders'));
      expect(await codeOf(plane.createTopic(term, topic('orders')))).toBe('TOPIC_ALREADY_EXISTS');

      const elect = {
        topic: 'orders',
        partition: 0,
        expectedModRevision: 0n,
        state: { leader: 1, leaderEpoch: 0, isr: [1, 2] },
      };
      expect(await plane.writePartitionStates(term, [elect])).toBe(true);
      // Created already: a second "create" of the same state loses.
      expect(await plane.writePartitionStates(term, [elect])).toBe(false);

      const cache = new MetadataCache();
      const read = await plane.snapshot();
      cache.load(read.events, read.revision);
      const current = cache.partition('orders', 0)!;
      expect(current.value).toEqual({ leader: 1, leaderEpoch: 0, isr: [1, 2] });
      const shrink = {
        ...elect,
        expectedModRevision: current.modRevision,
        state: { leader: 1, leaderEpoch: 0, isr: [1] },
      };
      expect(await plane.writePartitionStates(term, [shrink])).toBe(true);
      // The same revision again is stale now.
      expect(
        await plane.writePartitionStates(term, [
          { ...shrink, state: { leader: 2, leaderEpoch: 1, isr: [2] } },
        ]),
      ).toBe(false);

      // All or nothing: one stale partition among several writes none of them.
      const fresh = {
        topic: 'orders',
        partition: 1,
        expectedModRevision: 0n,
        state: { leader: 2, leaderEpoch: 0, isr: [2, 1] },
      };
      expect(await plane.writePartitionStates(term, [fresh, shrink])).toBe(false);
      const after = await plane.snapshot();
      cache.load(after.events, after.revision);
      expect(cache.partition('orders', 1)).toBeUndefined();

      const tooMany = Array.from({ length: MAX_PARTITION_UPDATES_PER_WRITE + 1 }, (_, p) => ({
        ...fresh,
        partition: p,
      }));
      expect(await codeOf(plane.writePartitionStates(term, tooMany))).toBe('INVALID_REQUEST');

      await plane.deleteTopic(term, 'orders');
      const gone = await plane.snapshot();
      cache.load(gone.events, gone.revision);
      expect(cache.topic('orders')).toBeUndefined();
      expect(cache.partition('orders', 0)).toBeUndefined();
      expect(await codeOf(plane.deleteTopic(term, 'orders'))).toBe('UNKNOWN_TOPIC');
      await session.close();
    } finally {
      await plane.close();
    }
  });

  it('a cache loaded from a snapshot and fed the watch follows every change in order', async () => {
    const address = url();
    const plane = await connect(address);
    const other = await connect(address);
    const cache = new MetadataCache();
    try {
      const start = await plane.snapshot();
      cache.load(start.events, start.revision);
      const errors: Error[] = [];
      const stop = await plane.watch(
        cache.revision,
        (events) => cache.apply(events),
        (error) => errors.push(error),
      );

      expect(await other.clusterId('abc')).toBe('abc');
      const session = await other.register({ brokerId: 3, advertise: 'h:3', startedAtMs: 1 }, 5);
      const term = (await other.campaign(session))!;
      await other.createTopic(term, topic('events', 3));
      await other.writePartitionStates(term, [
        {
          topic: 'events',
          partition: 2,
          expectedModRevision: 0n,
          state: { leader: 2, leaderEpoch: 4, isr: [2] },
        },
      ]);
      await until(() => cache.partition('events', 2) !== undefined);
      expect(cache.clusterId).toBe('abc');
      expect(cache.controller).toEqual(term);
      expect(cache.brokers().map((b) => b.advertise)).toEqual(['h:3']);
      expect(cache.topic('events')!.value.partitions).toBe(3);
      expect(cache.partition('events', 2)!.value.leaderEpoch).toBe(4);

      await session.close();
      // A revoked lease deletes the registration and the controller key in one revision.
      await until(() => cache.controller === null && cache.brokers().length === 0);
      expect(cache.problems).toEqual([]);
      expect(errors).toEqual([]);
      await stop();
    } finally {
      await plane.close();
      await other.close();
    }
  });
});
