// LZ4 for a batch's records section (codec id 3). Kafka's RecordBatch v2 means the LZ4 *frame*
// format here; that is what is written. Reading is done here, not by lz4-napi's frame decoder
// (which inflates a whole frame before anyone can look at its size): the frames are first sized
// from their block headers and their blocks' sequence headers (no byte is copied), so data that
// would inflate past the caller's limit is refused when the running size reaches it, before
// anything is inflated; then the output is allocated once, at its exact size, and filled.
//
// LZ4 frame (https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md), all little-endian:
//   magic        u32   0x184D2204
//   FLG          u8    bits 7-6 version (01), 5 block independence, 4 block checksum,
//                      3 content size present, 2 content checksum, 1 reserved (0), 0 dictionary id
//   BD           u8    bits 6-4 block maximum size (4 = 64 KiB, 5 = 256 KiB, 6 = 1 MiB, 7 = 4 MiB),
//                      other bits reserved (0)
//   contentSize  u64   if FLG bit 3: the inflated size of the frame
//   dictId       u32   if FLG bit 0 (refused: no dictionary is shared with producers)
//   HC           u8    (xxHash32 of FLG…dictId, seed 0) >> 8 & 0xff
//   blocks       u32 size (bit 31 set = stored uncompressed; 0 = end mark), data,
//                      u32 xxHash32 of the data if FLG bit 4
//   checksum     u32   if FLG bit 2: xxHash32 of the inflated frame
// A section may hold several frames back to back, and skippable frames (magic 0x184D2A50-5F,
// u32 size, data), as the format allows.
//
// The LZ4 block inside (https://github.com/lz4/lz4/blob/dev/doc/lz4_Block_format.md) is a run of
// sequences: token u8 (high nibble literal length, low nibble match length − 4; 15 = more length
// bytes follow, each added, until one is not 255), literals, then (except in the last sequence)
// u16 match offset and the match's extra length bytes.
//
// Older versions wrote codec 3 as one raw LZ4 block preceded by its inflated length (u32 LE); that
// is still read (see decompressLz4Records).

import { uncompressSync as lz4UncompressBlock } from 'lz4-napi';
import { errorOf } from './error-codes.js';

const LZ4_FRAME_MAGIC = 0x184d2204;
const SKIPPABLE_MAGIC_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;
const BLOCK_UNCOMPRESSED_FLAG = 0x80000000;

function corrupt(what: string): never {
  throw errorOf('BAD_RECORD_BATCH', `lz4 ${what}`);
}

function tooLarge(limit: number, declared?: number): never {
  throw errorOf(
    'DECOMPRESSED_TOO_LARGE',
    `lz4 data inflates to ${declared ?? `more than ${limit}`} bytes, limit ${limit}`,
  );
}

// xxHash32 (https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md), the frame's checksum.
const PRIME1 = 0x9e3779b1;
const PRIME2 = 0x85ebca77;
const PRIME3 = 0xc2b2ae3d;
const PRIME4 = 0x27d4eb2f;
const PRIME5 = 0x165667b1;

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

function round(acc: number, lane: number): number {
  return Math.imul(rotl((acc + Math.imul(lane, PRIME2)) | 0, 13), PRIME1);
}

