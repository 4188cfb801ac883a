// Failover under load, with real processes: etcd (Debian's etcd-server, --heartbeat-interval=50
// --election-timeout=500) and three `serve --cluster` brokers (lease TTL 1 s, fencing time 300 ms,
// heartbeats every 50 ms), a topic of 3 partitions with 3 replicas, and a steady acks 'all' load
// on every partition (one 100-byte message at a time per partition, sent again 2 ms after a
// failure: the client's own backoff is not what is measured). Then, again and again:
//
//   leader kills      kill -9 of a broker that leads a partition and is not the controller;
//   controller kills  kill -9 of the controller (it leads a partition too);
//
// and for each kill:
//   (a) kill → the metadata (read from a surviving broker every 5 ms) names a new leader for
//       every partition the killed broker led;
//   (b) kill → an acks 'all' produce sent after the kill is acknowledged on every such partition
//       (for a controller kill, on every partition: the brokers stop leading while no controller
//       answers their heartbeats);
//   (c) controller kills: kill → the metadata names a new controller.
// After each kill the broker starts again on its port and data directory, the run waits until
// every replica is back in sync and moves leadership back to the preferred replicas.
//
// Run: npx tsx bench/failover.ts [--kills 30] [--controller-kills 10] [--json]
// (BENCH_SMOKE=1 checks the tool without writing bench/results/failover.json.)

import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type SpawnedBroker, spawnBrokerProcess } from '../src/bench/spawned-broker.js';
import { localEtcdArgs } from '../src/cli/local-etcd.js';
import type { Client } from '../src/client/client.js';
import { connect } from '../src/client/connect.js';
import { TcpTransport } from '../src/client/tcp-transport.js';
import { MemoryStreamerError } from '../src/common/errors.js';
import type { MetadataResponse } from '../src/protocol/commands/data-types.js';
import { argNumber, progress, writeResult } from './lib/report.js';

const TOPIC = 'failover';
const PARTITIONS = 3;
const VALUE = Buffer.alloc(100, 0x61);

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor<T>(
  what: string | (() => string),
  attempt: () => Promise<T | null>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      const value = await attempt();
      if (value !== null) return value;
    } catch (error) {
      last = error;
    }
    await sleep(20);
  }
  throw new Error(
    `${typeof what === 'string' ? what : what()}: not within ${timeoutMs} ms${last !== null ? ` (${(last as Error).message})` : ''}`,
  );
}

/** The steady load: per partition, one acks 'all' send at a time; the send times of acknowledged ones. */
class Load {
  /** Per partition: [sentAtMs, ackedAtMs] of acknowledged sends, in order. */
  readonly acks: Array<Array<[number, number]>> = Array.from({ length: PARTITIONS }, () => []);
  errors = 0;
  private running = true;
  private readonly loops: Array<Promise<void>>;

  constructor(client: Client) {
    // retries 0: a failed send is sent again by this loop 2 ms later, through the client's
    // routing (which reads the metadata again after NOT_LEADER or a lost connection).
    const producer = client.producer({ acks: 'all', retries: 0, idempotent: false, lingerMs: 0 });
    this.loops = Array.from({ length: PARTITIONS }, async (_, partition) => {
      while (this.running) {
        const sentAt = performance.now();
        try {
          await producer.send({ topic: TOPIC, partition, value: VALUE });
          this.acks[partition]!.push([sentAt, performance.now()]);
          await sleep(1);
        } catch {
          this.errors++;
          await sleep(2);
        }
      }
    });
  }

  /** When the first send made at or after `sinceMs` on `partition` was acknowledged, or null. */
  firstAckAfter(partition: number, sinceMs: number): number | null {
    const list = this.acks[partition]!;
    for (let i = list.length - 1; i >= 0; i--) {
      const [sent] = list[i]!;
      if (sent < sinceMs) {
        const next = list[i + 1];
        return next === undefined ? null : next[1];
      }
    }
    return list.length > 0 && list[0]![0] >= sinceMs ? list[0]![1] : null;
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }
}

