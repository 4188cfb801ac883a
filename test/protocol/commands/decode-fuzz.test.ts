// The cluster codecs decode what a peer sends, so any bytes must end in a value or a typed error
// (MemoryStreamerError with a code), never a RangeError, a hang or a huge allocation: every
// truncation and thousands of single-byte mutations of valid payloads, and random payloads.
import { describe, expect, it } from 'vitest';
import { isMemoryStreamerError } from '../../../src/common/errors.js';
import { BinaryReader } from '../../../src/protocol/codec/binary-reader.js';
import { BinaryWriter } from '../../../src/protocol/codec/binary-writer.js';
import { COMMANDS } from '../../../src/protocol/commands/registry.js';
import {
  offsetsForLeaderEpochCommand,
  replicaFetchCommand,
} from '../../../src/protocol/commands/replication-commands.js';
import { encodeRecordBatch } from '../../../src/protocol/record-batch.js';

/** A small seeded PRNG (mulberry32): the same inputs on every run. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function payload(write: (w: BinaryWriter) => void): Buffer {
  const w = new BinaryWriter(64);
  write(w);
  return Buffer.from(w.finish());
}

const CASES: Array<{ name: string; bytes: Buffer; decode: (r: BinaryReader) => unknown }> = [
  {
    name: 'METADATA response',
    bytes: payload((w) =>
      COMMANDS.metadata.encodeResponse(w, {
        clusterId: 'c',
        controllerId: 1,
        brokers: [{ id: 1, host: 'h', port: 1, rack: 'r' }],
        topics: [
          {
            name: 't',
            error: null,
            id: 'i',
            internal: false,
            partitions: [
              {
                partition: 0,
                error: null,
                leader: 1,
                leaderEpoch: 2,
                replicas: [1, 2],
                isr: [1],
                offlineReplicas: [2],
              },
            ],
          },
        ],
      }),
    ),
    decode: (r) => COMMANDS.metadata.decodeResponse(r),
  },
  {
    name: 'METADATA request',
    bytes: payload((w) => COMMANDS.metadata.encodeRequest(w, { topics: ['a', 'bc'] })),
    decode: (r) => COMMANDS.metadata.decodeRequest(r),
  },
  {
    name: 'DESCRIBE_TOPIC response',
    bytes: payload((w) =>
      COMMANDS.describeTopic.encodeResponse(w, {
        topic: {
          name: 't',
          id: 'i',
          partitions: 1,
          replicationFactor: 3,
          createdAt: 1,
          config: {
            retentionMs: -1,
            retentionBytes: -1,
            cleanup: 'delete',
            durability: 'always',
            flushIntervalMs: 1,
            maxMessageBytes: 64,
            segmentBytes: 4096,
            segmentMs: 1000,
            minInsyncReplicas: 2,
            uncleanLeaderElection: true,
          },
        },
        partitions: [
          {
            partition: 0,
            logStartOffset: 0n,
            highWatermark: 1n,
            logEndOffset: 2n,
            sizeBytes: 1,
            leader: 1,
            replicas: [1, 2, 3],
            isr: [1, 2],
            leaderEpoch: 4,
          },
        ],
      }),
    ),
    decode: (r) => COMMANDS.describeTopic.decodeResponse(r),
  },
  {
    name: 'CREATE_TOPIC request',
    bytes: payload((w) =>
      COMMANDS.createTopic.encodeRequest(w, {
        name: 't',
        replicationFactor: 3,
        ifNotExists: true,
        config: { minInsyncReplicas: 2, durability: 'always' },
      }),
    ),
    decode: (r) => COMMANDS.createTopic.decodeRequest(r),
  },
  {
    name: 'REPLICA_FETCH request',
    bytes: payload((w) =>
      replicaFetchCommand.encodeRequest(w, {
        replicaId: 1,
        maxWaitMs: 1,
        minBytes: 1,
        maxBytes: 1,
        partitions: [
          {
            topic: 't',
            partition: 0,
            leaderEpoch: 1,
            lastFetchedEpoch: 0,
            fetchOffset: 5n,
            stableOffset: 4n,
            maxBytes: 9,
          },
          {
            topic: 'u',
            partition: 1,
            leaderEpoch: 1,
            lastFetchedEpoch: -1,
            fetchOffset: 0n,
            stableOffset: 0n,
            maxBytes: 9,
          },
        ],
      }),
    ),
    decode: (r) => replicaFetchCommand.decodeRequest(r),
  },
  {
    name: 'REPLICA_FETCH response',
    bytes: payload((w) =>
      replicaFetchCommand.encodeResponse(w, {
        partitions: [
          {
            topic: 't',
            partition: 0,
            error: null,
            highWatermark: 1n,
            logStartOffset: 0n,
            leaderEpoch: 1,
            divergingEpoch: { epoch: 0, endOffset: 1n },
            batches: encodeRecordBatch([{ value: 'v' }], { baseOffset: 1n, partitionLeaderEpoch: 1 }),
          },
        ],
      }),
    ),
    decode: (r) => replicaFetchCommand.decodeResponse(r),
  },
  {
    name: 'OFFSETS_FOR_LEADER_EPOCH response',
    bytes: payload((w) =>
      offsetsForLeaderEpochCommand.encodeResponse(w, {
        partitions: [{ topic: 't', partition: 0, error: null, epoch: 1, endOffset: 5n }],
      }),
    ),
    decode: (r) => offsetsForLeaderEpochCommand.decodeResponse(r),
  },
];

function outcome(decode: (r: BinaryReader) => unknown, bytes: Buffer): 'value' | 'typed' {
  try {
    const r = new BinaryReader(bytes);
    decode(r);
    r.end();
    return 'value';
  } catch (error) {
    if (isMemoryStreamerError(error)) return 'typed';
    throw error;
  }
}

describe('cluster codecs on hostile bytes (counted)', () => {
  it.each(CASES)(
    '$name: every truncation and 2,000 mutations end in a value or a typed error',
    ({ bytes, decode }) => {
      expect(outcome(decode, bytes)).toBe('value');
      // A truncation at the end of an older layout (before the replication extension, or before
      // the flags byte) is a valid older payload; every other one is refused.
      let refused = 0;
      for (let length = 0; length < bytes.length; length++)
        if (outcome(decode, bytes.subarray(0, length)) === 'typed') refused++;
      expect(refused).toBeGreaterThanOrEqual(bytes.length - 2);
      const next = random(bytes.length * 7919);
      for (let i = 0; i < 2000; i++) {
        const mutated = Buffer.from(bytes);
        mutated[Math.floor(next() * mutated.length)] = Math.floor(next() * 256);
        outcome(decode, mutated);
      }
    },
  );

  it.each(CASES)('$name: 500 random payloads end in a value or a typed error', ({ decode }) => {
    const next = random(12345);
    for (let i = 0; i < 500; i++) {
      const bytes = Buffer.alloc(Math.floor(next() * 128));
      for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(next() * 256);
      outcome(decode, bytes);
    }
  });
});
