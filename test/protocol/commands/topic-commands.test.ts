// The replication fields of topics and partitions on the wire: written after the payload a client
// of the first protocol reads, so that client still decodes a new broker's answers; read as a
// single node's values from a broker that does not write them. The legacy fixtures are the bytes
// brokers and clients wrote before these fields existed (test/fixtures/frames/legacy/).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BinaryReader } from '../../../src/protocol/codec/binary-reader.js';
import { BinaryWriter } from '../../../src/protocol/codec/binary-writer.js';
import type { CommandCodec } from '../../../src/protocol/commands/command.js';
import type {
  DescribeTopicResponse,
  PartitionView,
  TopicView,
} from '../../../src/protocol/commands/data-types.js';
import { COMMANDS } from '../../../src/protocol/commands/registry.js';
import { ErrorCode } from '../../../src/protocol/error-codes.js';

function legacy(name: string): Buffer {
  const path = new URL(`../../fixtures/frames/legacy/${name}.hex`, import.meta.url);
  return Buffer.from(readFileSync(path, 'utf8').replace(/\s+/g, ''), 'hex');
}

function encodeResponse<Q, S>(codec: CommandCodec<Q, S>, response: S): Buffer {
  const w = new BinaryWriter(64);
  codec.encodeResponse(w, response);
  return w.finish();
}

function encodeRequest<Q>(codec: CommandCodec<Q, unknown>, request: Q): Buffer {
  const w = new BinaryWriter(64);
  codec.encodeRequest(w, request);
  return w.finish();
}

function decodeRequestStrict<Q>(codec: CommandCodec<Q, unknown>, payload: Buffer): Q {
  // As the broker does: every byte of a request must be read.
  const r = new BinaryReader(payload);
  const request = codec.decodeRequest(r);
  r.end();
  return request;
}

/** The values the legacy fixtures were written with, plus replication fields. */
function topicView(overrides: Partial<TopicView> = {}, minInsyncReplicas = 1): TopicView {
  return {
    name: 'orders',
    id: '7f1c2a9e-0000-4000-8000-000000000001',
    partitions: 2,
    replicationFactor: 1,
    createdAt: 1_795_400_000_000,
    storage: 'disk',
    config: {
      retentionMs: -1,
      retentionBytes: -1,
      cleanup: 'delete',
      durability: 'interval',
      flushIntervalMs: 100,
      maxMessageBytes: 1048576,
      segmentBytes: 268435456,
      segmentMs: 604800000,
      minInsyncReplicas,
      uncleanLeaderElection: false,
    },
    ...overrides,
  };
}

/** Two partitions; their log ends are the high watermarks unless `ahead` puts them further. */
function partitionViews(
  replication: Array<Pick<PartitionView, 'leader' | 'replicas' | 'isr' | 'leaderEpoch'>>,
  ahead = 0n,
): PartitionView[] {
  const offsets = [
    { partition: 0, logStartOffset: 0n, highWatermark: 42n, sizeBytes: 4096 },
    { partition: 1, logStartOffset: 10n, highWatermark: 17n, sizeBytes: 900 },
  ];
  return offsets.map((o, i) => ({ ...o, logEndOffset: o.highWatermark + ahead, ...replication[i]! }));
}

const SINGLE = { leader: 0, replicas: [0], isr: [0], leaderEpoch: 0 };

