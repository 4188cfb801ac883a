// Producer-state snapshots (docs/producer-snapshots.md): the file format (round trip, every
// corruption and truncation rejected), the table's export/load rules (epochs, eviction, retention),
// and through the broker's Partition on real files: an open from a snapshot builds the same
// producer table and gives the same idempotence answers as a full replay — after clean closes,
// crashes, corrupt or stale snapshot files, retention and compaction — and replays only from it.
import { cp, open, readdir, readFile, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Partition } from '../../../src/broker/partitions/partition.js';
import {
  decodeSnapshot,
  encodeSnapshot,
  listSnapshots,
  type ProducerSnapshot,
  parseSnapshotFileName,
  snapshotFileName,
} from '../../../src/broker/producers/producer-snapshot.js';
import {
  type ProducerBatchInfo,
  ProducerStateTable,
  RETAINED_BATCHES,
} from '../../../src/broker/producers/producer-state.js';
import { crc32c } from '../../../src/protocol/crc32c.js';
import { ErrorCode } from '../../../src/protocol/error-codes.js';
import { encodeRecordBatch } from '../../../src/protocol/record-batch.js';
import { PartitionLog, type PartitionLogConfig } from '../../../src/storage/partition-log.js';
import { tempDir } from '../../harness/temp-dir.js';

const LIMITS = { maxBatchBytes: 1 << 20, maxDecompressedBytes: 1 << 24 };
const SMALL_SEGMENTS: Partial<PartitionLogConfig> = {
  segmentBytes: 500,
  indexIntervalBytes: 128,
  durability: 'never',
};

function openPartition(
  dir: string,
  config: Partial<PartitionLogConfig> = SMALL_SEGMENTS,
): Promise<Partition> {
  return Partition.open({ topic: 't', index: 0, dir, config, limits: LIMITS });
}

function producerBatch(
  producerId: bigint,
  epoch: number,
  baseSequence: number,
  records: number,
  key = 'k',
): Buffer {
  const values = Array.from({ length: records }, (_, i) => ({
    key,
    value: `v${baseSequence + i}-${'x'.repeat(20)}`,
  }));
  return encodeRecordBatch(values, { producerId, producerEpoch: epoch, baseSequence });
}

/** The producer table a full replay builds: the same directory copied, without its snapshots, opened. */
async function fullReplayOf(dir: string, config: Partial<PartitionLogConfig> = SMALL_SEGMENTS) {
  const copy = await tempDir('ms-producer-snapshots-');
  await cp(dir, copy, { recursive: true });
  for (const name of await readdir(copy)) {
    if (name.includes('.producers')) await unlink(join(copy, name));
  }
  const partition = await openPartition(copy, config);
  expect(partition.producerRecovery.snapshotOffset).toBeNull();
  return partition;
}

type Answer = { kind: 'append' } | { kind: 'duplicate'; batch: unknown } | { error: number | undefined };
function answer(table: ProducerStateTable, info: ProducerBatchInfo): Answer {
  try {
    return table.check(info);
  } catch (error) {
    return { error: (error as { code?: number }).code };
  }
}

/** Idempotence answers for probes around every producer's state: retries, gaps, epochs. */
function probes(table: ProducerStateTable, ids: readonly bigint[]): Answer[] {
  const answers: Answer[] = [];
  const entries = new Map(table.exportState().map((e) => [e.producerId, e]));
  for (const producerId of ids) {
    const entry = entries.get(producerId);
    const epoch = entry?.epoch ?? 0;
    const last = entry?.batches.at(-1)?.lastSequence ?? -1;
    for (let sequence = Math.max(0, last - 12); sequence <= last + 3; sequence++) {
      for (const recordCount of [1, 2, 3]) {
        answers.push(
          answer(table, { producerId, producerEpoch: epoch, baseSequence: sequence, recordCount }),
        );
      }
    }
    answers.push(answer(table, { producerId, producerEpoch: epoch + 1, baseSequence: 0, recordCount: 1 }));
    answers.push(answer(table, { producerId, producerEpoch: epoch + 1, baseSequence: 1, recordCount: 1 }));
    if (epoch > 0)
      answers.push(answer(table, { producerId, producerEpoch: epoch - 1, baseSequence: 0, recordCount: 1 }));
  }
  return answers;
}

