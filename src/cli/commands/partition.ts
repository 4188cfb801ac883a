// `memorystreamer partition reassign|reassignments|elect-leaders|verify`: moving partitions between
// brokers, and leadership back to the preferred replicas (the controller does the work: any broker
// passes the request on to it); checking followers' sealed segments against their leaders now
// (anti-entropy: the broker asked passes it on to every replica). A broker without a cluster
// answers NEEDS_CLUSTER.
//
// A plan file (--plan) is JSON, as Kafka's kafka-reassign-partitions takes it:
//   { "version": 1, "partitions": [ { "topic": "orders", "partition": 0, "replicas": [2, 3] } ] }
import { readFile } from 'node:fs/promises';
import { type Command, InvalidArgumentError } from 'commander';
import type { Client } from '../../client/client.js';
import type { MetadataResponse } from '../../protocol/commands/data-types.js';
import type {
  ReassignmentProgress,
  ReassignmentStarted,
  ReassignmentTarget,
} from '../../protocol/commands/reassign-commands.js';
import { errorOf } from '../../protocol/error-codes.js';
import type { CliContext } from '../context.js';
import { parseIntegerOption } from '../options.js';
import { renderTable } from '../output.js';

interface ReassignFlags {
  topic?: string;
  partition?: string;
  replicas?: string;
  plan?: string;
  allowReplicationFactorChange?: boolean;
  replace?: boolean;
  wait?: boolean;
  timeoutMs: string;
}

/** `2,3,1` → [2, 3, 1]. */
export function parseReplicaList(value: string): number[] {
  const parts = value.split(',').map((part) => part.trim());
  if (parts.length === 0 || parts.some((part) => !/^\d+$/.test(part)))
    throw new InvalidArgumentError(
      `--replicas ${JSON.stringify(value)}: broker ids separated by commas, e.g. 2,3,1`,
    );
  return parts.map(Number);
}

/** The targets of a plan file, checked field by field (INVALID_REQUEST naming what is wrong). */
export function parsePlan(text: string, file: string): ReassignmentTarget[] {
  const bad = (detail: string) => errorOf('INVALID_REQUEST', `plan ${file}: ${detail}`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw bad(`not JSON (${(error as Error).message})`);
  }
  const partitions = (value as { partitions?: unknown } | null)?.partitions;
  if (!Array.isArray(partitions))
    throw bad('needs { "partitions": [ { "topic", "partition", "replicas" } ] }');
  return partitions.map((entry: unknown, i) => {
    const { topic, partition, replicas } = (entry ?? {}) as Record<string, unknown>;
    if (typeof topic !== 'string' || topic.length === 0)
      throw bad(`partitions[${i}].topic must be a topic name`);
    if (typeof partition !== 'number' || !Number.isSafeInteger(partition) || partition < 0)
      throw bad(`partitions[${i}].partition must be a partition number`);
    if (
      !Array.isArray(replicas) ||
      !replicas.every((id: unknown) => typeof id === 'number' && Number.isSafeInteger(id) && id >= 0)
    )
      throw bad(`partitions[${i}].replicas must be a list of broker ids`);
    return { topic, partition, replicas: replicas as number[] };
  });
}

function targetsOf(flags: ReassignFlags, planText: string | null): ReassignmentTarget[] {
  if (planText !== null) {
    if (flags.topic !== undefined || flags.partition !== undefined || flags.replicas !== undefined)
      throw new InvalidArgumentError('--plan goes alone (not with --topic, --partition, --replicas)');
    return parsePlan(planText, flags.plan!);
  }
  if (flags.topic === undefined || flags.partition === undefined || flags.replicas === undefined)
    throw new InvalidArgumentError('give --topic, --partition and --replicas, or --plan FILE');
  return [
    {
      topic: flags.topic,
      partition: parseIntegerOption('--partition', flags.partition, 0, 2 ** 31 - 1),
      replicas: parseReplicaList(flags.replicas),
    },
  ];
}

function progressState(p: ReassignmentProgress): string {
  const missing = p.target.filter((id) => !p.isr.includes(id));
  if (p.leader < 0) return 'waiting for a leader';
  return missing.length > 0 ? `waiting for ${missing.join(',')} to catch up` : 'caught up, finishing';
}

function progressLine(p: ReassignmentProgress): string {
  return `${p.topic}/${p.partition}: replicas ${p.replicas.join(',')} -> ${p.target.join(',')}, isr ${p.isr.join(',')}: ${progressState(p)}`;
}

/** A partition whose reassignment finished, as `reassign --wait` reports it. */
export interface FinishedReassignment extends ReassignmentStarted {
  readonly replicas: readonly number[];
  readonly leader: number;
  readonly isr: readonly number[];
}

/** Where the partitions of a `reassign --wait` stand after one poll. */
export type ReassignWaitStep =
  | { readonly state: 'finished'; readonly finished: FinishedReassignment[] }
  | {
      readonly state: 'waiting';
      /** The partitions not there yet, with their replicas as last seen (null: not seen). */
      readonly pending: ReadonlyArray<ReassignmentStarted & { readonly replicas: readonly number[] | null }>;
    }
  | {
      readonly state: 'replaced';
      readonly progress: ReassignmentProgress;
      readonly asked: readonly number[];
    };

