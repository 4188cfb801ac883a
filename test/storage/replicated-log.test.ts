import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import { encodeRecordBatch, iterateRecords, splitBatches } from '../../src/protocol/record-batch.js';
import { BATCH_OFFSETS } from '../../src/protocol/record-batch-layout.js';
import { PartitionLog, type PartitionLogConfig } from '../../src/storage/partition-log.js';
import { useTempDir } from '../harness/temp-dir.js';

let root: string;
const scratch = useTempDir('ms-replicated-');
beforeEach(async () => {
  root = scratch.path;
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

describe('PartitionLog.truncateTo', () => {
  it('removes every offset at and after a batch start across segments, indexes and streams included', async () => {
    const leader = await leaderWith(45);
    const batches = await storedBatches(leader);
    const follower = await open('follower', small, true);
    await follower.appendReplicated(Buffer.concat(batches)).done;
    const segmentsBefore = follower.segmentCount;
    const cut = 19; // inside the segment starting at offset 33
    const offset = batches[cut]!.readBigInt64BE(0);
    const truncated: bigint[] = [];
    follower.onTruncated((end) => truncated.push(end));
    // A reader that already read ahead past the cut.
    const early = follower.reader(batches[cut - 1]!.readBigInt64BE(0), 64);
    expect((await early.next()).data.length).toBeGreaterThan(0);
    const past = follower.reader(batches[cut + 5]!.readBigInt64BE(0));

    expect(await follower.truncateTo(offset)).toBe(offset);
    expect(truncated).toEqual([offset]);
    expect(follower.logEndOffset).toBe(offset);
    expect(follower.highWatermark).toBe(offset);
    expect(follower.segmentCount).toBeLessThan(segmentsBefore);
    expect(await storedBatches(follower)).toEqual(batches.slice(0, cut));
    await expect(follower.read(offset + 1n, 100)).rejects.toMatchObject({
      code: ErrorCode.OFFSET_OUT_OF_RANGE,
    });
    await expect(past.next()).rejects.toMatchObject({ code: ErrorCode.OFFSET_OUT_OF_RANGE });
    expect(await follower.offsetForTimestamp(Number.MAX_SAFE_INTEGER)).toBe(offset);
    const records = (bs: Buffer[]) => bs.flatMap((b) => [...iterateRecords(b, limits)]);
    const versionOf = (bs: Buffer[], key: string) =>
      records(bs).filter((r) => r.key?.toString() === key).length;
    expect(follower.streams!.version('k-2')).toBe(versionOf(batches.slice(0, cut), 'k-2'));

    // A new leader's history from the cut on: other records at the same offsets.
    const other = await open('other');
    await other.appendReplicated(Buffer.concat(batches.slice(0, cut))).done;
    for (let i = 0; i < 20; i++) await other.append(batchOf([`new-${i}`, `n${i}`], 500_000 + i, 7)).done;
    const theirs = await storedBatches(other);
    const seen: Buffer[] = [];
    follower.onVisible((visible) => seen.push(...visible.map((b) => Buffer.from(b))));
    await follower.appendReplicated(Buffer.concat(theirs.slice(cut))).done;
    expect(seen).toEqual(theirs.slice(cut));
    expect(await storedBatches(follower)).toEqual(theirs);
    // The early reader serves the new bytes, not what it held from before the truncation.
    const served: Buffer[] = [];
    for (;;) {
      const chunk = await early.next();
      if (chunk.data.length === 0) break;
      for (const batch of splitBatches(chunk.data)) served.push(Buffer.from(batch));
    }
    expect(served.filter((b) => b.readBigInt64BE(0) >= offset)).toEqual(theirs.slice(cut));
    early.close();
    await follower.close();
    const reopened = await open('follower', small, true);
    expect(await storedBatches(reopened)).toEqual(theirs);
    expect(reopened.streams!.version('k-0')).toBe(versionOf(theirs, 'k-0'));
    await reopened.close();
    await other.close();
    await leader.close();
  });

  it('refuses an offset inside a batch or below the log start, ignores one at or past the end', async () => {
    const leader = await leaderWith(12);
    const batches = await storedBatches(leader);
    const inside = batches.findIndex((b) => b.readInt32BE(BATCH_OFFSETS.lastOffsetDelta) > 0);
    const offset = batches[inside]!.readBigInt64BE(0) + 1n;
    await expect(leader.truncateTo(offset)).rejects.toMatchObject({
      code: ErrorCode.TRUNCATION_INSIDE_BATCH,
    });
    expect(await leader.truncateTo(leader.logEndOffset + 5n)).toBe(leader.logEndOffset);
    expect(await storedBatches(leader)).toEqual(batches);
    expect(leader.state).toBe('open');
    await leader.close();
  });

  it('lets queued appends finish first and refuses appends while it runs', async () => {
    const log = await open('log', { ...small, durability: 'always' });
    const first = log.append(batchOf(['a'], 1));
    const second = log.append(batchOf(['b', 'c'], 2));
    const truncation = log.truncateTo(1n);
    expect(() => log.append(batchOf(['d'], 3))).toThrow(
      expect.objectContaining({ code: ErrorCode.LOG_TRUNCATING }),
    );
    expect(await first.done).toBe('synced');
    expect(await second.done).toBe('synced');
    expect(await truncation).toBe(1n);
    expect(log.append(batchOf(['e'], 4)).baseOffset).toBe(1n);
    await log.close();
  });

  it('truncating to the base of a segment leaves it empty and active', async () => {
    const leader = await leaderWith(30);
    const bases = (await readdir(join(root, 'leader')))
      .filter((n) => n.endsWith('.log'))
      .map((n) => BigInt(n.slice(0, 20)));
    const base = bases[2]!;
    expect(await leader.truncateTo(base)).toBe(base);
    expect(leader.segmentCount).toBe(3);
    await leader.close();
    const reopened = await open('leader');
    expect(reopened.logEndOffset).toBe(base);
    await reopened.close();
  });
});

describe('PartitionLog visibility: log end, stable offset, replicated high watermark', () => {
  it('without a replicated high watermark, shows what is written (as a single node does)', async () => {
    const log = await open('single', { ...small, durability: 'always' });
    await log.append(batchOf(['a', 'b'], 1)).done;
    expect(log.replicatedHighWatermark).toBeNull();
    expect([log.logEndOffset, log.stableOffset, log.durableOffset, log.highWatermark]).toEqual([
      2n,
      2n,
      2n,
      2n,
    ]);
    await log.close();
    const never = await open('never', small);
    for (let i = 0; i < 30; i++) await never.append(batchOf(['x'.repeat(60), `${i}`], i)).done;
    const logs = (await readdir(join(root, 'never'))).filter((n) => n.endsWith('.log')).sort();
    // Nothing is synced with `never` but the segments a roll sealed.
    expect(never.durableOffset).toBe(BigInt(logs.at(-1)!.slice(0, 20)));
    expect(never.stableOffset).toBe(never.logEndOffset);
    await never.close();
  });

  it('bounds reads and onVisible by the high watermark the owner sets, at batch boundaries', async () => {
    const leader = await leaderWith(20);
    const batches = await storedBatches(leader);
    const log = await open('follower');
    log.setHighWatermark(0n);
    const seen: Buffer[] = [];
    let lastHw = -1n;
    log.onVisible((visible, hw) => {
      seen.push(...visible.map((b) => Buffer.from(b)));
      lastHw = hw;
    });
    await log.appendReplicated(Buffer.concat(batches)).done;
    expect(log.stableOffset).toBe(log.logEndOffset);
    expect(log.highWatermark).toBe(0n);
    expect(seen).toEqual([]);
    expect((await log.read(0n, 1 << 20)).data.length).toBe(0);
    await expect(log.read(1n, 100)).rejects.toMatchObject({ code: ErrorCode.OFFSET_OUT_OF_RANGE });

    // Inside batch 8 (it has several records): batches 0..7 become visible, not batch 8.
    const inside = batches.findIndex((b, i) => i >= 8 && b.readInt32BE(BATCH_OFFSETS.lastOffsetDelta) > 0);
    const hw = batches[inside]!.readBigInt64BE(0) + 1n;
    log.setHighWatermark(hw);
    expect(log.replicatedHighWatermark).toBe(hw);
    expect(log.highWatermark).toBe(hw - 1n);
    expect(seen).toEqual(batches.slice(0, inside));
    expect(lastHw).toBe(hw - 1n);
    expect(await storedBatches(log)).toEqual(batches.slice(0, inside));
    const reader = log.reader(0n, 1 << 20);
    const first = await reader.next();
    expect([...splitBatches(first.data)].length).toBe(inside);
    expect((await reader.next()).data.length).toBe(0);

    const refused = (offset: bigint) => {
      try {
        log.setHighWatermark(offset);
        return 'set';
      } catch (error) {
        return (error as { code: number }).code;
      }
    };
    expect(refused(hw - 1n)).toBe(ErrorCode.INVALID_HIGH_WATERMARK);
    expect(refused(log.logEndOffset + 1n)).toBe(ErrorCode.INVALID_HIGH_WATERMARK);
    log.setHighWatermark(log.logEndOffset);
    expect(seen).toEqual(batches);
    expect(log.highWatermark).toBe(log.logEndOffset);
    expect((await reader.next()).data.length).toBeGreaterThan(0);
    reader.close();

    // A truncation below the high watermark lowers it; appends past it wait for the next one.
    const cut = batches[12]!.readBigInt64BE(0);
    await log.truncateTo(cut);
    expect([log.highWatermark, log.replicatedHighWatermark, log.stableOffset]).toEqual([cut, cut, cut]);
    await log.appendReplicated(Buffer.concat(batches.slice(12))).done;
    expect(log.highWatermark).toBe(cut);
    expect(seen.length).toBe(batches.length);
    log.setHighWatermark(log.logEndOffset);
    expect(seen.slice(batches.length)).toEqual(batches.slice(12));
    await log.close();
    await leader.close();
  });

  it('opens with the high watermark its owner kept, and releases the batches past it later', async () => {
    const leader = await leaderWith(15);
    const batches = await storedBatches(leader);
    await leader.close();
    const hw = batches[9]!.readBigInt64BE(0);
    const log = await PartitionLog.open({ dir: join(root, 'leader'), config: small, highWatermark: hw });
    expect(log.highWatermark).toBe(hw);
    expect(log.logEndOffset).toBe(
      batches.at(-1)!.readBigInt64BE(0) +
        BigInt(batches.at(-1)!.readInt32BE(BATCH_OFFSETS.lastOffsetDelta)) +
        1n,
    );
    expect(await storedBatches(log)).toEqual(batches.slice(0, 9));
    const seen: Buffer[] = [];
    log.onVisible((visible) => seen.push(...visible.map((b) => Buffer.from(b))));
    log.setHighWatermark(log.logEndOffset);
    expect(seen).toEqual(batches.slice(9));
    expect(await storedBatches(log)).toEqual(batches);
    await log.close();
  });

  it('keeps the segments retention would delete until the high watermark passes them', async () => {
    const leader = await leaderWith(30);
    const batches = await storedBatches(leader);
    await leader.close();
    const log = await open('follower', { ...small, retentionBytes: 1 });
    log.setHighWatermark(0n);
    await log.appendReplicated(Buffer.concat(batches)).done;
    expect(await log.applyRetention()).toBe(0);
    const hw = batches[15]!.readBigInt64BE(0);
    log.setHighWatermark(hw);
    expect(await log.applyRetention()).toBeGreaterThan(0);
    expect(log.logStartOffset).toBeLessThanOrEqual(hw);
    await log.close();
  });
});
