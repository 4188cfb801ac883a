// Regression tests for the attacks of issue 11 (items 4-7), each against a real broker on port 0:
// the attack runs on bare sockets that never read, a well-behaved producer and consumer work beside
// it, and after the attackers leave the memory is released and a new client produces at once.
// Memory is checked on the broker's held-bytes counter and on the process's ArrayBuffer memory
// (where socket data, reads and responses live).
import { afterEach, describe, expect, it } from 'vitest';
import type { ServerLimits } from '../../../src/broker/server/server-limits.js';
import type { Client } from '../../../src/client/client.js';
import { connect } from '../../../src/client/connect.js';
import type { Broker } from '../../../src/embedded/broker.js';
import type { BrokerLogger } from '../../../src/metrics/logger.js';
import { ErrorCode } from '../../../src/protocol/error-codes.js';
import { FrameFlags } from '../../../src/protocol/frame-header.js';
import { Opcode } from '../../../src/protocol/opcodes.js';
import { startEmbeddedBroker } from '../../harness/embedded.js';
import { until } from '../../harness/until.js';
import {
  type Attack,
  fetchFrame,
  halfSentFrames,
  handshakeFrame,
  hugeCreditSubscriptions,
  partialProduceFrame,
  pipelinedFetches,
  subscribeFrame,
} from './helpers/attacks.js';
import { RawClient } from './helpers/raw-client.js';

const MiB = 1024 * 1024;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface LogLine {
  message: string;
  fields: Record<string, unknown>;
}

async function startBroker(
  limits: Partial<ServerLimits>,
): Promise<{ broker: Broker; port: number; log: LogLine[] }> {
  const log: LogLine[] = [];
  const record = (fields: Record<string, unknown>, message: string) => log.push({ message, fields });
  const logger: BrokerLogger = { info() {}, debug() {}, warn: record, error: record };
  const broker = await startEmbeddedBroker({ port: 0, limits, logger, stopDeadlineMs: 500 });
  return { broker, port: broker.address!.port, log };
}

async function client(port: number): Promise<Client> {
  const c = await connect({ brokers: `127.0.0.1:${port}` });
  cleanups.push(() => c.close().catch(() => undefined));
  return c;
}

async function fill(c: Client, topic: string, bytes: number): Promise<void> {
  await c.admin.createTopic({ name: topic, partitions: 1 });
  const producer = c.producer();
  const value = Buffer.alloc(60 * 1024, 7);
  for (let sent = 0; sent < bytes; sent += 8 * value.length)
    await Promise.all(Array.from({ length: 8 }, () => producer.send({ topic, value })));
}

/** One message per batch (sends awaited one by one), so batches stay small. */
async function fillSmallBatches(c: Client, topic: string, bytes: number): Promise<void> {
  await c.admin.createTopic({ name: topic, partitions: 1 });
  const producer = c.producer();
  const value = Buffer.alloc(32 * 1024, 7);
  for (let sent = 0; sent < bytes; sent += value.length) await producer.send({ topic, value });
}

/** Samples ArrayBuffer memory and the broker's held bytes while `body` runs; returns the peaks over the start. */
async function peaksDuring(
  broker: Broker,
  body: () => Promise<void>,
): Promise<{ arrayBuffers: number; held: number }> {
  const base = process.memoryUsage().arrayBuffers;
  const peaks = { arrayBuffers: 0, held: 0 };
  const timer = setInterval(() => {
    peaks.arrayBuffers = Math.max(peaks.arrayBuffers, process.memoryUsage().arrayBuffers - base);
    peaks.held = Math.max(peaks.held, broker.server!.heldBytes);
  }, 10);
  try {
    await body();
  } finally {
    clearInterval(timer);
  }
  return peaks;
}

/** A producer and a consumer that must keep working beside an attack: `count` messages through. */
async function honestTraffic(port: number, topic: string, count: number): Promise<void> {
  const c = await client(port);
  const producer = c.producer();
  const consumer = c.consumer({ topics: [topic], from: 'earliest' });
  const received = (async () => {
    let seen = 0;
    for await (const _ of consumer) if (++seen === count) break;
  })();
  for (let i = 0; i < count; i++) await producer.send({ topic, value: Buffer.from(`honest ${i}`) });
  await received;
}

