// The memory StorageFs behaves as the node one for what the storage layer uses: each scenario runs
// on both (the node one in a temporary directory) and their results and error codes must agree.
// Then a whole PartitionLog runs on it: appends, reads, rolls, retention, reopen of the same
// memory, and its operations settle without an event-loop turn.

import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encodeRecordBatch, iterateRecords, splitBatches } from '../../src/protocol/record-batch.js';
import { CHUNK_BYTES, ChunkReserve, createMemoryStorageFs } from '../../src/storage/memory-storage-fs.js';
import { PartitionLog } from '../../src/storage/partition-log.js';
import { nodeStorageFs, type StorageFs } from '../../src/storage/storage-fs.js';
import { useTempDir } from '../harness/temp-dir.js';

const dir = useTempDir('ms-memfs-');

const makeBatch = (key: string): Buffer => encodeRecordBatch([{ key, value: Buffer.alloc(400, 0x61) }]);

/** What an operation gave: its value, or the code of the error it threw. */
async function outcome<T>(operation: () => Promise<T>): Promise<{ value: T } | { code: string }> {
  try {
    return { value: await operation() };
  } catch (error) {
    return { code: String((error as NodeJS.ErrnoException).code) };
  }
}

/** Runs `scenario` on the node fs (under the temp dir) and on a memory fs (same paths); both must agree. */
async function agree(scenario: (fs: StorageFs, root: string) => Promise<unknown[]>): Promise<unknown[]> {
  const onDisk = await scenario(nodeStorageFs, dir.path);
  const memory = createMemoryStorageFs();
  await memory.mkdir(dir.path);
  const inMemory = await scenario(memory, dir.path);
  expect(inMemory).toEqual(onDisk);
  return inMemory;
}

