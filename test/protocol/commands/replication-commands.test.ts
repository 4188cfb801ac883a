// REPLICA_FETCH and OFFSETS_FOR_LEADER_EPOCH: byte layouts, what the decoders refuse, and that the
// decoded entries are the replication state machines' messages (src/cluster/replication/messages.ts).
import { describe, expect, it } from 'vitest';
import type {
  EpochAnswer,
  EpochQuery,
  ReplicaFetchRequest as FollowerFetch,
  ReplicaFetchResponse as FollowerFetchResponse,
  ReplicaBatch,
} from '../../../src/cluster/replication/messages.js';
import { BinaryReader } from '../../../src/protocol/codec/binary-reader.js';
import { BinaryWriter } from '../../../src/protocol/codec/binary-writer.js';
import type { CommandCodec } from '../../../src/protocol/commands/command.js';
import { commandForOpcode } from '../../../src/protocol/commands/registry.js';
import {
  epochAnswerOf,
  epochAnswerPartitionOf,
  type OffsetsForLeaderEpochRequest,
  type OffsetsForLeaderEpochResponse,
  offsetsForLeaderEpochCommand,
  REPLICATION_COMMANDS,
  type ReplicaFetchRequest,
  type ReplicaFetchResponse,
  replicaBatchesOf,
  replicaFetchCommand,
  replicaFetchResultOf,
  replicationCommandForOpcode,
} from '../../../src/protocol/commands/replication-commands.js';
import { ErrorCode } from '../../../src/protocol/error-codes.js';
import { isDataOpcode, Opcode } from '../../../src/protocol/opcodes.js';
import { encodeRecordBatch } from '../../../src/protocol/record-batch.js';

function encode<T>(write: (w: BinaryWriter, value: T) => void, value: T): Buffer {
  const w = new BinaryWriter(64);
  write(w, value);
  return w.finish();
}

function decode<T>(read: (r: BinaryReader) => T, bytes: Buffer): T {
  const r = new BinaryReader(bytes);
  const value = read(r);
  r.end();
  return value;
}

function roundTrip<Q, S>(codec: CommandCodec<Q, S>, request: Q, response: S): void {
  expect(decode(codec.decodeRequest, encode(codec.encodeRequest, request))).toEqual(request);
  expect(decode(codec.decodeResponse, encode(codec.encodeResponse, response))).toEqual(response);
}

function batch(baseOffset: bigint, epoch: number, values: string[]): Buffer {
  return encodeRecordBatch(
    values.map((value) => ({ key: null, value, timestamp: 1_795_400_000_000 })),
    { baseOffset, partitionLeaderEpoch: epoch, baseTimestamp: 1_795_400_000_000 },
  );
}

const FETCH: ReplicaFetchRequest = {
  replicaId: 2,
  maxWaitMs: 500,
  minBytes: 1,
  maxBytes: 8 * 1024 * 1024,
  partitions: [
    {
      topic: 'orders',
      partition: 0,
      leaderEpoch: 5,
      lastFetchedEpoch: 4,
      fetchOffset: 120n,
      stableOffset: 100n,
      maxBytes: 1 << 20,
    },
    {
      topic: 'orders',
      partition: 3,
      leaderEpoch: 2,
      lastFetchedEpoch: -1,
      fetchOffset: 0n,
      stableOffset: 0n,
      maxBytes: 1 << 20,
    },
    {
      topic: 'audit',
      partition: 1,
      leaderEpoch: 0,
      lastFetchedEpoch: 0,
      fetchOffset: 7n,
      stableOffset: 7n,
      maxBytes: 4096,
    },
    {
      topic: 'orders',
      partition: 1,
      leaderEpoch: 5,
      lastFetchedEpoch: 5,
      fetchOffset: 9n,
      stableOffset: 9n,
      maxBytes: 4096,
    },
  ],
};

describe('opcodes', () => {
  it('are data opcodes of the replication range, outside the client registry', () => {
    expect(Opcode.REPLICA_FETCH).toBe(0x0601);
    expect(Opcode.OFFSETS_FOR_LEADER_EPOCH).toBe(0x0602);
    expect(isDataOpcode(0x0601)).toBe(true);
    expect(isDataOpcode(0x0602)).toBe(true);
    expect(replicationCommandForOpcode(0x0601)).toBe('replicaFetch');
    expect(replicationCommandForOpcode(0x0602)).toBe('offsetsForLeaderEpoch');
    expect(replicationCommandForOpcode(Opcode.FETCH)).toBeUndefined();
    expect(commandForOpcode(0x0601)).toBeUndefined();
    expect(Object.keys(REPLICATION_COMMANDS)).toEqual(['replicaFetch', 'offsetsForLeaderEpoch']);
  });
});

