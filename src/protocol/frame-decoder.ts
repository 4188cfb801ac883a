// Splits a byte stream, cut anywhere, into frames. Frames inside one chunk come out as zero-copy
// views of it; a frame spanning chunks is assembled into one buffer only once all of its bytes have
// arrived: until then the decoder holds just the chunks received, so a header that declares 8 MiB
// and is followed by 10 bytes costs 10 bytes, not 8 MiB (not even of virtual memory). A header must
// also pass every check (magic, header CRC, version, flags, length limit) first. No timers, no
// sockets: a connection bounds how long a frame may take to arrive (`frameStarted`).
//
// Rules (docs/protocol.md, "Error handling"):
//  - bad magic, bad header CRC, unsupported version, unknown flags, or a declared length over the
//    limit make the stream untrustworthy: next() throws that error, and keeps throwing it;
//  - a payload CRC mismatch under a valid header leaves framing intact: the frame is returned with
//    `payloadCrcValid: false` and the connection can answer BAD_PAYLOAD_CRC and go on;
//  - unknown opcodes are returned as frames (the header says how long they are); the dispatcher
//    answers UNKNOWN_OPCODE. Their payload is held to the control limit.

import { MemoryStreamerError } from '../common/errors.js';
import { crc32cHeader, crc32cOf } from './crc32c-small.js';
import { errorOf } from './error-codes.js';
import {
  FRAME_HEADER_SIZE,
  FRAME_MAGIC,
  FrameFlags,
  type FrameHeader,
  HEADER_OFFSETS,
  KNOWN_FLAGS_MASK,
  MAX_PROTOCOL_VERSION,
  MIN_PROTOCOL_VERSION,
  readFrameHeader,
  u32,
} from './frame-header.js';
import { isDataOpcode } from './opcodes.js';

export interface Frame {
  header: FrameHeader;
  /** View of the payload; valid as long as the caller keeps it (the decoder never reuses it). */
  payload: Buffer;
  payloadCrcValid: boolean;
}

export interface FrameDecoderLimits {
  /** Largest payload of a data frame (produce, fetch, push). */
  maxPayloadBytes: number;
  /** Largest payload of a control frame (handshake, admin, groups) and of unknown opcodes. */
  maxControlPayloadBytes: number;
}

const MAGIC_BYTES = Buffer.from('MSTR', 'latin1');
/** Chunks up to this size are copied into a shared tail buffer of TAIL_BYTES instead of queued as they are. */
const SMALL_CHUNK = 1024;
const TAIL_BYTES = 16 * 1024;
const EMPTY = Buffer.alloc(0);

export class FrameDecoder {
  private readonly limits: FrameDecoderLimits;
  /** Chunks pushed and not fully consumed; `chunks[0]` is read from `position`. */
  private readonly chunks: Buffer[] = [];
  private position = 0;
  private queuedBytes = 0;
  /** A header split across chunks is gathered here. */
  private readonly headerScratch = Buffer.alloc(FRAME_HEADER_SIZE);
  private headerFill = 0;
  /** Header of the frame whose payload is being gathered. */
  private header: FrameHeader | null = null;
  private failure: MemoryStreamerError | null = null;
  /** Buffer that small chunks are gathered in; the queued view of it spans tailStart..tailFill. */
  private tail: Buffer | null = null;
  private tailStart = 0;
  private tailFill = 0;
  /** True while the last element of `chunks` is the view of `tail` that new small chunks extend. */
  private tailIsLast = false;

  constructor(limits: FrameDecoderLimits) {
    this.limits = limits;
  }

  /** Bytes held by the decoder (input received and not yet handed out as frames), for memory budgets. */
  get bufferedBytes(): number {
    return this.queuedBytes + this.headerFill;
  }

  /**
   * Frames handed out so far. A connection compares it across reads to tell a frame still arriving
   * from one that started after the last completed (the frame timeout runs from a frame's start).
   */
  framesDecoded = 0;

