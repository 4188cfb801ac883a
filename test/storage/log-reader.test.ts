import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import { encodeRecordBatch, iterateRecords, splitBatches } from '../../src/protocol/record-batch.js';
import { MAX_WINDOW_BYTES } from '../../src/storage/log-reader.js';
import { PartitionLog, type PartitionLogConfig } from '../../src/storage/partition-log.js';
import { segmentFileName } from '../../src/storage/segment.js';
import { useTempDir } from '../harness/temp-dir.js';

let dir: string;
const scratch = useTempDir('ms-log-reader-');
beforeEach(async () => {
  dir = scratch.path;
});

const limits = { maxDecompressedBytes: 1 << 24 };

/** A batch of `count` records `v<first>`…, each value padded to `pad` bytes. */
function batchOf(first: number, count: number, pad = 0): Buffer {
  return encodeRecordBatch(
    Array.from({ length: count }, (_, i) => ({
      key: `k${first + i}`,
      value: `v${first + i}`.padEnd(pad, '.'),
      timestamp: 1_700_000_000_000,
    })),
    { baseTimestamp: 1_700_000_000_000 },
  );
}

function valuesIn(data: Buffer, from: bigint): string[] {
  const out: string[] = [];
  for (const batch of splitBatches(data))
    for (const record of iterateRecords(batch, limits))
      if (record.offset >= from) out.push(record.value!.toString().replace(/\.+$/, ''));
  return out;
}

async function openLog(config: Partial<PartitionLogConfig> = {}): Promise<PartitionLog> {
  return PartitionLog.open({
    dir,
    config: { segmentBytes: 256 * 1024, indexIntervalBytes: 4096, durability: 'never', ...config },
  });
}

/** Appends `count` records in batches of `perBatch`; returns each batch's byte position in its segment. */
async function fill(
  log: PartitionLog,
  count: number,
  perBatch: number,
  pad = 0,
  from = 0,
): Promise<number[]> {
  const positions: number[] = [];
  for (let i = from; i < from + count; i += perBatch) {
    const batch = batchOf(i, Math.min(perBatch, from + count - i), pad);
    positions.push(log.sizeBytes);
    await log.append(batch).done;
  }
  return positions;
}

const expected = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => `v${from + k}`);

