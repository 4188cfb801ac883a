// SEGMENT_ROOTS, SEGMENT_CHUNK_DIGESTS and SEGMENT_RANGE: round trips, the byte layout of a request,
// what the decoders refuse, and the dispatch by opcode (not in the client's registry).
import { describe, expect, it } from 'vitest';
import { MemoryStreamerError } from '../../../src/common/errors.js';
import { BinaryReader } from '../../../src/protocol/codec/binary-reader.js';
import { BinaryWriter } from '../../../src/protocol/codec/binary-writer.js';
import {
  ANTI_ENTROPY_COMMANDS,
  type AntiEntropyRequests,
  answerAntiEntropy,
  antiEntropyCommandForOpcode,
  MAX_SEGMENT_RANGE_BYTES,
  segmentChunkDigestsCommand,
  segmentRangeCommand,
  segmentRootsCommand,
} from '../../../src/protocol/commands/anti-entropy-commands.js';
import type { CommandCodec } from '../../../src/protocol/commands/command.js';
import { commandForOpcode } from '../../../src/protocol/commands/registry.js';
import { isDataOpcode, Opcode } from '../../../src/protocol/opcodes.js';

const hash = (fill: number) => Buffer.alloc(32, fill);
const ref = { replicaId: 2, topic: 'orders', partition: 3, leaderEpoch: 7 };

function roundTrip<Q, S>(command: CommandCodec<Q, S>, request: Q, response: S): { request: Q; response: S } {
  const w1 = new BinaryWriter(64);
  command.encodeRequest(w1, request);
  const r1 = new BinaryReader(w1.finish());
  const decodedRequest = command.decodeRequest(r1);
  r1.end();
  const w2 = new BinaryWriter(64);
  command.encodeResponse(w2, response);
  const r2 = new BinaryReader(w2.finish());
  const decodedResponse = command.decodeResponse(r2);
  r2.end();
  return { request: decodedRequest, response: decodedResponse };
}

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    return error instanceof MemoryStreamerError ? error.codeName : String(error);
  }
  return undefined;
}

