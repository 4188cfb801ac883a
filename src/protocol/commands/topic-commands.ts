// Topic administration: CREATE_TOPIC, DELETE_TOPIC, LIST_TOPICS, DESCRIBE_TOPIC, ALTER_TOPIC.
// Layouts (little-endian; string = u16 length + UTF-8; int = i64):
//
// TopicConfig        retentionMs int | retentionBytes int | cleanup u8 (0 delete, 1 compact) |
//                    durability u8 (0 always, 1 interval, 2 never) | flushIntervalMs int |
//                    maxMessageBytes int | segmentBytes int | segmentMs int
// PartialTopicConfig presentMask u16 (bit i = field i present: the 8 fields of TopicConfig above,
//                    then bit 8 minInsyncReplicas, bit 9 uncleanLeaderElection) | the present
//                    fields in that order, each as in TopicConfig (minInsyncReplicas as int,
//                    uncleanLeaderElection as u8 0/1)
// TopicView          name string | id string | partitions u32 | createdAt int | TopicConfig
// PartitionView      partition u32 | logStartOffset i64 | highWatermark i64 | sizeBytes int
//                    (the third field is what consumers can read up to; the log end is in
//                    PartitionReplication)
//
// Replication extension: what a broker of the cluster protocol adds AFTER the whole payload of a
// response, so that a client that does not know it reads exactly what it read before (clients
// decode responses without checking for trailing bytes) and a client that knows it reads the
// defaults of a single node when it is missing (a broker that does not write it has no cluster):
// replicationFactor 1, minInsyncReplicas 1, uncleanLeaderElection false, leader 0, replicas [0],
// isr [0], leaderEpoch 0.
// Each block starts with its own size, so a later version can append fields to a block and this
// reader skips them.
//
// TopicReplication     size u16 (bytes after this field, ≥ 12) | replicationFactor u32 |
//                      minInsyncReplicas int | [uncleanLeaderElection u8] | [storage u8]
//                      (a block without uncleanLeaderElection reads as false; storage 0 disk,
//                      1 memory, a block without it reads as disk)
// PartitionReplication size u16 (bytes after this field, ≥ 16) | leader i32 (-1 none) |
//                      leaderEpoch i32 | replicaCount u32 | replica i32 × n | isrCount u32 |
//                      isr i32 × n | [logEndOffset i64]
//                      (logEndOffset: the answering broker's log end, above the high watermark
//                      while followers catch up; a block without it reads as the high watermark)
//
// CREATE_TOPIC  req: name string | partitions u32 (0 = broker default) | PartialTopicConfig |
//                    [flags u8: bit 0 ifNotExists, bit 1 replicationFactor follows, bit 2
//                    storage follows | [replicationFactor u16] | [storage u8 (1 memory)]]
//                    (storage is written only when it is not disk, so a request for a disk
//                    topic is what brokers without storage accept)
//               res: TopicView | TopicReplication
// ALTER_TOPIC   req: name string | partitions u32 (0 = unchanged) | PartialTopicConfig |
//                    [flags u8: bit 0 allowKeyMovement]; res: TopicView | TopicReplication
//               The flags byte is written only when a flag is set, so a request without flags is
//               byte-identical to what brokers without flags accept; a missing byte reads as 0.
//               A broker that does not know a flag or a config field refuses the request
//               (MALFORMED_PAYLOAD naming it): a setting is never dropped on the way.
// DELETE_TOPIC  req: name string; res: empty
// LIST_TOPICS   req: empty; res: count u32 | count × TopicView | count × TopicReplication
// DESCRIBE_TOPIC req: name string; res: TopicView | count u32 | count × PartitionView |
//                    TopicReplication | count × PartitionReplication (same order)

import type { BinaryReader } from '../codec/binary-reader.js';
import { BinaryWriter } from '../codec/binary-writer.js';
import { errorOf } from '../error-codes.js';
import { Opcode } from '../opcodes.js';
import { defineCommand } from './command.js';
import type {
  AlterTopicRequest as AlterTopicFields,
  CreateTopicRequest as CreateTopicFields,
  DescribeTopicResponse,
  ListTopicsResponse,
  PartitionView,
  TopicConfigView,
  TopicNameRequest,
  TopicStorageName,
  TopicView,
} from './data-types.js';

/** createTopic: `ifNotExists` answers with the existing topic instead of TOPIC_ALREADY_EXISTS. */
export interface CreateTopicRequest extends CreateTopicFields {
  ifNotExists?: boolean;
}

