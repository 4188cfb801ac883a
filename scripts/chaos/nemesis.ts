// The nemesis: carries out one step of the schedule against the running processes and the network,
// holds it, and heals it. Who has a role (leader, follower, controller) is read from the cluster's
// metadata when the step starts; when nobody answers, the step's pick chooses among all brokers.

import { readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Client } from '../../src/client/client.js';
import type { History } from './history.js';
import type { Network } from './network.js';
import type { Processes } from './processes.js';
import type { FaultKind, FaultStep } from './schedule.js';
import { LOG_PARTITIONS, LOG_TOPIC, STREAM_TOPIC } from './workload.js';

interface Roles {
  leader: number;
  followers: number[];
  controller: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class Nemesis {
  readonly injected = new Map<FaultKind, number>();

  constructor(
    private readonly processes: Processes,
    private readonly network: Network | null,
    private readonly admin: Client['admin'],
    private readonly history: History,
  ) {}

  private async roles(pick: number): Promise<Roles> {
    const ids = this.processes.brokerIds.filter((id) => this.processes.isRunning(id));
    const fallback = (): Roles => {
      const leader = ids[pick % ids.length] ?? 1;
      return { leader, followers: ids.filter((id) => id !== leader), controller: leader };
    };
    try {
      const metadata = await withTimeout(this.admin.metadata([LOG_TOPIC]), 3_000);
      const partitions = metadata.topics[0]?.partitions ?? [];
      const partition = partitions[pick % LOG_PARTITIONS];
      if (partition === undefined || partition.leader < 1) return fallback();
      return {
        leader: partition.leader,
        followers: partition.replicas.filter((id) => id !== partition.leader),
        controller: metadata.controllerId > 0 ? metadata.controllerId : partition.leader,
      };
    } catch {
      return fallback();
    }
  }

  private async leaderOf(partitionIndex: number): Promise<number | null> {
    try {
      const metadata = await withTimeout(this.admin.metadata([LOG_TOPIC]), 1_000);
      const leader = metadata.topics[0]?.partitions[partitionIndex]?.leader ?? -1;
      return leader > 0 ? leader : null;
    } catch {
      return null;
    }
  }

  private fault(kind: FaultKind, detail: string): void {
    this.injected.set(kind, (this.injected.get(kind) ?? 0) + 1);
    this.history.record({ type: 'fault', kind, detail });
  }

  /** Injects the step's fault, holds it, heals it. */
  async run(step: FaultStep): Promise<void> {
    const roles = await this.roles(step.pick);
    const follower = roles.followers[step.pick % Math.max(1, roles.followers.length)] ?? roles.leader;
    const heal = await this.inject(step, roles, follower);
    await sleep(step.holdMs);
    await heal();
    this.history.record({ type: 'heal', kind: step.kind, detail: '' });
  }

  private async inject(step: FaultStep, roles: Roles, follower: number): Promise<() => Promise<void>> {
    const { processes } = this;
    const restart = (ids: number[]) => async () => {
      for (const id of ids) await processes.startBroker(id);
    };
    switch (step.kind) {
      case 'kill-leader':
      case 'kill-follower':
      case 'kill-controller': {
        const victim =
          step.kind === 'kill-leader'
            ? roles.leader
            : step.kind === 'kill-follower'
              ? follower
              : roles.controller;
        await processes.killBroker(victim);
        this.fault(step.kind, `broker ${victim}`);
        return restart([victim]);
      }
      case 'kill-leader-twice': {
        const first = roles.leader;
        await processes.killBroker(first);
        const partitionIndex = step.pick % LOG_PARTITIONS;
        let second: number | null = null;
        const deadline = Date.now() + 10_000;
        while (second === null && Date.now() < deadline) {
          const leader = await this.leaderOf(partitionIndex);
          if (leader !== null && leader !== first) second = leader;
          else await sleep(2);
        }
        // The second kill lands while the other survivors reconcile their logs with the new
        // leader: they run slowly meanwhile (a few ms in every 50), which spreads their
        // reconciliation over a few hundred ms, and the kill comes at a drawn moment in it.
        if (second !== null) {
          const others = processes.brokerIds.filter((id) => id !== first && id !== second);
          const release = others.map((id) => processes.throttleBroker(id, 3, 50));
          await sleep(100 + (step.pick % 400));
          await processes.killBroker(second);
          for (const run of release) run();
        }
        this.fault(step.kind, `broker ${first}, then ${second ?? 'nobody (no new leader in 10 s)'}`);
        return restart(second === null ? [first] : [first, second]);
      }
      case 'kill-leader-at-truncation': {
        const first = roles.leader;
        const survivors = processes.brokerIds.filter((id) => id !== first && processes.isRunning(id));
        const logs = new LogSizes(survivors.map((id) => processes.dataDir(id)));
        await processes.killBroker(first);
        const partitionIndex = step.pick % LOG_PARTITIONS;
        let second: number | null = null;
        const deadline = Date.now() + 10_000;
        while (second === null && Date.now() < deadline) {
          const leader = await this.leaderOf(partitionIndex);
          if (leader !== null && leader !== first) second = leader;
          else await sleep(2);
        }
        let cut: string | null = null;
        if (second !== null) {
          // The survivors run slowly (3 ms in every 50) and the new leader out of phase with them,
          // so a follower's fetch after its cut waits tens of ms for an answer; the log files are
          // watched every millisecond meanwhile, for at most 2 s.
          const others = survivors.filter((id) => id !== second);
          const release = others.map((id) => processes.throttleBroker(id, 3, 50));
          await sleep(25);
          release.push(processes.throttleBroker(second, 3, 50));
          const until = Date.now() + 2_000;
          while (cut === null && Date.now() < until) {
            cut = logs.shrunk();
            if (cut === null) await sleep(1);
          }
          await processes.killBroker(second);
          for (const run of release) run();
        }
        this.fault(
          step.kind,
          `broker ${first}, then ${second ?? 'nobody (no new leader in 10 s)'}${cut === null ? ' (no log was cut within 2 s)' : ` when ${cut} was cut`}`,
        );
        return restart(second === null ? [first] : [first, second]);
      }
      case 'kill-follower-then-leader': {
        await processes.killBroker(follower);
        await sleep(step.holdMs);
        await processes.startBroker(follower);
        await processes.killBroker(roles.leader);
        this.fault(step.kind, `broker ${follower}, then leader ${roles.leader} once ${follower} was back`);
        return restart([roles.leader]);
      }
      case 'kill-leader-followers-paused': {
        // The followers stand still for 150 ms (half the fencing time: the controller does not
        // fence them), the leader goes on taking produce requests for 100 ms of it, and dies.
        for (const id of roles.followers) processes.pauseBroker(id);
        await sleep(100);
        await processes.killBroker(roles.leader);
        await sleep(50);
        for (const id of roles.followers) processes.resumeBroker(id);
        this.fault(step.kind, `broker ${roles.leader}, its followers ${roles.followers.join(', ')} stopped`);
        return restart([roles.leader]);
      }
      case 'pause-leader':
      case 'pause-follower': {
        const victim = step.kind === 'pause-leader' ? roles.leader : follower;
        processes.pauseBroker(victim);
        this.fault(step.kind, `broker ${victim} for ${step.holdMs} ms`);
        return async () => processes.resumeBroker(victim);
      }
      case 'isolate-leader':
      case 'isolate-leader-from-followers':
      case 'split':
      case 'cut-etcd': {
        const network = this.network!;
        const all = processes.brokerIds;
        let pairs: Array<[string, string]>;
        if (step.kind === 'isolate-leader')
          pairs = [...all.filter((id) => id !== roles.leader).map((id) => `b${id}`), 'etcd'].map((other) => [
            `b${roles.leader}`,
            other,
          ]);
        else if (step.kind === 'isolate-leader-from-followers')
          pairs = roles.followers.map((id) => [`b${roles.leader}`, `b${id}`]);
        else if (step.kind === 'cut-etcd') pairs = all.map((id) => ['etcd', `b${id}`]);
        else {
          // The leader and (with five brokers) one more on the minority side, without etcd.
          const minoritySize = Math.floor((all.length - 1) / 2);
          const others = all.filter((id) => id !== roles.leader);
          const minority = [
            roles.leader,
            ...others.slice(step.pick % others.length).slice(0, minoritySize - 1),
          ];
          const majority = all.filter((id) => !minority.includes(id));
          pairs = minority.flatMap((a) => [
            ...majority.map((b): [string, string] => [`b${a}`, `b${b}`]),
            [`b${a}`, 'etcd'] as [string, string],
          ]);
        }
        for (const [a, b] of pairs) network.cut(a, b);
        this.fault(step.kind, pairs.map(([a, b]) => `${a}-${b}`).join(' '));
        return async () => network.restoreAll();
      }
      case 'restart-etcd': {
        await processes.restartEtcd();
        this.fault(step.kind, 'etcd killed and started again');
        return async () => undefined;
      }
      case 'disk-full': {
        const bytes = await processes.fillDisk();
        this.fault(step.kind, `small disk filled with ${bytes} bytes`);
        return async () => {
          await processes.freeDisk();
          // A log that failed to write refuses appends until a restart recovers it.
          const id = processes.smallDiskBroker;
          if (id !== null) {
            await processes.killBroker(id);
            await processes.startBroker(id);
          }
        };
      }
    }
  }
}

/**
 * The sizes of the data partitions' log files under some brokers' data directories, read again on
 * each call: a file smaller than when last read was cut (a follower truncating its log).
 */
class LogSizes {
  private readonly sizes = new Map<string, number>();

  constructor(private readonly dataDirs: readonly string[]) {
    this.shrunk();
  }

  /** The first log file found smaller than last time (relative to the data directories' root), or null. */
  shrunk(): string | null {
    let found: string | null = null;
    for (const dir of this.dataDirs)
      for (const topic of [LOG_TOPIC, STREAM_TOPIC]) {
        let partitions: string[];
        try {
          partitions = readdirSync(join(dir, 'topics', topic));
        } catch {
          continue;
        }
        for (const partition of partitions) {
          let files: string[];
          try {
            files = readdirSync(join(dir, 'topics', topic, partition)).filter((name) =>
              name.endsWith('.log'),
            );
          } catch {
            continue;
          }
          for (const file of files) {
            const path = join(dir, 'topics', topic, partition, file);
            let size: number;
            try {
              size = statSync(path).size;
            } catch {
              continue;
            }
            const before = this.sizes.get(path);
            this.sizes.set(path, size);
            if (found === null && before !== undefined && size < before)
              found = `${basename(dir)}/${topic}/${partition}/${file}`;
          }
        }
      }
    return found;
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
