// PARTITION_REASSIGN, REASSIGNMENT_STATUS and ELECT_LEADERS codecs: what goes in comes out, the
// opcodes are registered in the cluster-operations range, and malformed payloads are refused.
import { describe, expect, it } from 'vitest';
import { BinaryReader } from '../../../src/protocol/codec/binary-reader.js';
import { BinaryWriter } from '../../../src/protocol/codec/binary-writer.js';
import type { CommandCodec } from '../../../src/protocol/commands/command.js';
import {
  electLeadersCommand,
  reassignmentStatusCommand,
  reassignPartitionsCommand,
} from '../../../src/protocol/commands/reassign-commands.js';
import { commandForOpcode } from '../../../src/protocol/commands/registry.js';
import { Opcode, opcodeInfo } from '../../../src/protocol/opcodes.js';

function roundTrip<Q, S>(codec: CommandCodec<Q, S>, request: Q, response: S): { request: Q; response: S } {
  const wq = new BinaryWriter(16);
  codec.encodeRequest(wq, request);
  const rq = new BinaryReader(wq.finish());
  const decodedRequest = codec.decodeRequest(rq);
  rq.end();
  const ws = new BinaryWriter(16);
  codec.encodeResponse(ws, response);
  const rs = new BinaryReader(ws.finish());
  const decodedResponse = codec.decodeResponse(rs);
  rs.end();
  return { request: decodedRequest, response: decodedResponse };
}

describe('reassignment commands', () => {
  it('are control opcodes of 0x012x, dispatched by name', () => {
    expect(commandForOpcode(Opcode.PARTITION_REASSIGN)).toBe('reassignPartitions');
    expect(commandForOpcode(Opcode.REASSIGNMENT_STATUS)).toBe('reassignmentStatus');
    expect(commandForOpcode(Opcode.ELECT_LEADERS)).toBe('electLeaders');
    for (const code of [Opcode.PARTITION_REASSIGN, Opcode.REASSIGNMENT_STATUS, Opcode.ELECT_LEADERS]) {
      expect(code & 0xfff0).toBe(0x0120);
      expect(opcodeInfo(code)?.control).toBe(true);
    }
  });

  it('PARTITION_REASSIGN round-trips a plan and what started', () => {
    const plan = {
      partitions: [
        { topic: 'orders', partition: 0, replicas: [2, 3, 1] },
        { topic: 'audit', partition: 7, replicas: [4] },
      ],
      allowReplicationFactorChange: true,
      replace: true,
    };
    const started = { partitions: [{ topic: 'orders', partition: 0, from: [1, 2, 3], to: [2, 3, 1] }] };
    expect(roundTrip(reassignPartitionsCommand, plan, started)).toEqual({ request: plan, response: started });
    // The flag is left out when false.
    expect(roundTrip(reassignPartitionsCommand, { partitions: [] }, { partitions: [] }).request).toEqual({
      partitions: [],
    });
  });

  it('REASSIGNMENT_STATUS round-trips the progress, a partition without a leader included', () => {
    const status = {
      partitions: [
        { topic: 'orders', partition: 0, replicas: [1, 2, 3], target: [2, 3], isr: [1, 2], leader: 1 },
        { topic: 'orders', partition: 1, replicas: [1, 3], target: [3], isr: [1], leader: -1 },
      ],
    };
    expect(roundTrip(reassignmentStatusCommand, {}, status).response).toEqual(status);
  });

  it('ELECT_LEADERS round-trips all topics or a list, and the moves', () => {
    const moved = { moved: [{ topic: 't', partition: 2, from: 3, to: 1, leaderEpoch: 9 }] };
    expect(roundTrip(electLeadersCommand, {}, moved)).toEqual({ request: {}, response: moved });
    expect(roundTrip(electLeadersCommand, { topics: ['a', 'b'] }, { moved: [] }).request).toEqual({
      topics: ['a', 'b'],
    });
  });

  it('refuses malformed payloads', () => {
    const w = new BinaryWriter(16);
    w.u8(0).u32(1).string('t').u32(0).u32(1).i32(-2);
    expect(() => reassignPartitionsCommand.decodeRequest(new BinaryReader(w.finish()))).toThrow(
      /broker id -2/,
    );
    const flags = new BinaryWriter(16);
    flags.u8(4).u32(0);
    expect(() => reassignPartitionsCommand.decodeRequest(new BinaryReader(flags.finish()))).toThrow(
      /flags 4/,
    );
    const all = new BinaryWriter(16);
    all.bool(true).u32(1).string('t');
    expect(() => electLeadersCommand.decodeRequest(new BinaryReader(all.finish()))).toThrow(/allTopics/);
    const status = new BinaryWriter(16);
    status.u32(1).string('t').u32(0).u32(0).u32(0).u32(0).i32(-5);
    expect(() => reassignmentStatusCommand.decodeResponse(new BinaryReader(status.finish()))).toThrow(
      /leader -5/,
    );
  });
});
