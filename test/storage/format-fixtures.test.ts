// On-disk format fixtures: test/fixtures/storage/v1/ holds a partition directory written once by
// scripts/storage-fixtures.ts and expected.json, what must be read from it. Every later version
// must open these bytes and return the same records; and the current code must still write the very
// same bytes, so that a format change is noticed and made deliberately (new fixture version).
import { appendFile, cp, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type ExpectedBytes,
  type ExpectedFixture,
  expectedJson,
  FIXTURE_CONFIG,
  generateFixture,
} from '../../scripts/storage-fixtures.js';
import { CompressionCodec } from '../../src/protocol/compression.js';
import { iterateRecords, splitBatches } from '../../src/protocol/record-batch.js';
import { BATCH_OFFSETS } from '../../src/protocol/record-batch-layout.js';
import { OffsetIndex, TimeIndex } from '../../src/storage/offset-index.js';
import { PartitionLog } from '../../src/storage/partition-log.js';
import { decodeStreamFile, entriesOf, forEachStreamKey } from '../../src/storage/stream-index-file.js';
import { useTempDir } from '../harness/temp-dir.js';

const fixture = join(import.meta.dirname, '..', 'fixtures', 'storage', 'v1');
const limits = { maxDecompressedBytes: 1 << 20 };

function bytes(value: ExpectedBytes): Buffer | null {
  if (value === null) return null;
  return 'utf8' in value ? Buffer.from(value.utf8, 'utf8') : Buffer.from(value.base64, 'base64');
}

let work: string;
let expected: ExpectedFixture;
const scratch = useTempDir('ms-fixtures-', 'all');
beforeAll(async () => {
  work = scratch.path;
  expected = JSON.parse(await readFile(join(fixture, 'expected.json'), 'utf8')) as ExpectedFixture;
});

/** Opens a copy: recovery may write (index rebuilds, truncation), the committed bytes must not change. */
async function openCopy(name: string): Promise<PartitionLog> {
  const dir = join(work, name);
  await cp(join(fixture, 'partition'), dir, { recursive: true });
  return PartitionLog.open({ dir, config: FIXTURE_CONFIG });
}

