// Log compaction (src/storage/log-cleaner.ts): what a cleaned log serves, against a list model, with
// real files. Crash states of compaction are in compaction-crash-states.test.ts.
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { encodeRecordBatch, iterateRecords, splitBatches } from '../../src/protocol/record-batch.js';
import { BATCH_OFFSETS, COMPRESSION_CODEC_MASK } from '../../src/protocol/record-batch-layout.js';
import { PartitionLog, type PartitionLogConfig } from '../../src/storage/partition-log.js';
import { parseSegmentFileName, segmentFileName } from '../../src/storage/segment.js';
import { useTempDir } from '../harness/temp-dir.js';

let dir: string;
const scratch = useTempDir('ms-compact-');
beforeEach(async () => {
  dir = scratch.path;
});

const T0 = 1_700_000_000_000;
const HOUR = 3600 * 1000;
const limits = { maxDecompressedBytes: 1 << 24 };

interface Rec {
  offset: bigint;
  key: string | null;
  value: string | null;
}

type Input = { key: string | null; value: string | null };

function batchOf(
  records: Input[],
  timestamp = T0,
  options: Parameters<typeof encodeRecordBatch>[1] = {},
): Buffer {
  return encodeRecordBatch(
    records.map((r) => ({ key: r.key, value: r.value, timestamp })),
    { baseTimestamp: timestamp, ...options },
  );
}

async function readAll(log: PartitionLog, from = log.logStartOffset): Promise<Rec[]> {
  const out: Rec[] = [];
  let offset = from;
  while (offset < log.highWatermark) {
    const result = await log.read(offset, 4096);
    for (const batch of splitBatches(result.data)) {
      for (const record of iterateRecords(batch, limits)) {
        if (record.offset >= offset)
          out.push({
            offset: record.offset,
            key: record.key?.toString() ?? null,
            value: record.value?.toString() ?? null,
          });
      }
    }
    expect(result.nextOffset).toBeGreaterThan(offset);
    offset = result.nextOffset;
  }
  return out;
}

async function openLog(config: Partial<PartitionLogConfig> = {}): Promise<PartitionLog> {
  return PartitionLog.open({ dir, config: { segmentBytes: 400, indexIntervalBytes: 64, ...config } });
}

async function appendAll(log: PartitionLog, batches: Buffer[]): Promise<void> {
  await Promise.all(batches.map((b) => log.append(b).done));
}

/** Base offset of the active segment: the largest segment file name in `where`. */
async function activeBase(where = dir): Promise<bigint> {
  const bases = (await readdir(where)).map(parseSegmentFileName).filter((b): b is bigint => b !== null);
  return bases.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).at(-1) ?? 0n;
}