/**
 * alterTopic: growing the partitions of a topic that holds keyed messages moves keys to other
 * partitions (their streams restart at version 0 there), so the broker refuses it with
 * PARTITION_GROWTH_MOVES_KEYS unless `allowKeyMovement` is set.
 */
export interface AlterTopicRequest extends AlterTopicFields {
  allowKeyMovement?: boolean;
}

const CREATE_OPTIONS = [
  'name',
  'partitions',
  'replicationFactor',
  'storage',
  'config',
  'ifNotExists',
] as const;
const ALTER_OPTIONS = ['name', 'partitions', 'config', 'allowKeyMovement'] as const;

/**
 * Refuses what a createTopic or alterTopic call would otherwise drop without a word: options and
 * topic configuration keys that do not exist (a misspelt setting must not vanish). Both the client
 * (before encoding, which carries only known fields) and the broker (in-process calls are not
 * encoded) check.
 */
export function assertKnownTopicOptions(command: 'createTopic' | 'alterTopic', request: object): void {
  const known: readonly string[] = command === 'createTopic' ? CREATE_OPTIONS : ALTER_OPTIONS;
  for (const key of Object.keys(request)) {
    if (!known.includes(key)) {
      throw errorOf(
        'INVALID_CONFIG',
        `${command}: unknown option ${JSON.stringify(key)} (known: ${known.join(', ')}; topic settings go in config)`,
      );
    }
  }
  const config = (request as { config?: unknown }).config;
  if (config === undefined) return;
  if (config === null || typeof config !== 'object') {
    throw errorOf('INVALID_CONFIG', `${command}: config must be an object of topic settings`);
  }
  for (const key of Object.keys(config)) {
    if (!(CONFIG_FIELDS as readonly string[]).includes(key)) {
      throw errorOf(
        'INVALID_CONFIG',
        `${command}: unknown topic configuration key ${JSON.stringify(key)} (known: ${CONFIG_FIELDS.join(', ')})`,
      );
    }
  }
}

const CLEANUP = ['delete', 'compact'] as const;
/** Storage on the wire: its index. */
const STORAGE = ['disk', 'memory'] as const satisfies readonly TopicStorageName[];
const DURABILITY = ['always', 'interval', 'never'] as const;
/** The fields of TopicConfig on the wire, in order (a TopicView carries these, and no others). */
const BASE_CONFIG_FIELDS = [
  'retentionMs',
  'retentionBytes',
  'cleanup',
  'durability',
  'flushIntervalMs',
  'maxMessageBytes',
  'segmentBytes',
  'segmentMs',
] as const satisfies readonly (keyof TopicConfigView)[];
/** Every field a PartialTopicConfig can carry: bit i of its mask is field i. */
const CONFIG_FIELDS = [
  ...BASE_CONFIG_FIELDS,
  'minInsyncReplicas',
  'uncleanLeaderElection',
] as const satisfies readonly (keyof TopicConfigView)[];

/** What a response without the replication extension means: a single node, one copy. */
const SINGLE_NODE_ID = 0;

function readFlag(r: BinaryReader, what: string): boolean {
  const value = r.u8();
  if (value > 1) throw errorOf('MALFORMED_PAYLOAD', `${what} ${value}: 0 or 1`);
  return value === 1;
}

function enumIndex<T extends string>(values: readonly T[], value: T): number {
  return values.indexOf(value);
}

function enumValue<T extends string>(values: readonly T[], index: number, what: string): T {
  const value = values[index];
  if (value === undefined) throw errorOf('MALFORMED_PAYLOAD', `${what} ${index} is not known`);
  return value;
}

function writeField(
  w: BinaryWriter,
  field: (typeof CONFIG_FIELDS)[number],
  config: Partial<TopicConfigView>,
): void {
  switch (field) {
    case 'cleanup':
      w.u8(enumIndex(CLEANUP, config.cleanup!));
      return;
    case 'durability':
      w.u8(enumIndex(DURABILITY, config.durability!));
      return;
    case 'uncleanLeaderElection':
      w.u8(config.uncleanLeaderElection! ? 1 : 0);
      return;
    default:
      w.int(config[field]!);
  }
}

function readField(
  r: BinaryReader,
  field: (typeof CONFIG_FIELDS)[number],
  into: Partial<TopicConfigView>,
): void {
  switch (field) {
    case 'cleanup':
      into.cleanup = enumValue(CLEANUP, r.u8(), 'cleanup policy');
      return;
    case 'durability':
      into.durability = enumValue(DURABILITY, r.u8(), 'durability policy');
      return;
    case 'uncleanLeaderElection':
      into.uncleanLeaderElection = readFlag(r, 'uncleanLeaderElection');
      return;
    default:
      into[field] = r.int();
  }
}

