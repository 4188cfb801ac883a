import { readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import { encodeRecordBatch, splitBatches } from '../../src/protocol/record-batch.js';
import { BATCH_OFFSETS } from '../../src/protocol/record-batch-layout.js';
import {
  decodeLeaderEpochs,
  encodeLeaderEpochs,
  LEADER_EPOCH_CHECKPOINT,
} from '../../src/storage/leader-epoch-file.js';
import { PartitionLog, type PartitionLogConfig } from '../../src/storage/partition-log.js';
import { useTempDir } from '../harness/temp-dir.js';

let dir: string;
const scratch = useTempDir('ms-epochs-');
beforeEach(async () => {
  dir = scratch.path;
});

const config: Partial<PartitionLogConfig> = {
  segmentBytes: 1024,
  indexIntervalBytes: 128,
  durability: 'always',
};
const checkpoint = () => join(dir, LEADER_EPOCH_CHECKPOINT);

/** Batch `i` at `baseOffset` written in epoch `epoch`, as a leader stored it. */
function leaderBatch(i: number, baseOffset: bigint, epoch: number): Buffer {
  const batch = encodeRecordBatch(
    Array.from({ length: 1 + (i % 3) }, (_, r) => ({
      value: `${i}.${r}:${'v'.repeat(30 + i)}`,
      timestamp: 1000 * i + r,
    })),
  );
  batch.writeBigInt64BE(baseOffset, BATCH_OFFSETS.baseOffset);
  batch.writeInt32BE(epoch, BATCH_OFFSETS.partitionLeaderEpoch);
  return batch;
}

/** Appends batches 0..count-1 as a replica, epochs from `epochOf(i)`; returns each batch's base offset. */
async function replicate(
  log: PartitionLog,
  count: number,
  epochOf: (i: number) => number,
): Promise<bigint[]> {
  const bases: bigint[] = [];
  for (let i = 0; i < count; i++) {
    bases.push(log.logEndOffset);
    await log.appendReplicated(leaderBatch(i, log.logEndOffset, epochOf(i))).done;
  }
  return bases;
}

describe('leader-epoch checkpoint layout', () => {
  it('writes the layout of the file header (magic, version, count, entries, CRC), and refuses torn, corrupt and disordered bytes', () => {
    const entries = [
      { epoch: 0, startOffset: 0n },
      { epoch: 3, startOffset: 17n },
      { epoch: 9, startOffset: 1n << 40n },
    ];
    const bytes = encodeLeaderEpochs(entries);
    expect(bytes.length).toBe(10 + 12 * 3 + 4);
    expect(bytes.subarray(0, 4).toString('latin1')).toBe('MSEC');
    expect(bytes.readUInt16BE(4)).toBe(1);
    expect(bytes.readUInt32BE(6)).toBe(3);
    expect(bytes.readInt32BE(10 + 12)).toBe(3);
    expect(bytes.readBigInt64BE(10 + 12 + 4)).toBe(17n);
    expect(decodeLeaderEpochs(bytes)).toEqual(entries);
    const corrupt = Buffer.from(bytes);
    corrupt[15]! ^= 1;
    for (const bad of [bytes.subarray(0, 13), bytes.subarray(0, bytes.length - 1), corrupt])
      expect(() => decodeLeaderEpochs(bad)).toThrow(
        expect.objectContaining({ code: ErrorCode.CORRUPT_EPOCH_CHECKPOINT }),
      );
    const disordered = encodeLeaderEpochs([entries[1]!, entries[0]!]);
    expect(() => decodeLeaderEpochs(disordered)).toThrow(/out of order/);
  });
});

describe('PartitionLog leader epochs', () => {
  it('keeps no file for a log that never had an epoch', async () => {
    const log = await PartitionLog.open({ dir, config });
    await log.append(encodeRecordBatch([{ value: 'x', timestamp: 1 }])).done;
    await log.close();
    const reopened = await PartitionLog.open({ dir, config });
    expect(reopened.recovery.leaderEpochs).toBe('none');
    expect(reopened.leaderEpochs.entries()).toEqual([]);
    expect(await readdir(dir)).not.toContain(LEADER_EPOCH_CHECKPOINT);
    await reopened.close();
  });

  it('records each epoch where its first replicated batch starts, durably, and loads it at open', async () => {
    const log = await PartitionLog.open({ dir, config });
    const bases = await replicate(log, 30, (i) => [0, 0, 2, 2, 2, 5][i % 6]! + 6 * Math.floor(i / 6));
    const expected = [];
    let latest = -1;
    for (let i = 0; i < 30; i++) {
      const epoch = [0, 0, 2, 2, 2, 5][i % 6]! + 6 * Math.floor(i / 6);
      if (epoch !== latest) expected.push({ epoch, startOffset: bases[i]! });
      latest = epoch;
    }
    expect(log.leaderEpochs.entries()).toEqual(expected);
    expect(decodeLeaderEpochs(await readFile(checkpoint()))).toEqual(expected);
    await log.close();
    const reopened = await PartitionLog.open({ dir, config });
    expect(reopened.recovery.leaderEpochs).toBe('loaded');
    expect(reopened.leaderEpochs.entries()).toEqual(expected);
    await reopened.close();
  });

  it('refuses a replicated batch whose epoch goes back, appending nothing', async () => {
    const log = await PartitionLog.open({ dir, config });
    await replicate(log, 3, (i) => i + 4);
    const end = log.logEndOffset;
    expect(() => log.appendReplicated(leaderBatch(3, end, 5))).toThrow(
      expect.objectContaining({ code: ErrorCode.LEADER_EPOCH_REGRESSION }),
    );
    expect(log.logEndOffset).toBe(end);
    await log.close();
  });

  it('a leader append with an epoch stamps it into the batch (CRC still valid) and records it', async () => {
    const log = await PartitionLog.open({ dir, config });
    await log.append(encodeRecordBatch([{ value: 'a', timestamp: 1 }]), 3).done;
    await log.append(encodeRecordBatch([{ value: 'b', timestamp: 2 }]), 3).done;
    await log.append(encodeRecordBatch([{ value: 'c', timestamp: 3 }]), 4).done;
    expect(log.leaderEpochs.entries()).toEqual([
      { epoch: 3, startOffset: 0n },
      { epoch: 4, startOffset: 2n },
    ]);
    const read = await log.read(0n, 1 << 16);
    expect(
      [...splitBatches(read.data)].map((b) => b.readInt32BE(BATCH_OFFSETS.partitionLeaderEpoch)),
    ).toEqual([3, 3, 4]);
    expect(() => log.append(encodeRecordBatch([{ value: 'd', timestamp: 4 }]), 2)).toThrow(
      expect.objectContaining({ code: ErrorCode.LEADER_EPOCH_REGRESSION }),
    );
    await log.close();
  });

  it('drops the entries at and after a truncation point, in memory and on disk', async () => {
    const log = await PartitionLog.open({ dir, config });
    const bases = await replicate(log, 20, (i) => Math.floor(i / 4));
    await log.truncateTo(bases[9]!);
    const expected = [0, 1, 2].map((epoch) => ({ epoch, startOffset: bases[epoch * 4]! }));
    expect(log.leaderEpochs.entries()).toEqual(expected);
    // Truncating at an epoch's first batch drops that epoch.
    await log.truncateTo(bases[8]!);
    expect(log.leaderEpochs.entries()).toEqual(expected.slice(0, 2));
    expect(decodeLeaderEpochs(await readFile(checkpoint()))).toEqual(expected.slice(0, 2));
    await log.close();
  });

  it('rebuilds a torn or corrupt file from the epochs the batches carry', async () => {
    const log = await PartitionLog.open({ dir, config });
    await replicate(log, 25, (i) => 2 * Math.floor(i / 5) + 1);
    const expected = log.leaderEpochs.entries();
    await log.close();
    for (const damage of [
      () => truncate(checkpoint(), 7),
      async () => {
        const bytes = await readFile(checkpoint());
        bytes[12]! ^= 0x40;
        await writeFile(checkpoint(), bytes);
      },
    ]) {
      await damage();
      const reopened = await PartitionLog.open({ dir, config });
      expect(reopened.recovery.leaderEpochs).toBe('rebuilt');
      expect(reopened.recovery.epochProblem).toMatch(/bytes|CRC/);
      expect(reopened.leaderEpochs.entries()).toEqual(expected);
      await reopened.close();
      expect(decodeLeaderEpochs(await readFile(checkpoint()))).toEqual(expected);
    }
  });

  it('drops entries past the recovered log end at open (batches a crash took)', async () => {
    const log = await PartitionLog.open({ dir, config });
    await replicate(log, 6, () => 1);
    const end = log.logEndOffset;
    await log.close();
    await writeFile(
      checkpoint(),
      encodeLeaderEpochs([
        { epoch: 1, startOffset: 0n },
        { epoch: 2, startOffset: end },
        { epoch: 3, startOffset: end + 10n },
      ]),
    );
    const reopened = await PartitionLog.open({ dir, config });
    expect(reopened.leaderEpochs.entries()).toEqual([{ epoch: 1, startOffset: 0n }]);
    await reopened.close();
    expect(decodeLeaderEpochs(await readFile(checkpoint()))).toEqual([{ epoch: 1, startOffset: 0n }]);
  });

  it('moves the first epoch to the new log start after retention', async () => {
    const log = await PartitionLog.open({ dir, config: { ...config, retentionBytes: 1 } });
    await replicate(log, 30, (i) => Math.floor(i / 10));
    expect(await log.applyRetention()).toBeGreaterThan(0);
    const start = log.logStartOffset;
    const entries = log.leaderEpochs.entries();
    expect(entries[0]!.startOffset).toBe(start);
    expect(entries.every((e) => e.startOffset >= start)).toBe(true);
    await log.close();
    expect(decodeLeaderEpochs(await readFile(checkpoint()))).toEqual(entries);
  });
});