describe('memory StorageFs: the same semantics as node:fs', () => {
  it('positioned writes and reads, gaps read as zeros, short reads at the end', async () => {
    const results = await agree(async (fs, root) => {
      const file = await fs.open(`${root}/a.log`, 'create');
      await file.writev([Buffer.from('hello'), Buffer.from(' world')], 0);
      await file.writev([Buffer.from('XY')], 20); // a gap of zeros from 11 to 20
      const buffer = Buffer.alloc(40, 0xee);
      const read = await file.read(buffer, 2, 38, 0);
      const tail = Buffer.alloc(8);
      const tailRead = await file.read(tail, 0, 8, 18);
      const past = await file.read(Buffer.alloc(4), 0, 4, 100);
      const size = await file.size();
      await file.datasync();
      await file.close();
      return [read, buffer.toString('hex'), tailRead, tail.toString('hex'), past, size];
    });
    expect(results[0]).toBe(22);
    expect(results[4]).toBe(0);
  });

  it('writes and reads across chunk boundaries keep every byte', async () => {
    const data = randomBytes(3 * CHUNK_BYTES + 123);
    await agree(async (fs, root) => {
      const file = await fs.open(`${root}/big.log`, 'create');
      // Written in odd pieces so that writes straddle chunks.
      for (let at = 0; at < data.length; at += 7777)
        await file.writev([data.subarray(at, Math.min(data.length, at + 7777))], at);
      const back = Buffer.alloc(data.length);
      const read = await file.read(back, 0, data.length, 0);
      const middle = Buffer.alloc(2 * CHUNK_BYTES);
      await file.read(middle, 0, middle.length, CHUNK_BYTES - 5);
      await file.close();
      return [read, back.equals(data), middle.equals(data.subarray(CHUNK_BYTES - 5, 3 * CHUNK_BYTES - 5))];
    });
  });

  it('truncate shrinks, and extends with zeros (also after a shrink inside a chunk)', async () => {
    await agree(async (fs, root) => {
      const file = await fs.open(`${root}/t.log`, 'create');
      await file.writev([Buffer.alloc(CHUNK_BYTES + 100, 0x41)], 0);
      await file.truncate(10);
      const afterShrink = await file.size();
      await file.truncate(30);
      const buffer = Buffer.alloc(30);
      await file.read(buffer, 0, 30, 0);
      await file.close();
      return [
        afterShrink,
        await fs.readFile(`${root}/t.log`).then((b) => b.toString('hex')),
        buffer.toString('hex'),
      ];
    });
  });

  it('open, readFile, rename, unlink, readdir and syncDirectory fail with the same codes', async () => {
    await agree(async (fs, root) => [
      await outcome(() => fs.open(`${root}/missing.log`, 'read-write')),
      await outcome(() => fs.open(`${root}/no-dir/x.log`, 'create')),
      await outcome(() => fs.readFile(`${root}/missing`)),
      await outcome(() => fs.rename(`${root}/missing`, `${root}/other`)),
      await outcome(() => fs.unlink(`${root}/missing`)),
      await outcome(() => fs.readdir(`${root}/missing`)),
      await outcome(() => fs.syncDirectory(`${root}/missing`)),
      await outcome(() => fs.writeFile(`${root}/no-dir/x`, Buffer.from('x'))),
      await fs.exists(`${root}/missing`),
    ]);
    const results = await agree(async (fs, root) => [await outcome(() => fs.readFile(`${root}/gone`))]);
    expect(results[0]).toEqual({ code: 'ENOENT' });
  });

  it('writeFile, rename over a target, readdir of files and directories, unlink, mkdir twice', async () => {
    await agree(async (fs, root) => {
      await fs.mkdir(`${root}/p/0`);
      await fs.mkdir(`${root}/p/0`);
      await fs.writeFile(`${root}/p/0/a.index.tmp`, Buffer.from('new'));
      await fs.writeFile(`${root}/p/0/a.index`, Buffer.from('old contents'));
      await fs.rename(`${root}/p/0/a.index.tmp`, `${root}/p/0/a.index`);
      await fs.writeFile(`${root}/p/0/b`, Buffer.from('b'));
      await fs.mkdir(`${root}/p/0/sub`);
      const listed = await fs.readdir(`${root}/p/0`);
      const top = await fs.readdir(`${root}/p`);
      await fs.unlink(`${root}/p/0/b`);
      await fs.syncDirectory(`${root}/p/0`);
      return [
        listed.sort(),
        top,
        (await fs.readFile(`${root}/p/0/a.index`)).toString(),
        (await fs.readdir(`${root}/p/0`)).sort(),
        await fs.exists(`${root}/p/0/a.index`),
        await fs.exists(`${root}/p/0/b`),
        await fs.exists(`${root}/p/0/sub`),
      ];
    });
  });

  it('a handle keeps the bytes of a file renamed over or unlinked (as an open inode does)', async () => {
    await agree(async (fs, root) => {
      await fs.writeFile(`${root}/seg.log`, Buffer.from('original'));
      const handle = await fs.open(`${root}/seg.log`, 'read-write');
      await fs.writeFile(`${root}/seg.log.cleaned`, Buffer.from('compacted'));
      await fs.rename(`${root}/seg.log.cleaned`, `${root}/seg.log`);
      const buffer = Buffer.alloc(8);
      await handle.read(buffer, 0, 8, 0);
      await handle.close();
      return [buffer.toString(), (await fs.readFile(`${root}/seg.log`)).toString()];
    });
  });

  it('a closed handle refuses further use (EBADF on both)', async () => {
    await agree(async (fs, root) => {
      const file = await fs.open(`${root}/c.log`, 'create');
      await file.close();
      return [await outcome(() => file.read(Buffer.alloc(1), 0, 1, 0))];
    });
  });

  it('settles every operation without an event-loop turn (no thread-pool hop)', async () => {
    const fs = createMemoryStorageFs();
    await fs.mkdir('/d');
    const file = await fs.open('/d/x.log', 'create');
    let turned = false;
    setImmediate(() => {
      turned = true;
    });
    for (let i = 0; i < 1000; i++) await file.writev([Buffer.alloc(100, i)], i * 100);
    const buffer = Buffer.alloc(100);
    await file.read(buffer, 0, 100, 999 * 100);
    expect(turned).toBe(false);
    expect(buffer[0]).toBe(999 & 0xff);
    expect(fs.usedBytes()).toBe(100_000);
    expect(fs.allocatedBytes()).toBeLessThan(100_000 + CHUNK_BYTES);
  });
});