describe('LogReader', () => {
  it('replays every batch across segments, from any offset, like read() does', async () => {
    const log = await openLog();
    await fill(log, 6000, 7, 120); // ≈ 5 segments of 256 KiB
    expect(log.segmentCount).toBeGreaterThan(3);
    for (const [from, maxBytes] of [
      [0n, 1 << 20],
      [0n, 3000],
      [2345n, 50_000],
      [5999n, 1],
    ] as const) {
      const seen: string[] = [];
      let calls = 0;
      for await (const { data, nextOffset } of log.replay(from, maxBytes)) {
        calls++;
        seen.push(...valuesIn(data, from));
        expect(data.length <= maxBytes || [...splitBatches(data)].length === 1).toBe(true);
        expect(nextOffset).toBeGreaterThan(from);
      }
      expect(seen).toEqual(expected(Number(from), 6000));
      expect(calls).toBeGreaterThan(0);
    }
    await log.close();
  });

  it('reuses its two buffers from call to call instead of allocating per read', async () => {
    const log = await openLog({ segmentBytes: 4 << 20 });
    await fill(log, 20_000, 10, 100); // ≈ 2.6 MiB in one segment: several 64 KiB windows
    const reader = log.reader(0n, 16 * 1024);
    const memory = new Set<ArrayBufferLike>();
    let calls = 0;
    for (;;) {
      const { data } = await reader.next();
      if (data.length === 0) break;
      memory.add(data.buffer);
      calls++;
    }
    reader.close();
    expect(calls).toBeGreaterThan(100);
    // Pooled small allocations could share one ArrayBuffer; these windows are far larger than the pool.
    expect(memory.size).toBe(2);
    await log.close();
  });

  it('grows its buffers for a batch larger than its window and serves it whole', async () => {
    const log = await openLog({ segmentBytes: 4 << 20 });
    await fill(log, 100, 10, 50);
    await log.append(batchOf(100, 1, 300_000)).done; // one batch of ≈ 300 KB, past the 64 KiB window
    await fill(log, 100, 10, 50, 101);
    const seen: string[] = [];
    for await (const { data } of log.replay(0n, 1024)) seen.push(...valuesIn(data, 0n));
    expect(seen).toEqual(expected(0, 201));
    await log.close();
  });

  it('stays at the high watermark and goes on with what is appended later', async () => {
    const log = await openLog({ durability: 'always' });
    await fill(log, 50, 5);
    const reader = log.reader(0n, 1 << 20);
    const seen: string[] = [];
    for (let round = 1; round <= 4; round++) {
      for (;;) {
        const result = await reader.next();
        if (result.data.length === 0) {
          expect(result.nextOffset).toBe(log.highWatermark);
          break;
        }
        seen.push(...valuesIn(result.data, 0n));
      }
      await fill(log, 50, 5, 0, round * 50);
    }
    seen.push(...valuesIn((await reader.next()).data, 0n));
    expect(seen).toEqual(expected(0, 250));
    reader.close();
    await expect(reader.next()).rejects.toMatchObject({ code: ErrorCode.INVALID_REQUEST });
    await log.close();
  });

  it('serves the batches before a corrupted one, then refuses it, whichever chunk holds it', async () => {
    for (const bad of [3, 150, 151, 152]) {
      const log = await openLog({ segmentBytes: 4 << 20 });
      const positions = await fill(log, 2400, 10, 40); // 240 batches of ≈ 550 bytes
      const file = await open(join(dir, segmentFileName(0n, 'log')), 'r+');
      const flipAt = positions[bad + 1]! - 3; // inside the last record of batch `bad`
      const byte = Buffer.alloc(1);
      await file.read(byte, 0, 1, flipAt);
      byte[0] = byte[0]! ^ 0x04;
      await file.write(byte, 0, 1, flipAt);
      await file.close();
      const served: string[] = [];
      await expect(
        (async () => {
          for await (const { data } of log.replay(0n, 4000)) served.push(...valuesIn(data, 0n));
        })(),
      ).rejects.toMatchObject({ code: ErrorCode.CORRUPT_DATA });
      expect(served).toEqual(expected(0, bad * 10));
      await log.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reports OFFSET_OUT_OF_RANGE when retention deletes what it was to read next', async () => {
    const log = await openLog({ segmentBytes: 64 * 1024, retentionBytes: 128 * 1024 });
    await fill(log, 3000, 5, 100);
    expect(log.segmentCount).toBeGreaterThan(4);
    const reader = log.reader(0n, 2000);
    await reader.next();
    await reader.next();
    expect(await log.applyRetention()).toBeGreaterThan(0);
    await expect(reader.next()).rejects.toMatchObject({ code: ErrorCode.OFFSET_OUT_OF_RANGE });
    // A new reader from the new start reads on.
    const start = Number(log.logStartOffset);
    const seen: string[] = [];
    for await (const { data } of log.replay(log.logStartOffset))
      seen.push(...valuesIn(data, log.logStartOffset));
    expect(seen).toEqual(expected(start, 3000));
    await log.close();
    await expect(log.reader(0n).next()).rejects.toMatchObject({ code: ErrorCode.PARTITION_CLOSED });
  });

  it('reads the rewritten segment when compaction replaces it under the reader', async () => {
    const log = await openLog({ segmentBytes: 64 * 1024 });
    // Keys repeat every 500 records: compaction keeps only the latest of each.
    const keyed = (first: number, count: number) =>
      encodeRecordBatch(
        Array.from({ length: count }, (_, i) => ({
          key: `k${(first + i) % 500}`,
          value: `v${first + i}`.padEnd(100, '.'),
          timestamp: 1_700_000_000_000,
        })),
        { baseTimestamp: 1_700_000_000_000 },
      );
    for (let i = 0; i < 3000; i += 10) await log.append(keyed(i, 10)).done;
    const reader = log.reader(0n, 3000);
    const first = await reader.next();
    const before = valuesIn(first.data, 0n);
    const report = await log.compact();
    expect(report.segmentsCleaned).toBeGreaterThan(0);
    const after: string[] = [];
    for (;;) {
      const { data } = await reader.next();
      if (data.length === 0) break;
      after.push(...valuesIn(data, 0n));
    }
    reader.close();
    // Before compaction the reader saw the old records; after it, only latest versions (and the
    // records of the active segment), in offset order, each once.
    const numbers = [...before, ...after].map((v) => Number(v.slice(1)));
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
    expect(new Set(numbers).size).toBe(numbers.length);
    expect(after).toContain('v2999');
    expect(after.length).toBeLessThan(3000 - before.length);
    await log.close();
  });

  it('bounds its buffers whatever maxBytes it is given', async () => {
    const log = await openLog({ segmentBytes: 64 << 20 });
    for (let i = 0; i < 40; i++) await log.append(batchOf(i * 100, 100, 10_000)).done; // ≈ 40 MB
    const seen: string[] = [];
    let largest = 0;
    for await (const { data } of log.replay(0n, 1 << 30)) {
      largest = Math.max(largest, data.length, data.buffer.byteLength);
      seen.push(...valuesIn(data, 0n));
    }
    expect(seen).toEqual(expected(0, 4000));
    expect(largest).toBeLessThanOrEqual(MAX_WINDOW_BYTES + 4096);
    expect(largest).toBeGreaterThan(MAX_WINDOW_BYTES / 2);
    await log.close();
  });

  it('refuses a window size that is not a positive integer', async () => {
    const log = await openLog();
    expect(() => log.reader(0n, 0)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_REQUEST }));
    await log.close();
  });

  it('equals a read() loop under random logs, starting offsets and window sizes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 3000 })), {
          minLength: 1,
          maxLength: 40,
        }),
        fc.integer({ min: 1, max: 70_000 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        async (batches, maxBytes, startAt) => {
          await rm(dir, { recursive: true, force: true });
          const log = await openLog({ segmentBytes: 160 * 1024, indexIntervalBytes: 512 });
          let next = 0;
          for (const [count, pad] of batches) {
            await log.append(batchOf(next, count, pad)).done;
            next += count;
          }
          const from = BigInt(Math.floor(startAt * next));
          const viaRead: string[] = [];
          for (let offset = from; offset < log.highWatermark; ) {
            const result = await log.read(offset, maxBytes);
            viaRead.push(...valuesIn(result.data, from));
            offset = result.nextOffset;
          }
          const viaReader: string[] = [];
          for await (const { data } of log.replay(from, maxBytes)) viaReader.push(...valuesIn(data, from));
          expect(viaReader).toEqual(viaRead);
          expect(viaReader).toEqual(expected(Number(from), next));
          await log.close();
        },
      ),
      { numRuns: process.env.CI === 'true' ? 40 : 15 },
    );
  });
});
