// One broker per core, measured: produce throughput into one topic of 8 partitions from producer
// processes, against `memorystreamer serve` (1 broker), against `memorystreamer serve --cores 2`
// (2 broker processes in one cluster on a local etcd, the partitions spread over both), and, to
// tell what the cluster layer costs from what a second process brings, against one broker that is
// the only member of a cluster (`serve --cluster` on a local etcd), side by side in one run. The brokers are started exactly as a user starts them (the CLI, as child processes).
// 100-byte values, acks 1, the topic's default durability (interval: fsync every
// topics.flush_interval), replication factor 1, producers with linger 0 (a batch is what arrives in
// one event-loop turn, up to 512 KiB) and a window of in-flight sends each. The producers are
// processes of their own (so the client is not one event loop), and the CPU time of every role
// (brokers, producers, etcd) is read from /proc over the measured window, because on a small
// machine the clients compete with the brokers for the same cores.
// Run: npx tsx bench/cores.ts [--seconds 5] [--warmup 1] [--producers 2] [--partitions 8]
//        [--window 2000] [--rounds 1] [--json]
// With --rounds N both cases run N times in alternating order; figures are medians over rounds.

import { type ChildProcess, fork, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { processCpuSeconds } from '../src/bench/cpu.js';
import { serveCommand } from '../src/bench/spawned-broker.js';
import { freePort } from '../src/cli/free-port.js';
import { startLocalEtcd } from '../src/cli/local-etcd-process.js';
import { connect } from '../src/client/connect.js';
import { argNumber, describeMachine, progress, writeResult } from './lib/report.js';

const TOPIC = 'cores-bench';
const VALUE_BYTES = 100;
const BATCH_BYTES = 512 * 1024;

interface Settings {
  seconds: number;
  warmup: number;
  producers: number;
  partitions: number;
  window: number;
  rounds: number;
}

/** What the parent tells a producer process: where to send, then the wall-clock window to count acks in. */
type ToProducer =
  | { type: 'setup'; brokers: string; window: number; index: number }
  | { type: 'go'; measureFrom: number; measureTo: number };

type FromProducer =
  | { type: 'ready' }
  | { type: 'done'; acked: number; failed: number }
  | { type: 'failed'; message: string };

/** A producer process: sends 100-byte values without key (spread over the partitions) until measureTo. */
async function producerRole(): Promise<void> {
  const send = (message: FromProducer) => process.send?.(message);
  const next = () =>
    new Promise<ToProducer>((resolve) =>
      process.once('message', (message) => resolve(message as ToProducer)),
    );
  const setup = await next();
  if (setup.type !== 'setup') throw new Error('a producer starts with its setup');
  const client = await connect({ brokers: setup.brokers });
  try {
    send({ type: 'ready' });
    const started = await next();
    if (started.type !== 'go') throw new Error('a producer goes after its setup');
    const go = { ...setup, ...started };
    const producer = client.producer({ acks: 1, lingerMs: 0, batchBytes: BATCH_BYTES });
    const value = Buffer.alloc(VALUE_BYTES, 0x61 + go.index);
    let acked = 0;
    let failed = 0;
    let inflight = 0;
    let wake: (() => void) | null = null;
    let sent = 0;
    while (Date.now() < go.measureTo) {
      if (inflight >= go.window) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        continue;
      }
      inflight++;
      sent++;
      // No key and no partition: the client's sticky partitioner fills a batch for one partition
      // and moves to the next, so every partition (and every member) gets its share.
      producer.send({ topic: TOPIC, value }).then(
        () => {
          const now = Date.now();
          if (now >= go.measureFrom && now < go.measureTo) acked++;
          inflight--;
          if (inflight <= go.window / 2 && wake !== null) {
            const resume = wake;
            wake = null;
            resume();
          }
        },
        () => {
          failed++;
          inflight--;
          if (wake !== null) {
            const resume = wake;
            wake = null;
            resume();
          }
        },
      );
      // Let the event loop run (acks, batches) every so often.
      if (sent % 256 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    while (inflight > 0) await new Promise((resolve) => setTimeout(resolve, 10));
    send({ type: 'done', acked, failed });
  } finally {
    await client.close();
    // The IPC channel would keep this process alive.
    process.disconnect?.();
  }
}

/** Child processes still running; killed if this process exits first (an error, Ctrl-C). */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});
function killOnExit(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
}

