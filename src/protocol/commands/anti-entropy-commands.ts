// Broker ↔ broker anti-entropy (docs/replication.md, "Anti-entropy"): a follower compares the
// sealed segments it holds below the high watermark with its leader's by their digests, without
// shipping the data, and fetches only the byte ranges that differ. Three request/response
// commands, answered by the partition's leader; a request-level refusal (NOT_LEADER,
// FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH, SEGMENT_NOT_FOUND, SEGMENT_RANGE_INVALID) is an error
// frame. Only brokers send them; they are not in the client's command registry.
//
// Layouts (little-endian; string = u16 length + UTF-8; bytes = u32 length + bytes; hashes are
// SHA-256, 32 bytes). Every request starts with
//   PartitionRef = replicaId i32 | topic string | partition u32 | leaderEpoch i32 (the epoch the
//                  follower follows: a leader at another epoch refuses)
//
// SEGMENT_ROOTS 0x0610: the root digest of each named sealed segment of the leader
//   req: PartitionRef | chunkBytes u32 | count u32 | baseOffset i64 × count
//   res: highWatermark i64 | chunkBytes u32 | count u32 | SegmentRoot × count
//        SegmentRoot = baseOffset i64 | errorCode u16 | nextOffset i64 | size i64 | root bytes
//        (an entry with an error — SEGMENT_NOT_FOUND: the leader has no settled segment there —
//         carries nextOffset -1, size -1 and an empty root)
//
// SEGMENT_CHUNK_DIGESTS 0x0611: every chunk hash of one sealed segment of the leader
//   req: PartitionRef | chunkBytes u32 | baseOffset i64
//   res: nextOffset i64 | size i64 | chunkBytes u32 | root bytes | chunks bytes (32 × chunk count)
//
// SEGMENT_RANGE 0x0612: raw bytes of a sealed segment of the leader (at most MAX_SEGMENT_RANGE_BYTES)
//   req: PartitionRef | baseOffset i64 | position i64 | length u32
//   res: size i64 (the segment's) | bytes bytes

import type { BinaryReader } from '../codec/binary-reader.js';
import type { BinaryWriter } from '../codec/binary-writer.js';
import { type ErrorName, errorOf } from '../error-codes.js';
import { Opcode } from '../opcodes.js';
import { type CommandCodec, defineCommand } from './command.js';
import { readErrorField, writeErrorField } from './metadata-command.js';

/** Bytes of a chunk hash and of a root. */
export const SEGMENT_HASH_BYTES = 32;
/** The largest range one SEGMENT_RANGE returns. */
export const MAX_SEGMENT_RANGE_BYTES = 1024 * 1024;
/** Segments one SEGMENT_ROOTS may name. */
export const MAX_SEGMENT_ROOTS = 1024;

export interface SegmentPartitionRef {
  /** Broker id of the follower asking. */
  replicaId: number;
  topic: string;
  partition: number;
  /** The leader epoch the follower follows. */
  leaderEpoch: number;
}

export interface SegmentRootsRequest extends SegmentPartitionRef {
  chunkBytes: number;
  baseOffsets: bigint[];
}

export interface SegmentRoot {
  baseOffset: bigint;
  /** SEGMENT_NOT_FOUND when the leader has no settled segment starting there. */
  error: ErrorName | null;
  nextOffset: bigint;
  size: number;
  root: Buffer;
}

export interface SegmentRootsResponse {
  highWatermark: bigint;
  chunkBytes: number;
  segments: SegmentRoot[];
}

export interface SegmentChunkDigestsRequest extends SegmentPartitionRef {
  chunkBytes: number;
  baseOffset: bigint;
}

export interface SegmentChunkDigestsResponse {
  nextOffset: bigint;
  size: number;
  chunkBytes: number;
  root: Buffer;
  chunks: Buffer[];
}

export interface SegmentRangeRequest extends SegmentPartitionRef {
  baseOffset: bigint;
  position: number;
  length: number;
}

export interface SegmentRangeResponse {
  /** The leader's segment size (a follower checks it still matches its own). */
  size: number;
  bytes: Buffer;
}

function writeRef(w: BinaryWriter, ref: SegmentPartitionRef): void {
  w.i32(ref.replicaId).string(ref.topic).u32(ref.partition).i32(ref.leaderEpoch);
}

function readRef(r: BinaryReader): SegmentPartitionRef {
  const replicaId = r.i32();
  if (replicaId < 0) throw errorOf('MALFORMED_PAYLOAD', `replicaId ${replicaId}; a broker id ≥ 0`);
  const topic = r.string();
  const partition = r.u32();
  const leaderEpoch = r.i32();
  if (leaderEpoch < 0) throw errorOf('MALFORMED_PAYLOAD', `leaderEpoch ${leaderEpoch}; an epoch ≥ 0`);
  return { replicaId, topic, partition, leaderEpoch };
}

