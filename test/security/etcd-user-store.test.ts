// The users of a cluster in a real etcd: two stores stand for two brokers of one cluster. A user
// added through one is seen by the other (its watch), a new password and a removal likewise; add
// of a taken name and passwd/remove of an unknown one are refused; both show an unknown user the
// same decoy salt; another cluster name on the same etcd has its own users; a record no broker
// wrote is ignored without hiding the others.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseClusterUrl } from '../../src/cluster/control-plane/cluster-url.js';
import { ControlPlane } from '../../src/cluster/control-plane/control-plane.js';
import { clusterPrefix } from '../../src/cluster/control-plane/metadata-keys.js';
import { deriveCredential } from '../../src/security/credentials.js';
import { EtcdUserStore } from '../../src/security/etcd-user-store.js';
import type { UserCredentials } from '../../src/security/user-store.js';
import { type EtcdProcess, etcdAvailable, startEtcd } from '../harness/etcd.js';
import { until } from '../harness/until.js';

let etcd: EtcdProcess;
const opened: EtcdUserStore[] = [];

async function open(name: string): Promise<EtcdUserStore> {
  const url = `etcd://${etcd.endpoint.replace('http://', '')}/${name}`;
  const address = parseClusterUrl(url);
  const store = await EtcdUserStore.open({ address, prefix: clusterPrefix(address.name), url });
  opened.push(store);
  return store;
}

function credentials(password: string): UserCredentials {
  return { 'SCRAM-SHA-256': deriveCredential('SCRAM-SHA-256', password) };
}

describe.skipIf(!etcdAvailable())('EtcdUserStore', () => {
  beforeAll(async () => {
    etcd = await startEtcd();
  }, 30_000);
  afterAll(async () => {
    for (const store of opened) await store.close();
    await etcd?.stop();
  });

  it('shares users between the brokers of a cluster: added, changed and removed on one, seen by the other', async () => {
    const one = await open('shared');
    const two = await open('shared');
    expect(one.size).toBe(0);
    await one.change({ kind: 'add', name: 'alice', credentials: credentials('first') });
    // The store that made the change holds it at once; the other when its watch hears of it.
    expect(one.has('alice')).toBe(true);
    await until(() => (two.has('alice') ? true : null), { what: 'the other store sees alice' });
    const first = two.credential('alice', 'SCRAM-SHA-256');
    expect(first?.storedKey).toEqual(one.credential('alice', 'SCRAM-SHA-256')?.storedKey);

    await two.change({ kind: 'passwd', name: 'alice', credentials: credentials('second') });
    await until(() =>
      one.credential('alice', 'SCRAM-SHA-256')?.storedKey.equals(first!.storedKey) === false ? true : null,
    );
    expect(one.credential('alice', 'SCRAM-SHA-256')?.storedKey).toEqual(
      two.credential('alice', 'SCRAM-SHA-256')?.storedKey,
    );

    await one.change({ kind: 'remove', name: 'alice' });
    await until(() => (two.has('alice') ? null : true), { what: 'the other store drops alice' });
    expect(two.credential('alice', 'SCRAM-SHA-256')).toBeUndefined();
    expect(two.size).toBe(0);

    // A store opened later loads what is there.
    await two.change({ kind: 'add', name: 'bob', credentials: credentials('b') });
    const three = await open('shared');
    expect(three.list().map((u) => u.name)).toEqual(['bob']);
    expect(three.list()[0]?.mechanisms).toEqual([{ mechanism: 'SCRAM-SHA-256', iterations: 4096 }]);
  });

  it('refuses a taken name, an unknown user and a change without credentials', async () => {
    const store = await open('refusals');
    await store.change({ kind: 'add', name: 'carol', credentials: credentials('c') });
    await expect(
      store.change({ kind: 'add', name: 'carol', credentials: credentials('c') }),
    ).rejects.toMatchObject({ codeName: 'USER_ALREADY_EXISTS' });
    await expect(
      store.change({ kind: 'passwd', name: 'nobody', credentials: credentials('n') }),
    ).rejects.toMatchObject({ codeName: 'USER_NOT_FOUND' });
    await expect(store.change({ kind: 'remove', name: 'nobody' })).rejects.toMatchObject({
      codeName: 'USER_NOT_FOUND',
    });
    await expect(store.change({ kind: 'add', name: 'dave', credentials: {} })).rejects.toMatchObject({
      codeName: 'INVALID_CREDENTIAL',
    });
    await expect(
      store.change({ kind: 'add', name: 'no/slash', credentials: credentials('x') }),
    ).rejects.toMatchObject({ codeName: 'INVALID_CREDENTIAL' });
  });

  it('shows an unknown user the same decoy salt on every broker, and keeps clusters apart', async () => {
    const one = await open('decoy');
    const two = await open('decoy');
    expect(one.decoySalt('SCRAM-SHA-256', 'ghost')).toEqual(two.decoySalt('SCRAM-SHA-256', 'ghost'));
    const other = await open('elsewhere');
    expect(other.decoySalt('SCRAM-SHA-256', 'ghost')).not.toEqual(one.decoySalt('SCRAM-SHA-256', 'ghost'));
    await one.change({ kind: 'add', name: 'erin', credentials: credentials('e') });
    expect(other.has('erin')).toBe(false);
    expect(one.path).toContain('/memorystreamer/decoy/users/');
    expect(one.addCommand).toContain('--cluster etcd://');
  });

  it('ignores a user record no broker wrote, and still serves the others', async () => {
    const store = await open('damaged');
    await store.change({ kind: 'add', name: 'frank', credentials: credentials('f') });
    const url = `etcd://${etcd.endpoint.replace('http://', '')}/damaged`;
    const plane = await ControlPlane.connect({ address: parseClusterUrl(url) });
    try {
      expect(
        await plane.writeIfUnchanged('users/mallory', 0n, [['users/mallory', '{"SCRAM-SHA-256":1}']]),
      ).toBe(true);
    } finally {
      await plane.close();
    }
    const reopened = await open('damaged');
    expect(reopened.has('mallory')).toBe(false);
    expect(reopened.has('frank')).toBe(true);
  });
});
