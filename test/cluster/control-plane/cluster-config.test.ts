import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterConfig, decodeConfigVersion } from '../../../src/cluster/control-plane/cluster-config.js';
import { parseClusterUrl } from '../../../src/cluster/control-plane/cluster-url.js';
import { ControlPlane } from '../../../src/cluster/control-plane/control-plane.js';
import { type EtcdProcess, etcdAvailable, startEtcd } from '../../harness/etcd.js';

let etcd: EtcdProcess;

describe('decodeConfigVersion', () => {
  it.each([
    ['{', 'not JSON'],
    ['{"version":0,"settings":{},"changedBy":"a","changedAtMs":1,"note":""}', 'not a configuration version'],
    [
      '{"version":1,"settings":{"a":{}},"changedBy":"a","changedAtMs":1,"note":""}',
      'not a configuration version',
    ],
  ])('refuses %s', (text, message) => {
    expect(() => decodeConfigVersion('k', text)).toThrow(message);
  });
});

describe.skipIf(!etcdAvailable())('cluster configuration on etcd', () => {
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it('versions every change, merges concurrent changes, and rolls back as a new version', async () => {
    const address = parseClusterUrl(`${etcd.endpoint.replace('http://', 'etcd://')}/config`);
    const planes = [await ControlPlane.connect({ address }), await ControlPlane.connect({ address })];
    try {
      let now = 1000;
      const a = new ClusterConfig(planes[0]!, () => now++);
      const b = new ClusterConfig(planes[1]!, () => now++);
      expect(await a.current()).toBeNull();
      expect((await a.change({ 'limits.max_connections': 100 }, 'alice')).version).toBe(1);
      // Two operators at once, different keys: both land, in two versions.
      await Promise.all([
        a.change({ 'log.level': 'debug' }, 'alice'),
        b.change({ 'limits.idle_timeout_ms': 5000 }, 'bob'),
      ]);
      const current = (await b.current())!;
      expect(current.version).toBe(3);
      expect(current.settings).toEqual({
        'limits.max_connections': 100,
        'log.level': 'debug',
        'limits.idle_timeout_ms': 5000,
      });
      await a.change({ 'log.level': null }, 'alice', 'back to the default level');
      const rolled = await b.rollback(1, 'bob');
      expect(rolled).toMatchObject({
        version: 5,
        settings: { 'limits.max_connections': 100 },
        note: 'rollback to version 1',
      });
      const history = await a.history();
      expect(history.map((v) => v.version)).toEqual([1, 2, 3, 4, 5]);
      expect(history[3]!.note).toBe('back to the default level');
      expect(history.map((v) => v.changedBy)).toContain('bob');
      await expect(a.rollback(42, 'alice')).rejects.toThrow('configuration version 42 does not exist');
    } finally {
      for (const plane of planes) await plane.close();
    }
  });
});
