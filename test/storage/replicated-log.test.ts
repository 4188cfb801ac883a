import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import { encodeRecordBatch, iterateRecords, splitBatches } from '../../src/protocol/record-batch.js';
import { BATCH_OFFSETS } from '../../src/protocol/record-batch-layout.js';
import { PartitionLog, type PartitionLogConfig } from '../../src/storage/partition-log.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'ms-replicated-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const limits = { maxDecompressedBytes: 1 << 24 };
const small: Partial<PartitionLogConfig> = {
  segmentBytes: 1024,
  indexIntervalBytes: 128,
  durability: 'never',
};

function batchOf(values: string[], timestamp: number, epoch = 0): Buffer {
  const batch = encodeRecordBatch(
    values.map((value, i) => ({ key: `k-${i % 3}`, value, timestamp: timestamp + i })),
    { baseTimestamp: timestamp },
  );
  // The leader epoch lies outside the CRC (Kafka's v2 layout): a leader stamps it as it appends.
  batch.writeInt32BE(epoch, BATCH_OFFSETS.partitionLeaderEpoch);
  return batch;
}

function open(
  name: string,
  config: Partial<PartitionLogConfig> = small,
  streams = false,
): Promise<PartitionLog> {
  return PartitionLog.open({
    dir: join(root, name),
    config,
    ...(streams ? { streams: { maxDecompressedBytes: 1 << 20 } } : {}),
  });
}

/** Every batch of the log, from its start to the high watermark, as stored. */
async function storedBatches(log: PartitionLog, from = log.logStartOffset): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const chunk of log.replay(from))
    for (const batch of splitBatches(chunk.data)) out.push(Buffer.from(batch));
  return out;
}

/** A leader log with `count` batches of 1-3 records, epochs going up every 10 batches. */
async function leaderWith(count: number, name = 'leader'): Promise<PartitionLog> {
  const leader = await open(name);
  const tickets = [];
  for (let i = 0; i < count; i++)
    tickets.push(
      leader.append(
        batchOf(['x'.repeat(20 + i), `v${i}`, `w${i}`].slice(0, 1 + (i % 3)), 1_000 * i, Math.floor(i / 10)),
      ),
    );
  await Promise.all(tickets.map((t) => t.done));
  return leader;
}

async function filesOf(dir: string, extension: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const name of (await readdir(dir)).sort())
    if (name.endsWith(`.${extension}`)) files.set(name, await readFile(join(dir, name)));
  return files;
}

describe('PartitionLog.appendReplicated', () => {
  it('stores the leader batches byte for byte: same offsets, epochs, segments and indexes', async () => {
    const leader = await leaderWith(45);
    const batches = await storedBatches(leader);
    const follower = await open('follower', small, true);
    // Fetched in runs of several batches, as a replica fetch returns them.
    for (let i = 0; i < batches.length; i += 4) {
      const ticket = follower.appendReplicated(Buffer.concat(batches.slice(i, i + 4)));
      expect(ticket.baseOffset).toBe(batches[i]!.readBigInt64BE(0));
      expect(await ticket.done).toBe('written');
    }
    expect(follower.logEndOffset).toBe(leader.logEndOffset);
    expect(follower.highWatermark).toBe(leader.highWatermark);
    expect(follower.segmentCount).toBe(leader.segmentCount);
    expect(await storedBatches(follower)).toEqual(batches);
    expect(batches.map((b) => b.readInt32BE(BATCH_OFFSETS.partitionLeaderEpoch)).at(-1)).toBe(4);
    for (const t of [0, 7_500, 20_000, 44_000, 99_000])
      expect(await follower.offsetForTimestamp(t)).toBe(await leader.offsetForTimestamp(t));
    // The stream index counted every keyed record.
    const records = batches.flatMap((b) => [...iterateRecords(b, limits)]);
    for (const key of ['k-0', 'k-1', 'k-2'])
      expect(follower.streams!.version(key)).toBe(records.filter((r) => r.key?.toString() === key).length);
    await leader.close();
    await follower.close();
    // Sealed segments and their indexes are the same files.
    for (const extension of ['log', 'index', 'timeindex']) {
      const mine = await filesOf(join(root, 'follower'), extension);
      const theirs = await filesOf(join(root, 'leader'), extension);
      expect([...mine.keys()]).toEqual([...theirs.keys()]);
      for (const [name, bytes] of theirs) expect(mine.get(name)!.equals(bytes), name).toBe(true);
    }
    const reopened = await open('follower', small, true);
    expect(reopened.logEndOffset).toBe(leader.logEndOffset);
    expect(reopened.streams!.version('k-1')).toBe(records.filter((r) => r.key?.toString() === 'k-1').length);
    await reopened.close();
  });

  it('refuses a gap, offsets going backwards, a corrupt or torn batch, and appends nothing of the call', async () => {
    const leader = await leaderWith(6);
    const batches = await storedBatches(leader);
    const follower = await open('follower');
    await follower.appendReplicated(Buffer.concat(batches.slice(0, 2))).done;
    const end = follower.logEndOffset;
    const refused = (input: Buffer) => {
      try {
        follower.appendReplicated(input);
      } catch (error) {
        return (error as { code: number }).code;
      }
      return 'appended';
    };
    expect(refused(batches[3]!)).toBe(ErrorCode.REPLICA_OFFSET_MISMATCH); // gap
    expect(refused(batches[1]!)).toBe(ErrorCode.REPLICA_OFFSET_MISMATCH); // backwards
    expect(refused(Buffer.concat([batches[2]!, batches[4]!]))).toBe(ErrorCode.REPLICA_OFFSET_MISMATCH);
    const corrupt = Buffer.from(batches[3]!);
    corrupt[corrupt.length - 1]! ^= 0xff;
    // The first batch of the call is good: the call is refused whole all the same.
    expect(refused(Buffer.concat([batches[2]!, corrupt]))).toBe(ErrorCode.BAD_BATCH_CRC);
    expect(refused(batches[2]!.subarray(0, batches[2]!.length - 3))).toBe(ErrorCode.BAD_RECORD_BATCH);
    expect(refused(Buffer.alloc(0))).toBe(ErrorCode.BAD_RECORD_BATCH);
    expect(follower.logEndOffset).toBe(end);
    // The log goes on where it was.
    await follower.appendReplicated(Buffer.concat(batches.slice(2))).done;
    expect(await storedBatches(follower)).toEqual(batches);
    await leader.close();
    await follower.close();
  });

  it('is durable per the policy: with `always` it resolves synced, and group-commits with other appends', async () => {
    const leader = await leaderWith(8);
    const batches = await storedBatches(leader);
    const follower = await open('follower', { ...small, durability: 'always' });
    const tickets = batches.map((batch) => follower.appendReplicated(batch));
    expect(await Promise.all(tickets.map((t) => t.done))).toEqual(batches.map(() => 'synced'));
    await follower.close();
    const reopened = await open('follower', { ...small, durability: 'always' });
    expect(await storedBatches(reopened)).toEqual(batches);
    await reopened.close();
    await leader.close();
  });
});
