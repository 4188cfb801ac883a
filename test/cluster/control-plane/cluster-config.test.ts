import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ClusterConfig,
  type ConfigVersion,
  decodeConfigVersion,
  settingChanges,
  withChanges,
} from '../../../src/cluster/control-plane/cluster-config.js';
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
    [
      '{"version":1,"topic":"","settings":{},"changedBy":"a","changedAtMs":1,"note":""}',
      'not a configuration version',
    ],
  ])('refuses %s', (text, message) => {
    expect(() => decodeConfigVersion('k', text)).toThrow(message);
  });
});

describe('what each version changed', () => {
  const version = (n: number, settings: ConfigVersion['settings'], topic?: string): ConfigVersion => ({
    version: n,
    ...(topic === undefined ? {} : { topic }),
    settings,
    changedBy: 'x',
    changedAtMs: n,
    note: '',
  });

  it('lists added, changed and removed keys in key order', () => {
    expect(settingChanges({ b: 1, a: 'x', c: true }, { a: 'y', c: true, d: 5 })).toEqual([
      { key: 'a', from: 'x', to: 'y' },
      { key: 'b', from: 1, to: null },
      { key: 'd', from: null, to: 5 },
    ]);
  });

  it('compares each version with the previous one of its own scope', () => {
    const changes = withChanges([
      version(1, { 'log.level': 'debug' }),
      version(2, { retentionMs: 1000 }, 'orders'),
      version(3, { 'log.level': 'warn' }),
      version(4, { retentionMs: 2000 }, 'orders'),
      version(5, { retentionMs: 5 }, 'events'),
    ]).map((entry) => entry.changes);
    expect(changes).toEqual([
      [{ key: 'log.level', from: null, to: 'debug' }],
      [{ key: 'retentionMs', from: null, to: 1000 }],
      [{ key: 'log.level', from: 'debug', to: 'warn' }],
      [{ key: 'retentionMs', from: 1000, to: 2000 }],
      [{ key: 'retentionMs', from: null, to: 5 }],
    ]);
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
      await expect(a.rollback(42, 'alice')).rejects.toMatchObject({
        codeName: 'UNKNOWN_CONFIG_VERSION',
        message: expect.stringContaining('configuration version 42 does not exist'),
      });
    } finally {
      for (const plane of planes) await plane.close();
    }
  });

  it('numbers topic and broker versions in one sequence, each scope with its own current version', async () => {
    const address = parseClusterUrl(`${etcd.endpoint.replace('http://', 'etcd://')}/scopes`);
    const planes = [await ControlPlane.connect({ address }), await ControlPlane.connect({ address })];
    try {
      const a = new ClusterConfig(planes[0]!);
      const b = new ClusterConfig(planes[1]!);
      await a.change({ 'log.level': 'debug' }, 'alice');
      // The first recorded change of a topic records the configuration it had before, too.
      const first = await a.recordTopic('orders', { retentionMs: 2000 }, 'bob', 'alter retentionMs', {
        settings: { retentionMs: 1000 },
        createdAtMs: 0,
      });
      expect(first.version).toBe(3);
      const second = await b.recordTopic('orders', { retentionMs: 3000 }, 'bob', 'alter retentionMs', {
        settings: { retentionMs: 2000 },
        createdAtMs: 0,
      });
      expect(second.version).toBe(4);
      // Writers of different scopes at once: every version gets its own number, none is lost.
      await Promise.all([
        a.change({ 'topics.partitions': 3 }, 'alice'),
        b.recordTopic('events', { segmentMs: 60_000 }, 'carol', 'alter segmentMs'),
        a.recordTopic('orders', { retentionMs: 4000 }, 'dave', 'alter retentionMs'),
      ]);
      const all = await b.history();
      expect(all.map((v) => v.version)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      const orders = await b.history({ topic: 'orders' });
      expect(orders.map((v) => [v.note, v.settings.retentionMs])).toEqual([
        ['before the first recorded change', 1000],
        ['alter retentionMs', 2000],
        ['alter retentionMs', 3000],
        ['alter retentionMs', 4000],
      ]);
      expect((await b.history({ topic: null })).map((v) => v.settings)).toEqual([
        { 'log.level': 'debug' },
        { 'log.level': 'debug', 'topics.partitions': 3 },
      ]);
      expect((await a.currentOfTopic('orders'))?.settings).toEqual({ retentionMs: 4000 });
      // A topic deleted and created again under the name: its first change records its start again.
      const again = await a.recordTopic('orders', { retentionMs: 6000 }, 'erin', 'alter retentionMs', {
        settings: { retentionMs: 5000 },
        createdAtMs: Date.now() + 60_000,
      });
      expect(again.version).toBe(9);
      expect((await a.version(8))?.note).toBe('as found before this change');
      expect((await a.current())?.settings).toEqual({ 'log.level': 'debug', 'topics.partitions': 3 });
      // A topic's version is not rolled back as the brokers' settings.
      await expect(a.rollback(2, 'alice')).rejects.toMatchObject({ codeName: 'INVALID_REQUEST' });
      expect((await a.rollback(1, 'alice')).settings).toEqual({ 'log.level': 'debug' });
      expect((await a.history({ topic: 'orders' })).length).toBe(6);
      expect(await a.version(99)).toBeNull();
    } finally {
      for (const plane of planes) await plane.close();
    }
  });
});
