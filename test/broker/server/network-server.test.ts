import { crc32c } from '@node-rs/crc32';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { ServerLimits } from '../../../src/broker/server/server-limits.js';
import { connect } from '../../../src/client/connect.js';
import type { Broker } from '../../../src/embedded/broker.js';
import { BinaryWriter } from '../../../src/protocol/codec/binary-writer.js';
import { decodeErrorPayload, encodeCredit } from '../../../src/protocol/commands/control.js';
import { COMMANDS } from '../../../src/protocol/commands/registry.js';
import { ErrorCode } from '../../../src/protocol/error-codes.js';
import { encodeFrame, FrameFlags } from '../../../src/protocol/frame-header.js';
import { Opcode } from '../../../src/protocol/opcodes.js';
import { startEmbeddedBroker } from '../../harness/embedded.js';
import { RawClient } from './helpers/raw-client.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startBroker(limits: Partial<ServerLimits> = {}): Promise<{ broker: Broker; port: number }> {
  const broker = await startEmbeddedBroker({ port: 0, limits, stopDeadlineMs: 500 });
  return { broker, port: broker.address!.port };
}

async function open(port: number, options: { read?: boolean } = {}): Promise<RawClient> {
  const client = await RawClient.open(port, options);
  cleanups.push(async () => client.destroy());
  return client;
}

function isError(code: number) {
  return (f: { header: { flags: number; errorCode: number } }) =>
    (f.header.flags & FrameFlags.ERROR) !== 0 && f.header.errorCode === code;
}

function forgedLength(declared: number): Buffer {
  const frame = encodeFrame({ opcode: Opcode.PRODUCE, correlationId: 1 }, Buffer.alloc(0));
  frame.writeUInt32LE(declared, 16);
  frame.writeUInt32LE(crc32c(frame.subarray(0, 36)), 36);
  return frame;
}

