// `memorystreamer bench`: a load generator in the style of the OpenMessaging Benchmark and
// `nats bench`. Producers and consumers run in worker threads against an embedded broker
// (--embedded), a spawned one (--spawn) or an existing one (--broker); see docs/bench-tool.md.

import type { Command } from 'commander';
import { BENCH_DEFAULTS, type BenchFlags, benchOptionNotes, parseBenchOptions } from '../../bench/options.js';
import { runBench } from '../../bench/run-bench.js';
import { renderSummary } from '../../bench/summary.js';
import type { CliContext } from '../context.js';
import { resolveBrokers } from '../profiles.js';

interface GlobalFlags {
  broker?: string;
  profile?: string;
}

export function registerBench(program: Command, context: CliContext): void {
  program
    .command('bench')
    .description('measure throughput, latency and CPU with producer and consumer threads')
    .option('--embedded', 'run a broker in this process (temporary data directory)')
    .option('--spawn', 'run a broker as a child process `serve` (temporary data directory)')
    .option(
      '--data-dir <dir>',
      'with --embedded/--spawn: where the temporary data directory goes (default the OS temp dir)',
    )
    .option(
      '-s, --size <bytes>',
      'value size of every message (at least 8: the send timestamp)',
      BENCH_DEFAULTS.size,
    )
    .option('--producers <n>', 'producer threads', BENCH_DEFAULTS.producers)
    .option(
      '--consumers <n>',
      'consumer threads, each reading its own partitions (0: produce only)',
      BENCH_DEFAULTS.consumers,
    )
    .option('--topics <n>', 'topics the run creates', BENCH_DEFAULTS.topics)
    .option('--partitions <n>', 'partitions per topic', BENCH_DEFAULTS.partitions)
    .option(
      '--replication-factor <n>',
      'copies of each partition (a cluster: --broker host:port of its brokers)',
      BENCH_DEFAULTS.replicationFactor,
    )
    .option(
      '--streams <n>',
      'distinct message keys (streams); 0 sends messages without key',
      BENCH_DEFAULTS.streams,
    )
    .option('--batch-bytes <bytes>', 'producer batch size', BENCH_DEFAULTS.batchBytes)
    .option('--linger-ms <ms>', 'how long a producer batch waits for more messages', BENCH_DEFAULTS.lingerMs)
    .option('--compression <codec>', 'none | gzip | snappy | lz4 | zstd', BENCH_DEFAULTS.compression)
    .option(
      '--acks <0|1|all>',
      '1 waits for the leader write per the topic durability, all for every in-sync replica, 0 does not wait',
      BENCH_DEFAULTS.acks,
    )
    .option(
      '--durability <policy>',
      'never | interval | always, for the topics the run creates (as `topic create --durability`)',
      BENCH_DEFAULTS.durability,
    )
    .option('--rate <msg/s>', 'fixed total rate (latency mode); default: as fast as possible')
    .option('--duration <s>', `measured seconds after warmup (default ${BENCH_DEFAULTS.duration})`)
    .option('--warmup <s>', 'seconds sent and consumed but not measured', BENCH_DEFAULTS.warmup)
    .option('--messages <n>', 'measured messages over all producers, instead of --duration')
    .option(
      '--pacing <mode>',
      'with --rate, waits under 2 ms: spin (exact, a busy core each) | block (0.1 ms slices) | auto (spin if cores suffice)',
      BENCH_DEFAULTS.pacing,
    )
    .addHelpText(
      'after',
      '\nExamples:\n  memorystreamer bench --embedded --duration 5\n  memorystreamer bench --spawn --rate 10000 --duration 30 --json\n  memorystreamer --broker 10.0.0.5:7400 bench --producers 4 --consumers 4 --partitions 8',
    )
    .action(async (flags: BenchFlags, command: Command) => {
      const globals = command.optsWithGlobals<GlobalFlags>();
      const options = parseBenchOptions(flags, { brokerFlag: globals.broker !== undefined });
      for (const note of benchOptionNotes(flags)) context.err(note);
      const brokers =
        options.mode === 'external'
          ? await resolveBrokers({ broker: globals.broker, profile: globals.profile, env: context.env })
          : '';
      // The first Ctrl-C ends the measurement early; the run still drains, reports and cleans up.
      // A second one exits at once (exit handlers still kill a spawned broker).
      const controller = new AbortController();
      const interrupt = () => {
        if (controller.signal.aborted) process.exit(130);
        controller.abort();
      };
      process.on('SIGINT', interrupt);
      try {
        const report = await runBench(options, { brokers, signal: controller.signal });
        context.print(report, renderSummary(report));
        if (report.missing > 0) {
          throw new Error(`${report.missing} produced message(s) were never consumed`);
        }
      } finally {
        process.off('SIGINT', interrupt);
      }
    });
}
