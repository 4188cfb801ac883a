// Partition reassignment and preferred-leader election, answered by the cluster's controller (a
// broker that is not forwards them to it; a broker without a cluster refuses with NEEDS_CLUSTER).
// Layouts (little-endian; string = u16 length + UTF-8; ids are i32, -1 = none; counts are u32):
//
// PARTITION_REASSIGN (0x0120)
//   req: flags u8 | count u32 | Target × count
//        flags bit 0: allow a replication factor change; bit 1: replace reassignments under way
//   res: count u32 | Started × count
//   Target   topic string | partition u32 | replicas BrokerIds   (the preferred leader first)
//   Started  topic string | partition u32 | from BrokerIds | to BrokerIds
//
// REASSIGNMENT_STATUS (0x0121): the reassignments under way
//   req: (empty)
//   res: count u32 | Progress × count
//   Progress topic string | partition u32 | replicas BrokerIds | target BrokerIds | isr BrokerIds |
//            leader i32
//
// ELECT_LEADERS (0x0123): leadership back to each partition's preferred (first) replica, where it
// is live, in sync and not drained
//   req: allTopics bool | count u32 | topic string × count   (allTopics = 1: count is 0)
//   res: count u32 | LeaderMove × count
//   LeaderMove topic string | partition u32 | from i32 | to i32 | leaderEpoch i32
//
// BrokerIds  count u32 | id i32 (≥ 0) × count

import type { BinaryReader } from '../codec/binary-reader.js';
import type { BinaryWriter } from '../codec/binary-writer.js';
import { errorOf } from '../error-codes.js';
import { Opcode } from '../opcodes.js';
import { defineCommand } from './command.js';
import { readBrokerIds, writeBrokerIds } from './topic-commands.js';

export interface ReassignmentTarget {
  readonly topic: string;
  readonly partition: number;
  /** The new replicas, the preferred leader first. */
  readonly replicas: readonly number[];
}

export interface ReassignPartitionsRequest {
  readonly partitions: readonly ReassignmentTarget[];
  /** Lets targets have another replica count than the topic's replication factor (every partition of the topic, the same count). */
  readonly allowReplicationFactorChange?: boolean;
  /** A partition being reassigned takes the new target instead (e.g. back to its old replicas). */
  readonly replace?: boolean;
}

export interface ReassignmentStarted {
  readonly topic: string;
  readonly partition: number;
  readonly from: readonly number[];
  readonly to: readonly number[];
}

export interface ReassignPartitionsResponse {
  readonly partitions: ReassignmentStarted[];
}

export interface ReassignmentProgress {
  readonly topic: string;
  readonly partition: number;
  /** The replicas now: the old ones and the targets while the new ones catch up. */
  readonly replicas: readonly number[];
  readonly target: readonly number[];
  readonly isr: readonly number[];
  /** -1 while the partition has no leader. */
  readonly leader: number;
}

export interface ReassignmentStatusResponse {
  readonly partitions: ReassignmentProgress[];
}

export interface LeaderMove {
  readonly topic: string;
  readonly partition: number;
  readonly from: number;
  readonly to: number;
  readonly leaderEpoch: number;
}

export interface ElectLeadersRequest {
  /** Only these topics; every topic when not given. */
  readonly topics?: readonly string[];
}

export interface ElectLeadersResponse {
  readonly moved: LeaderMove[];
}

/** Smallest Target / Started / Progress / LeaderMove on the wire (empty strings and id lists). */
const MIN_TARGET_BYTES = 2 + 4 + 4;
const MIN_STARTED_BYTES = 2 + 4 + 4 + 4;
const MIN_PROGRESS_BYTES = 2 + 4 + 3 * 4 + 4;
export const MIN_LEADER_MOVE_BYTES = 2 + 4 + 4 + 4 + 4;

function readLeaderId(r: BinaryReader, what: string): number {
  const id = r.i32();
  if (id < -1) throw errorOf('MALFORMED_PAYLOAD', `${what} ${id}; a broker id or -1`);
  return id;
}

export function writeLeaderMove(w: BinaryWriter, move: LeaderMove): void {
  w.string(move.topic).u32(move.partition).i32(move.from).i32(move.to).i32(move.leaderEpoch);
}