const sameReplicas = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((id, i) => id === b[i]);

/**
 * One poll of `reassign --wait` (pure): `running` are the reassignments under way, as the
 * controller answers; `metadata` the topics as the broker asked describes them (null when not
 * read). A partition counts as finished only when no reassignment of it runs AND the metadata
 * shows exactly the replicas asked for. "None under way" alone is not enough: the answer may come
 * from a view that does not hold the request yet, and the broker describing the topics follows
 * the control plane a moment behind the controller; either way the replicas of before would have
 * been reported as the result. A partition moving to other replicas than asked was replaced by
 * another reassignment (`--replace`): waiting cannot end well.
 */
export function reassignWaitStep(
  started: readonly ReassignmentStarted[],
  running: readonly ReassignmentProgress[],
  metadata: MetadataResponse | null,
): ReassignWaitStep {
  const key = (p: { topic: string; partition: number }) => `${p.topic}/${p.partition}`;
  const runningByKey = new Map(running.map((p) => [key(p), p]));
  for (const p of started) {
    const progress = runningByKey.get(key(p));
    if (progress !== undefined && !sameReplicas(progress.target, p.to))
      return { state: 'replaced', progress, asked: p.to };
  }
  const finished: FinishedReassignment[] = [];
  const pending: Array<ReassignmentStarted & { replicas: readonly number[] | null }> = [];
  for (const p of started) {
    const now = metadata?.topics
      .find((t) => t.name === p.topic)
      ?.partitions.find((q) => q.partition === p.partition);
    const progress = runningByKey.get(key(p));
    if (progress !== undefined || now === undefined || !sameReplicas(now.replicas, p.to))
      pending.push({ ...p, replicas: progress?.replicas ?? now?.replicas ?? null });
    else finished.push({ ...p, replicas: now.replicas, leader: now.leader, isr: now.isr });
  }
  return pending.length === 0 ? { state: 'finished', finished } : { state: 'waiting', pending };
}