interface Started {
  child: ChildProcess;
  /** Broker process ids. */
  brokers: number[];
  etcd: number | null;
  addresses: string;
  /** Stops what was started beside serve (the one-member cluster's etcd). */
  stopAlso?: () => Promise<void>;
}

/** The setups measured, each started as a user starts it. */
interface Case {
  key: 'single' | 'cluster-1' | 'cores-2';
  label: string;
  brokers: number;
}

const CASES: Case[] = [
  { key: 'single', label: '1 broker (serve)', brokers: 1 },
  { key: 'cluster-1', label: '1 broker, a one-member cluster (serve --cluster)', brokers: 1 },
  { key: 'cores-2', label: '2 brokers (serve --cores 2)', brokers: 2 },
];

/**
 * `memorystreamer serve`, `serve --cores 2`, or `serve --cluster` on a local etcd as the only
 * member, as a child process; resolves once it listens.
 */
async function startServe(item: Case, dataDir: string): Promise<Started> {
  const etcd = item.key === 'cluster-1' ? await startLocalEtcd({ dir: dataDir, prefix: 'bench' }) : null;
  const port = etcd === null ? 0 : await freePort();
  const { command, args, env } = serveCommand({
    dataDir: etcd === null ? dataDir : join(dataDir, 'broker-1'),
    port,
    adminPort: 0,
    env: {
      MEMORYSTREAMER_LOG_LEVEL: 'error',
      ...(etcd === null
        ? {}
        : {
            MEMORYSTREAMER_CLUSTER_ETCD: etcd.cluster,
            MEMORYSTREAMER_CLUSTER_BROKER_ID: '1',
            MEMORYSTREAMER_CLUSTER_ADVERTISE: `127.0.0.1:${port}`,
          }),
    },
  });
  const child = spawn(command, [...args, ...(item.key === 'cores-2' ? ['--cores', '2'] : [])], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env,
  });
  killOnExit(child);
  return await new Promise((resolve, reject) => {
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString();
      const newline = buffered.indexOf('\n');
      if (newline < 0) return;
      child.stdout!.off('data', onData);
      child.stdout!.resume();
      const line = JSON.parse(buffered.slice(0, newline)) as {
        event?: string;
        port?: number;
        pid?: number;
        members?: Array<{ pid: number; advertise: string }>;
        etcd?: { pid: number } | null;
      };
      if (line.event !== 'listening') return reject(new Error(`serve printed ${buffered.slice(0, 300)}`));
      if (line.members === undefined)
        resolve({
          child,
          brokers: [line.pid!],
          etcd: etcd?.pid ?? null,
          addresses: `127.0.0.1:${line.port}`,
          ...(etcd === null ? {} : { stopAlso: () => etcd.stop() }),
        });
      else
        resolve({
          child,
          brokers: line.members.map((member) => member.pid),
          etcd: line.etcd?.pid ?? null,
          addresses: line.members.map((member) => member.advertise).join(','),
        });
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      void etcd?.stop();
      reject(new Error(`serve exited (code ${code}) before listening`));
    });
  });
}

async function stopServe(started: Started): Promise<void> {
  if (started.child.exitCode === null && started.child.signalCode === null) {
    const exited = new Promise((resolve) => started.child.once('exit', resolve));
    started.child.kill('SIGTERM');
    await exited;
  }
  await started.stopAlso?.();
}

