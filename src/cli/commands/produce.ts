// `memorystreamer produce <topic>`: sends lines from stdin or a file, or a generated count of
// messages, and reports what was acknowledged.

import { type FileHandle, open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { type Command, InvalidArgumentError } from 'commander';
import type { Receipt } from '../../client/producer.js';
import type { CliContext } from '../context.js';
import { parseAcks, parseChoice, parseIntegerOption } from '../options.js';
import { Progress } from '../progress.js';

interface ProduceFlags {
  key?: string;
  partition?: string;
  file?: string;
  count?: string;
  size: string;
  acks: string;
  compression: string;
  linger: string;
  progressMs: string;
}

export function registerProduce(program: Command, context: CliContext): void {
  program
    .command('produce <topic>')
    .description('send messages: one per line from stdin or --file, or --count generated ones')
    .option('-k, --key <key>', 'key of every message (its stream)')
    .option('-p, --partition <n>', 'send to this partition')
    .option('-f, --file <path>', 'read lines from this file instead of stdin')
    .option('-n, --count <n>', 'generate this many messages instead of reading lines')
    .option('-s, --size <bytes>', 'size of generated messages', '100')
    .option(
      '--acks <0|1|all>',
      '1 waits for the leader write per the topic durability, all for every in-sync replica, 0 does not wait',
      '1',
    )
    .option('--compression <codec>', 'none | gzip | snappy | lz4 | zstd', 'none')
    .option('--linger <ms>', 'how long a batch waits for more messages', '0')
    .option(
      '--progress-ms <ms>',
      'when standard error is not a terminal, print a progress line this often (0: never)',
      '5000',
    )
    .addHelpText(
      'after',
      '\nExamples:\n  echo hello | memorystreamer produce orders\n  memorystreamer produce orders --key order-1 --file events.jsonl\n  memorystreamer produce bench --count 1000000 --size 100',
    )
    .action(async (topic: string, flags: ProduceFlags) => {
      const acks = parseAcks('--acks', flags.acks);
      const compression = parseChoice('--compression', flags.compression, [
        'none',
        'gzip',
        'snappy',
        'lz4',
        'zstd',
      ] as const);
      const lingerMs = parseIntegerOption('--linger', flags.linger, 0, 60_000);
      const partition =
        flags.partition === undefined
          ? undefined
          : parseIntegerOption('--partition', flags.partition, 0, 9999);
      const count =
        flags.count === undefined
          ? null
          : parseIntegerOption('--count', flags.count, 1, Number.MAX_SAFE_INTEGER);
      const size = parseIntegerOption('--size', flags.size, 0, 64 * 1024 * 1024);
      const progressMs = parseIntegerOption('--progress-ms', flags.progressMs, 0, 86_400_000);
      // Opened before connecting: a file that cannot be read is a usage error naming the flag.
      let file: FileHandle | null = null;
      if (flags.file !== undefined && count === null) {
        try {
          file = await open(flags.file, 'r');
        } catch (error) {
          throw new InvalidArgumentError(`--file ${JSON.stringify(flags.file)}: ${(error as Error).message}`);
        }
      }
      const client = await context.connect();
      const producer = client.producer({ acks, compression, lingerMs });
      const progress = new Progress('produced', count, context, progressMs);
      let first: Receipt | null = null;
      let last: Receipt | null = null;
      let inFlight: Promise<void>[] = [];
      let failure: unknown = null;
      const send = (value: string | Buffer) => {
        const sent = producer
          .send({
            topic,
            value,
            ...(flags.key !== undefined ? { key: flags.key } : {}),
            ...(partition !== undefined ? { partition } : {}),
          })
          .then(
            (receipt) => {
              first ??= receipt;
              last = receipt;
              progress.tick();
            },
            (error: unknown) => {
              failure ??= error;
            },
          );
        inFlight.push(sent);
        return sent;
      };
      const drainIfMany = async () => {
        if (inFlight.length >= 10_000) {
          await Promise.all(inFlight);
          inFlight = [];
        }
      };
      try {
        if (count !== null) {
          const payload = Buffer.alloc(size, 0x61);
          for (let i = 0; i < count && failure === null; i++) {
            void send(payload);
            await drainIfMany();
          }
        } else {
          const input = file === null ? process.stdin : file.createReadStream();
          for await (const line of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) {
            if (failure !== null) break;
            void send(line);
            await drainIfMany();
          }
        }
        await Promise.all(inFlight);
        await producer.flush();
        if (failure !== null) throw failure;
      } finally {
        progress.finish();
        await client.close();
        await file?.close().catch(() => undefined);
      }
      const summary = {
        topic,
        messages: progress.count,
        elapsedMs: progress.elapsedMs,
        first:
          first === null
            ? null
            : { partition: (first as Receipt).partition, offset: (first as Receipt).offset },
        last:
          last === null
            ? null
            : {
                partition: (last as Receipt).partition,
                offset: (last as Receipt).offset,
                sequence: (last as Receipt).sequence,
                durability: (last as Receipt).durability,
              },
      };
      context.print(
        summary,
        progress.count === 0
          ? 'no messages sent'
          : `sent ${progress.count} message(s) to ${topic} in ${progress.elapsedMs} ms; last at partition ${summary.last?.partition} offset ${summary.last?.offset} (${summary.last?.durability})`,
      );
    });
}
