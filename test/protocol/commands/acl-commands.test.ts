// ACL_LIST and ACL_ALTER payloads round-trip, and bad codes or counts are MALFORMED_PAYLOAD.

import { describe, expect, it } from 'vitest';
import { BinaryReader } from '../../../src/protocol/codec/binary-reader.js';
import { BinaryWriter } from '../../../src/protocol/codec/binary-writer.js';
import {
  AclAction,
  type AclEntry,
  aclAlterCommand,
  aclListCommand,
} from '../../../src/protocol/commands/acl-commands.js';

const entry: AclEntry = {
  principal: 'User:alice',
  resourceType: 'group',
  resourceName: 'g-',
  pattern: 'prefix',
  operation: 'describe_configs',
  permission: 'deny',
};

describe('ACL commands', () => {
  it('round-trips requests and responses', () => {
    const w = new BinaryWriter(64);
    aclAlterCommand.encodeRequest(w, {
      action: AclAction.REMOVE,
      entries: [entry, { ...entry, principal: '*' }],
    });
    const r = new BinaryReader(w.finish());
    expect(aclAlterCommand.decodeRequest(r)).toEqual({
      action: AclAction.REMOVE,
      entries: [entry, { ...entry, principal: '*' }],
    });
    r.end();
    const l = new BinaryWriter(64);
    aclListCommand.encodeResponse(l, { entries: [entry] });
    expect(aclListCommand.decodeResponse(new BinaryReader(l.finish()))).toEqual({ entries: [entry] });
  });

  it('refuses unknown codes and counts past the payload', () => {
    const w = new BinaryWriter(64);
    aclAlterCommand.encodeRequest(w, { action: AclAction.ADD, entries: [entry] });
    const bytes = w.finish();
    const badOperation = Buffer.from(bytes);
    badOperation[badOperation.length - 2] = 200;
    expect(() => aclAlterCommand.decodeRequest(new BinaryReader(badOperation))).toThrow(/operation code 200/);
    const badAction = Buffer.from(bytes);
    badAction[0] = 9;
    expect(() => aclAlterCommand.decodeRequest(new BinaryReader(badAction))).toThrow(/acl action 9/);
    const badCount = Buffer.from(bytes);
    badCount.writeUInt32LE(1_000_000, 1);
    expect(() => aclAlterCommand.decodeRequest(new BinaryReader(badCount))).toThrow(/count 1000000/);
  });
});