describe('compaction', () => {
  it('keeps the latest record per key in sealed segments, keeps offsets, leaves the active segment', async () => {
    const log = await openLog();
    const batches: Buffer[] = [];
    for (let i = 0; i < 40; i++)
      batches.push(batchOf([{ key: `k${i % 4}`, value: `v${i}-${'x'.repeat(30)}` }]));
    await appendAll(log, batches);
    const before = await readAll(log);
    const end = log.logEndOffset;
    const active = await activeBase();
    const report = await log.compact({ now: T0 + HOUR });
    expect(report.segmentsCleaned).toBeGreaterThan(0);
    expect(report.recordsRemoved).toBeGreaterThan(0);
    expect(report.bytesAfter).toBeLessThan(report.bytesBefore);
    const after = await readAll(log);
    const latest = new Map<string, bigint>();
    for (const r of before) latest.set(r.key!, r.offset);
    const expected = before.filter((r) => r.offset >= active || latest.get(r.key!) === r.offset);
    expect(after).toEqual(expected);
    expect(log.logEndOffset).toBe(end);
    expect(log.logStartOffset).toBe(0n);
    // Reopen: same records, same end, appends go on at the end.
    await log.close();
    const reopened = await openLog();
    expect(await readAll(reopened)).toEqual(expected);
    expect(reopened.logEndOffset).toBe(end);
    expect(reopened.recovery.corruption).toBeNull();
    expect((await reopened.append(batchOf([{ key: 'k0', value: 'new' }])).done) && true).toBe(true);
    expect(reopened.logEndOffset).toBe(end + 1n);
    await reopened.close();
  });

  it('reads from a removed offset return the next record that exists', async () => {
    const log = await openLog();
    const batches: Buffer[] = [];
    for (let i = 0; i < 30; i++)
      batches.push(batchOf([{ key: `k${i % 3}`, value: `v${i}-${'y'.repeat(40)}` }]));
    await appendAll(log, batches);
    const before = await readAll(log);
    await log.compact({ now: T0 + HOUR });
    const after = await readAll(log);
    const present = new Set(after.map((r) => r.offset));
    const removed = before.filter((r) => !present.has(r.offset));
    expect(removed.length).toBeGreaterThan(0);
    for (const gone of removed) {
      const next = after.find((r) => r.offset > gone.offset)!;
      const [first] = await readAll(log, gone.offset);
      expect(first).toEqual(next);
    }
    await log.close();
  });

  it('keeps tombstones until deleteRetentionMs after their timestamp, then drops them', async () => {
    const log = await openLog();
    await appendAll(log, [
      batchOf([{ key: 'a', value: `a1-${'z'.repeat(100)}` }], T0),
      batchOf([{ key: 'b', value: `b1-${'z'.repeat(100)}` }], T0),
      batchOf([{ key: 'a', value: null }], T0 + 1000),
      batchOf([{ key: 'c', value: `c1-${'z'.repeat(300)}` }], T0 + 2000),
      batchOf([{ key: 'd', value: `d1-${'z'.repeat(300)}` }], T0 + 3000),
    ]);
    const tombstoneAt = 2n;
    await log.compact({ now: T0 + 10_000, deleteRetentionMs: 60_000 });
    let records = await readAll(log);
    expect(records.map((r) => r.key)).toEqual(['b', 'a', 'c', 'd']);
    expect(records[1]).toEqual({ offset: tombstoneAt, key: 'a', value: null });
    const report = await log.compact({ now: T0 + 1000 + 60_000, deleteRetentionMs: 60_000 });
    expect(report.tombstonesRemoved).toBe(1);
    records = await readAll(log);
    expect(records.map((r) => r.key)).toEqual(['b', 'c', 'd']);
    await log.close();
  });

  it('does not clean segments newer than minCompactionLagMs', async () => {
    const log = await openLog();
    const batches: Buffer[] = [];
    for (let i = 0; i < 20; i++)
      batches.push(batchOf([{ key: 'same', value: `v${i}-${'q'.repeat(60)}` }], T0 + i * 1000));
    await appendAll(log, batches);
    const before = await readAll(log);
    const idle = await log.compact({ now: T0 + 20_000, minCompactionLagMs: HOUR });
    expect(idle.segmentsCleaned).toBe(0);
    expect(await readAll(log)).toEqual(before);
    const ran = await log.compact({ now: T0 + 20_000 + HOUR });
    expect(ran.segmentsCleaned).toBeGreaterThan(0);
    await log.close();
  });

  it('rebuilds compressed batches with their codec and keeps record offsets with gaps', async () => {
    const log = await openLog({ segmentBytes: 300 });
    const batches: Buffer[] = [];
    for (let i = 0; i < 12; i++)
      batches.push(
        batchOf(
          [
            { key: 'hot', value: `h${i}-${'g'.repeat(200)}` },
            { key: `cold${i}`, value: `c${i}-${'g'.repeat(200)}` },
            { key: 'hot2', value: `j${i}-${'g'.repeat(200)}` },
          ],
          T0,
          { compression: 'gzip' },
        ),
      );
    await appendAll(log, batches);
    await log.compact({ now: T0 + HOUR });
    const result = await log.read(0n, 1 << 20);
    const [first] = [...splitBatches(result.data)];
    expect(first!.readInt16BE(BATCH_OFFSETS.attributes) & COMPRESSION_CODEC_MASK).toBe(1);
    // Batch 0 kept only its cold record (offset 1): count 1, lastOffsetDelta still 2.
    expect(first!.readInt32BE(BATCH_OFFSETS.recordCount)).toBe(1);
    expect(first!.readInt32BE(BATCH_OFFSETS.lastOffsetDelta)).toBe(2);
    expect([...iterateRecords(first!, limits)].map((r) => r.offset)).toEqual([1n]);
    await log.close();
  });

  it('keeps an idempotent producer last batch, emptied, for the producer state', async () => {
    const log = await openLog();
    const producer = { producerId: 7n, producerEpoch: 0 };
    await appendAll(log, [
      batchOf([{ key: 'p', value: `p0-${'w'.repeat(150)}` }], T0, { ...producer, baseSequence: 0 }),
      batchOf([{ key: 'p', value: `p1-${'w'.repeat(150)}` }], T0, { ...producer, baseSequence: 1 }),
      batchOf([{ key: 'p', value: `p2-${'w'.repeat(350)}` }], T0, { baseSequence: -1 }),
      batchOf([{ key: 'x', value: `x-${'w'.repeat(350)}` }], T0),
    ]);
    await log.compact({ now: T0 + HOUR });
    const batches = [...splitBatches((await log.read(0n, 1 << 20)).data)];
    const ofProducer = batches.filter((b) => b.readBigInt64BE(BATCH_OFFSETS.producerId) === 7n);
    expect(ofProducer.map((b) => b.readInt32BE(BATCH_OFFSETS.baseSequence))).toEqual([1]);
    expect(ofProducer[0]!.readInt32BE(BATCH_OFFSETS.recordCount)).toBe(0);
    await log.close();
    const reopened = await openLog();
    expect((await readAll(reopened)).map((r) => r.value?.slice(0, 2))).toEqual(['p2', 'x-']);
    await reopened.close();
  });

  it('cleans in several passes when the offset map is small, with the same result', async () => {
    const make = (): Buffer[] =>
      Array.from({ length: 60 }, (_, i) =>
        batchOf([{ key: `k${(i * 7) % 11}`, value: `v${i}-${'m'.repeat(25)}` }]),
      );
    // The active segment holds only a key of its own: both runs see every superseding record.
    const tail = batchOf([{ key: 'tail', value: 't'.repeat(500) }]);
    const log = await openLog();
    await appendAll(log, make());
    await appendAll(log, [Buffer.from(tail)]);
    const report = await log.compact({ now: T0 + HOUR, maxMapEntries: 3 });
    expect(report.passes).toBeGreaterThan(1);
    const small = await readAll(log);
    await log.close();
    await rm(dir, { recursive: true, force: true });
    const full = await openLog();
    await appendAll(full, make());
    await appendAll(full, [Buffer.from(tail)]);
    await full.compact({ now: T0 + HOUR });
    expect(small).toEqual(await readAll(full));
    await full.close();
  });

  it('serves reads and takes appends while it cleans', async () => {
    const log = await openLog();
    const batches: Buffer[] = [];
    for (let i = 0; i < 80; i++)
      batches.push(batchOf([{ key: `k${i % 5}`, value: `v${i}-${'r'.repeat(30)}` }]));
    await appendAll(log, batches);
    const before = new Map((await readAll(log)).map((r) => [r.offset, r]));
    const compaction = log.compact({ now: T0 + HOUR });
    const reads: Promise<Rec[]>[] = [];
    const appends: Promise<unknown>[] = [];
    for (let i = 0; i < 30; i++) {
      reads.push(readAll(log, BigInt(i * 2)));
      appends.push(log.append(batchOf([{ key: `k${i % 5}`, value: `late${i}` }])).done);
    }
    await compaction;
    await Promise.all(appends);
    for (const records of await Promise.all(reads)) {
      for (const r of records) if (before.has(r.offset)) expect(r).toEqual(before.get(r.offset));
    }
    expect((await readAll(log)).filter((r) => r.value?.startsWith('late')).length).toBe(30);
    await log.close();
  });

  it('tells listeners before the swap (derived files) and after it', async () => {
    const log = await openLog();
    const batches: Buffer[] = [];
    for (let i = 0; i < 20; i++) batches.push(batchOf([{ key: 'one', value: `v${i}-${'l'.repeat(40)}` }]));
    await appendAll(log, batches);
    const events: string[] = [];
    log.onSegmentReplaced(async ({ baseOffset, phase }) => {
      const names = await readdir(dir);
      const cleaned = names.includes(`${segmentFileName(baseOffset, 'log')}.cleaned`);
      events.push(`${phase}${cleaned ? ' (cleaned file written)' : ''}`);
    });
    await log.compact({ now: T0 + HOUR });
    expect(events[0]).toBe('replacing (cleaned file written)');
    expect(events).toContain('replaced');
    expect(events).toContain('removed');
    await log.close();
  });

  it('recovery deletes leftover cleaned files and orphan indexes', async () => {
    const log = await openLog();
    const batches: Buffer[] = [];
    for (let i = 0; i < 20; i++) batches.push(batchOf([{ key: `k${i}`, value: `v${i}-${'o'.repeat(40)}` }]));
    await appendAll(log, batches);
    const expected = await readAll(log);
    await log.close();
    await writeFile(join(dir, `${segmentFileName(0n, 'log')}.cleaned`), Buffer.from('half written'));
    await writeFile(join(dir, segmentFileName(999n, 'index')), Buffer.alloc(16));
    const reopened = await openLog();
    expect(await readAll(reopened)).toEqual(expected);
    const names = await readdir(dir);
    expect(names.some((n) => n.endsWith('.cleaned'))).toBe(false);
    expect(names).not.toContain(segmentFileName(999n, 'index'));
    await reopened.close();
  });
});

