// Recovery of a partition log at open: removes leftovers of interrupted index writes, compactions
// and retention runs, opens the segments oldest first, trusts a sealed segment through its persisted
// indexes when they match its file and scans it otherwise, and scans the last segment, cutting a
// torn or garbage tail at the last whole, valid batch. A bad batch before the last segment is
// corruption: the log then serves nothing at or past it (docs/storage.md, "Recovery").

import { isMemoryStreamerError } from '../common/errors.js';
import { LEADER_EPOCH_CHECKPOINT, LeaderEpochFile } from './leader-epoch-file.js';
import { decodeLogRestart, LOG_RESTART_CHECKPOINT, removeLogRestart } from './log-restart-file.js';
import { CLEANED_SUFFIX, parseSegmentFileName, type ScanStop, Segment, segmentFileName } from './segment.js';
import type { SegmentList } from './segment-list.js';
import type { StorageFs } from './storage-fs.js';
import { STREAM_CHECKPOINT, type StreamRecovery } from './stream-index.js';

export interface RecoveryReport {
  segments: number;
  /** Segments whose indexes were missing, corrupt or stale and were rebuilt by a scan. */
  rebuiltIndexes: number;
  scannedBytes: number;
  /** Bytes cut from the end of the last segment (a torn or garbage tail). */
  truncatedBytes: number;
  truncation: ScanStop | null;
  /** A bad batch before the end of the log: the log serves nothing at or past this offset. */
  corruption: (ScanStop & { segment: bigint }) | null;
  /**
   * Rebuilt indexes that could not be written back (e.g. the disk is full): they are used from
   * memory and rebuilt again at the next open. Indexes are derivable, so this never stops an open.
   */
  unsavedIndexes: number;
  /** The stream index's open (when the log keeps one). */
  streams?: StreamRecovery;
  /**
   * The leader-epoch checkpoint: 'none' (no file: no epoch was ever assigned), 'loaded', or
   * 'rebuilt' from the epochs the batches carry because the file was corrupt (`epochProblem`).
   */
  leaderEpochs: 'none' | 'loaded' | 'rebuilt';
  epochProblem?: string;
}

/** Removes the leftovers a crash can leave in a partition directory. */
async function removeLeftovers(fs: StorageFs, dir: string, names: string[], bases: bigint[]): Promise<void> {
  const logs = new Set(bases.map((base) => segmentFileName(base, 'log')));
  // A prepared stream file whose segment's `.log.cleaned` still exists belongs to a compaction
  // that did not commit: it goes first, durably, so that a crash during this cleanup can never
  // leave it without its `.log.cleaned` (an open would then adopt it).
  let uncommitted = 0;
  for (const name of names) {
    const prepared = /^(\d{20})\.streams\.cleaned$/.exec(name);
    if (prepared !== null && names.includes(`${prepared[1]}.log${CLEANED_SUFFIX}`)) {
      await fs.unlink(`${dir}/${name}`);
      uncommitted++;
    }
  }
  if (uncommitted > 0) await fs.syncDirectory(dir);
  for (const name of names) {
    // Leftovers of an index write or a compaction that a crash interrupted (a `.cleaned` file is
    // never committed data: committing it is its rename to `<base>.log`), and indexes of a segment
    // whose log file compaction, retention or truncation unlinked before the crash.
    // A `<base>.streams.cleaned` is written before its segment's commit rename: with the
    // `<base>.log.cleaned` still present the compaction did not commit and it goes too; without
    // it the compaction committed and the stream index adopts it (stream-index.ts, open).
    const orphanIndex = /^(\d{20})\.(index|timeindex|streams)$/.exec(name);
    const cleanedStreams = /^(\d{20})\.streams\.cleaned$/.exec(name);
    if (
      name.endsWith('.tmp') ||
      (name.endsWith(CLEANED_SUFFIX) && cleanedStreams === null) ||
      (orphanIndex !== null && !logs.has(`${orphanIndex[1]}.log`)) ||
      (cleanedStreams !== null && !logs.has(`${cleanedStreams[1]}.log`))
    )
      await fs.unlink(`${dir}/${name}`);
  }
}

/** Files of the log's old history that a restart removes (producer snapshots stay: see below). */
const OLD_LOG_FILE = /^\d{20}\.(log|index|timeindex|streams)(\.cleaned)?$/;

/**
 * A `truncateFullyAndStartAt` committed (log-restart-file.ts) and a crash stopped it before its end:
 * it is finished the same way, in the same order. Every segment file and derived file of the old
 * log goes (the stream checkpoint and the leader-epoch checkpoint describe the old history), the
 * empty segment at the restart offset is created, and only then, durably, the record goes: a crash
 * during this repeats it. Producer snapshots (the broker's) may stay: its open deletes those past
 * the log end and takes from the others only batches at or past the log start, of which the emptied
 * log has none (producer-recovery.ts). An invalid record (media corruption) is ignored and removed.
 */
