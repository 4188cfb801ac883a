// Consumer groups: JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, COMMIT_OFFSETS, FETCH_OFFSETS, LIST_GROUPS,
// DESCRIBE_GROUP, FIND_COORDINATOR. Layouts (little-endian; string = u16 length + UTF-8):
//
// TopicPartitions   topic string | count u32 | partition u32 × count
// JOIN_GROUP        req: groupId string | memberId string | topicCount u32 | topic string × n |
//                        sessionTimeoutMs u32 | strategy u8 (0 range, 1 cooperative-sticky)
//                   res: memberId string | generation u32 | count u32 | TopicPartitions × count
//                   (held by the broker until every member of the group has joined the generation)
// HEARTBEAT         req: groupId string | memberId string | generation u32; res: empty
//                   (REBALANCE_IN_PROGRESS tells the member to commit and join again)
// LEAVE_GROUP       req: groupId string | memberId string | generation u32; res: empty
// PartitionOffset   topic string | partition u32 | offset i64
// COMMIT_OFFSETS    req: groupId string | memberId string | generation u32 | count u32 |
//                        PartitionOffset × count;  res: empty
// FETCH_OFFSETS     req: groupId string; res: count u32 | PartitionOffset × count
// GroupSummary      groupId string | state u8 (0 stable, 1 rebalancing, 2 empty) | generation u32 | members u32
// LIST_GROUPS       req: empty; res: count u32 | GroupSummary × count
// DESCRIBE_GROUP    req: groupId string; res: GroupSummary | memberCount u32 |
//                        (memberId string | count u32 | TopicPartitions × count) × memberCount |
//                        lagCount u32 | (topic string | partition u32 | committed i64 | highWatermark i64 | lag i64) × lagCount
// FIND_COORDINATOR  req: groupId string; res: brokerId i32 | host string | port u16
//                   (any broker answers; a broker alone names itself)

import type { BinaryReader } from '../codec/binary-reader.js';
import type { BinaryWriter } from '../codec/binary-writer.js';
import { errorOf } from '../error-codes.js';
import { Opcode } from '../opcodes.js';
import { defineCommand } from './command.js';
import type {
  CommitOffsetsRequest,
  DescribeGroupResponse,
  FetchOffsetsRequest,
  FetchOffsetsResponse,
  FindCoordinatorResponse,
  GroupMemberRequest,
  GroupSummary,
  JoinGroupRequest,
  JoinGroupResponse,
  ListGroupsResponse,
  PartitionOffset,
  TopicPartitions,
} from './data-types.js';

const STATES = ['stable', 'rebalancing', 'empty'] as const;
const STRATEGIES = ['range', 'cooperative-sticky'] as const;

function writeTopicPartitions(w: BinaryWriter, list: TopicPartitions[]): void {
  w.u32(list.length);
  for (const entry of list) {
    w.string(entry.topic).u32(entry.partitions.length);
    for (const p of entry.partitions) w.u32(p);
  }
}

function readTopicPartitions(r: BinaryReader): TopicPartitions[] {
  const count = r.count(6);
  const list: TopicPartitions[] = [];
  for (let i = 0; i < count; i++) {
    const topic = r.string();
    const n = r.count(4);
    const partitions: number[] = [];
    for (let j = 0; j < n; j++) partitions.push(r.u32());
    list.push({ topic, partitions });
  }
  return list;
}

function writeOffsets(w: BinaryWriter, offsets: PartitionOffset[]): void {
  w.u32(offsets.length);
  for (const o of offsets) w.string(o.topic).u32(o.partition).i64(o.offset);
}

function readOffsets(r: BinaryReader): PartitionOffset[] {
  const count = r.count(14);
  const offsets: PartitionOffset[] = [];
  for (let i = 0; i < count; i++) offsets.push({ topic: r.string(), partition: r.u32(), offset: r.i64() });
  return offsets;
}

function writeSummary(w: BinaryWriter, s: GroupSummary): void {
  w.string(s.groupId).u8(STATES.indexOf(s.state)).u32(s.generation).u32(s.members);
}

function readSummary(r: BinaryReader): GroupSummary {
  const groupId = r.string();
  const state = STATES[r.u8()];
  if (state === undefined) throw errorOf('MALFORMED_PAYLOAD', 'unknown group state');
  return { groupId, state, generation: r.u32(), members: r.u32() };
}

function writeMember(w: BinaryWriter, req: GroupMemberRequest): void {
  w.string(req.groupId).string(req.memberId).u32(req.generation);
}

function readMember(r: BinaryReader): GroupMemberRequest {
  return { groupId: r.string(), memberId: r.string(), generation: r.u32() };
}

const EMPTY_RESPONSE = {
  encodeResponse: () => undefined,
  decodeResponse: () => ({}) as Record<string, never>,
};

