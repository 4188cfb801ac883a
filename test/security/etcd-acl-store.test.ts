// The ACLs of a cluster in a real etcd: two stores stand for two brokers of one cluster. Entries
// added through one are seen by the other (its watch, which tells its listeners), removals
// likewise; two stores adding different entries at once both land; an add of entries already there
// changes nothing and a remove of none there is ACL_NOT_FOUND; another cluster name has its own
// entries; a record no broker wrote allows nothing and hides no other entry.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseClusterUrl } from '../../src/cluster/control-plane/cluster-url.js';
import { ControlPlane } from '../../src/cluster/control-plane/control-plane.js';
import { clusterPrefix } from '../../src/cluster/control-plane/metadata-keys.js';
import type { AclEntry } from '../../src/security/acl.js';
import { aclEntryKey, EtcdAclStore } from '../../src/security/etcd-acl-store.js';
import { type EtcdProcess, etcdAvailable, startEtcd } from '../harness/etcd.js';
import { until } from '../harness/until.js';

let etcd: EtcdProcess;
const opened: EtcdAclStore[] = [];

function urlOf(name: string): string {
  return `etcd://${etcd.endpoint.replace('http://', '')}/${name}`;
}

async function open(name: string): Promise<EtcdAclStore> {
  const url = urlOf(name);
  const address = parseClusterUrl(url);
  const store = await EtcdAclStore.open({ address, prefix: clusterPrefix(address.name), url });
  opened.push(store);
  return store;
}

function entry(principal: string, topic: string, operation: AclEntry['operation'] = 'write'): AclEntry {
  return {
    principal,
    resourceType: 'topic',
    resourceName: topic,
    pattern: 'literal',
    operation,
    permission: 'allow',
  };
}

const sorted = (entries: readonly AclEntry[]) =>
  entries.map((e) => `${e.principal} ${e.resourceName} ${e.operation}`).sort();

describe.skipIf(!etcdAvailable())('EtcdAclStore', () => {
  beforeAll(async () => {
    etcd = await startEtcd();
  }, 30_000);
  afterAll(async () => {
    for (const store of opened) await store.close();
    await etcd?.stop();
  });

  it('shares entries between the brokers of a cluster and tells the other at once', async () => {
    const one = await open('shared');
    const two = await open('shared');
    let told = 0;
    two.onChange(() => told++);
    expect(one.list()).toEqual([]);
    expect(
      await one.change({
        kind: 'add',
        entries: [entry('User:alice', 'orders'), entry('User:bob', 'orders')],
      }),
    ).toBe(2);
    // The store that made the change holds it at once; the other when its watch hears of it.
    expect(sorted(one.list())).toEqual(['User:alice orders write', 'User:bob orders write']);
    await until(() => two.list().length === 2, { what: 'the other store sees both entries' });
    expect(told).toBeGreaterThan(0);
    expect(sorted(two.list())).toEqual(sorted(one.list()));

    expect(await two.change({ kind: 'remove', entries: [entry('User:alice', 'orders')] })).toBe(1);
    await until(() => one.list().length === 1, { what: 'the first store drops alice' });
    expect(sorted(one.list())).toEqual(['User:bob orders write']);

    // A store opened later loads what is there.
    const three = await open('shared');
    expect(sorted(three.list())).toEqual(['User:bob orders write']);
    expect(three.location).toContain('/memorystreamer/shared/acls/');
    expect(three.addCommand).toContain(`--cluster ${urlOf('shared')}`);
  });

  it('lands concurrent adds of different entries through two brokers', async () => {
    const one = await open('concurrent');
    const two = await open('concurrent');
    const adds: Promise<number>[] = [];
    for (let i = 0; i < 10; i++) {
      adds.push(
        one.change({ kind: 'add', entries: [entry('User:one', `t${i}`), entry('User:both', 'shared')] }),
      );
      adds.push(
        two.change({ kind: 'add', entries: [entry('User:two', `t${i}`), entry('User:both', 'shared')] }),
      );
    }
    const changed = await Promise.all(adds);
    // The shared entry was added once; every other entry once.
    expect(changed.reduce((a, b) => a + b, 0)).toBe(21);
    const three = await open('concurrent');
    expect(three.list()).toHaveLength(21);
    await until(() => one.list().length === 21 && two.list().length === 21, {
      what: 'both stores hold all 21 entries',
    });
  });

  it('adds nothing already there, refuses a removal of nothing there and keeps clusters apart', async () => {
    const store = await open('refusals');
    await store.change({ kind: 'add', entries: [entry('User:carol', 'a')] });
    expect(await store.change({ kind: 'add', entries: [entry('User:carol', 'a')] })).toBe(0);
    await expect(store.change({ kind: 'remove', entries: [entry('User:carol', 'b')] })).rejects.toMatchObject(
      {
        codeName: 'ACL_NOT_FOUND',
      },
    );
    await expect(store.change({ kind: 'add', entries: [] })).rejects.toMatchObject({
      codeName: 'INVALID_ACL',
    });
    await expect(store.change({ kind: 'add', entries: [{ ...entry('alice', 'a') }] })).rejects.toMatchObject({
      codeName: 'INVALID_ACL',
    });
    const other = await open('refusals-elsewhere');
    expect(other.list()).toEqual([]);
  });

  it('ignores a record no broker wrote, and keeps the others in force', async () => {
    const store = await open('damaged');
    await store.change({ kind: 'add', entries: [entry('User:frank', 'f')] });
    const plane = await ControlPlane.connect({ address: parseClusterUrl(urlOf('damaged')) });
    const forged = entry('User:mallory', 'everything', 'all');
    try {
      // Not JSON of an entry, and a valid entry under a key that is not its hash.
      expect(await plane.writeIfUnchanged('acls/junk', 0n, [['acls/junk', '{"principal":1}']])).toBe(true);
      expect(
        await plane.writeIfUnchanged('acls/elsewhere', 0n, [['acls/elsewhere', JSON.stringify(forged)]]),
      ).toBe(true);
    } finally {
      await plane.close();
    }
    const reopened = await open('damaged');
    expect(sorted(reopened.list())).toEqual(['User:frank f write']);
    expect(aclEntryKey(forged)).toMatch(/^acls\/[0-9a-f]{64}$/);
  });
});