describe('DESCRIBE_TOPIC replication fields', () => {
  const replicated: DescribeTopicResponse = {
    topic: topicView({ replicationFactor: 3 }, 2),
    partitions: partitionViews(
      [
        { leader: 2, replicas: [2, 3, 1], isr: [2, 3], leaderEpoch: 7 },
        { leader: -1, replicas: [3, 1, 2], isr: [], leaderEpoch: 12 },
      ],
      5n,
    ),
  };

  it('round-trips leader, replicas, ISR, epoch, replication factor, minInsyncReplicas, high watermark and log end', () => {
    const bytes = encodeResponse(COMMANDS.describeTopic, replicated);
    expect(COMMANDS.describeTopic.decodeResponse(new BinaryReader(bytes))).toEqual(replicated);
  });

  it('begins with exactly the bytes an older client reads, the extension after them', () => {
    const bytes = encodeResponse(COMMANDS.describeTopic, replicated);
    const old = legacy('describe-topic-response');
    expect(bytes.subarray(0, old.length).toString('hex')).toBe(old.toString('hex'));
    expect(bytes.length).toBeGreaterThan(old.length);
  });

  it("decodes an older broker's answer as a single node: leader 0, replicas [0], isr [0], epoch 0", () => {
    const decoded = COMMANDS.describeTopic.decodeResponse(
      new BinaryReader(legacy('describe-topic-response')),
    );
    expect(decoded).toEqual({ topic: topicView(), partitions: partitionViews([SINGLE, SINGLE]) });
  });

  it('skips fields a later version appends inside a block', () => {
    const single = { topic: topicView({ partitions: 1 }), partitions: partitionViews([SINGLE]).slice(0, 1) };
    const bytes = encodeResponse(COMMANDS.describeTopic, single);
    // The extension: topic block (2 + 14 bytes), then the partition block (2 + 32 bytes).
    const extensionAt = bytes.length - (2 + 14) - (2 + 32);
    const topicBlock = bytes.subarray(extensionAt, extensionAt + 16);
    const partitionBlock = bytes.subarray(extensionAt + 16);
    const grow = (block: Buffer) => {
      const grown = Buffer.concat([block, Buffer.from([0xaa, 0xbb, 0xcc])]);
      grown.writeUInt16LE(block.readUInt16LE(0) + 3, 0);
      return grown;
    };
    const later = Buffer.concat([bytes.subarray(0, extensionAt), grow(topicBlock), grow(partitionBlock)]);
    expect(COMMANDS.describeTopic.decodeResponse(new BinaryReader(later))).toEqual(single);
  });

  it('reads a partition block without the log end (a broker before it) as ending at the high watermark', () => {
    const single = {
      topic: topicView({ partitions: 1 }),
      partitions: partitionViews([{ leader: 2, replicas: [2], isr: [2], leaderEpoch: 1 }], 3n).slice(0, 1),
    };
    const bytes = encodeResponse(COMMANDS.describeTopic, single);
    expect(COMMANDS.describeTopic.decodeResponse(new BinaryReader(bytes)).partitions[0]!.logEndOffset).toBe(
      45n,
    );
    const blockAt = bytes.length - (2 + 32);
    const older = Buffer.from(bytes.subarray(0, bytes.length - 8));
    older.writeUInt16LE(24, blockAt);
    const decoded = COMMANDS.describeTopic.decodeResponse(new BinaryReader(older)).partitions[0]!;
    expect(decoded).toMatchObject({ highWatermark: 42n, logEndOffset: 42n, leader: 2, leaderEpoch: 1 });
  });

  it('refuses a block shorter than its fields, or fields running past the block', () => {
    const single = { topic: topicView({ partitions: 1 }), partitions: partitionViews([SINGLE]).slice(0, 1) };
    const bytes = encodeResponse(COMMANDS.describeTopic, single);
    const partitionBlockAt = bytes.length - (2 + 32);
    const short = Buffer.from(bytes);
    short.writeUInt16LE(15, partitionBlockAt);
    expect(() => COMMANDS.describeTopic.decodeResponse(new BinaryReader(short))).toThrow(
      /partition replication block of 15 bytes, at least 16/,
    );
    const overrun = Buffer.from(bytes);
    overrun.writeUInt16LE(20, partitionBlockAt);
    expect(() => COMMANDS.describeTopic.decodeResponse(new BinaryReader(overrun))).toThrow(
      /partition replication block of 20 bytes holds 24/,
    );
  });
});