export const joinGroupCommand = defineCommand<JoinGroupRequest, JoinGroupResponse>({
  opcode: Opcode.JOIN_GROUP,
  encodeRequest: (w, req) => {
    w.string(req.groupId).string(req.memberId).u32(req.topics.length);
    for (const topic of req.topics) w.string(topic);
    w.u32(req.sessionTimeoutMs).u8(STRATEGIES.indexOf(req.strategy));
  },
  decodeRequest: (r) => {
    const groupId = r.string();
    const memberId = r.string();
    const n = r.count(2);
    const topics: string[] = [];
    for (let i = 0; i < n; i++) topics.push(r.string());
    const sessionTimeoutMs = r.u32();
    const strategy = STRATEGIES[r.u8()];
    if (strategy === undefined) throw errorOf('MALFORMED_PAYLOAD', 'unknown assignment strategy');
    return { groupId, memberId, topics, sessionTimeoutMs, strategy };
  },
  encodeResponse: (w, res) => {
    w.string(res.memberId).u32(res.generation);
    writeTopicPartitions(w, res.assignment);
  },
  decodeResponse: (r) => ({ memberId: r.string(), generation: r.u32(), assignment: readTopicPartitions(r) }),
});

export const heartbeatCommand = defineCommand<GroupMemberRequest, Record<string, never>>({
  opcode: Opcode.HEARTBEAT,
  encodeRequest: writeMember,
  decodeRequest: readMember,
  ...EMPTY_RESPONSE,
});

export const leaveGroupCommand = defineCommand<GroupMemberRequest, Record<string, never>>({
  opcode: Opcode.LEAVE_GROUP,
  encodeRequest: writeMember,
  decodeRequest: readMember,
  ...EMPTY_RESPONSE,
});

export const commitOffsetsCommand = defineCommand<CommitOffsetsRequest, Record<string, never>>({
  opcode: Opcode.COMMIT_OFFSETS,
  encodeRequest: (w, req) => {
    writeMember(w, req);
    writeOffsets(w, req.offsets);
  },
  decodeRequest: (r) => ({ ...readMember(r), offsets: readOffsets(r) }),
  ...EMPTY_RESPONSE,
});

export const fetchOffsetsCommand = defineCommand<FetchOffsetsRequest, FetchOffsetsResponse>({
  opcode: Opcode.FETCH_OFFSETS,
  encodeRequest: (w, req) => w.string(req.groupId),
  decodeRequest: (r) => ({ groupId: r.string() }),
  encodeResponse: (w, res) => writeOffsets(w, res.offsets),
  decodeResponse: (r) => ({ offsets: readOffsets(r) }),
});

export const listGroupsCommand = defineCommand<Record<string, never>, ListGroupsResponse>({
  opcode: Opcode.LIST_GROUPS,
  encodeRequest: () => undefined,
  decodeRequest: () => ({}),
  encodeResponse: (w, res) => {
    w.u32(res.groups.length);
    for (const g of res.groups) writeSummary(w, g);
  },
  decodeResponse: (r) => {
    const count = r.count(11);
    const groups: GroupSummary[] = [];
    for (let i = 0; i < count; i++) groups.push(readSummary(r));
    return { groups };
  },
});

export const describeGroupCommand = defineCommand<FetchOffsetsRequest, DescribeGroupResponse>({
  opcode: Opcode.DESCRIBE_GROUP,
  encodeRequest: (w, req) => w.string(req.groupId),
  decodeRequest: (r) => ({ groupId: r.string() }),
  encodeResponse: (w, res) => {
    writeSummary(w, res.group);
    w.u32(res.members.length);
    for (const m of res.members) {
      w.string(m.memberId);
      writeTopicPartitions(w, m.assignment);
    }
    w.u32(res.lag.length);
    for (const l of res.lag)
      w.string(l.topic).u32(l.partition).i64(l.committed).i64(l.highWatermark).i64(l.lag);
  },
  decodeResponse: (r) => {
    const group = readSummary(r);
    const memberCount = r.count(6);
    const members: DescribeGroupResponse['members'] = [];
    for (let i = 0; i < memberCount; i++)
      members.push({ memberId: r.string(), assignment: readTopicPartitions(r) });
    const lagCount = r.count(30);
    const lag: DescribeGroupResponse['lag'] = [];
    for (let i = 0; i < lagCount; i++) {
      lag.push({
        topic: r.string(),
        partition: r.u32(),
        committed: r.i64(),
        highWatermark: r.i64(),
        lag: r.i64(),
      });
    }
    return { group, members, lag };
  },
});

export const findCoordinatorCommand = defineCommand<FetchOffsetsRequest, FindCoordinatorResponse>({
  opcode: Opcode.FIND_COORDINATOR,
  encodeRequest: (w, req) => w.string(req.groupId),
  decodeRequest: (r) => ({ groupId: r.string() }),
  encodeResponse: (w, res) => w.i32(res.brokerId).string(res.host).u16(res.port),
  decodeResponse: (r) => ({ brokerId: r.i32(), host: r.string(), port: r.u16() }),
});
