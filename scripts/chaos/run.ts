// One battery run: etcd and the brokers as real processes, the workload, the nemesis's schedule,
// the heal, and the checks on the recorded history and the brokers' copies (docs/chaos.md).

import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FaultSwitch } from '../../src/cluster/test-switches.js';
import {
  type CheckResult,
  checkAcknowledged,
  checkConsumed,
  checkGroupOffsets,
  checkIdentical,
  checkStreams,
  type PartitionCopies,
} from './checks.js';
import { History } from './history.js';
import { Nemesis } from './nemesis.js';
import { Network, namespacesUnavailable } from './network.js';
import { Processes } from './processes.js';
import { readReplica } from './replica-logs.js';
import { FAULT_KINDS, type FaultKind, type FaultStep, NETWORK_KINDS, planSchedule } from './schedule.js';
import { LOG_TOPIC, STREAM_TOPIC, Workload } from './workload.js';

export interface RunOptions {
  readonly seed: number;
  readonly minutes: number;
  readonly brokers: number;
  readonly faultSwitch: FaultSwitch | null;
  /** Fault kinds to draw from (default: all that can run here). */
  readonly kinds: readonly FaultKind[] | null;
  /** A recorded schedule to run as it is (`--replay`), instead of drawing one from the seed. */
  readonly schedule: readonly FaultStep[] | null;
  /** Keep the run's directory even when every check passed. */
  readonly keep: boolean;
  /** Progress lines for people. */
  readonly progress: (line: string) => void;
}