// The model: the list of appended records, minus those compaction removed (a record in a sealed
// segment — below the active segment's base at that moment — superseded by a later record of its
// key, or a tombstone that is its key's latest record and older than deleteRetentionMs), minus
// those below the log start offset after retention.
type Op =
  | { kind: 'append'; records: Input[] }
  | { kind: 'compact'; deleteRetentionMs: number }
  | { kind: 'retention' }
  | { kind: 'reopen' }
  | { kind: 'read'; at: number };

const keyArb = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('a', 'b', 'c', 'd', 'e') },
  { weight: 1, arbitrary: fc.constant(null) },
);
const valueArb = fc.oneof(
  { weight: 5, arbitrary: fc.string({ maxLength: 80 }) },
  { weight: 1, arbitrary: fc.constant(null) },
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .array(fc.record({ key: keyArb, value: valueArb }), { minLength: 1, maxLength: 4 })
      .map((records) => ({ kind: 'append' as const, records })),
  },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(0, 5_000, HOUR)
      .map((d) => ({ kind: 'compact' as const, deleteRetentionMs: d })),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'retention' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
  { weight: 2, arbitrary: fc.nat(200).map((at) => ({ kind: 'read' as const, at })) },
);

describe('compaction model', () => {
  it('append, read, roll, retention, compaction and reopen agree with a list model', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40 }), async (ops) => {
        const runDir = join(dir, `run-${run++}`);
        const config = { segmentBytes: 300, indexIntervalBytes: 64, retentionMs: 8_000 };
        let log = await PartitionLog.open({ dir: runDir, config });
        const model: (Rec & { timestamp: number })[] = [];
        let removed = new Set<bigint>();
        let step = 0;
        const visible = () => model.filter((r) => !removed.has(r.offset) && r.offset >= log.logStartOffset);
        try {
          for (const op of ops) {
            step++;
            const now = T0 + step * 1000;
            if (op.kind === 'append') {
              const ticket = log.append(batchOf(op.records, now));
              op.records.forEach((r, i) => {
                model.push({ offset: ticket.baseOffset + BigInt(i), ...r, timestamp: now });
              });
              await ticket.done;
            } else if (op.kind === 'compact') {
              const active = await activeBase(runDir);
              await log.compact({ now, deleteRetentionMs: op.deleteRetentionMs });
              const latest = new Map<string, bigint>();
              for (const r of model) if (r.key !== null) latest.set(r.key, r.offset);
              removed = new Set(removed);
              for (const r of model) {
                if (r.offset >= active || r.key === null) continue;
                const superseded = latest.get(r.key)! > r.offset;
                const expired = r.value === null && r.timestamp <= now - op.deleteRetentionMs;
                if (superseded || expired) removed.add(r.offset);
              }
            } else if (op.kind === 'retention') {
              const start = log.logStartOffset;
              await log.applyRetention(now);
              expect(log.logStartOffset).toBeGreaterThanOrEqual(start);
            } else if (op.kind === 'reopen') {
              await log.close();
              log = await PartitionLog.open({ dir: runDir, config });
              expect(log.recovery.corruption).toBeNull();
            } else {
              const from =
                log.logStartOffset + (BigInt(op.at) % (log.logEndOffset - log.logStartOffset + 1n));
              const [first] = await readAll(log, from);
              const next = visible().find((r) => r.offset >= from);
              expect(first).toEqual(
                next === undefined ? undefined : { offset: next.offset, key: next.key, value: next.value },
              );
            }
            expect(log.logEndOffset).toBe(model.length === 0 ? 0n : model.at(-1)!.offset + 1n);
          }
          expect(await readAll(log)).toEqual(
            visible().map(({ offset, key, value }) => ({ offset, key, value })),
          );
        } finally {
          await log.close();
          await rm(runDir, { recursive: true, force: true });
        }
      }),
      { numRuns: 100 },
    );
  });
});
