// Crash states of compaction: a workload that appends several versions per key and tombstones, then
// compacts (with appends going on during the compaction) through the recording file system
// (helpers/recording-fs.ts). For every crash point × crash model the disk state is recovered with
// the real file system and must: open cleanly, leave no `.cleaned` file, serve only records that
// were appended (same offset, key and value), lose no acknowledged record other than one compaction
// may remove, and show for every key a latest value no older than the latest acknowledged one —
// the pre- or the post-compaction view, never an older value brought back (docs/storage.md,
// "Compaction", "Crash safety").
import { createHash } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeRecordBatch, iterateRecords, splitBatches } from '../../src/protocol/record-batch.js';
import { PartitionLog, type PartitionLogConfig } from '../../src/storage/partition-log.js';
import { parseSegmentFileName, segmentFileName } from '../../src/storage/segment.js';
import { nodeStorageFs } from '../../src/storage/storage-fs.js';
import { MEMORY_TEMP_ROOT, makeTempDir, removeTempDir, useTempDir } from '../harness/temp-dir.js';
import {
  CRASH_VARIANTS,
  type CrashState,
  type CrashVariant,
  crashStates,
  type JournalOp,
  materialize,
  type RecordingOptions,
  recordingFs,
} from './helpers/recording-fs.js';

const T0 = 1_700_000_000_000;
const limits = { maxDecompressedBytes: 1 << 24 };
const CONFIG: Partial<PartitionLogConfig> = {
  durability: 'always',
  segmentBytes: 700,
  indexIntervalBytes: 128,
};

interface Rec {
  offset: bigint;
  key: string | null;
  value: string | null;
  /** Journal length when the append was acknowledged. */
  ackAt: number | null;
}

/** Batch `i`: one or two records over five keys; every seventh record is a tombstone, some keyless. */
function makeBatch(i: number): { key: string | null; value: string | null }[] {
  // A key written once and deleted: its tombstone is its latest record, dropped by compaction.
  if (i === 3) return [{ key: 'gone', value: 'soon deleted' }];
  if (i === 6) return [{ key: 'gone', value: null }];
  return Array.from({ length: 1 + (i % 2) }, (_, r) => {
    const n = i * 2 + r;
    const key = n % 11 === 10 ? null : `k${n % 5}`;
    const value = n % 7 === 6 ? null : `v${n}:${'x'.repeat(20 + ((n * 37) % 90))}`;
    return { key, value };
  });
}

interface Recorded {
  config: Partial<PartitionLogConfig>;
  journal: JournalOp[];
  records: Rec[];
  /** Journal length when compaction started: from there on every record below `sealedBelow` is durable. */
  compactionStart: number;
  /** Base offset of the active segment when compaction started (sealed segments are synced). */
  sealedBelow: bigint;
}

async function record(
  root: string,
  config: Partial<PartitionLogConfig> = CONFIG,
  /** Test-the-test: fdatasyncs of this file only pretend (name of the active segment, set at compaction). */
  options: RecordingOptions & { skipActiveSyncDuringCompaction?: boolean } = {},
): Promise<Recorded> {
  const dir = await makeTempDir('live-', { parent: root });
  let skipSyncOf: string | null = null;
  const shim = recordingFs(nodeStorageFs, {
    dropDatasync: (name, n) => name === skipSyncOf || (options.dropDatasync?.(name, n) ?? false),
  });
  const log = await PartitionLog.open({ dir, config, fs: shim.fs, streams: limits });
  const records: Rec[] = [];
  const append = (i: number): Promise<void> => {
    const inputs = makeBatch(i);
    const timestamp = T0 + i * 1000;
    const ticket = log.append(
      encodeRecordBatch(
        inputs.map((r) => ({ ...r, timestamp })),
        { baseTimestamp: timestamp },
      ),
    );
    // What the broker's partition does on produce: the stream index counts each keyed record.
    inputs.forEach((r, j) => {
      if (r.key !== null) log.streams!.add(r.key, Number(ticket.baseOffset) + j);
    });
    const entries = inputs.map((r, j) => ({
      offset: ticket.baseOffset + BigInt(j),
      ...r,
      ackAt: null as number | null,
    }));
    records.push(...entries);
    return ticket.done.then(() => {
      for (const entry of entries) entry.ackAt = shim.journal.length;
    });
  };
  for (let i = 0; i < 24; i++) await append(i);
  // Compaction, with appends going on while it runs; tombstones are all past deleteRetentionMs.
  const sealedBelow = (await readdir(dir))
    .map(parseSegmentFileName)
    .reduce<bigint>((a, b) => (b !== null && b > a ? b : a), 0n);
  const compactionStart = shim.journal.length;
  if (options.skipActiveSyncDuringCompaction) skipSyncOf = segmentFileName(sealedBelow, 'log');
  const compaction = log.compact({ now: T0 + 100_000, deleteRetentionMs: 10_000 });
  for (let i = 24; i < 28; i++) await append(i);
  const report = await compaction;
  skipSyncOf = null;
  expect(report.segmentsCleaned).toBeGreaterThan(0);
  expect(report.tombstonesRemoved).toBeGreaterThan(0);
  await log.close();
  await removeTempDir(dir);
  return { config, journal: shim.journal, records, compactionStart, sealedBelow };
}