  /** True when the decoder holds part of a frame (a connection closing now would truncate it). */
  get hasPartialFrame(): boolean {
    return this.queuedBytes > 0 || this.headerFill > 0 || this.header !== null;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0 || this.failure !== null) return;
    this.queuedBytes += chunk.length;
    if (chunk.length > SMALL_CHUNK || (this.chunks.length === 0 && this.headerFill === 0)) {
      // Large chunks, and any that starts on a frame boundary (frames inside it come out as views).
      this.chunks.push(chunk);
      this.tailIsLast = false;
      return;
    }
    // A small chunk continuing a frame is copied into a shared tail buffer, so a peer that sends a
    // frame a few bytes at a time costs those bytes, not a Buffer object per read.
    const tail = this.tail;
    if (this.tailIsLast && tail !== null && this.tailFill + chunk.length <= tail.length) {
      // The last queued chunk is a view of the tail: extend it (same start, so `position` stays).
      chunk.copy(tail, this.tailFill);
      this.tailFill += chunk.length;
      this.chunks[this.chunks.length - 1] = tail.subarray(this.tailStart, this.tailFill);
      return;
    }
    if (tail === null || this.tailFill + chunk.length > tail.length) {
      // Bytes already written to an old tail never change: frames handed out as views stay valid.
      this.tail = Buffer.allocUnsafe(TAIL_BYTES);
      this.tailFill = 0;
    }
    this.tailStart = this.tailFill;
    chunk.copy(this.tail!, this.tailFill);
    this.tailFill += chunk.length;
    this.chunks.push(this.tail!.subarray(this.tailStart, this.tailFill));
    this.tailIsLast = true;
  }

  /** The next whole frame, or null when more bytes are needed. Throws when the stream is broken. */
  next(): Frame | null {
    if (this.failure !== null) throw this.failure;
    try {
      return this.decode();
    } catch (error) {
      if (error instanceof MemoryStreamerError) {
        this.failure = error;
        this.chunks.length = 0;
        this.queuedBytes = 0;
        this.tail = null;
        this.tailIsLast = false;
      }
      throw error;
    }
  }

  private decode(): Frame | null {
    if (this.header === null) {
      // Fast path, the common case on a socket: the whole frame lies in the current chunk. One
      // validation, one view, one consume.
      const first = this.chunks[0];
      if (this.headerFill === 0 && first !== undefined) {
        const at = this.position;
        const available = first.length - at;
        if (available >= FRAME_HEADER_SIZE) {
          const header = this.validateHeader(first, at);
          const length = header.payloadLength;
          if (available - FRAME_HEADER_SIZE >= length) {
            const start = at + FRAME_HEADER_SIZE;
            this.consume(FRAME_HEADER_SIZE + length);
            return this.finish(header, length === 0 ? EMPTY : first.subarray(start, start + length));
          }
          this.consume(FRAME_HEADER_SIZE);
          this.header = header;
        }
      }
    }
    if (this.header === null && !this.readHeader()) return null;
    const header = this.header!;
    const length = header.payloadLength;
    const first = this.chunks[0];
    if (first !== undefined && first.length - this.position >= length) {
      // Whole payload in the current chunk: hand out a view.
      const view = first.subarray(this.position, this.position + length);
      this.consume(length);
      return this.finish(header, view);
    }
    if (length === 0) return this.finish(header, EMPTY);
    // The payload spans chunks: wait until all of it has arrived, then copy it out once.
    if (this.queuedBytes < length) return null;
    const payload = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const chunk = this.chunks[0]!;
      const take = Math.min(length - filled, chunk.length - this.position);
      chunk.copy(payload, filled, this.position, this.position + take);
      filled += take;
      this.consume(take);
    }
    return this.finish(header, payload);
  }

  private finish(header: FrameHeader, payload: Buffer): Frame {
    this.header = null;
    this.framesDecoded++;
    const selfCrc = (header.flags & FrameFlags.PAYLOAD_SELF_CRC) !== 0;
    const payloadCrcValid =
      selfCrc || payload.length === 0 ? true : crc32cOf(payload, 0, payload.length) === header.payloadCrc;
    return { header, payload, payloadCrcValid };
  }

  /** Gathers and validates the next header; false when more bytes are needed. */
  private readHeader(): boolean {
    const first = this.chunks[0];
    if (first === undefined) return false;
    let source: Buffer;
    let at: number;
    if (this.headerFill === 0 && first.length - this.position >= FRAME_HEADER_SIZE) {
      source = first;
      at = this.position;
    } else {
      while (this.headerFill < FRAME_HEADER_SIZE) {
        const chunk = this.chunks[0];
        if (chunk === undefined) {
          this.checkMagicPrefix(this.headerScratch, 0, this.headerFill);
          return false;
        }
        const take = Math.min(FRAME_HEADER_SIZE - this.headerFill, chunk.length - this.position);
        chunk.copy(this.headerScratch, this.headerFill, this.position, this.position + take);
        this.headerFill += take;
        this.consume(take);
      }
      source = this.headerScratch;
      at = 0;
    }
    const header = this.validateHeader(source, at);
    if (source === first) this.consume(FRAME_HEADER_SIZE);
    this.headerFill = 0;
    this.header = header;
    return true;
  }

  /** Checks the 40 header bytes at `at` (magic, CRC, version, flags, length limit) and parses them. */
  private validateHeader(source: Buffer, at: number): FrameHeader {
    if (u32(source, at) !== FRAME_MAGIC) this.checkMagicPrefix(source, at, 4);
    const headerCrc = u32(source, at + HEADER_OFFSETS.headerCrc);
    if (crc32cHeader(source, at) !== headerCrc) {
      throw errorOf('BAD_HEADER_CRC');
    }
    const header = readFrameHeader(source, at);
    if (header.version < MIN_PROTOCOL_VERSION || header.version > MAX_PROTOCOL_VERSION) {
      throw errorOf(
        'UNSUPPORTED_VERSION',
        `frame version ${header.version}; supported ${MIN_PROTOCOL_VERSION}..${MAX_PROTOCOL_VERSION}`,
      );
    }
    if ((header.flags & ~KNOWN_FLAGS_MASK) !== 0) {
      throw errorOf('BAD_FLAGS', `flags 0x${header.flags.toString(16)}`);
    }
    const limit = isDataOpcode(header.opcode)
      ? this.limits.maxPayloadBytes
      : this.limits.maxControlPayloadBytes;
    if (header.payloadLength > limit) {
      throw errorOf('FRAME_TOO_LARGE', `declared ${header.payloadLength} bytes, limit ${limit}`);
    }
    return header;
  }

  /** Rejects garbage as early as its first byte, so a peer cannot dribble junk into a 40-byte wait. */
  private checkMagicPrefix(source: Buffer, at: number, count: number): void {
    for (let i = 0; i < count && i < 4; i++) {
      if (source[at + i] !== MAGIC_BYTES[i]) throw errorOf('BAD_MAGIC');
    }
  }

  private consume(count: number): void {
    this.position += count;
    this.queuedBytes -= count;
    const first = this.chunks[0];
    if (first !== undefined && this.position >= first.length) {
      this.chunks.shift();
      this.position = 0;
      if (this.chunks.length === 0) this.tailIsLast = false;
    }
  }
}