describe('REPLICA_FETCH', () => {
  it('round-trips, keeping the order of partitions across topics', () => {
    const section = Buffer.concat([batch(120n, 5, ['a', 'b']), batch(122n, 5, ['c'])]);
    const response: ReplicaFetchResponse = {
      partitions: [
        {
          topic: 'orders',
          partition: 0,
          error: null,
          highWatermark: 118n,
          logStartOffset: 0n,
          leaderEpoch: 5,
          divergingEpoch: null,
          batches: section,
        },
        {
          topic: 'orders',
          partition: 3,
          error: 'FENCED_LEADER_EPOCH',
          highWatermark: -1n,
          logStartOffset: -1n,
          leaderEpoch: 6,
          divergingEpoch: null,
          batches: Buffer.alloc(0),
        },
        {
          topic: 'audit',
          partition: 1,
          error: null,
          highWatermark: 5n,
          logStartOffset: 0n,
          leaderEpoch: 1,
          divergingEpoch: { epoch: 0, endOffset: 5n },
          batches: Buffer.alloc(0),
        },
      ],
    };
    roundTrip(replicaFetchCommand, FETCH, response);
  });

  it('groups runs of one topic under its name', () => {
    const bytes = encode(replicaFetchCommand.encodeRequest, FETCH);
    // replicaId, maxWaitMs, minBytes, maxBytes, then 3 runs: orders ×2, audit ×1, orders ×1.
    expect(bytes.readUInt32LE(16)).toBe(3);
    expect(bytes.readUInt16LE(20)).toBe(6);
    expect(bytes.toString('utf8', 22, 28)).toBe('orders');
    expect(bytes.readUInt32LE(28)).toBe(2);
    // Each FetchPartition: partition u32 | leaderEpoch i32 | lastFetchedEpoch i32 | fetchOffset i64 |
    // stableOffset i64 | maxBytes u32 = 32 bytes.
    const first = 32;
    expect(bytes.readUInt32LE(first)).toBe(0);
    expect(bytes.readInt32LE(first + 4)).toBe(5);
    expect(bytes.readInt32LE(first + 8)).toBe(4);
    expect(bytes.readBigInt64LE(first + 12)).toBe(120n);
    expect(bytes.readBigInt64LE(first + 20)).toBe(100n);
    expect(bytes.readUInt32LE(first + 28)).toBe(1 << 20);
    expect(bytes.length).toBe(20 + (2 + 6 + 4 + 64) + (2 + 5 + 4 + 32) + (2 + 6 + 4 + 32));
  });

  it('refuses a stable offset past the fetch offset, negative offsets and epochs below -1', () => {
    const bad = (change: Partial<ReplicaFetchRequest['partitions'][number]>) =>
      encode(replicaFetchCommand.encodeRequest, {
        ...FETCH,
        partitions: [{ ...FETCH.partitions[0]!, ...change }],
      });
    expect(() => decode(replicaFetchCommand.decodeRequest, bad({ stableOffset: 121n }))).toThrow(
      /orders\/0: fetchOffset 120, stableOffset 121/,
    );
    expect(() =>
      decode(replicaFetchCommand.decodeRequest, bad({ fetchOffset: -1n, stableOffset: -1n })),
    ).toThrow(expect.objectContaining({ code: ErrorCode.MALFORMED_PAYLOAD }));
    expect(() => decode(replicaFetchCommand.decodeRequest, bad({ lastFetchedEpoch: -2 }))).toThrow(
      /lastFetchedEpoch -2/,
    );
    expect(() =>
      decode(
        replicaFetchCommand.decodeRequest,
        encode(replicaFetchCommand.encodeRequest, { ...FETCH, replicaId: -1 }),
      ),
    ).toThrow(/replicaId -1/);
  });

  it('refuses a diverging epoch without its end offset', () => {
    const bytes = encode(replicaFetchCommand.encodeResponse, {
      partitions: [
        {
          topic: 't',
          partition: 0,
          error: null,
          highWatermark: 0n,
          logStartOffset: 0n,
          leaderEpoch: 1,
          divergingEpoch: { epoch: 0, endOffset: -1n },
          batches: Buffer.alloc(0),
        },
      ],
    });
    expect(() => decode(replicaFetchCommand.decodeResponse, bytes)).toThrow(
      /divergingEpoch 0 with end offset -1/,
    );
  });

  it("splits a partition's batches into the follower's ReplicaBatch, without copying", () => {
    const first = batch(120n, 4, ['a', 'b', 'c']);
    const second = batch(123n, 5, ['d']);
    const section = Buffer.concat([first, second]);
    const batches: ReplicaBatch[] = replicaBatchesOf(section);
    expect(
      batches.map(({ baseOffset, lastOffset, leaderEpoch }) => ({ baseOffset, lastOffset, leaderEpoch })),
    ).toEqual([
      { baseOffset: 120n, lastOffset: 122n, leaderEpoch: 4 },
      { baseOffset: 123n, lastOffset: 123n, leaderEpoch: 5 },
    ]);
    expect(Buffer.compare(Buffer.from(batches[0]!.bytes), first)).toBe(0);
    expect(Buffer.compare(Buffer.from(batches[1]!.bytes), second)).toBe(0);
    expect((batches[1]!.bytes as Buffer).buffer).toBe(section.buffer);
    expect(replicaBatchesOf(Buffer.alloc(0))).toEqual([]);
  });

  it('refuses a section that does not end on a batch boundary', () => {
    const whole = batch(0n, 0, ['a']);
    expect(() => replicaBatchesOf(whole.subarray(0, whole.length - 1))).toThrow(
      expect.objectContaining({ code: ErrorCode.BAD_RECORD_BATCH }),
    );
    expect(() => replicaBatchesOf(Buffer.concat([whole, whole.subarray(0, 30)]))).toThrow(
      /30 bytes at \d+ are not a whole batch/,
    );
    const negative = Buffer.from(whole);
    negative.writeBigInt64BE(-5n, 0);
    expect(() => replicaBatchesOf(negative)).toThrow(/offsets -5\+0/);
  });

  it("maps a fetched partition onto the follower's ReplicaFetchResponse", () => {
    const fetched = {
      topic: 't',
      partition: 0,
      highWatermark: 121n,
      logStartOffset: 0n,
      leaderEpoch: 5,
      divergingEpoch: null,
      batches: Buffer.concat([batch(120n, 5, ['a']), batch(121n, 5, ['b', 'c'])]),
    };
    const ok: FollowerFetchResponse = replicaFetchResultOf({ ...fetched, error: null });
    expect(ok.error).toBeNull();
    if (ok.error === null) {
      expect(ok.highWatermark).toBe(121n);
      expect(ok.batches.map((b) => [b.baseOffset, b.lastOffset, b.leaderEpoch])).toEqual([
        [120n, 120n, 5],
        [121n, 122n, 5],
      ]);
    }
    const failed: FollowerFetchResponse = replicaFetchResultOf({ ...fetched, error: 'FENCED_LEADER_EPOCH' });
    expect(failed).toEqual({ error: 'FENCED_LEADER_EPOCH' });
  });

  it("is what the follower state machine sends: an entry with the request's replicaId", () => {
    const entry = FETCH.partitions[0]!;
    const message: FollowerFetch = { replicaId: FETCH.replicaId, ...entry };
    expect(message).toMatchObject({ replicaId: 2, leaderEpoch: 5, fetchOffset: 120n, stableOffset: 100n });
  });
});

