// Every opcode of the wire is authorized somehow: a command of the registry has an entry in the
// permission table, any other opcode a rule. A new opcode without either fails here, so it cannot
// reach the broker unchecked. And the table asks what Kafka asks for the like request.

import { describe, expect, it } from 'vitest';
import { COMMANDS, type CommandName, commandForOpcode } from '../../src/protocol/commands/registry.js';
import { OPCODE_TABLE, type OpcodeName } from '../../src/protocol/opcodes.js';
import {
  filterResponse,
  OPCODE_PERMISSIONS,
  REQUEST_PERMISSIONS,
  requirementsOf,
} from '../../src/security/request-permissions.js';

describe('request permissions', () => {
  it('has an entry for every command and a rule for every other opcode', () => {
    for (const name of Object.keys(COMMANDS) as CommandName[])
      expect(typeof REQUEST_PERMISSIONS[name], `command ${name}`).toBe('function');
    const missing = (Object.keys(OPCODE_TABLE) as OpcodeName[]).filter((opcode) => {
      const command = commandForOpcode(OPCODE_TABLE[opcode].code);
      return command === undefined
        ? OPCODE_PERMISSIONS[opcode] === undefined
        : REQUEST_PERMISSIONS[command] === undefined;
    });
    expect(missing).toEqual([]);
  });

  it('asks what the request touches', () => {
    const needs = (name: CommandName, request: unknown) =>
      requirementsOf(name, request as never).map(
        (r) => `${r.operation} ${r.resource.type}:${r.resource.name}`,
      );
    expect(needs('produce', { topic: 'orders', partition: 0 })).toEqual(['write topic:orders']);
    expect(needs('fetch', { topic: 'orders' })).toEqual(['read topic:orders']);
    expect(needs('subscribe', { topic: 'orders' })).toEqual(['read topic:orders']);
    expect(
      needs('commitOffsets', {
        groupId: 'g',
        offsets: [
          { topic: 'a', partition: 0 },
          { topic: 'a', partition: 1 },
          { topic: 'b', partition: 0 },
        ],
      }),
    ).toEqual(['read group:g', 'read topic:a', 'read topic:b']);
    expect(needs('deleteTopic', { name: 'x' })).toEqual(['delete topic:x']);
    expect(needs('metadata', {})).toEqual([]);
    expect(needs('metadata', { topics: ['a', 'a'] })).toEqual(['describe topic:a']);
    expect(needs('configSet', {})).toEqual(['alter_configs cluster:cluster']);
  });

  it('filters topic and group lists to what may be described', () => {
    const may = (_type: string, name: string) => name.startsWith('ok');
    const listed = filterResponse('listTopics', { topics: [{ name: 'ok1' }, { name: 'no' }] } as never, may);
    expect(listed.topics.map((t) => t.name)).toEqual(['ok1']);
    const groups = filterResponse(
      'listGroups',
      { groups: [{ groupId: 'no' }, { groupId: 'ok' }] } as never,
      may,
    );
    expect(groups.groups.map((g) => g.groupId)).toEqual(['ok']);
  });
});