async function expectSameAsFullReplay(
  partition: Partition,
  dir: string,
  config = SMALL_SEGMENTS,
): Promise<void> {
  const reference = await fullReplayOf(dir, config);
  try {
    expect(partition.producers.exportState()).toEqual(reference.producers.exportState());
    const ids = [0n, 1n, 2n, 3n, 9n];
    expect(probes(partition.producers, ids)).toEqual(probes(reference.producers, ids));
  } finally {
    await reference.close();
  }
}

const sampleSnapshot: ProducerSnapshot = {
  offset: 1000n,
  entries: [
    {
      producerId: 0n,
      epoch: 0,
      batches: [{ baseSequence: 0, lastSequence: 2, baseOffset: 5n, lastOffset: 7n }],
    },
    {
      producerId: 42n,
      epoch: 32767,
      batches: [
        { baseSequence: 0x7ffffffe, lastSequence: 0x7fffffff, baseOffset: 100n, lastOffset: 101n },
        { baseSequence: 0, lastSequence: 0, baseOffset: 102n, lastOffset: 102n },
        { baseSequence: 1, lastSequence: 5, baseOffset: 300n, lastOffset: 304n },
      ],
    },
    {
      producerId: 0x7fffffffffffffffn,
      epoch: 3,
      batches: Array.from({ length: RETAINED_BATCHES }, (_, i) => ({
        baseSequence: i,
        lastSequence: i,
        baseOffset: 900n + BigInt(i),
        lastOffset: 900n + BigInt(i),
      })),
    },
  ],
};

describe('producer snapshot format', () => {
  it('round-trips, empty tables included, and names files by offset', () => {
    const bytes = encodeSnapshot(sampleSnapshot);
    expect(decodeSnapshot(bytes)).toEqual(sampleSnapshot);
    expect(decodeSnapshot(encodeSnapshot({ offset: 0n, entries: [] }))).toEqual({ offset: 0n, entries: [] });
    expect(snapshotFileName(1234n)).toBe('00000000000000001234.producers');
    expect(parseSnapshotFileName('00000000000000001234.producers')).toBe(1234n);
    expect(parseSnapshotFileName('00000000000000001234.producers.tmp')).toBeNull();
    expect(parseSnapshotFileName('00000000000000001234.log')).toBeNull();
  });

  it('rejects every single-byte corruption and every truncation', () => {
    const bytes = encodeSnapshot(sampleSnapshot);
    for (let i = 0; i < bytes.length; i++) {
      for (const flip of [0x01, 0x80, 0xff]) {
        const corrupt = Buffer.from(bytes);
        corrupt[i] = corrupt[i]! ^ flip;
        expect(decodeSnapshot(corrupt), `byte ${i} ^ ${flip}`).toBeNull();
      }
    }
    for (let length = 0; length < bytes.length; length++) {
      expect(decodeSnapshot(bytes.subarray(0, length)), `length ${length}`).toBeNull();
    }
    expect(decodeSnapshot(Buffer.concat([bytes, Buffer.alloc(1)]))).toBeNull();
  });

  it('rejects well-checksummed files whose fields are inconsistent, without trusting their counts', () => {
    const reseal = (mutate: (b: Buffer) => void): Buffer => {
      const b = Buffer.from(encodeSnapshot(sampleSnapshot));
      mutate(b);
      // Recompute the CRC the way the encoder does, so only the field checks can reject it.
      b.writeUInt32BE(crc32c(b.subarray(0, b.length - 4)), b.length - 4);
      return b;
    };
    expect(decodeSnapshot(reseal(() => undefined))).toEqual(sampleSnapshot);
    expect(decodeSnapshot(reseal((b) => b.writeUInt32BE(0xffffffff, 14)))).toBeNull(); // huge count
    expect(decodeSnapshot(reseal((b) => b.writeUInt32BE(2, 14)))).toBeNull(); // trailing bytes
    expect(decodeSnapshot(reseal((b) => b.writeBigUInt64BE(7n, 6)))).toBeNull(); // batches past offset
    expect(decodeSnapshot(reseal((b) => b.writeUInt8(0, 18 + 10)))).toBeNull(); // no batches
    expect(decodeSnapshot(reseal((b) => b.writeUInt8(6, 18 + 10)))).toBeNull(); // too many batches
    expect(decodeSnapshot(reseal((b) => b.writeInt16BE(-1, 18 + 8)))).toBeNull(); // negative epoch
    expect(decodeSnapshot(reseal((b) => b.writeBigInt64BE(50n, 18)))).toBeNull(); // ids out of order
  });
});

