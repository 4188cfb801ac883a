// The persisted stream index: the stream file format (round trip, lookups, corrupt and stale files
// rebuilt) and a model test through the broker's Partition (appends over a few keys, rolls,
// retention, reopen, deleted stream files): every stream reads back exactly as the model says.
import { readdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Partition } from '../../src/broker/partitions/partition.js';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import { encodeRecordBatch, iterateRecords, splitBatches } from '../../src/protocol/record-batch.js';
import { PartitionLog } from '../../src/storage/partition-log.js';
import { nodeStorageFs, type StorageFs } from '../../src/storage/storage-fs.js';
import { STREAM_CHECKPOINT, StreamIndex } from '../../src/storage/stream-index.js';
import {
  decodeStreamFile,
  encodeStreamFile,
  entriesOf,
  filterStreamFile,
  forEachStreamKey,
  memorySource,
  StreamFileReader,
} from '../../src/storage/stream-index-file.js';
import { tempDir } from '../harness/temp-dir.js';

const LIMITS = { maxBatchBytes: 1 << 20, maxDecompressedBytes: 1 << 24 };

function openPartition(dir: string): Promise<Partition> {
  return Partition.open({
    topic: 't',
    index: 0,
    dir,
    config: { segmentBytes: 600, indexIntervalBytes: 128, durability: 'never', retentionMs: 0 },
    limits: LIMITS,
  });
}

