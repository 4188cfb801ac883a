// Over a socket, a producer builds later batches in the buffers of batches already answered
// (fresh memory costs a page fault per 4 KiB page on first touch): the buffers are reused, and
// every message reads back as sent. In process the broker keeps the very buffer it was given, so
// nothing is reused there. A real broker on TCP; the test's transport only watches the batches go.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Producer, type TopicMetadataSource } from '../../src/client/producer.js';
import { TcpTransport } from '../../src/client/tcp-transport.js';
import type { Transport } from '../../src/client/transport.js';
import { Broker } from '../../src/embedded/broker.js';
import { BatchBufferPool } from '../../src/protocol/batch-buffer-pool.js';
import { RecordBatchBuilder } from '../../src/protocol/record-batch.js';
import { useTempDir } from '../harness/temp-dir.js';

const scratch = useTempDir('ms-buffer-reuse-');
let broker: Broker;
let tcp: TcpTransport;
beforeEach(async () => {
  broker = await Broker.start({ dataDir: scratch.path, port: 0 });
  tcp = new TcpTransport({ brokers: [{ host: '127.0.0.1', port: broker.address!.port }] });
});
afterEach(async () => {
  await tcp.close();
  await broker.stop();
});

/** `inner`, recording the memory (ArrayBuffer) of every produce batch it sends. */
function watching(inner: Transport, releases: boolean): { transport: Transport; memory: ArrayBufferLike[] } {
  const memory: ArrayBufferLike[] = [];
  return {
    memory,
    transport: {
      releasesRequestBuffers: releases,
      request: (name, request, options) => {
        if (name === 'produce') memory.push((request as { batch: Buffer }).batch.buffer);
        return inner.request(name, request, options);
      },
      subscribe: (request, handlers, options) => inner.subscribe(request, handlers, options),
      close: () => inner.close(),
      maxRequestPayloadBytes: (name) => inner.maxRequestPayloadBytes?.(name),
    },
  };
}

const metadata: TopicMetadataSource = {
  partitionCount: async () => 1,
  cachedPartitionCount: () => 1,
  forget: () => undefined,
};

/** 20 sendMany calls of 1,000 distinct 100-byte values, 4 in flight; returns the values sent. */
async function produce(producer: Producer, topic: string): Promise<string[]> {
  const sent: string[] = [];
  const window: Promise<unknown>[] = [];
  for (let call = 0; call < 20; call++) {
    const values = Array.from({ length: 1000 }, (_, i) =>
      `${call}-${i}-`.padEnd(100, String.fromCharCode(97 + (call % 26))),
    );
    sent.push(...values);
    window.push(producer.sendMany(values.map((value) => ({ topic, partition: 0, value }))));
    if (window.length === 4) await window.shift();
  }
  await Promise.all(window);
  await producer.close();
  return sent;
}

async function readBack(topic: string, count: number): Promise<string[]> {
  const client = broker.connect();
  const consumer = client.consumer({ topics: [topic], from: 'earliest' });
  const values: string[] = [];
  for await (const message of consumer) {
    values.push(message.value!.toString());
    if (values.length === count) break;
  }
  await client.close();
  return values;
}

describe('batch buffers of answered requests', () => {
  it('are built into again over a socket, and every message reads back as sent', async () => {
    await broker.connect().admin.createTopic({ name: 'reuse', partitions: 1 });
    const { transport, memory } = watching(tcp, true);
    const sent = await produce(new Producer(transport, metadata, { batchBytes: 64 * 1024 }), 'reuse');
    expect(memory.length).toBeGreaterThanOrEqual(20);
    // Most batches went out in memory an earlier batch had used.
    expect(new Set(memory).size).toBeLessThan(memory.length / 2);
    expect(await readBack('reuse', sent.length)).toEqual(sent);
  });

  it('are not reused where the transport does not release them', async () => {
    await broker.connect().admin.createTopic({ name: 'kept', partitions: 1 });
    const { transport, memory } = watching(tcp, false);
    const sent = await produce(new Producer(transport, metadata, { batchBytes: 64 * 1024 }), 'kept');
    expect(new Set(memory).size).toBe(memory.length);
    expect(await readBack('kept', sent.length)).toEqual(sent);
  });
});

describe('BatchBufferPool', () => {
  it('hands a builder the buffer of a batch given back, and keeps only whole large ones, a few at most', () => {
    const pool = new BatchBufferPool(2);
    const builder = new RecordBatchBuilder(64 * 1024, pool);
    const value = Buffer.alloc(100, 1);
    const fill = () => {
      while (builder.sizeInBytes < 40 * 1024) builder.append({ value, timestamp: 1 });
      return builder.finish();
    };
    const first = fill();
    pool.give(first);
    expect(pool.size).toBe(1);
    const second = fill();
    expect(second.buffer).toBe(first.buffer);
    expect(pool.size).toBe(0);
    // A small batch (copied out of the builder's buffer) or a slice of a shared buffer is not kept.
    pool.give(Buffer.from('tiny'));
    pool.give(Buffer.alloc(128 * 1024).subarray(16));
    expect(pool.size).toBe(0);
    pool.give(Buffer.alloc(64 * 1024));
    pool.give(Buffer.alloc(64 * 1024));
    pool.give(Buffer.alloc(64 * 1024));
    expect(pool.size).toBe(2);
    // Too small for what the builder needs: left in the pool.
    expect(pool.take(1024 * 1024)).toBeNull();
    expect(pool.size).toBe(2);
  });
});