describe('ProducerStateTable export and load', () => {
  const info = (producerId: bigint, producerEpoch: number, baseSequence: number): ProducerBatchInfo => ({
    producerId,
    producerEpoch,
    baseSequence,
    recordCount: 1,
  });

  it('exports a copy sorted by producer id, which the table does not share', () => {
    const table = new ProducerStateTable();
    table.record(info(2n, 0, 0), 25n, 25n);
    for (let i = 0; i < 3; i++) table.record(info(1n, 0, i), BigInt(i * 10), BigInt(i * 10));
    const exported = table.exportState();
    expect(exported.map((e) => [e.producerId, e.batches.length])).toEqual([
      [1n, 3],
      [2n, 1],
    ]);
    expect(exported[0]!.batches[0]).toEqual({
      baseSequence: 0,
      lastSequence: 0,
      baseOffset: 0n,
      lastOffset: 0n,
    });
    exported[0]!.batches[0]!.lastOffset = 99n;
    exported[0]!.batches.pop();
    expect(table.exportState()[0]!.batches).toHaveLength(3);
    expect(table.exportState()[0]!.batches[0]!.lastOffset).toBe(0n);
  });

  it('snapshot then replay equals the full replay across an epoch bump and evictions', () => {
    // Producer 1: 7 batches in epoch 0 (two evicted), then epoch 1 after the snapshot offset.
    // Producer 2: 3 batches before the snapshot, 4 after: eviction spans the snapshot.
    const log: { info: ProducerBatchInfo; offset: bigint }[] = [];
    let offset = 0n;
    for (let i = 0; i < 7; i++) log.push({ info: info(1n, 0, i), offset: offset++ });
    for (let i = 0; i < 3; i++) log.push({ info: info(2n, 0, i), offset: offset++ });
    const snapshotOffset = offset;
    for (let i = 0; i < 2; i++) log.push({ info: info(1n, 1, i), offset: offset++ });
    for (let i = 3; i < 7; i++) log.push({ info: info(2n, 0, i), offset: offset++ });
    const full = new ProducerStateTable();
    const before = new ProducerStateTable();
    for (const { info: i, offset: o } of log) {
      full.record(i, o, o);
      if (o < snapshotOffset) before.record(i, o, o);
    }
    const fromSnapshot = new ProducerStateTable();
    fromSnapshot.loadState(
      decodeSnapshot(encodeSnapshot({ offset: snapshotOffset, entries: before.exportState() }))!.entries,
    );
    for (const { info: i, offset: o } of log) if (o >= snapshotOffset) fromSnapshot.record(i, o, o);
    expect(fromSnapshot.exportState()).toEqual(full.exportState());
    // No epoch-0 batch survived under epoch 1: an epoch-1 retry of sequence 0 is the epoch-1 batch.
    expect(fromSnapshot.check(info(1n, 1, 0))).toEqual({
      kind: 'duplicate',
      batch: { baseSequence: 0, lastSequence: 0, baseOffset: 10n, lastOffset: 10n },
    });
    expect(fromSnapshot.check(info(1n, 1, 2)).kind).toBe('append');
  });

  it('drops loaded batches below the log start, as a replay from there would', () => {
    const table = new ProducerStateTable();
    for (let i = 0; i < 4; i++) table.record(info(1n, 0, i), BigInt(i), BigInt(i));
    table.record(info(2n, 0, 0), 1n, 1n);
    const loaded = new ProducerStateTable();
    loaded.loadState(table.exportState(), 2n);
    expect(loaded.exportState()).toEqual([
      {
        producerId: 1n,
        epoch: 0,
        batches: [
          { baseSequence: 2, lastSequence: 2, baseOffset: 2n, lastOffset: 2n },
          { baseSequence: 3, lastSequence: 3, baseOffset: 3n, lastOffset: 3n },
        ],
      },
    ]);
  });
});