export function readLeaderMove(r: BinaryReader): LeaderMove {
  return {
    topic: r.string(),
    partition: r.u32(),
    from: readLeaderId(r, 'from'),
    to: readLeaderId(r, 'to'),
    leaderEpoch: r.i32(),
  };
}

export const reassignPartitionsCommand = defineCommand<ReassignPartitionsRequest, ReassignPartitionsResponse>(
  {
    opcode: Opcode.PARTITION_REASSIGN,
    encodeRequest: (w, req) => {
      w.u8((req.allowReplicationFactorChange === true ? 1 : 0) | (req.replace === true ? 2 : 0)).u32(
        req.partitions.length,
      );
      for (const target of req.partitions) {
        w.string(target.topic).u32(target.partition);
        writeBrokerIds(w, target.replicas);
      }
    },
    decodeRequest: (r) => {
      const flags = r.u8();
      if (flags > 3) throw errorOf('MALFORMED_PAYLOAD', `reassign flags ${flags}`);
      const count = r.count(MIN_TARGET_BYTES);
      const partitions: ReassignmentTarget[] = [];
      for (let i = 0; i < count; i++)
        partitions.push({ topic: r.string(), partition: r.u32(), replicas: readBrokerIds(r, 'replicas') });
      return {
        partitions,
        ...(flags & 1 ? { allowReplicationFactorChange: true } : {}),
        ...(flags & 2 ? { replace: true } : {}),
      };
    },
    encodeResponse: (w, res) => {
      w.u32(res.partitions.length);
      for (const started of res.partitions) {
        w.string(started.topic).u32(started.partition);
        writeBrokerIds(w, started.from);
        writeBrokerIds(w, started.to);
      }
    },
    decodeResponse: (r) => {
      const count = r.count(MIN_STARTED_BYTES);
      const partitions: ReassignmentStarted[] = [];
      for (let i = 0; i < count; i++)
        partitions.push({
          topic: r.string(),
          partition: r.u32(),
          from: readBrokerIds(r, 'from'),
          to: readBrokerIds(r, 'to'),
        });
      return { partitions };
    },
  },
);

export const reassignmentStatusCommand = defineCommand<Record<string, never>, ReassignmentStatusResponse>({
  opcode: Opcode.REASSIGNMENT_STATUS,
  encodeRequest: () => {},
  decodeRequest: () => ({}),
  encodeResponse: (w, res) => {
    w.u32(res.partitions.length);
    for (const p of res.partitions) {
      w.string(p.topic).u32(p.partition);
      writeBrokerIds(w, p.replicas);
      writeBrokerIds(w, p.target);
      writeBrokerIds(w, p.isr);
      w.i32(p.leader);
    }
  },
  decodeResponse: (r) => {
    const count = r.count(MIN_PROGRESS_BYTES);
    const partitions: ReassignmentProgress[] = [];
    for (let i = 0; i < count; i++)
      partitions.push({
        topic: r.string(),
        partition: r.u32(),
        replicas: readBrokerIds(r, 'replicas'),
        target: readBrokerIds(r, 'target'),
        isr: readBrokerIds(r, 'isr'),
        leader: readLeaderId(r, 'leader'),
      });
    return { partitions };
  },
});

export const electLeadersCommand = defineCommand<ElectLeadersRequest, ElectLeadersResponse>({
  opcode: Opcode.ELECT_LEADERS,
  encodeRequest: (w, req) => {
    w.bool(req.topics === undefined).u32(req.topics?.length ?? 0);
    for (const topic of req.topics ?? []) w.string(topic);
  },
  decodeRequest: (r) => {
    const all = r.bool();
    const count = r.count(2);
    const topics: string[] = [];
    for (let i = 0; i < count; i++) topics.push(r.string());
    if (all && count > 0) throw errorOf('MALFORMED_PAYLOAD', 'allTopics with a topic list');
    return all ? {} : { topics };
  },
  encodeResponse: (w, res) => {
    w.u32(res.moved.length);
    for (const move of res.moved) writeLeaderMove(w, move);
  },
  decodeResponse: (r) => {
    const count = r.count(MIN_LEADER_MOVE_BYTES);
    const moved: LeaderMove[] = [];
    for (let i = 0; i < count; i++) moved.push(readLeaderMove(r));
    return { moved };
  },
});