export interface RunSummary {
  seed: number;
  passed: boolean;
  faultSwitch: string | null;
  brokers: number;
  runTimeMs: number;
  faults: Record<string, number>;
  skipped: string[];
  acknowledged: number;
  failedSends: number;
  streamAppends: number;
  consumed: number;
  commits: number;
  checks: Array<{ name: string; passed: boolean; violations: string[] }>;
  history: string;
  directory: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What cannot run here, each with its reason, and the kinds that can. */
function availableKinds(wanted: readonly FaultKind[]): {
  kinds: FaultKind[];
  skipped: string[];
  network: boolean;
  disk: boolean;
} {
  const skipped: string[] = [];
  const networkProblem = namespacesUnavailable();
  const diskProblem =
    process.getuid?.() !== 0
      ? 'disk-full needs root (mount of a small tmpfs); skipped'
      : spawnSync('mount', ['--version'], { stdio: 'ignore' }).status !== 0
        ? 'disk-full needs mount(8); skipped'
        : null;
  if (networkProblem !== null && wanted.some((kind) => NETWORK_KINDS.includes(kind)))
    skipped.push(networkProblem);
  if (diskProblem !== null && wanted.includes('disk-full')) skipped.push(diskProblem);
  const kinds = wanted.filter(
    (kind) =>
      !(NETWORK_KINDS.includes(kind) && networkProblem !== null) &&
      !(kind === 'disk-full' && diskProblem !== null),
  );
  return { kinds, skipped, network: networkProblem === null, disk: diskProblem === null };
}

export async function runBattery(options: RunOptions): Promise<RunSummary> {
  const startedAt = Date.now();
  const { progress } = options;
  if (spawnSync('etcd', ['--version'], { stdio: 'ignore' }).status !== 0)
    throw new Error('the battery needs etcd (Debian: apt-get install etcd-server)');
  const wanted = options.kinds ?? options.schedule?.map((step) => step.kind) ?? FAULT_KINDS;
  const available = availableKinds(wanted);
  for (const reason of available.skipped) progress(`skipped: ${reason}`);
  const durationMs = options.minutes * 60_000;
  const schedule =
    options.schedule?.filter((step) => available.kinds.includes(step.kind)) ??
    planSchedule(options.seed, durationMs, available.kinds);

  const root = await mkdtemp(join(tmpdir(), `memorystreamer-chaos-${options.seed}-`));
  const history = new History(join(root, 'history.jsonl'), {
    type: 'run',
    seed: options.seed,
    minutes: options.minutes,
    brokers: options.brokers,
    faultSwitch: options.faultSwitch,
    schedule,
    skipped: available.skipped,
  });
  const usesNetwork = schedule.some((step) => NETWORK_KINDS.includes(step.kind));
  const usesDisk = schedule.some((step) => step.kind === 'disk-full');
  let network: Network | null = null;
  let processes: Processes | null = null;
  let workload: Workload | null = null;
  const elapsed = () => `${((Date.now() - startedAt) / 1000).toFixed(0).padStart(4)}s`;
  const interrupt = () => {
    // Ctrl-C: no namespace, bridge or mount is left behind (brokers die with this process).
    processes?.unmount();
    network?.destroy();
    process.exit(130);
  };
  process.once('SIGINT', interrupt);
  try {
    if (usesNetwork)
      network = Network.create(['etcd', ...Array.from({ length: options.brokers }, (_, i) => `b${i + 1}`)]);
    processes = new Processes({
      brokers: options.brokers,
      root,
      network,
      faultSwitch: options.faultSwitch,
      smallDiskBroker: usesDisk ? options.brokers : null,
    });
    progress(
      `${elapsed()} starting etcd and ${options.brokers} brokers${network !== null ? ' (each in its own network namespace)' : ''} in ${root}`,
    );
    await processes.start();
    workload = await Workload.connect(processes.addresses(), history);
    await workload.createTopics();
    await waitConverged(workload, 90_000);
    workload.start();
    progress(`${elapsed()} workload running; ${schedule.length} faults planned (seed ${options.seed})`);
    await sleep(3_000);
    const nemesis = new Nemesis(processes, network, workload.admin, history);
    // Restarts take time of their own: the schedule may run past its planned length, up to twice.
    const faultsUntil = Date.now() + 2 * durationMs + 60_000;
    for (const [index, step] of schedule.entries()) {
      if (Date.now() > faultsUntil) break;
      await nemesis.run(step);
      const counts = workload.counts;
      const last = history.ofType('fault').at(-1);
      progress(
        `${elapsed()} fault ${index + 1}/${schedule.length} ${step.kind} (${last?.detail ?? ''}) healed | acknowledged ${counts.acknowledged}, failed ${counts.failed}, stream appends ${counts.streamAppends}, consumed ${counts.consumed}`,
      );
      await sleep(step.gapMs);
    }

    progress(`${elapsed()} healing: every link restored, every broker running`);
    network?.restoreAll();
    await processes.freeDisk();
    for (const id of processes.brokerIds) {
      processes.resumeBroker(id);
      await processes.startBroker(id);
    }
    await sleep(3_000);
    await workload.stop();
    const converged = await waitConverged(workload, 90_000);
    await workload.observeCommitted();
    const metadata = await workload.admin.metadata([LOG_TOPIC, STREAM_TOPIC]);
    progress(
      `${elapsed()} ${converged ? 'converged' : 'NOT converged in 90 s'}; stopping brokers and reading their copies`,
    );
    const failedSends = workload.counts.failed;
    await workload.close();
    workload = null;
    await processes.stopBrokers();

    const copies: PartitionCopies[] = [];
    for (const topic of metadata.topics)
      for (const partition of topic.partitions) {
        const replicaLogs = new Map();
        for (const id of partition.replicas) {
          const log = await readReplica(id, processes.dataDir(id), topic.name, partition.partition);
          if (log !== null) replicaLogs.set(id, log);
        }
        copies.push({
          topic: topic.name,
          partition: partition.partition,
          leader: partition.leader,
          isr: partition.isr,
          copies: replicaLogs,
        });
      }
    const events = history.events;
    const checks: CheckResult[] = [
      {
        name: 'converged',
        violations: converged
          ? []
          : ['not every partition had a leader and all its replicas in sync 90 s after healing'],
      },
      checkAcknowledged(events, copies, LOG_TOPIC),
      checkIdentical(copies),
      checkConsumed(events, copies, LOG_TOPIC),
      checkStreams(events, copies, STREAM_TOPIC),
      checkGroupOffsets(events),
    ];
    const passed = checks.every((check) => check.violations.length === 0);
    history.record({ type: 'result', passed, violations: checks.flatMap((check) => check.violations) });
    const summary: RunSummary = {
      seed: options.seed,
      passed,
      faultSwitch: options.faultSwitch,
      brokers: options.brokers,
      runTimeMs: Date.now() - startedAt,
      faults: Object.fromEntries(nemesis.injected),
      skipped: available.skipped,
      acknowledged: history.ofType('ack').length,
      failedSends,
      streamAppends: history.ofType('stream-ack').length,
      consumed: history.ofType('consume').length,
      commits: history.ofType('commit').length,
      checks: checks.map((check) => ({
        name: check.name,
        passed: check.violations.length === 0,
        violations: check.violations,
      })),
      history: history.file,
      directory: root,
    };
    return summary;
  } finally {
    process.off('SIGINT', interrupt);
    await workload?.stop().catch(() => undefined);
    await workload?.close();
    await processes?.stopAll();
    processes?.unmount();
    network?.destroy();
    await history.close();
  }
}

/** Removes a passed run's directory (its history goes with it). */
export async function removeRun(summary: RunSummary): Promise<void> {
  await rm(summary.directory, { recursive: true, force: true });
}

/** Waits until every partition has a leader and all its replicas in sync; false on timeout. */
async function waitConverged(workload: Workload, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const metadata = await workload.admin.metadata();
      const partitions = metadata.topics.flatMap((topic) => topic.partitions);
      if (
        metadata.topics.some((topic) => topic.name === LOG_TOPIC) &&
        partitions.every((p) => p.leader > 0 && p.isr.length === p.replicas.length)
      )
        return true;
    } catch {
      // a broker restarting; ask again
    }
    await sleep(500);
  }
  return false;
}
