// The bare limits of this machine, measured in the same run as the systems:
//  - Node TCP loopback echo of 100-byte messages sent in large writes (what one connection can
//    move through a Node process at all), against bench/lib/echo-server.ts in a child process;
//  - ping-pong round trip of one 100-byte message at a time (the floor for any request/response);
//  - the fixed-rate schedule of the systems' latency runs (the same pacer, rate and warm-up)
//    through the bare echo, and through an echo that appends what it received to a file before
//    echoing it (on the thread pool: a reference for a server that delivers a message only once
//    it is written), both from the intended send time as the systems' end-to-end figures are;
//  - write + fdatasync of 4 KiB (the floor for a per-message durable ack on this disk).
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Histogram } from 'hdr-histogram-js';
import { echoFixedRate } from '../lib/fixed-rate.js';
import { rawFsyncLatency } from '../lib/fsync.js';
import { latencyHistogram, progress, rate } from '../lib/report.js';
import { connectEcho, echoRoundTrips, startEchoServer } from '../lib/round-trip.js';
import { tempDir, track } from './servers.js';
import { MESSAGE_BYTES, type Settings, scheduleOf } from './workload.js';

export interface Limits {
  echoMsgPerSec: number;
  pingPong: Histogram;
  pingPongCount: number;
  /** The fixed-rate schedule through the bare echo, from each message's intended send time. */
  echoFixedRate: Histogram;
  /** The same through the echo that writes before echoing. */
  writingEchoFixedRate: Histogram;
  fsync: Histogram;
  fsyncCount: number;
}

export interface LimitSettings extends Settings {
  messages: number;
  roundTrips: number;
  fsyncSeconds: number;
}

/** Streams `messages` 100-byte messages through the echo in 1,000-message writes, 8 MB in flight at most. */
async function echoThroughput(port: number, messages: number): Promise<number> {
  const socket = await connectEcho(port);
  const write = Buffer.alloc(1000 * MESSAGE_BYTES, 0x63);
  const total = messages * MESSAGE_BYTES;
  const window = 8 * 1024 * 1024;
  let received = 0;
  let wake: (() => void) | null = null;
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    wake?.();
  });
  const started = performance.now();
  let sent = 0;
  while (received < total) {
    if (sent < total && sent - received < window) {
      const n = Math.min(write.length, total - sent);
      if (!socket.write(n === write.length ? write : write.subarray(0, n)))
        await new Promise((resolve) => socket.once('drain', resolve));
      sent += n;
    } else {
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = null;
    }
  }
  const ms = performance.now() - started;
  socket.destroy();
  return rate(messages, ms);
}

/** The systems' latency schedule through the echo on `port`, on a connection of its own. */
async function scheduleThroughEcho(port: number, settings: Settings, histogram: Histogram): Promise<void> {
  const socket = await connectEcho(port);
  try {
    await echoFixedRate(socket, scheduleOf(settings), histogram);
  } finally {
    socket.destroy();
  }
}

export async function measureLimits(settings: LimitSettings): Promise<Limits> {
  const echo = await startEchoServer();
  const tracked = track({ name: 'echo server', stop: () => echo.stop() });
  let echoMsgPerSec: number;
  const pingPong = latencyHistogram();
  const echoLatency = latencyHistogram();
  const writingEchoLatency = latencyHistogram();
  try {
    progress(`limits: TCP echo of ${settings.messages} messages`);
    echoMsgPerSec = await echoThroughput(echo.port, settings.messages);
    progress(`limits: ping-pong, ${settings.roundTrips} round trips`);
    const socket = await connectEcho(echo.port);
    await echoRoundTrips(socket, Math.min(2000, settings.roundTrips), null, MESSAGE_BYTES);
    await echoRoundTrips(socket, settings.roundTrips, (us) => pingPong.recordValue(us), MESSAGE_BYTES);
    socket.destroy();
    progress(`limits: echo at ${settings.rate} msg/s for ${settings.seconds} s`);
    await scheduleThroughEcho(echo.port, settings, echoLatency);
  } finally {
    await tracked.stop();
  }
  const writeDir = await tempDir('writing-echo');
  const writing = await startEchoServer(join(writeDir, 'echo.log'));
  const trackedWriting = track({
    name: 'writing echo server',
    stop: async () => {
      await writing.stop();
      await rm(writeDir, { recursive: true, force: true });
    },
  });
  try {
    progress(`limits: writing echo at ${settings.rate} msg/s for ${settings.seconds} s`);
    await scheduleThroughEcho(writing.port, settings, writingEchoLatency);
  } finally {
    await trackedWriting.stop();
  }
  progress(`limits: write + fdatasync 4 KiB for ${settings.fsyncSeconds} s`);
  const dir = await tempDir('fsync');
  const files = track({
    name: 'fsync dir',
    stop: () => rm(dir, { recursive: true, force: true }),
  });
  try {
    const { histogram, count } = await rawFsyncLatency(
      join(dir, 'fsync.bin'),
      Buffer.alloc(4096, 0x66),
      settings.fsyncSeconds,
    );
    return {
      echoMsgPerSec,
      pingPong,
      pingPongCount: settings.roundTrips,
      echoFixedRate: echoLatency,
      writingEchoFixedRate: writingEchoLatency,
      fsync: histogram,
      fsyncCount: count,
    };
  } finally {
    await files.stop();
  }
}