function writeConfig(w: BinaryWriter, config: TopicConfigView): void {
  for (const field of BASE_CONFIG_FIELDS) writeField(w, field, config);
}

function readConfig(r: BinaryReader): TopicConfigView {
  const config: Partial<TopicConfigView> = { minInsyncReplicas: 1, uncleanLeaderElection: false };
  for (const field of BASE_CONFIG_FIELDS) readField(r, field, config);
  return config as TopicConfigView;
}

function writePartialConfig(w: BinaryWriter, config: Partial<TopicConfigView> | undefined): void {
  let mask = 0;
  CONFIG_FIELDS.forEach((field, i) => {
    if (config?.[field] !== undefined) mask |= 1 << i;
  });
  w.u16(mask);
  if (config === undefined) return;
  for (const field of CONFIG_FIELDS) if (config[field] !== undefined) writeField(w, field, config);
}

function readPartialConfig(r: BinaryReader): Partial<TopicConfigView> | undefined {
  const mask = r.u16();
  if (mask >> CONFIG_FIELDS.length !== 0)
    throw errorOf('MALFORMED_PAYLOAD', `unknown topic config fields in mask 0x${mask.toString(16)}`);
  if (mask === 0) return undefined;
  const config: Partial<TopicConfigView> = {};
  CONFIG_FIELDS.forEach((field, i) => {
    if (mask & (1 << i)) readField(r, field, config);
  });
  return config;
}

/** The TopicView part of a payload; its replication fields go in the extension at the end. */
function writeTopicView(w: BinaryWriter, topic: TopicView): void {
  w.string(topic.name).string(topic.id).u32(topic.partitions).int(topic.createdAt);
  writeConfig(w, topic.config);
}

/** A TopicView with the single-node replication fields, until the extension says otherwise. */
function readTopicView(r: BinaryReader): TopicView {
  return {
    name: r.string(),
    id: r.string(),
    partitions: r.u32(),
    replicationFactor: 1,
    createdAt: r.int(),
    storage: 'disk',
    config: readConfig(r),
  };
}

function writePartitionView(w: BinaryWriter, p: PartitionView): void {
  w.u32(p.partition).i64(p.logStartOffset).i64(p.highWatermark).int(p.sizeBytes);
}

function readPartitionView(r: BinaryReader): PartitionView {
  const partition = r.u32();
  const logStartOffset = r.i64();
  const highWatermark = r.i64();
  return {
    partition,
    logStartOffset,
    highWatermark,
    logEndOffset: highWatermark,
    sizeBytes: r.int(),
    leader: SINGLE_NODE_ID,
    replicas: [SINGLE_NODE_ID],
    isr: [SINGLE_NODE_ID],
    leaderEpoch: 0,
  };
}

const TOPIC_REPLICATION_BYTES = 4 + 8;
const PARTITION_REPLICATION_MIN_BYTES = 4 + 4 + 4 + 4;

/** Writes a block's u16 size once its body is written (the size is known only then). */
function sizedBlock(w: BinaryWriter, body: (w: BinaryWriter) => void): void {
  const inner = new BinaryWriter(32);
  body(inner);
  const bytes = inner.finish();
  if (bytes.length > 0xffff)
    throw errorOf('INVALID_REQUEST', `a replication block of ${bytes.length} bytes exceeds 65535`);
  w.u16(bytes.length).raw(bytes);
}

/**
 * Reads one sized block: `read` takes the fields this version knows (at least `minBytes` of them
 * must be there), and whatever a later version appended after them is skipped.
 */
function readSizedBlock<T>(
  r: BinaryReader,
  minBytes: number,
  what: string,
  read: (r: BinaryReader, left: () => number) => T,
): T {
  const size = r.u16();
  if (size < minBytes)
    throw errorOf('MALFORMED_PAYLOAD', `${what} block of ${size} bytes, at least ${minBytes}`);
  const start = r.position;
  const value = read(r, () => size - (r.position - start));
  const used = r.position - start;
  if (used > size) throw errorOf('MALFORMED_PAYLOAD', `${what} block of ${size} bytes holds ${used}`);
  for (let skipped = used; skipped < size; skipped++) r.u8();
  return value;
}

