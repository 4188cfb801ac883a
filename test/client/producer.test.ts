// The producer against a real broker (over TCP, and in process): messages larger than a request can
// carry fail alone with MESSAGE_TOO_LARGE and leave the connection up; batches are split before
// they outgrow the broker's limits; receipts print their offset; a broker bug (INTERNAL_ERROR) is
// not retried.
import { createServer, type Server } from 'node:net';
import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '../../src/client/client.js';
import { connect } from '../../src/client/connect.js';
import { Broker } from '../../src/embedded/broker.js';
import { BinaryWriter } from '../../src/protocol/codec/binary-writer.js';
import { encodeErrorPayload, handshakeCommand } from '../../src/protocol/commands/control.js';
import type { DescribeTopicResponse } from '../../src/protocol/commands/data-types.js';
import { COMMANDS } from '../../src/protocol/commands/registry.js';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import { FrameDecoder } from '../../src/protocol/frame-decoder.js';
import { encodeFrame, FrameFlags } from '../../src/protocol/frame-header.js';
import { Opcode } from '../../src/protocol/opcodes.js';
import { useTempDir } from '../harness/temp-dir.js';

const MiB = 1024 * 1024;
let dataDir: string;
let broker: Broker;
let brokerAddress: string;

const scratch = useTempDir('ms-producer-', 'all');
beforeAll(async () => {
  dataDir = scratch.path;
  // The default frame limit (server.max_payload_bytes, 8 MiB), which the client learns in the
  // handshake; the topics below accept messages larger than that.
  broker = await Broker.start({ dataDir, port: 0 });
  brokerAddress = `127.0.0.1:${broker.address!.port}`;
  const admin = broker.connect();
  await admin.admin.createTopic({ name: 'big', partitions: 1, config: { maxMessageBytes: 32 * MiB } });
  await admin.admin.createTopic({ name: 'small', partitions: 1 });
  await admin.close();
});
afterAll(async () => {
  await broker.stop();
});

const clients: Client[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) await client.close();
});

async function tcpClient(): Promise<Client> {
  const client = await connect({ brokers: brokerAddress });
  clients.push(client);
  return client;
}

