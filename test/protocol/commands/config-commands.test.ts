// CONFIG_SET, CONFIG_HISTORY and CONFIG_ROLLBACK codecs: what goes in comes out, and what is refused.
import { describe, expect, it } from 'vitest';
import { BinaryReader } from '../../../src/protocol/codec/binary-reader.js';
import { BinaryWriter } from '../../../src/protocol/codec/binary-writer.js';
import type { CommandCodec } from '../../../src/protocol/commands/command.js';
import {
  type ConfigVersionView,
  configHistoryCommand,
  configRollbackCommand,
  configSetCommand,
} from '../../../src/protocol/commands/config-commands.js';
import { commandForOpcode } from '../../../src/protocol/commands/registry.js';
import { Opcode, opcodeInfo } from '../../../src/protocol/opcodes.js';

function roundTrip<Q, S>(
  codec: CommandCodec<Q, S>,
  request: Q | null,
  response: S | null,
): [Q | null, S | null] {
  const decode = <T>(write: (w: BinaryWriter) => void, read: (r: BinaryReader) => T): T => {
    const w = new BinaryWriter(16);
    write(w);
    const r = new BinaryReader(w.finish());
    const value = read(r);
    r.end();
    return value;
  };
  return [
    request === null
      ? null
      : decode(
          (w) => codec.encodeRequest(w, request),
          (r) => codec.decodeRequest(r),
        ),
    response === null
      ? null
      : decode(
          (w) => codec.encodeResponse(w, response),
          (r) => codec.decodeResponse(r),
        ),
  ];
}

const version: ConfigVersionView = {
  version: 7,
  topic: null,
  changedBy: 'alice@host via broker 2',
  changedAtMs: 1_700_000_000_123,
  note: 'incident 42',
  settings: { 'log.level': 'debug', 'server.idle_timeout': 30_000, flag: true },
  changes: [
    { key: 'log.level', from: 'info', to: 'debug' },
    { key: 'server.idle_timeout', from: null, to: 30_000 },
    { key: 'x', from: false, to: null },
  ],
};

describe('config commands', () => {
  it('are control opcodes of 0x0110-0x0112, known to the registry', () => {
    expect([Opcode.CONFIG_SET, Opcode.CONFIG_HISTORY, Opcode.CONFIG_ROLLBACK]).toEqual([
      0x0110, 0x0111, 0x0112,
    ]);
    expect(opcodeInfo(0x0110)?.control).toBe(true);
    expect(commandForOpcode(0x0111)).toBe('configHistory');
  });

  it('CONFIG_SET carries the settings as written, who and why', () => {
    const request = {
      settings: { 'server.idle_timeout': '30s', 'log.level': 'debug' },
      changedBy: 'a@b',
      note: 'n',
    };
    expect(roundTrip(configSetCommand, request, version)).toEqual([request, version]);
    expect(roundTrip(configSetCommand, { settings: { a: '1' } }, null)[0]).toEqual({ settings: { a: '1' } });
    const unset = { settings: {}, unset: ['log.level', 'server.idle_timeout'] };
    expect(roundTrip(configSetCommand, unset, null)[0]).toEqual(unset);
  });

  it('CONFIG_HISTORY tells every scope, the brokers and one topic apart', () => {
    for (const request of [{}, { topic: null }, { topic: 'orders' }])
      expect(roundTrip(configHistoryCommand, request, null)[0]).toEqual(request);
    const topicVersion = { ...version, topic: 'orders', changes: [] };
    expect(roundTrip(configHistoryCommand, null, { versions: [version, topicVersion] })[1]).toEqual({
      versions: [version, topicVersion],
    });
  });

  it('CONFIG_ROLLBACK carries the version and who', () => {
    expect(roundTrip(configRollbackCommand, { version: 3, changedBy: 'me' }, version)).toEqual([
      { version: 3, changedBy: 'me' },
      version,
    ]);
  });

  it('refuses an unknown history scope and a value that is not JSON', () => {
    expect(() => configHistoryCommand.decodeRequest(new BinaryReader(Buffer.from([3])))).toThrow(
      expect.objectContaining({ codeName: 'MALFORMED_PAYLOAD' }),
    );
    // A version with one setting whose value text is not JSON.
    const bad = new BinaryWriter(16);
    bad.int(1).u8(0).string('x').int(1).string('').u32(1).string('k').string('{nope').u32(0);
    expect(() => configRollbackCommand.decodeResponse(new BinaryReader(bad.finish()))).toThrow(
      expect.objectContaining({ codeName: 'MALFORMED_PAYLOAD' }),
    );
  });
});
