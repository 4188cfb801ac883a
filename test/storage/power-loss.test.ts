// Power loss: everything not fdatasynced disappears. With durability `always` every acknowledged
// batch must survive; with `interval` (acknowledged when written) the same scenario must show
// losses — proof that this test can see a broken fsync discipline (RELIABILITY.md "test-the-tests").
import { describe, expect, it } from 'vitest';
import { encodeRecordBatch, iterateRecords, splitBatches } from '../../src/protocol/record-batch.js';
import { type DurabilityPolicy, PartitionLog } from '../../src/storage/partition-log.js';
import { tempDir } from '../harness/temp-dir.js';
import { powerLossFs } from './helpers/power-loss-fs.js';

async function scenario(
  durability: DurabilityPolicy,
  seed: number,
): Promise<{ acked: number; lost: number }> {
  const dir = await tempDir('ms-power-');
  const shim = powerLossFs();
  const log = await PartitionLog.open({
    dir,
    config: { durability, flushIntervalMs: 60_000, segmentBytes: 8 * 1024, indexIntervalBytes: 256 },
    fs: shim.fs,
  });
  const acked = new Map<bigint, string>();
  let stop = false;
  const writers = Array.from({ length: 4 }, async (_, w) => {
    for (let i = 0; !stop; i++) {
      const value = `w${w}-${i}-${'x'.repeat((seed * 7 + i * 13) % 200)}`;
      try {
        const ticket = log.append(encodeRecordBatch([{ key: `k${i % 5}`, value }]));
        await ticket.done;
        acked.set(ticket.baseOffset, value);
      } catch {
        return;
      }
    }
  });
  while (acked.size < 40 + (seed % 40)) await new Promise((r) => setImmediate(r));
  stop = true;
  await shim.powerLoss();
  await Promise.allSettled(writers);

  const reopened = await PartitionLog.open({
    dir,
    config: { segmentBytes: 8 * 1024, indexIntervalBytes: 256 },
  });
  const found = new Map<bigint, string>();
  let offset = reopened.logStartOffset;
  while (offset < reopened.highWatermark) {
    const { data, nextOffset } = await reopened.read(offset, 1 << 20);
    for (const batch of splitBatches(data)) {
      for (const record of iterateRecords(batch, { maxDecompressedBytes: 1 << 20 }))
        found.set(record.offset, record.value!.toString());
    }
    offset = nextOffset;
  }
  await reopened.close();
  let lost = 0;
  for (const [ackedOffset, value] of acked) if (found.get(ackedOffset) !== value) lost++;
  return { acked: acked.size, lost };
}

const ROUNDS = process.env.CI === 'true' ? 20 : 6;

describe('power loss', () => {
  it(`loses no acknowledged batch with durability always (${ROUNDS} rounds)`, async () => {
    for (let seed = 0; seed < ROUNDS; seed++) {
      const { acked, lost } = await scenario('always', seed);
      expect(acked).toBeGreaterThan(0);
      expect(lost).toBe(0);
    }
  });

  it('detects the losses of a policy that acknowledges before syncing', async () => {
    let lost = 0;
    for (let seed = 0; seed < 3; seed++) lost += (await scenario('interval', seed)).lost;
    expect(lost).toBeGreaterThan(0);
  });
});