interface Stats {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

function stats(values: number[]): Stats {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  return sorted.length === 0
    ? { n: 0, p50: Number.NaN, p99: Number.NaN, max: Number.NaN }
    : { n: sorted.length, p50: Math.round(at(0.5)), p99: Math.round(at(0.99)), max: Math.round(at(1)) };
}

async function main(): Promise<void> {
  if (spawnSync('etcd', ['--version'], { stdio: 'ignore' }).status !== 0)
    throw new Error('etcd is not installed (Debian: apt-get install etcd-server)');
  const kills = Math.max(0, Math.round(argNumber('kills', 30)));
  const controllerKills = Math.max(0, Math.round(argNumber('controller-kills', 10)));
  const json = process.argv.includes('--json');
  const dir = await mkdtemp(join(tmpdir(), 'ms-failover-bench-'));
  const etcdPort = await freePort();
  const peerPort = await freePort();
  const etcd = spawn(
    'etcd',
    localEtcdArgs({ name: 'failover', dataDir: join(dir, 'etcd'), clientPort: etcdPort, peerPort }),
    { stdio: 'ignore' },
  );
  const ports: number[] = [];
  const brokers: Array<SpawnedBroker | null> = [];
  // The brokers' warnings, for the error of a run that cannot go on.
  const logs = new Map<number, string>();
  const start = async (id: number): Promise<SpawnedBroker> =>
    spawnBrokerProcess({
      dataDir: join(dir, `b${id}`),
      port: ports[id - 1]!,
      env: {
        MEMORYSTREAMER_CLUSTER_ETCD: `etcd://127.0.0.1:${etcdPort}/failover`,
        MEMORYSTREAMER_CLUSTER_BROKER_ID: String(id),
        MEMORYSTREAMER_CLUSTER_ADVERTISE: `127.0.0.1:${ports[id - 1]}`,
        MEMORYSTREAMER_CLUSTER_LEASE_TTL: '1s',
        MEMORYSTREAMER_LOG_LEVEL: 'warn',
      },
      stderr: (text) => logs.set(id, ((logs.get(id) ?? '') + text).slice(-8000)),
      // A loaded machine can take long to start a broker from the sources.
      startupTimeoutMs: 120_000,
    });
  let client: Client | null = null;
  let load: Load | null = null;
  const links = new Map<number, TcpTransport>();
  try {
    await waitFor('etcd healthy', async () =>
      (await fetch(`http://127.0.0.1:${etcdPort}/health`)).ok ? true : null,
    );
    for (let i = 0; i < 3; i++) ports.push(await freePort());
    for (const id of [1, 2, 3]) brokers.push(await start(id));
    const addresses = ports.map((port) => `127.0.0.1:${port}`);
    client = await connect({ brokers: addresses });
    const admin = client.admin;
    await waitFor('topic created', async () => {
      try {
        return await admin.createTopic({ name: TOPIC, partitions: PARTITIONS, replicationFactor: 3 });
      } catch (error) {
        if (error instanceof MemoryStreamerError && error.retriable) return null;
        throw error;
      }
    });
    // Metadata straight from one broker (not through the client's cached routing).
    const metadataFrom = async (id: number): Promise<MetadataResponse> => {
      let link = links.get(id);
      if (link === undefined) {
        link = new TcpTransport({
          brokers: [{ host: '127.0.0.1', port: ports[id - 1]! }],
          clientId: 'failover-bench',
        });
        links.set(id, link);
      }
      return link.request('metadata', { topics: [TOPIC] }, { timeoutMs: 2_000 });
    };
    let lastSeen = '';
    const settled = async (): Promise<MetadataResponse> =>
      waitFor(
        () => `every replica in sync (last seen: ${lastSeen}; broker logs: ${JSON.stringify([...logs])})`,
        async () => {
          const metadata = await metadataFrom(1 + (Math.floor(Math.random() * 3) % 3));
          lastSeen = JSON.stringify({
            controller: metadata.controllerId,
            brokers: metadata.brokers.map((b) => b.id),
            partitions: metadata.topics[0]!.partitions.map((p) => ({ leader: p.leader, isr: p.isr })),
          });
          const ok =
            metadata.controllerId > 0 &&
            metadata.brokers.length === 3 &&
            metadata.topics[0]!.partitions.every((p) => p.leader > 0 && p.isr.length === 3);
          return ok ? metadata : null;
        },
      );
    await settled();
    load = new Load(client);
    await waitFor('the load running', async () =>
      load!.acks.every((list) => list.length > 10) ? true : null,
    );

    const leaderSamples = { metadata: [] as number[], produce: [] as number[] };
    const controllerSamples = {
      controller: [] as number[],
      metadata: [] as number[],
      produce: [] as number[],
    };
    const plan = [
      ...Array.from({ length: kills }, () => 'leader' as const),
      ...Array.from({ length: controllerKills }, () => 'controller' as const),
    ];
    for (const [index, kind] of plan.entries()) {
      const before = await settled();
      const controller = before.controllerId;
      const partitions = before.topics[0]!.partitions;
      // Leader kills take turns among the brokers that lead and are not the controller.
      const candidates = [...new Set(partitions.map((p) => p.leader))].filter((id) => id !== controller);
      const victim = kind === 'controller' ? controller : (candidates[index % candidates.length] ?? null);
      if (victim === null) throw new Error('every partition is led by the controller');
      const led = partitions.filter((p) => p.leader === victim).map((p) => p.partition);
      const affected = kind === 'controller' ? partitions.map((p) => p.partition) : led;
      const observer = [1, 2, 3].find((id) => id !== victim && id !== controller)!;
      const killedAt = performance.now();
      await brokers[victim - 1]!.kill();
      brokers[victim - 1] = null;
      // (a) and (c): the metadata as a surviving broker serves it.
      let newController: number | null = null;
      const moved = await waitFor(
        'new leaders in the metadata',
        async () => {
          const metadata = await metadataFrom(observer);
          if (newController === null && metadata.controllerId > 0 && metadata.controllerId !== victim)
            newController = performance.now() - killedAt;
          const state = metadata.topics[0]!.partitions;
          return led.every((p) => state[p]!.leader > 0 && state[p]!.leader !== victim)
            ? performance.now() - killedAt
            : null;
        },
        30_000,
      );
      if (kind === 'controller')
        await waitFor('a new controller', async () => {
          const metadata = await metadataFrom(observer);
          if (metadata.controllerId > 0 && metadata.controllerId !== victim)
            newController ??= performance.now() - killedAt;
          return newController;
        });
      // (b): the first acknowledged send made after the kill, on every affected partition.
      const acked = await waitFor(
        'acks after the kill',
        async () => {
          const times = affected.map((p) => load!.firstAckAfter(p, killedAt));
          return times.every((t) => t !== null) ? Math.max(...(times as number[])) - killedAt : null;
        },
        30_000,
      );
      if (kind === 'leader') {
        leaderSamples.metadata.push(moved);
        leaderSamples.produce.push(acked);
      } else {
        controllerSamples.metadata.push(moved);
        controllerSamples.produce.push(acked);
        controllerSamples.controller.push(newController!);
      }
      progress(
        `${index + 1}/${plan.length} ${kind} kill (broker ${victim}): new leader ${Math.round(moved)} ms, ` +
          `next ack ${Math.round(acked)} ms${kind === 'controller' ? `, new controller ${Math.round(newController!)} ms` : ''}`,
      );
      links.get(victim)?.close();
      links.delete(victim);
      brokers[victim - 1] = await start(victim);
      await settled();
      // Leadership back to the preferred replicas, so that the next kills hit other brokers too.
      await waitFor('preferred leaders', async () => {
        await admin.electLeaders([TOPIC]);
        return true;
      });
    }
    await load.stop();
    const row = (name: string, what: string, values: number[]) => {
      const s = stats(values);
      return { kill: name, measure: what, kills: s.n, 'p50 ms': s.p50, 'p99 ms': s.p99, 'max ms': s.max };
    };
    const rows = [
      row('partition leader', 'kill → new leader in metadata', leaderSamples.metadata),
      row('partition leader', 'kill → next acknowledged produce', leaderSamples.produce),
      row('controller', 'kill → new controller in metadata', controllerSamples.controller),
      row('controller', 'kill → new leader in metadata', controllerSamples.metadata),
      row('controller', 'kill → next acknowledged produce (every partition)', controllerSamples.produce),
    ];
    const command = `npm run bench:failover -- --kills ${kills} --controller-kills ${controllerKills}`;
    const result = writeResult({
      benchmark: 'failover',
      title: "Failover: kill -9 of a partition leader and of the controller under acks 'all' load",
      command,
      settings: {
        brokers: 3,
        partitions: PARTITIONS,
        replicationFactor: 3,
        messageBytes: 100,
        acks: 'all',
        durability: 'interval',
        batching: 'one message per send, one send in flight per partition',
        resendAfterFailureMs: 2,
        fencingTimeMs: 300,
        heartbeatIntervalMs: 50,
        leaseTtlSeconds: 1,
        etcd: '--heartbeat-interval=50 --election-timeout=500',
        metadataPollMs: 5,
      },
      rows,
      notes: [
        "A leader kill is noticed by the controller's heartbeat fencing (no heartbeat for 300 ms); a controller kill only when its etcd lease expires (1 s TTL), and until a new controller answers the brokers' heartbeats they stop leading (self-fencing), so every partition waits for it.",
        "The load re-sends 2 ms after a failure (client retries off), so the figures are the cluster's, not a client backoff; failed sends during failover are expected and not counted as losses.",
        "All processes (etcd, three brokers, this load generator) share the machine's two cores with other work.",
      ],
    });
    if (json) console.log(JSON.stringify({ ...result, failedSends: load.errors }, null, 2));
    else {
      console.log(`\n${result.title}\n${command}\n${JSON.stringify(result.machine)}`);
      console.log(
        'kill               measure                                               n    p50    p99    max (ms)',
      );
      for (const r of rows)
        console.log(
          `${r.kill.padEnd(18)} ${r.measure.padEnd(52)} ${String(r.kills).padStart(3)} ${String(r['p50 ms']).padStart(6)} ${String(r['p99 ms']).padStart(6)} ${String(r['max ms']).padStart(6)}`,
        );
      console.log(`sends refused or lost in flight during failovers (re-sent): ${load.errors}`);
    }
  } finally {
    await load?.stop().catch(() => undefined);
    await client?.close().catch(() => undefined);
    for (const link of links.values()) await link.close().catch(() => undefined);
    for (const broker of brokers) await broker?.kill().catch(() => undefined);
    etcd.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