describe('stream file format', () => {
  const input = () => {
    const keys = ['a', 'bb', 'ccc', '\u00ff\u0000k'];
    // Entries grouped per key: a: 2, bb: 1, ccc: 0 (not written: no entries never happens), k: 3.
    return encodeStreamFile({
      kind: 'segment',
      baseOffset: 100,
      nextOffset: 120,
      coveredBytes: 4096,
      keys,
      entryStart: Uint32Array.from([0, 2, 3, 3]),
      entryCount: Uint32Array.from([2, 1, 0, 3]),
      nextSequence: Float64Array.from([7, 1, 5, 2 ** 40 + 3]),
      previousOffset: Float64Array.from([50, -1, 99, 2 ** 33]),
      entryOffsets: Float64Array.from([100, 110, 101, 111, 112, 119]),
      entrySequences: Float64Array.from([5, 6, 0, 2 ** 40, 2 ** 40 + 1, 2 ** 40 + 2]),
    });
  };

  it('round-trips keys, versions, previous offsets and entries, and looks keys up', async () => {
    const buf = input();
    const header = decodeStreamFile(buf)!;
    expect(header).toMatchObject({ kind: 'segment', baseOffset: 100, nextOffset: 120, coveredBytes: 4096 });
    const seen = new Map<string, unknown>();
    forEachStreamKey(buf, header, (record) =>
      seen.set(record.key, {
        next: record.nextSequence,
        previous: record.previousOffset,
        last: record.lastOffset,
        entries: entriesOf(buf, header, record),
      }),
    );
    expect(seen.get('a')).toEqual({
      next: 7,
      previous: 50,
      last: 110,
      entries: [
        { offset: 100, sequence: 5 },
        { offset: 110, sequence: 6 },
      ],
    });
    expect(seen.get('bb')).toEqual({
      next: 1,
      previous: -1,
      last: 101,
      entries: [{ offset: 101, sequence: 0 }],
    });
    expect(seen.get('\u00ff\u0000k')).toMatchObject({ next: 2 ** 40 + 3, previous: 2 ** 33, last: 119 });
    const reader = StreamFileReader.fromBuffer(buf, header, memorySource(buf), async () => undefined);
    const run = (await reader.lookup('\u00ff\u0000k'))!;
    expect(run.firstSequence).toBe(2 ** 40);
    expect(await run.entries(2 ** 40 + 1, 10)).toEqual([
      { offset: 112, sequence: 2 ** 40 + 1 },
      { offset: 119, sequence: 2 ** 40 + 2 },
    ]);
    expect(await run.entries(0, 1)).toEqual([{ offset: 111, sequence: 2 ** 40 }]);
    expect(await reader.lookup('absent')).toBeNull();
    expect(await reader.lookup('b')).toBeNull();
  });

  it('refuses a file with any byte changed, cut short or grown', () => {
    const buf = input();
    for (let i = 0; i < buf.length; i += 3) {
      const bad = Buffer.from(buf);
      bad[i] = bad[i]! ^ 0x10;
      expect(decodeStreamFile(bad)).toBeNull();
    }
    expect(decodeStreamFile(buf.subarray(0, buf.length - 1))).toBeNull();
    expect(decodeStreamFile(Buffer.concat([buf, Buffer.alloc(1)]))).toBeNull();
  });

  it('filters a file for a compacted segment, keeping sequences', () => {
    const buf = input();
    const filtered = filterStreamFile(
      buf,
      decodeStreamFile(buf)!,
      (offset) => offset !== 100 && offset !== 101,
      2000,
    );
    const header = decodeStreamFile(filtered)!;
    expect(header.coveredBytes).toBe(2000);
    const keys = new Map<string, { next: number; previous: number; entries: number }>();
    forEachStreamKey(filtered, header, (record) => {
      keys.set(record.key, {
        next: record.nextSequence,
        previous: record.previousOffset,
        entries: entriesOf(filtered, header, record).length,
      });
      if (record.key === 'a')
        expect(entriesOf(filtered, header, record)).toEqual([{ offset: 110, sequence: 6 }]);
    });
    // Keys whose records all went stay, without entries, with their version and back link, so the
    // versions read at the next open are the ones before the compaction.
    expect([...keys.keys()].sort()).toEqual(['\u00ff\u0000k', 'a', 'bb', 'ccc'].sort());
    expect(keys.get('bb')).toEqual({ next: 1, previous: -1, entries: 0 });
    expect(keys.get('ccc')).toEqual({ next: 5, previous: 99, entries: 0 });
  });

  it('finds every one of many keys (hash order, sampled key table)', async () => {
    const n = 5000;
    const keys = Array.from({ length: n }, (_, i) => `key-${i}`);
    const buf = encodeStreamFile({
      kind: 'segment',
      baseOffset: 0,
      nextOffset: n,
      coveredBytes: 1,
      keys,
      entryStart: Uint32Array.from(keys, (_, i) => i),
      entryCount: new Uint32Array(n).fill(1),
      nextSequence: Float64Array.from(keys, (_, i) => i + 1),
      previousOffset: new Float64Array(n).fill(-1),
      entryOffsets: Float64Array.from(keys, (_, i) => i),
      entrySequences: Float64Array.from(keys, (_, i) => i),
    });
    const reader = StreamFileReader.fromBuffer(
      buf,
      decodeStreamFile(buf)!,
      memorySource(buf),
      async () => undefined,
    );
    for (let i = 0; i < n; i += 7) {
      const run = (await reader.lookup(`key-${i}`))!;
      expect(await run.entries(0, 5)).toEqual([{ offset: i, sequence: i }]);
    }
    expect(await reader.lookup(`key-${n}`)).toBeNull();
  });

  // A few keys are sorted by comparison, many by radix: both must give the file's hash order.
  it.each([0, 1, 300, 2047, 2048, 6000])('writes %i keys in hash order', (n) => {
    const keys = Array.from({ length: n }, (_, i) => `k${(i * 7919) % 100_003}`);
    const buf = encodeStreamFile({
      kind: 'segment',
      baseOffset: 0,
      nextOffset: n,
      coveredBytes: 1,
      keys,
      entryStart: Uint32Array.from(keys, (_, i) => i),
      entryCount: new Uint32Array(n).fill(1),
      nextSequence: Float64Array.from(keys, (_, i) => i + 1),
      previousOffset: new Float64Array(n).fill(-1),
      entryOffsets: Float64Array.from(keys, (_, i) => i),
      entrySequences: Float64Array.from(keys, (_, i) => i),
    });
    const header = decodeStreamFile(buf)!;
    expect(header.keyCount).toBe(n);
    const inFile: { key: string; hi: number; lo: number; offset: number }[] = [];
    forEachStreamKey(buf, header, (record) =>
      inFile.push({
        key: record.key,
        hi: record.hashHi,
        lo: record.hashLo,
        offset: entriesOf(buf, header, record)[0]!.offset,
      }),
    );
    for (let i = 1; i < inFile.length; i++) {
      const [a, b] = [inFile[i - 1]!, inFile[i]!];
      expect(a.hi < b.hi || (a.hi === b.hi && (a.lo < b.lo || (a.lo === b.lo && a.key < b.key)))).toBe(true);
    }
    // Every key kept its own entries through the reordering.
    expect(new Set(inFile.map((r) => r.key)).size).toBe(n);
    for (const record of inFile) expect(keys[record.offset]).toBe(record.key);
  });
});