describe('a PartitionLog on the memory StorageFs', () => {
  it('appends, reads, rolls segments, applies retention by bytes and reopens from the same memory', async () => {
    const fs = createMemoryStorageFs();
    const config = { segmentBytes: 8192, retentionBytes: 32 * 1024, durability: 'always' as const };
    const log = await PartitionLog.open({
      dir: '/topics/t/0',
      config,
      fs,
      streams: { maxDecompressedBytes: 1 << 20 },
    });
    for (let i = 0; i < 200; i++) {
      const ticket = log.append(makeBatch(`k${i % 5}`));
      await ticket.done;
    }
    expect(log.highWatermark).toBe(200n);
    const first = await log.read(0n, 1 << 20);
    expect(first.data.length).toBeGreaterThan(0);
    const before = fs.usedBytes();
    expect(await log.applyRetention()).toBeGreaterThan(0);
    expect(log.logStartOffset).toBeGreaterThan(0n);
    const segments = fs.files().filter((path) => path.endsWith('.log'));
    expect(segments.length).toBeLessThanOrEqual(6);
    expect(fs.usedBytes()).toBeLessThan(before);
    // The log sizes retention counts are at most retentionBytes + one segment.
    expect(log.sizeBytes).toBeLessThanOrEqual(config.retentionBytes + config.segmentBytes);
    const kept = await log.read(log.logStartOffset, 1 << 20);
    await log.close();
    const again = await PartitionLog.open({
      dir: '/topics/t/0',
      config,
      fs,
      streams: { maxDecompressedBytes: 1 << 20 },
    });
    expect(again.highWatermark).toBe(200n);
    expect(again.logStartOffset).toBe(log.logStartOffset);
    expect((await again.read(again.logStartOffset, 1 << 20)).data).toEqual(kept.data);
    await again.close();
  });
});

describe('ChunkReserve: whole chunks made ahead of need', () => {
  const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

  it('hands out a chunk and makes the next one in a later turn, not in the taking call', async () => {
    const reserve = new ChunkReserve();
    const first = reserve.take();
    expect(first.length).toBe(CHUNK_BYTES);
    expect(reserve.heldBytes).toBe(0);
    await nextTurn();
    expect(reserve.heldBytes).toBe(CHUNK_BYTES);
    first.fill(7);
    const second = reserve.take();
    expect(second).not.toBe(first);
    expect(second.length).toBe(CHUNK_BYTES);
    expect(reserve.heldBytes).toBe(0);
    // Two takes in one turn: the second is made in line; one refill follows.
    reserve.take();
    await nextTurn();
    expect(reserve.heldBytes).toBe(CHUNK_BYTES);
  });

  it('touches the next chunk one page per turn (one page fault each); taken early, it goes as it is', async () => {
    const reserve = new ChunkReserve();
    reserve.take();
    const prepared: number[] = [];
    for (let turn = 0; turn < 3; turn++) {
      await nextTurn();
      prepared.push(reserve.preparedBytes);
    }
    expect(prepared).toEqual([4096, 8192, 12288]);
    // Taken before it is ready: handed out whole, its untouched pages fault in when written.
    const early = reserve.take();
    expect(early.length).toBe(CHUNK_BYTES);
    expect(reserve.preparedBytes).toBe(0);
    // Left alone, the next one becomes ready after CHUNK_BYTES / 4096 turns.
    for (let turn = 0; turn < CHUNK_BYTES / 4096 + 1; turn++) await nextTurn();
    expect(reserve.preparedBytes).toBe(CHUNK_BYTES);
  });

  it('grows a file by doubling up to one chunk, then takes whole chunks from the reserve', async () => {
    const fs = createMemoryStorageFs();
    await fs.mkdir('/d');
    const small = await fs.open('/d/small.index', 'create');
    await small.writev([Buffer.alloc(1000, 1)], 0);
    expect(fs.allocatedBytes()).toBe(1024);
    const segment = await fs.open('/d/0.log', 'create');
    await segment.writev([Buffer.alloc(5000, 2)], 0);
    // Still small: no whole chunk yet, and the reserve made none.
    expect(fs.allocatedBytes()).toBe(1024 + 8192);
    await nextTurn();
    expect(fs.allocatedBytes()).toBe(1024 + 8192);
    // Past the first chunk: the first becomes whole and the second is whole at once, both from the
    // reserve (the second made in line, the taking turn having emptied it); one refill follows.
    const data = Buffer.alloc(CHUNK_BYTES, 3);
    await segment.writev([data], 5000);
    expect(fs.allocatedBytes()).toBe(1024 + 2 * CHUNK_BYTES);
    await nextTurn();
    expect(fs.allocatedBytes()).toBe(1024 + 3 * CHUNK_BYTES);
    const back = Buffer.alloc(CHUNK_BYTES + 5000);
    expect(await segment.read(back, 0, back.length, 0)).toBe(CHUNK_BYTES + 5000);
    expect(back.subarray(0, 5000).every((byte) => byte === 2)).toBe(true);
    expect(back.subarray(5000).every((byte) => byte === 3)).toBe(true);
    // A gap written past the end reads as zeros, in a chunk that came from the reserve.
    await segment.writev([Buffer.from([9])], 3 * CHUNK_BYTES);
    const gap = Buffer.alloc(1000, 0xff);
    await segment.read(gap, 0, gap.length, 2 * CHUNK_BYTES + 100);
    expect(gap.every((byte) => byte === 0)).toBe(true);
  });
});

