// A drain is kept in etcd: three controller services on a real etcd, one broker drained, the
// controller replaced; the new controller knows the drain from the control plane and elects
// around the drained broker, until the drain ends. Also the decoding of the stored value.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseClusterUrl } from '../../../src/cluster/control-plane/cluster-url.js';
import { type BrokerSession, ControlPlane } from '../../../src/cluster/control-plane/control-plane.js';
import type { MetadataEvent } from '../../../src/cluster/control-plane/metadata-cache.js';
import { KEYS } from '../../../src/cluster/control-plane/metadata-keys.js';
import { NO_LEADER } from '../../../src/cluster/control-plane/metadata-records.js';
import { ControllerService } from '../../../src/cluster/controller/controller-service.js';
import { DrainedBrokers, encodeDrained } from '../../../src/cluster/controller/drained-brokers.js';
import { type EtcdProcess, etcdAvailable, startEtcd } from '../../harness/etcd.js';

const event = (value: string | null, modRevision: bigint): MetadataEvent => ({
  type: value === null ? 'delete' : 'put',
  key: KEYS.drainedBrokers,
  value: Buffer.from(value ?? ''),
  createRevision: 1n,
  modRevision,
});

describe('DrainedBrokers', () => {
  it('follows the stored value: puts, deletes, a snapshot replacing all, bad values', () => {
    const drained = new DrainedBrokers();
    drained.apply([event(encodeDrained([3, 1, 3]), 5n), { ...event('x', 6n), key: 'other' }]);
    expect([...drained.ids]).toEqual([1, 3]);
    expect(drained.modRevision).toBe(5n);
    drained.apply([event(null, 7n)]);
    expect(drained.ids.size).toBe(0);
    drained.apply([event('{"brokers":[-1]}', 8n)]);
    expect(drained.ids.size).toBe(0);
    expect(drained.problem).toMatch(/drained-brokers/);
    drained.load([event('{"brokers":[2]}', 9n)]);
    expect([...drained.ids]).toEqual([2]);
    drained.load([]);
    expect(drained.ids.size).toBe(0);
  });
});

let etcd: EtcdProcess;

interface Member {
  id: number;
  plane: ControlPlane;
  session: BrokerSession;
  service: ControllerService;
}

async function until(condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function startMember(address: string, id: number): Promise<Member> {
  const plane = await ControlPlane.connect({ address: parseClusterUrl(address) });
  const session = await plane.register(
    { brokerId: id, advertise: `127.0.0.1:${7400 + id}`, startedAtMs: Date.now() },
    1,
  );
  return { id, plane, session, service: await ControllerService.start(plane, session) };
}

describe.skipIf(!etcdAvailable())('a drain outlives its controller', () => {
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it('the next controller keeps the drained broker from leading, until undrained', async () => {
    const address = `${etcd.endpoint.replace('http://', 'etcd://')}/drain`;
    const members = [
      await startMember(address, 1),
      await startMember(address, 2),
      await startMember(address, 3),
    ];
    try {
      await until(() => members.filter((m) => m.service.term !== null).length === 1);
      const first = members.find((m) => m.service.term !== null)!;
      await until(() => first.service.cache.brokers().length === 3);
      // Drain a broker that is not the controller, then replace the controller.
      const drainedId = members.find((m) => m !== first)!.id;
      expect(await first.service.drain(drainedId, false)).toMatchObject({
        drained: true,
        drainedBrokers: [drainedId],
      });
      first.session.abandon();
      await first.service.stop().catch(() => undefined);
      const survivors = members.filter((m) => m !== first);
      await until(() => survivors.some((m) => m.service.term !== null));
      const second = survivors.find((m) => m.service.term !== null)!;
      expect([...second.service.drained.ids]).toEqual([drainedId]);
      // Its elections pass over the drained broker, though it is the preferred leader of some.
      const created = await second.service.createTopic({
        name: 'after',
        partitions: 4,
        replicationFactor: 2,
        config: {},
      });
      expect(created.assignment.some((replicas) => replicas[0] === drainedId)).toBe(true);
      const leaderOf = (p: number) => second.service.cache.partition('after', p)?.value.leader ?? NO_LEADER;
      await until(() => [0, 1, 2, 3].every((p) => leaderOf(p) !== NO_LEADER));
      for (let p = 0; p < 4; p++) expect(leaderOf(p)).not.toBe(drainedId);
      // Undrained, a preferred-leader election gives it its partitions.
      expect((await second.service.drain(drainedId, true)).drainedBrokers).toEqual([]);
      const moved = await second.service.electLeaders(['after']);
      expect(moved.length).toBeGreaterThan(0);
      for (let p = 0; p < 4; p++)
        if (created.assignment[p]![0] === drainedId) expect(leaderOf(p)).toBe(drainedId);
    } finally {
      for (const member of members) {
        await member.service.stop().catch(() => undefined);
        await member.session.close();
        await member.plane.close();
      }
    }
  }, 40_000);
});
