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
  });
});
