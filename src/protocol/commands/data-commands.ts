// Produce, fetch, offsets, producer ids, streams and subscriptions. Layouts (little-endian;
// string = u16 length + UTF-8; bytes = u32 length + bytes, 0xFFFFFFFF = null; int = i64):
//
// PRODUCE        req: topic string | partition u32 | acks u8 (0, 1, or 0xFF = all: -1 as an i8,
//                     Kafka's value) | hasExpectedVersion u8 |
//                     [expectedVersion int] | batch (the rest: one record batch, Kafka v2 layout)
//                res: baseOffset i64 | lastOffset i64 | durability u8 (0 none, 1 written, 2 synced) |
//                     duplicate u8 | count u32 | count × sequence i32 (-1 = record without key)
// FETCH          req: topic string | partition u32 | offset i64 | maxBytes u32 | maxWaitMs u32
//                res: highWatermark i64 | logStartOffset i64 | batches (the rest, whole batches)
// LIST_OFFSETS   req: topic string | partition u32 | kind u8 (0 earliest, 1 latest, 2 timestamp) |
//                     timestamp int (0 unless kind 2);  res: offset i64
// INIT_PRODUCER_ID req: empty; res: producerId i64 | producerEpoch u16
// READ_STREAM    req: topic string | key bytes | fromSequence u32 | maxRecords u32 | maxWaitMs u32
//                res: partition u32 | version u32 | count u32 | count × StreamRecord
//                StreamRecord: offset i64 | sequence u32 | timestamp int | key bytes | value bytes |
//                     headerCount u16 | headerCount × (key string | value bytes)
// SUBSCRIBE      req: topic string | partition u32 | offset i64 (-1 latest, -2 earliest) | credit u32
//                res: channelId u32 | offset i64
// UNSUBSCRIBE    req: channelId u32; res: empty
// PUSH_BATCH     (server push on the channel; flags PUSH|PAYLOAD_SELF_CRC) highWatermark i64 |
//                batches (the rest)

import type { BinaryReader } from '../codec/binary-reader.js';
import type { BinaryWriter } from '../codec/binary-writer.js';
import { errorOf } from '../error-codes.js';
import { Opcode } from '../opcodes.js';
import { defineCommand, readOptional, writeOptional } from './command.js';
import type {
  Acks,
  FetchRequest,
  FetchResponse,
  InitProducerIdResponse,
  ListOffsetsRequest,
  ListOffsetsResponse,
  ProduceRequest,
  ProduceResponse,
  ReadStreamRequest,
  ReadStreamResponse,
  StreamRecordView,
  SubscribeRequest,
  SubscribeResponse,
  UnsubscribeRequest,
} from './data-types.js';

const DURABILITY = ['none', 'written', 'synced'] as const;

/** acks 'all' on the wire: -1 as an i8, as Kafka writes it. */
const ACKS_ALL = 0xff;

function encodeAcks(acks: Acks): number {
  return acks === 'all' ? ACKS_ALL : acks;
}

function decodeAcks(value: number): Acks {
  if (value === 0 || value === 1) return value;
  if (value === ACKS_ALL) return 'all';
  throw errorOf('MALFORMED_PAYLOAD', `acks ${value}; 0, 1 or 255 (all)`);
}

export const produceCommand = defineCommand<ProduceRequest, ProduceResponse>({
  opcode: Opcode.PRODUCE,
  encodeRequest: (w, req) => {
    w.string(req.topic).u32(req.partition).u8(encodeAcks(req.acks));
    writeOptional(w, req.expectedVersion, (v) => w.int(v));
    w.raw(req.batch);
  },
  decodeRequest: (r) => {
    const topic = r.string();
    const partition = r.u32();
    const acks = decodeAcks(r.u8());
    const expectedVersion = readOptional(r, () => r.int());
    const batch = r.rest();
    return { topic, partition, acks, batch, ...(expectedVersion !== undefined ? { expectedVersion } : {}) };
  },
  encodeResponse: (w, res) => {
    w.i64(res.baseOffset).i64(res.lastOffset).u8(DURABILITY.indexOf(res.durability)).bool(res.duplicate);
    w.u32(res.sequences.length);
    for (const sequence of res.sequences) w.i32(sequence);
  },
  decodeResponse: (r) => {
    const baseOffset = r.i64();
    const lastOffset = r.i64();
    const durability = DURABILITY[r.u8()];
    if (durability === undefined) throw errorOf('MALFORMED_PAYLOAD', 'unknown durability');
    const duplicate = r.bool();
    const count = r.count(4);
    const sequences = new Array<number>(count);
    for (let i = 0; i < count; i++) sequences[i] = r.i32();
    return { baseOffset, lastOffset, durability, duplicate, sequences };
  },
});

