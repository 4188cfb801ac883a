// The workload every system gets, measured the same way: 100-byte messages, one producer, one
// consumer, in this order (latency first, on a quiet heap, as bench/end-to-end.ts does):
//  1. fixed-rate run: end-to-end latency (send → consumer receipt) and publish-to-ack latency,
//     both counted from each message's intended send time (no coordinated omission);
//  2. produce at max rate (each system's own pipelining/batching, all acknowledged);
//  3. replay: read everything produced back from the start.
// A system module only adapts its client to `System`; timing and histograms live here.
import type { Histogram } from 'hdr-histogram-js';
import { cpuSeconds } from '../lib/broker-process.js';
import { type FixedRate, type Pacing, paced, totalCount, warmupCount } from '../lib/fixed-rate.js';
import { latencyHistogram, progress, rate } from '../lib/report.js';

export const MESSAGE_BYTES = 100;
export const THROUGHPUT_STREAM = 'bench';
export const LATENCY_STREAM = 'latency';

export interface Settings {
  messages: number;
  rate: number;
  seconds: number;
  /** Leading part of the fixed-rate run that is not recorded (JIT, buffers, connections). */
  warmupSeconds: number;
  /**
   * How the sender waits for each due message (bench/lib/fixed-rate.ts): a poll of the clock every
   * event-loop turn (`spin`, the comparison's default), or a sleeping thread that wakes the loop.
   */
  pacing: Pacing;
}

/** The fixed-rate schedule of `settings`, for bench/lib/fixed-rate.ts. */
export function scheduleOf(settings: Settings): FixedRate {
  return {
    rate: settings.rate,
    seconds: settings.seconds,
    warmupSeconds: settings.warmupSeconds,
    bytes: MESSAGE_BYTES,
    pacing: settings.pacing,
  };
}

/** One system under test, connected and with its streams created. */
export interface System {
  name: string;
  version: string;
  /** What an acknowledgement means there (the durability setting used). */
  ackMeans: string;
  /** The server process, for its CPU time; null when there is none of ours to watch. */
  serverPid: number | null;
  /** Sends `count` copies of `value` to THROUGHPUT_STREAM at max rate; resolves when all are acked. */
  produce(count: number, value: Buffer): Promise<void>;
  /** Reads THROUGHPUT_STREAM from the start until `count` messages arrived; resolves with the count. */
  replay(count: number): Promise<number>;
  /** Starts delivering every message of LATENCY_STREAM (fresh, so from its start) to `onValue`. */
  subscribe(onValue: (value: Buffer) => void): Promise<void>;
  /** Publishes one message to LATENCY_STREAM; resolves on its acknowledgement. */
  publish(value: Buffer): Promise<unknown>;
  /** Closes clients and stops the server. */
  close(): Promise<void>;
}

export interface Figures {
  produceMsgPerSec: number;
  replayMsgPerSec: number;
  /** Server CPU over the produce + replay phases, in cores (CPU seconds per wall second). */
  serverCores: number | null;
  latencyMessages: number;
  endToEnd: Histogram;
  ack: Histogram;
}

function micros(fromMs: number): number {
  return Math.max(1, Math.round((performance.now() - fromMs) * 1000));
}

/**
 * Publishes `rate` messages/s for warmup + `seconds` on the shared pacer. Each payload starts with
 * its intended send time, so the consumer's latency includes any time the message waited behind a
 * stalled sender.
 */
async function fixedRate(
  system: System,
  settings: Settings,
): Promise<Pick<Figures, 'endToEnd' | 'ack' | 'latencyMessages'>> {
  const endToEnd = latencyHistogram();
  const ack = latencyHistogram();
  const schedule = scheduleOf(settings);
  const warmup = warmupCount(schedule);
  const total = totalCount(schedule);
  let received = 0;
  let allReceived: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    allReceived = resolve;
  });
  await system.subscribe((value) => {
    if (received >= warmup) endToEnd.recordValue(micros(value.readDoubleLE(0)));
    if (++received === total) allReceived();
  });
  const acks: Promise<unknown>[] = [];
  await paced(schedule, (value) => {
    // The pacer stamps each payload with its intended send time and its index.
    const intended = value.readDoubleLE(0);
    const record = value.readUInt32LE(8) >= warmup;
    acks.push(
      system.publish(value).then(() => {
        if (record) ack.recordValue(micros(intended));
      }),
    );
  });
  await Promise.all(acks);
  // A lost message would hang the run: give up after a generous grace period instead.
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`consumer got ${received} of ${total} messages`)),
      30_000 + settings.seconds * 1000,
    );
  });
  try {
    await Promise.race([done, timeout]);
  } finally {
    clearTimeout(timer);
  }
  return { endToEnd, ack, latencyMessages: total - warmup };
}

/** Runs the whole workload against an open system and closes it (also on error). */
export async function measure(system: System, settings: Settings): Promise<Figures> {
  try {
    progress(`${system.name}: latency at ${settings.rate} msg/s for ${settings.seconds} s`);
    const latency = await fixedRate(system, settings);
    const cpuBefore = system.serverPid === null ? 0 : await cpuSeconds(system.serverPid);
    const wallBefore = performance.now();
    progress(`${system.name}: produce ${settings.messages} messages`);
    const value = Buffer.alloc(MESSAGE_BYTES, 0x63);
    let started = performance.now();
    await system.produce(settings.messages, value);
    const produceMsgPerSec = rate(settings.messages, performance.now() - started);
    progress(`${system.name}: replay ${settings.messages} messages`);
    started = performance.now();
    const count = await system.replay(settings.messages);
    const replayMsgPerSec = rate(count, performance.now() - started);
    const serverCores =
      system.serverPid === null
        ? null
        : Number(
            (
              ((await cpuSeconds(system.serverPid)) - cpuBefore) /
              ((performance.now() - wallBefore) / 1000)
            ).toFixed(2),
          );
    return { produceMsgPerSec, replayMsgPerSec, serverCores, ...latency };
  } finally {
    progress(`${system.name}: stopping`);
    await system.close();
  }
}
