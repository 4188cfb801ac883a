// `memorystreamer group list|describe`: consumer groups, their members, assignments and lag.
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { renderFields, renderTable } from '../output.js';

export function registerGroup(program: Command, context: CliContext): void {
  const group = program.command('group').description('list and describe consumer groups');

  group
    .command('list')
    .description('list consumer groups with their state and member count')
    .action(async () => {
      const client = await context.connect();
      try {
        const groups = await client.admin.listGroups();
        context.print(
          groups,
          groups.length === 0
            ? 'no groups'
            : renderTable(
                ['group', 'state', 'generation', 'members'],
                groups.map((g) => [g.groupId, g.state, g.generation, g.members]),
              ),
        );
      } finally {
        await client.close();
      }
    });

  group
    .command('describe <group>')
    .description('members with their partitions, and committed offset and lag per partition')
    .addHelpText('after', '\nExample:\n  memorystreamer group describe billing')
    .action(async (groupId: string) => {
      const client = await context.connect();
      try {
        const described = await client.admin.describeGroup(groupId);
        const members = renderTable(
          ['member', 'partitions'],
          described.members.map((m) => [
            m.memberId,
            m.assignment.map((a) => `${a.topic}:${a.partitions.join(',')}`).join(' ') || '-',
          ]),
        );
        const lag = renderTable(
          ['topic', 'partition', 'committed', 'high watermark', 'lag'],
          described.lag.map((l) => [
            l.topic,
            l.partition,
            l.committed < 0n ? null : l.committed,
            l.highWatermark,
            l.lag,
          ]),
        );
        context.print(
          described,
          `${renderFields({ group: described.group.groupId, state: described.group.state, generation: described.group.generation })}\n\n${members}\n\n${lag}`,
        );
      } finally {
        await client.close();
      }
    });
}
