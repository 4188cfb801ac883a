// `truncateFullyAndStartAt`: a follower whose log ends below its leader's log start empties its log
// and starts it again there. First the live log (what it holds, reads and accepts after it, and
// after a reopen), then its crash states (crash-states.test.ts has the method): the operation runs
// through a recording file system, and for every crash point and crash model the disk state is
// recovered with the real file system. Recovery must give either the old log exactly (batches,
// epochs, stream versions) or the new empty log at the offset: never a mix.
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
const KEYS = ['k0', 'k1', 'k2', 'k3'];

let root: string;
const scratch = useTempDir('ms-restart-crash-', 'all');
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

/** Batch `i` as a leader stored it at `baseOffset` at `epoch` (both outside the CRC). */
function batchAt(i: number, baseOffset: bigint, epoch: number): Buffer {
  const batch = makeBatch(i);
  batch.writeBigInt64BE(baseOffset, 0);
  batch.writeInt32BE(epoch, 12);
  return batch;
}

async function storedBatches(log: PartitionLog): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const chunk of log.replay(log.logStartOffset))
    for (const batch of splitBatches(chunk.data)) out.push(Buffer.from(batch));
  return out;
}

interface Picture {
  start: bigint;
  end: bigint;
  highWatermark: bigint;
  batches: Buffer[];
  epochs: string;
  versions: number[];
}

async function picture(log: PartitionLog): Promise<Picture> {
  return {
    start: log.logStartOffset,
    end: log.logEndOffset,
    highWatermark: log.highWatermark,
    batches: await storedBatches(log),
    epochs: JSON.stringify(log.leaderEpochs.entries(), (_k, v) => (typeof v === 'bigint' ? `${v}` : v)),
    versions: KEYS.map((key) => log.streams!.version(key)),
  };
}

function same(a: Picture, b: Picture): boolean {
  return (
    a.start === b.start &&
    a.end === b.end &&
    a.epochs === b.epochs &&
    a.versions.join() === b.versions.join() &&
    a.batches.length === b.batches.length &&
    a.batches.every((batch, i) => batch.equals(b.batches[i]!))
  );
}

/** A replicated log over several segments, with epochs 3 and 5, a stream index and its checkpoint. */
async function oldLog(dir: string, fs = nodeStorageFs): Promise<PartitionLog> {
  const config = { ...CONFIG, retentionMs: 1000 };
  const log = await PartitionLog.open({ dir, config, fs, streams: STREAMS, keepHighWatermark: true });
  for (let i = 0; i < 24; i++) await log.appendReplicated(batchAt(i, log.logEndOffset, i < 12 ? 3 : 5)).done;
  log.setHighWatermark(log.logEndOffset);
  await log.checkpointHighWatermark();
  // Retention of the first segments, so the log starts past 0 with a stream checkpoint.
  expect(await log.applyRetention(1_700_000_000_000 + 8_000)).toBeGreaterThan(0);
  expect(log.logStartOffset).toBeGreaterThan(0n);
  return log;
}

describe('truncateFullyAndStartAt', () => {
  it('empties the log and starts it at the offset: reads, appends, epochs, streams, reopen', async () => {
    const dir = join(root, 'live');
    const log = await oldLog(dir);
    expect(log.segmentCount).toBeGreaterThan(3);
    const versionsBefore = KEYS.map((key) => log.streams!.version(key));
    expect(versionsBefore.some((version) => version > 0)).toBe(true);
    const start = log.logEndOffset + 100n;
    const told: bigint[] = [];
    log.onTruncated((end) => told.push(end));

    await log.truncateFullyAndStartAt(start);

    expect(told).toEqual([start]);
    expect(log.segmentCount).toBe(1);
    expect([log.logStartOffset, log.logEndOffset, log.highWatermark, log.stableOffset]).toEqual([
      start,
      start,
      start,
      start,
    ]);
    expect(log.replicatedHighWatermark).toBe(start);
    expect(log.leaderEpochs.entries()).toEqual([]);
    expect(KEYS.map((key) => log.streams!.version(key))).toEqual([0, 0, 0, 0]);
    await expect(log.read(0n, 1 << 16)).rejects.toMatchObject({ codeName: 'OFFSET_OUT_OF_RANGE' });
    expect((await log.read(start, 1 << 16)).data.length).toBe(0);

    // The leader's batches from its log start on are appended as they are.
    const batch = batchAt(30, start, 7);
    const ticket = log.appendReplicated(batch);
    expect(ticket.baseOffset).toBe(start);
    await ticket.done;
    log.setHighWatermark(log.logEndOffset);
    expect(log.leaderEpochs.entries()).toEqual([{ epoch: 7, startOffset: start }]);
    expect(log.streams!.version('k2')).toBe(1 + (30 % 3));
    const after = await picture(log);
    await log.close();

    const reopened = await PartitionLog.open({
      dir,
      config: CONFIG,
      streams: STREAMS,
      keepHighWatermark: true,
    });
    expect(reopened.state).toBe('open');
    const again = await picture(reopened);
    expect(same(again, after)).toBe(true);
    expect(again.highWatermark).toBe(reopened.logEndOffset);
    await reopened.close();
  });

  it('every crash during it recovers the old log or the new empty one, never a mix', async () => {
    const dir = join(root, 'recorded');
    const shim = recordingFs(nodeStorageFs);
    const log = await oldLog(dir, shim.fs);
    const before = await picture(log);
    const startAt = before.end + 57n;
    const first = shim.journal.length;
    await log.truncateFullyAndStartAt(startAt);
    const last = shim.journal.length;
    await log.close();
    expect(last - first).toBeGreaterThan(10);

    const failures: string[] = [];
    const outcomes = { old: 0, restarted: 0 };
    let states = 0;
    for (let k = first; k <= last; k++) {
      for (const variant of CRASH_VARIANTS) {
        for (const state of crashStates(shim.journal, k, variant)) {
          const at = join(root, `state-${states++}`);
          await materialize(state, at);
          const where = `crash at ${k} (${state.label})`;
          try {
            const recovered = await PartitionLog.open({
              dir: at,
              config: CONFIG,
              streams: STREAMS,
              keepHighWatermark: true,
            });
            const now = await picture(recovered);
            if (recovered.state !== 'open') failures.push(`${where}: log is ${recovered.state}`);
            if (same(now, before)) outcomes.old++;
            else if (
              now.start === startAt &&
              now.end === startAt &&
              now.batches.length === 0 &&
              now.epochs === '[]' &&
              now.versions.every((version) => version === 0) &&
              recovered.segmentCount === 1
            ) {
              outcomes.restarted++;
              // And the restarted log takes the leader's batches from there.
              const ticket = recovered.appendReplicated(batchAt(1, startAt, 9));
              await ticket.done;
              if (ticket.baseOffset !== startAt) failures.push(`${where}: appended at ${ticket.baseOffset}`);
            } else
              failures.push(
                `${where}: neither: ${now.start}..${now.end}, ${now.batches.length} batches, epochs ${now.epochs}, versions ${now.versions}`,
              );
            await recovered.close();
          } catch (error) {
            failures.push(`${where}: ${(error as Error).message}`);
          }
          await rm(at, { recursive: true, force: true });
        }
      }
    }
    console.log(`restart crash states: ${last - first} operations, ${states} states recovered`, outcomes);
    expect(failures.slice(0, 20)).toEqual([]);
    expect(outcomes.old).toBeGreaterThan(0);
    expect(outcomes.restarted).toBeGreaterThan(0);
  });
});
