// Digests of sealed segments for anti-entropy between replicas (docs/replication.md, "Anti-entropy"):
// a segment's file is cut into fixed-size chunks, each hashed with SHA-256, and the chunk hashes
// are hashed into a root. Two replicas whose roots agree hold the same bytes; where they differ,
// the chunk hashes name the byte ranges that do. Reads are paced by a byte budget so that a scrub
// never competes with produce. Knows nothing of replicas, leaders or sockets.
//
// Root layout: SHA-256 over  size u64 BE | chunkBytes u32 BE | chunk hash (32 bytes) × chunk count
// where chunk i covers bytes [i × chunkBytes, min((i + 1) × chunkBytes, size)) of the `.log` file
// and chunk count = ceil(size / chunkBytes) (0 for an empty file).

import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Segment } from './segment.js';

/** Bytes of one chunk hash and of a root (SHA-256). */
export const DIGEST_HASH_BYTES = 32;
/** Chunk size of the digests brokers exchange: the unit of comparison and of repair. */
export const DEFAULT_DIGEST_CHUNK_BYTES = 64 * 1024;

export interface SegmentDigest {
  readonly baseOffset: bigint;
  /** Offset after the segment's last batch. */
  readonly nextOffset: bigint;
  /** Bytes of the `.log` file that were hashed. */
  readonly size: number;
  readonly chunkBytes: number;
  /** One SHA-256 per chunk, in file order. */
  readonly chunks: readonly Buffer[];
  readonly root: Buffer;
}

export function hashChunk(bytes: Buffer): Buffer {
  return createHash('sha256').update(bytes).digest();
}

export function rootOf(size: number, chunkBytes: number, chunks: readonly Buffer[]): Buffer {
  const header = Buffer.allocUnsafe(12);
  header.writeBigUInt64BE(BigInt(size), 0);
  header.writeUInt32BE(chunkBytes, 8);
  const hash = createHash('sha256').update(header);
  for (const chunk of chunks) hash.update(chunk);
  return hash.digest();
}

export function chunkCount(size: number, chunkBytes: number): number {
  return Math.ceil(size / chunkBytes);
}

/** The digest of bytes held in memory (a fetched range, a test's segment). */
export function digestOfBytes(
  bytes: Buffer,
  chunkBytes: number,
  offsets: { baseOffset: bigint; nextOffset: bigint } = { baseOffset: 0n, nextOffset: 0n },
): SegmentDigest {
  checkChunkBytes(chunkBytes);
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += chunkBytes)
    chunks.push(hashChunk(bytes.subarray(at, Math.min(at + chunkBytes, bytes.length))));
  return {
    ...offsets,
    size: bytes.length,
    chunkBytes,
    chunks,
    root: rootOf(bytes.length, chunkBytes, chunks),
  };
}

/** Indexes of the chunks whose hashes differ (both digests over the same size and chunk size). */
export function differingChunks(ours: readonly Buffer[], theirs: readonly Buffer[]): number[] {
  const differing: number[] = [];
  const count = Math.max(ours.length, theirs.length);
  for (let i = 0; i < count; i++) {
    const a = ours[i];
    const b = theirs[i];
    if (a === undefined || b === undefined || !a.equals(b)) differing.push(i);
  }
  return differing;
}

function checkChunkBytes(chunkBytes: number): void {
  if (!Number.isInteger(chunkBytes) || chunkBytes < 512 || chunkBytes > 16 * 1024 * 1024)
    throw new RangeError(`digest chunk size ${chunkBytes}: 512 bytes to 16 MiB`);
}

/**
 * A token bucket of bytes per second shared by every digest read of a broker: a read that finds it
 * empty waits until enough has refilled. Bursts up to one second's worth.
 */
export class ReadBudget {
  private tokens: number;
  private last: number;

  constructor(
    readonly bytesPerSecond: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(bytesPerSecond > 0)) throw new RangeError(`read budget ${bytesPerSecond} bytes/s: above 0`);
    this.tokens = bytesPerSecond;
    this.last = now();
  }

  /** Resolves once `bytes` may be read; the wait is what the budget was short, at that rate. */
  async take(bytes: number): Promise<void> {
    const at = this.now();
    this.tokens = Math.min(
      this.bytesPerSecond,
      this.tokens + ((at - this.last) / 1000) * this.bytesPerSecond,
    );
    this.last = at;
    this.tokens -= bytes;
    if (this.tokens < 0) await sleep(Math.ceil((-this.tokens / this.bytesPerSecond) * 1000));
  }
}

/**
 * Reads `segment`'s file (its first `size` bytes, by default all it holds) chunk by chunk under
 * `budget` and hashes it. The bytes are read raw: a batch that fails its CRC is hashed as it is,
 * which is how a replica finds it differs from its leader.
 */
export async function digestSegment(
  segment: Segment,
  options: { chunkBytes?: number; budget?: ReadBudget | null; size?: number } = {},
): Promise<SegmentDigest> {
  const chunkBytes = options.chunkBytes ?? DEFAULT_DIGEST_CHUNK_BYTES;
  checkChunkBytes(chunkBytes);
  const size = options.size ?? segment.size;
  const chunks: Buffer[] = [];
  const buffer = Buffer.allocUnsafe(Math.min(chunkBytes, Math.max(size, 1)));
  for (let position = 0; position < size; position += chunkBytes) {
    const length = Math.min(chunkBytes, size - position);
    await options.budget?.take(length);
    const read = await segment.readInto(buffer.subarray(0, length), position, length);
    // A file shorter than its segment says (cut under us) hashes what is there: it differs.
    chunks.push(hashChunk(read));
  }
  return {
    baseOffset: segment.baseOffset,
    nextOffset: segment.nextOffset,
    size,
    chunkBytes,
    chunks,
    root: rootOf(size, chunkBytes, chunks),
  };
}

/**
 * Roots of sealed segments kept in memory by segment (a compacted or repaired segment is a new
 * Segment object, so its old root goes with the old object). Only roots are kept — about a hundred
 * bytes a segment whatever its size; chunk hashes (32 bytes per chunk) would grow with the data —
 * so a digest with its chunks is always read again. An entry older than the caller's `maxAgeMs`
 * is computed again: a leader answers its followers' root requests from the cache, a replica
 * checking its own disk asks for a fresh digest.
 */
export class SegmentDigestCache {
  private readonly cache = new WeakMap<Segment, { digest: SegmentDigest; computedAtMs: number }>();

  constructor(private readonly budget: ReadBudget | null = null) {}

  /** The segment's digest; with `rootOnly`, a cached one (its `chunks` empty) when fresh enough. */
  async digest(
    segment: Segment,
    options: { chunkBytes?: number; maxAgeMs?: number; nowMs?: number; rootOnly?: boolean } = {},
  ): Promise<SegmentDigest> {
    const chunkBytes = options.chunkBytes ?? DEFAULT_DIGEST_CHUNK_BYTES;
    const nowMs = options.nowMs ?? Date.now();
    const known = this.cache.get(segment);
    if (
      options.rootOnly === true &&
      known !== undefined &&
      known.digest.chunkBytes === chunkBytes &&
      known.digest.size === segment.size &&
      nowMs - known.computedAtMs <= (options.maxAgeMs ?? Number.POSITIVE_INFINITY)
    )
      return known.digest;
    const digest = await digestSegment(segment, { chunkBytes, budget: this.budget });
    this.cache.set(segment, { digest: { ...digest, chunks: [] }, computedAtMs: nowMs });
    return digest;
  }

  forget(segment: Segment): void {
    this.cache.delete(segment);
  }
}
