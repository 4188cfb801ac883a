// The pure parts of the control plane: the cluster URL, the record decoders, the metadata cache.

import { describe, expect, it } from 'vitest';
import { parseClusterUrl } from '../../../src/cluster/control-plane/cluster-url.js';
import { MetadataCache, type MetadataEvent } from '../../../src/cluster/control-plane/metadata-cache.js';
import { parsePartitionKey } from '../../../src/cluster/control-plane/metadata-keys.js';
import {
  decodeBrokerRegistration,
  decodePartitionState,
  decodeTopicRecord,
} from '../../../src/cluster/control-plane/metadata-records.js';

describe('parseClusterUrl', () => {
  it('reads endpoints and the cluster name', () => {
    expect(parseClusterUrl('etcd://127.0.0.1:2379')).toEqual({
      endpoints: ['http://127.0.0.1:2379'],
      name: 'default',
    });
    expect(parseClusterUrl('etcd://a:1,b.example:2379/prod-eu')).toEqual({
      endpoints: ['http://a:1', 'http://b.example:2379'],
      name: 'prod-eu',
    });
    expect(parseClusterUrl('etcd://[::1]:2379/x')).toEqual({ endpoints: ['http://[::1]:2379'], name: 'x' });
  });

  it.each([
    ['http://127.0.0.1:2379', /expected etcd:\/\//],
    ['etcd://127.0.0.1', /is not host:port/],
    ['etcd://127.0.0.1:0', /is not host:port/],
    ['etcd://127.0.0.1:70000', /is not host:port/],
    ['etcd://h:1/../etc', /expected etcd/],
    ['etcd://h:1/UPPER', /name "UPPER"/],
    ['etcd://h:1/a b', /name "a b"/],
  ])('refuses %s', (url, message) => {
    expect(() => parseClusterUrl(url)).toThrow(message);
  });
});

describe('metadata records', () => {
  it('decode what was written', () => {
    expect(
      decodeBrokerRegistration('k', '{"brokerId":1,"advertise":"h:7400","startedAtMs":5}').advertise,
    ).toBe('h:7400');
    const topic = decodeTopicRecord(
      'k',
      JSON.stringify({
        name: 't',
        partitions: 2,
        replicationFactor: 2,
        assignment: [
          [1, 2],
          [2, 3],
        ],
        config: {},
      }),
    );
    expect(topic.assignment).toEqual([
      [1, 2],
      [2, 3],
    ]);
    // A record written without an id (before topics had one) has none; one with an id keeps it.
    expect(topic.id).toBeUndefined();
    expect(
      decodeTopicRecord(
        'k',
        '{"name":"t","id":"7f3c","partitions":1,"replicationFactor":1,"assignment":[[1]],"config":{}}',
      ).id,
    ).toBe('7f3c');
    expect(decodePartitionState('k', '{"leader":-1,"leaderEpoch":0,"isr":[]}').leader).toBe(-1);
  });

  it.each([
    ['not json', 'not JSON'],
    ['[1]', 'not a JSON object'],
    ['{"brokerId":-2,"advertise":"h:1","startedAtMs":0}', 'brokerId'],
    ['{"brokerId":1,"advertise":"nohost","startedAtMs":0}', 'advertise'],
  ])('refuse a bad broker registration %s', (value, message) => {
    expect(() => decodeBrokerRegistration('brokers/1', value)).toThrow(message);
  });

  it.each([
    [
      { name: 't', partitions: 2, replicationFactor: 1, assignment: [[1]], config: {} },
      'each of the 2 partitions',
    ],
    [
      { name: 't', partitions: 1, replicationFactor: 2, assignment: [[1]], config: {} },
      'the replication factor is 2',
    ],
    [
      { name: 't', partitions: 1, replicationFactor: 2, assignment: [[1, 1]], config: {} },
      'names a broker twice',
    ],
    [{ name: 't', partitions: 1, replicationFactor: 1, assignment: [[1]], config: [] }, 'config'],
    [{ name: '', partitions: 1, replicationFactor: 1, assignment: [[1]], config: {} }, 'name'],
    [{ name: 't', id: '', partitions: 1, replicationFactor: 1, assignment: [[1]], config: {} }, 'id'],
    [{ name: 't', id: 7, partitions: 1, replicationFactor: 1, assignment: [[1]], config: {} }, 'id'],
  ])('refuse a bad topic record %#', (record, message) => {
    expect(() => decodeTopicRecord('topics/t', JSON.stringify(record))).toThrow(message);
  });

  it('refuse a leader outside the isr', () => {
    expect(() => decodePartitionState('p', '{"leader":3,"leaderEpoch":1,"isr":[1,2]}')).toThrow(
      'not in the isr',
    );
  });

  it('parse partition keys exactly', () => {
    expect(parsePartitionKey('partitions/a.b/12')).toEqual(['a.b', 12]);
    expect(parsePartitionKey('partitions/t/01')).toBeNull();
    expect(parsePartitionKey('partitions/t/')).toBeNull();
    expect(parsePartitionKey('topics/t')).toBeNull();
  });
});

const put = (
  key: string,
  value: unknown,
  modRevision: bigint,
  createRevision = modRevision,
): MetadataEvent => ({
  type: 'put',
  key,
  value: Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
  createRevision,
  modRevision,
});
const del = (key: string, modRevision: bigint): MetadataEvent => ({
  type: 'delete',
  key,
  value: Buffer.alloc(0),
  createRevision: 0n,
  modRevision,
});
const topicT = { name: 't', partitions: 1, replicationFactor: 2, assignment: [[1, 2]], config: {} };

describe('MetadataCache', () => {
  it('loads a snapshot (partition states checked against their topic, whatever the key order)', () => {
    const cache = new MetadataCache();
    cache.load(
      [
        put('brokers/1', { brokerId: 1, advertise: 'h:1', startedAtMs: 0 }, 3n),
        put('cluster-id', 'abc', 2n),
        put('controller', { brokerId: 1 }, 4n),
        put('partitions/t/0', { leader: 3, leaderEpoch: 0, isr: [3] }, 6n),
        put('topics/t', topicT, 5n),
        put('some/future/key', 'x', 7n),
      ],
      7n,
    );
    expect(cache.clusterId).toBe('abc');
    expect(cache.controller).toEqual({ brokerId: 1, epoch: 4n });
    expect(cache.brokers().map((b) => b.brokerId)).toEqual([1]);
    expect(cache.topic('t')?.modRevision).toBe(5n);
    // Broker 3 is not a replica of t/0: reported, not applied.
    expect(cache.partition('t', 0)).toBeUndefined();
    expect(cache.problems).toEqual([
      { key: 'partitions/t/0', message: expect.stringContaining('isr member 3') },
    ]);
    expect(cache.revision).toBe(7n);
  });

  it('applies watch events after the snapshot, every event of one revision, and skips older ones', () => {
    const cache = new MetadataCache();
    cache.load(
      [
        put('controller', { brokerId: 1 }, 4n),
        put('brokers/1', { brokerId: 1, advertise: 'h:1', startedAtMs: 0 }, 4n),
        put('topics/t', topicT, 5n),
      ],
      5n,
    );
    cache.apply([put('topics/t', { ...topicT, config: { stale: true } }, 5n)]);
    expect(cache.topic('t')?.value.config).toEqual({});
    cache.apply([put('partitions/t/0', { leader: 1, leaderEpoch: 0, isr: [1, 2] }, 6n)]);
    cache.apply([del('controller', 7n), del('brokers/1', 7n)]);
    expect(cache.controller).toBeNull();
    expect(cache.brokers()).toEqual([]);
    expect(cache.partition('t', 0)?.value.isr).toEqual([1, 2]);
    expect(cache.revision).toBe(7n);
    cache.apply([put('brokers/2', { brokerId: 3, advertise: 'h:3', startedAtMs: 0 }, 8n)]);
    expect(cache.broker(2)).toBeUndefined();
    expect(cache.problems.at(-1)?.message).toMatch(/holds broker 3/);
    cache.apply([del('topics/t', 9n)]);
    expect(cache.topics()).toEqual([]);
  });
});
