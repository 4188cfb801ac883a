// The tenants file: changes applied and refused with their codes, written atomically and read
// back, re-read when changed by another writer, and a file that does not parse refused clearly.

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TenantStore } from '../../src/security/tenant-store.js';
import { tempDir } from '../harness/temp-dir.js';

describe('TenantStore', () => {
  it('applies changes durably and refuses the ones that do not apply', async () => {
    const dir = await tempDir('ms-tenant-store-');
    const store = await TenantStore.open(dir);
    await store.change({ kind: 'add', tenant: 'acme' });
    await store.change({ kind: 'add-principal', tenant: 'acme', principal: 'User:alice' });
    await store.change({ kind: 'set-quota', tenant: 'acme', quota: { topics: 2, storageBytes: 1000 } });
    await store.change({ kind: 'set-quota', principal: 'User:bob', quota: { connections: 1 } });
    const codes = async (promise: Promise<unknown>) =>
      promise.then(
        () => 'applied',
        (e: { codeName?: string }) => e.codeName,
      );
    expect(await codes(store.change({ kind: 'add', tenant: 'acme' }))).toBe('TENANT_ALREADY_EXISTS');
    expect(await codes(store.change({ kind: 'add', tenant: 'a.b' }))).toBe('INVALID_TENANT');
    expect(await codes(store.change({ kind: 'add', tenant: '__x' }))).toBe('INVALID_TENANT');
    expect(await codes(store.change({ kind: 'remove', tenant: 'zeta' }))).toBe('TENANT_NOT_FOUND');
    await store.change({ kind: 'add', tenant: 'bravo' });
    expect(
      await codes(store.change({ kind: 'add-principal', tenant: 'bravo', principal: 'User:alice' })),
    ).toBe('INVALID_TENANT');
    expect(await codes(store.change({ kind: 'set-quota', tenant: 'acme', quota: { topics: -1 } }))).toBe(
      'INVALID_TENANT',
    );
    const reopened = await TenantStore.open(dir);
    expect(reopened.current.tenants.get('acme')).toEqual({
      name: 'acme',
      principals: ['User:alice'],
      quota: { topics: 2, storageBytes: 1000 },
    });
    expect(reopened.current.principalQuotas.get('User:bob')).toEqual({ connections: 1 });
    // Another writer changed the file: refresh reads it again.
    await reopened.change({ kind: 'remove', tenant: 'bravo' });
    expect(await store.refresh()).toBe(true);
    expect([...store.current.tenants.keys()]).toEqual(['acme']);
    expect(await store.refresh()).toBe(false);
  });

  it('refuses a file that does not parse, naming it', async () => {
    const dir = await tempDir('ms-tenant-store-');
    await writeFile(join(dir, 'tenants.json'), '{"version": 1, "tenants": {"A B": {}}}');
    await expect(TenantStore.open(dir)).rejects.toThrow(/tenants file .*tenants.json: .*tenant "A B"/);
    await writeFile(join(dir, 'tenants.json'), 'nope');
    await expect(TenantStore.open(dir)).rejects.toThrow(/not JSON/);
    expect(await readFile(join(dir, 'tenants.json'), 'utf8')).toBe('nope');
  });
});