async function served(log: PartitionLog, from: bigint): Promise<Rec[]> {
  const out: Rec[] = [];
  let offset = from;
  while (offset < log.highWatermark) {
    const result = await log.read(offset, 1 << 20);
    for (const batch of splitBatches(result.data))
      for (const r of iterateRecords(batch, limits))
        if (r.offset >= offset)
          out.push({
            offset: r.offset,
            key: r.key?.toString() ?? null,
            value: r.value?.toString() ?? null,
            ackAt: null,
          });
    if (result.nextOffset <= offset) throw new Error(`read at ${offset} made no progress`);
    offset = result.nextOffset;
  }
  return out;
}

async function check(
  rec: Recorded,
  state: CrashState,
  k: number,
  dir: string,
  /** With durability `always`, or after a process crash (`keep-all`). */
  acksMustSurvive: boolean,
): Promise<string[]> {
  const { records } = rec;
  const problems: string[] = [];
  await materialize(state, dir);
  let log: PartitionLog;
  try {
    log = await PartitionLog.open({ dir, config: rec.config, streams: limits });
  } catch (error) {
    return [`recovery threw: ${(error as Error).message}`];
  }
  try {
    if (log.state !== 'open' || log.recovery.corruption !== null)
      problems.push(`log is ${log.state} after recovery`);
    if ((await readdir(dir)).some((name) => name.endsWith('.cleaned')))
      problems.push('a .cleaned file is left');
    const all = await served(log, log.logStartOffset);
    const byOffset = new Map(records.map((r) => [r.offset, r]));
    for (const r of all) {
      const appended = byOffset.get(r.offset);
      if (appended === undefined || appended.key !== r.key || appended.value !== r.value)
        problems.push(`phantom record at offset ${r.offset}`);
    }
    // Records that must survive: acknowledged ones (when acknowledgements mean durable here), and
    // once compaction started, everything in the sealed segments (synced at their roll).
    const acked = records.filter(
      (r) =>
        (acksMustSurvive && r.ackAt !== null && r.ackAt <= k) ||
        (k >= rec.compactionStart && r.offset < rec.sealedBelow),
    );
    const present = new Set(all.map((r) => r.offset));
    // Keyless records are never compacted away.
    for (const r of acked)
      if (r.key === null && !present.has(r.offset)) problems.push(`lost keyless record ${r.offset}`);
    // Per key: the latest value served is at least as new as the latest acknowledged one; only a
    // deleted key (latest acknowledged record a tombstone) may be absent.
    const latestServed = new Map<string, Rec>();
    for (const r of all) if (r.key !== null) latestServed.set(r.key, r);
    const latestAcked = new Map<string, Rec>();
    for (const r of acked) if (r.key !== null) latestAcked.set(r.key, r);
    for (const [key, want] of latestAcked) {
      const got = latestServed.get(key);
      if (got === undefined ? want.value !== null : got.offset < want.offset)
        problems.push(
          `key ${key}: serves offset ${got?.offset ?? 'none'}, acknowledged latest is ${want.offset}`,
        );
    }
    // Reads by offset, through the indexes, land on the next record that exists.
    for (let o = log.logStartOffset; o < log.highWatermark; o++) {
      const [first] = await served(log, o);
      const expected = all.find((r) => r.offset >= o);
      if (first?.offset !== expected?.offset)
        problems.push(`read(${o}) starts at ${first?.offset}, not ${expected?.offset}`);
    }
    // The stream index: compaction keeps sequences (the filtered stream file is made durable before
    // the segment's commit rename), so every served keyed record has its sequence of the append
    // history, and a key's version counts every record of it the log still spans — removed ones too.
    const history = new Map<bigint, number>();
    const version = new Map<string, number>();
    for (const r of records) {
      if (r.key === null || r.offset >= log.logEndOffset) continue;
      const n = version.get(r.key) ?? 0;
      history.set(r.offset, n);
      version.set(r.key, n + 1);
    }
    const streams = log.streams!;
    for (const [key, want] of version) {
      if (streams.version(key) !== want)
        problems.push(`stream ${key}: version ${streams.version(key)}, not ${want}`);
      const located = await streams.locate(key, 0, 1000);
      const expected = all
        .filter((r) => r.key === key)
        .map((r) => ({ offset: Number(r.offset), sequence: history.get(r.offset) }));
      if (JSON.stringify(located) !== JSON.stringify(expected))
        problems.push(`stream ${key}: index ${JSON.stringify(located)}, log ${JSON.stringify(expected)}`);
    }
    const lastAcked = acked.at(-1);
    if (lastAcked !== undefined && log.logEndOffset <= lastAcked.offset)
      problems.push(`log end ${log.logEndOffset} went below acknowledged offset ${lastAcked.offset}`);
    const end = log.logEndOffset;
    const ticket = log.append(encodeRecordBatch([{ key: 'after', value: 'crash', timestamp: T0 }]));
    await ticket.done;
    if (ticket.baseOffset !== end)
      problems.push(`append after recovery got ${ticket.baseOffset}, not ${end}`);
  } catch (error) {
    problems.push(`check threw: ${(error as Error).message}`);
  }
  await log.close().catch(() => undefined);
  return problems;
}

