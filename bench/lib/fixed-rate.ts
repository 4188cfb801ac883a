// Fixed-rate latency without coordinated omission: messages are due on a schedule (rate per
// second from `origin`), each carries its intended send time in its first 8 bytes, and latency is
// measured from that intended time, so a stall delays every message due during it. Shared by
// bench/end-to-end.ts and bench/latency-floor.ts (the same pacing loop for the broker and for the
// bare echo it is held against).

import { write } from 'node:fs';
import type { Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import type * as hdr from 'hdr-histogram-js';
import type { Partition } from '../../src/broker/partitions/partition.js';
import type { Client } from '../../src/client/client.js';
import { RecordBatchView } from '../../src/client/record-batch-view.js';
import { RecordBatchBuilder, splitBatches } from '../../src/protocol/record-batch.js';

export interface FixedRate {
  rate: number;
  /** Measured seconds; `warmupSeconds` before them warm up and are not recorded. */
  seconds: number;
  /** Seconds sent before the measured ones and not recorded (default 1). */
  warmupSeconds?: number;
  bytes?: number;
  /**
   * How the sender waits for the next due message:
   *  - `thread` (default): a worker thread sleeps until each due time (Atomics.wait, precise to the
   *    kernel's timer slack, ~50 µs) and wakes this thread's event loop, which is otherwise idle
   *    in epoll like a real service's; costs a few % of a core.
   *  - `spin`: this thread polls the clock every event-loop turn (setImmediate): most exact, but
   *    keeps one of the machine's cores busy the whole run, which on a 2-core machine competes
   *    with the broker, its I/O threads and the consumer for the other one.
   */
  pacing?: Pacing;
  /** Called once, when the first message after the warm-up second is received (broker runs). */
  onWarmedUp?: () => void;
}

export type Pacing = 'thread' | 'spin';

/** Messages of the warm-up, sent first and not recorded. */
export function warmupCount(options: FixedRate): number {
  return Math.round(options.rate * (options.warmupSeconds ?? 1));
}

/** Messages of the whole schedule, the warm-up included. */
export function totalCount(options: FixedRate): number {
  return warmupCount(options) + Math.round(options.rate * options.seconds);
}

/**
 * Runs the send schedule, calling `send(payload)` for each message as it becomes due. The payload's
 * first 8 bytes carry the intended send time (performance.now() ms), bytes 8..12 its index, bytes
 * 12..20 the time it was actually handed to `send` (which lags the intended one by the pacer's
 * wake-up and by any stall of this thread).
 */
export async function paced(options: FixedRate, send: (payload: Buffer) => void): Promise<number> {
  const total = totalCount(options);
  const interval = 1000 / options.rate;
  const ticker = (options.pacing ?? 'thread') === 'thread' ? await startTicker() : null;
  const origin = performance.now();
  let sent = 0;
  const sendDue = (due: number) => {
    while (sent < due) {
      const payload = Buffer.allocUnsafe(options.bytes ?? 100);
      payload.writeDoubleLE(origin + sent * interval, 0);
      payload.writeUInt32LE(sent, 8);
      payload.writeDoubleLE(performance.now(), 12);
      send(payload);
      sent++;
    }
  };
  if (ticker !== null) return ticker(origin, interval, total, sendDue);
  while (sent < total) {
    sendDue(Math.min(total, Math.floor((performance.now() - origin) / interval) + 1));
    await new Promise((resolve) => setImmediate(resolve));
  }
  return total;
}

/**
 * The ticking thread: sleeps until the next message is due, then posts how many are due by now.
 * It reads CLOCK_MONOTONIC (hrtime); `origin` is passed over in that clock.
 */
const TICKER = `
const { parentPort } = require('node:worker_threads');
parentPort.once('message', ({ origin, interval, total }) => {
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  const now = () => Number(process.hrtime.bigint()) / 1e6;
  let posted = 0;
  while (posted < total) {
    const t = now();
    const due = Math.min(total, Math.floor((t - origin) / interval) + 1);
    if (due > posted) {
      parentPort.postMessage(due);
      posted = due;
      continue;
    }
    Atomics.wait(sleeper, 0, 0, origin + posted * interval - t);
  }
});
`;

type Ticker = (
  origin: number,
  interval: number,
  total: number,
  sendDue: (due: number) => void,
) => Promise<number>;

/** Starts the ticking thread (and waits until it runs, so its start-up is not charged to messages). */
async function startTicker(): Promise<Ticker> {
  const worker = new Worker(TICKER, { eval: true });
  await new Promise((resolve, reject) => {
    worker.once('online', resolve);
    worker.once('error', reject);
  });
  return (origin, interval, total, sendDue) =>
    new Promise<number>((resolve, reject) => {
      worker.on('message', (due: number) => {
        sendDue(due);
        if (due >= total) {
          void worker.terminate();
          resolve(total);
        }
      });
      worker.once('error', reject);
      // performance.now() and hrtime differ by a fixed offset within one process.
      const offset = Number(process.hrtime.bigint()) / 1e6 - performance.now();
      worker.postMessage({ origin: origin + offset, interval, total });
    });
}

/**
 * Records one received payload: from its intended send time into `histogram` (no coordinated
 * omission), and from the moment it was handed to send into `fromSend` (the system's own part,
 * without the pacer's lag).
 */
function record(payload: Buffer, at: number, histogram: hdr.Histogram, fromSend?: hdr.Histogram): void {
  const now = performance.now();
  histogram.recordValue(Math.max(1, Math.round((now - payload.readDoubleLE(at)) * 1000)));
  fromSend?.recordValue(Math.max(1, Math.round((now - payload.readDoubleLE(at + 12)) * 1000)));
}

/** Producer → broker → consumer on `topic` (which must exist), one message per send. */
export async function brokerFixedRate(
  client: Client,
  topic: string,
  options: FixedRate,
  histogram: hdr.Histogram,
  fromSend?: hdr.Histogram,
): Promise<void> {
  const warmup = warmupCount(options);
  const total = totalCount(options);
  const consumer = client.consumer({ topics: [topic], from: 'latest' });
  await consumer.start();
  const producer = client.producer({ lingerMs: 0 });
  const received = (async () => {
    let count = 0;
    for await (const message of consumer) {
      if (count === warmup) options.onWarmedUp?.();
      if (count >= warmup) record(message.value!, 0, histogram, fromSend);
      if (++count === total) break;
    }
  })();
  await paced(options, (value) => void producer.send({ topic, value }));
  await received;
  await producer.close();
  await consumer.close();
}

/** The same schedule through a bare Node TCP echo: the floor for two processes on loopback. */
export async function echoFixedRate(
  socket: Socket,
  options: FixedRate,
  histogram: hdr.Histogram,
  fromSend?: hdr.Histogram,
): Promise<void> {
  const bytes = options.bytes ?? 100;
  const warmup = warmupCount(options);
  const total = totalCount(options);
  let pending: Buffer = Buffer.alloc(0);
  let count = 0;
  const done = new Promise<void>((resolve) => {
    const onData = (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let at = 0;
      for (; pending.length - at >= bytes; at += bytes) {
        if (count >= warmup) record(pending, at, histogram, fromSend);
        if (++count === total) {
          socket.off('data', onData);
          resolve();
        }
      }
      pending = pending.subarray(at);
    };
    socket.on('data', onData);
  });
  await paced(options, (payload) => socket.write(payload));
  await done;
}

/**
 * The in-process floor for a hop: each message, as it becomes due, is recorded in a setImmediate
 * callback (what a same-thread handoff to a consumer costs at the least: one event-loop turn).
 */
export async function immediateHopFixedRate(
  options: FixedRate,
  histogram: hdr.Histogram,
  fromSend?: hdr.Histogram,
): Promise<void> {
  let count = 0;
  await paced(options, (payload) =>
    setImmediate(() => {
      if (count++ >= warmupCount(options)) record(payload, 0, histogram, fromSend);
    }),
  );
  await new Promise((resolve) => setImmediate(resolve));
}

/**
 * The in-process floor for making a message durable-as-written: each message, as it becomes due,
 * is appended to a file with one fs.write (libuv's threadpool) and recorded in its callback — the
 * least an embedded append costs before the data may be visible (docs/storage.md, "Visibility").
 */
export async function threadpoolWriteFixedRate(
  options: FixedRate,
  fd: number,
  histogram: hdr.Histogram,
  fromSend?: hdr.Histogram,
): Promise<void> {
  const total = totalCount(options);
  let count = 0;
  let position = 0;
  let failure: Error | null = null;
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  await paced(options, (payload) => {
    const at = position;
    position += payload.length;
    write(fd, payload, 0, payload.length, at, (error) => {
      if (error !== null) failure ??= error;
      if (count >= warmupCount(options)) record(payload, 0, histogram, fromSend);
      if (++count === total) finish();
    });
  });
  await done;
  if (failure !== null) throw failure;
}

/**
 * The least any in-process path must do for a message: write it as a record into a batch of one
 * and seal the batch (the log keeps record batches). Each message, as it becomes due, is encoded
 * and recorded at once: the time is the encoding's wall time on this schedule.
 */
export async function encodeFixedRate(
  options: FixedRate,
  histogram: hdr.Histogram,
  fromSend?: hdr.Histogram,
): Promise<void> {
  const builder = new RecordBatchBuilder(256);
  const warmup = warmupCount(options);
  let count = 0;
  let sealed = 0;
  await paced(options, (payload) => {
    builder.appendValue(payload, Date.now(), Number.MAX_SAFE_INTEGER);
    sealed += builder.finish().length;
    if (count === warmup) options.onWarmedUp?.();
    if (count++ >= warmup) record(payload, 0, histogram, fromSend);
  });
  if (sealed === 0) throw new Error('no batch was sealed');
}

/** The credit window `partitionFixedRate` opens: a consumer's default (`creditBytes`, 4 MiB). */
const SUBSCRIPTION_WINDOW_BYTES = 4 * 1024 * 1024;

/**
 * The broker's own part of the in-process path, without producer, transport or consumer: each
 * message, as it becomes due, is sealed into a batch and handed to the partition's produce
 * (validation, producer and stream bookkeeping, the log's append and its write, publication), and
 * recorded when the partition pushes it to a subscription (the hook a consumer's push hangs on).
 */
export async function partitionFixedRate(
  partition: Partition,
  options: FixedRate,
  histogram: hdr.Histogram,
  fromSend?: hdr.Histogram,
): Promise<void> {
  const warmup = warmupCount(options);
  const total = totalCount(options);
  const builder = new RecordBatchBuilder(256);
  const limits = { maxBatchBytes: 1024 * 1024, maxDecompressedBytes: 1024 * 1024 };
  let count = 0;
  let failure: Error | null = null;
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const onValue = (buffer: Buffer, start: number): void => {
    if (count === warmup) options.onWarmedUp?.();
    if (count >= warmup) record(buffer, start, histogram, fromSend);
    if (++count === total) finish();
  };
  // The window a consumer opens, given back as each push is taken (as a consumer grants credit).
  const subscription = partition.subscribe(
    partition.log.highWatermark,
    SUBSCRIPTION_WINDOW_BYTES,
    (pushed) => {
      let bytes = 0;
      for (const chunk of pushed) {
        bytes += chunk.length;
        // A push read back from the log (a subscription catching up) holds several batches.
        for (const batch of splitBatches(chunk))
          new RecordBatchView('', 0, batch, 0n, limits, null).forEachValue(onValue);
      }
      subscription.grant(bytes);
    },
    (error) => {
      failure ??= error;
      finish();
    },
  );
  // Messages due together (the pacer hands over all that are due at its wake-up) share a batch,
  // sealed at the end of the job as the producer does with `lingerMs: 0`.
  let sealing = false;
  const seal = (): void => {
    sealing = false;
    partition.produce({ batch: builder.finish(), acks: 1 }).catch((error: Error) => {
      failure ??= error;
      finish();
    });
  };
  try {
    await paced(options, (payload) => {
      builder.appendValue(payload, Date.now(), Number.MAX_SAFE_INTEGER);
      if (!sealing) {
        sealing = true;
        queueMicrotask(seal);
      }
    });
    // A message that never arrives fails the run instead of hanging it.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the partition pushed ${count} of ${total} messages`)),
        30_000,
      );
    });
    await Promise.race([done, late]).finally(() => clearTimeout(timer));
  } finally {
    subscription.close();
  }
  if (failure !== null) throw failure;
}
