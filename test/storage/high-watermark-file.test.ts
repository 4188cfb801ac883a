// The high-watermark checkpoint: its codec refuses anything but its own 18 bytes, and a replicated
// log opened with keepHighWatermark shows, after a restart, only what lay below the high watermark
// its owner last set (not everything its log holds).

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeRecordBatch } from '../../src/protocol/record-batch.js';
import {
  decodeHighWatermark,
  encodeHighWatermark,
  HIGH_WATERMARK_CHECKPOINT,
} from '../../src/storage/high-watermark-file.js';
import { PartitionLog } from '../../src/storage/partition-log.js';
import { useTempDir } from '../harness/temp-dir.js';

const dir = useTempDir('ms-hw-');
const config = { segmentBytes: 4096, durability: 'never' as const };

async function logWithTen(keep: boolean): Promise<PartitionLog> {
  // Replicated from the start: readers see nothing until the owner sets a high watermark.
  const log = await PartitionLog.open({
    dir: join(dir.path, 'p'),
    config,
    keepHighWatermark: keep,
    highWatermark: 0n,
  });
  const tickets = Array.from({ length: 10 }, (_, i) => log.append(encodeRecordBatch([{ value: `v${i}` }])));
  await Promise.all(tickets.map((ticket) => ticket.done));
  return log;
}

describe('high-watermark checkpoint', () => {
  it('round-trips an offset and refuses other bytes', () => {
    const bytes = encodeHighWatermark(1234567890123n);
    expect(bytes.length).toBe(18);
    expect(decodeHighWatermark(bytes)).toBe(1234567890123n);
    for (let i = 0; i < bytes.length; i++) {
      const flipped = Buffer.from(bytes);
      flipped[i]! ^= 0x01;
      expect(decodeHighWatermark(flipped)).toBeNull();
    }
    expect(decodeHighWatermark(bytes.subarray(0, 17))).toBeNull();
    expect(decodeHighWatermark(Buffer.concat([bytes, Buffer.alloc(1)]))).toBeNull();
  });

  it('a reopened replicated log shows only what lay below its last high watermark', async () => {
    const log = await logWithTen(true);
    log.setHighWatermark(4n);
    await log.checkpointHighWatermark();
    log.setHighWatermark(6n);
    await log.close(); // close writes the last one
    expect(decodeHighWatermark(await readFile(join(dir.path, 'p', HIGH_WATERMARK_CHECKPOINT)))).toBe(6n);

    const reopened = await PartitionLog.open({ dir: join(dir.path, 'p'), config, keepHighWatermark: true });
    expect(reopened.highWatermarkCheckpoint).toBe('ok');
    expect(reopened.logEndOffset).toBe(10n);
    expect(reopened.highWatermark).toBe(6n);
    expect(reopened.replicatedHighWatermark).toBe(6n);
    // The rest becomes readable when the owner moves the high watermark on.
    reopened.setHighWatermark(10n);
    expect(reopened.highWatermark).toBe(10n);
    await reopened.close();
  });

  it('without keepHighWatermark, or with a corrupt file, the log shows what it holds', async () => {
    const plain = await logWithTen(false);
    plain.setHighWatermark(3n);
    await plain.checkpointHighWatermark();
    await plain.close();
    const path = join(dir.path, 'p', HIGH_WATERMARK_CHECKPOINT);
    await expect(readFile(path)).rejects.toMatchObject({ code: 'ENOENT' });

    await writeFile(path, Buffer.from('not a checkpoint'));
    const reopened = await PartitionLog.open({ dir: join(dir.path, 'p'), config, keepHighWatermark: true });
    expect(reopened.highWatermarkCheckpoint).toBe('corrupt');
    expect(reopened.highWatermark).toBe(10n);
    await reopened.close();
  });
});
