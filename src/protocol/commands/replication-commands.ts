// Broker ↔ broker replication: REPLICA_FETCH (a follower fetches from its partitions' leader) and
// OFFSETS_FOR_LEADER_EPOCH (a follower that starts following a new leader asks where an epoch
// ends in the leader's log, to truncate its own where the two histories part). Both are
// request/response commands: each replica fetch also reports the follower's position, which is
// what moves the ISR and the high watermark (docs/protocol.md, "Replication"). Only brokers send
// them; they are not in the client's command registry.
//
// Layouts (little-endian; string = u16 length + UTF-8; bytes = u32 length + bytes; epochs i32,
// -1 = none; offsets i64, -1 = none). Entries of one topic are grouped under its name, in the
// order given: TopicGroup<E> = topicCount u32 | (topic string | count u32 | E × count) × topicCount.
//
// REPLICA_FETCH (data opcode)
//   req: replicaId i32 | maxWaitMs u32 | minBytes u32 | maxBytes u32 | TopicGroup<FetchPartition>
//        FetchPartition = partition u32 | leaderEpoch i32 (the leader epoch the follower follows) |
//                         lastFetchedEpoch i32 (epoch of the last batch it holds) |
//                         fetchOffset i64 (its log end) | stableOffset i64 (what it counts
//                         towards the high watermark: ≤ fetchOffset) | maxBytes u32
//   res: TopicGroup<FetchedPartition>
//        FetchedPartition = partition u32 | errorCode u16 | highWatermark i64 | logStartOffset i64 |
//                           leaderEpoch i32 | divergingEpoch i32 | divergingEndOffset i64 |
//                           batches bytes (whole record batches as the leader stored them)
//
// OFFSETS_FOR_LEADER_EPOCH (data opcode: a follower may ask about thousands of partitions)
//   req: replicaId i32 | TopicGroup<EpochQueryPartition>
//        EpochQueryPartition = partition u32 | leaderEpoch i32 (the leader epoch the follower
//                              follows) | queryEpoch i32 (where does this epoch end?)
//   res: TopicGroup<EpochAnswerPartition>
//        EpochAnswerPartition = partition u32 | errorCode u16 | epoch i32 | endOffset i64
//        (epoch: the largest epoch of the leader ≤ queryEpoch; endOffset: where it ends there;
//         -1 and -1 when the leader knows no such epoch, or with an error)
//
// The per-partition field names are those of src/cluster/replication/messages.ts (ReplicaFetchRequest,
// EpochQuery): an entry with the request's replicaId is the state machines' message. Answers map
// with epochAnswerOf / epochAnswerPartitionOf (EpochAnswer) and replicaFetchResultOf
// (ReplicaFetchResponse, its batches split by replicaBatchesOf).

import type { BinaryReader } from '../codec/binary-reader.js';
import type { BinaryWriter } from '../codec/binary-writer.js';
import { type ErrorName, errorOf } from '../error-codes.js';
import { Opcode } from '../opcodes.js';
import { BATCH_HEADER_SIZE, BATCH_LOG_OVERHEAD, BATCH_OFFSETS } from '../record-batch-layout.js';
import { defineCommand } from './command.js';
import { readErrorField, writeErrorField } from './metadata-command.js';

/** No epoch (a log without batches, an epoch the leader does not know), as in the batch header. */
export const NO_EPOCH = -1;
/** No offset, paired with NO_EPOCH. */
export const NO_OFFSET = -1n;

export interface ReplicaFetchPartition {
  topic: string;
  partition: number;
  /** The leader epoch the follower follows: a leader at another epoch refuses (fenced either way). */
  leaderEpoch: number;
  /** The epoch of the last batch the follower holds (NO_EPOCH for an empty log). */
  lastFetchedEpoch: number;
  /** The follower holds everything below this offset (its log end): send what follows. */
  fetchOffset: bigint;
  /**
   * What the follower counts towards the high watermark: its log end, or its locally stable
   * (fsynced) end when the topic's durability is `always`. Never above fetchOffset.
   */
  stableOffset: bigint;
  /** Largest batches section for this partition (at least one whole batch is sent). */
  maxBytes: number;
}

export interface ReplicaFetchRequest {
  /** Broker id of the follower. */
  replicaId: number;
  /** Long poll: the leader answers when minBytes are there or after this long. */
  maxWaitMs: number;
  minBytes: number;
  /** Largest response, all partitions together. */
  maxBytes: number;
  partitions: ReplicaFetchPartition[];
}

/** Where the follower's log parts from the leader's (Kafka's FetchResponse DivergingEpoch). */
export interface DivergingEpoch {
  epoch: number;
  /** The end of that epoch in the leader's log: the follower truncates to at most this offset. */
  endOffset: bigint;
}

