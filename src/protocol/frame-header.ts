// The 40-byte frame header that starts every frame on a connection, little-endian.
// Encoding and decoding of the header only; splitting a byte stream into frames is frame-decoder.ts.
//
//  offset  size  field
//  0       4     magic            "MSTR" (0x4D 0x53 0x54 0x52)
//  4       1     version          protocol version of this frame (1)
//  5       1     flags            FrameFlags bits
//  6       2     opcode           u16, see opcodes.ts
//  8       4     correlationId    u32, chosen by the requester, echoed in the response
//  12      4     channelId        u32, push channel the frame belongs to; 0 = request/response
//  16      4     payloadLength    u32, bytes of payload after the header
//  20      8     timestamp        u64, microseconds since the Unix epoch when the frame was built
//  28      2     errorCode        u16, 0 = ok; see error-codes.ts
//  30      1     priority         u8, 0 (lowest) to 255; orders push channels
//  31      1     reserved         0
//  32      4     payloadCrc       CRC-32C of the payload; 0 and unchecked when PAYLOAD_SELF_CRC is set
//  36      4     headerCrc        CRC-32C of bytes 0..35

import { crc32cHeader, crc32cOf } from './crc32c-small.js';

export const FRAME_HEADER_SIZE = 40;
export const FRAME_MAGIC = 0x5254534d; // "MSTR" read as a little-endian u32
export const PROTOCOL_VERSION = 1;
export const MIN_PROTOCOL_VERSION = 1;
export const MAX_PROTOCOL_VERSION = 1;

export const FrameFlags = {
  /** The frame answers a request with the same correlation id. */
  RESPONSE: 0x01,
  /** The response carries an error: errorCode is set and the payload is an error payload. */
  ERROR: 0x02,
  /** Server-initiated frame on a push channel. */
  PUSH: 0x04,
  /** Last frame of a push channel: the channel is closed after it. */
  END_OF_STREAM: 0x08,
  /** The payload is (or ends with) a record batch with its own CRC; payloadCrc is 0 and unchecked. */
  PAYLOAD_SELF_CRC: 0x10,
} as const;
export const KNOWN_FLAGS_MASK = 0x1f;

export const HEADER_OFFSETS = {
  magic: 0,
  version: 4,
  flags: 5,
  opcode: 6,
  correlationId: 8,
  channelId: 12,
  payloadLength: 16,
  timestamp: 20,
  errorCode: 28,
  priority: 30,
  reserved: 31,
  payloadCrc: 32,
  headerCrc: 36,
} as const;

export interface FrameHeader {
  version: number;
  flags: number;
  opcode: number;
  correlationId: number;
  channelId: number;
  payloadLength: number;
  /** Microseconds since the Unix epoch (a number: exact until the year 2255). */
  timestamp: number;
  errorCode: number;
  priority: number;
  payloadCrc: number;
  headerCrc: number;
}

/** Fields a writer chooses; the rest (magic, length, CRCs) are derived. */
export interface FrameFields {
  opcode: number;
  correlationId?: number;
  channelId?: number;
  flags?: number;
  errorCode?: number;
  priority?: number;
  timestamp?: number;
  version?: number;
}

const EPOCH_MICROS_AT_START = Date.now() * 1000 - performance.now() * 1000;

/** Wall-clock microseconds, monotonic within the process. */
export function nowMicros(): number {
  return Math.floor(EPOCH_MICROS_AT_START + performance.now() * 1000);
}

/** Writes a safe-integer u64 as two u32 halves (no BigInt on the hot path). */
function writeU64(target: Buffer, value: number, at: number): void {
  target.writeUInt32LE(value % 0x100000000, at);
  target.writeUInt32LE(Math.floor(value / 0x100000000), at + 4);
}

/**
 * Writes only the 40-byte header at `at`, for a payload of `payloadLength` bytes that the caller
 * sends separately (scatter writes of record batches without copying them into one buffer).
 */