function writeTopicReplication(w: BinaryWriter, topic: TopicView): void {
  sizedBlock(w, (b) =>
    b
      .u32(topic.replicationFactor)
      .int(topic.config.minInsyncReplicas)
      .u8(topic.config.uncleanLeaderElection ? 1 : 0)
      .u8(enumIndex(STORAGE, topic.storage ?? 'disk')),
  );
}

function readTopicReplication(r: BinaryReader, into: TopicView): void {
  readSizedBlock(r, TOPIC_REPLICATION_BYTES, 'topic replication', (b, left) => {
    into.replicationFactor = b.u32();
    into.config.minInsyncReplicas = b.int();
    if (left() >= 1) into.config.uncleanLeaderElection = readFlag(b, 'uncleanLeaderElection');
    if (left() >= 1) into.storage = enumValue(STORAGE, b.u8(), 'storage');
  });
}

/** A list of broker ids: count u32 | id i32 × count; ids are ≥ 0. */
export function writeBrokerIds(w: BinaryWriter, ids: readonly number[]): void {
  w.u32(ids.length);
  for (const id of ids) w.i32(id);
}

export function readBrokerIds(r: BinaryReader, what: string): number[] {
  const count = r.count(4);
  const ids = new Array<number>(count);
  for (let i = 0; i < count; i++) {
    const id = r.i32();
    if (id < 0) throw errorOf('MALFORMED_PAYLOAD', `${what} holds broker id ${id}`);
    ids[i] = id;
  }
  return ids;
}

function writePartitionReplication(w: BinaryWriter, p: PartitionView): void {
  sizedBlock(w, (b) => {
    b.i32(p.leader).i32(p.leaderEpoch);
    writeBrokerIds(b, p.replicas);
    writeBrokerIds(b, p.isr);
    b.i64(p.logEndOffset);
  });
}

function readPartitionReplication(r: BinaryReader, into: PartitionView): void {
  readSizedBlock(r, PARTITION_REPLICATION_MIN_BYTES, 'partition replication', (b, left) => {
    into.leader = b.i32();
    into.leaderEpoch = b.i32();
    into.replicas = readBrokerIds(b, 'replicas');
    into.isr = readBrokerIds(b, 'isr');
    if (left() >= 8) into.logEndOffset = b.i64();
  });
}

/** A response's single TopicView, then its replication extension. */
function writeTopicViewPayload(w: BinaryWriter, topic: TopicView): void {
  writeTopicView(w, topic);
  writeTopicReplication(w, topic);
}

function readTopicViewPayload(r: BinaryReader): TopicView {
  const topic = readTopicView(r);
  if (r.remaining > 0) readTopicReplication(r, topic);
  return topic;
}

const FLAG_BIT0 = 0x1;
const FLAG_REPLICATION_FACTOR = 0x2;
const FLAG_STORAGE = 0x4;
/** Largest replication factor the wire carries (u16); brokers allow far fewer (topic-config.ts). */
const MAX_WIRE_REPLICATION_FACTOR = 0xffff;

/**
 * CREATE_TOPIC and ALTER_TOPIC share one layout: name, partitions (0 = not given), partial config,
 * and a flags byte when a flag is set (bit 0: ifNotExists for create, allowKeyMovement for alter;
 * bit 1, create only: a replicationFactor u16 follows).
 */
function writeTopicChange(
  w: BinaryWriter,
  req: CreateTopicFields,
  flag: boolean | undefined,
  replicationFactor: number | undefined,
): void {
  w.string(req.name).u32(req.partitions ?? 0);
  writePartialConfig(w, req.config);
  const storage = req.storage === undefined || req.storage === 'disk' ? undefined : req.storage;
  const flags =
    (flag === true ? FLAG_BIT0 : 0) |
    (replicationFactor !== undefined ? FLAG_REPLICATION_FACTOR : 0) |
    (storage !== undefined ? FLAG_STORAGE : 0);
  if (flags === 0) return;
  w.u8(flags);
  if (replicationFactor !== undefined) {
    if (
      !Number.isInteger(replicationFactor) ||
      replicationFactor < 1 ||
      replicationFactor > MAX_WIRE_REPLICATION_FACTOR
    )
      throw errorOf(
        'INVALID_CONFIG',
        `replicationFactor=${JSON.stringify(replicationFactor)}: an integer ≥ 1`,
      );
    w.u16(replicationFactor);
  }
  if (storage !== undefined) {
    const index = enumIndex(STORAGE, storage);
    if (index < 0)
      throw errorOf('INVALID_CONFIG', `storage=${JSON.stringify(storage)}: one of ${STORAGE.join(', ')}`);
    w.u8(index);
  }
}

