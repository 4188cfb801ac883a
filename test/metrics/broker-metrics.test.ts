// The broker metrics that read partition logs' append-write counters (docs/operations.md).
import { describe, expect, it } from 'vitest';
import { BrokerMetrics, type BrokerStateSource } from '../../src/metrics/broker-metrics.js';
import { startEmbeddedBroker } from '../harness/embedded.js';

function source(partitions: ReturnType<BrokerStateSource['partitions']>): BrokerStateSource {
  return {
    partitions: () => partitions,
    groupLag: () => [],
    connections: () => 0,
    heldBytes: () => 0,
    offlineTopics: () => [],
  };
}

const partition = { logStartOffset: 0n, highWatermark: 0n, logEndOffset: 0n, sizeBytes: 0 };

describe('storage append-write metrics', () => {
  it('reports in-line writes, fallbacks and the partitions writing on the thread pool', async () => {
    const metrics = new BrokerMetrics();
    metrics.attach(
      source([
        {
          ...partition,
          topic: 'a',
          partition: 0,
          inlineWrites: 12,
          inlineWriteFallbacks: 2,
          poolWrites: true,
        },
        {
          ...partition,
          topic: 'a',
          partition: 1,
          inlineWrites: 5,
          inlineWriteFallbacks: 0,
          poolWrites: false,
        },
      ]),
    );
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/# TYPE memorystreamer_storage_inline_writes_total counter/);
    expect(text).toMatch(/memorystreamer_storage_inline_writes_total\{topic="a",partition="0"\} 12/);
    expect(text).toMatch(/memorystreamer_storage_inline_writes_total\{topic="a",partition="1"\} 5/);
    expect(text).toMatch(/memorystreamer_storage_inline_write_fallbacks_total\{topic="a",partition="0"\} 2/);
    expect(text).not.toMatch(
      /memorystreamer_storage_inline_write_fallbacks_total\{topic="a",partition="1"\}/,
    );
    expect(text).toMatch(/memorystreamer_storage_pool_write_mode\{topic="a",partition="0"\} 1/);
    expect(text).not.toMatch(/memorystreamer_storage_pool_write_mode\{topic="a",partition="1"\}/);
  });
});

describe('storage append-write metrics of a running broker', () => {
  it('counts in-line writes by default, and reports pool mode with storage.inline_write_max_bytes 0', async () => {
    for (const [storageWrites, inline] of [
      [{}, true],
      [{ inlineWriteMaxBytes: 0 }, false],
    ] as const) {
      const broker = await startEmbeddedBroker({ storageWrites });
      const client = broker.connect();
      await client.admin.createTopic({ name: 'orders' });
      const producer = client.producer();
      for (let i = 0; i < 5; i++) await producer.send({ topic: 'orders', value: `v${i}` });
      const text = await broker.core.metrics.registry.metrics();
      if (inline) {
        expect(text).toMatch(
          /memorystreamer_storage_inline_writes_total\{topic="orders",partition="0"\} [1-9]/,
        );
        expect(text).not.toMatch(/memorystreamer_storage_pool_write_mode\{topic="orders"/);
      } else {
        expect(text).not.toMatch(/memorystreamer_storage_inline_writes_total\{topic="orders"/);
        expect(text).toMatch(/memorystreamer_storage_pool_write_mode\{topic="orders",partition="0"\} 1/);
      }
      await producer.close();
      await client.close();
      await broker.stop();
    }
  });
});