function readNonNegativeOffset(r: BinaryReader, what: string): bigint {
  const value = r.i64();
  if (value < 0n) throw errorOf('MALFORMED_PAYLOAD', `${what} ${value}; ≥ 0`);
  return value;
}

function readSize(r: BinaryReader, what: string): number {
  const value = r.int();
  if (value < 0) throw errorOf('MALFORMED_PAYLOAD', `${what} ${value}; ≥ 0`);
  return value;
}

function readChunkBytes(r: BinaryReader): number {
  const chunkBytes = r.u32();
  if (chunkBytes === 0) throw errorOf('MALFORMED_PAYLOAD', 'chunkBytes 0');
  return chunkBytes;
}

function readHash(r: BinaryReader, what: string): Buffer {
  const hash = r.bytes();
  if (hash === null || hash.length !== SEGMENT_HASH_BYTES)
    throw errorOf('MALFORMED_PAYLOAD', `${what}: ${hash?.length ?? 'null'} bytes; ${SEGMENT_HASH_BYTES}`);
  return hash;
}

export const segmentRootsCommand = defineCommand<SegmentRootsRequest, SegmentRootsResponse>({
  opcode: Opcode.SEGMENT_ROOTS,
  encodeRequest: (w, req) => {
    writeRef(w, req);
    w.u32(req.chunkBytes).u32(req.baseOffsets.length);
    for (const baseOffset of req.baseOffsets) w.i64(baseOffset);
  },
  decodeRequest: (r) => {
    const ref = readRef(r);
    const chunkBytes = readChunkBytes(r);
    const count = r.count(8);
    if (count > MAX_SEGMENT_ROOTS)
      throw errorOf('MALFORMED_PAYLOAD', `${count} segments; at most ${MAX_SEGMENT_ROOTS} a request`);
    const baseOffsets: bigint[] = [];
    for (let i = 0; i < count; i++) baseOffsets.push(readNonNegativeOffset(r, 'baseOffset'));
    return { ...ref, chunkBytes, baseOffsets };
  },
  encodeResponse: (w, res) => {
    w.i64(res.highWatermark).u32(res.chunkBytes).u32(res.segments.length);
    for (const segment of res.segments) {
      w.i64(segment.baseOffset);
      writeErrorField(w, segment.error);
      if (segment.error === null) w.i64(segment.nextOffset).i64(BigInt(segment.size)).bytes(segment.root);
      else w.i64(-1n).i64(-1n).bytes(Buffer.alloc(0));
    }
  },
  decodeResponse: (r) => {
    const highWatermark = readNonNegativeOffset(r, 'highWatermark');
    const chunkBytes = readChunkBytes(r);
    const count = r.count(8 + 2 + 8 + 8 + 4);
    const segments: SegmentRoot[] = [];
    for (let i = 0; i < count; i++) {
      const baseOffset = readNonNegativeOffset(r, 'baseOffset');
      const error = readErrorField(r);
      if (error !== null) {
        r.i64();
        r.i64();
        r.bytes();
        segments.push({ baseOffset, error, nextOffset: -1n, size: -1, root: Buffer.alloc(0) });
        continue;
      }
      const nextOffset = readNonNegativeOffset(r, 'nextOffset');
      const size = readSize(r, 'size');
      segments.push({ baseOffset, error, nextOffset, size, root: readHash(r, 'root') });
    }
    return { highWatermark, chunkBytes, segments };
  },
});

export const segmentChunkDigestsCommand = defineCommand<
  SegmentChunkDigestsRequest,
  SegmentChunkDigestsResponse
>({
  opcode: Opcode.SEGMENT_CHUNK_DIGESTS,
  encodeRequest: (w, req) => {
    writeRef(w, req);
    w.u32(req.chunkBytes).i64(req.baseOffset);
  },
  decodeRequest: (r) => {
    const ref = readRef(r);
    const chunkBytes = readChunkBytes(r);
    return { ...ref, chunkBytes, baseOffset: readNonNegativeOffset(r, 'baseOffset') };
  },
  encodeResponse: (w, res) => {
    w.i64(res.nextOffset).i64(BigInt(res.size)).u32(res.chunkBytes).bytes(res.root);
    // Hashes back to back: one length for all of them.
    w.u32(res.chunks.length * SEGMENT_HASH_BYTES);
    for (const chunk of res.chunks) w.raw(chunk);
  },
  decodeResponse: (r) => {
    const nextOffset = readNonNegativeOffset(r, 'nextOffset');
    const size = readSize(r, 'size');
    const chunkBytes = readChunkBytes(r);
    const root = readHash(r, 'root');
    const all = r.bytes();
    if (
      all === null ||
      all.length % SEGMENT_HASH_BYTES !== 0 ||
      all.length / SEGMENT_HASH_BYTES !== Math.ceil(size / chunkBytes)
    )
      throw errorOf(
        'MALFORMED_PAYLOAD',
        `${all?.length ?? 'null'} bytes of chunk hashes for ${size} bytes in chunks of ${chunkBytes}`,
      );
    const chunks: Buffer[] = [];
    for (let at = 0; at < all.length; at += SEGMENT_HASH_BYTES)
      chunks.push(all.subarray(at, at + SEGMENT_HASH_BYTES));
    return { nextOffset, size, chunkBytes, root, chunks };
  },
});