function readTopicChange(r: BinaryReader, knownFlags: number): { fields: CreateTopicFields; flag: boolean } {
  const name = r.string();
  const partitions = r.u32();
  const config = readPartialConfig(r);
  let flags = 0;
  if (r.remaining > 0) {
    flags = r.u8();
    if ((flags & ~knownFlags) !== 0)
      throw errorOf('MALFORMED_PAYLOAD', `unknown topic request flags 0x${flags.toString(16)}`);
  }
  const replicationFactor = flags & FLAG_REPLICATION_FACTOR ? r.u16() : undefined;
  if (replicationFactor === 0) throw errorOf('MALFORMED_PAYLOAD', 'replicationFactor 0');
  const storage = flags & FLAG_STORAGE ? enumValue(STORAGE, r.u8(), 'storage') : undefined;
  return {
    fields: {
      name,
      ...(partitions > 0 ? { partitions } : {}),
      ...(replicationFactor !== undefined ? { replicationFactor } : {}),
      ...(storage !== undefined ? { storage } : {}),
      ...(config ? { config } : {}),
    },
    flag: (flags & FLAG_BIT0) !== 0,
  };
}

export const createTopicCommand = defineCommand<CreateTopicRequest, TopicView>({
  opcode: Opcode.CREATE_TOPIC,
  encodeRequest: (w, req) => writeTopicChange(w, req, req.ifNotExists, req.replicationFactor),
  decodeRequest: (r) => {
    const { fields, flag } = readTopicChange(r, FLAG_BIT0 | FLAG_REPLICATION_FACTOR | FLAG_STORAGE);
    return flag ? { ...fields, ifNotExists: true } : fields;
  },
  encodeResponse: writeTopicViewPayload,
  decodeResponse: readTopicViewPayload,
});

export const alterTopicCommand = defineCommand<AlterTopicRequest, TopicView>({
  opcode: Opcode.ALTER_TOPIC,
  encodeRequest: (w, req) => writeTopicChange(w, req, req.allowKeyMovement, undefined),
  decodeRequest: (r) => {
    const { fields, flag } = readTopicChange(r, FLAG_BIT0);
    return flag ? { ...fields, allowKeyMovement: true } : fields;
  },
  encodeResponse: writeTopicViewPayload,
  decodeResponse: readTopicViewPayload,
});

export const deleteTopicCommand = defineCommand<TopicNameRequest, Record<string, never>>({
  opcode: Opcode.DELETE_TOPIC,
  encodeRequest: (w, req) => w.string(req.name),
  decodeRequest: (r) => ({ name: r.string() }),
  encodeResponse: () => undefined,
  decodeResponse: () => ({}),
});

export const listTopicsCommand = defineCommand<Record<string, never>, ListTopicsResponse>({
  opcode: Opcode.LIST_TOPICS,
  encodeRequest: () => undefined,
  decodeRequest: () => ({}),
  encodeResponse: (w, res) => {
    w.u32(res.topics.length);
    for (const topic of res.topics) writeTopicView(w, topic);
    for (const topic of res.topics) writeTopicReplication(w, topic);
  },
  decodeResponse: (r) => {
    const count = r.count(20);
    const topics: TopicView[] = [];
    for (let i = 0; i < count; i++) topics.push(readTopicView(r));
    if (r.remaining > 0) for (const topic of topics) readTopicReplication(r, topic);
    return { topics };
  },
});

export const describeTopicCommand = defineCommand<TopicNameRequest, DescribeTopicResponse>({
  opcode: Opcode.DESCRIBE_TOPIC,
  encodeRequest: (w, req) => w.string(req.name),
  decodeRequest: (r) => ({ name: r.string() }),
  encodeResponse: (w, res) => {
    writeTopicView(w, res.topic);
    w.u32(res.partitions.length);
    for (const p of res.partitions) writePartitionView(w, p);
    writeTopicReplication(w, res.topic);
    for (const p of res.partitions) writePartitionReplication(w, p);
  },
  decodeResponse: (r) => {
    const topic = readTopicView(r);
    const count = r.count(28);
    const partitions: PartitionView[] = [];
    for (let i = 0; i < count; i++) partitions.push(readPartitionView(r));
    if (r.remaining > 0) {
      readTopicReplication(r, topic);
      for (const p of partitions) readPartitionReplication(r, p);
    }
    return { topic, partitions };
  },
});
