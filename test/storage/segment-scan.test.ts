// Recovery's scan over segments several scan chunks (1 MiB) long: the next chunk is read while the
// current one is verified, so a batch that spans two chunks, a batch larger than a chunk, a bad
// batch in a later chunk and a torn tail must all be found exactly where they are.
import { appendFile, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { encodeRecordBatch } from '../../src/protocol/record-batch.js';
import { PartitionLog } from '../../src/storage/partition-log.js';
import { segmentFileName } from '../../src/storage/segment.js';
import { useTempDir } from '../harness/temp-dir.js';

let dir: string;
const scratch = useTempDir('ms-scan-');
beforeEach(async () => {
  dir = scratch.path;
});

const config = { segmentBytes: 8 << 20, durability: 'never' as const };

/** Batches of varied sizes (one of 1.5 MiB, larger than a scan chunk); returns each batch's byte position. */
async function build(): Promise<{ positions: number[]; count: number }> {
  const log = await PartitionLog.open({ dir, config });
  const positions: number[] = [];
  let count = 0;
  for (let i = 0; i < 300; i++) {
    const size = i === 150 ? 1_500_000 : 1000 + ((i * 7919) % 30_000);
    positions.push(log.sizeBytes);
    await log.append(encodeRecordBatch([{ key: `k${i}`, value: Buffer.alloc(size, i & 0xff) }])).done;
    count++;
  }
  positions.push(log.sizeBytes);
  await log.close();
  // The only segment is the last one: open scans and verifies all of it (docs/storage.md, "Recovery").
  return { positions, count };
}

async function flipByte(position: number): Promise<void> {
  const file = await open(join(dir, segmentFileName(0n, 'log')), 'r+');
  const byte = Buffer.alloc(1);
  await file.read(byte, 0, 1, position);
  byte[0] = byte[0]! ^ 0x01;
  await file.write(byte, 0, 1, position);
  await file.close();
}

describe('segment scan across chunks', () => {
  it('rebuilds a multi-chunk segment with a batch larger than a chunk exactly', async () => {
    const { positions, count } = await build();
    expect(positions[count]!).toBeGreaterThan(4 << 20);
    const log = await PartitionLog.open({ dir, config });
    expect(log.recovery.scannedBytes).toBe(positions[count]);
    expect(log.recovery.truncation).toBeNull();
    expect(log.logEndOffset).toBe(BigInt(count));
    expect(log.sizeBytes).toBe(positions[count]);
    // The rebuilt index finds every batch.
    for (const offset of [0, 77, 150, 151, 299]) {
      const { data } = await log.read(BigInt(offset), 1);
      expect(data.readBigInt64BE(0)).toBe(BigInt(offset));
    }
    await log.close();
  });

  it('stops at a bad batch in a later chunk, and at a torn tail, at their exact positions', async () => {
    for (const bad of [120, 151, 260]) {
      const { positions } = await build();
      await flipByte(positions[bad + 1]! - 2); // inside batch `bad`'s value, covered by its CRC
      const log = await PartitionLog.open({ dir, config });
      // The last (here the only) segment: a bad batch is treated as the end of what was written.
      expect(log.recovery.truncation?.offset).toBe(BigInt(bad));
      expect(log.recovery.truncation?.reason).toBe('CRC mismatch');
      expect(log.logEndOffset).toBe(BigInt(bad));
      expect(log.sizeBytes).toBe(positions[bad]);
      await log.close();
      await rm(dir, { recursive: true, force: true });
    }
    const { positions, count } = await build();
    const torn = encodeRecordBatch([{ key: 'torn', value: Buffer.alloc(50_000, 1) }]);
    torn.writeBigInt64BE(BigInt(count), 0);
    await appendFile(join(dir, segmentFileName(0n, 'log')), torn.subarray(0, 30_000));
    const log = await PartitionLog.open({ dir, config });
    expect(log.recovery.truncatedBytes).toBe(30_000);
    expect(log.sizeBytes).toBe(positions[count]);
    expect(log.logEndOffset).toBe(BigInt(count));
    await log.close();
  });
});
