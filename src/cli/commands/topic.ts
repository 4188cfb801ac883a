// `memorystreamer topic create|list|describe|alter|delete`.
import type { Command } from 'commander';
import { MAX_REPLICATION_FACTOR } from '../../broker/topics/topic-config.js';
import { isMemoryStreamerError } from '../../common/errors.js';
import type { TopicConfigView, TopicView } from '../../protocol/commands/data-types.js';
import type { CliContext } from '../context.js';
import { parseChoice, parseIntegerOption } from '../options.js';
import { renderFields, renderTable } from '../output.js';

interface ConfigFlags {
  retentionMs?: string;
  retentionBytes?: string;
  durability?: string;
  cleanup?: string;
  maxMessageBytes?: string;
  segmentBytes?: string;
  minInsyncReplicas?: string;
  uncleanLeaderElection?: string;
}

function configFrom(flags: ConfigFlags): Partial<TopicConfigView> | undefined {
  const config: Partial<TopicConfigView> = {};
  if (flags.retentionMs !== undefined)
    config.retentionMs = parseIntegerOption('--retention-ms', flags.retentionMs, -1, Number.MAX_SAFE_INTEGER);
  if (flags.retentionBytes !== undefined) {
    config.retentionBytes = parseIntegerOption(
      '--retention-bytes',
      flags.retentionBytes,
      -1,
      Number.MAX_SAFE_INTEGER,
    );
  }
  if (flags.durability !== undefined) {
    config.durability = parseChoice('--durability', flags.durability, [
      'always',
      'interval',
      'never',
    ] as const);
  }
  if (flags.cleanup !== undefined)
    config.cleanup = parseChoice('--cleanup', flags.cleanup, ['delete', 'compact'] as const);
  if (flags.maxMessageBytes !== undefined) {
    config.maxMessageBytes = parseIntegerOption(
      '--max-message-bytes',
      flags.maxMessageBytes,
      64,
      256 * 1024 * 1024,
    );
  }
  if (flags.segmentBytes !== undefined)
    config.segmentBytes = parseIntegerOption('--segment-bytes', flags.segmentBytes, 4096, 2 ** 31 - 1);
  if (flags.minInsyncReplicas !== undefined) {
    config.minInsyncReplicas = parseIntegerOption(
      '--min-insync-replicas',
      flags.minInsyncReplicas,
      1,
      MAX_REPLICATION_FACTOR,
    );
  }
  if (flags.uncleanLeaderElection !== undefined)
    config.uncleanLeaderElection =
      parseChoice('--unclean-leader-election', flags.uncleanLeaderElection, ['true', 'false'] as const) ===
      'true';
  return Object.keys(config).length > 0 ? config : undefined;
}

function withConfigFlags(command: Command): Command {
  return command
    .option('--retention-ms <ms>', 'delete segments older than this (-1 = keep forever)')
    .option('--retention-bytes <bytes>', 'delete old segments while a partition is larger (-1 = no limit)')
    .option('--durability <policy>', 'always (fsync before ack) | interval | never')
    .option('--cleanup <policy>', 'delete (retention only) | compact (also keep the latest record per key)')
    .option('--max-message-bytes <bytes>', 'largest batch a producer may send')
    .option('--segment-bytes <bytes>', 'segment size at which the log rolls')
    .option(
      '--min-insync-replicas <n>',
      "in-sync replicas an acks 'all' produce needs (at most the replication factor)",
    )
    .option(
      '--unclean-leader-election <bool>',
      'true: when no in-sync replica is alive, another replica may lead (acknowledged records may be lost)',
    );
}

function describeConfig(topic: TopicView): Record<string, string | number> {
  const c = topic.config;
  return {
    name: topic.name,
    id: topic.id,
    partitions: topic.partitions,
    'replication.factor': topic.replicationFactor,
    created: new Date(topic.createdAt).toISOString(),
    storage: topic.storage ?? 'disk',
    durability: c.durability,
    cleanup: c.cleanup,
    'retention.ms': c.retentionMs,
    'retention.bytes': c.retentionBytes,
    'max.message.bytes': c.maxMessageBytes,
    'segment.bytes': c.segmentBytes,
    'min.insync.replicas': c.minInsyncReplicas,
    'unclean.leader.election': String(c.uncleanLeaderElection),
  };
}

