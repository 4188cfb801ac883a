// `memorystreamer status` (a summary of the broker) and `memorystreamer offsets <topic>` (start and
// end offset per partition, and a group's committed offsets and lag with --group).
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { renderFields, renderTable } from '../output.js';

export function registerStatus(program: Command, context: CliContext): void {
  program
    .command('status')
    .description('broker summary: reachability, round trip, topics, partitions, groups')
    .action(async () => {
      const client = await context.connect();
      try {
        const rttMs = await client.ping();
        const topics = await client.admin.listTopics();
        const groups = await client.admin.listGroups();
        const summary = {
          reachable: true,
          roundTripMs: Number(rttMs.toFixed(3)),
          topics: topics.length,
          partitions: topics.reduce((n, t) => n + t.partitions, 0),
          groups: groups.length,
          members: groups.reduce((n, g) => n + g.members, 0),
        };
        context.print(
          summary,
          renderFields({
            broker: 'reachable',
            'round trip': `${summary.roundTripMs} ms`,
            topics: summary.topics,
            partitions: summary.partitions,
            groups: summary.groups,
            'group members': summary.members,
          }),
        );
      } finally {
        await client.close();
      }
    });

  program
    .command('offsets <topic>')
    .description('start and end offset of each partition; with --group, committed offsets and lag')
    .option('-g, --group <group>', "show this group's committed offsets and lag")
    .addHelpText(
      'after',
      '\nExamples:\n  memorystreamer offsets orders\n  memorystreamer offsets orders --group billing',
    )
    .action(async (topic: string, flags: { group?: string }) => {
      const client = await context.connect();
      try {
        const described = await client.admin.describeTopic(topic);
        const committed = new Map<number, bigint>();
        if (flags.group !== undefined) {
          for (const o of await client.admin.groupOffsets(flags.group))
            if (o.topic === topic) committed.set(o.partition, o.offset);
        }
        const rows = described.partitions.map((p) => {
          const offset = committed.get(p.partition);
          return {
            partition: p.partition,
            start: p.logStartOffset,
            end: p.highWatermark,
            ...(flags.group !== undefined
              ? { committed: offset ?? null, lag: p.highWatermark - (offset ?? p.logStartOffset) }
              : {}),
          };
        });
        const headers =
          flags.group !== undefined
            ? ['partition', 'start', 'end', 'committed', 'lag']
            : ['partition', 'start', 'end'];
        context.print(
          rows,
          renderTable(
            headers,
            rows.map((r) => headers.map((h) => (r as Record<string, bigint | number | null>)[h] ?? null)),
          ),
        );
      } finally {
        await client.close();
      }
    });
}