async function finishRestart(
  fs: StorageFs,
  dir: string,
  names: readonly string[],
  indexIntervalBytes: number,
  now: number,
): Promise<void> {
  const offset = decodeLogRestart(await fs.readFile(`${dir}/${LOG_RESTART_CHECKPOINT}`));
  if (offset !== null) {
    for (const name of names)
      if (OLD_LOG_FILE.test(name) || name === STREAM_CHECKPOINT || name === LEADER_EPOCH_CHECKPOINT)
        await fs.unlink(`${dir}/${name}`);
    await fs.syncDirectory(dir);
    // Created empty and made durable (Segment.create fsyncs the directory).
    const segment = await Segment.create(fs, dir, offset, indexIntervalBytes, now);
    await segment.close();
  }
  await removeLogRestart(fs, dir);
}

/**
 * Opens the segments of `dir` into `segments` (an empty first segment when there is none) and the
 * leader-epoch checkpoint into `epochs`, and returns what recovery found; sets
 * `segments.corruptFrom` when a sealed segment is corrupt.
 */
export async function recoverSegments(
  fs: StorageFs,
  segments: SegmentList,
  epochs: LeaderEpochFile,
  now: number,
): Promise<RecoveryReport> {
  const dir = segments.dir;
  await fs.mkdir(dir);
  const report: RecoveryReport = {
    segments: 0,
    rebuiltIndexes: 0,
    scannedBytes: 0,
    truncatedBytes: 0,
    truncation: null,
    corruption: null,
    unsavedIndexes: 0,
    leaderEpochs: 'none',
  };
  let names = await fs.readdir(dir);
  if (names.includes(LOG_RESTART_CHECKPOINT)) {
    await finishRestart(fs, dir, names, segments.indexIntervalBytes, now);
    names = await fs.readdir(dir);
  }
  const bases = names
    .map(parseSegmentFileName)
    .filter((b): b is bigint => b !== null)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  await removeLeftovers(fs, dir, names, bases);
  for (let i = 0; i < bases.length; i++) {
    const base = bases[i]!;
    const segment = await Segment.openExisting(fs, dir, base, segments.indexIntervalBytes, now);
    const isLast = i === bases.length - 1;
    segments.push(segment);
    if (!isLast && segments.corruptFrom === null && (await segment.loadIndexes())) {
      segment.visibleBytes = segment.size;
      continue;
    }
    // Sealed segments may have offset gaps where the log cleaner dropped whole batches, and so may
    // the last one when a truncation made a compacted segment the active one again.
    const scan = await segment.scan(true);
    report.scannedBytes += scan.validBytes;
    if (!isLast) report.rebuiltIndexes++;
    if (scan.stop !== null && segments.corruptFrom === null) {
      if (isLast) {
        report.truncatedBytes = segment.size - scan.validBytes;
        report.truncation = scan.stop;
        await segment.truncateTo(scan.validBytes, scan.nextOffset);
        await segment.datasync();
      } else {
        report.corruption = { ...scan.stop, segment: base };
        segments.corruptFrom = scan.stop.offset;
      }
    }
    segment.visibleBytes = scan.validBytes;
    if (!isLast && scan.stop === null) {
      try {
        await segment.persistIndexes();
      } catch {
        report.unsavedIndexes++;
      }
    }
  }
  if (segments.count === 0) {
    segments.push(await Segment.create(fs, dir, 0n, segments.indexIntervalBytes, now));
  }
  report.segments = segments.count;
  if (names.includes(LEADER_EPOCH_CHECKPOINT)) await recoverLeaderEpochs(fs, segments, epochs, report);
  return report;
}

/**
 * Loads the leader-epoch checkpoint (or rebuilds a corrupt one from the batches' epochs) and drops
 * what lies outside the recovered log: entries past its end (batches a crash took), epochs that
 * ended before its start.
 */
async function recoverLeaderEpochs(
  fs: StorageFs,
  segments: SegmentList,
  epochs: LeaderEpochFile,
  report: RecoveryReport,
): Promise<void> {
  try {
    const entries = await LeaderEpochFile.read(fs, segments.dir);
    for (const entry of entries ?? []) epochs.assign(entry.epoch, entry.startOffset);
    epochs.dirty = false;
    report.leaderEpochs = 'loaded';
  } catch (error) {
    if (!isMemoryStreamerError(error)) throw error;
    report.leaderEpochs = 'rebuilt';
    report.epochProblem = error.message;
    epochs.clear();
    const end = segments.corruptFrom ?? segments.active.nextOffset;
    for (const segment of segments.all) {
      await segment.forEachBatchHeader((baseOffset, epoch) => {
        if (epoch > epochs.latestEpoch && baseOffset < end) epochs.assign(epoch, baseOffset);
      });
    }
    epochs.dirty = true;
  }
  epochs.truncateFromEnd(segments.corruptFrom ?? segments.active.nextOffset);
  epochs.truncateFromStart(segments.first.baseOffset);
  // Written now when it changed; a failure (disk full) leaves it to the next append's write.
  await epochs.write().catch(() => undefined);
}
