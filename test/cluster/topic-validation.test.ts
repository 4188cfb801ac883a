// A cluster checks a new topic as a broker alone does before its controller writes anything to
// etcd: hostile names (a path, an etcd key separator, "..", the internal prefix, empty, too long),
// bad partition counts and replication factors, and unknown configuration keys are refused with
// their codes, and no such topic appears in the cluster's metadata. An alteration is checked the
// same way (a partition count in the billions once ran the controller out of memory). One broker on
// a real etcd.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '../../src/client/client.js';
import { connect } from '../../src/client/connect.js';
import { MemoryStreamerError } from '../../src/common/errors.js';
import { type NodeCluster, startNodeCluster } from '../harness/cluster.js';
import { etcdAvailable } from '../harness/etcd.js';
import { until } from '../harness/until.js';

async function codeOf(action: Promise<unknown>): Promise<string> {
  try {
    await action;
    return 'ok';
  } catch (error) {
    return error instanceof MemoryStreamerError ? error.codeName : String(error);
  }
}

describe.skipIf(!etcdAvailable())('topic creation in a cluster', () => {
  let cluster: NodeCluster;
  let client: Client;

  beforeAll(async () => {
    cluster = await startNodeCluster({ brokers: 1, name: 'names' });
    client = await connect({ brokers: cluster.address(1) });
    await until(async () => ((await client.admin.metadata()).controllerId > 0 ? true : null), {
      what: 'a controller',
    });
  }, 60_000);

  afterAll(async () => {
    await client?.close();
    await cluster?.stop();
  });

  it('refuses hostile names and bad settings, and writes none of them to etcd', async () => {
    const refused: Array<[Parameters<Client['admin']['createTopic']>[0], string]> = [
      [{ name: 'a/b' }, 'INVALID_TOPIC_NAME'],
      [{ name: '..' }, 'INVALID_TOPIC_NAME'],
      [{ name: '' }, 'INVALID_TOPIC_NAME'],
      [{ name: '__evil' }, 'INVALID_TOPIC_NAME'],
      [{ name: 'x'.repeat(300) }, 'INVALID_TOPIC_NAME'],
      [{ name: 'nul\u0000name' }, 'INVALID_TOPIC_NAME'],
      [{ name: 'huge', partitions: 1_000_000_000 }, 'INVALID_PARTITION_COUNT'],
      [{ name: 'unknown-key', config: { retentionBytez: 1 } as never }, 'INVALID_CONFIG'],
    ];
    for (const [request, code] of refused)
      expect(await codeOf(client.admin.createTopic(request)), JSON.stringify(request).slice(0, 60)).toBe(
        code,
      );
    const names = (await client.admin.metadata()).topics.map((topic) => topic.name);
    expect(names).toEqual([]);
    expect(cluster.nodes[0]!.core.clusterMetadata!.topics()).toEqual([]);

    await client.admin.createTopic({ name: 'fine.name-1', partitions: 2 });
    expect((await client.admin.metadata()).topics.map((topic) => topic.name)).toEqual(['fine.name-1']);
  }, 30_000);

  it('refuses a bad alteration the same way, and leaves the topic as it was', async () => {
    await until(() => client.admin.createTopic({ name: 'altered', partitions: 2 }), { what: 'created' });
    expect(
      await codeOf(client.admin.alterTopic({ name: 'altered', config: { retentionBytez: 1 } as never })),
    ).toBe('INVALID_CONFIG');
    expect(await codeOf(client.admin.alterTopic({ name: 'altered', partitions: 1_000_000_000 }))).toBe(
      'INVALID_PARTITION_COUNT',
    );
    expect(await codeOf(client.admin.alterTopic({ name: 'altered', partitions: 1 }))).toBe(
      'INVALID_PARTITION_COUNT',
    );
    expect(await codeOf(client.admin.alterTopic({ name: 'altered', config: { retentionMs: -5 } }))).toBe(
      'INVALID_CONFIG',
    );
    const record = cluster.nodes[0]!.core.clusterMetadata!.topics().find(
      (topic) => topic.name === 'altered',
    )!;
    expect(record.partitions).toBe(2);
    expect(record.config ?? {}).toEqual({});
  }, 30_000);
});