export function writeFrameHeader(
  target: Buffer,
  at: number,
  fields: FrameFields,
  payloadLength: number,
  payloadCrc: number,
): void {
  target.writeUInt32LE(FRAME_MAGIC, at + HEADER_OFFSETS.magic);
  target[at + HEADER_OFFSETS.version] = fields.version ?? PROTOCOL_VERSION;
  target[at + HEADER_OFFSETS.flags] = fields.flags ?? 0;
  target.writeUInt16LE(fields.opcode, at + HEADER_OFFSETS.opcode);
  target.writeUInt32LE(fields.correlationId ?? 0, at + HEADER_OFFSETS.correlationId);
  target.writeUInt32LE(fields.channelId ?? 0, at + HEADER_OFFSETS.channelId);
  target.writeUInt32LE(payloadLength, at + HEADER_OFFSETS.payloadLength);
  writeU64(target, fields.timestamp ?? nowMicros(), at + HEADER_OFFSETS.timestamp);
  target.writeUInt16LE(fields.errorCode ?? 0, at + HEADER_OFFSETS.errorCode);
  target[at + HEADER_OFFSETS.priority] = fields.priority ?? 0;
  target[at + HEADER_OFFSETS.reserved] = 0;
  target.writeUInt32LE(payloadCrc, at + HEADER_OFFSETS.payloadCrc);
  target.writeUInt32LE(crc32cHeader(target, at), at + HEADER_OFFSETS.headerCrc);
}

/**
 * Writes header and payload at `at` in `target` (which must have FRAME_HEADER_SIZE + payload.length
 * bytes free) and returns the offset after the frame. The payload may be empty.
 */
export function writeFrame(target: Buffer, at: number, fields: FrameFields, payload: Uint8Array): number {
  const flags = fields.flags ?? 0;
  const payloadCrc =
    flags & FrameFlags.PAYLOAD_SELF_CRC || payload.length === 0 ? 0 : crc32cOf(payload, 0, payload.length);
  writeFrameHeader(target, at, fields, payload.length, payloadCrc);
  target.set(payload, at + FRAME_HEADER_SIZE);
  return at + FRAME_HEADER_SIZE + payload.length;
}

/** One allocation: header and payload in a fresh buffer. */
export function encodeFrame(fields: FrameFields, payload: Uint8Array = EMPTY): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + payload.length);
  writeFrame(frame, 0, fields, payload);
  return frame;
}

const EMPTY = Buffer.alloc(0);

/** Reads the header fields at `at`; validation is the decoder's job. */
export function readFrameHeader(buf: Buffer, at = 0): FrameHeader {
  // Plain byte arithmetic instead of Buffer.readUInt*LE: this runs once per frame, and the
  // methods' argument checks cost more than the reads (bench/frame-decode.ts). Callers have
  // already made sure 40 bytes are there.
  return {
    version: buf[at + HEADER_OFFSETS.version]!,
    flags: buf[at + HEADER_OFFSETS.flags]!,
    opcode: u16(buf, at + HEADER_OFFSETS.opcode),
    correlationId: u32(buf, at + HEADER_OFFSETS.correlationId),
    channelId: u32(buf, at + HEADER_OFFSETS.channelId),
    payloadLength: u32(buf, at + HEADER_OFFSETS.payloadLength),
    timestamp:
      u32(buf, at + HEADER_OFFSETS.timestamp) + u32(buf, at + HEADER_OFFSETS.timestamp + 4) * 0x100000000,
    errorCode: u16(buf, at + HEADER_OFFSETS.errorCode),
    priority: buf[at + HEADER_OFFSETS.priority]!,
    payloadCrc: u32(buf, at + HEADER_OFFSETS.payloadCrc),
    headerCrc: u32(buf, at + HEADER_OFFSETS.headerCrc),
  };
}

/** Little-endian u16 at `at` (no bounds check: the caller owns that). */
export function u16(buf: Buffer, at: number): number {
  return buf[at]! | (buf[at + 1]! << 8);
}

/** Little-endian u32 at `at` (no bounds check: the caller owns that). */
export function u32(buf: Buffer, at: number): number {
  return (buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16) | (buf[at + 3]! << 24)) >>> 0;
}
