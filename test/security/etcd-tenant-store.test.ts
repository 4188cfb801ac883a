// The tenant registry of a cluster in a real etcd: two stores stand for two brokers of one
// cluster. A tenant created through one exists on the other (its watch tells it, and refresh()
// says the registry changed); quotas likewise; concurrent changes through both land; the registry
// rules hold across brokers (a principal in one tenant only); a value no broker wrote keeps the last
// good registry; a store switched from its file to etcd says the registry changed.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseClusterUrl } from '../../src/cluster/control-plane/cluster-url.js';
import { ControlPlane } from '../../src/cluster/control-plane/control-plane.js';
import { clusterPrefix } from '../../src/cluster/control-plane/metadata-keys.js';
import { EtcdTenantBackend, openEtcdTenantStore } from '../../src/security/etcd-tenant-store.js';
import { TenantStore } from '../../src/security/tenant-store.js';
import { type EtcdProcess, etcdAvailable, startEtcd } from '../harness/etcd.js';
import { makeTempDir, removeTempDir } from '../harness/temp-dir.js';
import { until } from '../harness/until.js';

let etcd: EtcdProcess;
const opened: TenantStore[] = [];

function optionsOf(name: string) {
  const url = `etcd://${etcd.endpoint.replace('http://', '')}/${name}`;
  const address = parseClusterUrl(url);
  return { address, prefix: clusterPrefix(address.name), url };
}

async function open(name: string): Promise<TenantStore> {
  const store = await openEtcdTenantStore(optionsOf(name));
  opened.push(store);
  return store;
}

describe.skipIf(!etcdAvailable())('tenants in etcd', () => {
  beforeAll(async () => {
    etcd = await startEtcd();
  }, 30_000);
  afterAll(async () => {
    for (const store of opened) await store.close();
    await etcd?.stop();
  });

  it('shares tenants, memberships and quotas between the brokers of a cluster', async () => {
    const one = await open('shared');
    const two = await open('shared');
    let told = 0;
    two.onChange(() => told++);
    expect(await two.refresh()).toBe(true); // the first read
    expect(await two.refresh()).toBe(false);
    await one.change({ kind: 'add', tenant: 'acme' });
    await one.change({ kind: 'add-principal', tenant: 'acme', principal: 'User:alice' });
    expect(one.current.tenants.get('acme')?.principals).toEqual(['User:alice']);
    await until(() => two.current.tenants.get('acme')?.principals.length === 1, {
      what: 'the other store sees acme and alice',
    });
    expect(told).toBeGreaterThan(0);
    expect(await two.refresh()).toBe(true);

    await two.change({ kind: 'set-quota', tenant: 'acme', quota: { produceBytesPerSec: 1000 } });
    await two.change({ kind: 'set-quota', principal: 'User:carol', quota: { connections: 2 } });
    await until(() => one.current.tenants.get('acme')?.quota.produceBytesPerSec === 1000, {
      what: 'the first store sees the quota',
    });
    await until(() => one.current.principalQuotas.get('User:carol')?.connections === 2);

    // The rules hold across brokers: alice is in acme (added through one), so not in bravo.
    await two.change({ kind: 'add', tenant: 'bravo' });
    await expect(
      two.change({ kind: 'add-principal', tenant: 'bravo', principal: 'User:alice' }),
    ).rejects.toMatchObject({ codeName: 'INVALID_TENANT' });
    await expect(one.change({ kind: 'add', tenant: 'bravo' })).rejects.toMatchObject({
      codeName: 'TENANT_ALREADY_EXISTS',
    });

    await one.change({ kind: 'remove', tenant: 'acme' });
    await until(() => !two.current.tenants.has('acme'), { what: 'the other store drops acme' });
    const three = await open('shared');
    expect([...three.current.tenants.keys()]).toEqual(['bravo']);
    expect(three.path).toContain('/memorystreamer/shared/tenant-registry');
  });

  it('lands concurrent changes through two brokers', async () => {
    const one = await open('concurrent');
    const two = await open('concurrent');
    const changes: Promise<unknown>[] = [];
    for (let i = 0; i < 8; i++) {
      changes.push(one.change({ kind: 'add', tenant: `one-${i}` }));
      changes.push(two.change({ kind: 'add', tenant: `two-${i}` }));
    }
    await Promise.all(changes);
    const three = await open('concurrent');
    expect(three.current.tenants.size).toBe(16);
    await until(() => one.current.tenants.size === 16 && two.current.tenants.size === 16);
  });

  it('keeps the last good registry when the key holds something no broker wrote', async () => {
    const store = await open('damaged');
    await store.change({ kind: 'add', tenant: 'kept' });
    const plane = await ControlPlane.connect({ address: optionsOf('damaged').address });
    const reasons: string[] = [];
    const watching = await EtcdTenantBackend.open({
      ...optionsOf('damaged'),
      onResync: (r) => reasons.push(r),
    });
    try {
      const { value, modRevision } = await plane.read('tenant-registry');
      expect(value).not.toBeNull();
      expect(
        await plane.writeIfUnchanged('tenant-registry', modRevision, [['tenant-registry', '{"version":7}']]),
      ).toBe(true);
      await until(() => reasons.length > 0, { what: 'the watch reports the bad value' });
      expect(reasons[0]).toMatch(/tenant-registry/);
      expect([...watching.current.tenants.keys()]).toEqual(['kept']);
      // A change over it is refused with the problem, not applied over a registry it cannot read.
      await expect(store.change({ kind: 'add', tenant: 'other' })).rejects.toMatchObject({
        codeName: 'INVALID_CONFIG',
      });
    } finally {
      await watching.close();
      await plane.close();
    }
  });

  it('switches a store from its file to etcd, and says the registry changed', async () => {
    const dir = await makeTempDir('ms-etcd-tenants-');
    try {
      const file = await TenantStore.open(dir);
      await file.change({ kind: 'add', tenant: 'local' });
      expect(await file.refresh()).toBe(false);
      const shared = await open('switch');
      await shared.change({ kind: 'add', tenant: 'cluster-wide' });
      let told = 0;
      file.onChange(() => told++);
      await file.useBackend(await EtcdTenantBackend.open(optionsOf('switch')));
      expect(told).toBe(1);
      expect(await file.refresh()).toBe(true);
      expect([...file.current.tenants.keys()]).toEqual(['cluster-wide']);
      await shared.change({ kind: 'add', tenant: 'later' });
      await until(() => told >= 2 && file.current.tenants.has('later'), {
        what: 'the switched store follows etcd',
      });
      await file.close();
    } finally {
      await removeTempDir(dir);
    }
  });
});