export function registerTopic(program: Command, context: CliContext): void {
  const topic = program.command('topic').description('create, list, describe, alter and delete topics');

  withConfigFlags(
    topic
      .command('create <name>')
      .description('create a topic')
      .option(
        '-p, --partitions <n>',
        "number of partitions (default: the broker's topics.partitions, 1 unless set)",
      )
      .option(
        '--replication-factor <n>',
        'copies of each partition, on as many brokers (more than 1 needs a cluster)',
      )
      .option(
        '--storage <where>',
        "disk (default) | memory: a bounded log in the broker's memory (--retention-bytes, default 64 MiB per partition), lost on restart",
      )
      .option('--if-not-exists', 'succeed without changing anything when the topic already exists')
      .addHelpText(
        'after',
        '\nExamples:\n  memorystreamer topic create orders --partitions 4\n  memorystreamer topic create audit --durability always\n  memorystreamer topic create orders --if-not-exists\n  memorystreamer topic create ticks --storage memory --retention-bytes 16777216\n  memorystreamer topic create payments --replication-factor 3 --min-insync-replicas 2   (in a cluster)',
      ),
  ).action(
    async (
      name: string,
      flags: ConfigFlags & {
        partitions?: string;
        replicationFactor?: string;
        storage?: string;
        ifNotExists?: boolean;
      },
    ) => {
      const storage =
        flags.storage === undefined
          ? undefined
          : parseChoice('--storage', flags.storage, ['disk', 'memory'] as const);
      // Without -p the broker's default applies (topics.partitions), as for any client.
      const partitions =
        flags.partitions === undefined
          ? undefined
          : parseIntegerOption('--partitions', flags.partitions, 1, 10_000);
      const replicationFactor =
        flags.replicationFactor === undefined
          ? undefined
          : parseIntegerOption('--replication-factor', flags.replicationFactor, 1, MAX_REPLICATION_FACTOR);
      const config = configFrom(flags);
      const client = await context.connect();
      try {
        const request = {
          name,
          ...(partitions !== undefined ? { partitions } : {}),
          ...(replicationFactor !== undefined ? { replicationFactor } : {}),
          ...(storage !== undefined ? { storage } : {}),
          ...(config ? { config } : {}),
        };
        try {
          const created = await client.admin.createTopic(request);
          context.print(
            created,
            `created topic ${created.name} with ${created.partitions} partition(s)` +
              (created.storage === 'memory'
                ? ` in memory (at most about ${created.config.retentionBytes + created.config.segmentBytes} bytes per partition; lost on restart)`
                : ''),
          );
        } catch (error) {
          if (
            flags.ifNotExists !== true ||
            !isMemoryStreamerError(error) ||
            error.codeName !== 'TOPIC_ALREADY_EXISTS'
          )
            throw error;
          // The broker answers ifNotExists with the existing topic, unchanged.
          const existing = await client.admin.createTopic({ ...request, ifNotExists: true });
          context.print(
            existing,
            `topic ${existing.name} already exists with ${existing.partitions} partition(s); nothing changed`,
          );
        }
      } finally {
        await client.close();
      }
    },
  );

  topic
    .command('list')
    .description('list topics')
    .action(async () => {
      const client = await context.connect();
      try {
        const topics = await client.admin.listTopics();
        context.print(
          topics,
          topics.length === 0
            ? 'no topics'
            : renderTable(
                ['name', 'partitions', 'durability', 'cleanup', 'retention ms', 'storage'],
                topics.map((t) => [
                  t.name,
                  t.partitions,
                  t.config.durability,
                  t.config.cleanup,
                  t.config.retentionMs,
                  t.storage ?? 'disk',
                ]),
              ),
        );
      } finally {
        await client.close();
      }
    });

  topic
    .command('describe <name>')
    .description('show a topic, its configuration and its partitions')
    .action(async (name: string) => {
      const client = await context.connect();
      try {
        const described = await client.admin.describeTopic(name);
        context.print(
          described,
          `${renderFields(describeConfig(described.topic))}\n\n${renderTable(
            [
              'partition',
              'start offset',
              'high watermark',
              'log end',
              'bytes',
              'leader',
              'replicas',
              'isr',
              'epoch',
            ],
            described.partitions.map((p) => [
              p.partition,
              p.logStartOffset,
              p.highWatermark,
              p.logEndOffset,
              p.sizeBytes,
              p.leader < 0 ? 'none' : p.leader,
              p.replicas.join(','),
              p.isr.join(','),
              p.leaderEpoch,
            ]),
          )}`,
        );
      } finally {
        await client.close();
      }
    });

  withConfigFlags(
    topic
      .command('alter <name>')
      .description('change partitions (grow only) or configuration')
      .option('-p, --partitions <n>', 'new number of partitions')
      .option(
        '--allow-key-movement',
        'grow a topic that holds keyed messages: keys move to other partitions and their streams start again at version 0 there',
      ),
  ).action(async (name: string, flags: ConfigFlags & { partitions?: string; allowKeyMovement?: boolean }) => {
    const config = configFrom(flags);
    const partitions =
      flags.partitions === undefined
        ? undefined
        : parseIntegerOption('--partitions', flags.partitions, 1, 10_000);
    const client = await context.connect();
    try {
      const altered = await client.admin.alterTopic({
        name,
        ...(partitions ? { partitions } : {}),
        ...(config ? { config } : {}),
        ...(flags.allowKeyMovement === true ? { allowKeyMovement: true } : {}),
      });
      context.print(altered, `altered topic ${altered.name}\n${renderFields(describeConfig(altered))}`);
    } finally {
      await client.close();
    }
  });

  topic
    .command('delete <name>')
    .description('delete a topic and all its data')
    .action(async (name: string) => {
      const client = await context.connect();
      try {
        await client.admin.deleteTopic(name);
        context.print({ deleted: name }, `deleted topic ${name}`);
      } finally {
        await client.close();
      }
    });
}
