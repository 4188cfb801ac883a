import { appendFile, open, readdir, readFile, rm, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import { encodeRecordBatch, iterateRecords, splitBatches } from '../../src/protocol/record-batch.js';
import { PartitionLog, type PartitionLogConfig } from '../../src/storage/partition-log.js';
import { segmentFileName } from '../../src/storage/segment.js';
import { useTempDir } from '../harness/temp-dir.js';
import { faultyFs } from './helpers/faulty-fs.js';

let dir: string;
const scratch = useTempDir('ms-log-');
beforeEach(async () => {
  dir = scratch.path;
});

const limits = { maxDecompressedBytes: 1 << 24 };

function batchOf(values: string[], timestamp = 1_700_000_000_000): Buffer {
  return encodeRecordBatch(
    values.map((value) => ({ key: `k-${value}`, value, timestamp })),
    { baseTimestamp: timestamp },
  );
}

async function readAll(
  log: PartitionLog,
  from = log.logStartOffset,
): Promise<{ offset: bigint; value: string }[]> {
  const out: { offset: bigint; value: string }[] = [];
  let offset = from;
  while (offset < log.highWatermark) {
    const result = await log.read(offset, 4096);
    for (const batch of splitBatches(result.data)) {
      for (const record of iterateRecords(batch, limits)) {
        if (record.offset >= offset) out.push({ offset: record.offset, value: record.value!.toString() });
      }
    }
    expect(result.nextOffset).toBeGreaterThan(offset);
    offset = result.nextOffset;
  }
  return out;
}

async function openLog(config: Partial<PartitionLogConfig> = {}, fs = faultyFs().fs): Promise<PartitionLog> {
  return PartitionLog.open({ dir, config: { segmentBytes: 1024, indexIntervalBytes: 128, ...config }, fs });
}

describe('PartitionLog', () => {
  it('assigns contiguous offsets, rolls segments, and reads from any offset', async () => {
    const log = await openLog({ durability: 'never' });
    const tickets = [];
    for (let i = 0; i < 60; i++) tickets.push(log.append(batchOf([`a${i}`, `b${i}`])));
    expect(tickets.map((t) => t.baseOffset)).toEqual(tickets.map((_, i) => BigInt(i * 2)));
    expect(await Promise.all(tickets.map((t) => t.done))).toEqual(tickets.map(() => 'written'));
    expect(log.segmentCount).toBeGreaterThan(3);
    expect(log.highWatermark).toBe(120n);
    const all = await readAll(log);
    expect(all.map((r) => r.offset)).toEqual(Array.from({ length: 120 }, (_, i) => BigInt(i)));
    const middle = await log.read(77n, 1);
    const firstRecord = [...iterateRecords([...splitBatches(middle.data)][0]!, limits)];
    expect(firstRecord.map((r) => r.offset)).toContain(77n);
    expect((await log.read(120n, 100)).data.length).toBe(0);
    await expect(log.read(121n, 100)).rejects.toMatchObject({ code: ErrorCode.OFFSET_OUT_OF_RANGE });
    await log.close();
    await expect(log.read(0n, 100)).rejects.toMatchObject({ code: ErrorCode.PARTITION_CLOSED });
    expect(() => log.append(batchOf(['x']))).toThrow(/partition is closed/);
  });

  it('reopens with persisted indexes and rebuilds missing or corrupt ones', async () => {
    const log = await openLog({ durability: 'interval', flushIntervalMs: 5 });
    for (let i = 0; i < 40; i++) await log.append(batchOf([`v${i}`])).done;
    const before = await readAll(log);
    await log.close();

    const reopened = await openLog();
    expect(reopened.recovery.rebuiltIndexes).toBe(0);
    expect(reopened.recovery.truncatedBytes).toBe(0);
    expect(await readAll(reopened)).toEqual(before);
    await reopened.close();

    const files = (await readdir(dir)).sort();
    const indexes = files.filter((f) => f.endsWith('.index'));
    await unlink(join(dir, indexes[0]!));
    const timeIndex = join(dir, files.filter((f) => f.endsWith('.timeindex'))[1]!);
    const bytes = await readFile(timeIndex);
    bytes[0] = (bytes[0] ?? 0) ^ 0xff;
    await writeFile(timeIndex, bytes);
    const rebuilt = await openLog();
    expect(rebuilt.recovery.rebuiltIndexes).toBe(2);
    expect(await readAll(rebuilt)).toEqual(before);
    expect(rebuilt.logEndOffset).toBe(40n);
    rebuilt.append(batchOf(['after']));
    await rebuilt.close();
  });

  it('truncates a torn or garbage tail and reports it', async () => {
    const log = await openLog({ segmentBytes: 1 << 20, durability: 'always' });
    for (let i = 0; i < 5; i++) await log.append(batchOf([`v${i}`])).done;
    await log.close();
    const file = join(dir, segmentFileName(0n, 'log'));
    const goodSize = (await stat(file)).size;
    const extra = batchOf(['torn']);
    extra.writeBigInt64BE(5n, 0);
    await appendFile(file, extra.subarray(0, 30));
    let reopened = await openLog({ segmentBytes: 1 << 20 });
    expect(reopened.recovery.truncatedBytes).toBe(30);
    expect(reopened.recovery.truncation?.offset).toBe(5n);
    expect(reopened.logEndOffset).toBe(5n);
    await reopened.close();
    expect((await stat(file)).size).toBe(goodSize);

    await appendFile(file, Buffer.alloc(700, 0xab));
    reopened = await openLog({ segmentBytes: 1 << 20 });
    expect(reopened.recovery.truncatedBytes).toBe(700);
    expect((await readAll(reopened)).map((r) => r.value)).toEqual(['v0', 'v1', 'v2', 'v3', 'v4']);
    await reopened.close();
  });

  it('detects a flipped bit in a sealed segment and refuses to serve past it', async () => {
    const log = await openLog({ durability: 'never' });
    for (let i = 0; i < 40; i++) await log.append(batchOf([`v${i}`])).done;
    await log.close();
    const first = join(dir, segmentFileName(0n, 'log'));
    await unlink(join(dir, segmentFileName(0n, 'index')));
    const bytes = await readFile(first);
    const flipAt = bytes.length - 10;
    bytes[flipAt] = (bytes[flipAt] ?? 0) ^ 0x01;
    await writeFile(first, bytes);
    const reopened = await openLog();
    expect(reopened.recovery.corruption).not.toBeNull();
    expect(reopened.state).toBe('failed');
    const served = await readAll(reopened);
    expect(served.length).toBeLessThan(40);
    expect(served.map((r) => r.offset)).toEqual(served.map((_, i) => BigInt(i)));
    expect(() => reopened.append(batchOf(['x']))).toThrow(/read-only/);
    await reopened.close();
  });

  it('refuses zeroed bytes in a sealed segment trusted through its index as CORRUPT_DATA', async () => {
    const log = await openLog({ durability: 'never' });
    for (let i = 0; i < 40; i++) await log.append(batchOf([`v${i}`])).done;
    await log.close();
    // Same size, index still valid (recovery trusts it), but the data zeroed: what a lost
    // page-cache write can leave behind.
    const first = join(dir, segmentFileName(0n, 'log'));
    await writeFile(first, Buffer.alloc((await readFile(first)).length));
    const reopened = await openLog();
    expect(reopened.recovery.corruption).toBeNull();
    await expect(reopened.read(0n, 4096)).rejects.toMatchObject({ code: ErrorCode.CORRUPT_DATA });
    await reopened.close();
  });

  it('refuses a batch length that runs past the written data instead of returning nothing', async () => {
    const log = await openLog({ durability: 'never' });
    for (let i = 0; i < 40; i++) await log.append(batchOf([`v${i}`])).done;
    await log.close();
    const first = join(dir, segmentFileName(0n, 'log'));
    const bytes = await readFile(first);
    bytes.writeInt32BE(1_000_000, 8); // the first batch's length field, as a torn write can leave it
    await writeFile(first, bytes);
    const reopened = await openLog();
    await expect(reopened.read(0n, 4096)).rejects.toMatchObject({ code: ErrorCode.CORRUPT_DATA });
    await reopened.close();
  });

  it('group-commits with durability always', async () => {
    const { fs, faults } = faultyFs();
    const log = await openLog({ segmentBytes: 1 << 20, durability: 'always' }, fs);
    const tickets = Array.from({ length: 200 }, (_, i) => log.append(batchOf([`v${i}`])));
    expect(await Promise.all(tickets.map((t) => t.done))).toEqual(tickets.map(() => 'synced'));
    expect(faults.syncs).toBeLessThan(20);
    expect(faults.writes).toBeLessThan(20);
    await log.close();
  });

  it('reports a full disk, keeps the log valid, and accepts writes again', async () => {
    const { fs, faults } = faultyFs();
    const log = await openLog({ segmentBytes: 1 << 20, durability: 'always' }, fs);
    await log.append(batchOf(['before'])).done;
    faults.writeError = 'ENOSPC';
    const failing = [log.append(batchOf(['x'])), log.append(batchOf(['y']))];
    for (const ticket of failing)
      await expect(ticket.done).rejects.toMatchObject({ code: ErrorCode.STORAGE_FULL });
    expect(log.logEndOffset).toBe(1n);
    faults.writeError = null;
    const after = log.append(batchOf(['after']));
    expect(after.baseOffset).toBe(1n);
    await after.done;
    expect((await readAll(log)).map((r) => r.value)).toEqual(['before', 'after']);
    await log.close();
    const reopened = await openLog({ segmentBytes: 1 << 20 });
    expect(reopened.recovery.truncatedBytes).toBe(0);
    expect((await readAll(reopened)).map((r) => r.value)).toEqual(['before', 'after']);
    await reopened.close();
  });

  it('fails stop on an fsync error and never acknowledges the batch', async () => {
    const { fs, faults } = faultyFs();
    const log = await openLog({ segmentBytes: 1 << 20, durability: 'always' }, fs);
    await log.append(batchOf(['kept'])).done;
    faults.syncError = 'EIO';
    await expect(log.append(batchOf(['lost'])).done).rejects.toMatchObject({
      code: ErrorCode.STORAGE_FAILED,
    });
    expect(log.state).toBe('failed');
    expect(() => log.append(batchOf(['refused']))).toThrow(/read-only/);
    expect((await readAll(log)).map((r) => r.value)).toEqual(['kept']);
    faults.syncError = null;
    await log.close();
    const reopened = await openLog({ segmentBytes: 1 << 20 });
    expect(reopened.state).toBe('open');
    const values = (await readAll(reopened)).map((r) => r.value);
    expect(values[0]).toBe('kept');
    await reopened.close();
  });

  it('applies retention by size and by time to sealed segments only', async () => {
    let now = 1_000_000;
    const log = await PartitionLog.open({
      dir,
      config: { segmentBytes: 1024, indexIntervalBytes: 128, durability: 'never', retentionBytes: 3000 },
      clock: { now: () => now },
    });
    for (let i = 0; i < 60; i++) await log.append(batchOf([`v${i}`], now + i)).done;
    const removed = await log.applyRetention();
    expect(removed).toBeGreaterThan(0);
    expect(log.sizeBytes).toBeLessThanOrEqual(3000 + 1024);
    expect(log.logStartOffset).toBeGreaterThan(0n);
    await expect(log.read(0n, 100)).rejects.toMatchObject({ code: ErrorCode.OFFSET_OUT_OF_RANGE });
    const values = await readAll(log);
    expect(values.at(-1)?.value).toBe('v59');
    await log.close();

    now += 10_000_000;
    const timed = await PartitionLog.open({
      dir,
      config: { segmentBytes: 1024, retentionMs: 1000 },
      clock: { now: () => now },
    });
    await timed.applyRetention();
    expect(timed.segmentCount).toBe(1);
    await timed.close();
  });

  it('finds offsets by timestamp and tells listeners about new batches', async () => {
    const log = await openLog({ durability: 'never' });
    const seen: bigint[] = [];
    const stop = log.onVisible((batches, hw) => {
      expect(batches.length).toBeGreaterThan(0);
      seen.push(hw);
    });
    for (let i = 0; i < 30; i++) await log.append(batchOf([`v${i}`], 1000 + i * 10)).done;
    stop();
    await log.append(batchOf(['late'], 5000)).done;
    expect(seen.at(-1)).toBe(30n);
    expect(await log.offsetForTimestamp(0)).toBe(0n);
    expect(await log.offsetForTimestamp(1105)).toBe(11n);
    expect(await log.offsetForTimestamp(9999)).toBe(31n);
    await log.close();
  });

  it('behaves like a list under random appends, reopens and reads', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.array(fc.string({ maxLength: 60 }), { minLength: 1, maxLength: 5 }),
            fc.constant('reopen' as const),
          ),
          {
            maxLength: 25,
          },
        ),
        async (operations) => {
          await rm(dir, { recursive: true, force: true });
          let log = await openLog({ segmentBytes: 600, durability: 'never' });
          const model: string[] = [];
          for (const operation of operations) {
            if (operation === 'reopen') {
              await log.close();
              log = await openLog({ segmentBytes: 600, durability: 'never' });
            } else {
              await log.append(batchOf(operation)).done;
              model.push(...operation);
            }
          }
          expect((await readAll(log)).map((r) => r.value)).toEqual(model);
          expect(log.logEndOffset).toBe(BigInt(model.length));
          await log.close();
        },
      ),
      { numRuns: process.env.CI === 'true' ? 60 : 15 },
    );
  });

  it('ignores stray temporary files and truncated index files', async () => {
    const log = await openLog({ durability: 'never' });
    for (let i = 0; i < 30; i++) await log.append(batchOf([`v${i}`])).done;
    await log.close();
    await writeFile(join(dir, `${segmentFileName(0n, 'index')}.tmp`), 'partial');
    await truncate(join(dir, segmentFileName(0n, 'index')), 3);
    const reopened = await openLog();
    expect(reopened.recovery.rebuiltIndexes).toBe(1);
    expect((await readAll(reopened)).length).toBe(30);
    expect((await readdir(dir)).some((f) => f.endsWith('.tmp'))).toBe(false);
    await reopened.close();
  });
});