describe('LIST_TOPICS, CREATE_TOPIC and ALTER_TOPIC responses', () => {
  const topics = [
    topicView({ replicationFactor: 3 }, 2),
    topicView({ name: 'audit', partitions: 1, replicationFactor: 5 }, 3),
  ];

  it('list: an older client reads the same topics, a newer one their replication too', () => {
    const bytes = encodeResponse(COMMANDS.listTopics, { topics });
    const old = legacy('list-topics-response');
    expect(bytes.subarray(0, old.length).toString('hex')).toBe(old.toString('hex'));
    expect(COMMANDS.listTopics.decodeResponse(new BinaryReader(bytes))).toEqual({ topics });
    expect(COMMANDS.listTopics.decodeResponse(new BinaryReader(old))).toEqual({
      topics: [topicView(), topicView({ name: 'audit', partitions: 1 })],
    });
  });

  it('create and alter answer a TopicView with its replication block', () => {
    for (const codec of [COMMANDS.createTopic, COMMANDS.alterTopic]) {
      const bytes = encodeResponse(codec, topics[0]!);
      expect(codec.decodeResponse(new BinaryReader(bytes))).toEqual(topics[0]);
      // Without the block (an older broker): one copy.
      const viewOnly = bytes.subarray(0, bytes.length - 16);
      expect(codec.decodeResponse(new BinaryReader(viewOnly))).toEqual(topicView());
    }
  });
});

describe('CREATE_TOPIC and ALTER_TOPIC requests', () => {
  it('a request without replication settings is byte-identical to the older one', () => {
    const bytes = encodeRequest(COMMANDS.createTopic, {
      name: 'orders',
      partitions: 2,
      config: { durability: 'always', retentionMs: 86400000 },
    });
    expect(bytes.toString('hex')).toBe(legacy('create-topic-request').toString('hex'));
  });

  it('carries replicationFactor after the flags byte (bit 1), with or without ifNotExists', () => {
    for (const ifNotExists of [false, true]) {
      const request = {
        name: 'orders',
        partitions: 3,
        replicationFactor: 3,
        config: { minInsyncReplicas: 2 },
        ...(ifNotExists ? { ifNotExists: true } : {}),
      };
      const bytes = encodeRequest(COMMANDS.createTopic, request);
      expect(bytes.readUInt16LE(bytes.length - 2)).toBe(3);
      expect(bytes[bytes.length - 3]).toBe(ifNotExists ? 0x3 : 0x2);
      expect(decodeRequestStrict(COMMANDS.createTopic, bytes)).toEqual(request);
    }
  });

  it('carries minInsyncReplicas as bit 8 of the config mask', () => {
    const bytes = encodeRequest(COMMANDS.alterTopic, { name: 't', config: { minInsyncReplicas: 2 } });
    // name (2 + 1) | partitions u32 | mask u16 | minInsyncReplicas int
    expect(bytes.readUInt16LE(7)).toBe(0x100);
    expect(bytes.readBigInt64LE(9)).toBe(2n);
    expect(decodeRequestStrict(COMMANDS.alterTopic, bytes)).toEqual({
      name: 't',
      config: { minInsyncReplicas: 2 },
    });
  });

  it('alter refuses the replicationFactor flag; both refuse unknown flags and replicationFactor 0', () => {
    const created = encodeRequest(COMMANDS.createTopic, { name: 't', replicationFactor: 2 });
    expect(() => decodeRequestStrict(COMMANDS.alterTopic, created)).toThrow(
      /unknown topic request flags 0x2/,
    );
    const zero = Buffer.from(created);
    zero.writeUInt16LE(0, zero.length - 2);
    expect(() => decodeRequestStrict(COMMANDS.createTopic, zero)).toThrow(/replicationFactor 0/);
    const unknown = Buffer.from(created);
    unknown[unknown.length - 3] = 0x8;
    expect(() => decodeRequestStrict(COMMANDS.createTopic, unknown)).toThrow(
      /unknown topic request flags 0x8/,
    );
  });

  it('refuses to encode a replication factor that is not a positive integer', () => {
    for (const replicationFactor of [0, 1.5, -1, 70_000]) {
      expect(() => encodeRequest(COMMANDS.createTopic, { name: 't', replicationFactor })).toThrow(
        expect.objectContaining({ code: ErrorCode.INVALID_CONFIG }),
      );
    }
  });
});

