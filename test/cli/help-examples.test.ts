// Every command's --help ends with examples (docs/operations.md promises it).
import { describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';

const COMMANDS = [
  ['topic', 'create'],
  ['topic', 'list'],
  ['topic', 'describe'],
  ['topic', 'alter'],
  ['topic', 'delete'],
  ['produce'],
  ['consume'],
  ['stream', 'read'],
  ['stream', 'tail'],
  ['group', 'list'],
  ['group', 'describe'],
  ['offsets'],
  ['status'],
  ['serve'],
  ['bench'],
  ['config', 'print'],
  ['config', 'set'],
  ['config', 'unset'],
  ['config', 'history'],
  ['config', 'rollback'],
  ['user', 'add'],
  ['user', 'passwd'],
  ['user', 'remove'],
  ['user', 'list'],
  ['acl', 'add'],
  ['acl', 'remove'],
  ['acl', 'list'],
  ['tenant', 'add'],
  ['tenant', 'remove'],
  ['tenant', 'add-principal'],
  ['tenant', 'remove-principal'],
  ['tenant', 'set-quota'],
  ['tenant', 'list'],
  ['audit', 'verify'],
  ['audit', 'tail'],
  ['cluster', 'status'],
  ['dev', 'cluster'],
  ['partition', 'reassign'],
  ['partition', 'reassignments'],
  ['partition', 'verify'],
  ['partition', 'elect-leaders'],
  ['broker', 'drain'],
  ['broker', 'undrain'],
];

describe('memorystreamer --help', () => {
  it.each(COMMANDS)('%s %s shows examples', async (...path) => {
    const out: string[] = [];
    const code = await run([...path.filter((p) => p !== undefined), '--help'], {
      env: {},
      out: (t) => out.push(t),
      err: (t) => out.push(t),
    });
    expect(code).toBe(0);
    expect(out.join('\n')).toMatch(/\nExamples?:\n .*memorystreamer /);
  });
});
