// The stream file of one sealed segment (`<base>.streams`) and the partition's stream checkpoint
// (`streams.checkpoint`): for every key, its entries (offset, stream sequence) sorted for a binary
// search by a 64-bit key hash. Derivable from the log; a missing, corrupt or stale file is rebuilt.
//
// Layout, little-endian (docs/storage.md, "Stream index"):
//   header   56 bytes
//     0  magic 'MSSX' | 4 formatVersion u16 (1) | 6 kind u16 (0 segment, 1 checkpoint)
//     8  baseOffset u64    segment base offset (checkpoint: the offset the versions hold at)
//     16 nextOffset u64    offset after the segment's last batch (checkpoint: = baseOffset)
//     24 coveredBytes u64  segment size described (checkpoint: 0)
//     32 keyCount u32 | 36 entryCount u32 | 40 keyAreaBytes u32 | 44 reserved u32 (0)
//     48 bodyCrc u32 (crc32c of every byte after the header) | 52 headerCrc u32 (crc32c of bytes 0..51)
//   keys     keyCount × 40 bytes, sorted by (hashHi, hashLo, key bytes)
//     0 hashHi u32 | 4 hashLo u32 | 8 keyStart u32 (in the key area) | 12 keyLength u32
//     16 firstEntry u32 | 20 entryCount u32
//     24 nextSequence u64   the stream's version after its last message here (= last sequence + 1)
//     32 previousOffset i64 the key's last offset before baseOffset (-1: none); a checkpoint's
//                           records have no entries and this is the key's last offset
//   entries  entryCount × 12 bytes, a key's entries contiguous and in offset order
//     0 relativeOffset u32 (offset − baseOffset) | 4 sequence u64
//   key area the keys' bytes, back to back
// A sequence is stored per entry (not derived by counting) so that it survives retention and
// compaction, which remove messages but never renumber a stream.

import { crc32c } from '../protocol/crc32c.js';
import type { CachedFile } from './open-files.js';

export const STREAM_FILE_HEADER = 56;
export const STREAM_KEY_RECORD = 40;
export const STREAM_ENTRY = 12;
const MAGIC = 'MSSX';
const FORMAT_VERSION = 1;
export type StreamFileKind = 'segment' | 'checkpoint';

/** Samples of the key table kept in memory: one hashHi per this many key records. */
const SAMPLE_EVERY = 64;
const TWO_32 = 0x1_0000_0000;

/**
 * 64-bit hash of a key given as a latin1 string (one char per byte), as two 32-bit halves: FNV-1a
 * and a multiply-xorshift over the same bytes. Collisions are resolved by comparing key bytes.
 */
export function hashKey(key: string): { hi: number; lo: number } {
  let a = 0x811c9dc5;
  let b = 0x9747b28c ^ key.length;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  b = Math.imul(b ^ (b >>> 13), 0x5bd1e995);
  b ^= b >>> 15;
  return { hi: a >>> 0, lo: b >>> 0 };
}

function writeU64(buf: Buffer, at: number, value: number): void {
  if (value < 0) {
    buf.writeUInt32LE(0xffffffff, at);
    buf.writeUInt32LE(0xffffffff, at + 4);
    return;
  }
  const hi = Math.floor(value / TWO_32);
  buf.writeUInt32LE(value - hi * TWO_32, at);
  buf.writeUInt32LE(hi, at + 4);
}

function readU64(buf: Buffer, at: number): number {
  const lo = buf.readUInt32LE(at);
  const hi = buf.readUInt32LE(at + 4);
  // Small values stay small integers (no float arithmetic), which V8 keeps unboxed in objects.
  if (hi === 0) return lo;
  if (hi === 0xffffffff && lo === 0xffffffff) return -1;
  return hi * TWO_32 + lo;
}

/** What a stream file holds, before encoding: keys in any order, each key's entries contiguous. */
export interface StreamFileInput {
  kind: StreamFileKind;
  baseOffset: number;
  nextOffset: number;
  coveredBytes: number;
  keys: readonly string[];
  /** Per key: index of its first entry in entryOffsets/entrySequences, and how many. */
  entryStart: Uint32Array;
  entryCount: Uint32Array;
  nextSequence: Float64Array;
  previousOffset: Float64Array;
  /** Absolute offsets. */
  entryOffsets: Float64Array;
  entrySequences: Float64Array;
}

