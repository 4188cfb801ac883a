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
// CREATE_TOPIC  req: name string | partitions u32 (0 = broker default) | PartialTopicConfig |
//                    [flags u8: bit 0 ifNotExists]
//               res: TopicView
// ALTER_TOPIC   req: name string | partitions u32 (0 = unchanged) | PartialTopicConfig |
//                    [flags u8: bit 0 allowKeyMovement]; res: TopicView
//               The flags byte is written only when a flag is set, so a request without flags is
//               byte-identical to what brokers without flags accept; a missing byte reads as 0.
// DELETE_TOPIC  req: name string; res: empty
// LIST_TOPICS   req: empty; res: count u32 | count × TopicView
// DESCRIBE_TOPIC req: name string; res: TopicView | count u32 | count × PartitionView

import type { BinaryReader } from '../codec/binary-reader.js';
import type { BinaryWriter } from '../codec/binary-writer.js';
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

const CREATE_OPTIONS = ['name', 'partitions', 'config', 'ifNotExists'] as const;
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

/**
 * CREATE_TOPIC and ALTER_TOPIC share one layout: name, partitions (0 = not given), partial config,
 * and a flags byte when a flag is set (bit 0: ifNotExists for create, allowKeyMovement for alter).
 */
function writeTopicChange(w: BinaryWriter, req: CreateTopicFields, flag: boolean | undefined): void {
  w.string(req.name).u32(req.partitions ?? 0);
  writePartialConfig(w, req.config);
  if (flag === true) w.u8(1);
}

function readTopicChange(r: BinaryReader): { fields: CreateTopicFields; flag: boolean } {
  const name = r.string();
  const partitions = r.u32();
  const config = readPartialConfig(r);
  let flags = 0;
  if (r.remaining > 0) {
    flags = r.u8();
    if (flags > 1) throw errorOf('MALFORMED_PAYLOAD', `unknown topic request flags 0x${flags.toString(16)}`);
  }
  return {
    fields: { name, ...(partitions > 0 ? { partitions } : {}), ...(config ? { config } : {}) },
    flag: flags === 1,
  };
}

export const createTopicCommand = defineCommand<CreateTopicRequest, TopicView>({
  opcode: Opcode.CREATE_TOPIC,
  encodeRequest: (w, req) => writeTopicChange(w, req, req.ifNotExists),
  decodeRequest: (r) => {
    const { fields, flag } = readTopicChange(r);
    return flag ? { ...fields, ifNotExists: true } : fields;
  },
  encodeResponse: writeTopicView,
  decodeResponse: readTopicView,
});

export const alterTopicCommand = defineCommand<AlterTopicRequest, TopicView>({
  opcode: Opcode.ALTER_TOPIC,
  encodeRequest: (w, req) => writeTopicChange(w, req, req.allowKeyMovement),
  decodeRequest: (r) => {
    const { fields, flag } = readTopicChange(r);
    return flag ? { ...fields, allowKeyMovement: true } : fields;
  },
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
