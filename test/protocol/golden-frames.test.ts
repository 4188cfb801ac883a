// Golden wire fixtures: the bytes of one frame of each control type and of a produce request,
// built with fixed timestamps, compared with files committed under test/fixtures/frames/. A change
// to the wire format shows up here as a diff of hex. Regenerate deliberately with
// UPDATE_FIXTURES=1 npx vitest run test/protocol/golden-frames.test.ts
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BinaryReader } from '../../src/protocol/codec/binary-reader.js';
import { BinaryWriter } from '../../src/protocol/codec/binary-writer.js';
import {
  decodeCredit,
  decodeErrorPayload,
  decodeGoaway,
  decodeThrottle,
  encodeCredit,
  encodeErrorPayload,
  encodeGoaway,
  encodeThrottle,
  handshakeCommand,
} from '../../src/protocol/commands/control.js';
import { COMMANDS } from '../../src/protocol/commands/registry.js';
import {
  offsetsForLeaderEpochCommand,
  replicaFetchCommand,
} from '../../src/protocol/commands/replication-commands.js';
import { FrameDecoder } from '../../src/protocol/frame-decoder.js';
import { encodeFrame, FrameFlags } from '../../src/protocol/frame-header.js';
import { Opcode } from '../../src/protocol/opcodes.js';
import { encodeRecordBatch } from '../../src/protocol/record-batch.js';

const T = 1_795_400_000_000_000;

function payloadOf(write: (w: BinaryWriter) => void): Buffer {
  const writer = new BinaryWriter(64);
  write(writer);
  return writer.finish();
}