/** The records of the whole batches in `data` (a read). */
function* iterateRecordsIn(data: Buffer) {
  for (const batch of splitBatches(data)) yield* iterateRecords(batch, { maxDecompressedBytes: 1 << 20 });
}

describe('whole chunks of files that are gone are used again', () => {
  const filled = (byte: number, length: number) => Buffer.alloc(length, byte);
  const isAll = (buffer: Buffer, byte: number) => buffer.every((b) => b === byte);

  it('an unlinked file gives its chunks back; the next file to grow gets them, and reads no old byte', async () => {
    const fs = createMemoryStorageFs({ recycleLimitBytes: 8 * CHUNK_BYTES });
    await fs.mkdir('/d');
    const old = await fs.open('/d/0.log', 'create');
    await old.writev([filled(0xee, 3 * CHUNK_BYTES)], 0);
    await old.close();
    const held = fs.allocatedBytes();
    await fs.unlink('/d/0.log');
    // The chunks moved to the reserve: still held, not allocated again.
    expect(fs.allocatedBytes()).toBe(held);
    const next = await fs.open('/d/1.log', 'create');
    // A gap, then one byte: every byte before it must read as zero, not as the old file's 0xee.
    await next.writev([Buffer.from([7])], 3 * CHUNK_BYTES - 1);
    expect(fs.reusedChunks()).toBe(3);
    const back = Buffer.alloc(3 * CHUNK_BYTES);
    await next.read(back, 0, back.length, 0);
    expect(isAll(back.subarray(0, back.length - 1), 0)).toBe(true);
    expect(back[back.length - 1]).toBe(7);
    expect(fs.allocatedBytes()).toBe(held);
  });

  it('bytes a chunk held before never show: extensions by truncate and by a write past the end read zeros', async () => {
    const fs = createMemoryStorageFs({ recycleLimitBytes: 8 * CHUNK_BYTES });
    await fs.mkdir('/d');
    await fs.writeFile('/d/old.log', filled(0xee, 2 * CHUNK_BYTES));
    await fs.unlink('/d/old.log');
    const file = await fs.open('/d/new.log', 'create');
    // Written into a reused chunk, then cut back inside it: the chunk keeps the bytes past the end.
    await file.writev([filled(0x11, CHUNK_BYTES + 500)], 0);
    expect(fs.reusedChunks()).toBe(2);
    await file.truncate(CHUNK_BYTES + 100);
    // Extended by truncate: the 200 bytes it exposes are zeros (not 0x11, not 0xee).
    await file.truncate(CHUNK_BYTES + 300);
    // Extended by a write 400 bytes past the end: the gap is zeros, the write is its bytes.
    await file.writev([filled(0x22, 50)], CHUNK_BYTES + 700);
    const back = Buffer.alloc(CHUNK_BYTES + 750);
    expect(await file.read(back, 0, back.length, 0)).toBe(back.length);
    expect(isAll(back.subarray(0, CHUNK_BYTES + 100), 0x11)).toBe(true);
    expect(isAll(back.subarray(CHUNK_BYTES + 100, CHUNK_BYTES + 700), 0)).toBe(true);
    expect(isAll(back.subarray(CHUNK_BYTES + 700), 0x22)).toBe(true);
    // A small file's first chunk (not from the reserve) too: cut back, extended, zeros.
    const small = await fs.open('/d/small.index', 'create');
    await small.writev([filled(0x33, 900)], 0);
    await small.truncate(100);
    await small.truncate(600);
    const smallBack = Buffer.alloc(600);
    await small.read(smallBack, 0, 600, 0);
    expect(isAll(smallBack.subarray(0, 100), 0x33)).toBe(true);
    expect(isAll(smallBack.subarray(100), 0)).toBe(true);
  });

  it('a handle open on an unlinked file keeps its bytes; the chunks come back when it closes', async () => {
    const fs = createMemoryStorageFs({ recycleLimitBytes: 8 * CHUNK_BYTES });
    await fs.mkdir('/d');
    const writer = await fs.open('/d/0.log', 'create');
    await writer.writev([filled(0x5a, 2 * CHUNK_BYTES)], 0);
    await writer.close();
    const reader = await fs.open('/d/0.log', 'read-write');
    await fs.unlink('/d/0.log');
    const other = await fs.open('/d/1.log', 'create');
    await other.writev([filled(0x11, 2 * CHUNK_BYTES)], 0);
    expect(fs.reusedChunks()).toBe(0);
    const back = Buffer.alloc(2 * CHUNK_BYTES);
    expect(await reader.read(back, 0, back.length, 0)).toBe(back.length);
    expect(isAll(back, 0x5a)).toBe(true);
    await reader.close();
    const third = await fs.open('/d/2.log', 'create');
    await third.writev([filled(0x22, 2 * CHUNK_BYTES)], 0);
    expect(fs.reusedChunks()).toBe(2);
    // The file written from the reused chunks holds its own bytes, and the other file is untouched.
    await third.read(back, 0, back.length, 0);
    expect(isAll(back, 0x22)).toBe(true);
    await other.read(back, 0, back.length, 0);
    expect(isAll(back, 0x11)).toBe(true);
  });

  it('a file renamed over, and chunks cut off by truncate, are given back too', async () => {
    const fs = createMemoryStorageFs({ recycleLimitBytes: 8 * CHUNK_BYTES });
    await fs.mkdir('/d');
    await fs.writeFile('/d/seg.log', filled(1, 2 * CHUNK_BYTES));
    await fs.writeFile('/d/seg.log.cleaned', filled(2, 100));
    await fs.rename('/d/seg.log.cleaned', '/d/seg.log');
    const grown = await fs.open('/d/a.log', 'create');
    await grown.writev([filled(3, 2 * CHUNK_BYTES)], 0);
    expect(fs.reusedChunks()).toBe(2);
    await grown.truncate(CHUNK_BYTES - 10);
    const more = await fs.open('/d/b.log', 'create');
    await more.writev([filled(4, 2 * CHUNK_BYTES)], 0);
    expect(fs.reusedChunks()).toBe(3);
    expect((await fs.readFile('/d/seg.log')).equals(filled(2, 100))).toBe(true);
    const kept = Buffer.alloc(CHUNK_BYTES - 10);
    await grown.read(kept, 0, kept.length, 0);
    expect(isAll(kept, 3)).toBe(true);
  });

  it('keeps at most recycleLimitBytes; without a limit nothing is kept', async () => {
    const limited = createMemoryStorageFs({ recycleLimitBytes: 2 * CHUNK_BYTES });
    const unlimited = createMemoryStorageFs();
    for (const fs of [limited, unlimited]) {
      await fs.writeFile('/big.log', filled(9, 5 * CHUNK_BYTES));
      const before = fs.allocatedBytes();
      await fs.unlink('/big.log');
      const kept = fs.allocatedBytes();
      expect(kept).toBeLessThan(before);
      await fs.writeFile('/next.log', filled(8, 5 * CHUNK_BYTES));
    }
    expect(limited.reusedChunks()).toBe(2);
    expect(unlimited.reusedChunks()).toBe(0);
  });

  it('a memory log past its retention fills new segments from the segments retention dropped', async () => {
    const segmentBytes = 4 * CHUNK_BYTES;
    const fs = createMemoryStorageFs({ recycleLimitBytes: segmentBytes });
    const config = { segmentBytes, retentionBytes: 3 * segmentBytes, durability: 'never' as const };
    const log = await PartitionLog.open({
      dir: '/t/0',
      config,
      fs,
      streams: { maxDecompressedBytes: 1 << 20 },
    });
    log.onRoll(() => void log.applyRetention());
    const batches: Buffer[] = [];
    for (let i = 0; i < 5000; i++) {
      const batch = encodeRecordBatch([{ key: `k${i % 7}`, value: filled(i & 0xff, 400) }]);
      batches.push(batch);
      await log.append(batch).done;
    }
    expect(log.logStartOffset).toBeGreaterThan(0n);
    expect(fs.reusedChunks()).toBeGreaterThan(0);
    // Everything still held reads back as it was appended.
    let offset = log.logStartOffset;
    while (offset < log.highWatermark) {
      const { data } = await log.read(offset, 64 * 1024);
      for (const record of iterateRecordsIn(data)) {
        expect(record.value).toEqual(filled(Number(offset) & 0xff, 400));
        offset++;
      }
    }
    // Bounded: the sealed segments within retention, the active one, at most a segment's worth of
    // chunks kept for reuse, the chunk made ahead and the small files' partly used chunks.
    expect(fs.allocatedBytes()).toBeLessThanOrEqual(
      config.retentionBytes + 2 * segmentBytes + 2 * CHUNK_BYTES,
    );
    await log.close();
  });
});