const cpuOf = (pids: number[]) => pids.reduce((sum, pid) => sum + (processCpuSeconds(pid) ?? 0), 0);

interface Sample {
  msgPerSec: number;
  /** CPU time per acknowledged message, µs: of the brokers (etcd included) and of the producers. */
  brokerUsPerMsg: number;
  producerUsPerMsg: number;
  failed: number;
  /** Partitions led by each broker id. */
  leaders: Record<string, number>;
  cpu: { brokers: number; producers: number; etcd: number };
  /** CPU % of the brokers (and etcd) with no client sending: what the processes cost by themselves. */
  idleCpu: number;
}

async function runCase(item: Case, settings: Settings): Promise<Sample> {
  const dir = await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), 'ms-cores-bench-'));
  const started = await startServe(item, dir);
  const producers: ChildProcess[] = [];
  try {
    const client = await connect({ brokers: started.addresses });
    const leaders: Record<string, number> = {};
    try {
      // A cluster creates topics on its controller, which may not be elected yet.
      for (let attempt = 0; ; attempt++) {
        try {
          await client.admin.createTopic({ name: TOPIC, partitions: settings.partitions });
          break;
        } catch (error) {
          if (attempt >= 100) throw error;
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
      for (let attempt = 0; ; attempt++) {
        const topic = (await client.admin.metadata([TOPIC])).topics[0];
        if (topic?.partitions.every((partition) => partition.leader >= 0)) {
          for (const partition of topic.partitions)
            leaders[partition.leader] = (leaders[partition.leader] ?? 0) + 1;
          break;
        }
        if (attempt >= 100) throw new Error('the topic has partitions without a leader');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      await client.close();
    }
    // What the broker processes (and etcd) use with nobody producing: timers, heartbeats, GC.
    const idleSeconds = 2;
    const brokerPids = [...started.brokers, ...(started.etcd === null ? [] : [started.etcd])];
    const idleFrom = cpuOf(brokerPids);
    await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1000));
    const idleCpu = Math.round(((cpuOf(brokerPids) - idleFrom) / idleSeconds) * 100);
    const reports: Array<Promise<FromProducer>> = [];
    const ready: Array<Promise<FromProducer>> = [];
    for (let index = 0; index < settings.producers; index++) {
      const child = fork(fileURLToPath(import.meta.url), ['--role', 'producer'], {
        execArgv: process.execArgv,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      killOnExit(child);
      producers.push(child);
      const exit = new Promise<FromProducer>((resolve) =>
        child.once('exit', (code) => resolve({ type: 'failed', message: `producer exited (code ${code})` })),
      );
      const message = (type: FromProducer['type']) =>
        Promise.race([
          new Promise<FromProducer>((resolve) => {
            const listener = (value: unknown) => {
              const received = value as FromProducer;
              if (received.type !== type && received.type !== 'failed') return;
              child.off('message', listener);
              resolve(received);
            };
            child.on('message', listener);
          }),
          exit,
        ]);
      ready.push(message('ready'));
      reports.push(message('done'));
      const setup: ToProducer = {
        type: 'setup',
        brokers: started.addresses,
        window: settings.window,
        index,
      };
      child.send(setup);
    }
    for (const answer of await Promise.all(ready))
      if (answer.type !== 'ready')
        throw new Error(answer.type === 'failed' ? answer.message : 'producer not ready');
    // Every producer is connected; the warmup runs at full load before the measured window.
    const measureFrom = Date.now() + settings.warmup * 1000;
    const measureTo = measureFrom + settings.seconds * 1000;
    for (const child of producers) {
      const go: ToProducer = { type: 'go', measureFrom, measureTo };
      child.send(go);
    }
    const pids = producers.map((child) => child.pid!);
    await new Promise((resolve) => setTimeout(resolve, measureFrom - Date.now()));
    const before = {
      brokers: cpuOf(started.brokers),
      producers: cpuOf(pids),
      etcd: cpuOf(started.etcd === null ? [] : [started.etcd]),
    };
    await new Promise((resolve) => setTimeout(resolve, measureTo - Date.now()));
    const after = {
      brokers: cpuOf(started.brokers),
      producers: cpuOf(pids),
      etcd: cpuOf(started.etcd === null ? [] : [started.etcd]),
    };
    const results = await Promise.all(reports);
    let acked = 0;
    let failed = 0;
    for (const result of results) {
      if (result.type !== 'done')
        throw new Error(result.type === 'failed' ? result.message : 'producer not done');
      acked += result.acked;
      failed += result.failed;
    }
    const percent = (seconds: number) => Math.round((seconds / settings.seconds) * 100);
    const perMessage = (seconds: number) => (acked === 0 ? 0 : Number(((seconds * 1e6) / acked).toFixed(2)));
    return {
      msgPerSec: Math.round(acked / settings.seconds),
      brokerUsPerMsg: perMessage(after.brokers - before.brokers + after.etcd - before.etcd),
      producerUsPerMsg: perMessage(after.producers - before.producers),
      failed,
      leaders,
      idleCpu,
      cpu: {
        brokers: percent(after.brokers - before.brokers),
        producers: percent(after.producers - before.producers),
        etcd: percent(after.etcd - before.etcd),
      },
    };
  } finally {
    for (const child of producers) if (child.exitCode === null) child.kill('SIGKILL');
    await stopServe(started);
    await rm(dir, { recursive: true, force: true });
  }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

async function main(): Promise<void> {
  const settings: Settings = {
    seconds: argNumber('seconds', 5),
    warmup: argNumber('warmup', 1),
    producers: Math.max(1, Math.round(argNumber('producers', 2))),
    partitions: Math.max(1, Math.round(argNumber('partitions', 8))),
    window: Math.max(1, Math.round(argNumber('window', 2000))),
    rounds: Math.max(1, Math.round(argNumber('rounds', 1))),
  };
  const json = process.argv.includes('--json');
  const samples = new Map<Case['key'], Sample[]>();
  for (let round = 0; round < settings.rounds; round++) {
    for (const item of round % 2 === 0 ? CASES : [...CASES].reverse()) {
      progress(
        `round ${round + 1}/${settings.rounds}: ${item.label}, ${settings.producers} producer processes, ${settings.seconds} s`,
      );
      samples.set(item.key, [...(samples.get(item.key) ?? []), await runCase(item, settings)]);
    }
  }
  const command = `npx tsx bench/cores.ts --seconds ${settings.seconds} --warmup ${settings.warmup} --producers ${settings.producers} --partitions ${settings.partitions} --window ${settings.window} --rounds ${settings.rounds}`;
  const base = Math.round(median(samples.get('single')!.map((sample) => sample.msgPerSec)));
  const rows = CASES.map((item) => {
    const runs = samples.get(item.key)!;
    const msgPerSec = Math.round(median(runs.map((run) => run.msgPerSec)));
    return {
      case: item.label,
      brokers: item.brokers,
      msgPerSec,
      ratio: Number((msgPerSec / base).toFixed(2)),
      cpuPercent: {
        brokers: Math.round(median(runs.map((run) => run.cpu.brokers))),
        producers: Math.round(median(runs.map((run) => run.cpu.producers))),
        etcd: Math.round(median(runs.map((run) => run.cpu.etcd))),
      },
      idleCpuPercent: Math.round(median(runs.map((run) => run.idleCpu))),
      brokerUsPerMsg: median(runs.map((run) => run.brokerUsPerMsg)),
      producerUsPerMsg: median(runs.map((run) => run.producerUsPerMsg)),
      partitionsPerBroker: runs[0]!.leaders,
      failed: runs.reduce((sum, run) => sum + run.failed, 0),
      msgPerSecPerRound: runs.map((run) => run.msgPerSec),
      brokerUsPerMsgPerRound: runs.map((run) => run.brokerUsPerMsg),
    };
  });
  const result = {
    command,
    machine: describeMachine(),
    settings: `${VALUE_BYTES}-byte messages, acks 1, durability interval, replication factor 1, ${settings.partitions} partitions, ${settings.producers} producer processes (window ${settings.window} sends each, linger 0 ms, batch up to 512 KiB), ${settings.seconds} s measured after ${settings.warmup} s warmup`,
    rows,
  };
  // The record for docs/benchmarks.md (not in the smoke run, BENCH_SMOKE=1).
  writeResult({
    benchmark: 'cores',
    title:
      'One broker per core: produce throughput of 1 broker (serve), 1 broker in a cluster and 2 brokers (serve --cores 2) on this machine',
    command,
    settings: {
      messageBytes: VALUE_BYTES,
      acks: '1',
      durability: 'interval',
      replicationFactor: 1,
      partitions: settings.partitions,
      producerProcesses: settings.producers,
      windowPerProducer: settings.window,
      lingerMs: 0,
      batchBytes: BATCH_BYTES,
      secondsPerCase: settings.seconds,
      warmupSeconds: settings.warmup,
      rounds: settings.rounds,
    },
    rows: rows.map((row) => ({
      case: row.case,
      'msg/s': row.msgPerSec,
      '× 1 broker': row.ratio,
      'CPU % brokers': row.cpuPercent.brokers,
      'CPU % producers': row.cpuPercent.producers,
      'CPU % etcd': row.cpuPercent.etcd,
      'CPU % brokers idle': row.idleCpuPercent,
      'broker CPU µs/msg': row.brokerUsPerMsg,
      'producer CPU µs/msg': row.producerUsPerMsg,
      'partitions per broker': Object.entries(row.partitionsPerBroker)
        .map(([id, count]) => `${id}: ${count}`)
        .join(', '),
      'msg/s per round': row.msgPerSecPerRound.join(', '),
      'broker CPU µs/msg per round': row.brokerUsPerMsgPerRound.join(', '),
    })),
    notes: [
      'CPU % is CPU time over the measured window (100 % = one core), summed over the processes of the role: the broker processes, the producer processes, and etcd (the cluster cases only). The machine has 2 cores, shared with other work while this ran.',
      'CPU % brokers idle is what the broker processes and etcd use over 2 s before the producers start, with nobody sending: the fixed cost of the processes, which the per-message figures include.',
      'CPU µs/msg is the CPU time of the role over the measured window divided by the messages acknowledged in it (brokers: the broker processes and etcd). It depends much less than msg/s on how much of the machine other work took meanwhile: a machine whose cores serve only the brokers would reach about (cores for the brokers) / (broker µs/msg) messages per second.',
      'All cases run in the same invocation, each on a fresh data directory; with --rounds above 1 they alternate order and the figures are medians.',
    ],
  });
  if (json) console.log(JSON.stringify(result, null, 2));
  else {
    console.log(`\n${command}\n${JSON.stringify(result.machine)}\n${result.settings}\n`);
    console.log(
      'case                                               msg/s    ×1  CPU% brokers producers etcd idle  µs/msg brokers producers  msg/s per round',
    );
    for (const row of rows)
      console.log(
        `${row.case.padEnd(48)} ${String(row.msgPerSec).padStart(9)}  ${String(row.ratio).padStart(4)}  ${String(row.cpuPercent.brokers).padStart(12)} ${String(row.cpuPercent.producers).padStart(9)} ${String(row.cpuPercent.etcd).padStart(4)} ${String(row.idleCpuPercent).padStart(4)}  ${String(row.brokerUsPerMsg).padStart(14)} ${String(row.producerUsPerMsg).padStart(9)}  ${row.msgPerSecPerRound.join(', ')}`,
      );
  }
}

if (process.argv.includes('--role')) await producerRole();
else await main();
