// AUTHENTICATE_START/FINISH and USER_LIST/ALTER codecs: what goes in comes out; their opcodes are
// control opcodes of the 0x07xx range; any bytes at the request decoders (which a client not yet
// authenticated may send) end in a value or a typed error, never another exception.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryStreamerError } from '../../../src/common/errors.js';
import { BinaryReader } from '../../../src/protocol/codec/binary-reader.js';
import { BinaryWriter } from '../../../src/protocol/codec/binary-writer.js';
import {
  authenticateFinishCommand,
  authenticateStartCommand,
  UserAction,
  userAlterCommand,
  userListCommand,
} from '../../../src/protocol/commands/auth-commands.js';
import type { CommandCodec } from '../../../src/protocol/commands/command.js';
import { Opcode, opcodeInfo } from '../../../src/protocol/opcodes.js';

function through<T>(write: (w: BinaryWriter) => void, read: (r: BinaryReader) => T): T {
  const w = new BinaryWriter(16);
  write(w);
  const r = new BinaryReader(w.finish());
  const value = read(r);
  r.end();
  return value;
}

function roundTrip<Q, S>(codec: CommandCodec<Q, S>, request: Q, response: S): void {
  expect(
    through(
      (w) => codec.encodeRequest(w, request),
      (r) => codec.decodeRequest(r),
    ),
  ).toEqual(request);
  expect(
    through(
      (w) => codec.encodeResponse(w, response),
      (r) => codec.decodeResponse(r),
    ),
  ).toEqual(response);
}

describe('authentication and user codecs', () => {
  it('round-trip', () => {
    roundTrip(
      authenticateStartCommand,
      { mechanism: 'SCRAM-SHA-256', message: Buffer.from('n,,n=a,r=b') },
      { message: Buffer.from('r=bc,s=QUJD,i=4096') },
    );
    roundTrip(
      authenticateFinishCommand,
      { message: Buffer.from('c=biws,r=bc,p=AAAA') },
      { message: Buffer.from('v=AAAA'), principal: 'User:a' },
    );
    roundTrip(
      userListCommand,
      {},
      {
        iterations: 8192,
        users: [
          { name: 'a', mechanisms: [{ mechanism: 'SCRAM-SHA-512', iterations: 8192 }] },
          { name: 'b', mechanisms: [] },
        ],
      },
    );
    roundTrip(
      userAlterCommand,
      {
        action: UserAction.ADD,
        name: 'a',
        credentials: [
          {
            mechanism: 'SCRAM-SHA-256',
            salt: Buffer.alloc(16, 1),
            iterations: 4096,
            storedKey: Buffer.alloc(32, 2),
            serverKey: Buffer.alloc(32, 3),
          },
        ],
      },
      {},
    );
  });

  it('are control opcodes of the 0x07xx range', () => {
    for (const code of [
      Opcode.AUTHENTICATE_START,
      Opcode.AUTHENTICATE_FINISH,
      Opcode.USER_LIST,
      Opcode.USER_ALTER,
    ]) {
      expect(code >> 8).toBe(0x07);
      expect(opcodeInfo(code)?.control).toBe(true);
    }
  });

  it('refuse an unknown user action and a null message', () => {
    const bad = new BinaryWriter(8).u8(9).string('a').u8(0).finish();
    expect(() => userAlterCommand.decodeRequest(new BinaryReader(bad))).toThrow(
      /MALFORMED_PAYLOAD|user action 9/,
    );
    const nullMessage = new BinaryWriter(8).bytes(null).finish();
    expect(() => authenticateFinishCommand.decodeRequest(new BinaryReader(nullMessage))).toThrow(/null/);
  });

  it('any bytes end in a request or a typed error', () => {
    const decoders = [authenticateStartCommand, authenticateFinishCommand, userListCommand, userAlterCommand];
    fc.assert(
      fc.property(fc.nat(decoders.length - 1), fc.uint8Array({ maxLength: 200 }), (which, bytes) => {
        try {
          const reader = new BinaryReader(Buffer.from(bytes));
          decoders[which]!.decodeRequest(reader);
          reader.end();
        } catch (error) {
          expect(error).toBeInstanceOf(MemoryStreamerError);
        }
      }),
      { numRuns: process.env.CI === 'true' ? 200_000 : 20_000 },
    );
  });
});
