// Digests of sealed segments (segment-digest.ts): the same bytes give the same root; one changed
// byte changes the root and exactly the chunk holding it; the cache serves an old digest until the
// caller asks for a fresh one, which reads the disk again.

import { open as openFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeRecordBatch } from '../../src/protocol/record-batch.js';
import { PartitionLog } from '../../src/storage/partition-log.js';
import {
  chunkCount,
  DIGEST_HASH_BYTES,
  differingChunks,
  digestOfBytes,
  digestSegment,
  ReadBudget,
  SegmentDigestCache,
} from '../../src/storage/segment-digest.js';
import { useTempDir } from '../harness/temp-dir.js';

const scratch = useTempDir('ms-digest-');

async function logWithSealedSegments(): Promise<PartitionLog> {
  const log = await PartitionLog.open({
    dir: join(scratch.path, 'p'),
    config: { segmentBytes: 8 * 1024, indexIntervalBytes: 512, durability: 'never' },
  });
  for (let i = 0; i < 60; i++) {
    const batch = encodeRecordBatch(
      [{ key: `k${i}`, value: `value-${i}-${'x'.repeat(300)}`, timestamp: i }],
      {
        baseTimestamp: i,
      },
    );
    await log.append(batch).done;
  }
  return log;
}

async function flipByte(path: string, position: number): Promise<void> {
  const file = await openFile(path, 'r+');
  try {
    const byte = Buffer.alloc(1);
    await file.read(byte, 0, 1, position);
    byte[0] = byte[0]! ^ 0xff;
    await file.write(byte, 0, 1, position);
  } finally {
    await file.close();
  }
}

describe('segment digests', () => {
  it('hashes a sealed segment chunk by chunk into a root; one byte changes one chunk and the root', async () => {
    const log = await logWithSealedSegments();
    try {
      const [segment] = log.settledSegments;
      expect(segment).toBeDefined();
      const bytes = await readFile(segment!.path('log'));
      expect(bytes.length).toBe(segment!.size);
      const fromDisk = await digestSegment(segment!, { chunkBytes: 1024 });
      const inMemory = digestOfBytes(bytes, 1024);
      expect(fromDisk.root.equals(inMemory.root)).toBe(true);
      expect(fromDisk.chunks).toHaveLength(chunkCount(bytes.length, 1024));
      expect(fromDisk.root).toHaveLength(DIGEST_HASH_BYTES);
      expect(fromDisk).toMatchObject({ baseOffset: 0n, nextOffset: segment!.nextOffset, size: bytes.length });

      const changed = Buffer.from(bytes);
      changed[3000] = changed[3000]! ^ 1;
      const other = digestOfBytes(changed, 1024);
      expect(other.root.equals(inMemory.root)).toBe(false);
      expect(differingChunks(inMemory.chunks, other.chunks)).toEqual([2]);
      // Another chunk size is another tree, and another root for the same bytes.
      expect(digestOfBytes(bytes, 2048).root.equals(inMemory.root)).toBe(false);
    } finally {
      await log.close();
    }
  });

  it('serves a cached root until asked for a fresh digest, which sees bytes changed on disk', async () => {
    const log = await logWithSealedSegments();
    try {
      const segment = log.settledSegments[0]!;
      const cache = new SegmentDigestCache(new ReadBudget(1024 * 1024 * 1024));
      const first = await cache.digest(segment, { chunkBytes: 1024, nowMs: 1_000 });
      expect(first.chunks.length).toBeGreaterThan(1);
      await flipByte(segment.path('log'), 100);
      // The cache keeps the root (not the chunk hashes, which grow with the data).
      const cached = await cache.digest(segment, {
        chunkBytes: 1024,
        nowMs: 2_000,
        maxAgeMs: 5_000,
        rootOnly: true,
      });
      expect(cached.root.equals(first.root)).toBe(true);
      expect(cached.chunks).toEqual([]);
      // Asked with its chunks, it reads the disk again.
      const withChunks = await cache.digest(segment, { chunkBytes: 1024, nowMs: 2_000, maxAgeMs: 5_000 });
      expect(withChunks.root.equals(first.root)).toBe(false);
      const fresh = await cache.digest(segment, { chunkBytes: 1024, nowMs: 2_000, maxAgeMs: 0 });
      expect(fresh.root.equals(first.root)).toBe(false);
      expect(differingChunks(first.chunks, fresh.chunks)).toEqual([0]);
      // Within maxAgeMs a cached root stands (bytes changed since or not); older, it is read again.
      await flipByte(segment.path('log'), 100);
      const stillCached = await cache.digest(segment, {
        chunkBytes: 1024,
        nowMs: 6_000,
        maxAgeMs: 5_000,
        rootOnly: true,
      });
      expect(stillCached.root.equals(fresh.root)).toBe(true);
      const later = await cache.digest(segment, {
        chunkBytes: 1024,
        nowMs: 10_000,
        maxAgeMs: 5_000,
        rootOnly: true,
      });
      expect(later.root.equals(first.root)).toBe(true);
    } finally {
      await log.close();
    }
  });

  it('refuses chunk sizes outside 512 bytes to 16 MiB and budgets of no bytes', () => {
    expect(() => digestOfBytes(Buffer.alloc(10), 100)).toThrow(RangeError);
    expect(() => new ReadBudget(0)).toThrow(RangeError);
  });

  it('lets reads through while the budget lasts and makes the next one wait for the refill', async () => {
    const budget = new ReadBudget(100, () => 0);
    await budget.take(60);
    await budget.take(40);
    // Empty now (the clock stands still): 50 more bytes wait half a second at 100 bytes/s.
    let done = false;
    const waiting = budget.take(50).then(() => {
      done = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(done).toBe(false);
    await waiting;
    expect(done).toBe(true);
  });
});