const FIXTURES: Record<string, Buffer> = {
  'handshake-request': encodeFrame(
    { opcode: Opcode.HANDSHAKE, correlationId: 1, timestamp: T },
    payloadOf((w) =>
      handshakeCommand.encodeRequest(w, { minVersion: 1, maxVersion: 1, features: 15, clientId: 'golden' }),
    ),
  ),
  'handshake-response': encodeFrame(
    { opcode: Opcode.HANDSHAKE, correlationId: 1, flags: FrameFlags.RESPONSE, timestamp: T },
    payloadOf((w) =>
      handshakeCommand.encodeResponse(w, {
        version: 1,
        features: 15,
        serverId: 'broker-1',
        maxPayloadBytes: 8388608,
        maxControlPayloadBytes: 65536,
      }),
    ),
  ),
  ping: encodeFrame({ opcode: Opcode.PING, correlationId: 2, timestamp: T }),
  goaway: encodeFrame(
    { opcode: Opcode.GOAWAY, flags: FrameFlags.PUSH, timestamp: T },
    encodeGoaway({ reasonCode: 204, deadlineMs: 5000, message: 'broker is shutting down' }),
  ),
  throttle: encodeFrame(
    { opcode: Opcode.THROTTLE, flags: FrameFlags.PUSH, timestamp: T },
    encodeThrottle({ throttleMs: 10, reason: 'budget' }),
  ),
  credit: encodeFrame({ opcode: Opcode.CREDIT, channelId: 3, timestamp: T }, encodeCredit(1048576)),
  error: encodeFrame(
    {
      opcode: Opcode.FETCH,
      correlationId: 9,
      flags: FrameFlags.RESPONSE | FrameFlags.ERROR,
      errorCode: 300,
      timestamp: T,
    },
    encodeErrorPayload('topic does not exist: "nope"'),
  ),
  'produce-request': encodeFrame(
    { opcode: Opcode.PRODUCE, correlationId: 4, timestamp: T },
    payloadOf((w) =>
      COMMANDS.produce.encodeRequest(w, {
        topic: 'orders',
        partition: 0,
        acks: 1,
        batch: encodeRecordBatch([{ key: 'order-1', value: '{"total":3}', timestamp: 1_795_400_000_000 }], {
          baseTimestamp: 1_795_400_000_000,
          producerId: 7n,
          producerEpoch: 0,
          baseSequence: 0,
        }),
      }),
    ),
  ),
  'produce-request-acks-all': encodeFrame(
    { opcode: Opcode.PRODUCE, correlationId: 5, timestamp: T },
    payloadOf((w) =>
      COMMANDS.produce.encodeRequest(w, {
        topic: 'orders',
        partition: 1,
        acks: 'all',
        batch: encodeRecordBatch([{ key: 'order-2', value: '{"total":5}', timestamp: 1_795_400_000_000 }], {
          baseTimestamp: 1_795_400_000_000,
        }),
      }),
    ),
  ),
  'describe-topic-response': encodeFrame(
    { opcode: Opcode.DESCRIBE_TOPIC, correlationId: 6, flags: FrameFlags.RESPONSE, timestamp: T },
    payloadOf((w) =>
      COMMANDS.describeTopic.encodeResponse(w, {
        topic: {
          name: 'orders',
          id: '7f1c2a9e-0000-4000-8000-000000000001',
          partitions: 1,
          replicationFactor: 3,
          createdAt: 1_795_400_000_000,
          config: {
            retentionMs: -1,
            retentionBytes: -1,
            cleanup: 'delete',
            durability: 'interval',
            flushIntervalMs: 100,
            maxMessageBytes: 1048576,
            segmentBytes: 268435456,
            segmentMs: 604800000,
            minInsyncReplicas: 2,
            uncleanLeaderElection: false,
          },
        },
        partitions: [
          {
            partition: 0,
            logStartOffset: 0n,
            highWatermark: 42n,
            logEndOffset: 45n,
            sizeBytes: 4096,
            leader: 2,
            replicas: [2, 3, 1],
            isr: [2, 3],
            leaderEpoch: 7,
          },
        ],
      }),
    ),
  ),
  'metadata-request': encodeFrame(
    { opcode: Opcode.METADATA, correlationId: 7, timestamp: T },
    payloadOf((w) => COMMANDS.metadata.encodeRequest(w, { topics: ['orders'] })),
  ),
  'metadata-response': encodeFrame(
    { opcode: Opcode.METADATA, correlationId: 7, flags: FrameFlags.RESPONSE, timestamp: T },
    payloadOf((w) =>
      COMMANDS.metadata.encodeResponse(w, {
        clusterId: 'c0ffee00-1111-4222-8333-444455556666',
        controllerId: 1,
        brokers: [
          { id: 1, host: '127.0.0.1', port: 9092, rack: 'a' },
          { id: 2, host: '127.0.0.1', port: 9093 },
        ],
        topics: [
          {
            name: 'orders',
            error: null,
            id: '7f1c2a9e-0000-4000-8000-000000000001',
            internal: false,
            partitions: [
              {
                partition: 0,
                error: null,
                leader: 1,
                leaderEpoch: 3,
                replicas: [1, 2],
                isr: [1, 2],
                offlineReplicas: [],
              },
            ],
          },
          { name: 'gone', error: 'UNKNOWN_TOPIC', id: '', internal: false, partitions: [] },
        ],
      }),
    ),
  ),
  'replica-fetch-request': encodeFrame(
    { opcode: Opcode.REPLICA_FETCH, correlationId: 8, timestamp: T },
    payloadOf((w) =>
      replicaFetchCommand.encodeRequest(w, {
        replicaId: 2,
        maxWaitMs: 500,
        minBytes: 1,
        maxBytes: 8388608,
        partitions: [
          {
            topic: 'orders',
            partition: 0,
            leaderEpoch: 3,
            lastFetchedEpoch: 3,
            fetchOffset: 10n,
            stableOffset: 10n,
            maxBytes: 1048576,
          },
        ],
      }),
    ),
  ),
  'replica-fetch-response': encodeFrame(
    { opcode: Opcode.REPLICA_FETCH, correlationId: 8, flags: FrameFlags.RESPONSE, timestamp: T },
    payloadOf((w) =>
      replicaFetchCommand.encodeResponse(w, {
        partitions: [
          {
            topic: 'orders',
            partition: 0,
            error: null,
            highWatermark: 10n,
            logStartOffset: 0n,
            leaderEpoch: 3,
            divergingEpoch: null,
            batches: encodeRecordBatch(
              [{ key: 'order-1', value: '{"total":3}', timestamp: 1_795_400_000_000 }],
              {
                baseOffset: 10n,
                partitionLeaderEpoch: 3,
                baseTimestamp: 1_795_400_000_000,
              },
            ),
          },
        ],
      }),
    ),
  ),
  'offsets-for-leader-epoch-request': encodeFrame(
    { opcode: Opcode.OFFSETS_FOR_LEADER_EPOCH, correlationId: 9, timestamp: T },
    payloadOf((w) =>
      offsetsForLeaderEpochCommand.encodeRequest(w, {
        replicaId: 2,
        partitions: [{ topic: 'orders', partition: 0, leaderEpoch: 4, queryEpoch: 3 }],
      }),
    ),
  ),
  'offsets-for-leader-epoch-response': encodeFrame(
    { opcode: Opcode.OFFSETS_FOR_LEADER_EPOCH, correlationId: 9, flags: FrameFlags.RESPONSE, timestamp: T },
    payloadOf((w) =>
      offsetsForLeaderEpochCommand.encodeResponse(w, {
        partitions: [{ topic: 'orders', partition: 0, error: null, epoch: 3, endOffset: 11n }],
      }),
    ),
  ),
};