type Model = Map<string, { sequence: number; offset: bigint; value: string }[]>;

async function produce(
  partition: Partition,
  model: Model,
  records: { key: string; value: string }[],
  ts: number,
) {
  const batch = encodeRecordBatch(
    records.map((r) => ({ key: r.key, value: r.value, timestamp: ts })),
    { baseTimestamp: ts },
  );
  const reply = await partition.produce({ batch, acks: 1 });
  records.forEach((r, i) => {
    const list = model.get(r.key) ?? [];
    expect(reply.sequences[i]).toBe(list.length === 0 ? 0 : list[list.length - 1]!.sequence + 1);
    list.push({ sequence: reply.sequences[i]!, offset: reply.baseOffset + BigInt(i), value: r.value });
    model.set(r.key, list);
  });
}

async function expectModel(partition: Partition, model: Model): Promise<void> {
  const start = partition.log.logStartOffset;
  for (const [key, all] of model) {
    const list = all.filter((m) => m.offset >= start);
    const version = all[all.length - 1]!.sequence + 1;
    expect(partition.streams.version(StreamIndex.keyOf(Buffer.from(key)))).toBe(version);
    for (const from of new Set([0, ...list.map((m) => m.sequence), version])) {
      const reply = await partition.readStream(Buffer.from(key), from, 1000, 0);
      expect(reply.version).toBe(version);
      expect(
        reply.records.map((r) => ({ sequence: r.sequence, offset: r.offset, value: r.value?.toString() })),
      ).toEqual(list.filter((m) => m.sequence >= from));
    }
    const two = await partition.readStream(Buffer.from(key), 0, 2, 0);
    expect(two.records.map((r) => r.sequence)).toEqual(list.slice(0, 2).map((m) => m.sequence));
  }
}

