// `memorystreamer broker drain|undrain`: before a planned stop, leadership of every partition a
// broker leads moves to another in-sync replica, and the broker is not elected leader while it
// is drained (the drain is kept in the control plane, so it outlives controller changes).
import type { Command } from 'commander';
import type { DrainBrokerResponse } from '../../protocol/commands/drain-commands.js';
import type { CliContext } from '../context.js';
import { parseIntegerOption } from '../options.js';
import { renderFields, renderTable } from '../output.js';

function render(result: DrainBrokerResponse): string {
  const lines = [
    renderFields({
      broker: result.brokerId,
      drained: result.drained ? 'yes' : 'no',
      'drained brokers': result.drainedBrokers.join(', ') || 'none',
      'leaders moved': result.moved.length,
      'still leading': result.stayed.length,
    }),
  ];
  if (result.moved.length > 0)
    lines.push(
      '',
      renderTable(
        ['TOPIC', 'PARTITION', 'FROM', 'TO', 'EPOCH'],
        result.moved.map((m) => [m.topic, m.partition, m.from, m.to, m.leaderEpoch]),
      ),
    );
  if (result.stayed.length > 0)
    lines.push(
      '',
      'still led by it (no other live in-sync replica): ' +
        result.stayed.map((p) => `${p.topic}/${p.partition}`).join(', '),
    );
  return lines.join('\n');
}

export function registerBroker(program: Command, context: CliContext): void {
  const broker = program.command('broker').description('brokers of the cluster');
  broker
    .command('drain')
    .description('move leadership off a broker and keep it from leading (before a planned stop)')
    .requiredOption('--broker-id <n>', 'the broker to drain')
    .option('--cancel', 'end the drain (same as broker undrain)')
    .addHelpText(
      'after',
      '\nExamples:\n  memorystreamer broker drain --broker-id 2\n  memorystreamer broker undrain --broker-id 2',
    )
    .action(async (flags: { brokerId: string; cancel?: boolean }) => {
      const brokerId = parseIntegerOption('--broker-id', flags.brokerId, 0, 2 ** 31 - 1);
      const client = await context.connect();
      try {
        const result =
          flags.cancel === true
            ? await client.admin.undrainBroker(brokerId)
            : await client.admin.drainBroker(brokerId);
        context.print(result, render(result));
      } finally {
        await client.close();
      }
    });
  broker
    .command('undrain')
    .description('end a drain: the broker may lead again (partition elect-leaders moves leadership back)')
    .requiredOption('--broker-id <n>', 'the drained broker')
    .action(async (flags: { brokerId: string }) => {
      const brokerId = parseIntegerOption('--broker-id', flags.brokerId, 0, 2 ** 31 - 1);
      const client = await context.connect();
      try {
        const result = await client.admin.undrainBroker(brokerId);
        context.print(result, render(result));
      } finally {
        await client.close();
      }
    });
}
