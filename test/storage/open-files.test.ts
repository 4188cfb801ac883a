import { readdirSync } from 'node:fs';
import { rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import { encodeRecordBatch, iterateRecords, splitBatches } from '../../src/protocol/record-batch.js';
import {
  CachedFile,
  configureOpenFiles,
  DEFAULT_MAX_OPEN_FILES,
  FileRetiredError,
  MIN_MAX_OPEN_FILES,
  openFileStats,
  resetOpenFilesPeak,
} from '../../src/storage/open-files.js';
import { PartitionLog } from '../../src/storage/partition-log.js';
import { segmentFileName } from '../../src/storage/segment.js';
import { nodeStorageFs, type StorageFs } from '../../src/storage/storage-fs.js';
import { MEMORY_TEMP_ROOT, tempDir, useTempDir } from '../harness/temp-dir.js';

let dir: string;
/** Files the test opened through the cache: closed after it, so every test starts from none open. */
let created: CachedFile[] = [];
const scratch = useTempDir('ms-open-files-');
beforeEach(async () => {
  dir = scratch.path;
});
afterEach(async () => {
  for (const file of created) await file.dispose();
  created = [];
  expect(openFileStats().open).toBe(0);
  await configureOpenFiles({ maxOpenFiles: DEFAULT_MAX_OPEN_FILES });
});

const limits = { maxDecompressedBytes: 1 << 24 };

function batchOf(values: string[]): Buffer {
  return encodeRecordBatch(
    values.map((value) => ({ key: `k-${value}`, value, timestamp: 1_700_000_000_000 })),
    { baseTimestamp: 1_700_000_000_000 },
  );
}

/** Appends records keyed `k-<value>` and counts them in the stream index, as the broker does. */
function appendKeyed(log: PartitionLog, values: string[]): Promise<unknown> {
  const ticket = log.append(batchOf(values));
  for (let i = 0; i < values.length; i++) log.streams?.add(`k-${values[i]}`, Number(ticket.baseOffset) + i);
  return ticket.done;
}

async function values(log: PartitionLog): Promise<string[]> {
  const out: string[] = [];
  let offset = log.logStartOffset;
  while (offset < log.highWatermark) {
    const result = await log.read(offset, 4096);
    for (const batch of splitBatches(result.data))
      for (const record of iterateRecords(batch, limits))
        if (record.offset >= offset) out.push(record.value!.toString());
    offset = result.nextOffset;
  }
  return out;
}

/** Files this process has open, as the kernel counts them. */
function openDescriptors(): number {
  return readdirSync('/proc/self/fd').length;
}

/** `count` small files, each opened once through the cache (they push older files out). */
async function fillCache(count: number, tag: string): Promise<CachedFile[]> {
  const files: CachedFile[] = [];
  for (let i = 0; i < count; i++) {
    const path = join(dir, `${tag}-${i}`);
    await writeFile(path, `file ${i}`);
    files.push(await CachedFile.open(nodeStorageFs, path, 'read-write'));
  }
  created.push(...files);
  return files;
}

describe('CachedFile under the cap', () => {
  it('evicts the least recently used idle file and reopens it on its next use', async () => {
    await configureOpenFiles({ maxOpenFiles: MIN_MAX_OPEN_FILES });
    const before = openFileStats().open;
    const files = await fillCache(MIN_MAX_OPEN_FILES - before, 'a');
    const first = files[0]!;
    expect(first.isOpen).toBe(true);
    // One more file: the cap is full, so the least recently used idle one (the first) is closed.
    const [extra] = await fillCache(1, 'b');
    expect(first.isOpen).toBe(false);
    expect(openFileStats().open).toBe(MIN_MAX_OPEN_FILES);
    const opens = openFileStats().opens;
    const text = await first.with(async (file) => {
      const buf = Buffer.alloc(6);
      await file.read(buf, 0, 6, 0);
      return buf.toString();
    });
    expect(text).toBe('file 0');
    expect(openFileStats().opens).toBe(opens + 1);
    expect(openFileStats().open).toBeLessThanOrEqual(MIN_MAX_OPEN_FILES);
    for (const file of [...files, extra!]) await file.dispose();
  });

  it('never closes a leased file: a use beyond the cap waits until one is released', async () => {
    await configureOpenFiles({ maxOpenFiles: MIN_MAX_OPEN_FILES });
    const files = await fillCache(MIN_MAX_OPEN_FILES - openFileStats().open, 'a');
    const leased = await Promise.all(files.map((file) => file.lease()));
    expect(leased.length).toBe(files.length);
    // A new file needs a slot: every open one is leased, so it waits.
    const path = join(dir, 'late');
    await writeFile(path, 'late');
    let opened = false;
    const late = CachedFile.open(nodeStorageFs, path, 'read-write').then((file) => {
      opened = true;
      return file;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(opened).toBe(false);
    expect(openFileStats().waiting).toBe(1);
    for (const file of files) expect(file.isOpen).toBe(true);
    // The release of one lease closes that file and hands its slot over.
    files[0]!.release();
    const lateFile = await late;
    expect(files[0]!.isOpen).toBe(false);
    for (const file of files.slice(1)) expect(file.isOpen).toBe(true);
    expect(openFileStats().open).toBeLessThanOrEqual(MIN_MAX_OPEN_FILES);
    for (const file of files.slice(1)) file.release();
    for (const file of [...files, lateFile]) await file.dispose();
  });

  it('turns a vanished file and running out of descriptors into typed storage errors', async () => {
    await configureOpenFiles({ maxOpenFiles: MIN_MAX_OPEN_FILES });
    const [gone] = await fillCache(1, 'gone');
    await fillCache(MIN_MAX_OPEN_FILES, 'push');
    expect(gone!.isOpen).toBe(false);
    await unlink(gone!.path);
    await expect(gone!.lease()).rejects.toMatchObject({ code: ErrorCode.STORAGE_FILE_MISSING });
    let failOpens = false;
    const emfile: StorageFs = {
      ...nodeStorageFs,
      async open(path, mode) {
        if (failOpens) throw Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' });
        return nodeStorageFs.open(path, mode);
      },
    };
    const path = join(dir, 'limited');
    await writeFile(path, 'x');
    const limited = await CachedFile.open(emfile, path, 'read-write');
    created.push(limited);
    await fillCache(MIN_MAX_OPEN_FILES, 'push2');
    expect(limited.isOpen).toBe(false);
    failOpens = true;
    const error = await limited.lease().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: ErrorCode.STORAGE_NO_FILE_DESCRIPTORS, retriable: true });
    // The failed open gave its slot back, and the file opens once descriptors are there again.
    expect(openFileStats().open).toBeLessThanOrEqual(MIN_MAX_OPEN_FILES);
    failOpens = false;
    expect(await limited.with(async (file) => file.size())).toBe(1);
  });

  it('a frozen file keeps its inode while open, and refuses to reopen its path once closed', async () => {
    await configureOpenFiles({ maxOpenFiles: MIN_MAX_OPEN_FILES });
    const path = join(dir, 'seg');
    await writeFile(path, 'old bytes');
    const open = await CachedFile.open(nodeStorageFs, path, 'read-write');
    await open.freeze();
    await writeFile(`${path}.new`, 'NEW BYTES');
    await rename(`${path}.new`, path);
    // Pinned: pushing other files through the cache does not close it.
    await fillCache(MIN_MAX_OPEN_FILES, 'push');
    expect(open.isOpen).toBe(true);
    const read = await open.with(async (file) => {
      const buf = Buffer.alloc(9);
      await file.read(buf, 0, 9, 0);
      return buf.toString();
    });
    expect(read).toBe('old bytes');
    await open.dispose();
    expect(open.isOpen).toBe(false);
    await expect(open.lease()).rejects.toBeInstanceOf(FileRetiredError);

    const closed = await CachedFile.open(nodeStorageFs, path, 'read-write');
    await fillCache(MIN_MAX_OPEN_FILES, 'push2');
    expect(closed.isOpen).toBe(false);
    await closed.freeze();
    await expect(closed.lease()).rejects.toBeInstanceOf(FileRetiredError);
    closed.thaw();
    expect(await closed.with(async (file) => file.size())).toBe(9);
    await closed.dispose();
  });

  it('raising the cap lets waiting uses go on; lowering it closes idle files down to it', async () => {
    await configureOpenFiles({ maxOpenFiles: MIN_MAX_OPEN_FILES });
    const files = await fillCache(MIN_MAX_OPEN_FILES - openFileStats().open, 'a');
    for (const file of files) await file.lease();
    const path = join(dir, 'late');
    await writeFile(path, 'late');
    const late = CachedFile.open(nodeStorageFs, path, 'read-write');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(openFileStats().waiting).toBe(1);
    await configureOpenFiles({ maxOpenFiles: MIN_MAX_OPEN_FILES + 1 });
    const lateFile = await late;
    expect(lateFile.isOpen).toBe(true);
    for (const file of files) file.release();
    expect(openFileStats().open).toBe(MIN_MAX_OPEN_FILES + 1);
    await configureOpenFiles({ maxOpenFiles: MIN_MAX_OPEN_FILES });
    expect(openFileStats().open).toBe(MIN_MAX_OPEN_FILES);
    for (const file of [...files, lateFile]) await file.dispose();
  });

  it('refuses a cap below the minimum with INVALID_CONFIG', async () => {
    await expect(configureOpenFiles({ maxOpenFiles: 2 })).rejects.toMatchObject({
      code: ErrorCode.INVALID_CONFIG,
    });
    await expect(configureOpenFiles({ maxOpenFiles: 1.5 })).rejects.toMatchObject({
      code: ErrorCode.INVALID_CONFIG,
    });
  });
});

describe('partition logs under the cap', () => {
  it('a cold read of an evicted segment pays one open; appends and tail reads of open files none', async () => {
    await configureOpenFiles({ maxOpenFiles: MIN_MAX_OPEN_FILES });
    // Hot: the active segment is open; appends (with their fdatasync) and reads at the tail open
    // nothing, and take no slot of the cap.
    const hot = await PartitionLog.open({ dir: join(dir, 'hot'), config: { durability: 'always' } });
    await hot.append(batchOf(['first'])).done;
    const opens = openFileStats().opens;
    const open = openFileStats().open;
    for (let i = 0; i < 50; i++) {
      const ticket = hot.append(batchOf([`hot${i}`]));
      await ticket.done;
      await hot.read(ticket.baseOffset, 4096);
    }
    expect(openFileStats().opens).toBe(opens);
    expect(openFileStats().open).toBe(open);
    await hot.close();
    const log = await PartitionLog.open({
      dir: join(dir, 'cold'),
      config: { segmentBytes: 600, indexIntervalBytes: 128, durability: 'always' },
    });
    for (let i = 0; i < 12; i++) await log.append(batchOf([`v${i}`, 'x'.repeat(200)])).done;
    expect(log.segmentCount).toBeGreaterThan(3);
    // Cold: push everything out, then read the first segment: exactly one open.
    const pushed = await fillCache(MIN_MAX_OPEN_FILES, 'push');
    const before = openFileStats().opens;
    const result = await log.read(0n, 100);
    expect(result.data.length).toBeGreaterThan(0);
    expect(openFileStats().opens).toBe(before + 1);
    for (const file of pushed) await file.dispose();
    await log.close();
  });

  it('an evicted active segment takes appends again, and what was acknowledged is all there after reopen', async () => {
    await configureOpenFiles({ maxOpenFiles: MIN_MAX_OPEN_FILES });
    const open = () =>
      PartitionLog.open({
        dir,
        config: { segmentBytes: 1 << 20, durability: 'always' },
        streams: limits,
      });
    const log = await open();
    await log.append(batchOf(['a', 'b'])).done;
    const pushed = await fillCache(MIN_MAX_OPEN_FILES, 'push');
    const opens = openFileStats().opens;
    await log.append(batchOf(['c'])).done;
    expect(openFileStats().opens).toBe(opens + 1);
    expect(await values(log)).toEqual(['a', 'b', 'c']);
    for (const file of pushed) await file.dispose();
    await log.close();
    const again = await open();
    expect(await values(again)).toEqual(['a', 'b', 'c']);
    expect(again.streams!.version('k-c')).toBe(1);
    await again.close();
  });

  it('bytes written but not yet synced keep their file open until the sync (interval); never holds nothing', async () => {
    await configureOpenFiles({ maxOpenFiles: MIN_MAX_OPEN_FILES });
    const opensOfSecondAppend = async (durability: 'interval' | 'never'): Promise<number> => {
      // No interval sync happens during the test: the written bytes stay unsynced.
      const log = await PartitionLog.open({
        dir: join(dir, durability),
        config: { durability, flushIntervalMs: 3_600_000 },
      });
      await log.append(batchOf(['a'])).done;
      const pushed = await fillCache(MIN_MAX_OPEN_FILES, `push-${durability}`);
      const opens = openFileStats().opens;
      await log.append(batchOf(['b'])).done;
      const reopened = openFileStats().opens - opens;
      expect(await values(log)).toEqual(['a', 'b']);
      for (const file of pushed) await file.dispose();
      await log.close();
      return reopened;
    };
    expect(await opensOfSecondAppend('interval')).toBe(0);
    expect(await opensOfSecondAppend('never')).toBe(1);
    // Closed logs hold nothing (the hold ended with the close).
    expect(openFileStats().open).toBe(0);
  });

  it('a sealed segment file removed by hand gives STORAGE_FILE_MISSING on its read, and the rest of the log serves', async () => {
    await configureOpenFiles({ maxOpenFiles: MIN_MAX_OPEN_FILES });
    const log = await PartitionLog.open({ dir, config: { segmentBytes: 600, indexIntervalBytes: 128 } });
    for (let i = 0; i < 8; i++) await log.append(batchOf([`v${i}`, 'x'.repeat(200)])).done;
    const pushed = await fillCache(MIN_MAX_OPEN_FILES, 'push');
    await unlink(join(dir, segmentFileName(0n, 'log')));
    await expect(log.read(0n, 100)).rejects.toMatchObject({ code: ErrorCode.STORAGE_FILE_MISSING });
    const last = await log.read(log.highWatermark - 1n, 4096);
    expect(last.data.length).toBeGreaterThan(0);
    const ticket = log.append(batchOf(['after']));
    expect(await ticket.done).toBe('written');
    for (const file of pushed) await file.dispose();
    await log.close();
  });

  it('a reader whose closed segment is replaced by compaction reads on in the compacted copy', async () => {
    await configureOpenFiles({ maxOpenFiles: MIN_MAX_OPEN_FILES });
    const log = await PartitionLog.open({
      dir,
      config: { segmentBytes: 2000, indexIntervalBytes: 128 },
      streams: limits,
    });
    // Keys 0..9 twice: the first round is superseded, so compaction rewrites the first segments.
    for (let round = 0; round < 2; round++)
      for (let i = 0; i < 10; i++) {
        const ticket = log.append(
          encodeRecordBatch([{ key: `key-${i}`, value: `r${round}-${'y'.repeat(300)}`, timestamp: 1 }], {
            baseTimestamp: 1,
          }),
        );
        log.streams!.add(`key-${i}`, Number(ticket.baseOffset));
        await ticket.done;
      }
    const reader = log.reader(0n, 1);
    const seen: bigint[] = [];
    const first = await reader.next();
    for (const batch of splitBatches(first.data))
      for (const record of iterateRecords(batch, limits)) seen.push(record.offset);
    // Close every file of the log, then compact under the reader.
    const pushed = await fillCache(MIN_MAX_OPEN_FILES, 'push');
    const report = await log.compact({ deleteRetentionMs: 0 });
    expect(report.segmentsCleaned + report.segmentsRemoved).toBeGreaterThan(0);
    for (;;) {
      const result = await reader.next();
      if (result.data.length === 0) break;
      for (const batch of splitBatches(result.data))
        for (const record of iterateRecords(batch, limits)) seen.push(record.offset);
    }
    reader.close();
    // Every offset once, in order, and the second round (offsets 10..19) complete.
    expect([...seen].sort((a, b) => (a < b ? -1 : 1))).toEqual(seen);
    expect(new Set(seen).size).toBe(seen.length);
    for (let offset = 10n; offset < 20n; offset++) expect(seen).toContain(offset);
    for (const file of pushed) await file.dispose();
    await log.close();
    // The swapped stream files were committed: a stream lookup after reopening finds the kept record.
    const again = await PartitionLog.open({ dir, config: { segmentBytes: 2000 }, streams: limits });
    expect(await again.streams!.locate('key-3', 0, 10)).toEqual([{ offset: 13, sequence: 1 }]);
    await again.close();
  });
});

describe('descriptors of 2,000 partitions under a cap of 200', () => {
  it('stay under the cap plus a small constant through open, reads, appends, stream lookups and reopen', async () => {
    // Counted on tmpfs when there is one: the test counts descriptors, and 2,000 partitions' rolls
    // on a shared disk would spend minutes in fdatasync.
    const root = await tempDir('ms-open-files-', { parent: MEMORY_TEMP_ROOT });
    const CAP = 200;
    const PARTITIONS = 2000;
    // Descriptors outside the storage layer: the test worker's own, a readdir of /proc/self/fd.
    const SLACK = 8;
    await configureOpenFiles({ maxOpenFiles: CAP });
    const baseline = openDescriptors();
    let most = baseline;
    const sampler = setInterval(() => {
      most = Math.max(most, openDescriptors());
    }, 2);
    const sample = () => {
      most = Math.max(most, openDescriptors());
    };
    resetOpenFilesPeak();
    const config = { segmentBytes: 700, indexIntervalBytes: 128, durability: 'never' as const };
    const openAll = () =>
      Promise.all(
        Array.from({ length: PARTITIONS }, (_, p) =>
          PartitionLog.open({ dir: join(root, `p${p}`), config, streams: limits }),
        ),
      );
    let logs = await openAll();
    sample();
    // One more log with many sealed segments (more than the cap), besides the wide set.
    const deepConfig = { ...config, segmentBytes: 100 };
    let deep = await PartitionLog.open({ dir: join(root, 'deep'), config: deepConfig, streams: limits });
    for (let i = 0; i < 2 * CAP; i++) await appendKeyed(deep, [`deep${i}`]);
    expect(deep.segmentCount).toBe(2 * CAP);
    sample();
    // Two segments each (one sealed, with its stream file), written by all partitions at once.
    for (let round = 0; round < 2; round++) {
      await Promise.all(logs.map((log, p) => appendKeyed(log, [`p${p}-r${round}`, 'z'.repeat(400)])));
      sample();
    }
    expect(logs.every((log) => log.segmentCount === 2)).toBe(true);
    // Reads across all of them, from the start (the sealed segments) to the end.
    const read = await Promise.all(logs.map((log) => values(log)));
    sample();
    read.forEach((got, p) => {
      expect(got.filter((v) => v.startsWith('p'))).toEqual([`p${p}-r0`, `p${p}-r1`]);
    });
    expect(await values(deep)).toEqual(Array.from({ length: 2 * CAP }, (_, i) => `deep${i}`));
    // Close and reopen all at once: recovery reads what it must of every segment.
    await Promise.all([...logs, deep].map((log) => log.close()));
    [logs, deep] = await Promise.all([
      openAll(),
      PartitionLog.open({ dir: join(root, 'deep'), config: deepConfig, streams: limits }),
    ]);
    sample();
    expect(logs.every((log) => log.logEndOffset === 4n && log.segmentCount === 2)).toBe(true);
    expect(deep.logEndOffset).toBe(BigInt(2 * CAP));
    expect(await deep.streams!.locate('k-deep7', 0, 10)).toEqual([{ offset: 7, sequence: 0 }]);
    // Stream lookups read the sealed segments' stream files.
    const located = await Promise.all(logs.map((log, p) => log.streams!.locate(`k-p${p}-r0`, 0, 10)));
    expect(located.every((found) => found.length === 1 && found[0]!.offset === 0)).toBe(true);
    sample();
    await Promise.all(logs.map((log, p) => log.append(batchOf([`p${p}-again`])).done));
    const replayed = await Promise.all(
      logs.map(async (log) => {
        let batches = 0;
        for await (const chunk of log.replay(0n, 512)) batches += [...splitBatches(chunk.data)].length;
        return batches;
      }),
    );
    expect(new Set(replayed)).toEqual(new Set([3]));
    sample();
    clearInterval(sampler);
    await Promise.all([...logs, deep].map((log) => log.close()));
    expect(most - baseline, 'descriptors above the baseline').toBeLessThanOrEqual(CAP + SLACK);
    const stats = openFileStats();
    expect(stats.peak).toBeLessThanOrEqual(CAP);
    expect(stats.evictions).toBeGreaterThan(0);
    // Closed logs hold nothing.
    expect(stats.open).toBe(0);
    expect(openDescriptors()).toBeLessThanOrEqual(baseline + 1);
  }, 300_000);
});