describe('golden frames', () => {
  it.each(Object.keys(FIXTURES))('%s matches its committed bytes and decodes back', (name) => {
    const bytes = FIXTURES[name]!;
    const path = new URL(`../fixtures/frames/${name}.hex`, import.meta.url);
    if (process.env.UPDATE_FIXTURES === '1')
      writeFileSync(
        path,
        `${bytes
          .toString('hex')
          .replace(/(.{64})/g, '$1\n')
          .trim()}\n`,
      );
    const committed = Buffer.from(readFileSync(path, 'utf8').replace(/\s+/g, ''), 'hex');
    expect(bytes.toString('hex')).toBe(committed.toString('hex'));
    const decoder = new FrameDecoder({ maxPayloadBytes: 1 << 20, maxControlPayloadBytes: 1 << 16 });
    decoder.push(committed);
    const frame = decoder.next()!;
    expect(frame.payloadCrcValid).toBe(true);
    expect(frame.header.timestamp).toBe(T);
    expect(decoder.next()).toBeNull();
  });

  it('control payloads decode to what was encoded', () => {
    const read = (name: string) => {
      const decoder = new FrameDecoder({ maxPayloadBytes: 1 << 20, maxControlPayloadBytes: 1 << 16 });
      decoder.push(FIXTURES[name]!);
      return decoder.next()!.payload;
    };
    expect(handshakeCommand.decodeRequest(new BinaryReader(read('handshake-request')))).toEqual({
      minVersion: 1,
      maxVersion: 1,
      features: 15,
      clientId: 'golden',
    });
    expect(decodeGoaway(read('goaway'))).toEqual({
      reasonCode: 204,
      deadlineMs: 5000,
      message: 'broker is shutting down',
    });
    expect(decodeThrottle(read('throttle'))).toEqual({ throttleMs: 10, reason: 'budget' });
    expect(decodeCredit(read('credit'))).toBe(1048576);
    expect(decodeErrorPayload(read('error'))).toBe('topic does not exist: "nope"');
    const produce = COMMANDS.produce.decodeRequest(new BinaryReader(read('produce-request')));
    expect(produce).toMatchObject({ topic: 'orders', partition: 0, acks: 1 });
    expect(produce.batch.length).toBeGreaterThan(61);
    expect(COMMANDS.produce.decodeRequest(new BinaryReader(read('produce-request-acks-all'))).acks).toBe(
      'all',
    );
  });

  it('cluster payloads decode to what was encoded', () => {
    const read = (name: string) => {
      const decoder = new FrameDecoder({ maxPayloadBytes: 1 << 20, maxControlPayloadBytes: 1 << 16 });
      decoder.push(FIXTURES[name]!);
      return new BinaryReader(decoder.next()!.payload);
    };
    expect(COMMANDS.metadata.decodeRequest(read('metadata-request'))).toEqual({ topics: ['orders'] });
    const metadata = COMMANDS.metadata.decodeResponse(read('metadata-response'));
    expect(metadata.brokers).toEqual([
      { id: 1, host: '127.0.0.1', port: 9092, rack: 'a' },
      { id: 2, host: '127.0.0.1', port: 9093 },
    ]);
    expect(metadata.topics.map((t) => [t.name, t.error, t.partitions.length])).toEqual([
      ['orders', null, 1],
      ['gone', 'UNKNOWN_TOPIC', 0],
    ]);
    const described = COMMANDS.describeTopic.decodeResponse(read('describe-topic-response'));
    expect(described.topic.replicationFactor).toBe(3);
    expect(described.topic.config.minInsyncReplicas).toBe(2);
    expect(described.partitions[0]).toMatchObject({
      highWatermark: 42n,
      logEndOffset: 45n,
      leader: 2,
      replicas: [2, 3, 1],
      isr: [2, 3],
      leaderEpoch: 7,
    });
    expect(replicaFetchCommand.decodeRequest(read('replica-fetch-request')).partitions[0]).toMatchObject({
      topic: 'orders',
      fetchOffset: 10n,
      leaderEpoch: 3,
    });
    const fetched = replicaFetchCommand.decodeResponse(read('replica-fetch-response')).partitions[0]!;
    expect(fetched).toMatchObject({ error: null, highWatermark: 10n, leaderEpoch: 3, divergingEpoch: null });
    expect(fetched.batches.readBigInt64BE(0)).toBe(10n);
    expect(offsetsForLeaderEpochCommand.decodeRequest(read('offsets-for-leader-epoch-request'))).toEqual({
      replicaId: 2,
      partitions: [{ topic: 'orders', partition: 0, leaderEpoch: 4, queryEpoch: 3 }],
    });
    expect(offsetsForLeaderEpochCommand.decodeResponse(read('offsets-for-leader-epoch-response'))).toEqual({
      partitions: [{ topic: 'orders', partition: 0, error: null, epoch: 3, endOffset: 11n }],
    });
  });
});
