// What replication costs, side by side in one run: etcd and three brokers (`serve --cluster`) on
// this machine, and the bench tool (producer and consumer threads) against them for
//   RF=1 acks 1, RF=3 acks 1, RF=3 acks all
// at the maximum rate (throughput) and at a fixed rate (end-to-end P99, send → consumer receipt,
// from each message's intended send time). 100-byte messages, durability interval, one producer,
// one consumer, one partition per topic (its leader is wherever the controller puts it).
// Run: npx tsx bench/cluster-replication.ts [--seconds 5] [--rate 5000] [--rounds 1] [--json]
// With --rounds N every case runs N times, the cases in alternating order from round to round (a
// drift of the machine hits all alike); each figure is the median over the rounds, and the
// per-round ratios are kept beside it, because on two cores shared by five processes one run
// varies a lot.

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
import { argNumber, describeMachine, progress, writeResult } from './lib/report.js';

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
  const rounds = Math.max(1, Math.round(argNumber('rounds', 1)));
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
    interface Sample {
      msgPerSec: number;
      p50Us: number;
      p99Us: number;
    }
    const samples = new Map<string, Sample[]>();
    const modes = [false, true];
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? CASES : [...CASES].reverse();
      for (const fixed of modes) {
        for (const item of order) {
          const mode = fixed ? `${rate} msg/s` : 'max rate';
          progress(`round ${round + 1}/${rounds}: ${item.name}, ${mode}, ${seconds} s`);
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
          const key = `${item.name}\0${mode}`;
          samples.set(key, [
            ...(samples.get(key) ?? []),
            { msgPerSec: Math.round(report.produce.msgPerSec), p50Us: e2e.p50, p99Us: e2e.p99 },
          ]);
        }
      }
    }
    const median = (values: number[]) => {
      const sorted = [...values].sort((a, b) => a - b);
      const middle = Math.floor(sorted.length / 2);
      return sorted.length % 2 === 1
        ? sorted[middle]!
        : Math.round((sorted[middle - 1]! + sorted[middle]!) / 2);
    };
    const rows = modes.flatMap((fixed) =>
      CASES.map((item) => {
        const mode = fixed ? `${rate} msg/s` : 'max rate';
        const runs = samples.get(`${item.name}\0${mode}`)!;
        return {
          case: item.name,
          mode,
          msgPerSec: median(runs.map((run) => run.msgPerSec)),
          p50Us: median(runs.map((run) => run.p50Us)),
          p99Us: median(runs.map((run) => run.p99Us)),
          runs,
        };
      }),
    );
    const base = (mode: string) => rows.find((row) => row.mode === mode && row.case === CASES[0]!.name)!;
    const result = {
      command: `npx tsx bench/cluster-replication.ts --seconds ${seconds} --rate ${rate} --rounds ${rounds}`,
      machine: describeMachine(),
      settings:
        '100-byte messages, durability interval, 1 producer, 1 consumer, 1 partition, batch 512 KiB, linger 0 ms',
      rows: rows.map((row) => ({
        ...row,
        throughputRatio: Number((row.msgPerSec / base(row.mode).msgPerSec).toFixed(2)),
        p99Ratio: Number((row.p99Us / base(row.mode).p99Us).toFixed(2)),
        // The same ratios round by round (each against that round's RF=1 figure).
        throughputRatioPerRound: row.runs.map((run, i) =>
          Number((run.msgPerSec / base(row.mode).runs[i]!.msgPerSec).toFixed(2)),
        ),
        p99RatioPerRound: row.runs.map((run, i) =>
          Number((run.p99Us / base(row.mode).runs[i]!.p99Us).toFixed(2)),
        ),
      })),
    };
    // The record for docs/benchmarks.md (not in the CI smoke run, BENCH_SMOKE=1).
    writeResult({
      benchmark: 'cluster-replication',
      title:
        "Replication cost: RF=1 vs RF=3 with acks 1 and acks 'all', three brokers on etcd, 100-byte messages",
      command: result.command,
      settings: {
        brokers: 3,
        messageBytes: 100,
        durability: 'interval',
        producers: 1,
        consumers: 1,
        partitions: 1,
        batchBytes: 524288,
        lingerMs: 0,
        secondsPerCase: seconds,
        rounds,
        warmupSeconds: 1,
        fixedRate: rate,
      },
      rows: result.rows.map((row) => ({
        case: row.case,
        mode: row.mode,
        'msg/s': row.msgPerSec,
        '× RF=1 msg/s': row.throughputRatio,
        'e2e p50 µs': row.p50Us,
        'e2e p99 µs': row.p99Us,
        '× RF=1 p99': row.p99Ratio,
        '× RF=1 msg/s per round': row.throughputRatioPerRound.join(', '),
        '× RF=1 p99 per round': row.p99RatioPerRound.join(', '),
      })),
      notes: [
        "End-to-end latency runs from each message's intended send time to the consumer's receipt; a consumer receives a message once the leader's high watermark passes it, that is once both followers have fetched it, stored it and said so with their next fetch.",
        "Figures are medians over the rounds, and the per-round columns give each round's ratio against that round's RF=1 figure. Each ratio is against the RF=1 row of the same mode in the same run. All processes (etcd, three brokers, the bench tool's producer and consumer threads) share the two cores.",
        'What the extra hops alone cost on this machine, with no broker: see replication-floor.',
      ],
    });
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
