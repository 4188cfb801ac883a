// METADATA (0x0106): which brokers form the cluster, which one is the controller, and per topic
// who leads each partition. Any broker answers it from its copy of the cluster metadata; clients
// route each partition's requests to its leader with it. Layouts (little-endian; string = u16
// length + UTF-8; opt<T> = u8 presence + T; ids are i32, -1 = none; counts are u32):
//
// METADATA req: allTopics bool | count u32 | topic string × count   (allTopics = 1: count is 0,
//               and every topic is described, internal ones included)
//          res: clusterId opt<string> | controllerId i32 | brokerCount u32 | Broker × brokerCount |
//               topicCount u32 | TopicMetadata × topicCount
//
// Broker            id i32 (≥ 0) | host string | port u16 | rack opt<string>
// TopicMetadata     name string | errorCode u16 (0 = none) | id string | internal bool |
//                   partitionCount u32 | PartitionMetadata × partitionCount
// PartitionMetadata partition u32 | errorCode u16 | leader i32 | leaderEpoch i32 |
//                   replicas BrokerIds | isr BrokerIds | offlineReplicas BrokerIds
// BrokerIds         count u32 | id i32 (≥ 0) × count
//
// A topic that is not described (errorCode ≠ 0: UNKNOWN_TOPIC, TOPIC_OFFLINE, …) has an empty id
// and no partitions. Unknown error codes read as UNKNOWN_SERVER_ERROR.

import type { BinaryReader } from '../codec/binary-reader.js';
import type { BinaryWriter } from '../codec/binary-writer.js';
import { describeError, ErrorCode, type ErrorName, errorOf } from '../error-codes.js';
import { Opcode } from '../opcodes.js';
import { defineCommand, readOptional, writeOptional } from './command.js';
import type {
  BrokerView,
  MetadataRequest,
  MetadataResponse,
  PartitionMetadata,
  TopicMetadata,
} from './data-types.js';
import { readBrokerIds, writeBrokerIds } from './topic-commands.js';

/** An error carried in a payload field: 0 for none, else the code of the table. */
export function writeErrorField(w: BinaryWriter, error: ErrorName | null): void {
  w.u16(error === null ? 0 : ErrorCode[error]);
}

export function readErrorField(r: BinaryReader): ErrorName | null {
  const code = r.u16();
  return code === 0 ? null : (describeError(code).name as ErrorName);
}

/** A broker id that may be -1 (no leader, no controller). */
function readOptionalBrokerId(r: BinaryReader, what: string): number {
  const id = r.i32();
  if (id < -1) throw errorOf('MALFORMED_PAYLOAD', `${what} ${id}; a broker id or -1`);
  return id;
}

function writeBroker(w: BinaryWriter, broker: BrokerView): void {
  w.i32(broker.id).string(broker.host).u16(broker.port);
  writeOptional(w, broker.rack, (rack) => w.string(rack));
}

function readBroker(r: BinaryReader): BrokerView {
  const id = r.i32();
  if (id < 0) throw errorOf('MALFORMED_PAYLOAD', `broker id ${id}`);
  const host = r.string();
  const port = r.u16();
  const rack = readOptional(r, () => r.string());
  return rack === undefined ? { id, host, port } : { id, host, port, rack };
}

function writePartition(w: BinaryWriter, p: PartitionMetadata): void {
  w.u32(p.partition);
  writeErrorField(w, p.error);
  w.i32(p.leader).i32(p.leaderEpoch);
  writeBrokerIds(w, p.replicas);
  writeBrokerIds(w, p.isr);
  writeBrokerIds(w, p.offlineReplicas);
}

function readPartition(r: BinaryReader): PartitionMetadata {
  const partition = r.u32();
  const error = readErrorField(r);
  const leader = readOptionalBrokerId(r, 'leader');
  const leaderEpoch = r.i32();
  return {
    partition,
    error,
    leader,
    leaderEpoch,
    replicas: readBrokerIds(r, 'replicas'),
    isr: readBrokerIds(r, 'isr'),
    offlineReplicas: readBrokerIds(r, 'offlineReplicas'),
  };
}

/** The smallest PartitionMetadata: partition, error, leader, epoch and three empty id lists. */
const MIN_PARTITION_BYTES = 4 + 2 + 4 + 4 + 3 * 4;
/** The smallest TopicMetadata: empty name and id, error, internal, no partitions. */
const MIN_TOPIC_BYTES = 2 + 2 + 2 + 1 + 4;
/** The smallest Broker: id, empty host, port, no rack. */
const MIN_BROKER_BYTES = 4 + 2 + 2 + 1;

function writeTopic(w: BinaryWriter, topic: TopicMetadata): void {
  w.string(topic.name);
  writeErrorField(w, topic.error);
  w.string(topic.id).bool(topic.internal).u32(topic.partitions.length);
  for (const p of topic.partitions) writePartition(w, p);
}

function readTopic(r: BinaryReader): TopicMetadata {
  const name = r.string();
  const error = readErrorField(r);
  const id = r.string();
  const internal = r.bool();
  const count = r.count(MIN_PARTITION_BYTES);
  const partitions: PartitionMetadata[] = [];
  for (let i = 0; i < count; i++) partitions.push(readPartition(r));
  return { name, error, id, internal, partitions };
}

export const metadataCommand = defineCommand<MetadataRequest, MetadataResponse>({
  opcode: Opcode.METADATA,
  encodeRequest: (w, req) => {
    const topics = req.topics;
    w.bool(topics === undefined).u32(topics?.length ?? 0);
    for (const topic of topics ?? []) w.string(topic);
  },
  decodeRequest: (r) => {
    const all = r.bool();
    const count = r.count(2);
    if (all && count > 0) throw errorOf('MALFORMED_PAYLOAD', `allTopics with ${count} topic names`);
    if (all) return {};
    const topics: string[] = [];
    for (let i = 0; i < count; i++) topics.push(r.string());
    return { topics };
  },
  encodeResponse: (w, res) => {
    writeOptional(w, res.clusterId ?? undefined, (id) => w.string(id));
    w.i32(res.controllerId).u32(res.brokers.length);
    for (const broker of res.brokers) writeBroker(w, broker);
    w.u32(res.topics.length);
    for (const topic of res.topics) writeTopic(w, topic);
  },
  decodeResponse: (r) => {
    const clusterId = readOptional(r, () => r.string()) ?? null;
    const controllerId = readOptionalBrokerId(r, 'controller');
    const brokerCount = r.count(MIN_BROKER_BYTES);
    const brokers: BrokerView[] = [];
    for (let i = 0; i < brokerCount; i++) brokers.push(readBroker(r));
    const topicCount = r.count(MIN_TOPIC_BYTES);
    const topics: TopicMetadata[] = [];
    for (let i = 0; i < topicCount; i++) topics.push(readTopic(r));
    return { clusterId, controllerId, brokers, topics };
  },
});