describe('network server', () => {
  it('answers the handshake and pings, and matches responses by correlation id', async () => {
    const { port } = await startBroker();
    const client = await open(port);
    const handshake = await client.handshake();
    expect(handshake.header.flags & FrameFlags.ERROR).toBe(0);
    for (const id of [5, 6, 7]) client.send(Opcode.PING, Buffer.alloc(0), id);
    for (const id of [5, 6, 7])
      await client.waitFor((f) => f.header.correlationId === id && f.header.opcode === Opcode.PING);
  });

  it('closes on bad magic with a BAD_MAGIC error frame', async () => {
    const { port } = await startBroker();
    const client = await open(port);
    client.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    await client.waitFor(isError(ErrorCode.BAD_MAGIC));
    await client.waitClosed();
  });

  it('refuses declared lengths up to 2^32-1 before the handshake without allocating them', async () => {
    const { broker, port } = await startBroker();
    const before = process.memoryUsage().rss;
    const clients = await Promise.all(Array.from({ length: 20 }, () => open(port)));
    for (const client of clients) client.write(forgedLength(0xffffffff));
    for (const client of clients) {
      await client.waitFor(isError(ErrorCode.FRAME_TOO_LARGE));
      await client.waitClosed();
    }
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 1024 * 1024);
    expect(broker.server!.heldBytes).toBe(0);
  });

  it('requires a handshake first and enforces the handshake timeout', async () => {
    const { port } = await startBroker({ handshakeTimeoutMs: 200 });
    const early = await open(port);
    early.send(Opcode.PING);
    await early.waitFor(isError(ErrorCode.HANDSHAKE_REQUIRED));
    await early.waitClosed();
    const silent = await open(port);
    await silent.waitFor(isError(ErrorCode.HANDSHAKE_TIMEOUT), 3000);
    await silent.waitClosed();
    const dribbler = await open(port);
    const frame = encodeFrame({ opcode: Opcode.HANDSHAKE, correlationId: 1 }, Buffer.alloc(8));
    for (let i = 0; i < 3; i++) {
      dribbler.write(frame.subarray(i, i + 1));
      await new Promise((r) => setTimeout(r, 50));
    }
    await dribbler.waitClosed(3000);
  });

  it('rejects unsupported protocol versions', async () => {
    const { port } = await startBroker();
    const client = await open(port);
    const reply = await client.handshake({ min: 7, max: 9 });
    expect(reply.header.errorCode).toBe(ErrorCode.UNSUPPORTED_VERSION);
    expect(decodeErrorPayload(reply.payload)).toMatch(/client speaks 7..9/);
    await client.waitClosed();
  });

  it('answers unknown opcodes, bad payload CRCs and malformed payloads and keeps the connection', async () => {
    const { port } = await startBroker();
    const client = await open(port);
    await client.handshake();
    client.send(0x7777, Buffer.alloc(4), 11);
    await client.waitFor(
      (f) => f.header.correlationId === 11 && f.header.errorCode === ErrorCode.UNKNOWN_OPCODE,
    );
    const corrupt = encodeFrame({ opcode: Opcode.LIST_TOPICS, correlationId: 12 }, Buffer.from('abcd'));
    corrupt[40] = 0x7a;
    client.write(corrupt);
    await client.waitFor(
      (f) => f.header.correlationId === 12 && f.header.errorCode === ErrorCode.BAD_PAYLOAD_CRC,
    );
    client.send(Opcode.CREATE_TOPIC, Buffer.from([0xff, 0xff, 1]), 13);
    await client.waitFor(
      (f) => f.header.correlationId === 13 && f.header.errorCode === ErrorCode.MALFORMED_PAYLOAD,
    );
    client.send(Opcode.CREDIT, encodeCredit(10), 14, 999);
    await client.waitFor(
      (f) => f.header.correlationId === 14 && f.header.errorCode === ErrorCode.UNKNOWN_CHANNEL,
    );
    client.send(Opcode.PING, Buffer.alloc(0), 15);
    await client.waitFor((f) => f.header.correlationId === 15 && f.header.errorCode === 0);
    expect(client.closed).toBe(false);
  });

  it('caps connections per address and in total', async () => {
    const { port } = await startBroker({ maxConnectionsPerAddress: 2 });
    const first = await open(port);
    const second = await open(port);
    await first.handshake();
    await second.handshake();
    const third = await open(port);
    await third.waitFor(isError(ErrorCode.TOO_MANY_CONNECTIONS));
    await third.waitClosed();
    first.destroy();
    await first.waitClosed();
    await new Promise((r) => setTimeout(r, 50));
    const again = await open(port);
    await again.handshake();
  });

  it('closes idle connections', async () => {
    const { port } = await startBroker({ idleTimeoutMs: 200 });
    const client = await open(port);
    await client.handshake();
    await client.waitFor(isError(ErrorCode.IDLE_TIMEOUT), 3000);
    await client.waitClosed();
  });

  it('cuts a subscriber that never reads, and keeps serving others', async () => {
    const { broker, port } = await startBroker({ maxOutboundBytes: 1024 * 1024 });
    const admin = broker.connect();
    await admin.admin.createTopic({ name: 'flood', partitions: 1 });
    const stalled = await open(port, { read: false });
    const writer = new BinaryWriter(64);
    COMMANDS.subscribe.encodeRequest(writer, {
      topic: 'flood',
      partition: 0,
      offset: -2n,
      credit: 0xffffffff,
    });
    stalled.write(encodeFrame({ opcode: Opcode.HANDSHAKE, correlationId: 1 }, handshakePayload()));
    stalled.send(Opcode.SUBSCRIBE, writer.finish(), 2);
    const healthy = await connect({ brokers: `127.0.0.1:${port}` });
    const producer = admin.producer();
    const value = Buffer.alloc(1000, 1);
    for (let round = 0; round < 40 && broker.server!.connectionCount > 1; round++) {
      await Promise.all(Array.from({ length: 200 }, () => producer.send({ topic: 'flood', value })));
      await healthy.admin.listTopics();
    }
    expect(broker.server!.connectionCount).toBe(1);
    expect((await healthy.admin.listTopics()).map((t) => t.name)).toEqual(['flood']);
    await healthy.close();
    await admin.close();
  });

  it('throttles a connection past its memory budget instead of buffering', async () => {
    const { broker, port } = await startBroker({ connectionBudgetBytes: 64 * 1024 });
    const client = await open(port);
    await client.handshake();
    const writer = new BinaryWriter(64);
    COMMANDS.createTopic.encodeRequest(writer, { name: 't', partitions: 1 });
    client.send(Opcode.CREATE_TOPIC, writer.finish(), 2);
    await client.waitFor((f) => f.header.correlationId === 2);
    const fetch = new BinaryWriter(64);
    COMMANDS.fetch.encodeRequest(fetch, {
      topic: 't',
      partition: 0,
      offset: 0n,
      maxBytes: 1024,
      maxWaitMs: 2000,
    });
    const big = encodeFrame({ opcode: Opcode.FETCH, correlationId: 3 }, Buffer.concat([fetch.finish()]));
    // Many long-polling fetches in flight, plus a large undecoded frame, exceed the budget.
    for (let i = 0; i < 50; i++) client.write(big);
    client.write(
      encodeFrame({ opcode: Opcode.PRODUCE, correlationId: 4 }, Buffer.alloc(200 * 1024)).subarray(
        0,
        150 * 1024,
      ),
    );
    await client.waitFor((f) => f.header.opcode === Opcode.THROTTLE, 5000);
    expect(await broker.core.metrics.text()).toMatch(/memorystreamer_throttle_events_total [1-9]/);
  });

  it('sends GOAWAY on shutdown and lets in-flight requests finish', async () => {
    const { broker, port } = await startBroker();
    const client = await open(port);
    await client.handshake();
    const writer = new BinaryWriter(64);
    COMMANDS.createTopic.encodeRequest(writer, { name: 'g', partitions: 1 });
    client.send(Opcode.CREATE_TOPIC, writer.finish(), 2);
    await client.waitFor((f) => f.header.correlationId === 2);
    const fetch = new BinaryWriter(64);
    COMMANDS.fetch.encodeRequest(fetch, {
      topic: 'g',
      partition: 0,
      offset: 0n,
      maxBytes: 1024,
      maxWaitMs: 300,
    });
    client.send(Opcode.FETCH, fetch.finish(), 3);
    await new Promise((r) => setTimeout(r, 50));
    await broker.stop({ deadlineMs: 2000 });
    await client.waitFor((f) => f.header.opcode === Opcode.GOAWAY);
    const answer = await client.waitFor((f) => f.header.correlationId === 3);
    expect(answer.header.errorCode).toBe(0);
    await client.waitClosed();
  });

  it('survives random and mutated frames on live sockets while a healthy client keeps working', async () => {
    const { broker, port } = await startBroker();
    const healthy = await connect({ brokers: `127.0.0.1:${port}` });
    const valid = Buffer.concat([
      encodeFrame({ opcode: Opcode.HANDSHAKE, correlationId: 1 }, handshakePayload()),
      encodeFrame({ opcode: Opcode.LIST_TOPICS, correlationId: 2 }),
      encodeFrame({ opcode: Opcode.PING, correlationId: 3 }),
    ]);
    const budgetMs = process.env.CI === 'true' ? 15_000 : 2000;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ minLength: 1, maxLength: 300 }).map((a) => Buffer.from(a)),
          fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 1, max: 255 })).map(([at, x]) => {
            const m = Buffer.from(valid);
            m[at] = (m[at] ?? 0) ^ x;
            return m;
          }),
        ),
        fc.integer({ min: 1, max: 64 }),
        async (bytes, chunk) => {
          const client = await RawClient.open(port);
          for (let at = 0; at < bytes.length; at += chunk) client.write(bytes.subarray(at, at + chunk));
          await new Promise((r) => setTimeout(r, 5));
          client.destroy();
          for (const frame of client.frames) {
            if (frame.header.flags & FrameFlags.ERROR)
              expect(frame.header.errorCode).not.toBe(ErrorCode.INTERNAL_ERROR);
          }
        },
      ),
      { numRuns: 100_000, interruptAfterTimeLimit: budgetMs, markInterruptAsFailure: false },
    );
    expect(await healthy.admin.listTopics()).toEqual([]);
    await healthy.close();
    await new Promise((r) => setTimeout(r, 100));
    expect(broker.server!.connectionCount).toBe(0);
  });
});

function handshakePayload(): Buffer {
  const writer = new BinaryWriter(32);
  writer.u8(1).u8(1).u32(0).string('raw');
  return writer.finish();
}