function fingerprint(state: CrashState): string {
  const hash = createHash('sha1');
  for (const name of [...state.files.keys()].sort())
    hash.update(name).update('\0').update(state.files.get(name)!);
  return hash.digest('hex');
}

let root = '';
const scratch = useTempDir('ms-compaction-crash-', 'all', { parent: MEMORY_TEMP_ROOT });
beforeAll(async () => {
  root = scratch.path;
});

async function sweep(
  rec: Recorded,
  variants: readonly CrashVariant[],
): Promise<{ states: number; failures: string[] }> {
  const { journal } = rec;
  const seen = new Set<string>();
  const failures: string[] = [];
  let states = 0;
  const sweepRoot = await makeTempDir('sweep-', { parent: root });
  // Latest crash point first: a state shared by several crash points is checked against the most
  // acknowledgements (what must hold at earlier points is included).
  for (let k = journal.length; k >= 0; k--) {
    for (const variant of variants) {
      const acksMustSurvive = rec.config.durability === 'always' || variant === 'keep-all';
      for (const state of crashStates(journal, k, variant)) {
        const key = `${acksMustSurvive} ${fingerprint(state)}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const dir = join(sweepRoot, `state-${states++}`);
        for (const problem of await check(rec, state, k, dir, acksMustSurvive))
          failures.push(`${state.label}: ${problem}`);
        await rm(dir, { recursive: true, force: true });
      }
    }
  }
  return { states, failures };
}

describe('compaction crash states', () => {
  it(`every crash point × ${CRASH_VARIANTS.length} crash models recovers a valid log without loss`, async () => {
    const rec = await record(root);
    const kinds = new Map<string, number>();
    for (const op of rec.journal) kinds.set(op.kind, (kinds.get(op.kind) ?? 0) + 1);
    expect(kinds.get('rename')).toBeGreaterThan(0);
    const { states, failures } = await sweep(rec, CRASH_VARIANTS);
    console.log(
      `compaction crash states: ${rec.journal.length} operations ${JSON.stringify(Object.fromEntries(kinds))}, ${states} distinct states recovered`,
    );
    expect(failures.slice(0, 20)).toEqual([]);
  });

  // Durability interval: acknowledgements survive only a process crash, but what compaction
  // removes must still never be lost — it syncs the active segment (where the superseding records
  // may be) before it builds its map.
  it(`durability interval: every crash point × ${CRASH_VARIANTS.length} crash models`, async () => {
    const rec = await record(root, { ...CONFIG, durability: 'interval', flushIntervalMs: 3_600_000 });
    const { states, failures } = await sweep(rec, CRASH_VARIANTS);
    console.log(`compaction crash states (interval): ${states} distinct states recovered`);
    expect(failures.slice(0, 20)).toEqual([]);
  });

  // Test-the-test: a cleaner whose fdatasync of the cleaned file only pretends (renamed over the
  // segment with its data still in the page cache) must be caught after a power loss.
  it('the checker reports the loss when the cleaned file is not synced before the rename', async () => {
    const rec = await record(root, CONFIG, { dropDatasync: (name) => name.endsWith('.cleaned') });
    const { failures } = await sweep(rec, ['lose-unsynced']);
    expect(failures.length).toBeGreaterThan(0);
  });

  it('the checker reports a lost key when compaction does not sync the active segment (interval)', async () => {
    const rec = await record(
      root,
      { ...CONFIG, durability: 'interval', flushIntervalMs: 3_600_000 },
      { skipActiveSyncDuringCompaction: true },
    );
    const { failures } = await sweep(rec, ['lose-unsynced']);
    expect(failures.some((f) => / key k\d: /.test(f))).toBe(true);
  });
});