/** Produces a few idempotent batches from producers 1 and 2 (and a non-idempotent one). */
async function fill(partition: Partition, batches: number, start = 0): Promise<void> {
  for (let i = start; i < start + batches; i++) {
    await partition.produce({ batch: producerBatch(1n, 0, i * 2, 2), acks: 1 });
    if (i % 3 === 0) await partition.produce({ batch: producerBatch(2n, 0, i / 3, 1), acks: 1 });
    if (i % 4 === 0) await partition.produce({ batch: producerBatch(-1n, -1, -1, 1), acks: 1 });
  }
}

describe('producer snapshots through the partition', () => {
  it('PartitionLog.onRoll reports each new segment base, after the sealed segment is complete', async () => {
    const dir = await tempDir('ms-producer-snapshots-');
    const log = await PartitionLog.open({ dir, config: SMALL_SEGMENTS });
    const rolls: bigint[] = [];
    log.onRoll((sealedNextOffset) => rolls.push(sealedNextOffset));
    log.onRoll(() => {
      throw new Error('a failing listener does not fail the roll');
    });
    for (let i = 0; i < 20; i++) await log.append(producerBatch(-1n, -1, -1, 3)).done;
    const bases = (await readdir(dir))
      .filter((n) => n.endsWith('.log'))
      .map((n) => BigInt(n.slice(0, 20)))
      .sort((a, b) => (a < b ? -1 : 1));
    expect(rolls.length).toBeGreaterThan(1);
    expect(rolls).toEqual(bases.slice(1));
    await log.close();
  });

  it('a snapshot write cut short by a crash leaves a .tmp file the open removes', async () => {
    const dir = await tempDir('ms-producer-snapshots-');
    const partition = await openPartition(dir);
    await fill(partition, 10);
    await partition.close();
    const tmp = join(dir, `${snapshotFileName(partition.log.logEndOffset + 5n)}.tmp`);
    await writeFile(tmp, Buffer.from('half a snapshot'));
    const reopened = await openPartition(dir);
    expect(reopened.producerRecovery.snapshotOffset).toBe(reopened.log.logEndOffset);
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    await reopened.close();
  });

  it('writes snapshots at rolls and at close, keeps a few, and a clean reopen replays nothing', async () => {
    const dir = await tempDir('ms-producer-snapshots-');
    const partition = await openPartition(dir);
    await fill(partition, 40);
    await partition.snapshotsWritten();
    const whileOpen = await listSnapshots(dir);
    expect(whileOpen.length).toBeGreaterThan(0);
    expect(whileOpen.length).toBeLessThanOrEqual(3);
    const before = partition.producers.exportState();
    await partition.close();
    expect((await listSnapshots(dir))[0]).toBe(partition.log.logEndOffset);
    const reopened = await openPartition(dir);
    expect(reopened.producerRecovery).toMatchObject({
      snapshotOffset: reopened.log.logEndOffset,
      replayedBatches: 0,
      replayedBytes: 0,
    });
    expect(reopened.producers.exportState()).toEqual(before);
    await expectSameAsFullReplay(reopened, dir);
    // A retry after the restart gets its original offsets.
    const retry = await reopened.produce({ batch: producerBatch(1n, 0, 78, 2), acks: 1 });
    expect(retry.duplicate).toBe(true);
    expect(retry.baseOffset).toBe(before.find((e) => e.producerId === 1n)!.batches.at(-1)!.baseOffset);
    await reopened.close();
  });

  it('never reads the log below the snapshot: a corrupt early segment is not touched', async () => {
    const dir = await tempDir('ms-producer-snapshots-');
    const partition = await openPartition(dir);
    await fill(partition, 30);
    const expected = partition.producers.exportState();
    await partition.close();
    // One byte of the first batch's last record changes: its CRC no longer matches. Recovery trusts
    // sealed segments through their indexes, so only a read of that batch can notice.
    const first = join(dir, '00000000000000000000.log');
    const length = 12 + (await readFile(first)).readInt32BE(8);
    const handle = await open(first, 'r+');
    await handle.write(Buffer.from([0x5a]), 0, 1, length - 1);
    await handle.close();
    const reopened = await openPartition(dir);
    expect(reopened.producers.exportState()).toEqual(expected);
    await reopened.close();
    // Control: without snapshots the open replays the first segment and stops at the corruption.
    for (const offset of await listSnapshots(dir)) await unlink(join(dir, snapshotFileName(offset)));
    await expect(openPartition(dir)).rejects.toMatchObject({ code: ErrorCode.CORRUPT_DATA });
  });

  it('ignores every corrupt or truncated variant of the snapshot and falls back to a full replay', async () => {
    const dir = await tempDir('ms-producer-snapshots-');
    const config = { ...SMALL_SEGMENTS, segmentBytes: 1 << 20 }; // no roll: the close writes the only snapshot
    const partition = await openPartition(dir, config);
    await fill(partition, 12);
    await partition.close();
    const [offset] = await listSnapshots(dir);
    const path = join(dir, snapshotFileName(offset!));
    const good = await readFile(path);
    const reference = await fullReplayOf(dir, config);
    const expected = reference.producers.exportState();
    await reference.close();
    const variants: Buffer[] = [];
    for (let i = 0; i < good.length; i++) {
      const corrupt = Buffer.from(good);
      corrupt[i] = corrupt[i]! ^ (1 << (i % 8));
      variants.push(corrupt);
    }
    for (let length = 0; length < good.length; length += 7) variants.push(good.subarray(0, length));
    for (const variant of variants) {
      await writeFile(path, variant);
      const reopened = await openPartition(dir, config);
      expect(reopened.producerRecovery.snapshotOffset).toBeNull();
      expect(reopened.producers.exportState()).toEqual(expected);
      // Closed without writing a new snapshot, so the next variant is the only snapshot again.
      await reopened.log.close();
    }
  });

  it('ignores and deletes a snapshot past the recovered log end (its data was lost)', async () => {
    const dir = await tempDir('ms-producer-snapshots-');
    const config = { ...SMALL_SEGMENTS, segmentBytes: 1 << 20 }; // no roll: the close writes the only snapshot
    const partition = await openPartition(dir, config);
    await fill(partition, 20);
    await partition.close();
    const end = partition.log.logEndOffset;
    expect(await listSnapshots(dir)).toEqual([end]);
    // A power loss took the tail the snapshot describes: the segment loses its last batches.
    const last = join(dir, '00000000000000000000.log');
    await truncate(last, (await stat(last)).size - 100);
    const reopened = await openPartition(dir, config);
    expect(reopened.log.logEndOffset).toBeLessThan(end);
    expect(reopened.producerRecovery.snapshotOffset).toBeNull();
    expect(await listSnapshots(dir)).toEqual([]);
    await expectSameAsFullReplay(reopened, dir, config);
    // Other batches take the lost offsets and go past the old end; then a crash (no close, so no
    // new snapshot). Had the stale snapshot stayed, this open would start from it and be wrong.
    for (let i = 0; i < 10; i++) await reopened.produce({ batch: producerBatch(3n, 0, i * 2, 2), acks: 1 });
    expect(reopened.log.logEndOffset).toBeGreaterThan(end);
    const afterCrash = await openPartition(dir, config);
    expect(afterCrash.producerRecovery.snapshotOffset).toBeNull();
    await expectSameAsFullReplay(afterCrash, dir, config);
    await afterCrash.close();
    await reopened.log.close();
  });

  it('after retention, the snapshot forgets batches of deleted segments like a replay does', async () => {
    const dir = await tempDir('ms-producer-snapshots-');
    const config = { ...SMALL_SEGMENTS, retentionMs: 0 };
    const partition = await openPartition(dir, config);
    await fill(partition, 30);
    await partition.close();
    const reopened = await openPartition(dir, config);
    await reopened.log.applyRetention(Date.now() + 1000);
    expect(reopened.log.logStartOffset).toBeGreaterThan(0n);
    await reopened.log.close(); // the snapshot at the log end stays, older than the retention
    const again = await openPartition(dir, config);
    expect(again.producerRecovery.snapshotOffset).toBe(again.log.logEndOffset);
    await expectSameAsFullReplay(again, dir, config);
    await again.close();
  });

  it('after compaction, snapshot and replay equal the full replay of the compacted log', async () => {
    const dir = await tempDir('ms-producer-snapshots-');
    const partition = await openPartition(dir);
    // Few keys: compaction drops most batches, emptying some producers' earlier batches.
    for (let i = 0; i < 30; i++) {
      await partition.produce({ batch: producerBatch(1n, 0, i, 1, `k${i % 2}`), acks: 1 });
      if (i % 2 === 0)
        await partition.produce({ batch: producerBatch(2n, 0, i / 2, 1, `k${i % 3}`), acks: 1 });
    }
    await partition.snapshotsWritten();
    expect((await listSnapshots(dir)).length).toBeGreaterThan(0);
    const report = await partition.log.compact();
    expect(report.recordsRemoved).toBeGreaterThan(0);
    // Snapshots taken from the uncompacted table are gone, and none is written until a reopen.
    await partition.snapshotsWritten();
    for (const offset of await listSnapshots(dir))
      expect(offset).toBeLessThanOrEqual(partition.log.logStartOffset);
    for (let i = 30; i < 40; i++)
      await partition.produce({ batch: producerBatch(1n, 0, i, 1, `k${i % 2}`), acks: 1 });
    await partition.close();
    const reopened = await openPartition(dir);
    await expectSameAsFullReplay(reopened, dir);
    await reopened.close();
    // The next clean close writes a snapshot of the compacted log's table again.
    const third = await openPartition(dir);
    expect(third.producerRecovery.snapshotOffset).toBe(third.log.logEndOffset);
    await expectSameAsFullReplay(third, dir);
    await third.close();
  });
});

