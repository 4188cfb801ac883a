// What replication costs, side by side in one run: etcd and three brokers (`serve --cluster`) on
// this machine, and the bench tool (producer and consumer threads) against them for
//   RF=1 acks 1, RF=3 acks 1, RF=3 acks all
// at the maximum rate (throughput) and at a fixed rate (end-to-end P99, send → consumer receipt,
// from each message's intended send time). 100-byte messages, durability interval, one producer,
// one consumer, one partition per topic (its leader is wherever the controller puts it).
// Run: npx tsx bench/cluster-replication.ts [--seconds 5] [--rate 5000] [--json]

import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_DEFAULTS, type BenchFlags, parseBenchOptions } from '../src/bench/options.js';
import type { BenchReport } from '../src/bench/report.js';
import { runBench } from '../src/bench/run-bench.js';
import { type SpawnedBroker, spawnBrokerProcess } from '../src/bench/spawned-broker.js';
import { localEtcdArgs } from '../src/cli/local-etcd.js';
import { argNumber, describeMachine, progress } from './lib/report.js';

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

interface Case {
  name: string;
  replicationFactor: number;
  acks: '1' | 'all';
}

const CASES: Case[] = [
  { name: 'RF=1, acks 1', replicationFactor: 1, acks: '1' },
  { name: 'RF=3, acks 1', replicationFactor: 3, acks: '1' },
  { name: "RF=3, acks 'all'", replicationFactor: 3, acks: 'all' },
];

async function main(): Promise<void> {
  if (spawnSync('etcd', ['--version'], { stdio: 'ignore' }).status !== 0)
    throw new Error('etcd is not installed (Debian: apt-get install etcd-server)');
  const seconds = argNumber('seconds', 5);
  const rate = argNumber('rate', 5000);
  const json = process.argv.includes('--json');
  const dir = await mkdtemp(join(tmpdir(), 'ms-cluster-bench-'));
  const etcdPort = await freePort();
  const peerPort = await freePort();
  const etcd = spawn(
    'etcd',
    localEtcdArgs({ name: 'bench', dataDir: join(dir, 'etcd'), clientPort: etcdPort, peerPort }),
    { stdio: 'ignore' },
  );
  const brokers: SpawnedBroker[] = [];
  try {
    for (;;) {
      try {
        if ((await fetch(`http://127.0.0.1:${etcdPort}/health`)).ok) break;
      } catch {}
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    for (const id of [1, 2, 3]) {
      const port = await freePort();
      brokers.push(
        await spawnBrokerProcess({
          dataDir: join(dir, `b${id}`),
          port,
          env: {
            MEMORYSTREAMER_CLUSTER_ETCD: `etcd://127.0.0.1:${etcdPort}/bench`,
            MEMORYSTREAMER_CLUSTER_BROKER_ID: String(id),
            MEMORYSTREAMER_CLUSTER_ADVERTISE: `127.0.0.1:${port}`,
          },
        }),
      );
    }
    const addresses = brokers.map((broker) => `127.0.0.1:${broker.port}`).join(',');
    const rows: Array<{ case: string; mode: string; msgPerSec: number; p50Us: number; p99Us: number }> = [];
    for (const fixed of [false, true]) {
      for (const item of CASES) {
        progress(`${item.name}, ${fixed ? `${rate} msg/s` : 'max rate'}, ${seconds} s`);
        const flags: BenchFlags = {
          ...BENCH_DEFAULTS,
          replicationFactor: String(item.replicationFactor),
          acks: item.acks,
          durability: 'interval',
          duration: String(seconds),
          warmup: '1',
          ...(fixed ? { rate: String(rate) } : {}),
        };
        const options = parseBenchOptions(flags, { brokerFlag: true });
        const report: BenchReport = await runBench(options, { brokers: addresses });
        const e2e = report.latencyUs.endToEnd!;
        rows.push({
          case: item.name,
          mode: fixed ? `${rate} msg/s` : 'max rate',
          msgPerSec: Math.round(report.produce.msgPerSec),
          p50Us: e2e.p50,
          p99Us: e2e.p99,
        });
      }
    }
    const base = (mode: string) => rows.find((row) => row.mode === mode && row.case === CASES[0]!.name)!;
    const result = {
      command: `npx tsx bench/cluster-replication.ts --seconds ${seconds} --rate ${rate}`,
      machine: describeMachine(),
      settings:
        '100-byte messages, durability interval, 1 producer, 1 consumer, 1 partition, batch 512 KiB, linger 0 ms',
      rows: rows.map((row) => ({
        ...row,
        throughputRatio: Number((row.msgPerSec / base(row.mode).msgPerSec).toFixed(2)),
        p99Ratio: Number((row.p99Us / base(row.mode).p99Us).toFixed(2)),
      })),
    };
    if (json) console.log(JSON.stringify(result, null, 2));
    else {
      console.log(`${result.command}\n${JSON.stringify(result.machine)}\n${result.settings}\n`);
      console.log('case               mode          msg/s     ×RF1   e2e p50 µs  e2e p99 µs  ×RF1');
      for (const row of result.rows)
        console.log(
          `${row.case.padEnd(18)} ${row.mode.padEnd(12)} ${String(row.msgPerSec).padStart(8)}  ${String(row.throughputRatio).padStart(5)}  ${String(row.p50Us).padStart(10)}  ${String(row.p99Us).padStart(10)}  ${String(row.p99Ratio).padStart(5)}`,
        );
    }
  } finally {
    for (const broker of brokers) await broker.stop();
    etcd.kill('SIGTERM');
    await new Promise((resolve) => etcd.once('exit', resolve));
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