describe('uncleanLeaderElection', () => {
  it('travels in a partial config (bit 9) and in the topic replication block; an older block reads as false', () => {
    const request = { name: 'orders', config: { uncleanLeaderElection: true } };
    const decoded = COMMANDS.alterTopic.decodeRequest(
      new BinaryReader(encodeRequest(COMMANDS.alterTopic, request).subarray(0)),
    );
    expect(decoded.config).toEqual({ uncleanLeaderElection: true });
    const topic = topicView();
    topic.config.uncleanLeaderElection = true;
    const bytes = encodeResponse(COMMANDS.createTopic, topic);
    expect(COMMANDS.createTopic.decodeResponse(new BinaryReader(bytes)).config.uncleanLeaderElection).toBe(
      true,
    );
    // The block of a broker before the field: 12 bytes, no flag (and no storage after it).
    const older = Buffer.from(bytes.subarray(0, bytes.length - 2));
    older.writeUInt16LE(12, older.length - 14);
    expect(COMMANDS.createTopic.decodeResponse(new BinaryReader(older)).config.uncleanLeaderElection).toBe(
      false,
    );
    // A flag other than 0 or 1 is malformed.
    const bad = Buffer.from(bytes);
    bad[bad.length - 2] = 2;
    expect(() => COMMANDS.createTopic.decodeResponse(new BinaryReader(bad))).toThrow(
      /uncleanLeaderElection 2/,
    );
  });
});

describe('storage', () => {
  it('create carries storage memory after the flags byte (bit 2); disk is not written, so the request stays the older one', () => {
    const request = { name: 'ticks', partitions: 2, storage: 'memory' as const, replicationFactor: 1 };
    const bytes = encodeRequest(COMMANDS.createTopic, request);
    expect(bytes[bytes.length - 1]).toBe(1);
    expect(bytes[bytes.length - 4]).toBe(0x2 | 0x4);
    expect(decodeRequestStrict(COMMANDS.createTopic, bytes)).toEqual(request);
    const disk = encodeRequest(COMMANDS.createTopic, {
      name: 'orders',
      partitions: 2,
      storage: 'disk',
      config: { durability: 'always', retentionMs: 86400000 },
    });
    expect(disk.toString('hex')).toBe(legacy('create-topic-request').toString('hex'));
    // Alter knows no storage: the flag is refused, as is a storage the broker does not know.
    expect(() => decodeRequestStrict(COMMANDS.alterTopic, bytes)).toThrow(/unknown topic request flags 0x6/);
    const unknown = Buffer.from(bytes);
    unknown[unknown.length - 1] = 7;
    expect(() => decodeRequestStrict(COMMANDS.createTopic, unknown)).toThrow(/storage 7 is not known/);
    expect(() =>
      encodeRequest(COMMANDS.createTopic, { name: 't', storage: 'tape' as unknown as 'disk' }),
    ).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_CONFIG }));
  });

  it('travels last in the topic replication block; a block without it (an older broker) reads as disk', () => {
    const topic = topicView({ storage: 'memory' });
    const bytes = encodeResponse(COMMANDS.describeTopic, { topic, partitions: [] });
    expect(COMMANDS.describeTopic.decodeResponse(new BinaryReader(bytes)).topic.storage).toBe('memory');
    const listed = encodeResponse(COMMANDS.listTopics, { topics: [topic] });
    expect(COMMANDS.listTopics.decodeResponse(new BinaryReader(listed)).topics[0]!.storage).toBe('memory');
    // The block of a broker before storage: 13 bytes.
    const created = encodeResponse(COMMANDS.createTopic, topic);
    const older = Buffer.from(created.subarray(0, created.length - 1));
    older.writeUInt16LE(13, older.length - 15);
    expect(COMMANDS.createTopic.decodeResponse(new BinaryReader(older)).storage).toBe('disk');
  });
});
