// PRODUCE's acks byte: 0, 1 as before, and 'all' as 0xFF (Kafka's -1 as an i8); anything else is
// refused, so an older broker refuses acks 'all' instead of acknowledging it as acks 1.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BinaryReader } from '../../../src/protocol/codec/binary-reader.js';
import { BinaryWriter } from '../../../src/protocol/codec/binary-writer.js';
import { produceCommand } from '../../../src/protocol/commands/data-commands.js';
import type { Acks } from '../../../src/protocol/commands/data-types.js';
import { ErrorCode } from '../../../src/protocol/error-codes.js';

const BATCH = Buffer.from('0000', 'hex');

function produce(acks: Acks): Buffer {
  const w = new BinaryWriter(32);
  produceCommand.encodeRequest(w, { topic: 'orders', partition: 1, acks, batch: BATCH });
  return w.finish();
}

/** The acks byte follows topic (2 + 6 bytes) and partition (4 bytes). */
const ACKS_AT = 12;

describe('PRODUCE acks', () => {
  it('writes acks 0 and 1 as before (the fixture of the earlier protocol)', () => {
    const legacy = Buffer.from(
      readFileSync(
        new URL('../../fixtures/frames/legacy/produce-request-acks-1.hex', import.meta.url),
        'utf8',
      ).trim(),
      'hex',
    );
    expect(produce(1).toString('hex')).toBe(legacy.toString('hex'));
    expect(produce(0)[ACKS_AT]).toBe(0);
  });

  it("writes 'all' as 0xFF and reads it back", () => {
    const bytes = produce('all');
    expect(bytes[ACKS_AT]).toBe(0xff);
    for (const acks of [0, 1, 'all'] as const)
      expect(produceCommand.decodeRequest(new BinaryReader(produce(acks)))).toMatchObject({
        acks,
        batch: BATCH,
      });
  });

  it('refuses any other value, naming the ones allowed', () => {
    const bytes = produce(1);
    for (const value of [2, 0x7f, 0xfe]) {
      bytes[ACKS_AT] = value;
      expect(() => produceCommand.decodeRequest(new BinaryReader(bytes))).toThrow(
        expect.objectContaining({
          code: ErrorCode.MALFORMED_PAYLOAD,
          message: expect.stringContaining(`acks ${value}; 0, 1 or 255 (all)`),
        }),
      );
    }
  });
});
