// Crash states of a truncation (crash-states.test.ts has the method): a log of acknowledged batches
// over several segments, with a stream index, is truncated to a batch in an earlier segment through
// a recording file system; for every crash point of the truncation and every crash model, the disk
// state is recovered with the real file system. Recovery must succeed and hold a prefix of the log
// as it was, ending at or after the truncation offset: never a hole, never a failed log.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeRecordBatch, splitBatches } from '../../src/protocol/record-batch.js';
import { PartitionLog, type PartitionLogConfig } from '../../src/storage/partition-log.js';
import { nodeStorageFs } from '../../src/storage/storage-fs.js';
import { useTempDir } from '../harness/temp-dir.js';
import { CRASH_VARIANTS, crashStates, materialize, recordingFs } from './helpers/recording-fs.js';

const STREAMS = { maxDecompressedBytes: 1 << 20 };
const CONFIG: Partial<PartitionLogConfig> = {
  durability: 'always',
  segmentBytes: 1500,
  indexIntervalBytes: 200,
};

let root: string;
const scratch = useTempDir('ms-truncation-crash-', 'all');
beforeAll(async () => {
  root = scratch.path;
});

function makeBatch(i: number): Buffer {
  return encodeRecordBatch(
    Array.from({ length: 1 + (i % 3) }, (_, r) => ({
      key: `k${i % 4}`,
      value: `${i}.${r}:${'x'.repeat(40 + ((i * 53) % 300))}`,
      timestamp: 1_700_000_000_000 + i * 1000 + r,
    })),
  );
}

async function storedBatches(log: PartitionLog): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const chunk of log.replay(log.logStartOffset))
    for (const batch of splitBatches(chunk.data)) out.push(Buffer.from(batch));
  return out;
}

describe('truncation crash states', () => {
  it('every crash during a truncation recovers a prefix of the log ending at or after the offset', async () => {
    const dir = join(root, 'live');
    const shim = recordingFs(nodeStorageFs);
    const log = await PartitionLog.open({ dir, config: CONFIG, fs: shim.fs, streams: STREAMS });
    for (let i = 0; i < 24; i++) await log.appendReplicated(batchAt(i, log.logEndOffset)).done;
    const before = await storedBatches(log);
    expect(log.segmentCount).toBeGreaterThan(3);
    const start = shim.journal.length;
    // A batch in the second segment: the segments after it go, it is cut.
    const offset = before[7]!.readBigInt64BE(0);
    expect(await log.truncateTo(offset)).toBe(offset);
    const end = shim.journal.length;
    await log.close();
    expect(end - start).toBeGreaterThan(5);

    const failures: string[] = [];
    let states = 0;
    for (let k = start; k <= end; k++) {
      for (const variant of CRASH_VARIANTS) {
        for (const state of crashStates(shim.journal, k, variant)) {
          const at = join(root, `state-${states++}`);
          await materialize(state, at);
          const where = `crash at ${k} (${state.label})`;
          try {
            const recovered = await PartitionLog.open({ dir: at, config: CONFIG, streams: STREAMS });
            const batches = await storedBatches(recovered);
            if (recovered.state !== 'open') failures.push(`${where}: log is ${recovered.state}`);
            if (recovered.logEndOffset < offset) failures.push(`${where}: ends at ${recovered.logEndOffset}`);
            if (!batches.every((b, i) => before[i]?.equals(b)))
              failures.push(`${where}: not a prefix of the log before the truncation`);
            await recovered.close();
          } catch (error) {
            failures.push(`${where}: ${(error as Error).message}`);
          }
          await rm(at, { recursive: true, force: true });
        }
      }
    }
    console.log(`truncation crash states: ${end - start} operations, ${states} states recovered`);
    expect(failures.slice(0, 20)).toEqual([]);
  });
});

/** Batch `i` as a leader stored it at `baseOffset` (the base offset lies outside the CRC). */
function batchAt(i: number, baseOffset: bigint): Buffer {
  const batch = makeBatch(i);
  batch.writeBigInt64BE(baseOffset, 0);
  return batch;
}