describe('storage format v1 fixtures', () => {
  it('opens the fixture without repairs and serves every record as expected', async () => {
    const log = await openCopy('read');
    try {
      expect(log.recovery).toMatchObject({
        segments: expected.segments.length,
        rebuiltIndexes: 0,
        truncatedBytes: 0,
        truncation: null,
        corruption: null,
        unsavedIndexes: 0,
      });
      expect(log.state).toBe('open');
      expect(log.logStartOffset).toBe(BigInt(expected.logStartOffset));
      expect(log.logEndOffset).toBe(BigInt(expected.logEndOffset));
      expect(log.highWatermark).toBe(BigInt(expected.logEndOffset));

      // Batch by batch from the start: headers as written, records decoded (all codecs).
      let offset = log.logStartOffset;
      let seen = 0;
      while (offset < log.highWatermark) {
        const { data, nextOffset } = await log.read(offset, 1);
        const [batch] = [...splitBatches(data)];
        const want = expected.batches[seen++]!;
        expect(batch!.length).toBe(want.bytes);
        expect({
          baseOffset: batch!.readBigInt64BE(BATCH_OFFSETS.baseOffset).toString(),
          codec: batch!.readInt16BE(BATCH_OFFSETS.attributes) & 0x07,
          producerId: batch!.readBigInt64BE(BATCH_OFFSETS.producerId).toString(),
          producerEpoch: batch!.readInt16BE(BATCH_OFFSETS.producerEpoch),
          baseSequence: batch!.readInt32BE(BATCH_OFFSETS.baseSequence),
          baseTimestamp: Number(batch!.readBigInt64BE(BATCH_OFFSETS.baseTimestamp)),
          maxTimestamp: Number(batch!.readBigInt64BE(BATCH_OFFSETS.maxTimestamp)),
        }).toEqual({
          baseOffset: want.baseOffset,
          codec: CompressionCodec[want.compression],
          producerId: want.producerId,
          producerEpoch: want.producerEpoch,
          baseSequence: want.baseSequence,
          baseTimestamp: want.baseTimestamp,
          maxTimestamp: want.maxTimestamp,
        });
        const records = [...iterateRecords(batch!, limits)];
        expect(records.map((r) => r.offset.toString())).toEqual(want.records.map((r) => r.offset));
        records.forEach((record, i) => {
          const w = want.records[i]!;
          expect(record.timestamp).toBe(w.timestamp);
          expect(record.key).toEqual(bytes(w.key));
          expect(record.value).toEqual(bytes(w.value));
          expect(record.headers).toEqual(w.headers.map((h) => ({ key: h.key, value: bytes(h.value) })));
        });
        expect(nextOffset).toBe(BigInt(want.lastOffset) + 1n);
        offset = nextOffset;
      }
      expect(seen).toBe(expected.batches.length);
      expect(expected.batches.map((b) => b.compression).sort()).toEqual(
        expect.arrayContaining(['gzip', 'lz4', 'none', 'snappy', 'zstd']),
      );
    } finally {
      await log.close();
    }
  });

  it('opens with a stream index: the missing stream files are rebuilt, every stream reads as expected', async () => {
    const dir = join(work, 'streams');
    await cp(join(fixture, 'partition'), dir, { recursive: true });
    // The model: every keyed record, in log order, numbered per key from 0 (the log starts at 0).
    const streams = new Map<string, { offset: number; sequence: number }[]>();
    for (const batch of expected.batches)
      for (const record of batch.records) {
        const key = bytes(record.key);
        if (key === null) continue;
        const list = streams.get(key.toString('latin1')) ?? [];
        list.push({ offset: Number(record.offset), sequence: list.length });
        streams.set(key.toString('latin1'), list);
      }
    expect(streams.size).toBeGreaterThan(1);
    for (const round of [0, 1]) {
      const log = await PartitionLog.open({ dir, config: FIXTURE_CONFIG, streams: limits });
      try {
        expect(log.recovery.rebuiltIndexes).toBe(0);
        expect(log.recovery.streams).toMatchObject({
          loaded: round === 0 ? 0 : expected.segments.length - 1,
          rebuilt: round === 0 ? expected.segments.length - 1 : 0,
          unsaved: 0,
          baseUnknown: false,
        });
        for (const [key, list] of streams) {
          expect(log.streams!.version(key)).toBe(list.length);
          expect(await log.streams!.locate(key, 0, 1000)).toEqual(list);
          expect(await log.streams!.locate(key, list.length - 1, 1000)).toEqual(list.slice(-1));
        }
      } finally {
        await log.close();
      }
    }
    expect((await readdir(dir)).filter((name) => name.endsWith('.streams'))).toHaveLength(
      expected.segments.length - 1,
    );
  });

  it('reads from any offset, and finds offsets by timestamp, as expected', async () => {
    const log = await openCopy('lookups');
    try {
      for (const lookup of expected.offsetLookups) {
        const { data } = await log.read(BigInt(lookup.offset), 1);
        const batch = expected.batches.find(
          (b) => b.segment === lookup.segment && b.position === lookup.batchPosition,
        )!;
        expect(data.readBigInt64BE(0).toString(), `offset ${lookup.offset}`).toBe(batch.baseOffset);
      }
      for (const lookup of expected.timestampLookups) {
        expect((await log.offsetForTimestamp(lookup.timestamp)).toString(), `time ${lookup.timestamp}`).toBe(
          lookup.offset,
        );
      }
    } finally {
      await log.close();
    }
  });

  it('has index files in the documented layout that the index code decodes to the same answers', async () => {
    for (const segment of expected.segments) {
      const base = segment.file.slice(0, -'.log'.length);
      const log = await readFile(join(fixture, 'partition', segment.file));
      expect(log.length).toBe(segment.logBytes);
      if (segment.index === null) continue;
      const indexBytes = await readFile(join(fixture, 'partition', `${base}.index`));
      const timeBytes = await readFile(join(fixture, 'partition', `${base}.timeindex`));
      // The layout of docs/storage.md, read by hand: entries, then coveredBytes u64 | count u32 | crc.
      expect(indexBytes.length).toBe(segment.index.length * 8 + 16);
      expect(Number(indexBytes.readBigUInt64LE(indexBytes.length - 16))).toBe(segment.logBytes);
      expect(indexBytes.readUInt32LE(indexBytes.length - 8)).toBe(segment.index.length);
      segment.index.forEach(([relative, position], i) => {
        expect([indexBytes.readUInt32LE(i * 8), indexBytes.readUInt32LE(i * 8 + 4)]).toEqual([
          relative,
          position,
        ]);
      });
      expect(timeBytes.length).toBe(segment.timeIndex!.length * 12 + 16);
      segment.timeIndex!.forEach(([timestamp, relative], i) => {
        expect([Number(timeBytes.readBigInt64LE(i * 12)), timeBytes.readUInt32LE(i * 12 + 8)]).toEqual([
          timestamp,
          relative,
        ]);
      });
      const index = OffsetIndex.decode(indexBytes, segment.logBytes);
      const timeIndex = TimeIndex.decode(timeBytes, segment.logBytes);
      expect(index).not.toBeNull();
      expect(timeIndex).not.toBeNull();
      const segmentBase = BigInt(base);
      for (const lookup of expected.offsetLookups.filter((l) => l.segment === segment.file)) {
        expect(
          index!.floorPosition(Number(BigInt(lookup.offset) - segmentBase)),
          `offset ${lookup.offset}`,
        ).toBe(lookup.indexPosition);
      }
      // Each time-index entry points at the first batch of the segment whose max timestamp reaches it.
      for (const [timestamp, relative] of segment.timeIndex!) {
        expect(timeIndex!.firstAtOrAfter(timestamp)).toBe(relative);
        const first = expected.batches.find(
          (b) => b.segment === segment.file && b.maxTimestamp >= timestamp,
        )!;
        expect(BigInt(first.baseOffset) - segmentBase).toBe(BigInt(relative));
      }
    }
  });

  it('recovers a torn copy of the fixture to its last whole batch', async () => {
    const dir = join(work, 'torn');
    await cp(join(fixture, 'partition'), dir, { recursive: true });
    const last = expected.segments.at(-1)!;
    await appendFile(join(dir, last.file), Buffer.from('a torn tail of garbage'));
    const log = await PartitionLog.open({ dir, config: FIXTURE_CONFIG });
    try {
      expect(log.recovery.truncatedBytes).toBe(22);
      expect(log.logEndOffset).toBe(BigInt(expected.logEndOffset));
    } finally {
      await log.close();
    }
  });
});