type Command =
  | { t: 'send'; p: number; n: number }
  | { t: 'retry'; p: number; back: number }
  | { t: 'gap'; p: number }
  | { t: 'bump'; p: number }
  | { t: 'plain' }
  | { t: 'restart'; crash: boolean; tear: number };

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      t: fc.constant('send' as const),
      p: fc.integer({ min: 1, max: 3 }),
      n: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('retry' as const),
      p: fc.integer({ min: 1, max: 3 }),
      back: fc.integer({ min: 0, max: 7 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('gap' as const), p: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('bump' as const), p: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'plain' as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('restart' as const),
      crash: fc.boolean(),
      tear: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 300 })),
    }),
  },
);

interface SentBatch {
  epoch: number;
  baseSequence: number;
  n: number;
  baseOffset: bigint;
  lastOffset: bigint;
}

describe('producer snapshots, property', () => {
  it('open from snapshots = full replay, across rolls, epochs, retries, clean and crash restarts', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(commandArb, { minLength: 5, maxLength: 45 }), async (commands) => {
        const dir = await tempDir('ms-producer-snapshots-');
        const abandoned: Partition[] = [];
        let partition = await openPartition(dir);
        const producers = new Map<number, { epoch: number; next: number; sent: SentBatch[] }>();
        try {
          for (const command of commands) {
            if (command.t === 'restart') {
              await partition.snapshotsWritten();
              if (command.crash) abandoned.push(partition);
              else await partition.close();
              if (command.crash && command.tear > 0) {
                // A power loss: the unsynced tail of the last segment is gone (snapshots may describe it).
                const last = join(
                  dir,
                  (await readdir(dir))
                    .filter((n) => n.endsWith('.log'))
                    .sort()
                    .at(-1)!,
                );
                await truncate(last, Math.max(0, (await stat(last)).size - command.tear));
              }
              partition = await openPartition(dir);
              if (command.crash && command.tear > 0) {
                // What the producers sent may be partly lost: the model continues from the table.
                producers.clear();
                for (const entry of partition.producers.exportState()) {
                  const sent = entry.batches.map((b) => ({
                    epoch: entry.epoch,
                    baseSequence: b.baseSequence,
                    n: b.lastSequence - b.baseSequence + 1,
                    baseOffset: b.baseOffset,
                    lastOffset: b.lastOffset,
                  }));
                  producers.set(Number(entry.producerId), {
                    epoch: entry.epoch,
                    next: entry.batches.at(-1)!.lastSequence + 1,
                    sent,
                  });
                }
              }
              // A clean close saved the table at the log end: nothing is replayed.
              if (!command.crash) expect(partition.producerRecovery.replayedBatches).toBe(0);
              await expectSameAsFullReplay(partition, dir);
              continue;
            }
            if (command.t === 'plain') {
              await partition.produce({ batch: producerBatch(-1n, -1, -1, 2), acks: 1 });
              continue;
            }
            const id = BigInt(command.p);
            const state = producers.get(command.p) ?? { epoch: 0, next: 0, sent: [] };
            producers.set(command.p, state);
            if (command.t === 'bump') {
              state.epoch++;
              state.next = 0;
              state.sent = [];
            }
            if (command.t === 'send' || command.t === 'bump') {
              const n = command.t === 'send' ? command.n : 1;
              const reply = await partition.produce({
                batch: producerBatch(id, state.epoch, state.next, n),
                acks: 1,
              });
              expect(reply.duplicate).toBe(false);
              state.sent.push({
                epoch: state.epoch,
                baseSequence: state.next,
                n,
                baseOffset: reply.baseOffset,
                lastOffset: reply.lastOffset,
              });
              state.next += n;
            } else if (command.t === 'retry') {
              const sent = state.sent.at(-1 - command.back);
              if (sent === undefined) continue;
              const retry = partition.produce({
                batch: producerBatch(id, sent.epoch, sent.baseSequence, sent.n),
                acks: 1,
              });
              if (command.back < RETAINED_BATCHES) {
                expect(await retry).toMatchObject({
                  duplicate: true,
                  baseOffset: sent.baseOffset,
                  lastOffset: sent.lastOffset,
                });
              } else {
                await expect(retry).rejects.toMatchObject({ code: ErrorCode.DUPLICATE_SEQUENCE });
              }
            } else if (command.t === 'gap') {
              const gap = partition.produce({
                batch: producerBatch(id, state.epoch, state.next + 2, 1),
                acks: 1,
              });
              // A producer never seen is unknown; a known one has a gap.
              const code =
                state.sent.length === 0 ? ErrorCode.UNKNOWN_PRODUCER_ID : ErrorCode.OUT_OF_ORDER_SEQUENCE;
              await expect(gap).rejects.toMatchObject({ code });
            }
          }
          await partition.snapshotsWritten();
          abandoned.push(partition);
          partition = await openPartition(dir);
          await expectSameAsFullReplay(partition, dir);
        } finally {
          await partition.close();
          for (const old of abandoned) await old.log.close();
        }
      }),
      { numRuns: 30 },
    );
  }, 120_000);
});
