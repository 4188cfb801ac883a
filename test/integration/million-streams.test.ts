// A topic with a million streams: one message per key, then optimistic appends and stream reads on
// a few of them, and the stream index survives a restart (rebuilt from the log).
import { describe, expect, it } from 'vitest';
import { Broker } from '../../src/embedded/broker.js';
import { ErrorCode, valueString } from '../../src/index.js';
import { tempDir } from '../harness/temp-dir.js';

const STREAMS = 1_000_000;

describe('a million streams', () => {
  it('keeps a version per stream, checks expected versions, and rebuilds after a restart', async () => {
    const dataDir = await tempDir('ms-million-');
    let broker = await Broker.start({ dataDir });
    try {
      let client = broker.connect();
      await client.admin.createTopic({ name: 'accounts', partitions: 2 });
      const producer = client.producer({ batchBytes: 512 * 1024 });
      for (let i = 0; i < STREAMS; i += 10_000) {
        await producer.sendMany(
          Array.from({ length: 10_000 }, (_, j) => ({
            topic: 'accounts',
            key: `acct-${i + j}`,
            value: 'opened',
          })),
        );
      }
      const appended = await producer.send({
        topic: 'accounts',
        key: 'acct-777777',
        value: 'deposit',
        expectedVersion: 1,
      });
      expect(appended.sequence).toBe(1);
      await expect(
        producer.send({ topic: 'accounts', key: 'acct-777777', value: 'stale', expectedVersion: 1 }),
      ).rejects.toMatchObject({
        code: ErrorCode.STREAM_VERSION_CONFLICT,
      });
      await expect(
        producer.send({ topic: 'accounts', key: 'acct-new', value: 'x', expectedVersion: 0 }),
      ).resolves.toMatchObject({ sequence: 0 });
      await client.close();
      await broker.stop();

      broker = await Broker.start({ dataDir });
      client = broker.connect();
      const after = await client
        .producer()
        .send({ topic: 'accounts', key: `acct-${STREAMS - 1}`, value: 'closed', expectedVersion: 1 });
      expect(after.sequence).toBe(1);
      const stream = client.consumer({ stream: { topic: 'accounts', key: 'acct-777777' } });
      const events: string[] = [];
      for await (const message of stream) {
        events.push(`${message.sequence}:${valueString(message)}`);
        if (events.length === 2) break;
      }
      expect(events).toEqual(['0:opened', '1:deposit']);
      await client.close();
    } finally {
      await broker.stop();
    }
  });
});
