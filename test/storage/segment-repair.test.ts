// Repair of a sealed segment (segment-repair.ts through PartitionLog.repairSegment): ranges of
// verified bytes replace what rotted, by a checked copy renamed over the segment; a copy that does
// not verify changes nothing and leaves no file behind; the repaired log reads, and reopens, whole.

import { open as openFile, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MemoryStreamerError } from '../../src/common/errors.js';
import { encodeRecordBatch, iterateRecords, splitBatches } from '../../src/protocol/record-batch.js';
import { PartitionLog } from '../../src/storage/partition-log.js';
import { digestOfBytes } from '../../src/storage/segment-digest.js';
import { useTempDir } from '../harness/temp-dir.js';

const scratch = useTempDir('ms-repair-');
const CHUNK = 1024;

async function openLog(name = 'p'): Promise<PartitionLog> {
  return PartitionLog.open({
    dir: join(scratch.path, name),
    config: { segmentBytes: 8 * 1024, indexIntervalBytes: 512, durability: 'never' },
  });
}

async function filled(): Promise<PartitionLog> {
  const log = await openLog();
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

async function overwrite(path: string, position: number, bytes: Buffer): Promise<void> {
  const file = await openFile(path, 'r+');
  try {
    await file.write(bytes, 0, bytes.length, position);
  } finally {
    await file.close();
  }
}

async function values(log: PartitionLog, from: bigint, to: bigint): Promise<string[]> {
  const out: string[] = [];
  for (let at = from; at < to; ) {
    const result = await log.read(at, 64 * 1024);
    for (const batch of splitBatches(result.data))
      for (const record of iterateRecords(batch, { maxDecompressedBytes: 1 << 20 }))
        out.push(record.value!.toString());
    at = result.nextOffset;
  }
  return out;
}

function codeOf(error: unknown): string | undefined {
  return error instanceof MemoryStreamerError ? error.codeName : undefined;
}

describe('sealed segment repair', () => {
  it('rewrites the rotten range with the good bytes: the file, the reads and a reopen are whole again', async () => {
    let log = await filled();
    const segment = log.settledSegments[1]!;
    const path = segment.path('log');
    const good = await readFile(path);
    const expected = await values(log, segment.baseOffset, segment.nextOffset);
    // Bit rot in the middle of the second chunk.
    await overwrite(path, CHUNK + 100, Buffer.from('rotten bytes'));
    await expect(values(log, segment.baseOffset, segment.nextOffset)).rejects.toSatisfy(
      (error) => codeOf(error) === 'CORRUPT_DATA',
    );
    const target = digestOfBytes(good, CHUNK);
    const result = await log.repairSegment(
      segment.baseOffset,
      [{ position: CHUNK, bytes: good.subarray(CHUNK, 2 * CHUNK) }],
      { root: target.root, chunkBytes: CHUNK },
    );
    expect(result).toMatchObject({ baseOffset: segment.baseOffset, bytesRewritten: CHUNK, bytesChanged: 12 });
    expect((await readFile(path)).equals(good)).toBe(true);
    expect(await values(log, segment.baseOffset, segment.nextOffset)).toEqual(expected);
    // The segment object was replaced; the index was rebuilt for it and persisted.
    expect(log.settledSegments[1]).not.toBe(segment);
    expect((await readdir(join(scratch.path, 'p'))).filter((name) => name.endsWith('.cleaned'))).toEqual([]);
    const end = log.highWatermark;
    await log.close();
    log = await openLog();
    try {
      expect(log.recovery.corruption ?? null).toBeNull();
      expect(await values(log, 0n, end)).toHaveLength(60);
    } finally {
      await log.close();
    }
  });

  it('refuses a copy that does not hash to the target, or whose batches fail their CRC, and changes nothing', async () => {
    const log = await filled();
    try {
      const segment = log.settledSegments[0]!;
      const path = segment.path('log');
      const good = await readFile(path);
      await overwrite(path, 200, Buffer.from('rot'));
      const rotten = await readFile(path);
      const target = digestOfBytes(good, CHUNK);
      // The right root, but bytes that are not the good ones: the copy's batches fail their CRC.
      const wrong = Buffer.from(good.subarray(0, CHUNK));
      wrong[300] = wrong[300]! ^ 0xff;
      await expect(
        log.repairSegment(segment.baseOffset, [{ position: 0, bytes: wrong }], {
          root: target.root,
          chunkBytes: CHUNK,
        }),
      ).rejects.toSatisfy((error) => codeOf(error) === 'SEGMENT_REPAIR_FAILED');
      // Good bytes, but a root the copy does not hash to (another replica's different segment).
      await expect(
        log.repairSegment(segment.baseOffset, [{ position: 0, bytes: good.subarray(0, CHUNK) }], {
          root: digestOfBytes(Buffer.from('something else'), CHUNK).root,
          chunkBytes: CHUNK,
        }),
      ).rejects.toSatisfy((error) => codeOf(error) === 'SEGMENT_REPAIR_FAILED');
      expect((await readFile(path)).equals(rotten)).toBe(true);
      expect(log.settledSegments[0]).toBe(segment);
      expect((await readdir(join(scratch.path, 'p'))).filter((name) => name.endsWith('.cleaned'))).toEqual(
        [],
      );
    } finally {
      await log.close();
    }
  });

  it('refuses ranges outside the segment or out of order, and segments that are not settled', async () => {
    const log = await filled();
    try {
      const segment = log.settledSegments[0]!;
      const target = { root: Buffer.alloc(32), chunkBytes: CHUNK };
      const range = (position: number, length: number) => ({ position, bytes: Buffer.alloc(length) });
      for (const ranges of [
        [range(segment.size - 10, 20)],
        [range(100, 10), range(50, 10)],
        [range(100, 10), range(105, 10)],
        [range(-1, 10)],
      ])
        await expect(log.repairSegment(segment.baseOffset, ranges, target)).rejects.toSatisfy(
          (error) => codeOf(error) === 'SEGMENT_RANGE_INVALID',
        );
      // The active segment and an offset where no segment starts.
      const active = log.logEndOffset;
      const activeBase = log.settledSegments.at(-1)!.nextOffset;
      for (const base of [activeBase, 1n, active + 100n])
        await expect(log.repairSegment(base, [range(0, 10)], target)).rejects.toSatisfy(
          (error) => codeOf(error) === 'SEGMENT_NOT_FOUND',
        );
    } finally {
      await log.close();
    }
  });
});