/** After the attack: a new client connects and produces. */
async function newClientProduces(port: number, topic: string): Promise<void> {
  const c = await client(port);
  const receipt = await c.producer().send({ topic, value: Buffer.from('after') });
  expect(receipt.offset).toBeGreaterThanOrEqual(0);
}

function leaveLater(attack: Attack): Attack {
  cleanups.push(async () => attack.leave());
  return attack;
}

describe('hostile clients', () => {
  it('pipelined fetches with a huge maxBytes, never read: reserved and bounded; others keep working', async () => {
    const limits = { connectionBudgetBytes: 4 * MiB, globalBudgetBytes: 24 * MiB, maxFetchBytes: 2 * MiB };
    const { broker, port, log } = await startBroker(limits);
    const setup = await client(port);
    await fill(setup, 'big', 4 * MiB);
    await setup.admin.createTopic({ name: 'calm', partitions: 1 });
    let attack: Attack | undefined;
    const peaks = await peaksDuring(broker, async () => {
      attack = leaveLater(await pipelinedFetches(port, { topic: 'big', connections: 4, requests: 150 }));
      // Each asks for 150 × (up to) 4 GiB; without reservations that is 600 reads of 2 MiB at once.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await honestTraffic(port, 'calm', 20);
    });
    // Budgets plus one read per connection (a woken connection may read one chunk before counting it).
    expect(peaks.held).toBeLessThanOrEqual(limits.globalBudgetBytes + 4 * 64 * 1024);
    expect(peaks.arrayBuffers).toBeLessThan(200 * MiB);
    attack!.leave();
    // Left open: the setup client and the honest one.
    await until(() => broker.server!.connectionCount <= 2, { what: 'the attackers are gone' });
    await until(() => broker.server!.heldBytes < MiB, { what: 'their bytes are released' });
    await newClientProduces(port, 'calm');
    expect(log.filter((l) => l.fields.code === 'INTERNAL_ERROR')).toEqual([]);
  });

  it('clamps maxBytes to the server limit: one fetch answers at most max_fetch_bytes', async () => {
    const { port } = await startBroker({ maxFetchBytes: 256 * 1024 });
    const setup = await client(port);
    await fillSmallBatches(setup, 'big', MiB);
    const raw = await RawClient.open(port);
    cleanups.push(async () => raw.destroy());
    await raw.handshake();
    raw.write(fetchFrame('big', 5));
    const answer = await raw.waitFor((f) => f.header.correlationId === 5);
    expect(answer.header.flags & FrameFlags.ERROR).toBe(0);
    // 16 bytes of offsets, then whole batches within the limit (batches here are ~32 KiB).
    expect(answer.payload.length - 16).toBeGreaterThan(0);
    expect(answer.payload.length - 16).toBeLessThanOrEqual(256 * 1024);
  });

  it('subscriptions declaring 4 GiB of credit: credit clamped, delivery held, all freed when they leave', async () => {
    const limits = {
      connectionBudgetBytes: 4 * MiB,
      globalBudgetBytes: 32 * MiB,
      maxSubscriptionCreditBytes: 2 * MiB,
    };
    const { broker, port } = await startBroker(limits);
    const setup = await client(port);
    await fill(setup, 'big', 16 * MiB);
    await setup.admin.createTopic({ name: 'calm', partitions: 1 });
    let attack: Attack | undefined;
    const peaks = await peaksDuring(broker, async () => {
      attack = leaveLater(
        await hugeCreditSubscriptions(port, { topic: 'big', connections: 8, subscriptionsEach: 4 }),
      );
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await honestTraffic(port, 'calm', 20);
    });
    expect(peaks.held).toBeLessThanOrEqual(limits.globalBudgetBytes + 8 * MiB);
    expect(peaks.arrayBuffers).toBeLessThan(200 * MiB);
    attack!.leave();
    // Left open: the setup client and the honest one.
    await until(() => broker.server!.connectionCount <= 2, { what: 'the attackers are gone' });
    await until(() => broker.server!.heldBytes < MiB, { what: 'their bytes are released' });
    await newClientProduces(port, 'calm');
  });

  it('a subscription never gets more than the server credit limit without granting more', async () => {
    const { port } = await startBroker({ maxSubscriptionCreditBytes: 256 * 1024 });
    const setup = await client(port);
    await fillSmallBatches(setup, 'big', MiB);
    const raw = await RawClient.open(port);
    cleanups.push(async () => raw.destroy());
    await raw.handshake();
    raw.write(subscribeFrame('big', 7));
    await raw.waitFor((f) => f.header.correlationId === 7);
    await raw.waitFor((f) => f.header.opcode === Opcode.PUSH_BATCH);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const pushed = raw.frames
      .filter((f) => f.header.opcode === Opcode.PUSH_BATCH)
      .reduce((sum, f) => sum + f.payload.length - 8, 0);
    expect(pushed).toBeGreaterThan(0);
    expect(pushed).toBeLessThanOrEqual(256 * 1024);
  });

  it('half-sent frames time out (FRAME_TIMEOUT); a producer stalled by them resumes; nothing stays held', async () => {
    const limits = { globalBudgetBytes: 8 * MiB, frameTimeoutMs: 1500 };
    const { broker, port, log } = await startBroker(limits);
    const honest = await client(port);
    await honest.admin.createTopic({ name: 'calm', partitions: 1 });
    const producer = honest.producer();
    await producer.send({ topic: 'calm', value: Buffer.from('before') });
    // Twenty connections each send 1 MiB of a frame declaring 2 MiB: 20 MiB wanted, 8 MiB budget.
    const attackers = await Promise.all(Array.from({ length: 20 }, () => RawClient.open(port)));
    cleanups.push(async () => {
      for (const attacker of attackers) attacker.destroy();
    });
    const partial = Buffer.concat([handshakeFrame(), partialProduceFrame('calm', 2 * MiB, MiB)]);
    for (const attacker of attackers) attacker.write(partial);
    await until(() => broker.server!.heldBytes >= limits.globalBudgetBytes - MiB, {
      what: 'the attack exhausts the global budget',
    });
    // The producer was stalled with the others; it resumes once the half-sent frames time out.
    const sends = Array.from({ length: 20 }, (_, i) =>
      producer.send({ topic: 'calm', value: Buffer.from(`during ${i}`) }),
    );
    await Promise.all(sends);
    for (const attacker of attackers) {
      await attacker.waitFor(
        (f) => (f.header.flags & FrameFlags.ERROR) !== 0 && f.header.errorCode === ErrorCode.FRAME_TIMEOUT,
        10_000,
      );
      await attacker.waitClosed(5000);
    }
    expect(log.filter((l) => l.fields.code === 'FRAME_TIMEOUT').length).toBe(20);
    await until(() => broker.server!.heldBytes < MiB, { what: 'their bytes are released' });
    await newClientProduces(port, 'calm');
  });

  it('under memory pressure, a small producer keeps going and silent half-sent frames are closed early', async () => {
    const limits = { globalBudgetBytes: 8 * MiB, frameTimeoutMs: 600_000 };
    const { broker, port, log } = await startBroker(limits);
    const honest = await client(port);
    await honest.admin.createTopic({ name: 'calm', partitions: 1 });
    const producer = honest.producer();
    await producer.send({ topic: 'calm', value: Buffer.from('before') });
    const attack = leaveLater(
      await halfSentFrames(port, { topic: 'calm', connections: 20, declared: 2 * MiB, sent: MiB }),
    );
    await until(() => broker.server!.heldBytes >= limits.globalBudgetBytes - MiB, {
      what: 'the attack exhausts the global budget',
    });
    // A producer of small messages keeps going beside them.
    for (let i = 0; i < 20; i++) await producer.send({ topic: 'calm', value: Buffer.from(`during ${i}`) });
    // Silent in the middle of a frame while the budget is exhausted: closed well before the timeout.
    await until(() => log.some((l) => l.fields.code === 'FRAME_TIMEOUT'), {
      what: 'a half-sent frame is closed',
    });
    const closed = log.filter((l) => l.fields.code === 'FRAME_TIMEOUT');
    expect(String(closed[0]!.fields.reason)).toMatch(/global memory budget is exhausted/);
    attack.leave();
    await until(() => broker.server!.connectionCount <= 1, { what: 'the attackers are gone' });
    await until(() => broker.server!.heldBytes < MiB, { what: 'their bytes are released' });
    await newClientProduces(port, 'calm');
  });

  it('half-sent frames from clients that never read: bounded by the budget, closed by the frame timeout', async () => {
    const limits = { globalBudgetBytes: 16 * MiB, frameTimeoutMs: 1000 };
    const { broker, port } = await startBroker(limits);
    const setup = await client(port);
    await setup.admin.createTopic({ name: 'calm', partitions: 1 });
    const peaks = await peaksDuring(broker, async () => {
      leaveLater(
        await halfSentFrames(port, {
          topic: 'calm',
          connections: 20,
          declared: 8 * MiB - 1024,
          sent: 4 * MiB,
        }),
      );
      await until(() => broker.server!.connectionCount <= 1, { what: 'the frame timeout closes them' });
    });
    // Reading pauses at the budget (plus one read per connection, and one frame let through to finish
    // under pressure); the declared 8 MiB are never allocated.
    expect(peaks.held).toBeLessThanOrEqual(limits.globalBudgetBytes + 8 * MiB + 20 * 64 * 1024);
    expect(peaks.arrayBuffers).toBeLessThan(100 * MiB);
    await until(() => broker.server!.heldBytes < MiB, { what: 'their bytes are released' });
    await newClientProduces(port, 'calm');
  });

  it('logs the code when it cuts a client over its outbound limit', async () => {
    const { broker, port, log } = await startBroker({ maxOutboundBytes: 256 * 1024 });
    const setup = await client(port);
    await fill(setup, 'big', 2 * MiB);
    leaveLater(await pipelinedFetches(port, { topic: 'big', connections: 1, requests: 20 }));
    await until(() => log.some((l) => l.fields.code === 'CLIENT_NOT_READING'), {
      what: 'a CLIENT_NOT_READING line is logged',
    });
    await until(() => broker.server!.connectionCount <= 1, { what: 'the client is cut' });
    const line = log.find((l) => l.fields.code === 'CLIENT_NOT_READING')!;
    expect(String(line.fields.reason)).toMatch(/outbound limit/);
  });

  it('refuses connections over the per-address limit at once and serves the others', async () => {
    const { broker, port, log } = await startBroker({ maxConnectionsPerAddress: 20 });
    const held = await Promise.all(Array.from({ length: 20 }, () => RawClient.open(port)));
    cleanups.push(async () => {
      for (const c of held) c.destroy();
    });
    for (const c of held) await c.handshake();
    const refused = await Promise.all(Array.from({ length: 30 }, () => RawClient.open(port)));
    for (const c of refused) {
      await c.waitFor((f) => f.header.errorCode === ErrorCode.TOO_MANY_CONNECTIONS);
      await c.waitClosed(2000);
    }
    expect(broker.server!.connectionCount).toBe(20);
    expect(broker.server!.refusedConnections).toBe(30);
    expect(log.some((l) => l.fields.code === 'TOO_MANY_CONNECTIONS')).toBe(true);
    for (const c of held) c.destroy();
    await until(() => broker.server!.connectionCount === 0, { what: 'the held connections are gone' });
    await (await client(port)).admin.createTopic({ name: 'calm', partitions: 1 });
    await newClientProduces(port, 'calm');
  });

  it('defaults: per-address, in-flight and frame-time limits are set', async () => {
    const { broker } = await startBroker({});
    const limits = broker.server!.limits;
    expect(limits.maxConnectionsPerAddress).toBeLessThanOrEqual(1024);
    expect(limits.maxInFlightRequests).toBeLessThanOrEqual(256);
    expect(limits.frameTimeoutMs).toBeLessThanOrEqual(60_000);
  });
});
