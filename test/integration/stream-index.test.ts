// Streams through the client over the persisted stream index: reads from a sequence, expected-
// version appends after a restart and after retention deleted a stream's first messages (the
// sequences stay the stream's own), with segments small enough that every stream spans several.
import { describe, expect, it } from 'vitest';
import type { Client } from '../../src/client/client.js';
import { Broker } from '../../src/embedded/broker.js';
import { ErrorCode, valueString } from '../../src/index.js';
import { tempDir } from '../harness/temp-dir.js';

async function readStream(client: Client, key: string, from: number, count: number): Promise<string[]> {
  const consumer = client.consumer({ stream: { topic: 'orders', key }, from });
  const out: string[] = [];
  for await (const message of consumer) {
    out.push(`${message.sequence}:${valueString(message)}`);
    if (out.length === count) break;
  }
  return out;
}

describe('streams over the persisted stream index', () => {
  it('reads from a sequence and appends at an expected version after a restart and after retention', async () => {
    const dataDir = await tempDir('ms-stream-index-');
    let broker = await Broker.start({ dataDir });
    let client = broker.connect();
    try {
      await client.admin.createTopic({
        name: 'orders',
        partitions: 1,
        config: { segmentBytes: 4096, retentionBytes: 8 * 1024 },
      });
      const producer = client.producer();
      for (let i = 0; i < 200; i++) {
        await producer.send({ topic: 'orders', key: `order-${i % 5}`, value: `e${i}` });
      }
      expect(await readStream(client, 'order-3', 10, 3)).toEqual(['10:e53', '11:e58', '12:e63']);
      await client.close();
      await broker.stop();

      broker = await Broker.start({ dataDir });
      client = broker.connect();
      await expect(
        client.producer().send({ topic: 'orders', key: 'order-3', value: 'stale', expectedVersion: 39 }),
      ).rejects.toMatchObject({ code: ErrorCode.STREAM_VERSION_CONFLICT });
      const appended = await client
        .producer()
        .send({ topic: 'orders', key: 'order-3', value: 'after-restart', expectedVersion: 40 });
      expect(appended.sequence).toBe(40);
      expect(await readStream(client, 'order-3', 39, 2)).toEqual(['39:e198', '40:after-restart']);

      // Retention deletes the oldest segments: the stream's first messages are gone, but the
      // sequences of the rest do not move.
      const removed = await broker.core.applyRetention();
      expect(removed).toBeGreaterThan(0);
      const first = (await readStream(client, 'order-3', 0, 1))[0]!;
      const [sequence, value] = first.split(':');
      expect(Number(sequence)).toBeGreaterThan(0);
      expect(value).toBe(`e${Number(sequence) * 5 + 3}`);
      await client.close();
      await broker.stop();

      broker = await Broker.start({ dataDir });
      client = broker.connect();
      expect((await readStream(client, 'order-3', 0, 1))[0]).toBe(first);
      const again = await client
        .producer()
        .send({ topic: 'orders', key: 'order-3', value: 'after-retention', expectedVersion: 41 });
      expect(again.sequence).toBe(41);
      expect(await readStream(client, 'order-3', 40, 2)).toEqual(['40:after-restart', '41:after-retention']);
    } finally {
      await client.close();
      await broker.stop();
    }
  }, 60_000);
});
