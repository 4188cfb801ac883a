// Repair of a sealed segment (segment-repair.ts through PartitionLog.repairSegment): ranges of
// verified bytes replace what rotted, by a checked copy renamed over the segment; a copy that does
// not verify changes nothing and leaves no file behind; the repaired log reads, and reopens, whole.

import { open as openFile, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MemoryStreamerError } from '../../src/common/errors.js';
import { encodeRecordBatch, iterateRecords, splitBatches } from '../../src/protocol/record-batch.js';
import { PartitionLog } from '../../src/storage/partition-log.js';
import { segmentFileName } from '../../src/storage/segment.js';
import { digestOfBytes } from '../../src/storage/segment-digest.js';
import { nodeStorageFs } from '../../src/storage/storage-fs.js';
import { MEMORY_TEMP_ROOT, makeTempDir, useTempDir } from '../harness/temp-dir.js';
import {
  CRASH_VARIANTS,
  type CrashVariant,
  crashStates,
  materialize,
  type RecordingOptions,
  recordingFs,
} from './helpers/recording-fs.js';

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

// Crash states of a repair (helpers/recording-fs.ts): a log whose sealed segment rotted (the rot
// written through the recording file system too) is repaired; for every crash point from the
// repair's start × every crash model, the disk holds the segment either rotten or repaired — never
// a mix or a torn copy — opens, leaves no `.cleaned` file, and when repaired serves every record.
describe('sealed segment repair: crash states', () => {
  const memory = useTempDir('ms-repair-crash-', 'all', { parent: MEMORY_TEMP_ROOT });
  const CONFIG = { segmentBytes: 2048, indexIntervalBytes: 256, durability: 'always' as const };
  const limits = { maxDecompressedBytes: 1 << 20 };

  async function record(options: RecordingOptions = {}) {
    const dir = await makeTempDir('live-', { parent: memory.path });
    const shim = recordingFs(nodeStorageFs, options);
    const log = await PartitionLog.open({ dir, config: CONFIG, fs: shim.fs, streams: limits });
    const values: string[] = [];
    for (let i = 0; i < 30; i++) {
      const value = `value-${i}-${'y'.repeat(100 + i)}`;
      values.push(value);
      await log.append(encodeRecordBatch([{ key: `k${i % 4}`, value, timestamp: i }], { baseTimestamp: i }))
        .done;
    }
    const segment = log.settledSegments[1]!;
    const name = segmentFileName(segment.baseOffset, 'log');
    const good = await readFile(segment.path('log'));
    const rot = Buffer.from('rot!');
    const file = await shim.fs.open(segment.path('log'), 'read-write');
    await file.writev([rot], 100);
    await file.datasync();
    await file.close();
    const rotten = Buffer.from(good);
    rot.copy(rotten, 100);
    const repairStart = shim.journal.length;
    await log.repairSegment(segment.baseOffset, [{ position: 0, bytes: good.subarray(0, CHUNK) }], {
      root: digestOfBytes(good, CHUNK).root,
      chunkBytes: CHUNK,
    });
    await log.close();
    return { journal: shim.journal, repairStart, name, good, rotten, values };
  }

  async function sweep(rec: Awaited<ReturnType<typeof record>>, variants: readonly CrashVariant[]) {
    const failures: string[] = [];
    const seen = new Set<string>();
    let states = 0;
    for (let k = rec.journal.length; k >= rec.repairStart; k--)
      for (const variant of variants)
        for (const state of crashStates(rec.journal, k, variant)) {
          const content = state.files.get(rec.name);
          const key = `${[...state.files.keys()].sort().join()} ${content?.toString('hex')}`;
          if (seen.has(key)) continue;
          seen.add(key);
          const repaired = content?.equals(rec.good) === true;
          if (!repaired && content?.equals(rec.rotten) !== true) {
            failures.push(`${state.label}: the segment is neither the rotten nor the repaired one`);
            continue;
          }
          const dir = join(memory.path, `state-${states++}`);
          await materialize(state, dir);
          try {
            const log = await PartitionLog.open({ dir, config: CONFIG, streams: limits });
            try {
              if ((await readdir(dir)).some((file) => file.endsWith('.cleaned')))
                failures.push(`${state.label}: a .cleaned file is left`);
              if (repaired && (await values(log, 0n, log.highWatermark)).join() !== rec.values.join())
                failures.push(`${state.label}: the repaired log does not serve every record`);
            } finally {
              await log.close();
            }
          } catch (error) {
            failures.push(`${state.label}: ${(error as Error).message}`);
          }
          await rm(dir, { recursive: true, force: true });
        }
    return { states, failures };
  }

  it(`every crash point × ${CRASH_VARIANTS.length} crash models leaves the segment rotten or repaired`, async () => {
    const rec = await record();
    expect(rec.journal.slice(rec.repairStart).some((op) => op.kind === 'rename')).toBe(true);
    const { states, failures } = await sweep(rec, CRASH_VARIANTS);
    expect(states).toBeGreaterThan(3);
    expect(failures.slice(0, 10)).toEqual([]);
  });

  // Test-the-test: a repair whose fdatasync of the copy only pretends is caught after a power loss.
  it('the checker reports a torn segment when the copy is not synced before the rename', async () => {
    const rec = await record({ dropDatasync: (name) => name.endsWith('.cleaned') });
    const { failures } = await sweep(rec, ['lose-unsynced']);
    expect(failures.some((failure) => failure.includes('neither'))).toBe(true);
  });
});
