// Fixed-rate latency without coordinated omission: messages are due on a schedule (rate per
// second from `origin`), each carries its intended send time in its first 8 bytes, and latency is
// measured from that intended time, so a stall delays every message due during it. Shared by
// bench/end-to-end.ts and bench/latency-floor.ts (the same pacing loop for the broker and for the
// bare echo it is held against).
import type { Socket } from 'node:net';
import type * as hdr from 'hdr-histogram-js';
import type { Client } from '../../src/client/client.js';

export interface FixedRate {
  rate: number;
  /** Measured seconds; one more second before them warms up and is not recorded. */
  seconds: number;
  bytes?: number;
}

/** Runs the send schedule, calling `send(payload)` for each message as it becomes due. */
async function paced(options: FixedRate, send: (payload: Buffer) => void): Promise<number> {
  const total = options.rate * (options.seconds + 1);
  const interval = 1000 / options.rate;
  const origin = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor((performance.now() - origin) / interval) + 1);
    while (sent < due) {
      const payload = Buffer.allocUnsafe(options.bytes ?? 100);
      payload.writeDoubleLE(origin + sent * interval, 0);
      send(payload);
      sent++;
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  return total;
}

function record(histogram: hdr.Histogram, intended: number): void {
  histogram.recordValue(Math.max(1, Math.round((performance.now() - intended) * 1000)));
}

/** Producer → broker → consumer on `topic` (which must exist), one message per send. */
export async function brokerFixedRate(
  client: Client,
  topic: string,
  options: FixedRate,
  histogram: hdr.Histogram,
): Promise<void> {
  const warmup = options.rate;
  const total = options.rate * (options.seconds + 1);
  const consumer = client.consumer({ topics: [topic], from: 'latest' });
  await consumer.start();
  const producer = client.producer({ lingerMs: 0 });
  const received = (async () => {
    let count = 0;
    for await (const message of consumer) {
      if (count >= warmup) record(histogram, message.value!.readDoubleLE(0));
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
): Promise<void> {
  const bytes = options.bytes ?? 100;
  const warmup = options.rate;
  const total = options.rate * (options.seconds + 1);
  let pending: Buffer = Buffer.alloc(0);
  let count = 0;
  const done = new Promise<void>((resolve) => {
    const onData = (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let at = 0;
      for (; pending.length - at >= bytes; at += bytes) {
        if (count >= warmup) record(histogram, pending.readDoubleLE(at));
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