describe.each(['v2', 'v3'] as const)('storage format %s fixtures (with stream index files)', (version) => {
  const v2 = join(import.meta.dirname, '..', 'fixtures', 'storage', version);
  let expected2: ExpectedFixture;
  beforeAll(async () => {
    expected2 = JSON.parse(await readFile(join(v2, 'expected.json'), 'utf8')) as ExpectedFixture;
  });

  it('loads the stream files as they are and reads every stream as expected', async () => {
    const dir = join(work, `${version}-read`);
    await cp(join(v2, 'partition'), dir, { recursive: true });
    const log = await PartitionLog.open({ dir, config: FIXTURE_CONFIG, streams: limits });
    try {
      expect(log.recovery).toMatchObject({ rebuiltIndexes: 0, truncatedBytes: 0, corruption: null });
      expect(log.recovery.streams).toMatchObject({ loaded: 2, rebuilt: 0, unsaved: 0, baseUnknown: false });
      expect(expected2.streams!.length).toBeGreaterThan(1);
      for (const stream of expected2.streams!) {
        const key = bytes(stream.key)!.toString('latin1');
        const want = stream.entries.map((e) => ({ offset: Number(e.offset), sequence: e.sequence }));
        expect(log.streams!.version(key)).toBe(want.length);
        expect(await log.streams!.locate(key, 0, 1000)).toEqual(want);
      }
    } finally {
      await log.close();
    }
  });

  it('has stream files in the documented layout: each holds the entries of its segment', async () => {
    const names = (await readdir(join(v2, 'partition'))).filter((n) => n.endsWith('.streams')).sort();
    expect(names).toHaveLength(2);
    const fromFiles = new Map<string, { offset: number; sequence: number }[]>();
    for (const name of names) {
      const buf = await readFile(join(v2, 'partition', name));
      expect(buf.toString('latin1', 0, 4)).toBe('MSSX');
      const header = decodeStreamFile(buf)!;
      expect(header.kind).toBe('segment');
      expect(header.baseOffset).toBe(Number(name.slice(0, 20)));
      const segment = expected2.segments.find((s) => s.file === name.replace('.streams', '.log'))!;
      expect(header.coveredBytes).toBe(segment.logBytes);
      forEachStreamKey(buf, header, (record) => {
        const list = fromFiles.get(record.key) ?? [];
        list.push(...entriesOf(buf, header, record));
        fromFiles.set(record.key, list);
      });
    }
    // The active segment's messages are not in any file; everything before it is.
    const activeBase = Number(expected2.segments[expected2.segments.length - 1]!.file.slice(0, 20));
    for (const stream of expected2.streams!) {
      const key = bytes(stream.key)!.toString('latin1');
      const want = stream.entries
        .map((e) => ({ offset: Number(e.offset), sequence: e.sequence }))
        .filter((e) => e.offset < activeBase);
      expect(fromFiles.get(key) ?? []).toEqual(want);
    }
  });

  it.runIf(version === 'v3')(
    'is what the current code writes, byte for byte (a format change must be deliberate)',
    async () => {
      const out = join(work, 'regenerated-v3');
      const regenerated = await generateFixture(out, 'v3');
      const names = (await readdir(join(v2, 'partition'))).sort();
      expect((await readdir(join(out, 'partition'))).sort()).toEqual(names);
      for (const name of names)
        expect(
          (await readFile(join(out, 'partition', name))).equals(await readFile(join(v2, 'partition', name))),
          name,
        ).toBe(true);
      expect(expectedJson(regenerated)).toBe(await readFile(join(v2, 'expected.json'), 'utf8'));
    },
  );
});
