import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_TOPIC_CONFIG,
  resolveTopicConfig,
  validateTopicName,
} from '../../../src/broker/topics/topic-config.js';
import { TopicRegistry } from '../../../src/broker/topics/topic-registry.js';
import { ErrorCode } from '../../../src/protocol/error-codes.js';
import { useTempDir } from '../../harness/temp-dir.js';

let dataDir: string;
const scratch = useTempDir('ms-topics-');
beforeEach(async () => {
  dataDir = scratch.path;
});

function codeOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (error) {
    return (error as { code?: number }).code;
  }
  return undefined;
}

describe('topic names', () => {
  it.each(['..', '.', '', 'a/b', 'a\\b', 'a\0b', 'tab\tname', 'é', 'x'.repeat(201), '../etc'])(
    'rejects hostile name %j',
    (name) => {
      expect(codeOf(() => validateTopicName(name))).toBe(ErrorCode.INVALID_TOPIC_NAME);
    },
  );
  it('accepts ordinary names and reserves the internal prefix', () => {
    expect(validateTopicName('orders.v1_eu-west')).toBe('orders.v1_eu-west');
    expect(codeOf(() => validateTopicName('__consumer_offsets'))).toBe(ErrorCode.INVALID_TOPIC_NAME);
    expect(validateTopicName('__consumer_offsets', { allowInternal: true })).toBe('__consumer_offsets');
  });
});

describe('topic configuration', () => {
  it('names the key, value and what is allowed', () => {
    expect(() => resolveTopicConfig({ cleanup: 'shred' }, DEFAULT_TOPIC_CONFIG)).toThrow(
      /cleanup="shred": one of delete/,
    );
    expect(() => resolveTopicConfig({ retentionMs: 0 }, DEFAULT_TOPIC_CONFIG)).toThrow(/retentionMs=0/);
    expect(() => resolveTopicConfig({ colour: 'red' } as never, DEFAULT_TOPIC_CONFIG)).toThrow(
      /unknown topic configuration key "colour"/,
    );
  });
  it('merges over the base', () => {
    const config = resolveTopicConfig({ retentionMs: 60_000, durability: 'always' }, DEFAULT_TOPIC_CONFIG);
    expect(config.retentionMs).toBe(60_000);
    expect(config.durability).toBe('always');
    expect(config.cleanup).toBe(DEFAULT_TOPIC_CONFIG.cleanup);
  });
});