export interface ReplicaFetchedPartition {
  topic: string;
  partition: number;
  /** null, or why nothing was read (FENCED_LEADER_EPOCH, NOT_LEADER, OFFSET_OUT_OF_RANGE, …). */
  error: ErrorName | null;
  highWatermark: bigint;
  logStartOffset: bigint;
  /** The leader's epoch, also with an error (a follower at another epoch learns it). */
  leaderEpoch: number;
  /** Set when lastFetchedEpoch and fetchOffset do not agree with the leader's log; else null. */
  divergingEpoch: DivergingEpoch | null;
  /** Whole record batches as the leader stored them, from the one holding fetchOffset. */
  batches: Buffer;
}

export interface ReplicaFetchResponse {
  partitions: ReplicaFetchedPartition[];
}

export interface EpochQueryPartition {
  topic: string;
  partition: number;
  /** The leader epoch the follower follows. */
  leaderEpoch: number;
  /** The epoch asked about: where does it end in the leader's log? */
  queryEpoch: number;
}

export interface OffsetsForLeaderEpochRequest {
  replicaId: number;
  partitions: EpochQueryPartition[];
}

export interface EpochAnswerPartition {
  topic: string;
  partition: number;
  error: ErrorName | null;
  /** The largest epoch of the leader's log ≤ queryEpoch; NO_EPOCH when none (or with an error). */
  epoch: number;
  /** Where that epoch ends in the leader's log (exclusive); NO_OFFSET with NO_EPOCH. */
  endOffset: bigint;
}

export interface OffsetsForLeaderEpochResponse {
  partitions: EpochAnswerPartition[];
}

/** An answer as the follower state machine takes it (src/cluster/replication/messages.ts EpochAnswer). */
export type EpochAnswerOf =
  | { readonly error: null; readonly epoch: number; readonly endOffset: bigint }
  | { readonly error: ErrorName };

export function epochAnswerOf(entry: EpochAnswerPartition): EpochAnswerOf {
  return entry.error === null
    ? { error: null, epoch: entry.epoch, endOffset: entry.endOffset }
    : { error: entry.error };
}

/** The wire entry of a leader's answer (LeaderState.handleEpochQuery) for one partition. */
export function epochAnswerPartitionOf(
  topic: string,
  partition: number,
  answer: EpochAnswerOf,
): EpochAnswerPartition {
  return answer.error === null
    ? { topic, partition, error: null, epoch: answer.epoch, endOffset: answer.endOffset }
    : { topic, partition, error: answer.error, epoch: NO_EPOCH, endOffset: NO_OFFSET };
}

/** One batch of a replica fetch, as the follower appends it (messages.ts ReplicaBatch). */
export interface ReplicaBatchView {
  readonly baseOffset: bigint;
  readonly lastOffset: bigint;
  /** The batch header's partitionLeaderEpoch: the epoch of the leader that wrote it. */
  readonly leaderEpoch: number;
  /** A view of the batch's bytes in the response (no copy). */
  readonly bytes: Buffer;
}

/**
 * Splits a partition's batches section into its batches, reading only their headers. A section
 * that does not end on a batch boundary (the leader sends whole batches) is refused with
 * BAD_RECORD_BATCH before anything is appended; CRCs are the appending log's to check.
 */
export function replicaBatchesOf(section: Buffer): ReplicaBatchView[] {
  const batches: ReplicaBatchView[] = [];
  let at = 0;
  while (at < section.length) {
    if (section.length - at < BATCH_HEADER_SIZE)
      throw errorOf(
        'BAD_RECORD_BATCH',
        `replica fetch: ${section.length - at} bytes at ${at} are not a whole batch`,
      );
    const size = section.readInt32BE(at + BATCH_OFFSETS.batchLength) + BATCH_LOG_OVERHEAD;
    if (size < BATCH_HEADER_SIZE || size > section.length - at)
      throw errorOf('BAD_RECORD_BATCH', `replica fetch: batch at byte ${at} declares ${size} bytes`);
    const baseOffset = section.readBigInt64BE(at + BATCH_OFFSETS.baseOffset);
    const lastOffsetDelta = section.readInt32BE(at + BATCH_OFFSETS.lastOffsetDelta);
    if (baseOffset < 0n || lastOffsetDelta < 0)
      throw errorOf(
        'BAD_RECORD_BATCH',
        `replica fetch: batch at byte ${at} has offsets ${baseOffset}+${lastOffsetDelta}`,
      );
    batches.push({
      baseOffset,
      lastOffset: baseOffset + BigInt(lastOffsetDelta),
      leaderEpoch: section.readInt32BE(at + BATCH_OFFSETS.partitionLeaderEpoch),
      bytes: section.subarray(at, at + size),
    });
    at += size;
  }
  return batches;
}

