// A memory partition's retention is its memory bound: the log never holds more than retentionBytes
// plus one segment (the active one), and what its memory file system allocates stays within that
// plus the reserve of one segment its dropped chunks are kept in, plus a partly used chunk a file.
// Disk logs keep Kafka's reading (retention is what stays at least) and are not bound this way.
import { afterEach, describe, expect, it } from 'vitest';
import { Partition } from '../../../src/broker/partitions/partition.js';
import { encodeRecordBatch } from '../../../src/protocol/record-batch.js';
import type { MemoryStorageFs } from '../../../src/storage/memory-storage-fs.js';
import { tempDir } from '../../harness/temp-dir.js';

const LIMITS = { maxBatchBytes: 1 << 22, maxDecompressedBytes: 1 << 24 };
const CHUNK = 64 * 1024;

const opened: Partition[] = [];
afterEach(async () => {
  for (const partition of opened.splice(0)) await partition.close();
});

describe('a memory partition', () => {
  it.each([
    [1024 * 1024, 128 * 1024],
    [4 * 1024 * 1024, 512 * 1024],
    [256 * 1024, 256 * 1024],
  ])(
    'with retention %i and segments of %i holds at most retention + one segment',
    async (retention, segment) => {
      const partition = await Partition.open({
        topic: 't',
        index: 0,
        dir: await tempDir('ms-memory-bound-'),
        config: { durability: 'never', retentionBytes: retention, segmentBytes: segment },
        limits: LIMITS,
        storage: 'memory',
      });
      opened.push(partition);
      const fs = (partition.log as unknown as { fs: MemoryStorageFs }).fs;
      const batch = encodeRecordBatch([{ key: null, value: Buffer.alloc(1000, 7) }]);
      let largestLog = 0;
      let largestMemory = 0;
      for (let i = 0; i < (retention * 6) / batch.length; i++) {
        await partition.produce({ batch, acks: 1 });
        // Retention at a roll completes in the turn after it.
        if (i % 16 === 0) await new Promise((resolve) => setImmediate(resolve));
        largestLog = Math.max(largestLog, partition.log.sizeBytes);
        largestMemory = Math.max(largestMemory, fs.allocatedBytes());
      }
      expect(largestLog).toBeLessThanOrEqual(retention + segment + batch.length);
      // The files of each segment (log, offset and time index, stream index) end in a partly used
      // chunk; the reserve keeps one segment's worth of chunks (and the one made ahead).
      expect(largestMemory).toBeLessThanOrEqual(retention + 2 * segment + 8 * CHUNK);
    },
  );
});
