// The ACL file of a data directory: changes are durable and re-read first (two writers do not undo
// each other), duplicates are kept once, removing what is not there is ACL_NOT_FOUND, a broken file
// is refused naming it, and a store sees another writer's change on refresh.

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AclEntry } from '../../src/security/acl.js';
import { FileAclStore } from '../../src/security/acl-store.js';
import { useTempDir } from '../harness/temp-dir.js';

const entry: AclEntry = {
  principal: 'User:alice',
  resourceType: 'topic',
  resourceName: 'orders',
  pattern: 'literal',
  operation: 'write',
  permission: 'allow',
};

describe('FileAclStore', () => {
  const dir = useTempDir('ms-acls-');

  it('adds, keeps duplicates once, removes, and refuses removing what is not there', async () => {
    const store = await FileAclStore.open(dir.path);
    expect(store.list()).toEqual([]);
    expect(await store.change({ kind: 'add', entries: [entry, entry] })).toBe(1);
    expect(await store.change({ kind: 'add', entries: [entry] })).toBe(0);
    const reopened = await FileAclStore.open(dir.path);
    expect(reopened.list()).toEqual([entry]);
    expect(await store.change({ kind: 'remove', entries: [entry] })).toBe(1);
    await expect(store.change({ kind: 'remove', entries: [entry] })).rejects.toThrow(/none of the 1 entries/);
    expect(JSON.parse(await readFile(join(dir.path, 'acls.json'), 'utf8'))).toEqual({ version: 1, acls: [] });
  });

  it('re-reads the file before a change and on refresh', async () => {
    const a = await FileAclStore.open(dir.path);
    const b = await FileAclStore.open(dir.path);
    await a.change({ kind: 'add', entries: [entry] });
    await b.change({ kind: 'add', entries: [{ ...entry, operation: 'read' }] });
    expect(b.list()).toHaveLength(2);
    expect(await a.refresh()).toBe(true);
    expect(a.list()).toHaveLength(2);
    expect(await a.refresh()).toBe(false);
  });

  it('refuses a broken file and a bad entry, naming the file', async () => {
    await writeFile(join(dir.path, 'acls.json'), '{"version": 1, "acls": [{"principal": "bob"}]}');
    await expect(FileAclStore.open(dir.path)).rejects.toThrow(/acls\.json: entry 0: .*principal "bob"/);
    await writeFile(join(dir.path, 'acls.json'), 'nope');
    await expect(FileAclStore.open(dir.path)).rejects.toThrow(/acls\.json: not JSON/);
  });
});
