// A memory topic's log writes every batch in line, whatever its size (its "file" is process memory:
// the thread pool would only add a promise hop to the same copy), where a disk log sends batches
// above storage.inline_write_max_bytes to the thread pool.
import { describe, expect, it } from 'vitest';
import { Partition } from '../../../src/broker/partitions/partition.js';
import { encodeRecordBatch } from '../../../src/protocol/record-batch.js';
import { tempDir } from '../../harness/temp-dir.js';

const LIMITS = { maxBatchBytes: 4 << 20, maxDecompressedBytes: 1 << 24 };

/** One batch of about 512 KiB: above the disk log's default in-line limit (256 KiB). */
function bigBatch(): Buffer {
  const value = Buffer.alloc(1024, 0x61);
  return encodeRecordBatch(Array.from({ length: 512 }, () => ({ key: null, value })));
}

describe('memory log writes', () => {
  it('writes a batch above the disk in-line limit in line in a memory log, on the thread pool in a disk log', async () => {
    for (const storage of ['memory', 'disk'] as const) {
      const partition = await Partition.open({
        topic: 't',
        index: 0,
        dir: await tempDir('ms-memory-log-writes-'),
        config: { durability: 'never' },
        limits: LIMITS,
        storage,
      });
      try {
        const reply = await partition.produce({ batch: bigBatch(), acks: 1 });
        expect(reply.lastOffset).toBe(511n);
        expect(partition.log.inlineWrites).toBe(storage === 'memory' ? 1 : 0);
        expect(partition.log.writeMode).toBe('inline');
      } finally {
        await partition.close();
      }
    }
  });
});
