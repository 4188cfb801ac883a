import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeEpochCheckpoint,
  type EpochEntry,
  encodeEpochCheckpoint,
  LeaderEpochCache,
  UNDEFINED_EPOCH,
  UNDEFINED_OFFSET,
} from '../../../src/cluster/replication/leader-epoch-cache.js';
import { MemoryStreamerError } from '../../../src/common/errors.js';
import { crc32c as crcOf } from '../../../src/protocol/crc32c.js';

function codeOf(run: () => unknown): string | null {
  try {
    run();
    return null;
  } catch (error) {
    if (error instanceof MemoryStreamerError) return error.codeName;
    throw error;
  }
}

const cacheOf = (...entries: [number, number][]) =>
  new LeaderEpochCache(entries.map(([epoch, start]) => ({ epoch, startOffset: BigInt(start) })));

describe('LeaderEpochCache.assign', () => {
  it('records a new epoch once, at its first offset', () => {
    const cache = new LeaderEpochCache();
    expect(cache.latestEpoch).toBe(UNDEFINED_EPOCH);
    expect(cache.assign(1, 0n)).toBe(true);
    expect(cache.assign(1, 5n)).toBe(false);
    expect(cache.assign(3, 7n)).toBe(true);
    expect(cache.entries()).toEqual([
      { epoch: 1, startOffset: 0n },
      { epoch: 3, startOffset: 7n },
    ]);
  });

  it('replaces an epoch that wrote nothing', () => {
    const cache = cacheOf([1, 0], [2, 4]);
    expect(cache.assign(3, 4n)).toBe(true);
    expect(cache.entries()).toEqual([
      { epoch: 1, startOffset: 0n },
      { epoch: 3, startOffset: 4n },
    ]);
  });

  it('refuses an older epoch, a start below the latest one, and values outside int32/int64', () => {
    const cache = cacheOf([1, 0], [4, 10]);
    expect(codeOf(() => cache.assign(3, 12n))).toBe('LEADER_EPOCH_REGRESSION');
    expect(codeOf(() => cache.assign(5, 9n))).toBe('LEADER_EPOCH_REGRESSION');
    expect(codeOf(() => cache.assign(4, 9n))).toBe('LEADER_EPOCH_REGRESSION');
    expect(codeOf(() => cache.assign(-1, 12n))).toBe('LEADER_EPOCH_REGRESSION');
    expect(codeOf(() => cache.assign(2 ** 31, 12n))).toBe('LEADER_EPOCH_REGRESSION');
    expect(codeOf(() => cache.assign(5, -1n))).toBe('LEADER_EPOCH_REGRESSION');
    expect(codeOf(() => cacheOf([2, 0], [1, 5]))).toBe('LEADER_EPOCH_REGRESSION');
    expect(cache.entries()).toHaveLength(2);
  });
});

describe('LeaderEpochCache.endOffsetFor', () => {
  const cache = cacheOf([2, 0], [4, 10], [7, 15]);

  it('the latest epoch ends at the log end', () => {
    expect(cache.endOffsetFor(7, 20n)).toEqual({ epoch: 7, endOffset: 20n });
  });

  it('an older epoch ends where the next one starts', () => {
    expect(cache.endOffsetFor(4, 20n)).toEqual({ epoch: 4, endOffset: 15n });
    expect(cache.endOffsetFor(2, 20n)).toEqual({ epoch: 2, endOffset: 10n });
  });

  it('an unknown epoch between two answers with the largest known epoch below it', () => {
    expect(cache.endOffsetFor(5, 20n)).toEqual({ epoch: 4, endOffset: 15n });
    expect(cache.endOffsetFor(3, 20n)).toEqual({ epoch: 2, endOffset: 10n });
  });

  it('an epoch below every known one ends where the first one starts', () => {
    expect(cache.endOffsetFor(1, 20n)).toEqual({ epoch: 1, endOffset: 0n });
  });

  it('is UNDEFINED for a newer epoch, for UNDEFINED_EPOCH, and in an empty cache', () => {
    const undefinedAnswer = { epoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_OFFSET };
    expect(cache.endOffsetFor(8, 20n)).toEqual(undefinedAnswer);
    expect(cache.endOffsetFor(UNDEFINED_EPOCH, 20n)).toEqual(undefinedAnswer);
    expect(new LeaderEpochCache().endOffsetFor(0, 0n)).toEqual(undefinedAnswer);
  });
});

