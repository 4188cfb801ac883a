// The stream index of one partition: key → version (next sequence) and last offset for every
// stream, in memory, for expected-version appends; key → (sequence, offset) entries on disk, one
// stream file per sealed segment (stream-index-file.ts) plus the active segment's entries in memory
// (stream-active-entries.ts), so one stream among millions is read without scanning the partition.
// A key's entries in a segment name the key's last offset before that segment, so a read walks
// back from the stream's last offset straight to the segments that hold it.
//
// At open the versions come from the checkpoint and the sealed segments' stream files, plus a scan
// of the active segment; a missing, corrupt or stale stream file is rebuilt by scanning its segment
// with the versions at the segment's start (everything before it). Retention writes the checkpoint
// (the versions at the new log start) before it deletes segments, so sequences survive it.
// docs/storage.md, "Stream index".

import { join } from 'node:path';
import { forEachKey, type InflateLimits, splitBatches } from '../protocol/record-batch.js';
import { BATCH_LOG_OVERHEAD, BATCH_OFFSETS } from '../protocol/record-batch-layout.js';
import { CachedFile, FileRetiredError } from './open-files.js';
import type { StorageFs } from './storage-fs.js';
import { ActiveStreamEntries, StreamEntry } from './stream-active-entries.js';
import {
  decodeStreamFile,
  encodeStreamFileSliced,
  fileSource,
  filterStreamFile,
  forEachStreamKey,
  forEachStreamVersion,
  memorySource,
  mergeCheckpoint,
  type StreamFileHeader,
  StreamFileReader,
} from './stream-index-file.js';

export { StreamEntry };

/** What the stream index needs of a segment. */
export interface StreamSegmentView {
  baseOffset: bigint;
  nextOffset: bigint;
  size: number;
  visibleBytes: number;
  read(position: number, length: number): Promise<Buffer>;
}

export interface StreamRecovery {
  /** Sealed segments whose stream file was loaded as it was. */
  loaded: number;
  /** Sealed segments whose stream file was missing, corrupt or stale and rebuilt by a scan. */
  rebuilt: number;
  /** Rebuilt files that could not be written (disk full): used from memory, rebuilt next open. */
  unsaved: number;
  /**
   * True when the log does not start at offset 0 and no valid checkpoint gave the versions at its
   * start while the first segment's stream file had to be rebuilt: streams with messages before
   * the log start then count their sequences from 0 again (docs/storage.md).
   */
  baseUnknown: boolean;
  scannedBytes: number;
}

interface SealedStreams {
  base: number;
  next: number;
  reader: StreamFileReader;
  /** The stream file, opened on a lookup's first read (null when the reader reads from memory). */
  file: CachedFile | null;
  /** The file's bytes when it could not be written. */
  memory: Buffer | null;
  /** Lookups in flight that hold this reader: a replaced or dropped one is closed when they end. */
  users: number;
  retired: boolean;
}

export const STREAM_CHECKPOINT = 'streams.checkpoint';
/** Suffix of a compacted segment's stream file before the segment's commit (prepareReplacement). */
export const CLEANED_STREAMS_SUFFIX = '.cleaned';

/** A filtered stream file written for a compaction that has not committed yet. */
export interface PendingStreamReplacement {
  base: number;
  buf: Buffer;
}
const SCAN_CHUNK = 1024 * 1024;

export function streamFileName(baseOffset: bigint | number): string {
  return `${baseOffset.toString().padStart(20, '0')}.streams`;
}

export class StreamIndex {
  private readonly versions = new Map<string, StreamEntry>();
  private active = new ActiveStreamEntries((key) => this.versions.get(key));
  private sealed: SealedStreams[] = [];
  private checkpointBase = -1;

  constructor(
    private readonly fs: StorageFs,
    private readonly dir: string,
    private readonly limits: InflateLimits,
  ) {}

  static keyOf(key: Buffer): string {
    return key.toString('latin1');
  }

  get size(): number {
    return this.versions.size;
  }

  /** Bytes of the index besides the versions map: active entries and per-file samples. */
  get memoryBytes(): number {
    let total = this.active.memoryBytes;
    for (const s of this.sealed) total += s.reader.memoryBytes;
    return total;
  }

  version(key: string): number {
    return this.versions.get(key)?.version ?? 0;
  }

  /** Counts one message of `key` at `offset` (appended in offset order); returns its sequence. */
  add(key: string, offset: number): number {
    let entry = this.versions.get(key);
    if (entry === undefined) {
      entry = new StreamEntry(0, -1, -1);
      this.versions.set(key, entry);
    }
    this.active.add(key, entry, offset, entry.lastOffset);
    entry.lastOffset = offset;
    return entry.version++;
  }