/**
 * Below this many keys a comparator sort is cheaper than the radix sort, whose two passes clear
 * and sum 65,536 counters each (about 0.3 ms) however few keys there are: a segment of unkeyed
 * messages rolls with no keys at all, and that cost landed on the append that rolled it.
 */
const RADIX_SORT_MIN_KEYS = 2048;

/** Orders two keys as the file does: hashHi, then hashLo, then key bytes. */
function compareKeys(
  keys: readonly string[],
  hi: Uint32Array,
  lo: Uint32Array,
  x: number,
  y: number,
): number {
  if (hi[x] !== hi[y]) return hi[x]! - hi[y]!;
  if (lo[x] !== lo[y]) return lo[x]! - lo[y]!;
  return keys[x]! < keys[y]! ? -1 : keys[x]! > keys[y]! ? 1 : 0;
}

/**
 * Key indexes in file order: by hashHi with a stable two-pass radix sort (16 bits a pass; a
 * comparator sort of a million keys blocks the event loop for seconds at a roll), then runs of
 * equal hashHi (rare) by hashLo and key bytes. A few keys are sorted by comparison instead.
 */
function sortedOrder(keys: readonly string[], hi: Uint32Array, lo: Uint32Array): Uint32Array {
  const n = keys.length;
  if (n < RADIX_SORT_MIN_KEYS) {
    const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => compareKeys(keys, hi, lo, x, y));
    return Uint32Array.from(order);
  }
  let order = new Uint32Array(n);
  let next = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  for (const shift of [0, 16]) {
    const counts = new Uint32Array(65537);
    for (let i = 0; i < n; i++) counts[((hi[order[i]!]! >>> shift) & 0xffff) + 1]!++;
    for (let d = 0; d < 65536; d++) counts[d + 1]! += counts[d]!;
    for (let i = 0; i < n; i++) {
      const k = order[i]!;
      next[counts[(hi[k]! >>> shift) & 0xffff]!++] = k;
    }
    [order, next] = [next, order];
  }
  for (let start = 0; start < n; ) {
    let end = start + 1;
    while (end < n && hi[order[end]!] === hi[order[start]!]) end++;
    if (end - start > 1) {
      const run = Array.from(order.subarray(start, end)).sort((x, y) => compareKeys(keys, hi, lo, x, y));
      order.set(run, start);
    }
    start = end;
  }
  return order;
}

function setU64(view: DataView, at: number, value: number): void {
  if (value < 0) {
    view.setUint32(at, 0xffffffff, true);
    view.setUint32(at + 4, 0xffffffff, true);
    return;
  }
  const high = Math.floor(value / TWO_32);
  view.setUint32(at, value - high * TWO_32, true);
  view.setUint32(at + 4, high, true);
}

/** Keys encoded between two yields of `encodeStreamFileSliced` (a few ms of work each). */
const SLICE_KEYS = 32_768;