export const fetchCommand = defineCommand<FetchRequest, FetchResponse>({
  opcode: Opcode.FETCH,
  encodeRequest: (w, req) =>
    w.string(req.topic).u32(req.partition).i64(req.offset).u32(req.maxBytes).u32(req.maxWaitMs),
  decodeRequest: (r) => ({
    topic: r.string(),
    partition: r.u32(),
    offset: r.i64(),
    maxBytes: r.u32(),
    maxWaitMs: r.u32(),
  }),
  encodeResponse: (w, res) => w.i64(res.highWatermark).i64(res.logStartOffset).raw(res.batches),
  decodeResponse: (r) => ({ highWatermark: r.i64(), logStartOffset: r.i64(), batches: r.rest() }),
});

export const listOffsetsCommand = defineCommand<ListOffsetsRequest, ListOffsetsResponse>({
  opcode: Opcode.LIST_OFFSETS,
  encodeRequest: (w, req) => {
    w.string(req.topic).u32(req.partition);
    if (req.spec === 'earliest') w.u8(0).int(0);
    else if (req.spec === 'latest') w.u8(1).int(0);
    else w.u8(2).int(req.spec.timestamp);
  },
  decodeRequest: (r) => {
    const topic = r.string();
    const partition = r.u32();
    const kind = r.u8();
    const timestamp = r.int();
    if (kind === 0) return { topic, partition, spec: 'earliest' };
    if (kind === 1) return { topic, partition, spec: 'latest' };
    if (kind === 2) return { topic, partition, spec: { timestamp } };
    throw errorOf('MALFORMED_PAYLOAD', `offset kind ${kind}`);
  },
  encodeResponse: (w, res) => w.i64(res.offset),
  decodeResponse: (r) => ({ offset: r.i64() }),
});

export const initProducerIdCommand = defineCommand<Record<string, never>, InitProducerIdResponse>({
  opcode: Opcode.INIT_PRODUCER_ID,
  encodeRequest: () => undefined,
  decodeRequest: () => ({}),
  encodeResponse: (w, res) => w.i64(res.producerId).u16(res.producerEpoch),
  decodeResponse: (r) => ({ producerId: r.i64(), producerEpoch: r.u16() }),
});

function writeStreamRecord(w: BinaryWriter, record: StreamRecordView): void {
  w.i64(record.offset).u32(record.sequence).int(record.timestamp).bytes(record.key).bytes(record.value);
  w.u16(record.headers.length);
  for (const header of record.headers) w.string(header.key).bytes(header.value);
}

function readStreamRecord(r: BinaryReader): StreamRecordView {
  const offset = r.i64();
  const sequence = r.u32();
  const timestamp = r.int();
  const key = r.bytes();
  const value = r.bytes();
  const count = r.u16();
  const headers: StreamRecordView['headers'] = [];
  for (let i = 0; i < count; i++) headers.push({ key: r.string(), value: r.bytes() });
  return { offset, sequence, timestamp, key, value, headers };
}

export const readStreamCommand = defineCommand<ReadStreamRequest, ReadStreamResponse>({
  opcode: Opcode.READ_STREAM,
  encodeRequest: (w, req) =>
    w.string(req.topic).bytes(req.key).u32(req.fromSequence).u32(req.maxRecords).u32(req.maxWaitMs),
  decodeRequest: (r) => {
    const topic = r.string();
    const key = r.bytes();
    if (key === null) throw errorOf('INVALID_STREAM_KEY', 'a stream key cannot be null');
    return { topic, key, fromSequence: r.u32(), maxRecords: r.u32(), maxWaitMs: r.u32() };
  },
  encodeResponse: (w, res) => {
    w.u32(res.partition).u32(res.version).u32(res.records.length);
    for (const record of res.records) writeStreamRecord(w, record);
  },
  decodeResponse: (r) => {
    const partition = r.u32();
    const version = r.u32();
    const count = r.count(36);
    const records: StreamRecordView[] = [];
    for (let i = 0; i < count; i++) records.push(readStreamRecord(r));
    return { partition, version, records };
  },
});

export const subscribeCommand = defineCommand<SubscribeRequest, SubscribeResponse>({
  opcode: Opcode.SUBSCRIBE,
  encodeRequest: (w, req) => w.string(req.topic).u32(req.partition).i64(req.offset).u32(req.credit),
  decodeRequest: (r) => ({ topic: r.string(), partition: r.u32(), offset: r.i64(), credit: r.u32() }),
  encodeResponse: (w, res) => w.u32(res.channelId).i64(res.offset),
  decodeResponse: (r) => ({ channelId: r.u32(), offset: r.i64() }),
});

export const unsubscribeCommand = defineCommand<UnsubscribeRequest, Record<string, never>>({
  opcode: Opcode.UNSUBSCRIBE,
  encodeRequest: (w, req) => w.u32(req.channelId),
  decodeRequest: (r) => ({ channelId: r.u32() }),
  encodeResponse: () => undefined,
  decodeResponse: () => ({}),
});