describe('stream index through the partition', () => {
  it('matches a model through appends, rolls, retention, reopen and deleted stream files', async () => {
    const keyArb = fc.constantFrom('alpha', 'beta', 'gamma', 'd\u00e9lta', '\u0000');
    const command = fc.oneof(
      {
        weight: 6,
        arbitrary: fc.record({
          kind: fc.constant('append' as const),
          keys: fc.array(keyArb, { minLength: 1, maxLength: 6 }),
        }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('retention' as const) }) },
      {
        weight: 1,
        arbitrary: fc.record({ kind: fc.constant('reopen' as const), deleteFiles: fc.boolean() }),
      },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 25 }), async (commands) => {
        const dir = await tempDir('ms-streams-');
        let partition = await openPartition(dir);
        const model: Model = new Map();
        let ts = 1000;
        try {
          for (const c of commands) {
            if (c.kind === 'append') {
              ts += 10;
              await produce(
                partition,
                model,
                c.keys.map((key, i) => ({ key, value: `${key}:${ts}:${i}` })),
                ts,
              );
            } else if (c.kind === 'retention') {
              // Deletes the oldest sealed segment (retention 0 ms, "now" just past its newest timestamp).
              await partition.log.applyRetention(ts - 5);
            } else {
              await partition.close();
              if (c.deleteFiles)
                for (const name of await readdir(dir))
                  if (name.endsWith('.streams')) await unlink(join(dir, name));
              partition = await openPartition(dir);
              expect(partition.log.recovery.streams?.baseUnknown).toBe(false);
            }
            await expectModel(partition, model);
          }
        } finally {
          await partition.close();
        }
      }),
      { numRuns: process.env.CI ? 60 : 25 },
    );
  }, 120_000);

  it('rebuilds a corrupt or stale stream file at open and reads the same', async () => {
    const dir = await tempDir('ms-streams-');
    let partition = await openPartition(dir);
    const model: Model = new Map();
    for (let i = 0; i < 30; i++)
      await produce(
        partition,
        model,
        [
          { key: `k${i % 4}`, value: `v${i}` },
          { key: 'hot', value: `h${i}` },
        ],
        1000 + i,
      );
    await partition.close();
    const files = (await readdir(dir)).filter((n) => n.endsWith('.streams')).sort();
    expect(files.length).toBeGreaterThan(3);
    // Corrupt: one byte flipped. Stale: another segment's (valid) file under this name.
    const corrupt = await readFile(join(dir, files[1]!));
    corrupt[corrupt.length - 1] = corrupt[corrupt.length - 1]! ^ 1;
    await writeFile(join(dir, files[1]!), corrupt);
    await writeFile(join(dir, files[2]!), await readFile(join(dir, files[0]!)));
    partition = await openPartition(dir);
    try {
      expect(partition.log.recovery.streams).toMatchObject({ rebuilt: 2, unsaved: 0, baseUnknown: false });
      await expectModel(partition, model);
    } finally {
      await partition.close();
    }
    partition = await openPartition(dir);
    try {
      expect(partition.log.recovery.streams).toMatchObject({ rebuilt: 0 });
    } finally {
      await partition.close();
    }
  });

  it('keeps sequences after retention and a reopen with every stream file deleted', async () => {
    const dir = await tempDir('ms-streams-');
    let partition = await openPartition(dir);
    const model: Model = new Map();
    for (let i = 0; i < 40; i++)
      await produce(partition, model, [{ key: i % 3 === 0 ? 'rare' : 'hot', value: `v${i}` }], 1000 + i);
    await produce(partition, model, [{ key: 'only-old', value: 'x' }], 1040);
    // Old enough messages after it that its segment is sealed before the new ones start.
    for (let i = 0; i < 10; i++) await produce(partition, model, [{ key: 'rare', value: `f${i}` }], 1041 + i);
    for (let i = 0; i < 20; i++) await produce(partition, model, [{ key: 'hot', value: `w${i}` }], 2000 + i);
    expect(await partition.log.applyRetention(1500)).toBeGreaterThan(0);
    expect(partition.log.logStartOffset).toBeGreaterThan(model.get('only-old')![0]!.offset);
    await expectModel(partition, model);
    await partition.close();
    for (const name of await readdir(dir)) if (name.endsWith('.streams')) await unlink(join(dir, name));
    partition = await openPartition(dir);
    try {
      expect(partition.log.recovery.streams).toMatchObject({ baseUnknown: false });
      await expectModel(partition, model);
      // A stream whose every message retention deleted keeps its version; a reader from 0 waits
      // (nothing to serve) and is woken by the stream's next message, with its true sequence.
      expect(partition.streams.version('only-old')).toBe(1);
      expect((await partition.readStream(Buffer.from('only-old'), 0, 10, 0)).records).toEqual([]);
      const waiting = partition.readStream(Buffer.from('only-old'), 0, 10, 60_000);
      await produce(partition, model, [{ key: 'hot', value: 'other stream' }], 3000);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const next = await partition.produce({
        batch: encodeRecordBatch([{ key: 'only-old', value: 'y' }]),
        acks: 1,
        expectedVersion: 1,
      });
      expect(next.sequences).toEqual([1]);
      const woken = await waiting;
      expect(woken.records.map((r) => [r.sequence, r.value?.toString()])).toEqual([[1, 'y']]);
      expect(woken.version).toBe(2);
    } finally {
      await partition.close();
    }
  });

  it('without the checkpoint after retention, reports the unknown base and restarts counting', async () => {
    const dir = await tempDir('ms-streams-');
    let partition = await openPartition(dir);
    const model: Model = new Map();
    for (let i = 0; i < 30; i++) await produce(partition, model, [{ key: 'k', value: `v${i}` }], 1000 + i);
    await partition.log.applyRetention(1010);
    await partition.close();
    for (const name of await readdir(dir))
      if (name.endsWith('.streams') || name === STREAM_CHECKPOINT) await unlink(join(dir, name));
    partition = await openPartition(dir);
    try {
      expect(partition.log.recovery.streams?.baseUnknown).toBe(true);
      const reply = await partition.readStream(Buffer.from('k'), 0, 1000, 0);
      expect(reply.records[0]!.sequence).toBe(0);
    } finally {
      await partition.close();
    }
  });
});