export const segmentRangeCommand = defineCommand<SegmentRangeRequest, SegmentRangeResponse>({
  opcode: Opcode.SEGMENT_RANGE,
  encodeRequest: (w, req) => {
    writeRef(w, req);
    w.i64(req.baseOffset).i64(BigInt(req.position)).u32(req.length);
  },
  decodeRequest: (r) => {
    const ref = readRef(r);
    const baseOffset = readNonNegativeOffset(r, 'baseOffset');
    const position = readSize(r, 'position');
    const length = r.u32();
    if (length === 0 || length > MAX_SEGMENT_RANGE_BYTES)
      throw errorOf('SEGMENT_RANGE_INVALID', `${length} bytes; 1 to ${MAX_SEGMENT_RANGE_BYTES} a request`);
    return { ...ref, baseOffset, position, length };
  },
  encodeResponse: (w, res) => {
    w.i64(BigInt(res.size)).bytes(res.bytes);
  },
  decodeResponse: (r) => {
    const size = readSize(r, 'size');
    const bytes = r.bytes();
    if (bytes === null) throw errorOf('MALFORMED_PAYLOAD', 'null segment bytes');
    return { size, bytes };
  },
});

/** What a partition's leader answers (implemented by the anti-entropy service). */
export interface AntiEntropyRequests {
  segmentRoots(request: SegmentRootsRequest): Promise<SegmentRootsResponse>;
  segmentChunkDigests(request: SegmentChunkDigestsRequest): Promise<SegmentChunkDigestsResponse>;
  segmentRange(request: SegmentRangeRequest): Promise<SegmentRangeResponse>;
}

/** The anti-entropy commands by name; brokers dispatch these opcodes with answerAntiEntropy. */
export const ANTI_ENTROPY_COMMANDS = {
  segmentRoots: segmentRootsCommand,
  segmentChunkDigests: segmentChunkDigestsCommand,
  segmentRange: segmentRangeCommand,
} as const;

export type AntiEntropyCommandName = keyof typeof ANTI_ENTROPY_COMMANDS;

const byOpcode = new Map<number, AntiEntropyCommandName>(
  (Object.keys(ANTI_ENTROPY_COMMANDS) as AntiEntropyCommandName[]).map((name) => [
    ANTI_ENTROPY_COMMANDS[name].opcode,
    name,
  ]),
);

export function antiEntropyCommandForOpcode(opcode: number): AntiEntropyCommandName | undefined {
  return byOpcode.get(opcode);
}

export function isAntiEntropyCommand(name: string): name is AntiEntropyCommandName {
  return Object.hasOwn(ANTI_ENTROPY_COMMANDS, name);
}

async function answer<Q, S>(
  command: CommandCodec<Q, S>,
  reader: BinaryReader,
  writer: BinaryWriter,
  handle: (request: Q) => Promise<S>,
): Promise<void> {
  const request = command.decodeRequest(reader);
  reader.end();
  command.encodeResponse(writer, await handle(request));
}

/**
 * Decodes one anti-entropy request, has `handler` answer it and encodes the answer (a broker
 * without a handler, not in a cluster, answers UNKNOWN_OPCODE).
 */
export function answerAntiEntropy(
  name: AntiEntropyCommandName,
  reader: BinaryReader,
  writer: BinaryWriter,
  handler: AntiEntropyRequests | undefined,
): Promise<void> {
  if (handler === undefined)
    return Promise.reject(
      errorOf('UNKNOWN_OPCODE', `0x${ANTI_ENTROPY_COMMANDS[name].opcode.toString(16)}: not in a cluster`),
    );
  switch (name) {
    case 'segmentRoots':
      return answer(segmentRootsCommand, reader, writer, (q) => handler.segmentRoots(q));
    case 'segmentChunkDigests':
      return answer(segmentChunkDigestsCommand, reader, writer, (q) => handler.segmentChunkDigests(q));
    case 'segmentRange':
      return answer(segmentRangeCommand, reader, writer, (q) => handler.segmentRange(q));
  }
}
