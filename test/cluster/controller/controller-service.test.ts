// Three cluster members on a real etcd: one controller at a time, leaders for every partition of a
// new topic, and failover when a broker dies without leaving (its lease expires), including the
// controller itself.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseClusterUrl } from '../../../src/cluster/control-plane/cluster-url.js';
import { type BrokerSession, ControlPlane } from '../../../src/cluster/control-plane/control-plane.js';
import { NO_LEADER } from '../../../src/cluster/control-plane/metadata-records.js';
import { ControllerService } from '../../../src/cluster/controller/controller-service.js';
import { type EtcdProcess, etcdAvailable, startEtcd } from '../../harness/etcd.js';

let etcd: EtcdProcess;

interface Member {
  id: number;
  plane: ControlPlane;
  session: BrokerSession;
  service: ControllerService;
  errors: Error[];
  unclean: number;
}

async function until(condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function startMember(
  address: string,
  id: number,
  options: { fencingTimeMs?: number; leaseTtlSeconds?: number; watchDelayMs?: number } = {},
): Promise<Member & { startedAtMs: number }> {
  const plane = await ControlPlane.connect({ address: parseClusterUrl(address) });
  const { watchDelayMs } = options;
  if (watchDelayMs !== undefined) {
    // The watch brings every change this much later than etcd acknowledged it (in order): a slow
    // watch, as on a loaded machine.
    const watch = plane.watch.bind(plane);
    plane.watch = (afterRevision, onEvents, onError) =>
      watch(afterRevision, (events) => setTimeout(() => onEvents(events), watchDelayMs), onError);
  }
  const startedAtMs = Date.now();
  const session = await plane.register(
    { brokerId: id, advertise: `127.0.0.1:${7400 + id}`, startedAtMs },
    options.leaseTtlSeconds ?? 1,
  );
  const member = {
    id,
    plane,
    session,
    service: undefined as never as ControllerService,
    errors: [] as Error[],
    unclean: 0,
    startedAtMs,
  };
  member.service = await ControllerService.start(
    plane,
    session,
    {
      onError: (error) => member.errors.push(error),
      onReconcile: (result) => {
        member.unclean += result.uncleanElections;
      },
    },
    options.fencingTimeMs !== undefined ? { fencingTimeMs: options.fencingTimeMs } : {},
  );
  return member;
}

describe.skipIf(!etcdAvailable())('controller service', () => {
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it('elects one controller, leads every partition, and fails over when brokers die', async () => {
    const address = `${etcd.endpoint.replace('http://', 'etcd://')}/failover`;
    const members = [
      await startMember(address, 1),
      await startMember(address, 2),
      await startMember(address, 3),
    ];
    const view = members[0]!.service.cache;
    try {
      await until(() => members.filter((m) => m.service.term !== null).length === 1);
      await until(() => view.brokers().length === 3 && view.controller !== null);
      const controller = () => members.find((m) => m.service.term !== null);

      // Only the controller creates topics.
      const follower = members.find((m) => m.service.term === null)!;
      await expect(
        follower.service.createTopic({ name: 'x', partitions: 1, replicationFactor: 1, config: {} }),
      ).rejects.toThrow(/not the controller/);
      await expect(
        controller()!.service.createTopic({ name: 'big', partitions: 1, replicationFactor: 4, config: {} }),
      ).rejects.toThrow(/larger than the 3 live broker/);

      const created = await controller()!.service.createTopic({
        name: 'orders',
        partitions: 6,
        replicationFactor: 3,
        config: {},
      });
      expect(created.assignment.every((replicas) => new Set(replicas).size === 3)).toBe(true);
      const leaderOf = (p: number) => view.partition('orders', p)?.value;
      await until(() =>
        [0, 1, 2, 3, 4, 5].every((p) => leaderOf(p) !== undefined && leaderOf(p)!.leader !== NO_LEADER),
      );
      for (let p = 0; p < 6; p++) {
        expect(leaderOf(p)!.leader).toBe(created.assignment[p]![0]); // the preferred leader
        expect(leaderOf(p)!.leaderEpoch).toBe(0);
        expect(leaderOf(p)!.isr).toEqual(created.assignment[p]);
      }

      // The controller dies without leaving: its lease expires, another member takes over and moves
      // its partitions to live ISR members with a new epoch.
      const dead = controller()!;
      const before = Array.from({ length: 6 }, (_, p) => leaderOf(p)!);
      dead.session.abandon();
      await dead.service.stop().catch(() => undefined);
      const survivors = members.filter((m) => m !== dead);
      const survivorView = survivors[0]!.service.cache;
      const survivorLeader = (p: number) => survivorView.partition('orders', p)?.value;
      await until(() => survivors.some((m) => m.service.term !== null));
      await until(() => [0, 1, 2, 3, 4, 5].every((p) => !survivorLeader(p)!.isr.includes(dead.id)));
      for (let p = 0; p < 6; p++) {
        const now = survivorLeader(p)!;
        expect(now.leader).not.toBe(dead.id);
        expect(now.isr).toContain(now.leader);
        if (before[p]!.leader === dead.id) expect(now.leaderEpoch).toBe(before[p]!.leaderEpoch + 1);
        else expect(now.leaderEpoch).toBe(before[p]!.leaderEpoch);
      }

      // Down to one broker: every partition is led by it, nothing was elected uncleanly.
      const second = survivors.find((m) => m.service.term !== null)!;
      const last = survivors.find((m) => m !== second)!;
      second.session.abandon();
      await second.service.stop().catch(() => undefined);
      await until(() => last.service.term !== null);
      const lastLeader = (p: number) => last.service.cache.partition('orders', p)?.value;
      await until(() => [0, 1, 2, 3, 4, 5].every((p) => lastLeader(p)!.leader === last.id));
      expect(members.reduce((sum, m) => sum + m.unclean, 0)).toBe(0);
      expect(last.errors).toEqual([]);
    } finally {
      for (const member of members) {
        await member.service.stop().catch(() => undefined);
        await member.session.close();
        await member.plane.close();
      }
    }
  });

  it('plans again when a topic write finds a newer record than its cache (writes that overlap)', async () => {
    const address = `${etcd.endpoint.replace('http://', 'etcd://')}/overlap`;
    const member = await startMember(address, 1);
    try {
      await until(() => member.service.term !== null);
      await member.service.createTopic({ name: 'busy', partitions: 1, replicationFactor: 1, config: {} });
      await until(() => member.service.cache.topic('busy') !== undefined);
      // Each alter plans from the same cached record; every one but the first finds it changed,
      // waits for the watch and plans again: all of them land, none is lost or refused.
      await Promise.all(
        ['a', 'b', 'c', 'd'].map((key, i) => member.service.alterTopic('busy', { config: { [key]: i } })),
      );
      await until(() => Object.keys(member.service.cache.topic('busy')!.value.config).length === 4);
      expect(member.service.cache.topic('busy')!.value.config).toEqual({ a: 0, b: 1, c: 2, d: 3 });
      // The same for reassignments started back to back: the second replaces the first's target.
      await member.service.alterTopic('busy', { partitions: 2 });
      await Promise.all([
        member.service.reassign([{ topic: 'busy', partition: 0, replicas: [1] }]),
        member.service.alterTopic('busy', { config: { e: 4 } }),
      ]);
      await until(() => member.service.cache.topic('busy')!.value.config.e === 4);
      expect(member.errors).toEqual([]);
    } finally {
      await member.service.stop().catch(() => undefined);
      await member.session.close();
      await member.plane.close();
    }
  });

  it('answers a reassignment once its own view holds it, however late the watch brings it', async () => {
    // reassignments() answers from the cache, which the watch updates after etcd acknowledged the
    // write: answered before, a client polling right after found none under way and took its
    // reassignment for finished (`partition reassign --wait` printed the replicas of before).
    const address = `${etcd.endpoint.replace('http://', 'etcd://')}/read-your-writes`;
    const members = [
      await startMember(address, 1, { watchDelayMs: 300 }),
      await startMember(address, 2, { watchDelayMs: 300 }),
    ];
    try {
      await until(() => members.filter((m) => m.service.term !== null).length === 1);
      const controller = members.find((m) => m.service.term !== null)!;
      const view = controller.service.cache;
      await until(() => view.brokers().length === 2);
      const created = await controller.service.createTopic({
        name: 'late',
        partitions: 1,
        replicationFactor: 1,
        config: {},
      });
      await until(() => (view.partition('late', 0)?.value.leader ?? NO_LEADER) !== NO_LEADER);
      const from = created.assignment[0]!;
      const target = [from[0] === 1 ? 2 : 1];
      const started = await controller.service.reassign([{ topic: 'late', partition: 0, replicas: target }]);
      expect(started.flatMap((p) => p.started)).toEqual([{ partition: 0, from, to: target }]);
      // No broker runs here to catch the new replica up: it stays under way, and shows so at once.
      expect(controller.service.reassignments()).toEqual([
        { topic: 'late', partition: 0, replicas: [...from, ...target], target, isr: from, leader: from[0] },
      ]);
      expect(members.flatMap((m) => m.errors)).toEqual([]);
    } finally {
      for (const member of members) {
        await member.service.stop().catch(() => undefined);
        await member.session.close();
        await member.plane.close();
      }
    }
  });

  it('fences a registered broker that stops heartbeating, and counts it live again when it does', async () => {
    const address = `${etcd.endpoint.replace('http://', 'etcd://')}/fencing`;
    // Leases of 30 s: only the heartbeats can explain what moves.
    const options = { fencingTimeMs: 300, leaseTtlSeconds: 30 };
    const members = [
      await startMember(address, 1, options),
      await startMember(address, 2, options),
      await startMember(address, 3, options),
    ];
    const silent = new Set<number>();
    const beating = setInterval(() => {
      const controller = members.find((m) => m.service.term !== null);
      if (controller === undefined) return;
      for (const member of members)
        if (member !== controller && !silent.has(member.id))
          void controller.service
            .heartbeat({
              brokerId: member.id,
              startedAtMs: member.startedAtMs,
              controllerEpoch: controller.service.term!.epoch,
              shuttingDown: false,
            })
            .catch(() => undefined);
    }, 50);
    try {
      await until(() => members.filter((m) => m.service.term !== null).length === 1);
      const controller = members.find((m) => m.service.term !== null)!;
      const view = controller.service.cache;
      await until(() => view.brokers().length === 3);
      await controller.service.createTopic({
        name: 'beats',
        partitions: 3,
        replicationFactor: 3,
        config: {},
      });
      const state = (p: number) => view.partition('beats', p)?.value;
      await until(() => [0, 1, 2].every((p) => (state(p)?.leader ?? NO_LEADER) !== NO_LEADER));
      // A heartbeat of another registration under a live id, or of a newer term, is refused.
      const other = members.find((m) => m !== controller)!;
      await expect(
        controller.service.heartbeat({
          brokerId: other.id,
          startedAtMs: other.startedAtMs + 1,
          controllerEpoch: controller.service.term!.epoch,
          shuttingDown: false,
        }),
      ).rejects.toThrow(/BROKER_SESSION_UNKNOWN|not the registration/);
      await expect(
        controller.service.heartbeat({
          brokerId: other.id,
          startedAtMs: other.startedAtMs,
          controllerEpoch: controller.service.term!.epoch + 1n,
          shuttingDown: false,
        }),
      ).rejects.toThrow(/does not hold controller epoch/);
      await expect(
        members
          .find((m) => m !== controller)!
          .service.heartbeat({
            brokerId: other.id,
            startedAtMs: other.startedAtMs,
            controllerEpoch: -1n,
            shuttingDown: false,
          }),
      ).rejects.toThrow(/not the controller/);

      // The silent broker is still registered, yet it leads nothing and leaves every ISR.
      const victim = other;
      const before = [0, 1, 2].map((p) => state(p)!);
      silent.add(victim.id);
      await until(() =>
        [0, 1, 2].every((p) => state(p)!.leader !== victim.id && !state(p)!.isr.includes(victim.id)),
      );
      expect(view.broker(victim.id)).toBeDefined();
      expect([...controller.service.fencedBrokers()]).toEqual([victim.id]);
      for (const p of [0, 1, 2])
        if (before[p]!.leader === victim.id) expect(state(p)!.leaderEpoch).toBe(before[p]!.leaderEpoch + 1);

      // It heartbeats again: live again. It does not take leadership back by itself (a preferred
      // election does, once it is back in the ISR).
      silent.delete(victim.id);
      await until(() => controller.service.fencedBrokers().size === 0);
      for (const p of [0, 1, 2]) expect(state(p)!.leader).not.toBe(victim.id);
      expect(controller.unclean).toBe(0);
    } finally {
      clearInterval(beating);
      for (const member of members) {
        await member.service.stop().catch(() => undefined);
        await member.session.close();
        await member.plane.close();
      }
    }
  });
});
