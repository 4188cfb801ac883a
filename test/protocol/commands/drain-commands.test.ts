// BROKER_DRAIN's codec: drain and cancel requests, and the answer with what moved and what stayed.
import { describe, expect, it } from 'vitest';
import { BinaryReader } from '../../../src/protocol/codec/binary-reader.js';
import { BinaryWriter } from '../../../src/protocol/codec/binary-writer.js';
import {
  type DrainBrokerResponse,
  drainBrokerCommand,
} from '../../../src/protocol/commands/drain-commands.js';
import { commandForOpcode } from '../../../src/protocol/commands/registry.js';
import { Opcode } from '../../../src/protocol/opcodes.js';

function through<T>(encode: (w: BinaryWriter) => void, decode: (r: BinaryReader) => T): T {
  const w = new BinaryWriter(16);
  encode(w);
  const r = new BinaryReader(w.finish());
  const value = decode(r);
  r.end();
  return value;
}

describe('BROKER_DRAIN', () => {
  it('is opcode 0x0122', () => {
    expect(Opcode.BROKER_DRAIN).toBe(0x0122);
    expect(commandForOpcode(0x0122)).toBe('drainBroker');
  });

  it('round-trips a drain and a cancel', () => {
    for (const request of [{ brokerId: 2 }, { brokerId: 0, cancel: true }])
      expect(
        through(
          (w) => drainBrokerCommand.encodeRequest(w, request),
          (r) => drainBrokerCommand.decodeRequest(r),
        ),
      ).toEqual(request);
  });

  it('round-trips what moved and what stayed', () => {
    const response: DrainBrokerResponse = {
      brokerId: 2,
      drained: true,
      drainedBrokers: [2, 5],
      moved: [
        { topic: 'orders', partition: 0, from: 2, to: 3, leaderEpoch: 4 },
        { topic: 'audit', partition: 3, from: 2, to: 1, leaderEpoch: 1 },
      ],
      stayed: [{ topic: 'solo', partition: 0 }],
    };
    expect(
      through(
        (w) => drainBrokerCommand.encodeResponse(w, response),
        (r) => drainBrokerCommand.decodeResponse(r),
      ),
    ).toEqual(response);
  });

  it('refuses a negative broker id', () => {
    const w = new BinaryWriter(8);
    w.i32(-1).bool(false);
    expect(() => drainBrokerCommand.decodeRequest(new BinaryReader(w.finish()))).toThrow(/broker id -1/);
  });
});