/** xxHash32 of buf[start, end) with seed 0, as an unsigned 32-bit number. */
export function xxhash32(buf: Uint8Array, start = 0, end = buf.length): number {
  let p = start;
  let h: number;
  const length = end - start;
  if (length >= 16) {
    let v1 = (PRIME1 + PRIME2) | 0;
    let v2 = PRIME2;
    let v3 = 0;
    let v4 = -PRIME1 | 0;
    const limit = end - 16;
    while (p <= limit) {
      v1 = round(v1, buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16) | (buf[p + 3]! << 24));
      v2 = round(v2, buf[p + 4]! | (buf[p + 5]! << 8) | (buf[p + 6]! << 16) | (buf[p + 7]! << 24));
      v3 = round(v3, buf[p + 8]! | (buf[p + 9]! << 8) | (buf[p + 10]! << 16) | (buf[p + 11]! << 24));
      v4 = round(v4, buf[p + 12]! | (buf[p + 13]! << 8) | (buf[p + 14]! << 16) | (buf[p + 15]! << 24));
      p += 16;
    }
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) | 0;
  } else {
    h = PRIME5;
  }
  h = (h + length) | 0;
  while (p + 4 <= end) {
    const lane = buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16) | (buf[p + 3]! << 24);
    h = Math.imul(rotl((h + Math.imul(lane, PRIME3)) | 0, 17), PRIME4);
    p += 4;
  }
  while (p < end) {
    h = Math.imul(rotl((h + Math.imul(buf[p]!, PRIME5)) | 0, 11), PRIME1);
    p++;
  }
  h ^= h >>> 15;
  h = Math.imul(h, PRIME2);
  h ^= h >>> 13;
  h = Math.imul(h, PRIME3);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The inflated output, allocated once at the size the input declares (the older format's prefix)
 * or that sizing found (frames): a block that would write past it is refused.
 */
class FixedOutput {
  readonly buf: Buffer;
  pos = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  /** Checks that `n` more bytes fit, before they are written. */
  reserve(n: number): void {
    if (this.pos + n > this.buf.length) {
      corrupt(`block inflates past the ${this.buf.length} bytes its headers declare`);
    }
  }

  result(): Buffer {
    return this.pos === this.buf.length ? this.buf : this.buf.subarray(0, this.pos);
  }
}

/**
 * Inflates the LZ4 block src[start, end) into `out`. Matches may reach back to `windowStart` (the
 * block's own start for independent blocks, the frame's start for linked ones).
 */
function inflateBlock(src: Buffer, start: number, end: number, out: FixedOutput, windowStart: number): void {
  const dest = out.buf;
  let ip = start;
  for (;;) {
    // The last sequence of a block holds literals only: a block cannot end after a match. (Blocks
    // are never empty: a zero block size is the frame's end mark, and the older format has ≥ 1 byte.)
    if (ip >= end) corrupt('block ends after a match');
    const token = src[ip++]!;
    let literals = token >>> 4;
    if (literals === 15) {
      let byte: number;
      do {
        if (ip >= end) corrupt('block ends inside a literal length');
        byte = src[ip++]!;
        literals += byte;
      } while (byte === 255);
    }
    if (literals > end - ip) corrupt('literals run past the end of the block');
    out.reserve(literals);
    let op = out.pos;
    if (literals < 16) {
      for (let i = 0; i < literals; i++) dest[op + i] = src[ip + i]!;
    } else {
      src.copy(dest, op, ip, ip + literals);
    }
    ip += literals;
    op += literals;
    out.pos = op;
    if (ip === end) return; // The last sequence holds literals only.
    if (end - ip < 2) corrupt('block ends inside a match offset');
    const offset = src[ip]! | (src[ip + 1]! << 8);
    ip += 2;
    if (offset === 0 || offset > op - windowStart) corrupt(`match offset ${offset} reaches before the data`);
    let matchLength = (token & 15) + 4;
    if ((token & 15) === 15) {
      let byte: number;
      do {
        if (ip >= end) corrupt('block ends inside a match length');
        byte = src[ip++]!;
        matchLength += byte;
      } while (byte === 255);
    }
    out.reserve(matchLength);
    let from = op - offset;
    if (matchLength < 32) {
      // Short: a byte loop beats a native call. Forwards, so an overlapping match repeats its bytes.
      const stop = op + matchLength;
      while (op < stop) dest[op++] = dest[from++]!;
    } else if (offset >= matchLength) {
      dest.copyWithin(op, from, from + matchLength);
      op += matchLength;
    } else {
      // An overlapping match repeats the last `offset` bytes. What is written continues the
      // period, so each copy can take everything from `from` up to where it is (doubling chunks,
      // always a multiple of the period, so the phase stays right).
      let copied = 0;
      while (copied < matchLength) {
        const chunk = Math.min(matchLength - copied, op + copied - from);
        dest.copyWithin(op + copied, from, from + chunk);
        copied += chunk;
      }
      op += matchLength;
    }
    out.pos = op;
  }
}

const BLOCK_MAX_SIZES: Record<number, number> = {
  4: 64 * 1024,
  5: 256 * 1024,
  6: 1024 * 1024,
  7: 4 * 1024 * 1024,
};

function need(data: Buffer, at: number, n: number, what: string): void {
  if (data.length - at < n) corrupt(`frame ends inside its ${what}`);
}

/**
 * Bytes the LZ4 block src[start, end) inflates to, from its sequence headers alone (literals are
 * skipped, nothing is copied); stops counting once past `cap`. Refuses a malformed block.
 */
function blockInflatedSize(src: Buffer, start: number, end: number, cap: number): number {
  let ip = start;
  let size = 0;
  for (;;) {
    if (ip >= end) corrupt('block ends after a match');
    const token = src[ip++]!;
    let literals = token >>> 4;
    if (literals === 15) {
      let byte: number;
      do {
        if (ip >= end) corrupt('block ends inside a literal length');
        byte = src[ip++]!;
        literals += byte;
      } while (byte === 255);
    }
    if (literals > end - ip) corrupt('literals run past the end of the block');
    ip += literals;
    size += literals;
    if (ip === end) return size;
    if (end - ip < 2) corrupt('block ends inside a match offset');
    ip += 2;
    let matchLength = (token & 15) + 4;
    if ((token & 15) === 15) {
      let byte: number;
      do {
        if (ip >= end) corrupt('block ends inside a match length');
        byte = src[ip++]!;
        matchLength += byte;
      } while (byte === 255);
    }
    size += matchLength;
    if (size > cap) return size;
  }
}

interface FrameBlock {
  start: number;
  size: number;
  stored: boolean;
  /** Bytes it inflates to (found by sizing). */
  inflated: number;
}

interface ParsedFrame {
  blocks: FrameBlock[];
  independent: boolean;
  /** Offset of the content checksum, or -1. */
  checksumAt: number;
  /** Bytes the frame inflates to. */
  inflatedSize: number;
}

/**
 * Reads the frame at `at`: header, block sizes and checksums, and what each block inflates to,
 * refusing it as soon as the running total passes `budget` (nothing is inflated yet).
 */
function parseFrame(
  data: Buffer,
  at: number,
  budget: number,
  limit: number,
): { frame: ParsedFrame; next: number } {
  need(data, at, 7, 'header');
  const flg = data[at + 4]!;
  const bd = data[at + 5]!;
  if (flg >>> 6 !== 1) corrupt(`frame version ${flg >>> 6}, expected 1`);
  if ((flg & 0x02) !== 0 || (bd & 0x8f) !== 0) corrupt('frame header sets reserved bits');
  const blockMax = BLOCK_MAX_SIZES[(bd >>> 4) & 0x07];
  if (blockMax === undefined) corrupt(`frame block size id ${(bd >>> 4) & 0x07} is not 4-7`);
  const blockChecksums = (flg & 0x10) !== 0;
  const hasContentSize = (flg & 0x08) !== 0;
  if ((flg & 0x01) !== 0) corrupt('frame needs a dictionary, which is not supported');
  const descriptorEnd = at + 6 + (hasContentSize ? 8 : 0);
  need(data, at, descriptorEnd - at + 1, 'header');
  if (((xxhash32(data, at + 4, descriptorEnd) >>> 8) & 0xff) !== data[descriptorEnd]) {
    corrupt('frame header checksum does not match');
  }
  let contentSize = -1;
  if (hasContentSize) {
    const size = data.readBigUInt64LE(at + 6);
    if (size > BigInt(budget))
      tooLarge(limit, size > 2n ** 53n ? undefined : Number(size) + (limit - budget));
    contentSize = Number(size);
  }
  const blocks: FrameBlock[] = [];
  let inflatedSize = 0;
  let pos = descriptorEnd + 1;
  for (;;) {
    need(data, pos, 4, 'block size');
    const word = data.readUInt32LE(pos);
    pos += 4;
    if (word === 0) break;
    const stored = (word & BLOCK_UNCOMPRESSED_FLAG) !== 0;
    const size = word & ~BLOCK_UNCOMPRESSED_FLAG;
    if (size > blockMax) corrupt(`block of ${size} bytes exceeds the frame's ${blockMax}-byte block size`);
    need(data, pos, size + (blockChecksums ? 4 : 0), 'block');
    if (blockChecksums && xxhash32(data, pos, pos + size) !== data.readUInt32LE(pos + size)) {
      corrupt('block checksum does not match');
    }
    const left = budget - inflatedSize;
    const inflated = stored ? size : blockInflatedSize(data, pos, pos + size, Math.min(left, blockMax));
    if (inflated > blockMax) {
      corrupt(`block inflates to more than the frame's ${blockMax}-byte block size`);
    }
    if (inflated > left) tooLarge(limit);
    inflatedSize += inflated;
    blocks.push({ start: pos, size, stored, inflated });
    pos += size + (blockChecksums ? 4 : 0);
  }
  let checksumAt = -1;
  if ((flg & 0x04) !== 0) {
    need(data, pos, 4, 'content checksum');
    checksumAt = pos;
    pos += 4;
  }
  if (contentSize >= 0 && inflatedSize !== contentSize) {
    corrupt(`frame inflates to ${inflatedSize} bytes, its header says ${contentSize}`);
  }
  return { frame: { blocks, independent: (flg & 0x20) !== 0, checksumAt, inflatedSize }, next: pos };
}

/**
 * Smaller blocks are inflated by inflateBlock: for them the native call, the copy of the block
 * behind a size prefix and the copy of the result cost more than the inflation itself (measured
 * with bench/record-validate.ts: one-record batches decoded twice as fast in JavaScript).
 */
const NATIVE_BLOCK_MIN_BYTES = 8 * 1024;

/**
 * Inflates an independent block with lz4-napi's native block decoder, told the exact size sizing
 * found (so it cannot produce more; the limit was enforced by sizing): faster than inflateBlock on
 * large compressible blocks. Linked blocks need the previous output as a window, which that
 * decoder does not take; they go through inflateBlock.
 */
function inflateIndependentBlock(data: Buffer, block: FrameBlock, out: FixedOutput): void {
  const prefixed = Buffer.allocUnsafe(4 + block.size);
  prefixed.writeUInt32LE(block.inflated, 0);
  data.copy(prefixed, 4, block.start, block.start + block.size);
  let inflated: Buffer;
  try {
    inflated = lz4UncompressBlock(prefixed);
  } catch (cause) {
    throw errorOf('BAD_RECORD_BATCH', 'lz4 block does not decompress', { cause });
  }
  if (inflated.length !== block.inflated) {
    corrupt(`block inflates to ${inflated.length} bytes, its sequences say ${block.inflated}`);
  }
  out.reserve(inflated.length);
  inflated.copy(out.buf, out.pos);
  out.pos += inflated.length;
}

/**
 * Inflates a sequence of LZ4 frames (and skippable frames), refusing to produce more than `limit`.
 * Every frame is parsed and sized first, from its block headers and sequence headers, so a frame
 * that would pass the limit is refused before anything is inflated and the output is allocated
 * once, at its exact size.
 */
function inflateLz4Frames(data: Buffer, limit: number): Buffer {
  const frames: ParsedFrame[] = [];
  let total = 0;
  let at = 0;
  while (at < data.length) {
    need(data, at, 4, 'magic');
    const magic = data.readUInt32LE(at);
    if ((magic & SKIPPABLE_MAGIC_MASK) >>> 0 === SKIPPABLE_MAGIC) {
      need(data, at, 8, 'skippable frame size');
      const size = data.readUInt32LE(at + 4);
      need(data, at + 8, size, 'skippable frame');
      at += 8 + size;
      continue;
    }
    if (magic !== LZ4_FRAME_MAGIC) corrupt(`frame magic 0x${magic.toString(16)}, expected 0x184d2204`);
    const { frame, next } = parseFrame(data, at, limit - total, limit);
    frames.push(frame);
    total += frame.inflatedSize;
    at = next;
  }
  if (frames.length === 0) corrupt('data holds no frame');
  const out = new FixedOutput(total);
  for (const frame of frames) {
    const frameStart = out.pos;
    for (const block of frame.blocks) {
      if (block.stored) {
        data.copy(out.buf, out.pos, block.start, block.start + block.size);
        out.pos += block.size;
      } else if (frame.independent && block.inflated >= NATIVE_BLOCK_MIN_BYTES) {
        inflateIndependentBlock(data, block, out);
      } else {
        inflateBlock(data, block.start, block.start + block.size, out, frameStart);
      }
    }
    if (
      frame.checksumAt >= 0 &&
      xxhash32(out.buf, frameStart, out.pos) !== data.readUInt32LE(frame.checksumAt)
    ) {
      corrupt('content checksum does not match');
    }
  }
  return out.result();
}

/**
 * Inflates the block format older versions wrote: the inflated length as u32 LE, then one raw LZ4
 * block that must inflate to exactly that length. The length is checked against `limit` first.
 */
function inflateLz4LengthPrefixed(data: Buffer, limit: number): Buffer {
  if (data.length < 5) corrupt('block is truncated');
  const declared = data.readUInt32LE(0);
  if (declared > limit) tooLarge(limit, declared);
  const out = new FixedOutput(declared);
  inflateBlock(data, 4, data.length, out, 0);
  if (out.pos !== declared) corrupt(`block inflates to ${out.pos} bytes, its prefix says ${declared}`);
  return out.result();
}

/** Whether `data` starts like an LZ4 frame (or a skippable frame) rather than the older block format. */
function startsWithLz4Frame(data: Buffer): boolean {
  if (data.length < 4) return false;
  const magic = data.readUInt32LE(0);
  return magic === LZ4_FRAME_MAGIC || (magic & SKIPPABLE_MAGIC_MASK) >>> 0 === SKIPPABLE_MAGIC;
}

/**
 * Inflates codec-3 data of either format. A frame starts with its magic; an older block starts
 * with its inflated length, so it could only look like a frame if that length were exactly
 * 0x184D2204 (407,707,140 bytes): when such data does not parse as frames, and the limit allows
 * that length, it is read as the older format before being refused.
 */
export function decompressLz4Records(data: Buffer, limit: number): Buffer {
  if (!startsWithLz4Frame(data)) return inflateLz4LengthPrefixed(data, limit);
  try {
    return inflateLz4Frames(data, limit);
  } catch (frameError) {
    if ((frameError as { codeName?: string }).codeName !== 'BAD_RECORD_BATCH') throw frameError;
    if (data.readUInt32LE(0) !== LZ4_FRAME_MAGIC || limit < LZ4_FRAME_MAGIC) throw frameError;
    try {
      return inflateLz4LengthPrefixed(data, limit);
    } catch {
      throw frameError;
    }
  }
}
