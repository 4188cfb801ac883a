// BROKER_HEARTBEAT's codec: the request with the broker's registration and the controller term it
// believes in, the answer with the fencing time and the metadata revision; bad fields refused.
import { describe, expect, it } from 'vitest';
import { BinaryReader } from '../../../src/protocol/codec/binary-reader.js';
import { BinaryWriter } from '../../../src/protocol/codec/binary-writer.js';
import { brokerHeartbeatCommand } from '../../../src/protocol/commands/broker-heartbeat-command.js';
import { commandForOpcode } from '../../../src/protocol/commands/registry.js';
import { Opcode, opcodeInfo } from '../../../src/protocol/opcodes.js';

function through<T>(encode: (w: BinaryWriter) => void, decode: (r: BinaryReader) => T): T {
  const w = new BinaryWriter(16);
  encode(w);
  const r = new BinaryReader(w.finish());
  const value = decode(r);
  r.end();
  return value;
}

describe('BROKER_HEARTBEAT', () => {
  it('is control opcode 0x0603', () => {
    expect(Opcode.BROKER_HEARTBEAT).toBe(0x0603);
    expect(opcodeInfo(0x0603)?.control).toBe(true);
    expect(commandForOpcode(0x0603)).toBe('brokerHeartbeat');
  });

  it('round-trips requests and answers', () => {
    for (const request of [
      { brokerId: 3, startedAtMs: 1_764_000_000_123, controllerEpoch: 42n, shuttingDown: false },
      { brokerId: 0, startedAtMs: 0, controllerEpoch: -1n, shuttingDown: true },
    ])
      expect(
        through(
          (w) => brokerHeartbeatCommand.encodeRequest(w, request),
          (r) => brokerHeartbeatCommand.decodeRequest(r),
        ),
      ).toEqual(request);
    const answer = { controllerEpoch: 7n, fencingTimeMs: 300, metadataRevision: 123_456n };
    expect(
      through(
        (w) => brokerHeartbeatCommand.encodeResponse(w, answer),
        (r) => brokerHeartbeatCommand.decodeResponse(r),
      ),
    ).toEqual(answer);
  });

  it('refuses a negative broker id and an epoch below -1', () => {
    const bad = (brokerId: number, epoch: bigint) => {
      const w = new BinaryWriter(16);
      w.i32(brokerId).u64(1n).i64(epoch).bool(false);
      return () => brokerHeartbeatCommand.decodeRequest(new BinaryReader(w.finish()));
    };
    expect(bad(-1, 1n)).toThrow(/MALFORMED_PAYLOAD|broker id -1/);
    expect(bad(1, -2n)).toThrow(/controller epoch -2/);
  });
});
