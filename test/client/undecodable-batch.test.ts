// A batch whose CRC is right but whose records are malformed, stored before the broker refused
// such batches: a consumer skips it, says which offsets it skipped, and goes on; it is never
// stopped for good by it.

import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import type { UndecodableBatch } from '../../src/client/consumer.js';
import type { Message } from '../../src/client/message.js';
import { Broker } from '../../src/embedded/broker.js';
import { PartitionLog } from '../../src/storage/partition-log.js';
import { useTempDir } from '../harness/temp-dir.js';
import { goodRecords, rawBatch } from '../protocol/helpers/raw-batch.js';

let dataDir: string;
const scratch = useTempDir('ms-undecodable-');
beforeEach(async () => {
  dataDir = scratch.path;
});

describe('a stored batch whose records cannot be decoded', () => {
  it('is skipped by the consumer, reported with its offsets, and consumption goes on', async () => {
    let broker = await Broker.start({ dataDir });
    let client = broker.connect();
    await client.admin.createTopic({ name: 'legacy', partitions: 1 });
    const producer = client.producer();
    await producer.send({ topic: 'legacy', value: 'before-0' });
    await producer.send({ topic: 'legacy', value: 'before-1' });
    await producer.close();
    await client.close();
    await broker.stop();

    // Three records, the second with a null header key: written straight into the log, as a
    // broker that did not yet validate records would have accepted it (offsets 2..4).
    const records = goodRecords(3);
    records[1] = { ...records[1]!, headers: [{ key: null, value: 'v' }] };
    const log = await PartitionLog.open({ dir: join(dataDir, 'topics', 'legacy', '0') });
    await log.append(rawBatch(records)).done;
    await log.close();

    broker = await Broker.start({ dataDir });
    client = broker.connect();
    const after = client.producer();
    expect((await after.send({ topic: 'legacy', value: 'after' })).offset).toBe(5n);
    await after.close();

    const skipped: UndecodableBatch[] = [];
    const consumer = client.consumer({
      topics: ['legacy'],
      from: 'earliest',
      onUndecodableBatch: (event) => skipped.push(event),
    });
    const seen: Message[] = [];
    for await (const message of consumer) {
      seen.push(message);
      if (message.offset === 5n) break;
    }
    await consumer.close();
    // Record 0 of the bad batch decodes; the rest of it is skipped, and the consumer goes on.
    expect(seen.map((m) => m.offset)).toEqual([0n, 1n, 2n, 5n]);
    expect(skipped).toHaveLength(1);
    expect(skipped[0]).toMatchObject({
      topic: 'legacy',
      partition: 0,
      firstOffset: 2n,
      lastOffset: 4n,
      delivered: 1,
    });
    expect(skipped[0]!.error.codeName).toBe('BAD_RECORD_BATCH');

    // Without a callback the skip is a process warning naming the offsets, never silent.
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const plain = client.consumer({ topics: ['legacy'], from: 'earliest' });
      for await (const message of plain) if (message.offset === 5n) break;
      await plain.close();
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.map((w) => w.message)).toEqual([
      expect.stringContaining('skipped offsets 2..4 of legacy/0'),
    ]);
    await client.close();
    await broker.stop();
  });
});