describe('TopicRegistry', () => {
  it('creates, persists, alters and deletes topics', async () => {
    const registry = await TopicRegistry.open(dataDir);
    const created = await registry.create({
      name: 'orders',
      partitions: 3,
      config: { durability: 'always' },
    });
    expect(created.partitions).toBe(3);
    expect(await readdir(registry.topicDir('orders'))).toEqual(
      expect.arrayContaining(['0', '1', '2', 'topic.json']),
    );
    await expect(registry.create({ name: 'orders' })).rejects.toMatchObject({
      code: ErrorCode.TOPIC_ALREADY_EXISTS,
    });

    await registry.alter({ name: 'orders', partitions: 5, config: { retentionMs: 1000 } });
    await expect(registry.alter({ name: 'orders', partitions: 2 })).rejects.toMatchObject({
      code: ErrorCode.INVALID_PARTITION_COUNT,
    });

    const reopened = await TopicRegistry.open(dataDir);
    const topic = reopened.require('orders');
    expect(topic.partitions).toBe(5);
    expect(topic.config.retentionMs).toBe(1000);
    expect(topic.config.durability).toBe('always');
    expect(resolveTopicConfig({ cleanup: 'compact' }, DEFAULT_TOPIC_CONFIG).cleanup).toBe('compact');
    expect(() => resolveTopicConfig({ cleanup: 'shrink' }, DEFAULT_TOPIC_CONFIG)).toThrow(
      /one of delete, compact/,
    );
    expect(topic.id).toBe(created.id);

    await reopened.delete('orders');
    expect(reopened.get('orders')).toBeUndefined();
    expect(() => reopened.require('orders')).toThrow(/topic does not exist/);
    expect((await TopicRegistry.open(dataDir)).list()).toEqual([]);
  });

  it("keeps a cluster's id for a copy and marks it as the cluster's; a topic of its own draws one", async () => {
    const registry = await TopicRegistry.open(dataDir);
    const own = await registry.create({ name: 'alone' });
    const copy = await registry.create({ name: 'copy', replicationFactor: 3 }, { id: 'cluster-id-1' });
    expect(own.idFromCluster).toBeUndefined();
    expect(copy).toMatchObject({ id: 'cluster-id-1', idFromCluster: true });
    // Altering and reopening keep both.
    await registry.alter({ name: 'copy', config: { retentionMs: 5000 } });
    const reopened = await TopicRegistry.open(dataDir);
    expect(reopened.require('copy')).toMatchObject({ id: 'cluster-id-1', idFromCluster: true });
    expect(reopened.require('alone').id).toBe(own.id);
    expect(reopened.require('alone').idFromCluster).toBeUndefined();
    // A copy can come and go under the same id more than once, also when the trash of an earlier
    // delete is still there (its removal failed, say).
    const left = join(dataDir, 'trash', 'copy.cluster-id-1');
    await mkdir(join(left, '0'), { recursive: true });
    await writeFile(join(left, '0', 'leftover'), 'x');
    await reopened.delete('copy');
    expect(reopened.get('copy')).toBeUndefined();
  });

  it('refuses concurrent creation of the same name', async () => {
    const registry = await TopicRegistry.open(dataDir);
    const results = await Promise.allSettled([
      registry.create({ name: 'a' }),
      registry.create({ name: 'a' }),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  });

  it('removes a half-created topic and reports a corrupt description', async () => {
    await mkdir(join(dataDir, 'topics', 'half', '0'), { recursive: true });
    const registry = await TopicRegistry.open(dataDir);
    expect(registry.list()).toEqual([]);
    expect(await readdir(join(dataDir, 'topics'))).toEqual([]);

    await mkdir(join(dataDir, 'topics', 'bad'), { recursive: true });
    await writeFile(join(dataDir, 'topics', 'bad', 'topic.json'), '{not json');
    const withBad = await TopicRegistry.open(dataDir);
    await withBad.create({ name: 'good' });
    // One unreadable topic is set aside with its reason; the others open.
    const reopened = await TopicRegistry.open(dataDir);
    expect(reopened.list().map((t) => t.name)).toEqual(['good']);
    expect(reopened.damaged.get('bad')).toMatch(/topics\/bad\/topic.json is not valid JSON/);
    await expect(reopened.create({ name: 'bad' })).rejects.toMatchObject({
      code: ErrorCode.TOPIC_ALREADY_EXISTS,
    });
    // Deleting it is the way out: the directory goes and the name is free again.
    await reopened.delete('bad');
    expect(reopened.damaged.has('bad')).toBe(false);
    expect(await readdir(join(dataDir, 'topics'))).toEqual(['good']);
    await reopened.create({ name: 'bad' });
  });

  it('creates all or nothing: a failing open step leaves no directory and no listing', async () => {
    const registry = await TopicRegistry.open(dataDir);
    const failure = new Error('EMFILE: too many open files');
    await expect(
      registry.create(
        { name: 'wide', partitions: 5 },
        {
          open: async (topic) => {
            expect(await readdir(join(dataDir, 'topics', 'wide'))).toHaveLength(topic.partitions);
            throw failure;
          },
        },
      ),
    ).rejects.toBe(failure);
    expect(registry.get('wide')).toBeUndefined();
    expect(await readdir(join(dataDir, 'topics'))).toEqual([]);
    expect((await TopicRegistry.open(dataDir)).list()).toEqual([]);
    // The name is free at once.
    const created = await registry.create({ name: 'wide', partitions: 2 }, { open: async () => undefined });
    expect(created.partitions).toBe(2);
  });

  it('grows all or nothing: a failing open step removes the added partitions', async () => {
    const registry = await TopicRegistry.open(dataDir);
    await registry.create({ name: 'orders', partitions: 2 });
    await expect(
      registry.alter(
        { name: 'orders', partitions: 4 },
        {
          open: async () => {
            throw new Error('cannot open');
          },
        },
      ),
    ).rejects.toThrow('cannot open');
    expect(registry.require('orders').partitions).toBe(2);
    expect((await readdir(join(dataDir, 'topics', 'orders'))).sort()).toEqual(['0', '1', 'topic.json']);
    expect((await TopicRegistry.open(dataDir)).require('orders').partitions).toBe(2);
  });
});

describe('replication settings', () => {
  it('persists replicationFactor and minInsyncReplicas in topic.json', async () => {
    const registry = await TopicRegistry.open(dataDir);
    const created = await registry.create({
      name: 'replicated',
      replicationFactor: 3,
      config: { minInsyncReplicas: 2 },
    });
    expect(created.replicationFactor).toBe(3);
    expect(created.config.minInsyncReplicas).toBe(2);
    const stored = JSON.parse(await readFile(join(registry.topicDir('replicated'), 'topic.json'), 'utf8'));
    expect(stored).toMatchObject({ replicationFactor: 3, config: { minInsyncReplicas: 2 } });
    const reopened = (await TopicRegistry.open(dataDir)).require('replicated');
    expect(reopened.replicationFactor).toBe(3);
    expect(reopened.config.minInsyncReplicas).toBe(2);
    expect((await registry.create({ name: 'plain' })).replicationFactor).toBe(1);
    expect(registry.require('plain').config.minInsyncReplicas).toBe(1);
  });

  it('reads a topic.json written before replication as one copy, min ISR 1', async () => {
    await mkdir(join(dataDir, 'topics', 'old', '0'), { recursive: true });
    const config = { ...DEFAULT_TOPIC_CONFIG } as Partial<typeof DEFAULT_TOPIC_CONFIG>;
    delete config.minInsyncReplicas;
    await writeFile(
      join(dataDir, 'topics', 'old', 'topic.json'),
      JSON.stringify({ name: 'old', id: 'x', partitions: 1, createdAt: 1, config }),
    );
    const topic = (await TopicRegistry.open(dataDir)).require('old');
    expect(topic.replicationFactor).toBe(1);
    expect(topic.config.minInsyncReplicas).toBe(1);
  });

  it('refuses minInsyncReplicas above the replication factor, at create, alter and open', async () => {
    const registry = await TopicRegistry.open(dataDir);
    await expect(registry.create({ name: 'a', config: { minInsyncReplicas: 2 } })).rejects.toMatchObject({
      code: ErrorCode.INVALID_CONFIG,
      message: expect.stringContaining('minInsyncReplicas=2 is more than replicationFactor=1'),
    });
    expect(registry.get('a')).toBeUndefined();
    await registry.create({ name: 'b', replicationFactor: 2 });
    await registry.alter({ name: 'b', config: { minInsyncReplicas: 2 } });
    await expect(registry.alter({ name: 'b', config: { minInsyncReplicas: 3 } })).rejects.toMatchObject({
      code: ErrorCode.INVALID_CONFIG,
    });
    expect(registry.require('b').config.minInsyncReplicas).toBe(2);
    await expect(registry.create({ name: 'c', replicationFactor: 0 })).rejects.toThrow(/replicationFactor=0/);
    await expect(registry.create({ name: 'c', replicationFactor: 101 })).rejects.toThrow(
      /replicationFactor=101/,
    );

    await mkdir(join(dataDir, 'topics', 'edited', '0'), { recursive: true });
    await writeFile(
      join(dataDir, 'topics', 'edited', 'topic.json'),
      JSON.stringify({
        name: 'edited',
        id: 'x',
        partitions: 1,
        replicationFactor: 1,
        createdAt: 1,
        config: { minInsyncReplicas: 3 },
      }),
    );
    expect((await TopicRegistry.open(dataDir)).damaged.get('edited')).toMatch(/minInsyncReplicas=3/);
  });
});
