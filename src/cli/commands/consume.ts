// `memorystreamer consume <topic>` and `memorystreamer stream read|tail <topic> <key>`: print
// messages, one per line (the value) or as JSON lines with --json.

import { type Command, InvalidArgumentError } from 'commander';
import type { Consumer } from '../../client/consumer.js';
import type { Message } from '../../client/message.js';
import type { CliContext } from '../context.js';
import { parseIntegerOption, parseStartOption } from '../options.js';
import { toJson } from '../output.js';
import { Progress } from '../progress.js';

function messageJson(message: Message): Record<string, unknown> {
  return {
    topic: message.topic,
    partition: message.partition,
    offset: message.offset,
    ...(message.sequence >= 0 ? { sequence: message.sequence } : {}),
    timestamp: message.timestamp,
    key: message.key?.toString('utf8') ?? null,
    value: message.value?.toString('utf8') ?? null,
    headers: Object.fromEntries(message.headers.map((h) => [h.key, h.value?.toString('utf8') ?? null])),
  };
}

/**
 * Prints messages until `count` is reached; without --follow it stops once the consumer has been
 * idle for `idleMs` (everything present was read).
 */
async function printMessages(
  context: CliContext,
  consumer: Consumer,
  options: { count: number | null; follow: boolean; idleMs: number },
): Promise<number> {
  const progress = new Progress('consumed', options.count, context);
  let printed = 0;
  let idleTimer: NodeJS.Timeout | null = null;
  const armIdle = () => {
    if (options.follow) return;
    if (idleTimer !== null) clearTimeout(idleTimer);
    idleTimer = setTimeout(() => void consumer.close(), options.idleMs);
  };
  const stopOnSignal = () => void consumer.close();
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  try {
    armIdle();
    for await (const message of consumer) {
      context.out(context.json ? toJson(messageJson(message), 0) : (message.value?.toString('utf8') ?? ''));
      printed++;
      progress.tick();
      if (options.count !== null && printed >= options.count) {
        // Printed is processed: a group commits this last message too (leaving the loop would
        // leave it in hand, to be delivered again to the next run).
        await consumer.commit();
        break;
      }
      armIdle();
    }
  } finally {
    if (idleTimer !== null) clearTimeout(idleTimer);
    process.off('SIGINT', stopOnSignal);
    process.off('SIGTERM', stopOnSignal);
    progress.finish();
    await consumer.close();
  }
  return printed;
}

interface ConsumeFlags {
  group?: string;
  from: string;
  count?: string;
  follow?: boolean;
  partition?: string;
  idleMs: string;
}

export function registerConsume(program: Command, context: CliContext): void {
  program
    .command('consume <topic>')
    .description('print messages of a topic')
    .option('--from <where>', 'earliest | latest | an offset | @epoch-ms | an ISO-8601 time', 'earliest')
    .option('-n, --count <n>', 'stop after this many messages')
    .option('-f, --follow', 'keep waiting for new messages (until Ctrl-C)')
    .option('-p, --partition <n>', 'read only this partition')
    .option('-g, --group <group>', 'consume as a member of this group (committed offsets, shared partitions)')
    .option('--idle-ms <ms>', 'without --follow, stop after this long without a message', '1000')
    .addHelpText(
      'after',
      '\nExamples:\n  memorystreamer consume orders --from earliest --count 10\n  memorystreamer consume orders --from latest --follow --json',
    )
    .action(async (topic: string, flags: ConsumeFlags) => {
      const from = parseStartOption(flags.from);
      const count =
        flags.count === undefined
          ? null
          : parseIntegerOption('--count', flags.count, 1, Number.MAX_SAFE_INTEGER);
      const idleMs = parseIntegerOption('--idle-ms', flags.idleMs, 1, 3_600_000);
      const partitions =
        flags.partition === undefined
          ? undefined
          : [parseIntegerOption('--partition', flags.partition, 0, 9999)];
      const client = await context.connect();
      try {
        if (flags.group !== undefined && partitions !== undefined) {
          throw new InvalidArgumentError(
            '--group and --partition cannot be combined: the group assigns partitions',
          );
        }
        const consumer = client.consumer({
          topics: [topic],
          from,
          ...(partitions ? { partitions } : {}),
          ...(flags.group !== undefined ? { group: flags.group } : {}),
        });
        await printMessages(context, consumer, { count, follow: flags.follow === true, idleMs });
      } finally {
        await client.close();
      }
    });

  const stream = program.command('stream').description('read one stream (all messages of one key)');
  const streamAction =
    (follow: boolean) =>
    async (topic: string, key: string, flags: { from: string; count?: string; idleMs: string }) => {
      const from = parseIntegerOption('--from', flags.from, 0, 2 ** 31 - 1);
      const count =
        flags.count === undefined
          ? null
          : parseIntegerOption('--count', flags.count, 1, Number.MAX_SAFE_INTEGER);
      const idleMs = parseIntegerOption('--idle-ms', flags.idleMs, 1, 3_600_000);
      const client = await context.connect();
      try {
        // An unknown topic fails the read (UNKNOWN_TOPIC, exit 1); an unknown key is a stream with
        // no events yet, which is an answer (exit 0) but must not look like a silent failure.
        const printed = await printMessages(context, client.consumer({ stream: { topic, key }, from }), {
          count,
          follow,
          idleMs,
        });
        if (printed === 0) {
          context.err(
            `stream ${JSON.stringify(key)} of topic ${topic} has no events${from > 0 ? ` from sequence ${from} on` : ''}`,
          );
        }
      } finally {
        await client.close();
      }
    };
  for (const [name, follow, what] of [
    ['read', false, 'print the messages of one stream from a sequence number'],
    ['tail', true, 'print one stream and keep following it'],
  ] as const) {
    stream
      .command(`${name} <topic> <key>`)
      .description(what)
      .option('--from <sequence>', 'first stream sequence to print', '0')
      .option('-n, --count <n>', 'stop after this many messages')
      .option('--idle-ms <ms>', 'for read: stop after this long without a message', '1500')
      .addHelpText('after', `\nExample:\n  memorystreamer stream ${name} orders order-1 --from 0`)
      .action(streamAction(follow));
  }
}