describe('OFFSETS_FOR_LEADER_EPOCH', () => {
  const request: OffsetsForLeaderEpochRequest = {
    replicaId: 3,
    partitions: [
      { topic: 'orders', partition: 0, leaderEpoch: 7, queryEpoch: 5 },
      { topic: 'orders', partition: 1, leaderEpoch: 7, queryEpoch: -1 },
    ],
  };
  const response: OffsetsForLeaderEpochResponse = {
    partitions: [
      { topic: 'orders', partition: 0, error: null, epoch: 4, endOffset: 1000n },
      { topic: 'orders', partition: 1, error: null, epoch: -1, endOffset: -1n },
      { topic: 'orders', partition: 2, error: 'FENCED_LEADER_EPOCH', epoch: -1, endOffset: -1n },
    ],
  };

  it('round-trips, and writes the layout of docs/protocol.md', () => {
    roundTrip(offsetsForLeaderEpochCommand, request, response);
    const bytes = encode(offsetsForLeaderEpochCommand.encodeRequest, {
      replicaId: 3,
      partitions: [request.partitions[0]!],
    });
    expect(bytes.toString('hex')).toBe(
      [
        '03000000',
        '01000000',
        '0600',
        Buffer.from('orders').toString('hex'),
        '01000000',
        '00000000',
        '07000000',
        '05000000',
      ].join(''),
    );
  });

  it('writes no epoch for an error, and refuses an epoch without an offset', () => {
    const bytes = encode(offsetsForLeaderEpochCommand.encodeResponse, {
      partitions: [{ topic: 't', partition: 0, error: 'NOT_LEADER', epoch: 9, endOffset: 90n }],
    });
    expect(decode(offsetsForLeaderEpochCommand.decodeResponse, bytes).partitions[0]).toEqual({
      topic: 't',
      partition: 0,
      error: 'NOT_LEADER',
      epoch: -1,
      endOffset: -1n,
    });
    const half = encode(offsetsForLeaderEpochCommand.encodeResponse, {
      partitions: [{ topic: 't', partition: 0, error: null, epoch: 3, endOffset: -1n }],
    });
    expect(() => decode(offsetsForLeaderEpochCommand.decodeResponse, half)).toThrow(
      /epoch 3 with end offset -1/,
    );
  });

  it("maps onto the state machines' EpochQuery and EpochAnswer", () => {
    const entry = request.partitions[0]!;
    const query: EpochQuery = { replicaId: request.replicaId, ...entry };
    expect(query).toMatchObject({ replicaId: 3, leaderEpoch: 7, queryEpoch: 5 });
    const answers: EpochAnswer[] = response.partitions.map(epochAnswerOf);
    expect(answers).toEqual([
      { error: null, epoch: 4, endOffset: 1000n },
      { error: null, epoch: -1, endOffset: -1n },
      { error: 'FENCED_LEADER_EPOCH' },
    ]);
    // And back: the leader's answers as wire entries.
    expect(answers.map((answer, i) => epochAnswerPartitionOf('orders', i, answer))).toEqual(
      response.partitions,
    );
  });
});