/** A partition's fetch answer as the follower state machine takes it (messages.ts ReplicaFetchResponse). */
export type ReplicaFetchResultOf =
  | { readonly error: null; readonly batches: readonly ReplicaBatchView[]; readonly highWatermark: bigint }
  | { readonly error: ErrorName };

/** Maps one fetched partition for the follower; its batches are split (and checked whole) here. */
export function replicaFetchResultOf(entry: ReplicaFetchedPartition): ReplicaFetchResultOf {
  return entry.error === null
    ? { error: null, batches: replicaBatchesOf(entry.batches), highWatermark: entry.highWatermark }
    : { error: entry.error };
}

/** Writes entries grouped by topic: runs of consecutive entries with the same topic share its name. */
function writeTopicGroups<E extends { topic: string }>(
  w: BinaryWriter,
  entries: readonly E[],
  writeEntry: (w: BinaryWriter, entry: E) => void,
): void {
  const runs: { topic: string; from: number; to: number }[] = [];
  for (let i = 0; i < entries.length; i++) {
    const last = runs.at(-1);
    if (last !== undefined && last.topic === entries[i]!.topic) last.to = i + 1;
    else runs.push({ topic: entries[i]!.topic, from: i, to: i + 1 });
  }
  w.u32(runs.length);
  for (const run of runs) {
    w.string(run.topic).u32(run.to - run.from);
    for (let i = run.from; i < run.to; i++) writeEntry(w, entries[i]!);
  }
}

function readTopicGroups<E>(
  r: BinaryReader,
  minEntryBytes: number,
  readEntry: (r: BinaryReader, topic: string) => E,
): E[] {
  const entries: E[] = [];
  const topics = r.count(2 + 4);
  for (let t = 0; t < topics; t++) {
    const topic = r.string();
    const count = r.count(minEntryBytes);
    for (let i = 0; i < count; i++) entries.push(readEntry(r, topic));
  }
  return entries;
}

function readReplicaId(r: BinaryReader): number {
  const id = r.i32();
  if (id < 0) throw errorOf('MALFORMED_PAYLOAD', `replicaId ${id}; a broker id ≥ 0`);
  return id;
}

/** An epoch field: ≥ 0, or NO_EPOCH. */
function readEpoch(r: BinaryReader, what: string): number {
  const epoch = r.i32();
  if (epoch < NO_EPOCH) throw errorOf('MALFORMED_PAYLOAD', `${what} ${epoch}; an epoch ≥ 0 or -1`);
  return epoch;
}

function readOffset(r: BinaryReader, what: string): bigint {
  const offset = r.i64();
  if (offset < NO_OFFSET) throw errorOf('MALFORMED_PAYLOAD', `${what} ${offset}; an offset ≥ 0 or -1`);
  return offset;
}

const FETCH_PARTITION_BYTES = 4 + 4 + 4 + 8 + 8 + 4;
const FETCHED_PARTITION_MIN_BYTES = 4 + 2 + 8 + 8 + 4 + 4 + 8 + 4;