describe('producer: message and batch sizes', () => {
  it('fails a message over the frame limit alone with MESSAGE_TOO_LARGE; the connection stays up', async () => {
    const client = await tcpClient();
    const producer = client.producer();
    const subscription = client.consumer({ topics: ['big'], from: 'latest' });
    await subscription.start();
    const before = producer.send({ topic: 'big', value: 'before' });
    const huge = producer.send({ topic: 'big', value: Buffer.alloc(9 * MiB, 1) });
    const after = producer.send({ topic: 'big', value: 'after' });
    await expect(huge).rejects.toMatchObject({
      code: ErrorCode.MESSAGE_TOO_LARGE,
      retriable: false,
      message: expect.stringMatching(/at most \d+ .*server\.max_payload_bytes.*not sent/),
    });
    const [first, last] = await Promise.all([before, after]);
    expect(last.offset).toBe(first.offset + 1n);
    // The subscription opened before is still served on the same connection.
    const seen: string[] = [];
    while (seen.length < 2) {
      const message = await subscription.next();
      if (message !== null) seen.push(message.value!.toString());
    }
    expect(seen).toEqual(['before', 'after']);
    await subscription.close();
  });

  it('fails a sendMany whole, with nothing sent, when one of its messages would be refused', async () => {
    const admin = broker.connect();
    clients.push(admin);
    await admin.admin.createTopic({
      name: 'all-or-nothing',
      partitions: 2,
      config: { maxMessageBytes: 32 * MiB },
    });
    const client = await tcpClient();
    const producer = client.producer();
    const ok = (value: string) => ({ topic: 'all-or-nothing', partition: 0, value });
    const refusals: Array<[string, Parameters<typeof producer.send>[0]]> = [
      ['INVALID_STREAM_KEY', { topic: 'all-or-nothing', partition: 0, value: 'v', expectedVersion: 0 }],
      ['UNKNOWN_PARTITION', { topic: 'all-or-nothing', partition: 2, value: 'v' }],
      ['MESSAGE_TOO_LARGE', { topic: 'all-or-nothing', partition: 0, value: Buffer.alloc(9 * MiB, 1) }],
    ];
    for (const [code, bad] of refusals) {
      await expect(producer.sendMany([ok('a'), ok('b'), bad, ok('d')])).rejects.toMatchObject({
        code: ErrorCode[code as keyof typeof ErrorCode],
      });
    }
    // Nothing of those calls reached the log: the next message is the partition's first.
    expect((await producer.send(ok('after'))).offset).toBe(0n);
  });

  it('splits a batch that would outgrow the frame limit (each message fits alone)', async () => {
    const client = await tcpClient();
    const producer = client.producer({ batchBytes: 64 * MiB });
    const values = [3, 3, 3].map((mib, i) => Buffer.alloc(mib * MiB, i));
    const receipts = await producer.sendMany(values.map((value) => ({ topic: 'big', value })));
    expect(receipts.map((r) => r.offset - receipts[0]!.offset)).toEqual([0n, 1n, 2n]);
  });

  it('starts a new batch instead of taking one past batchBytes (the topic limit applies per batch)', async () => {
    // In process: no frame limit, only the topic's maxMessageBytes (1 MiB by default) on whole
    // batches. A 900 KiB message after 500 KiB of small ones must not make a 1.4 MiB batch.
    const client = broker.connect();
    clients.push(client);
    const producer = client.producer({ batchBytes: 512 * 1024 });
    const small = Array.from({ length: 500 }, () => ({ topic: 'small', value: Buffer.alloc(1000, 7) }));
    const receipts = await producer.sendMany([...small, { topic: 'small', value: Buffer.alloc(900 * 1024) }]);
    expect(receipts).toHaveLength(501);
    await expect(producer.send({ topic: 'small', value: Buffer.alloc(2 * MiB) })).rejects.toMatchObject({
      code: ErrorCode.MESSAGE_TOO_LARGE,
    });
  });

  it("keeps batches within the topic's maxMessageBytes even when batchBytes is larger", async () => {
    // 'small' takes batches up to 1 MiB; 3 MB of small messages with batchBytes 4 MiB would make one
    // batch the broker refuses (MESSAGE_TOO_LARGE for all of them).
    for (const client of [await tcpClient(), broker.connect()]) {
      clients.push(client);
      const producer = client.producer({ batchBytes: 4 * MiB });
      const receipts = await producer.sendMany(
        Array.from({ length: 3000 }, () => ({ topic: 'small', value: Buffer.alloc(1000, 3) })),
      );
      expect(receipts).toHaveLength(3000);
    }
  });

  it('refuses other requests over the limit alone with REQUEST_TOO_LARGE', async () => {
    const client = await tcpClient();
    // A control request (64 KiB limit by default): a topic name that makes the payload too large.
    await expect(client.admin.describeTopic('t'.repeat(65_535))).rejects.toMatchObject({
      code: ErrorCode.REQUEST_TOO_LARGE,
      message: expect.stringMatching(/describeTopic: \d+ bytes, the broker's limit is 65536/),
    });
    // A stream read with a key over the data-frame limit.
    const stream = client.consumer({ stream: { topic: 'big', key: Buffer.alloc(9 * MiB, 1) } });
    await expect(stream.next()).rejects.toMatchObject({ code: ErrorCode.REQUEST_TOO_LARGE });
    await stream.close();
    expect((await client.admin.listTopics()).map((t) => t.name)).toContain('big');
  });
});

describe('producer receipts', () => {
  it('show their offset when printed', async () => {
    const client = await tcpClient();
    const receipt = await client.producer().send({ topic: 'small', key: 'k', value: 'v' });
    const printed = inspect(receipt);
    expect(printed).toContain(`offset: ${receipt.offset}n`);
    expect(printed.replace(/\s+/g, ' ')).toMatch(
      /\{ topic: 'small', partition: 0, offset: \d+n, sequence: \d+, durability: '\w+' \}/,
    );
  });
});

/**
 * A broker stand-in that answers every produce with one error (INTERNAL_ERROR unless given) and counts
 * them (the real broker answers INTERNAL_ERROR only for a bug, and loses producer ids only after
 * expiry, which a test cannot provoke at will). Metadata comes from the real one.
 */
async function brokerWithABug(
  topic: DescribeTopicResponse,
  produceError: { code: number; text: string } = { code: ErrorCode.INTERNAL_ERROR, text: 'a broker bug' },
): Promise<{ port: number; produces: () => number; close: () => Promise<void> }> {
  let produces = 0;
  const server: Server = createServer((socket) => {
    const decoder = new FrameDecoder({ maxPayloadBytes: 8 * MiB, maxControlPayloadBytes: 64 * 1024 });
    const answer = (opcode: number, correlationId: number, payload: Buffer, errorCode = 0) =>
      socket.write(
        encodeFrame(
          {
            opcode,
            correlationId,
            flags: FrameFlags.RESPONSE | (errorCode === 0 ? 0 : FrameFlags.ERROR),
            errorCode,
          },
          payload,
        ),
      );
    socket.on('data', (chunk: Buffer) => {
      decoder.push(chunk);
      for (let f = decoder.next(); f !== null; f = decoder.next()) {
        const { opcode, correlationId } = f.header;
        const writer = new BinaryWriter(64);
        if (opcode === Opcode.HANDSHAKE) {
          handshakeCommand.encodeResponse(writer, {
            version: 1,
            features: 0,
            serverId: 'buggy',
            maxPayloadBytes: 8 * MiB,
            maxControlPayloadBytes: 64 * 1024,
          });
        } else if (opcode === Opcode.DESCRIBE_TOPIC) {
          COMMANDS.describeTopic.encodeResponse(writer, topic);
        } else if (opcode === Opcode.INIT_PRODUCER_ID) {
          COMMANDS.initProducerId.encodeResponse(writer, { producerId: 1n, producerEpoch: 0 });
        } else if (opcode === Opcode.METADATA) {
          // As a broker of an earlier protocol does: the client then sends everything to it.
          answer(opcode, correlationId, encodeErrorPayload('0x106'), ErrorCode.UNKNOWN_OPCODE);
          continue;
        } else if (opcode === Opcode.PRODUCE) {
          produces++;
          answer(opcode, correlationId, encodeErrorPayload(produceError.text), produceError.code);
          continue;
        }
        answer(opcode, correlationId, writer.finish());
      }
    });
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address !== null ? address.port : 0,
    produces: () => produces,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('producer retries', () => {
  it('does not retry INTERNAL_ERROR (a broker bug answers the same way every time)', async () => {
    const real = broker.connect();
    clients.push(real);
    const buggy = await brokerWithABug(await real.admin.describeTopic('small'));
    const client = await connect({ brokers: `127.0.0.1:${buggy.port}` });
    try {
      const producer = client.producer({ retries: 5 });
      await expect(producer.send({ topic: 'small', value: 'x' })).rejects.toMatchObject({
        code: ErrorCode.INTERNAL_ERROR,
        retriable: false,
      });
      expect(buggy.produces()).toBe(1);
    } finally {
      await client.close();
      await buggy.close();
    }
  });

  it('moves a batch to a fresh producer id at most five times when the broker keeps losing its sequence', async () => {
    const real = broker.connect();
    clients.push(real);
    const forgetful = await brokerWithABug(await real.admin.describeTopic('small'), {
      code: ErrorCode.UNKNOWN_PRODUCER_ID,
      text: 'producer id is not known',
    });
    const client = await connect({ brokers: `127.0.0.1:${forgetful.port}` });
    try {
      // Default options: no count of retries, only the delivery timeout; the cap ends it at once.
      const producer = client.producer();
      const started = performance.now();
      await expect(producer.send({ topic: 'small', value: 'x' })).rejects.toMatchObject({
        code: ErrorCode.UNKNOWN_PRODUCER_ID,
      });
      expect(forgetful.produces()).toBe(6);
      expect(performance.now() - started).toBeLessThan(5_000);
    } finally {
      await client.close();
      await forgetful.close();
    }
  });
});