describe('PartitionLog read-ahead', () => {
  /** Appends `count` one-record batches and returns each batch's byte position in the first segment. */
  async function fill(log: PartitionLog, count: number, from = 0): Promise<number[]> {
    const positions: number[] = [];
    let at = log.sizeBytes;
    for (let i = from; i < from + count; i++) {
      const batch = batchOf([`v${i}`]);
      positions.push(at);
      at += batch.length;
      await log.append(batch).done;
    }
    return positions;
  }

  /** One reader: reads from `offset` on, `maxBytes` at a time, until the high watermark. */
  async function* reader(log: PartitionLog, offset: bigint, maxBytes: number) {
    while (offset < log.highWatermark) {
      const result = await log.read(offset, maxBytes);
      for (const batch of splitBatches(result.data)) {
        for (const record of iterateRecords(batch, limits)) {
          if (record.offset >= offset) yield record.value!.toString();
        }
      }
      offset = result.nextOffset;
    }
  }

  it('serves concurrent sequential readers at different positions the bytes they ask for', async () => {
    const log = await openLog({ segmentBytes: 1 << 20, durability: 'never' });
    await fill(log, 300);
    const starts = [0n, 0n, 57n, 200n];
    const readers = starts.map((start) => reader(log, start, 300 + Number(start)));
    const seen: string[][] = starts.map(() => []);
    // Step all readers in turn, each read in flight together with the others' read-ahead.
    for (let live = readers.length; live > 0; ) {
      live = 0;
      const steps = await Promise.all(readers.map((r) => r.next()));
      steps.forEach((step, i) => {
        if (step.done) return;
        live++;
        seen[i]!.push(step.value);
      });
    }
    starts.forEach((start, i) => {
      expect(seen[i]).toEqual(Array.from({ length: 300 - Number(start) }, (_, k) => `v${Number(start) + k}`));
    });
    expect(log.readAheadStats.hits).toBeGreaterThan(20);
    await log.close();
  });

  it('still detects a corrupted batch in the middle of a segment when its bytes came by read-ahead', async () => {
    // Corrupt each of several consecutive batches in turn, so that the bad one is once the first
    // batch of a read-ahead chunk (the read fails) and otherwise further in (the read stops before
    // it and the next one fails).
    for (let bad = 60; bad < 68; bad++) {
      const log = await openLog({ segmentBytes: 1 << 20, durability: 'never' });
      const positions = await fill(log, 120);
      const file = await open(join(dir, segmentFileName(0n, 'log')), 'r+');
      const flipAt = positions[bad + 1]! - 3; // inside the last record of batch `bad`
      const byte = Buffer.alloc(1);
      await file.read(byte, 0, 1, flipAt);
      byte[0] = byte[0]! ^ 0x10;
      await file.write(byte, 0, 1, flipAt);
      await file.close();
      const served: string[] = [];
      await expect(
        (async () => {
          for await (const value of reader(log, 0n, 400)) served.push(value);
        })(),
      ).rejects.toMatchObject({ code: ErrorCode.CORRUPT_DATA });
      expect(served).toEqual(Array.from({ length: bad }, (_, k) => `v${k}`));
      expect(log.readAheadStats.hits).toBeGreaterThan(5);
      // Asked again, directly, the batch is still refused.
      await expect(log.read(BigInt(bad), 400)).rejects.toMatchObject({ code: ErrorCode.CORRUPT_DATA });
      await log.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('drops read-ahead of a segment that retention deletes, and reads on from the new start', async () => {
    const log = await openLog({ durability: 'never', retentionBytes: 2048 });
    await fill(log, 80);
    expect(log.segmentCount).toBeGreaterThan(4);
    // A reader part-way through the first segment, with its next chunk read ahead.
    let offset = 0n;
    for (let i = 0; i < 3; i++) offset = (await log.read(offset, 150)).nextOffset;
    expect(log.readAheadStats.entries).toBe(1);
    const inFlight = log.read(offset, 150); // may run while the segment is deleted
    expect(await log.applyRetention()).toBeGreaterThan(0);
    await inFlight.catch(() => undefined);
    expect(log.readAheadStats.entries).toBe(0);
    await expect(log.read(offset, 150)).rejects.toMatchObject({ code: ErrorCode.OFFSET_OUT_OF_RANGE });
    const start = Number(log.logStartOffset);
    const rest: string[] = [];
    for await (const value of reader(log, log.logStartOffset, 150)) rest.push(value);
    expect(rest).toEqual(Array.from({ length: 80 - start }, (_, k) => `v${start + k}`));
    await log.close();
  });

  it('serves a tailing reader the batches appended after its read-ahead started', async () => {
    const log = await openLog({ segmentBytes: 1 << 20, durability: 'always' });
    await fill(log, 20);
    let offset = 0n;
    const seen: string[] = [];
    for (let round = 1; round <= 5; round++) {
      // Read part of what is there (read-ahead then covers only bytes visible at that moment), then
      // append more before reading on.
      for (let i = 0; i < 3 && offset < log.highWatermark; i++) {
        const result = await log.read(offset, 200);
        for (const batch of splitBatches(result.data))
          for (const record of iterateRecords(batch, limits)) seen.push(record.value!.toString());
        offset = result.nextOffset;
      }
      await fill(log, 20, round * 20);
    }
    for await (const value of reader(log, offset, 200)) seen.push(value);
    expect(seen).toEqual(Array.from({ length: 120 }, (_, k) => `v${k}`));
    expect(log.readAheadStats.hits).toBeGreaterThan(0);
    await log.close();
  });

  it('keeps nothing stale across a reopen that truncates a torn tail', async () => {
    const log = await openLog({ segmentBytes: 1 << 20, durability: 'always' });
    await fill(log, 40);
    let offset = 0n;
    for (let i = 0; i < 4; i++) offset = (await log.read(offset, 200)).nextOffset;
    expect(log.readAheadStats.entries).toBe(1);
    await log.close();
    expect(log.readAheadStats.entries).toBe(0);
    const file = join(dir, segmentFileName(0n, 'log'));
    const torn = batchOf(['torn']);
    torn.writeBigInt64BE(40n, 0);
    await appendFile(file, torn.subarray(0, torn.length - 5));
    const reopened = await openLog({ segmentBytes: 1 << 20, durability: 'always' });
    expect(reopened.recovery.truncatedBytes).toBe(torn.length - 5);
    await fill(reopened, 10, 40);
    const values: string[] = [];
    for await (const value of reader(reopened, 0n, 200)) values.push(value);
    expect(values).toEqual(Array.from({ length: 50 }, (_, k) => `v${k}`));
    expect(reopened.readAheadStats.hits).toBeGreaterThan(0);
    await reopened.close();
  });
});
