// Topic administration: CREATE_TOPIC, DELETE_TOPIC, LIST_TOPICS, DESCRIBE_TOPIC, ALTER_TOPIC.
// Layouts (little-endian; string = u16 length + UTF-8; int = i64):
//
// TopicConfig        retentionMs int | retentionBytes int | cleanup u8 (0 delete, 1 compact) |
//                    durability u8 (0 always, 1 interval, 2 never) | flushIntervalMs int |
//                    maxMessageBytes int | segmentBytes int | segmentMs int
// PartialTopicConfig presentMask u16 (bit i = field i of TopicConfig above is present) | the
//                    present fields in that order, each as in TopicConfig
// TopicView          name string | id string | partitions u32 | createdAt int | TopicConfig
// PartitionView      partition u32 | logStartOffset i64 | logEndOffset i64 | sizeBytes int
//
// CREATE_TOPIC  req: name string | partitions u32 (0 = broker default) | PartialTopicConfig
//               res: TopicView
// ALTER_TOPIC   req: name string | partitions u32 (0 = unchanged) | PartialTopicConfig; res: TopicView
// DELETE_TOPIC  req: name string; res: empty
// LIST_TOPICS   req: empty; res: count u32 | count × TopicView
// DESCRIBE_TOPIC req: name string; res: TopicView | count u32 | count × PartitionView

import type { BinaryReader } from '../codec/binary-reader.js';
import type { BinaryWriter } from '../codec/binary-writer.js';
import { errorOf } from '../error-codes.js';
import { Opcode } from '../opcodes.js';
import { defineCommand } from './command.js';
import type {
  AlterTopicRequest,
  CreateTopicRequest,
  DescribeTopicResponse,
  ListTopicsResponse,
  PartitionView,
  TopicConfigView,
  TopicNameRequest,
  TopicView,
} from './data-types.js';

const CLEANUP = ['delete', 'compact'] as const;
const DURABILITY = ['always', 'interval', 'never'] as const;
const CONFIG_FIELDS = [
  'retentionMs',
  'retentionBytes',
  'cleanup',
  'durability',
  'flushIntervalMs',
  'maxMessageBytes',
  'segmentBytes',
  'segmentMs',
] as const satisfies readonly (keyof TopicConfigView)[];

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
    default:
      into[field] = r.int();
  }
}

function writeConfig(w: BinaryWriter, config: TopicConfigView): void {
  for (const field of CONFIG_FIELDS) writeField(w, field, config);
}

function readConfig(r: BinaryReader): TopicConfigView {
  const config: Partial<TopicConfigView> = {};
  for (const field of CONFIG_FIELDS) readField(r, field, config);
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

export function writeTopicView(w: BinaryWriter, topic: TopicView): void {
  w.string(topic.name).string(topic.id).u32(topic.partitions).int(topic.createdAt);
  writeConfig(w, topic.config);
}

export function readTopicView(r: BinaryReader): TopicView {
  return { name: r.string(), id: r.string(), partitions: r.u32(), createdAt: r.int(), config: readConfig(r) };
}

function writePartitionView(w: BinaryWriter, p: PartitionView): void {
  w.u32(p.partition).i64(p.logStartOffset).i64(p.logEndOffset).int(p.sizeBytes);
}

function readPartitionView(r: BinaryReader): PartitionView {
  return { partition: r.u32(), logStartOffset: r.i64(), logEndOffset: r.i64(), sizeBytes: r.int() };
}

/** CREATE_TOPIC and ALTER_TOPIC share one layout: name, partitions (0 = not given), partial config. */
function writeTopicChange(w: BinaryWriter, req: CreateTopicRequest | AlterTopicRequest): void {
  w.string(req.name).u32(req.partitions ?? 0);
  writePartialConfig(w, req.config);
}

function readTopicChange(r: BinaryReader): CreateTopicRequest & AlterTopicRequest {
  const name = r.string();
  const partitions = r.u32();
  const config = readPartialConfig(r);
  return { name, ...(partitions > 0 ? { partitions } : {}), ...(config ? { config } : {}) };
}

export const createTopicCommand = defineCommand<CreateTopicRequest, TopicView>({
  opcode: Opcode.CREATE_TOPIC,
  encodeRequest: writeTopicChange,
  decodeRequest: readTopicChange,
  encodeResponse: writeTopicView,
  decodeResponse: readTopicView,
});

export const alterTopicCommand = defineCommand<AlterTopicRequest, TopicView>({
  opcode: Opcode.ALTER_TOPIC,
  encodeRequest: writeTopicChange,
  decodeRequest: readTopicChange,
  encodeResponse: writeTopicView,
  decodeResponse: readTopicView,
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
  },
  decodeResponse: (r) => {
    const count = r.count(20);
    const topics: TopicView[] = [];
    for (let i = 0; i < count; i++) topics.push(readTopicView(r));
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
  },
  decodeResponse: (r) => {
    const topic = readTopicView(r);
    const count = r.count(28);
    const partitions: PartitionView[] = [];
    for (let i = 0; i < count; i++) partitions.push(readPartitionView(r));
    return { topic, partitions };
  },
});