describe('LeaderEpochCache truncation', () => {
  it('truncateFromEnd forgets epochs starting at or after the new end', () => {
    const cache = cacheOf([2, 0], [4, 10], [7, 15]);
    expect(cache.truncateFromEnd(16n)).toBe(false);
    expect(cache.truncateFromEnd(15n)).toBe(true);
    expect(cache.latestEpoch).toBe(4);
    expect(cache.truncateFromEnd(0n)).toBe(true);
    expect(cache.entries()).toEqual([]);
    // An empty cache stays empty, whatever the offset.
    expect(cache.truncateFromEnd(-1n)).toBe(false);
    expect(cache.truncateFromEnd(0n)).toBe(false);
  });

  it('truncateFromStart keeps the epoch holding the new start, starting there', () => {
    const cache = cacheOf([2, 0], [4, 10], [7, 15]);
    expect(cache.truncateFromStart(0n)).toBe(false);
    expect(cache.truncateFromStart(12n)).toBe(true);
    expect(cache.entries()).toEqual([
      { epoch: 4, startOffset: 12n },
      { epoch: 7, startOffset: 15n },
    ]);
    expect(cache.truncateFromStart(15n)).toBe(true);
    expect(cache.entries()).toEqual([{ epoch: 7, startOffset: 15n }]);
    // Retention emptied the log (end 20): the latest epoch stays, starting at the log end.
    expect(cache.truncateFromStart(20n)).toBe(true);
    expect(cache.entries()).toEqual([{ epoch: 7, startOffset: 20n }]);
    expect(cache.endOffsetFor(7, 20n)).toEqual({ epoch: 7, endOffset: 20n });
  });
});