describe('taking back failed appends', () => {
  it('restores versions and last offsets and forgets keys left at version 0', async () => {
    const dir = await tempDir('ms-streams-');
    const index = new StreamIndex(nodeStorageFs, dir, { maxDecompressedBytes: 1 << 20 });
    const empty = {
      baseOffset: 0n,
      nextOffset: 0n,
      size: 0,
      visibleBytes: 0,
      read: async () => Buffer.alloc(0),
    };
    await index.open([empty]);
    expect([
      index.add('a', 0),
      index.add('b', 1),
      index.add('a', 2),
      index.add('a', 3),
      index.add('c', 4),
    ]).toEqual([0, 0, 1, 2, 0]);
    index.takeBack(3);
    expect([index.version('a'), index.version('b'), index.version('c'), index.size]).toEqual([2, 1, 0, 2]);
    expect(await index.locate('a', 0, 10)).toEqual([
      { offset: 0, sequence: 0 },
      { offset: 2, sequence: 1 },
    ]);
    expect(index.add('a', 3)).toBe(2);
    expect(await index.locate('a', 1, 10)).toEqual([
      { offset: 2, sequence: 1 },
      { offset: 3, sequence: 2 },
    ]);
    await index.close();
  });
});

describe('compaction hook', () => {
  it('compaction keeps stream sequences and versions, across a restart, without rebuilding stream files', async () => {
    const dir = await tempDir('ms-streams-');
    let partition = await openPartition(dir);
    const model: Model = new Map();
    for (let i = 0; i < 30; i++)
      await produce(
        partition,
        model,
        [{ key: i % 3 === 0 ? 'k' : `other${i % 4}`, value: `v${i}` }],
        1000 + i,
      );
    const report = await partition.log.compact({ now: 10_000_000 });
    expect(report.recordsRemoved).toBeGreaterThan(0);
    // Emptied segments whose keys have later records in sealed files go; their versions live on there.
    expect(report.segmentsRemoved).toBeGreaterThan(0);
    expect((await readdir(dir)).filter((n) => n.endsWith('.cleaned'))).toEqual([]);
    // What the log still holds after compaction: the latest of each key in sealed segments, all of
    // the active segment; each with the sequence it was given at produce.
    const present = new Set<bigint>();
    for (let offset = partition.log.logStartOffset; offset < partition.log.highWatermark; ) {
      const { data, nextOffset } = await partition.log.read(offset, 1 << 20);
      for (const batch of splitBatches(data))
        for (const record of iterateRecords(batch, { maxDecompressedBytes: 1 << 20 }))
          present.add(record.offset);
      offset = nextOffset;
    }
    const expected = model.get('k')!.filter((m) => present.has(BigInt(m.offset)));
    expect(expected.length).toBeLessThan(model.get('k')!.length);
    const read = async () =>
      (await partition.readStream(Buffer.from('k'), 0, 1000, 0)).records.map((r) => [r.sequence, r.offset]);
    expect(await read()).toEqual(expected.map((m) => [m.sequence, m.offset]));
    await partition.close();
    partition = await openPartition(dir);
    try {
      expect(partition.log.recovery.streams?.rebuilt).toBe(0);
      expect(await read()).toEqual(expected.map((m) => [m.sequence, m.offset]));
      expect(partition.log.streams!.version('k')).toBe(model.get('k')!.length);
    } finally {
      await partition.close();
    }
  });
});