  /**
   * Counts every keyed record of an appended batch, in offset order (a replica's append: the batch
   * as its leader wrote it). A batch whose records cannot be read throws BAD_RECORD_BATCH after
   * counting the records before the bad one: the caller takes back from the batch's base offset.
   */
  addBatch(batch: Buffer): void {
    const base = Number(batch.readBigInt64BE(BATCH_OFFSETS.baseOffset));
    forEachKey(batch, this.limits, (key, delta) => {
      if (key !== null) this.add(StreamIndex.keyOf(key), base + delta);
    });
  }

  /**
   * Takes back every message at or past `offset`: appends that failed (the log takes back a
   * suffix of offsets, all of them past the sealed segments). Repeating it is harmless.
   */
  takeBack(offset: number): void {
    this.active.truncateFrom(offset, (key) => this.versions.delete(key));
  }

  private path(name: string): string {
    return join(this.dir, name);
  }

  private async readValid(name: string): Promise<{ buf: Buffer; header: StreamFileHeader } | null> {
    let buf: Buffer;
    try {
      buf = await this.fs.readFile(this.path(name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    const header = decodeStreamFile(buf);
    return header === null ? null : { buf, header };
  }

  /** Loads or rebuilds the index for the log's segments (the last one is the active segment). */
  async open(segments: readonly StreamSegmentView[]): Promise<StreamRecovery> {
    const report: StreamRecovery = { loaded: 0, rebuilt: 0, unsaved: 0, baseUnknown: false, scannedBytes: 0 };
    const first = Number(segments[0]!.baseOffset);
    const checkpoint = await this.readValid(STREAM_CHECKPOINT);
    if (checkpoint !== null && checkpoint.header.kind === 'checkpoint') {
      this.checkpointBase = checkpoint.header.baseOffset;
      forEachStreamVersion(checkpoint.buf, checkpoint.header, (key, version, lastOffset) => {
        this.versions.set(key, new StreamEntry(version, lastOffset, -1));
      });
    }
    let baseKnown = first === 0 || this.checkpointBase >= 0;
    for (let i = 0; i < segments.length - 1; i++) {
      const segment = segments[i]!;
      const base = Number(segment.baseOffset);
      await this.adoptCleaned(base);
      const file = await this.readValid(streamFileName(base));
      const valid =
        file !== null &&
        file.header.kind === 'segment' &&
        file.header.baseOffset === base &&
        // A sealed segment spans the offsets up to the next segment's base. Compaction can drop the
        // segment's last batches (its recovered nextOffset is then lower) or a whole segment after
        // it, so the file's end offset is checked against that range; its size must match exactly.
        file.header.nextOffset >= Number(segment.nextOffset) &&
        file.header.nextOffset <= Number(segments[i + 1]!.baseOffset) &&
        file.header.coveredBytes === segment.size;
      // Segments below the checkpoint are left over from a retention a crash interrupted: their
      // keys are in the checkpoint already; they serve reads if their file is valid.
      const covered = base < this.checkpointBase;
      if (valid) {
        if (!covered)
          forEachStreamVersion(file.buf, file.header, (key, version, last) => this.apply(key, version, last));
        this.insert(await this.reader(base, Number(segment.nextOffset), file.buf, file.header, false));
        report.loaded++;
        baseKnown = true;
        continue;
      }
      if (covered) continue;
      if (!baseKnown) report.baseUnknown = true;
      baseKnown = true;
      report.scannedBytes += await this.scan(segment);
      report.rebuilt++;
      const sealed = await this.writeSealed(segment, true);
      this.commitSealed(sealed);
      if (!sealed.saved) report.unsaved++;
    }
    const last = segments[segments.length - 1]!;
    if (!baseKnown && last.size > 0) report.baseUnknown = true;
    report.scannedBytes += await this.scan(last);
    return report;
  }

  /**
   * A `<base>.streams.cleaned` that survived recovery belongs to a compaction that committed (its
   * segment's `.log.cleaned` is gone; partition-log.ts recovery removes it otherwise): it replaces
   * the segment's old stream file. The validity check that follows still compares it with the
   * segment, so a file that does not match is rebuilt.
   */
  private async adoptCleaned(base: number): Promise<void> {
    const path = this.path(streamFileName(base));
    if (!(await this.fs.exists(`${path}${CLEANED_STREAMS_SUFFIX}`))) return;
    await this.fs.rename(`${path}${CLEANED_STREAMS_SUFFIX}`, path);
    await this.fs.syncDirectory(this.dir);
  }

  private apply(key: string, version: number, lastOffset: number): void {
    const entry = this.versions.get(key);
    if (entry === undefined) this.versions.set(key, new StreamEntry(version, lastOffset, -1));
    else {
      entry.version = version;
      entry.lastOffset = lastOffset;
    }
  }

  /** Adds every keyed record of the segment's readable batches to the active entries. */
  private scan(segment: StreamSegmentView): Promise<number> {
    return this.forEachKeyedRecord(segment, (key, offset) => this.add(key, offset));
  }

  /** Calls `fn` for every keyed record of the segment's readable batches; returns the bytes read. */
  private async forEachKeyedRecord(
    segment: StreamSegmentView,
    fn: (key: string, offset: number) => void,
  ): Promise<number> {
    const end = segment.visibleBytes;
    let position = 0;
    while (position < end) {
      let chunk = await segment.read(position, Math.min(SCAN_CHUNK, end - position));
      const first = chunk.readInt32BE(BATCH_OFFSETS.batchLength) + BATCH_LOG_OVERHEAD;
      if (first > chunk.length) chunk = await segment.read(position, first);
      let used = 0;
      for (const batch of splitBatches(chunk)) {
        const base = Number(batch.readBigInt64BE(BATCH_OFFSETS.baseOffset));
        forEachKey(batch, this.limits, (key, delta) => {
          if (key !== null) fn(StreamIndex.keyOf(key), base + delta);
        });
        used += batch.length;
      }
      if (used === 0) break;
      position += used;
    }
    return position;
  }

  /**
   * Writes the stream file of a segment that is being sealed (at a roll, or rebuilt at open) and
   * opens it for lookups, changing nothing in memory: `commitSealed` does that once the roll is
   * done, so a roll that fails after this step (and is retried, maybe after more batches went
   * into the segment) leaves the index as it was. At a roll a write error is thrown (the roll
   * fails); at open the file is kept in memory instead and `saved` is false.
   */
  async writeSealed(segment: StreamSegmentView, atOpen = false): Promise<SealedStreams & { saved: boolean }> {
    const base = Number(segment.baseOffset);
    const next = Number(segment.nextOffset);
    const buf = await encodeStreamFileSliced(this.active.sealInput(base, next, segment.size));
    const header = decodeStreamFile(buf)!;
    let saved = true;
    try {
      const path = this.path(streamFileName(base));
      await this.fs.writeFile(`${path}.tmp`, buf);
      await this.fs.rename(`${path}.tmp`, path);
      await this.fs.syncDirectory(this.dir);
    } catch (error) {
      if (!atOpen) throw error;
      saved = false;
    }
    return { ...(await this.reader(base, next, buf, header, !saved)), saved };
  }

  /** The segment is sealed: lookups below its end go to its file, the active entries move on. */
  commitSealed(sealed: SealedStreams): void {
    this.insert(sealed);
    this.active = this.active.split(this.active.indexOf(sealed.next));
  }

  private async reader(
    base: number,
    next: number,
    buf: Buffer,
    header: StreamFileHeader,
    inMemory: boolean,
  ): Promise<SealedStreams> {
    let reader: StreamFileReader;
    let file: CachedFile | null = null;
    if (inMemory) {
      reader = StreamFileReader.fromBuffer(buf, header, memorySource(buf), async () => undefined);
    } else {
      // Opened lazily, under the process-wide cap of open files: most stream files are never read.
      const cached = CachedFile.lazy(this.fs, this.path(streamFileName(base)));
      reader = StreamFileReader.fromBuffer(buf, header, fileSource(cached), () => cached.dispose());
      file = cached;
    }
    return { base, next, reader, file, memory: inMemory ? buf : null, users: 0, retired: false };
  }

  private insert(sealed: SealedStreams): void {
    let at = this.sealed.length;
    while (at > 0 && this.sealed[at - 1]!.base > sealed.base) at--;
    this.sealed.splice(at, 0, sealed);
  }

  /**
   * For compaction, before it renames a rewritten segment into place (offsets kept): filters the
   * segment's stream file to the keyed records the cleaned copy still holds (sequences unchanged,
   * keys whose records all went keep their version with no entries) and writes it durably as
   * `<base>.streams.cleaned`. Recovery removes that file while the segment's `.log.cleaned` exists
   * (no commit) and adopts it once the log file was renamed (open). Null when the segment has no
   * valid stream file (then the next open rebuilds it).
   */
  async prepareReplacement(cleaned: StreamSegmentView): Promise<PendingStreamReplacement | null> {
    const base = Number(cleaned.baseOffset);
    const at = this.sealed.findIndex((x) => x.base === base);
    if (at < 0) return null;
    const old = this.sealed[at]!;
    const file = old.memory !== null ? { buf: old.memory } : await this.readValid(streamFileName(base));
    const header = file === null ? null : decodeStreamFile(file.buf);
    if (file === null || header === null) return null;
    const kept = await this.keyedOffsets(cleaned);
    const buf = filterStreamFile(file.buf, header, (offset) => kept.has(offset), cleaned.size);
    const path = this.path(`${streamFileName(base)}${CLEANED_STREAMS_SUFFIX}`);
    await this.fs.writeFile(path, buf);
    await this.fs.syncDirectory(this.dir);
    return { base, buf };
  }

  /** After the commit rename of the segment: the prepared file takes its place and its reader swaps. */
  async commitReplacement(pending: PendingStreamReplacement): Promise<void> {
    const path = this.path(streamFileName(pending.base));
    // Lookups holding the old reader must not reopen the path and find the new file there.
    await this.freezeSealed(BigInt(pending.base));
    await this.fs.rename(`${path}${CLEANED_STREAMS_SUFFIX}`, path);
    await this.fs.syncDirectory(this.dir);
    const at = this.sealed.findIndex((x) => x.base === pending.base);
    if (at < 0) return;
    const old = this.sealed[at]!;
    this.sealed[at] = await this.reader(
      pending.base,
      old.next,
      pending.buf,
      decodeStreamFile(pending.buf)!,
      false,
    );
    await this.retire(old);
  }

  /**
   * True when the segment's stream file holds a key whose last message among the sealed segments
   * lies in this segment (no later stream file names its version; the active segment's entries are
   * counted at open from the sealed files' versions): compaction must then keep the segment, even
   * emptied, or the key's version would be lost at the next open. A segment without a valid stream
   * file is kept too.
   */
  async holdsLastVersions(segment: StreamSegmentView): Promise<boolean> {
    const base = Number(segment.baseOffset);
    const sealed = this.sealed.find((x) => x.base === base);
    if (sealed === undefined) return true;
    const file = sealed.memory !== null ? { buf: sealed.memory } : await this.readValid(streamFileName(base));
    const header = file === null ? null : decodeStreamFile(file.buf);
    if (file === null || header === null) return true;
    let holds = false;
    forEachStreamKey(file.buf, header, (record) => {
      const entry = this.versions.get(record.key);
      const lastSealed = entry === undefined ? -1 : (this.active.previousOffsetOf(entry) ?? entry.lastOffset);
      if (lastSealed < sealed.next) holds = true;
    });
    return holds;
  }

  /**
   * Before the segment's stream file is renamed over or unlinked (compaction): its reader's file is
   * not reopened by its path again (open-files.ts, freeze); `thawSealed` undoes it when the
   * replacement fails.
   */
  async freezeSealed(baseOffset: bigint): Promise<void> {
    await this.sealed.find((x) => x.base === Number(baseOffset))?.file?.freeze();
  }

  thawSealed(baseOffset: bigint): void {
    this.sealed.find((x) => x.base === Number(baseOffset))?.file?.thaw();
  }

  /** Compaction removed a whole sealed segment (every record dropped): its stream file is gone. */
  async removeSealed(baseOffset: bigint): Promise<void> {
    const base = Number(baseOffset);
    const at = this.sealed.findIndex((x) => x.base === base);
    if (at < 0) return;
    const [old] = this.sealed.splice(at, 1);
    await this.retire(old!);
  }

  /** Offsets of the keyed records a segment holds. */
  private async keyedOffsets(segment: StreamSegmentView): Promise<Set<number>> {
    const offsets = new Set<number>();
    await this.forEachKeyedRecord(segment, (_key, offset) => offsets.add(offset));
    return offsets;
  }

  /**
   * Before retention deletes the oldest segments: writes the checkpoint of the versions at
   * `newStart` (older checkpoint + the deleted segments' files) durably, then forgets them. The
   * segments' `.streams` files are unlinked with the segments.
   */
  async beforeRetention(deleted: readonly StreamSegmentView[], newStart: bigint): Promise<void> {
    const inputs: { buf: Buffer; header: StreamFileHeader }[] = [];
    const old = await this.readValid(STREAM_CHECKPOINT);
    if (old !== null && old.header.kind === 'checkpoint') inputs.push(old);
    const dropped: SealedStreams[] = [];
    for (const segment of deleted) {
      const base = Number(segment.baseOffset);
      const sealed = this.sealed.find((s) => s.base === base);
      if (sealed === undefined) continue;
      dropped.push(sealed);
      if (base < this.checkpointBase) continue;
      const file =
        sealed.memory !== null ? { buf: sealed.memory } : await this.readValid(streamFileName(base));
      const header = file === null ? null : decodeStreamFile(file.buf);
      if (file !== null && header !== null) inputs.push({ buf: file.buf, header });
    }
    const path = this.path(STREAM_CHECKPOINT);
    await this.fs.writeFile(`${path}.tmp`, mergeCheckpoint(inputs, Number(newStart)));
    await this.fs.rename(`${path}.tmp`, path);
    await this.fs.syncDirectory(this.dir);
    this.checkpointBase = Number(newStart);
    this.sealed = this.sealed.filter((s) => !dropped.includes(s));
    for (const s of dropped) await this.retire(s);
  }

  /**
   * A reader that left the index (replaced by compaction, dropped by retention) is closed once no
   * lookup holds it: a `locate` in flight reads a file several times and must not find it closed
   * halfway (it would take that for messages that are gone and skip them).
   */
  private async retire(sealed: SealedStreams): Promise<void> {
    sealed.retired = true;
    if (sealed.users === 0) await sealed.reader.close().catch(() => undefined);
  }

  /**
   * The (offset, sequence) of the stream's messages from sequence `from`, at most `max`, including
   * messages appended but not yet readable (the caller keeps those below the high watermark).
   */
  async locate(key: string, from: number, max: number): Promise<{ offset: number; sequence: number }[]> {
    // A stream file closed while idle and then replaced or removed cannot be reopened: the lookup
    // starts again from the index as it is now (open-files.ts, FileRetiredError).
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.locateOnce(key, from, max);
      } catch (error) {
        if (!(error instanceof FileRetiredError) || attempt >= 3) throw error;
      }
    }
  }

  private async locateOnce(
    key: string,
    from: number,
    max: number,
  ): Promise<{ offset: number; sequence: number }[]> {
    const entry = this.versions.get(key);
    if (entry === undefined || from >= entry.version || max <= 0) return [];
    const held: SealedStreams[] = [];
    try {
      return await this.locateHeld(key, entry, from, max, held);
    } finally {
      for (const sealed of held) {
        sealed.users--;
        if (sealed.retired && sealed.users === 0) void sealed.reader.close().catch(() => undefined);
      }
    }
  }

  private async locateHeld(
    key: string,
    entry: StreamEntry,
    from: number,
    max: number,
    held: SealedStreams[],
  ): Promise<{ offset: number; sequence: number }[]> {
    const runs: { firstSequence: number; entries: (from: number, max: number) => unknown }[] = [];
    const active = this.active.run(entry);
    let offset = entry.lastOffset;
    if (active !== null) {
      runs.push(active);
      offset = active.firstSequence <= from ? -1 : active.previousOffset;
    }
    while (offset >= 0) {
      const sealed = this.sealedFor(offset);
      if (sealed === undefined) break;
      sealed.users++;
      held.push(sealed);
      const run = await sealed.reader.lookup(key);
      if (run === null || run.count === 0) break;
      runs.push(run);
      if (run.firstSequence <= from) break;
      offset = run.previousOffset;
    }
    const out: { offset: number; sequence: number }[] = [];
    for (let r = runs.length - 1; r >= 0 && out.length < max; r--) {
      const entries = (await runs[r]!.entries(from, max - out.length)) as {
        offset: number;
        sequence: number;
      }[];
      out.push(...entries);
    }
    return out;
  }

  private sealedFor(offset: number): SealedStreams | undefined {
    let low = 0;
    let high = this.sealed.length - 1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      const s = this.sealed[mid]!;
      if (offset < s.base) high = mid - 1;
      else if (offset >= s.next) low = mid + 1;
      else return s;
    }
    return undefined;
  }

  async close(): Promise<void> {
    for (const s of this.sealed) await s.reader.close().catch(() => undefined);
    this.sealed = [];
  }

  /**
   * After the log was truncated: forgets everything and opens again from the segments as they are
   * now (the active segment scanned, sealed segments from their stream files).
   */
  async reopen(segments: readonly StreamSegmentView[]): Promise<StreamRecovery> {
    await this.close();
    this.versions.clear();
    this.active = new ActiveStreamEntries((key) => this.versions.get(key));
    this.checkpointBase = -1;
    return this.open(segments);
  }
}