export function encodeStreamFile(input: StreamFileInput): Buffer {
  const steps = encodeSteps(input);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/**
 * The same bytes, encoded in slices with the event loop turning between them: a roll of a
 * segment with a million keys would otherwise block every other partition and connection for
 * the whole encoding (about a second).
 */
export async function encodeStreamFileSliced(input: StreamFileInput): Promise<Buffer> {
  const steps = encodeSteps(input);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function* encodeSteps(input: StreamFileInput): Generator<void, Buffer, void> {
  const n = input.keys.length;
  const hi = new Uint32Array(n);
  const lo = new Uint32Array(n);
  let keyBytes = 0;
  let entries = 0;
  for (let i = 0; i < n; i++) {
    const h = hashKey(input.keys[i]!);
    hi[i] = h.hi;
    lo[i] = h.lo;
    keyBytes += input.keys[i]!.length;
    entries += input.entryCount[i]!;
    if (i % SLICE_KEYS === SLICE_KEYS - 1) yield;
  }
  const keys = input.keys;
  const order = sortedOrder(keys, hi, lo);
  yield;
  const entriesAt = STREAM_FILE_HEADER + n * STREAM_KEY_RECORD;
  const keysAt = entriesAt + entries * STREAM_ENTRY;
  const buf = Buffer.alloc(keysAt + keyBytes);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  const sortedKeys = new Array<string>(n);
  let entry = 0;
  let keyAt = 0;
  for (let r = 0; r < n; r++) {
    const i = order[r]!;
    const at = STREAM_FILE_HEADER + r * STREAM_KEY_RECORD;
    const key = keys[i]!;
    const count = input.entryCount[i]!;
    view.setUint32(at, hi[i]!, true);
    view.setUint32(at + 4, lo[i]!, true);
    view.setUint32(at + 8, keyAt, true);
    view.setUint32(at + 12, key.length, true);
    view.setUint32(at + 16, entry, true);
    view.setUint32(at + 20, count, true);
    setU64(view, at + 24, input.nextSequence[i]!);
    setU64(view, at + 32, input.previousOffset[i]!);
    sortedKeys[r] = key;
    keyAt += key.length;
    const start = input.entryStart[i]!;
    for (let j = 0; j < count; j++) {
      const e = entriesAt + (entry + j) * STREAM_ENTRY;
      view.setUint32(e, input.entryOffsets[start + j]! - input.baseOffset, true);
      setU64(view, e + 4, input.entrySequences[start + j]!);
    }
    entry += count;
    if (r % SLICE_KEYS === SLICE_KEYS - 1 || r === n - 1) {
      // One write per slice of keys (a write per key costs a native call each).
      const first = r - (r % SLICE_KEYS);
      const text = sortedKeys.slice(first, r + 1).join('');
      buf.write(text, keysAt + keyAt - text.length, 'latin1');
      yield;
    }
  }
  buf.write(MAGIC, 0, 'latin1');
  buf.writeUInt16LE(FORMAT_VERSION, 4);
  buf.writeUInt16LE(input.kind === 'segment' ? 0 : 1, 6);
  writeU64(buf, 8, input.baseOffset);
  writeU64(buf, 16, input.nextOffset);
  writeU64(buf, 24, input.coveredBytes);
  buf.writeUInt32LE(n, 32);
  buf.writeUInt32LE(entries, 36);
  buf.writeUInt32LE(keyBytes, 40);
  buf.writeUInt32LE(crc32c(buf.subarray(STREAM_FILE_HEADER)), 48);
  buf.writeUInt32LE(crc32c(buf.subarray(0, 52)), 52);
  return buf;
}

export interface StreamFileHeader {
  kind: StreamFileKind;
  baseOffset: number;
  nextOffset: number;
  coveredBytes: number;
  keyCount: number;
  entryCount: number;
  keyAreaBytes: number;
}

function entriesStart(header: StreamFileHeader): number {
  return STREAM_FILE_HEADER + header.keyCount * STREAM_KEY_RECORD;
}

function keyAreaStart(header: StreamFileHeader): number {
  return entriesStart(header) + header.entryCount * STREAM_ENTRY;
}

/** The header of a whole stream file when its CRCs, sizes and magic check; null otherwise. */
export function decodeStreamFile(buf: Buffer): StreamFileHeader | null {
  if (buf.length < STREAM_FILE_HEADER || buf.toString('latin1', 0, 4) !== MAGIC) return null;
  if (buf.readUInt16LE(4) !== FORMAT_VERSION || buf.readUInt32LE(52) !== crc32c(buf.subarray(0, 52)))
    return null;
  const kind = buf.readUInt16LE(6);
  if (kind > 1) return null;
  const header: StreamFileHeader = {
    kind: kind === 0 ? 'segment' : 'checkpoint',
    baseOffset: readU64(buf, 8),
    nextOffset: readU64(buf, 16),
    coveredBytes: readU64(buf, 24),
    keyCount: buf.readUInt32LE(32),
    entryCount: buf.readUInt32LE(36),
    keyAreaBytes: buf.readUInt32LE(40),
  };
  if (keyAreaStart(header) + header.keyAreaBytes !== buf.length) return null;
  if (buf.readUInt32LE(48) !== crc32c(buf.subarray(STREAM_FILE_HEADER))) return null;
  return header;
}

/** One key record of a stream file, with its key as a latin1 string. */
export interface StreamKeyRecord {
  key: string;
  hashHi: number;
  hashLo: number;
  firstEntry: number;
  entryCount: number;
  nextSequence: number;
  previousOffset: number;
  /** The key's last offset: its last entry, or previousOffset when it has none (checkpoint). */
  lastOffset: number;
}

function keyRecordAt(buf: Buffer, header: StreamFileHeader, index: number): StreamKeyRecord {
  const at = STREAM_FILE_HEADER + index * STREAM_KEY_RECORD;
  const keyAt = keyAreaStart(header) + buf.readUInt32LE(at + 8);
  const firstEntry = buf.readUInt32LE(at + 16);
  const entryCount = buf.readUInt32LE(at + 20);
  const previousOffset = readU64(buf, at + 32);
  const lastOffset =
    entryCount === 0
      ? previousOffset
      : header.baseOffset +
        buf.readUInt32LE(entriesStart(header) + (firstEntry + entryCount - 1) * STREAM_ENTRY);
  return {
    key: buf.toString('latin1', keyAt, keyAt + buf.readUInt32LE(at + 12)),
    hashHi: buf.readUInt32LE(at),
    hashLo: buf.readUInt32LE(at + 4),
    firstEntry,
    entryCount,
    nextSequence: readU64(buf, at + 24),
    previousOffset,
    lastOffset,
  };
}

/** Visits every key record of a decoded file in file order (hash order). */
export function forEachStreamKey(
  buf: Buffer,
  header: StreamFileHeader,
  visit: (record: StreamKeyRecord) => void,
): void {
  for (let i = 0; i < header.keyCount; i++) visit(keyRecordAt(buf, header, i));
}

/**
 * Visits every key of a decoded file with its version and last offset, without building a record
 * object per key (the open path: a million keys per file).
 */
export function forEachStreamVersion(
  buf: Buffer,
  header: StreamFileHeader,
  visit: (key: string, nextSequence: number, lastOffset: number) => void,
): void {
  const keysAt = keyAreaStart(header);
  const entriesAt = entriesStart(header);
  for (let i = 0, at = STREAM_FILE_HEADER; i < header.keyCount; i++, at += STREAM_KEY_RECORD) {
    const keyAt = keysAt + buf.readUInt32LE(at + 8);
    const count = buf.readUInt32LE(at + 20);
    const lastOffset =
      count === 0
        ? readU64(buf, at + 32)
        : header.baseOffset +
          buf.readUInt32LE(entriesAt + (buf.readUInt32LE(at + 16) + count - 1) * STREAM_ENTRY);
    visit(
      buf.toString('latin1', keyAt, keyAt + buf.readUInt32LE(at + 12)),
      readU64(buf, at + 24),
      lastOffset,
    );
  }
}

/** The entries of one key record of a decoded file. */
export function entriesOf(
  buf: Buffer,
  header: StreamFileHeader,
  record: StreamKeyRecord,
): { offset: number; sequence: number }[] {
  const out: { offset: number; sequence: number }[] = [];
  const start = entriesStart(header);
  for (let j = 0; j < record.entryCount; j++) {
    const at = start + (record.firstEntry + j) * STREAM_ENTRY;
    out.push({ offset: header.baseOffset + buf.readUInt32LE(at), sequence: readU64(buf, at + 4) });
  }
  return out;
}

/**
 * The checkpoint of stream versions at `baseOffset`: for every key of the inputs (an older
 * checkpoint and the stream files of the segments that retention deletes, oldest first), its
 * version and last offset in the newest input that has it. Inputs are merged by hash order, so
 * memory is the inputs' bytes, not one object per key.
 */
export function mergeCheckpoint(
  inputs: readonly { buf: Buffer; header: StreamFileHeader }[],
  baseOffset: number,
): Buffer {
  const cursors = inputs.map((input) => ({ ...input, index: 0 }));
  const keys: string[] = [];
  const nextSequence: number[] = [];
  const lastOffset: number[] = [];
  for (;;) {
    let best: StreamKeyRecord | null = null;
    let bestInput = -1;
    for (let c = 0; c < cursors.length; c++) {
      const cursor = cursors[c]!;
      if (cursor.index >= cursor.header.keyCount) continue;
      const record = keyRecordAt(cursor.buf, cursor.header, cursor.index);
      const order = best === null ? -1 : compareRecords(record, best);
      if (order < 0 || order === 0) {
        // Equal keys: the later input (newer) wins; every input holding it moves on.
        best = record;
        bestInput = c;
      }
    }
    if (best === null) break;
    for (let c = 0; c < cursors.length; c++) {
      const cursor = cursors[c]!;
      if (c === bestInput || cursor.index >= cursor.header.keyCount) continue;
      if (compareRecords(keyRecordAt(cursor.buf, cursor.header, cursor.index), best) === 0) cursor.index++;
    }
    cursors[bestInput]!.index++;
    keys.push(best.key);
    nextSequence.push(best.nextSequence);
    lastOffset.push(best.lastOffset);
  }
  const n = keys.length;
  return encodeStreamFile({
    kind: 'checkpoint',
    baseOffset,
    nextOffset: baseOffset,
    coveredBytes: 0,
    keys,
    entryStart: new Uint32Array(n),
    entryCount: new Uint32Array(n),
    nextSequence: Float64Array.from(nextSequence),
    previousOffset: Float64Array.from(lastOffset),
    entryOffsets: new Float64Array(0),
    entrySequences: new Float64Array(0),
  });
}

function compareRecords(a: StreamKeyRecord, b: StreamKeyRecord): number {
  if (a.hashHi !== b.hashHi) return a.hashHi - b.hashHi;
  if (a.hashLo !== b.hashLo) return a.hashLo - b.hashLo;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/**
 * Rewrites a segment's stream file for a compacted segment: keeps the entries whose offset `keep`
 * accepts (sequences unchanged), drops keys left without entries, and records the new segment size.
 * Compaction calls this for each segment it rewrites (offsets are kept, so entries stay valid).
 */
export function filterStreamFile(
  buf: Buffer,
  header: StreamFileHeader,
  keep: (offset: number) => boolean,
  coveredBytes: number,
): Buffer {
  const keys: string[] = [];
  const starts: number[] = [];
  const counts: number[] = [];
  const nextSequence: number[] = [];
  const previousOffset: number[] = [];
  const offsets: number[] = [];
  const sequences: number[] = [];
  forEachStreamKey(buf, header, (record) => {
    const start = offsets.length;
    for (const entry of entriesOf(buf, header, record)) {
      if (!keep(entry.offset)) continue;
      offsets.push(entry.offset);
      sequences.push(entry.sequence);
    }
    // A key whose records all went keeps its record (no entries): its version and the link to its
    // earlier offsets stay, so versions after a restart equal those before the compaction.
    keys.push(record.key);
    starts.push(start);
    counts.push(offsets.length - start);
    nextSequence.push(record.nextSequence);
    previousOffset.push(record.previousOffset);
  });
  return encodeStreamFile({
    kind: header.kind,
    baseOffset: header.baseOffset,
    nextOffset: header.nextOffset,
    coveredBytes,
    keys,
    entryStart: Uint32Array.from(starts),
    entryCount: Uint32Array.from(counts),
    nextSequence: Float64Array.from(nextSequence),
    previousOffset: Float64Array.from(previousOffset),
    entryOffsets: Float64Array.from(offsets),
    entrySequences: Float64Array.from(sequences),
  });
}

/** Where a stream file's bytes come from: the open file, or memory when it could not be written. */
export type ByteSource = (position: number, length: number) => Promise<Buffer>;

/** Reads through a CachedFile, leased for each read (so the file may be closed while idle). */
export function fileSource(file: CachedFile): ByteSource {
  return (position, length) =>
    file.with(async (handle) => {
      const buf = Buffer.allocUnsafe(length);
      const read = await handle.read(buf, 0, length, position);
      return read === length ? buf : buf.subarray(0, read);
    });
}

export function memorySource(buf: Buffer): ByteSource {
  return async (position, length) => buf.subarray(position, position + length);
}

/** A key's entries in one segment, as found by a lookup. */
export interface StreamRun {
  previousOffset: number;
  count: number;
  /** Sequence of the run's first entry. */
  firstSequence: number;
  /** Entries with sequence ≥ `from`, at most `max`, in order. */
  entries(from: number, max: number): Promise<{ offset: number; sequence: number }[]>;
}

/**
 * Lookups in one sealed segment's stream file through positioned reads: an in-memory sample of
 * the key table (one hash per 64 records, 4 bytes) narrows a lookup to one block of records.
 */
export class StreamFileReader {
  private constructor(
    readonly header: StreamFileHeader,
    private readonly source: ByteSource,
    private readonly samples: Uint32Array,
    readonly close: () => Promise<void>,
  ) {}

  static fromBuffer(
    buf: Buffer,
    header: StreamFileHeader,
    source: ByteSource,
    close: () => Promise<void>,
  ): StreamFileReader {
    const samples = new Uint32Array(Math.ceil(header.keyCount / SAMPLE_EVERY));
    for (let s = 0; s < samples.length; s++)
      samples[s] = buf.readUInt32LE(STREAM_FILE_HEADER + s * SAMPLE_EVERY * STREAM_KEY_RECORD);
    return new StreamFileReader(header, source, samples, close);
  }

  get memoryBytes(): number {
    return this.samples.byteLength + 64;
  }

  async lookup(key: string): Promise<StreamRun | null> {
    const { hi, lo } = hashKey(key);
    // Last sample with a smaller hashHi: records equal to `hi` cannot start before its block.
    let low = 0;
    let high = this.samples.length - 1;
    let block = 0;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      if (this.samples[mid]! < hi) {
        block = mid;
        low = mid + 1;
      } else {
        high = mid - 1;
      }
    }
    const header = this.header;
    for (let first = block * SAMPLE_EVERY; first < header.keyCount; first += SAMPLE_EVERY) {
      const count = Math.min(SAMPLE_EVERY, header.keyCount - first);
      const records = await this.source(
        STREAM_FILE_HEADER + first * STREAM_KEY_RECORD,
        count * STREAM_KEY_RECORD,
      );
      for (let r = 0; r < count; r++) {
        const at = r * STREAM_KEY_RECORD;
        const recordHi = records.readUInt32LE(at);
        if (recordHi > hi) return null;
        if (recordHi < hi || records.readUInt32LE(at + 4) !== lo) continue;
        const keyLength = records.readUInt32LE(at + 12);
        if (keyLength !== key.length) continue;
        const stored = await this.source(keyAreaStart(header) + records.readUInt32LE(at + 8), keyLength);
        if (stored.toString('latin1') !== key) continue;
        return this.run(records.subarray(at, at + STREAM_KEY_RECORD));
      }
    }
    return null;
  }

  private async run(record: Buffer): Promise<StreamRun> {
    const firstEntry = record.readUInt32LE(16);
    const count = record.readUInt32LE(20);
    const start = entriesStart(this.header) + firstEntry * STREAM_ENTRY;
    const base = this.header.baseOffset;
    const source = this.source;
    const entryAt = async (j: number) => {
      const e = await source(start + j * STREAM_ENTRY, STREAM_ENTRY);
      return { offset: base + e.readUInt32LE(0), sequence: readU64(e, 4) };
    };
    const firstSequence = count === 0 ? -1 : (await entryAt(0)).sequence;
    return {
      previousOffset: readU64(record, 32),
      count,
      firstSequence,
      async entries(from, max) {
        // First entry with sequence ≥ from, by a binary search over positioned reads.
        let low = 0;
        let high = count;
        while (low < high) {
          const mid = (low + high) >>> 1;
          if ((await entryAt(mid)).sequence < from) low = mid + 1;
          else high = mid;
        }
        const take = Math.min(max, count - low);
        if (take <= 0) return [];
        const bytes = await source(start + low * STREAM_ENTRY, take * STREAM_ENTRY);
        const out: { offset: number; sequence: number }[] = [];
        for (let j = 0; j < take; j++)
          out.push({
            offset: base + bytes.readUInt32LE(j * STREAM_ENTRY),
            sequence: readU64(bytes, j * STREAM_ENTRY + 4),
          });
        return out;
      },
    };
  }
}
