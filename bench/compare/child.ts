// Measures one system (or the bare limits) in a fresh process, so one system's garbage and JIT
// state do not affect the next; run by bench/compare/run.ts as `child.ts <system> [flags]`.
// Prints one `RESULT <json>` line on stdout; a system that cannot run reports why instead.
import { loadavg } from 'node:os';
import type { Histogram } from 'hdr-histogram-js';
import { measureLimits } from './limits.js';
import { openMemoryStreamer } from './memorystreamer.js';
import { openNats } from './nats.js';
import { openRabbitMq } from './rabbitmq.js';
import { openRedis } from './redis.js';
import { stopAll, stopAllOnSignals } from './servers.js';
import { limitSettings, RESULT_PREFIX, SYSTEM_NAMES, SYSTEMS, type SystemKey, settings } from './settings.js';
import type { Outcome, Percentiles } from './table.js';
import { measure, type System } from './workload.js';

const OPENERS: Record<Exclude<SystemKey, 'limits'>, () => Promise<System>> = {
  memorystreamer: openMemoryStreamer,
  nats: openNats,
  redis: openRedis,
  rabbitmq: openRabbitMq,
};

function percentilesOf(histogram: Histogram): Percentiles {
  return {
    p50: histogram.getValueAtPercentile(50),
    p99: histogram.getValueAtPercentile(99),
    p999: histogram.getValueAtPercentile(99.9),
    max: histogram.maxValue,
  };
}

async function run(key: SystemKey): Promise<Outcome> {
  const load = Number(loadavg()[0]!.toFixed(2));
  if (key === 'limits') {
    const limits = await measureLimits(limitSettings);
    return {
      kind: 'limits',
      load,
      echoMsgPerSec: limits.echoMsgPerSec,
      pingPong: percentilesOf(limits.pingPong),
      pingPongCount: limits.pingPongCount,
      echoFixedRate: percentilesOf(limits.echoFixedRate),
      writingEchoFixedRate: percentilesOf(limits.writingEchoFixedRate),
      fsync: percentilesOf(limits.fsync),
      fsyncCount: limits.fsyncCount,
    };
  }
  let system: System;
  try {
    system = await OPENERS[key]();
  } catch (error) {
    // Could not start or connect: the row says so; no figures.
    return { kind: 'unavailable', key, name: SYSTEM_NAMES[key], reason: describe(error) };
  }
  const figures = await measure(system, settings);
  return {
    kind: 'system',
    load,
    key,
    name: system.name,
    version: system.version,
    ackMeans: system.ackMeans,
    produceMsgPerSec: figures.produceMsgPerSec,
    replayMsgPerSec: figures.replayMsgPerSec,
    serverCores: figures.serverCores,
    latencyMessages: figures.latencyMessages,
    endToEnd: percentilesOf(figures.endToEnd),
    ack: percentilesOf(figures.ack),
  };
}

function describe(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ').slice(0, 300);
}

const key = process.argv[2] as SystemKey;
if (!SYSTEMS.includes(key)) throw new Error(`usage: child.ts <${SYSTEMS.join('|')}> [flags]`);
stopAllOnSignals();
// A failure inside a client's background loop must still stop the servers this process started.
process.on('uncaughtException', (error) => {
  process.stderr.write(`${key}: ${error.stack ?? error.message}\n`);
  const failed: Outcome = {
    kind: 'unavailable',
    key,
    name: SYSTEM_NAMES[key],
    reason: `failed: ${describe(error)}`,
  };
  void stopAll().finally(() => {
    process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(failed)}\n`);
    process.exit(1);
  });
});
let outcome: Outcome;
try {
  outcome = await run(key);
} catch (error) {
  process.stderr.write(`${key}: ${error instanceof Error ? (error.stack ?? error.message) : error}\n`);
  outcome = { kind: 'unavailable', key, name: SYSTEM_NAMES[key], reason: `failed: ${describe(error)}` };
} finally {
  await stopAll();
}
process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(outcome)}\n`);
// Client libraries may keep timers or sockets alive; the result is out, so end now.
process.exit(0);
