// The users file: changes are durable and atomic (no temporary file left, mode 0600), a change
// re-reads the file so that two writers do not undo each other, the broker's copy follows changes
// made by another writer (refresh), and a damaged file is refused with its path.

import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deriveCredential } from '../../src/security/credentials.js';
import { USERS_FILE, UserStore } from '../../src/security/user-store.js';
import { tempDir } from '../harness/temp-dir.js';

const credentials = (password: string) => ({ 'SCRAM-SHA-256': deriveCredential('SCRAM-SHA-256', password) });

describe('UserStore', () => {
  it('writes atomically, with mode 0600, and keeps no password', async () => {
    const dir = await tempDir('ms-users-');
    const store = await UserStore.open(dir);
    expect(store.size).toBe(0);
    await store.change({ kind: 'add', name: 'alice', credentials: credentials('hunter2') });
    expect(await readdir(dir)).toEqual([USERS_FILE]);
    expect((await stat(join(dir, USERS_FILE))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(dir, USERS_FILE), 'utf8')).not.toContain('hunter2');
    const reopened = await UserStore.open(dir);
    expect(reopened.credential('alice', 'SCRAM-SHA-256')?.storedKey).toEqual(
      store.credential('alice', 'SCRAM-SHA-256')?.storedKey,
    );
    expect(reopened.credential('alice', 'SCRAM-SHA-512')).toBeUndefined();
    // The decoy salt of unknown users is kept with them: the same after a restart.
    expect(reopened.decoySalt('SCRAM-SHA-256', 'mallory')).toEqual(
      store.decoySalt('SCRAM-SHA-256', 'mallory'),
    );
  });

  it('two writers do not undo each other, and a reader follows the file', async () => {
    const dir = await tempDir('ms-users-');
    const broker = await UserStore.open(dir);
    const offline = await UserStore.open(dir);
    await broker.change({ kind: 'add', name: 'alice', credentials: credentials('a') });
    await offline.change({ kind: 'add', name: 'bob', credentials: credentials('b') });
    expect(broker.has('bob')).toBe(false);
    expect(await broker.refresh()).toBe(true);
    expect(broker.list().map((u) => u.name)).toEqual(['alice', 'bob']);
    expect(await broker.refresh()).toBe(false);
    await broker.change({ kind: 'remove', name: 'alice' });
    expect((await UserStore.open(dir)).list().map((u) => u.name)).toEqual(['bob']);
  });

  it('refuses a damaged file, naming it', async () => {
    const dir = await tempDir('ms-users-');
    await writeFile(
      join(dir, USERS_FILE),
      '{"version": 1, "decoySecret": "AA==", "users": {"a": {"SCRAM-SHA-256": {"salt": "", "iterations": 1}}}}',
    );
    await expect(UserStore.open(dir)).rejects.toThrow(/users file .*users.json: user a:/);
    await writeFile(join(dir, USERS_FILE), 'not json');
    await expect(UserStore.open(dir)).rejects.toThrow(/INVALID_CONFIG|not JSON/);
  });
});