// Model: the log as one epoch per offset, from logStart on. Every answer of the cache must match
// what a scan of that log says.
describe('LeaderEpochCache against a per-offset model of the log', () => {
  type Operation =
    | { kind: 'append'; epochStep: number; count: number }
    | { kind: 'truncate-end'; fraction: number }
    | { kind: 'truncate-start'; fraction: number };
  const operation: fc.Arbitrary<Operation> = fc.oneof(
    fc.record({
      kind: fc.constant('append' as const),
      epochStep: fc.integer({ min: 0, max: 3 }),
      count: fc.integer({ min: 1, max: 5 }),
    }),
    fc.record({
      kind: fc.constant('truncate-end' as const),
      fraction: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
    fc.record({
      kind: fc.constant('truncate-start' as const),
      fraction: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  );

  it('matches a scan of the log after any sequence of appends and truncations', () => {
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 30 }), (operations) => {
        const cache = new LeaderEpochCache();
        let logStart = 0;
        const epochs: number[] = []; // epochs[offset - logStart]
        let epoch = 0;
        for (const op of operations) {
          if (op.kind === 'append') {
            epoch = Math.max(epoch, cache.latestEpoch) + op.epochStep;
            for (let i = 0; i < op.count; i++) {
              cache.assign(epoch, BigInt(logStart + epochs.length));
              epochs.push(epoch);
            }
          } else if (op.kind === 'truncate-end') {
            const end = logStart + Math.floor(op.fraction * epochs.length);
            cache.truncateFromEnd(BigInt(end));
            epochs.length = end - logStart;
          } else if (epochs.length > 0) {
            // Keeps at least one record: an emptied log keeps its latest epoch at the log end
            // (tested on its own above), which a per-offset model cannot show.
            const start = logStart + Math.floor(op.fraction * (epochs.length - 1));
            cache.truncateFromStart(BigInt(start));
            epochs.splice(0, start - logStart);
            logStart = start;
          }
          const expectedEntries: EpochEntry[] = [];
          epochs.forEach((e, index) => {
            if (index === 0 || epochs[index - 1] !== e)
              expectedEntries.push({ epoch: e, startOffset: BigInt(logStart + index) });
          });
          expect(cache.entries()).toEqual(expectedEntries);
          const end = BigInt(logStart + epochs.length);
          for (let asked = 0; asked <= epoch + 1; asked++) {
            const answer = cache.endOffsetFor(asked, end);
            const maxEpoch = epochs.length === 0 ? UNDEFINED_EPOCH : Math.max(...epochs);
            if (epochs.length === 0 || asked > maxEpoch) {
              expect(answer).toEqual({ epoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_OFFSET });
              continue;
            }
            const firstAbove = epochs.findIndex((e) => e > asked);
            const endIndex = firstAbove === -1 ? epochs.length : firstAbove;
            const below = epochs.slice(0, endIndex);
            expect(answer).toEqual({
              epoch: below.length === 0 ? asked : Math.max(...below),
              endOffset: BigInt(logStart + endIndex),
            });
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('epoch checkpoint bytes', () => {
  const entriesArbitrary = fc
    .uniqueArray(fc.integer({ min: 0, max: 2 ** 31 - 1 }), { maxLength: 20 })
    .chain((epochs) =>
      fc
        .uniqueArray(fc.bigInt({ min: 0n, max: 2n ** 63n - 1n }), {
          minLength: epochs.length,
          maxLength: epochs.length,
        })
        .map((offsets) => {
          const sortedEpochs = [...epochs].sort((a, b) => a - b);
          const sortedOffsets = [...offsets].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
          return sortedEpochs.map((epoch, index) => ({ epoch, startOffset: sortedOffsets[index]! }));
        }),
    );

  it('round-trips any valid cache', () => {
    fc.assert(
      fc.property(entriesArbitrary, (entries) => {
        const bytes = encodeEpochCheckpoint(entries);
        expect(decodeEpochCheckpoint(bytes)).toEqual(entries);
        expect(LeaderEpochCache.decode(new LeaderEpochCache(entries).encode()).entries()).toEqual(entries);
      }),
      { numRuns: 300 },
    );
  });

  it('has the documented layout', () => {
    const bytes = encodeEpochCheckpoint([
      { epoch: 1, startOffset: 0n },
      { epoch: 3, startOffset: 258n },
    ]);
    expect(bytes.length).toBe(10 + 2 * 12 + 4);
    expect(bytes.subarray(0, 34).toString('hex')).toBe(
      [
        '4d534543', // magic "MSEC"
        '0001', // version
        '00000002', // entry count
        '00000001', // epoch 1
        '0000000000000000', // start offset 0
        '00000003', // epoch 3
        '0000000000000102', // start offset 258
      ].join(''),
    );
  });

  it('refuses every truncation and every single-bit flip with CORRUPT_EPOCH_CHECKPOINT', () => {
    const bytes = encodeEpochCheckpoint([
      { epoch: 1, startOffset: 0n },
      { epoch: 3, startOffset: 258n },
      { epoch: 9, startOffset: 1000n },
    ]);
    for (let length = 0; length < bytes.length; length++)
      expect(
        codeOf(() => decodeEpochCheckpoint(bytes.subarray(0, length))),
        `length ${length}`,
      ).toBe('CORRUPT_EPOCH_CHECKPOINT');
    expect(codeOf(() => decodeEpochCheckpoint(Buffer.concat([bytes, Buffer.alloc(1)])))).toBe(
      'CORRUPT_EPOCH_CHECKPOINT',
    );
    for (let bit = 0; bit < bytes.length * 8; bit++) {
      const flipped = Buffer.from(bytes);
      flipped[bit >> 3]! ^= 1 << (bit & 7);
      expect(
        codeOf(() => decodeEpochCheckpoint(flipped)),
        `bit ${bit}`,
      ).toBe('CORRUPT_EPOCH_CHECKPOINT');
    }
  });

  it('refuses entries out of order or negative, and another version, even under a correct CRC', () => {
    const withCrc = (build: (bytes: Buffer) => void) => {
      const bytes = encodeEpochCheckpoint([
        { epoch: 1, startOffset: 0n },
        { epoch: 3, startOffset: 258n },
      ]);
      build(bytes);
      // Recompute the CRC the way the encoder does, so only the content is wrong.
      const body = bytes.length - 4;
      bytes.writeUInt32BE(crcOf(bytes.subarray(0, body)), body);
      return bytes;
    };
    expect(codeOf(() => decodeEpochCheckpoint(withCrc((b) => b.writeInt32BE(5, 10))))).toBe(
      'CORRUPT_EPOCH_CHECKPOINT',
    );
    expect(codeOf(() => decodeEpochCheckpoint(withCrc((b) => b.writeInt32BE(-2, 10))))).toBe(
      'CORRUPT_EPOCH_CHECKPOINT',
    );
    expect(codeOf(() => decodeEpochCheckpoint(withCrc((b) => b.writeUInt16BE(2, 4))))).toBe(
      'CORRUPT_EPOCH_CHECKPOINT',
    );
  });

  it('answers random bytes only with typed errors', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        const code = codeOf(() => decodeEpochCheckpoint(bytes));
        expect(code === null || code === 'CORRUPT_EPOCH_CHECKPOINT').toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});