export const replicaFetchCommand = defineCommand<ReplicaFetchRequest, ReplicaFetchResponse>({
  opcode: Opcode.REPLICA_FETCH,
  encodeRequest: (w, req) => {
    w.i32(req.replicaId).u32(req.maxWaitMs).u32(req.minBytes).u32(req.maxBytes);
    writeTopicGroups(w, req.partitions, (e, p) =>
      e
        .u32(p.partition)
        .i32(p.leaderEpoch)
        .i32(p.lastFetchedEpoch)
        .i64(p.fetchOffset)
        .i64(p.stableOffset)
        .u32(p.maxBytes),
    );
  },
  decodeRequest: (r) => {
    const replicaId = readReplicaId(r);
    const maxWaitMs = r.u32();
    const minBytes = r.u32();
    const maxBytes = r.u32();
    const partitions = readTopicGroups(r, FETCH_PARTITION_BYTES, (e, topic): ReplicaFetchPartition => {
      const partition = e.u32();
      const leaderEpoch = readEpoch(e, 'leaderEpoch');
      const lastFetchedEpoch = readEpoch(e, 'lastFetchedEpoch');
      const fetchOffset = e.i64();
      const stableOffset = e.i64();
      if (fetchOffset < 0n || stableOffset < 0n || stableOffset > fetchOffset)
        throw errorOf(
          'MALFORMED_PAYLOAD',
          `${topic}/${partition}: fetchOffset ${fetchOffset}, stableOffset ${stableOffset}; 0 ≤ stableOffset ≤ fetchOffset`,
        );
      return {
        topic,
        partition,
        leaderEpoch,
        lastFetchedEpoch,
        fetchOffset,
        stableOffset,
        maxBytes: e.u32(),
      };
    });
    return { replicaId, maxWaitMs, minBytes, maxBytes, partitions };
  },
  encodeResponse: (w, res) =>
    writeTopicGroups(w, res.partitions, (e, p) => {
      e.u32(p.partition);
      writeErrorField(e, p.error);
      e.i64(p.highWatermark).i64(p.logStartOffset).i32(p.leaderEpoch);
      e.i32(p.divergingEpoch?.epoch ?? NO_EPOCH).i64(p.divergingEpoch?.endOffset ?? NO_OFFSET);
      e.bytes(p.batches);
    }),
  decodeResponse: (r) => ({
    partitions: readTopicGroups(r, FETCHED_PARTITION_MIN_BYTES, (e, topic): ReplicaFetchedPartition => {
      const partition = e.u32();
      const error = readErrorField(e);
      const highWatermark = e.i64();
      const logStartOffset = e.i64();
      const leaderEpoch = readEpoch(e, 'leaderEpoch');
      const divergingEpoch = readEpoch(e, 'divergingEpoch');
      const divergingEndOffset = readOffset(e, 'divergingEndOffset');
      if ((divergingEpoch === NO_EPOCH) !== (divergingEndOffset === NO_OFFSET))
        throw errorOf(
          'MALFORMED_PAYLOAD',
          `${topic}/${partition}: divergingEpoch ${divergingEpoch} with end offset ${divergingEndOffset}`,
        );
      const batches = e.bytes();
      if (batches === null) throw errorOf('MALFORMED_PAYLOAD', `${topic}/${partition}: null batches`);
      return {
        topic,
        partition,
        error,
        highWatermark,
        logStartOffset,
        leaderEpoch,
        divergingEpoch:
          divergingEpoch === NO_EPOCH ? null : { epoch: divergingEpoch, endOffset: divergingEndOffset },
        batches,
      };
    }),
  }),
});

const EPOCH_QUERY_BYTES = 4 + 4 + 4;
const EPOCH_ANSWER_BYTES = 4 + 2 + 4 + 8;

export const offsetsForLeaderEpochCommand = defineCommand<
  OffsetsForLeaderEpochRequest,
  OffsetsForLeaderEpochResponse
>({
  opcode: Opcode.OFFSETS_FOR_LEADER_EPOCH,
  encodeRequest: (w, req) => {
    w.i32(req.replicaId);
    writeTopicGroups(w, req.partitions, (e, p) => e.u32(p.partition).i32(p.leaderEpoch).i32(p.queryEpoch));
  },
  decodeRequest: (r) => ({
    replicaId: readReplicaId(r),
    partitions: readTopicGroups(r, EPOCH_QUERY_BYTES, (e, topic) => ({
      topic,
      partition: e.u32(),
      leaderEpoch: readEpoch(e, 'leaderEpoch'),
      queryEpoch: readEpoch(e, 'queryEpoch'),
    })),
  }),
  encodeResponse: (w, res) =>
    writeTopicGroups(w, res.partitions, (e, p) => {
      e.u32(p.partition);
      writeErrorField(e, p.error);
      // An error answer carries no epoch: -1 and -1, whatever the entry held.
      if (p.error === null) e.i32(p.epoch).i64(p.endOffset);
      else e.i32(NO_EPOCH).i64(NO_OFFSET);
    }),
  decodeResponse: (r) => ({
    partitions: readTopicGroups(r, EPOCH_ANSWER_BYTES, (e, topic): EpochAnswerPartition => {
      const partition = e.u32();
      const error = readErrorField(e);
      const epoch = readEpoch(e, 'epoch');
      const endOffset = readOffset(e, 'endOffset');
      if ((epoch === NO_EPOCH) !== (endOffset === NO_OFFSET))
        throw errorOf(
          'MALFORMED_PAYLOAD',
          `${topic}/${partition}: epoch ${epoch} with end offset ${endOffset}`,
        );
      return { topic, partition, error, epoch, endOffset };
    }),
  }),
});

/** The broker ↔ broker commands by name; brokers dispatch these opcodes to their replica manager. */
export const REPLICATION_COMMANDS = {
  replicaFetch: replicaFetchCommand,
  offsetsForLeaderEpoch: offsetsForLeaderEpochCommand,
} as const;

export type ReplicationCommandName = keyof typeof REPLICATION_COMMANDS;

const byOpcode = new Map<number, ReplicationCommandName>(
  (Object.keys(REPLICATION_COMMANDS) as ReplicationCommandName[]).map((name) => [
    REPLICATION_COMMANDS[name].opcode,
    name,
  ]),
);

export function replicationCommandForOpcode(opcode: number): ReplicationCommandName | undefined {
  return byOpcode.get(opcode);
}