/** Polls until every partition of `started` finished (reassignWaitStep); prints each change of progress. */
async function waitFor(
  client: Client,
  started: readonly ReassignmentStarted[],
  timeoutMs: number,
  context: CliContext,
): Promise<FinishedReassignment[]> {
  const deadline = Date.now() + timeoutMs;
  const keys = new Set(started.map((p) => `${p.topic}/${p.partition}`));
  const topics = [...new Set(started.map((p) => p.topic))];
  const last = new Map<string, string>();
  for (;;) {
    const running = (await client.admin.reassignments()).filter((p) => keys.has(`${p.topic}/${p.partition}`));
    for (const p of running) {
      const line = progressLine(p);
      if (last.get(`${p.topic}/${p.partition}`) === line) continue;
      last.set(`${p.topic}/${p.partition}`, line);
      context.err(context.json ? JSON.stringify({ progress: p }) : line);
    }
    const metadata = running.length === 0 ? await client.admin.metadata(topics) : null;
    const step = reassignWaitStep(started, running, metadata);
    if (step.state === 'finished') return step.finished;
    if (step.state === 'replaced')
      throw errorOf(
        'REASSIGNMENT_IN_PROGRESS',
        `${step.progress.topic}/${step.progress.partition} is moving to ${step.progress.target.join(',')} now, not ${step.asked.join(',')}: another reassignment replaced this one`,
      );
    if (Date.now() > deadline)
      throw errorOf(
        'REQUEST_TIMEOUT',
        `reassignment not finished after ${timeoutMs} ms (${step.pending
          .map(
            (p) =>
              `${p.topic}/${p.partition}: replicas ${p.replicas?.join(',') ?? 'unknown'}, asked ${p.to.join(',')}`,
          )
          .join('; ')}; it goes on: see partition reassignments)`,
      );
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

export function registerPartition(program: Command, context: CliContext): void {
  const partition = program.command('partition').description('partition replicas and leadership (cluster)');
  partition
    .command('reassign')
    .description('move partitions to new replicas (new ones catch up first, then the old ones leave)')
    .option('--topic <name>', 'topic of the partition')
    .option('--partition <n>', 'partition number')
    .option('--replicas <ids>', 'new replicas, comma-separated broker ids; the first is the preferred leader')
    .option('--plan <file>', 'JSON plan: { "partitions": [ { "topic", "partition", "replicas" } ] }')
    .option(
      '--allow-replication-factor-change',
      'targets may have another replica count (all partitions of the topic, same count)',
    )
    .option('--replace', 'a partition being reassigned takes this target instead (its old replicas: cancel)')
    .option('--wait', 'wait until the reassignment finished, printing its progress')
    .option('--timeout-ms <ms>', 'with --wait: give up waiting after this long', '600000')
    .addHelpText(
      'after',
      '\nExamples:\n  memorystreamer partition reassign --topic orders --partition 0 --replicas 2,3 --wait\n' +
        '  memorystreamer partition reassign --plan plan.json',
    )
    .action(async (flags: ReassignFlags) => {
      const planText =
        flags.plan === undefined
          ? null
          : await readFile(flags.plan, 'utf8').catch((error: Error) => {
              throw errorOf('INVALID_REQUEST', `cannot read the plan ${flags.plan}: ${error.message}`);
            });
      const targets = targetsOf(flags, planText);
      const timeoutMs = parseIntegerOption('--timeout-ms', flags.timeoutMs, 1, 2 ** 31 - 1);
      const client = await context.connect();
      try {
        const started = await client.admin.reassignPartitions(targets, {
          allowReplicationFactorChange: flags.allowReplicationFactorChange === true,
          replace: flags.replace === true,
        });
        if (flags.wait !== true) {
          context.print(
            { started },
            renderTable(
              ['TOPIC', 'PARTITION', 'FROM', 'TO'],
              started.map((p) => [p.topic, p.partition, p.from.join(','), p.to.join(',')]),
            ),
          );
          return;
        }
        const finished = await waitFor(client, started, timeoutMs, context);
        context.print(
          { finished },
          renderTable(
            ['TOPIC', 'PARTITION', 'FROM', 'REPLICAS', 'LEADER', 'ISR'],
            finished.map((p) => [
              p.topic,
              p.partition,
              p.from.join(','),
              p.replicas.join(','),
              p.leader,
              p.isr.join(','),
            ]),
          ),
        );
      } finally {
        await client.close();
      }
    });
  partition
    .command('reassignments')
    .description('the reassignments under way')
    .action(async () => {
      const client = await context.connect();
      try {
        const running = await client.admin.reassignments();
        context.print(
          { reassignments: running },
          running.length === 0
            ? 'no reassignment under way'
            : renderTable(
                ['TOPIC', 'PARTITION', 'REPLICAS', 'TARGET', 'ISR', 'LEADER', 'STATE'],
                running.map((p) => [
                  p.topic,
                  p.partition,
                  p.replicas.join(','),
                  p.target.join(','),
                  p.isr.join(','),
                  p.leader < 0 ? 'none' : p.leader,
                  progressState(p),
                ]),
              ),
        );
      } finally {
        await client.close();
      }
    });
  partition
    .command('verify <topic>')
    .description(
      "compare every follower replica's sealed segments with its leader's now and repair bytes that differ",
    )
    .option('--partition <n>', 'only this partition')
    .action(async (topic: string, flags: { partition?: string }) => {
      const partitionNumber =
        flags.partition === undefined
          ? undefined
          : parseIntegerOption('--partition', flags.partition, 0, 2 ** 31 - 1);
      const client = await context.connect();
      try {
        // The brokers read every sealed segment of the replicas, under their disk budget: tell why it takes.
        if (!context.json)
          context.err(
            `verifying ${topic}: each follower hashes its sealed segments and compares them with its leader's…`,
          );
        const { results, failed } = await client.admin.verifyPartitions(topic, partitionNumber);
        const repaired = results.reduce((sum, r) => sum + r.segmentsRepaired, 0);
        const differing = results.reduce((sum, r) => sum + r.segmentsDiffering, 0);
        const compared = results.reduce((sum, r) => sum + r.segmentsCompared, 0);
        const problems = results.flatMap((r) =>
          r.problems.map((p) => `broker ${r.broker}, partition ${r.partition}: ${p}`),
        );
        const lines = [
          renderTable(
            ['PARTITION', 'BROKER', 'LEADER', 'COMPARED', 'DIFFERING', 'REPAIRED', 'BYTES', 'SKIPPED'],
            results.map((r) => [
              r.partition,
              r.broker,
              r.leader,
              r.segmentsCompared,
              r.segmentsDiffering,
              r.segmentsRepaired,
              r.bytesRepaired,
              r.skipped,
            ]),
          ),
          `${results.length} follower replicas checked: ${differing} of ${compared} segments differed from their leader, ${repaired} repaired`,
          ...problems,
          ...failed.map((f) => `broker ${f.broker} could not check: ${f.reason}`),
        ];
        context.print({ results, failed }, lines.join('\n'));
      } finally {
        await client.close();
      }
    });
  partition
    .command('elect-leaders')
    .description("move leadership back to each partition's preferred (first) replica where it is in sync")
    .option('--topic <name...>', 'only these topics (default: every topic)')
    .action(async (flags: { topic?: string[] }) => {
      const client = await context.connect();
      try {
        const moved = await client.admin.electLeaders(flags.topic);
        context.print(
          { moved },
          moved.length === 0
            ? 'every partition is led by its preferred replica already (or it cannot lead now)'
            : renderTable(
                ['TOPIC', 'PARTITION', 'FROM', 'TO', 'EPOCH'],
                moved.map((m) => [m.topic, m.partition, m.from, m.to, m.leaderEpoch]),
              ),
        );
      } finally {
        await client.close();
      }
    });
}
