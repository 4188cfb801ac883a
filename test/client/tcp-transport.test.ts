import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from '../../src/client/connect.js';
import { parseBrokerAddress, TcpTransport } from '../../src/client/tcp-transport.js';
import { Broker } from '../../src/embedded/broker.js';
import { BinaryWriter } from '../../src/protocol/codec/binary-writer.js';
import { handshakeCommand } from '../../src/protocol/commands/control.js';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import { FrameDecoder } from '../../src/protocol/frame-decoder.js';
import { encodeFrame, FrameFlags } from '../../src/protocol/frame-header.js';
import { Opcode } from '../../src/protocol/opcodes.js';
import { tempDir } from '../harness/temp-dir.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A server that completes the handshake and then never answers anything. */
async function silentBroker(): Promise<number> {
  const server: Server = createServer((socket) => {
    const decoder = new FrameDecoder({ maxPayloadBytes: 1 << 20, maxControlPayloadBytes: 1 << 16 });
    socket.on('data', (chunk: Buffer) => {
      decoder.push(chunk);
      for (let f = decoder.next(); f !== null; f = decoder.next()) {
        if (f.header.opcode !== Opcode.HANDSHAKE) continue;
        const writer = new BinaryWriter(64);
        handshakeCommand.encodeResponse(writer, {
          version: 1,
          features: 0,
          serverId: 'silent',
          maxPayloadBytes: 1 << 20,
          maxControlPayloadBytes: 1 << 16,
        });
        socket.write(
          encodeFrame(
            { opcode: Opcode.HANDSHAKE, correlationId: f.header.correlationId, flags: FrameFlags.RESPONSE },
            writer.finish(),
          ),
        );
      }
    });
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
  const address = server.address();
  return typeof address === 'object' && address !== null ? address.port : 0;
}

describe('TCP transport', () => {
  it('parses broker addresses and refuses bad ones', () => {
    expect(parseBrokerAddress('memorystreamer://10.0.0.1:7400/')).toEqual({ host: '10.0.0.1', port: 7400 });
    expect(parseBrokerAddress('[::1]:9')).toEqual({ host: '::1', port: 9 });
    expect(() => parseBrokerAddress('localhost')).toThrow(/host:port/);
    expect(() => parseBrokerAddress('h:70000')).toThrow(/1..65535/);
    expect(() => new TcpTransport({ brokers: [] })).toThrow(/at least one broker/);
  });

  it('times out requests the broker never answers', async () => {
    const port = await silentBroker();
    const transport = new TcpTransport({ brokers: [{ host: '127.0.0.1', port }] });
    cleanups.push(() => transport.close());
    const started = Date.now();
    await expect(transport.request('listTopics', {}, { timeoutMs: 200 })).rejects.toMatchObject({
      code: ErrorCode.REQUEST_TIMEOUT,
      retriable: true,
    });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('fails pending requests when the connection drops and reconnects on the next one', async () => {
    const dataDir = await tempDir('ms-transport-');
    let broker = await Broker.start({ dataDir, port: 0 });
    const port = broker.address!.port;
    cleanups.push(async () => {
      await broker.stop();
    });
    const client = await connect({ brokers: `127.0.0.1:${port}`, requestTimeoutMs: 2000 });
    cleanups.push(() => client.close());
    await client.admin.createTopic({ name: 'r', partitions: 1 });
    await broker.stop();
    await expect(client.admin.listTopics()).rejects.toMatchObject({ retriable: true });
    broker = await Broker.start({ dataDir, port });
    expect((await client.admin.listTopics()).map((t) => t.name)).toEqual(['r']);
    await expect(connect({ brokers: '127.0.0.1:1', connectTimeoutMs: 500 })).rejects.toMatchObject({
      code: ErrorCode.BROKER_NOT_AVAILABLE,
    });
  });

  it('retries a produce that failed with a retriable error, and acknowledges it once, in order', async () => {
    const dataDir = await tempDir('ms-transport-');
    let broker = await Broker.start({ dataDir, port: 0 });
    const port = broker.address!.port;
    cleanups.push(async () => {
      await broker.stop();
    });
    const client = await connect({ brokers: `127.0.0.1:${port}`, connectTimeoutMs: 200 });
    cleanups.push(() => client.close());
    await client.admin.createTopic({ name: 'p', partitions: 1 });
    const producer = client.producer({ lingerMs: 0, retries: 8 });
    await producer.send({ topic: 'p', value: 'before' });
    await broker.stop();
    // Sent while no broker listens: the first attempts fail (BROKER_NOT_AVAILABLE, retriable) and
    // back off; the broker returns during the backoff and a retry lands.
    const sending = producer.send({ topic: 'p', value: 'during' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    broker = await Broker.start({ dataDir, port });
    const receipt = await sending;
    expect(receipt.offset).toBe(1n);
    const last = await producer.send({ topic: 'p', value: 'after' });
    expect(last.offset).toBe(2n);
    await producer.close();
    const consumer = client.consumer({ topics: ['p'], from: 'earliest' });
    const values: string[] = [];
    for await (const message of consumer) {
      values.push(message.value!.toString());
      if (values.length === 3) break;
    }
    expect(values).toEqual(['before', 'during', 'after']);
  });

  it('rejects a produce once its retries are used up', async () => {
    const dataDir = await tempDir('ms-transport-');
    const broker = await Broker.start({ dataDir, port: 0 });
    const port = broker.address!.port;
    const client = await connect({ brokers: `127.0.0.1:${port}`, connectTimeoutMs: 200 });
    cleanups.push(() => client.close());
    await client.admin.createTopic({ name: 'p', partitions: 1 });
    const producer = client.producer({ lingerMs: 0, retries: 1 });
    await producer.send({ topic: 'p', value: 'before' });
    await broker.stop();
    await expect(producer.send({ topic: 'p', value: 'lost' })).rejects.toMatchObject({
      code: ErrorCode.BROKER_NOT_AVAILABLE,
    });
  });
});