describe('anti-entropy commands', () => {
  it('round-trip roots, chunk digests and ranges', () => {
    const roots = roundTrip(
      segmentRootsCommand,
      { ...ref, chunkBytes: 65536, baseOffsets: [0n, 120n] },
      {
        highWatermark: 500n,
        chunkBytes: 65536,
        segments: [
          { baseOffset: 0n, error: null, nextOffset: 120n, size: 9000, root: hash(1) },
          { baseOffset: 120n, error: 'SEGMENT_NOT_FOUND', nextOffset: -1n, size: -1, root: Buffer.alloc(0) },
        ],
      },
    );
    expect(roots.request).toEqual({ ...ref, chunkBytes: 65536, baseOffsets: [0n, 120n] });
    expect(roots.response.segments[0]).toEqual({
      baseOffset: 0n,
      error: null,
      nextOffset: 120n,
      size: 9000,
      root: hash(1),
    });
    expect(roots.response.segments[1]).toMatchObject({ baseOffset: 120n, error: 'SEGMENT_NOT_FOUND' });

    const chunks = roundTrip(
      segmentChunkDigestsCommand,
      { ...ref, chunkBytes: 4096, baseOffset: 120n },
      { nextOffset: 300n, size: 9000, chunkBytes: 4096, root: hash(9), chunks: [hash(1), hash(2), hash(3)] },
    );
    expect(chunks.request).toEqual({ ...ref, chunkBytes: 4096, baseOffset: 120n });
    expect(chunks.response.chunks).toEqual([hash(1), hash(2), hash(3)]);
    expect(chunks.response).toMatchObject({ nextOffset: 300n, size: 9000, chunkBytes: 4096, root: hash(9) });

    const range = roundTrip(
      segmentRangeCommand,
      { ...ref, baseOffset: 120n, position: 4096, length: 100 },
      { size: 9000, bytes: Buffer.from('segment bytes') },
    );
    expect(range.request).toEqual({ ...ref, baseOffset: 120n, position: 4096, length: 100 });
    expect(range.response).toEqual({ size: 9000, bytes: Buffer.from('segment bytes') });
  });

  it('lays a range request out as documented', () => {
    const w = new BinaryWriter(64);
    segmentRangeCommand.encodeRequest(w, { ...ref, topic: 't', baseOffset: 5n, position: 6, length: 7 });
    const expected = Buffer.alloc(4 + 2 + 1 + 4 + 4 + 8 + 8 + 4);
    let at = expected.writeInt32LE(2, 0);
    at = expected.writeUInt16LE(1, at);
    at = expected.write('t', at) + at;
    at = expected.writeUInt32LE(3, at);
    at = expected.writeInt32LE(7, at);
    at = expected.writeBigInt64LE(5n, at);
    at = expected.writeBigInt64LE(6n, at);
    expected.writeUInt32LE(7, at);
    expect(w.finish()).toEqual(expected);
  });

  it('refuses ranges over the limit, chunk lists of the wrong length, short hashes and negative ids', () => {
    const encodeRange = (length: number) => {
      const w = new BinaryWriter(64);
      segmentRangeCommand.encodeRequest(w, { ...ref, baseOffset: 0n, position: 0, length });
      return new BinaryReader(w.finish());
    };
    expect(codeOf(() => segmentRangeCommand.decodeRequest(encodeRange(MAX_SEGMENT_RANGE_BYTES + 1)))).toBe(
      'SEGMENT_RANGE_INVALID',
    );
    expect(codeOf(() => segmentRangeCommand.decodeRequest(encodeRange(0)))).toBe('SEGMENT_RANGE_INVALID');
    expect(codeOf(() => segmentRangeCommand.decodeRequest(encodeRange(10)))).toBeUndefined();

    // 3 hashes for 9000 bytes in chunks of 1024 (9 chunks).
    const w = new BinaryWriter(64);
    segmentChunkDigestsCommand.encodeResponse(w, {
      nextOffset: 1n,
      size: 9000,
      chunkBytes: 1024,
      root: hash(0),
      chunks: [hash(1), hash(2), hash(3)],
    });
    expect(codeOf(() => segmentChunkDigestsCommand.decodeResponse(new BinaryReader(w.finish())))).toBe(
      'MALFORMED_PAYLOAD',
    );

    const short = new BinaryWriter(64);
    segmentRootsCommand.encodeResponse(short, {
      highWatermark: 1n,
      chunkBytes: 1024,
      segments: [{ baseOffset: 0n, error: null, nextOffset: 1n, size: 10, root: Buffer.alloc(31) }],
    });
    expect(codeOf(() => segmentRootsCommand.decodeResponse(new BinaryReader(short.finish())))).toBe(
      'MALFORMED_PAYLOAD',
    );

    const negative = new BinaryWriter(64);
    segmentRootsCommand.encodeRequest(negative, { ...ref, replicaId: -1, chunkBytes: 1024, baseOffsets: [] });
    expect(codeOf(() => segmentRootsCommand.decodeRequest(new BinaryReader(negative.finish())))).toBe(
      'MALFORMED_PAYLOAD',
    );
  });

  it('are data opcodes 0x0610–0x0612, dispatched by opcode outside the client registry', async () => {
    for (const [name, command] of Object.entries(ANTI_ENTROPY_COMMANDS)) {
      expect(antiEntropyCommandForOpcode(command.opcode)).toBe(name);
      expect(commandForOpcode(command.opcode)).toBeUndefined();
      expect(isDataOpcode(command.opcode)).toBe(true);
    }
    expect([Opcode.SEGMENT_ROOTS, Opcode.SEGMENT_CHUNK_DIGESTS, Opcode.SEGMENT_RANGE]).toEqual([
      0x0610, 0x0611, 0x0612,
    ]);
    const handler: AntiEntropyRequests = {
      segmentRoots: async (request) => ({ highWatermark: 9n, chunkBytes: request.chunkBytes, segments: [] }),
      segmentChunkDigests: () => Promise.reject(new Error('not asked')),
      segmentRange: async (request) => ({ size: 100, bytes: Buffer.alloc(request.length, 7) }),
    };
    const request = new BinaryWriter(64);
    segmentRangeCommand.encodeRequest(request, { ...ref, baseOffset: 0n, position: 10, length: 5 });
    const response = new BinaryWriter(64);
    await answerAntiEntropy('segmentRange', new BinaryReader(request.finish()), response, handler);
    expect(segmentRangeCommand.decodeResponse(new BinaryReader(response.finish()))).toEqual({
      size: 100,
      bytes: Buffer.alloc(5, 7),
    });
    const again = new BinaryWriter(64);
    segmentRangeCommand.encodeRequest(again, { ...ref, baseOffset: 0n, position: 10, length: 5 });
    await expect(
      answerAntiEntropy('segmentRange', new BinaryReader(again.finish()), new BinaryWriter(8), undefined),
    ).rejects.toMatchObject({ codeName: 'UNKNOWN_OPCODE' });
  });
});