describe('a roll that fails around the stream file', () => {
  function fsWith(fail: { streamFile: boolean; newSegment: boolean }): StorageFs {
    const enospc = () => Object.assign(new Error('ENOSPC: injected'), { code: 'ENOSPC' });
    return {
      ...nodeStorageFs,
      async writeFile(path, data) {
        if (fail.streamFile && path.endsWith('.streams.tmp')) throw enospc();
        return nodeStorageFs.writeFile(path, data);
      },
      async open(path, mode) {
        if (fail.newSegment && mode === 'create' && path.endsWith('.log')) throw enospc();
        return nodeStorageFs.open(path, mode);
      },
    };
  }

  for (const step of ['streamFile', 'newSegment'] as const) {
    it(`(${step}) fails with STORAGE_FULL, takes the appends back, and the retried roll indexes exactly what was stored`, async () => {
      const dir = await tempDir('ms-streams-');
      const fail = { streamFile: false, newSegment: false };
      const config = { segmentBytes: 600, indexIntervalBytes: 128, durability: 'never' as const };
      let log = await PartitionLog.open({ dir, config, fs: fsWith(fail), streams: LIMITS });
      const stored: { key: string; offset: number }[] = [];
      const append = async (key: string, i: number) => {
        const ticket = log.append(encodeRecordBatch([{ key, value: `value-${i}`.padEnd(60, '.') }]));
        const offset = Number(ticket.baseOffset);
        log.streams!.add(key, offset);
        try {
          await ticket.done;
          stored.push({ key, offset });
          return 'ok';
        } catch (error) {
          log.streams!.takeBack(offset);
          return (error as { code?: number }).code === ErrorCode.STORAGE_FULL
            ? 'STORAGE_FULL'
            : String(error);
        }
      };
      let i = 0;
      while (log.segmentCount < 2) await append(`k${i % 3}`, i++);
      fail[step] = true;
      const results: (string | undefined)[] = [];
      while (!results.includes('STORAGE_FULL') && i < 200) results.push(await append(`k${i % 3}`, i++));
      expect(results).toContain('STORAGE_FULL');
      fail[step] = false;
      for (let j = 0; j < 20; j++) expect(await append(`k${i % 3}`, i++)).toBe('ok');
      const check = async () => {
        for (const key of ['k0', 'k1', 'k2']) {
          const want = stored
            .filter((s) => s.key === key)
            .map((s, sequence) => ({ offset: s.offset, sequence }));
          expect(log.streams!.version(key)).toBe(want.length);
          expect(await log.streams!.locate(key, 0, 1000)).toEqual(want);
        }
      };
      await check();
      await log.close();
      log = await PartitionLog.open({ dir, config, streams: LIMITS });
      try {
        expect(log.recovery.streams).toMatchObject({ rebuilt: 0, baseUnknown: false });
        await check();
      } finally {
        await log.close();
      }
    });
  }
});

describe('a compaction whose steps after the commit fail', () => {
  it('keeps the swapped segment readable and the next open repairs the derived files', async () => {
    const dir = await tempDir('ms-streams-');
    let failStreamOpens = false;
    const emfile = () => Object.assign(new Error('EMFILE: injected'), { code: 'EMFILE' });
    const fs: StorageFs = {
      ...nodeStorageFs,
      async open(path, mode) {
        if (failStreamOpens && path.endsWith('.streams')) throw emfile();
        return nodeStorageFs.open(path, mode);
      },
    };
    const config = { segmentBytes: 600, indexIntervalBytes: 128, durability: 'never' as const };
    let log = await PartitionLog.open({ dir, config, fs, streams: LIMITS });
    const history = new Map<string, number[]>();
    for (let i = 0; i < 40; i++) {
      const key = i % 4 === 0 ? `stay${i}` : `k${i % 3}`;
      const ticket = log.append(encodeRecordBatch([{ key, value: `value-${i}`.padEnd(60, '.') }]));
      log.streams!.add(key, Number(ticket.baseOffset));
      history.set(key, [...(history.get(key) ?? []), Number(ticket.baseOffset)]);
      await ticket.done;
    }
    const readAll = async () => {
      const offsets: number[] = [];
      for (let offset = log.logStartOffset; offset < log.highWatermark; ) {
        const { data, nextOffset } = await log.read(offset, 1 << 20);
        for (const batch of splitBatches(data))
          for (const record of iterateRecords(batch, LIMITS)) offsets.push(Number(record.offset));
        offset = nextOffset;
      }
      return offsets;
    };
    // The commit rename succeeds; opening the swapped stream file afterwards fails (EMFILE).
    failStreamOpens = true;
    const report = await log.compact({ now: Date.now() + 1e9 });
    expect(report.segmentsCleaned).toBeGreaterThan(0);
    const after = await readAll();
    expect(after.length).toBeLessThan(40);
    failStreamOpens = false;
    await log.close();
    log = await PartitionLog.open({ dir, config, fs, streams: LIMITS });
    try {
      expect((await readdir(dir)).filter((n) => n.endsWith('.cleaned'))).toEqual([]);
      expect(await readAll()).toEqual(after);
      // Versions survive: every key still counts all the messages it was given.
      for (const [key, offsets] of history) expect(log.streams!.version(key)).toBe(offsets.length);
      const kept = await log.streams!.locate('k0', 0, 100);
      expect(kept.map((l) => l.offset)).toEqual(history.get('k0')!.filter((o) => after.includes(o)));
      expect(kept.map((l) => l.sequence)).toEqual(kept.map((l) => history.get('k0')!.indexOf(l.offset)));
    } finally {
      await log.close();
    }
  });
});
