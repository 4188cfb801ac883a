// Consumer groups while their topics change under them, on real brokers: a subscribed topic
// deleted while a member waits in a join, a topic that gains partitions, a topic deleted and
// created again, and the committed offsets under the operator's topic retention defaults.

import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BrokerCore, OFFSETS_TOPIC } from '../../src/broker/broker-core.js';
import { Broker } from '../../src/embedded/broker.js';
import { type Client, connect } from '../../src/index.js';
import { useTempDir } from '../harness/temp-dir.js';
import { until } from '../harness/until.js';

const scratch = useTempDir('ms-group-topics-');
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startCore(options: Parameters<typeof BrokerCore.start>[0]): Promise<BrokerCore> {
  const core = await BrokerCore.start(options);
  cleanups.push(() => core.close());
  return core;
}

async function startBroker(): Promise<{ broker: Broker; client: Client }> {
  const broker = await Broker.start({ dataDir: scratch.path, port: 0 });
  cleanups.push(() => broker.stop());
  const client = await connect({ brokers: [`127.0.0.1:${broker.address!.port}`] });
  cleanups.push(() => client.close());
  return { broker, client };
}

const memberOf = (core: BrokerCore, groupId: string, topics: string[]) =>
  core.execute('joinGroup', { groupId, memberId: '', topics, sessionTimeoutMs: 10_000, strategy: 'range' });

describe('consumer groups and their topics', () => {
  it('keeps the broker serving when a topic a waiting member subscribes to is deleted', async () => {
    // In a child process: an exception escaping the coordinator's timer would end the process.
    const script = join(import.meta.dirname, 'group-topic-deleted.child.ts');
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>(
      (resolve) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', script, scratch.path],
          { timeout: 30_000 },
          (error, stdout, stderr) =>
            resolve({ code: error === null ? 0 : ((error as { code?: number }).code ?? -1), stdout, stderr }),
        );
      },
    );
    expect({ code, stderr: stderr.slice(0, 2000) }).toEqual({ code: 0, stderr: '' });
    const result = JSON.parse(stdout.trim()) as {
      waited: { generation: number; assignment: unknown[] };
      joined: Array<{ generation: number; assignment: Array<{ topic: string; partitions: number[] }> }>;
    };
    expect(result.waited).toEqual({ generation: 2, assignment: [] });
    expect(result.joined.map((j) => j.generation)).toEqual([3, 3]);
    expect(result.joined.flatMap((j) => j.assignment.flatMap((a) => a.partitions)).sort()).toEqual([0, 1]);
  }, 60_000);

  it('keeps committed offsets whatever the topic defaults say about retention', async () => {
    // A short topic retention and small offsets segments: retention would delete the quiet group's
    // commit with the first, sealed segments once they are older than two seconds.
    const options = {
      dataDir: scratch.path,
      topicDefaults: { retentionMs: 2000 },
      offsetsSegmentBytes: 4096,
    };
    let core = await startCore(options);
    await core.execute('createTopic', { name: 't', partitions: 2 });
    const quiet = await memberOf(core, 'quiet', ['t']);
    await core.execute('commitOffsets', {
      groupId: 'quiet',
      memberId: quiet.memberId,
      generation: quiet.generation,
      offsets: [{ topic: 't', partition: 0, offset: 0n }],
    });
    const busy = await memberOf(core, 'busy', ['t']);
    const commitBusy = async (n: number) => {
      for (let i = 0; i < n; i++)
        await core.execute('commitOffsets', {
          groupId: 'busy',
          memberId: busy.memberId,
          generation: busy.generation,
          offsets: [{ topic: 't', partition: 1, offset: 0n }],
        });
    };
    await commitBusy(150);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    await commitBusy(150);
    await core.applyRetention();
    await core.close();
    core = await startCore(options);
    expect((await core.execute('fetchOffsets', { groupId: 'quiet' })).offsets).toEqual([
      expect.objectContaining({ topic: 't', partition: 0, offset: 0n }),
    ]);
    expect(core.localTopic(OFFSETS_TOPIC)?.config).toMatchObject({
      cleanup: 'compact',
      retentionMs: -1,
      retentionBytes: -1,
    });
  }, 60_000);

  it('takes retention off an offsets topic that has it, before its log opens', async () => {
    const options = {
      dataDir: scratch.path,
      topicDefaults: { retentionMs: 2000 },
      offsetsSegmentBytes: 4096,
    };
    let core = await startCore(options);
    await core.close();
    // An offsets topic created with the topic defaults' retention.
    const file = join(scratch.path, 'topics', OFFSETS_TOPIC, 'topic.json');
    const description = JSON.parse(await readFile(file, 'utf8')) as { config: Record<string, unknown> };
    description.config.retentionMs = 2000;
    description.config.retentionBytes = 8192;
    await writeFile(file, JSON.stringify(description, null, 2));

    core = await startCore(options);
    await core.execute('createTopic', { name: 't', partitions: 1 });
    const member = await memberOf(core, 'quiet', ['t']);
    const commit = (offset: bigint) =>
      core.execute('commitOffsets', {
        groupId: 'quiet',
        memberId: member.memberId,
        generation: member.generation,
        offsets: [{ topic: 't', partition: 0, offset }],
      });
    await commit(0n);
    await core.execute('createTopic', { name: 'u', partitions: 1 });
    const other = await memberOf(core, 'busy', ['u']);
    for (let i = 0; i < 150; i++)
      await core.execute('commitOffsets', {
        groupId: 'busy',
        memberId: other.memberId,
        generation: other.generation,
        offsets: [{ topic: 'u', partition: 0, offset: 0n }],
      });
    await new Promise((resolve) => setTimeout(resolve, 2500));
    await core.applyRetention();
    await core.close();
    core = await startCore(options);
    expect((await core.execute('fetchOffsets', { groupId: 'quiet' })).offsets).toEqual([
      expect.objectContaining({ topic: 't', partition: 0, offset: 0n }),
    ]);
    expect(core.localTopic(OFFSETS_TOPIC)?.config).toMatchObject({ retentionMs: -1, retentionBytes: -1 });
  }, 60_000);

  it('forgets the offsets of a deleted topic, also across a restart, so a new topic of its name starts fresh', async () => {
    const { broker, client } = await startBroker();
    await client.admin.createTopic({ name: 'd', partitions: 1 });
    await client.admin.createTopic({ name: 'kept', partitions: 1 });
    const producer = client.producer();
    for (let i = 0; i < 10; i++) await producer.send({ topic: 'd', value: `old${i}` });
    await producer.send({ topic: 'kept', value: 'k' });
    const first = client.consumer({ topics: ['d', 'kept'], group: 'g', sessionTimeoutMs: 3000 });
    for (let i = 0; i < 11; i++) await first.next();
    await first.commit();
    await first.close();
    expect((await client.admin.groupOffsets('g')).map((o) => `${o.topic}:${o.offset}`).sort()).toEqual([
      'd:10',
      'kept:1',
    ]);

    await client.admin.deleteTopic('d');
    expect(await client.admin.groupOffsets('g')).toEqual([{ topic: 'kept', partition: 0, offset: 1n }]);
    await client.admin.createTopic({ name: 'd', partitions: 1 });
    for (let i = 0; i < 3; i++) await producer.send({ topic: 'd', value: `new${i}` });
    await producer.close();

    // The tombstones hold across a restart.
    const port = broker.address!.port;
    await client.close();
    await broker.stop();
    const again = await Broker.start({ dataDir: scratch.path, port });
    cleanups.push(() => again.stop());
    const client2 = await connect({ brokers: [`127.0.0.1:${port}`] });
    cleanups.push(() => client2.close());
    expect(await client2.admin.groupOffsets('g')).toEqual([
      expect.objectContaining({ topic: 'kept', partition: 0, offset: 1n }),
    ]);

    const consumer = client2.consumer({ topics: ['d'], group: 'g', sessionTimeoutMs: 3000 });
    const got: string[] = [];
    for (let i = 0; i < 3; i++) got.push((await consumer.next())!.value!.toString());
    expect(got).toEqual(['new0', 'new1', 'new2']);
    await consumer.close();
  }, 60_000);

  it('hands a stable group the partitions its topic gains', async () => {
    const { client } = await startBroker();
    await client.admin.createTopic({ name: 'p', partitions: 1 });
    const producer = client.producer();
    await producer.send({ topic: 'p', partition: 0, value: 'a0' });
    const consumer = client.consumer({ topics: ['p'], group: 'g', sessionTimeoutMs: 3000 });
    const got: string[] = [];
    const run = (async () => {
      for await (const m of consumer) got.push(`${m.partition}:${m.value!.toString()}`);
    })();
    await until(() => got.length === 1, { what: 'the first message read' });
    await client.admin.alterTopic({ name: 'p', partitions: 2 });
    const after = client.producer();
    await after.send({ topic: 'p', partition: 1, value: 'b1' });
    await after.send({ topic: 'p', partition: 0, value: 'a1' });
    await until(() => got.length === 3, { what: 'the messages of both partitions read', timeoutMs: 20_000 });
    expect(got.sort()).toEqual(['0:a0', '0:a1', '1:b1']);
    const described = await client.admin.describeGroup('g');
    expect(described.members.flatMap((m) => m.assignment)).toEqual([{ topic: 'p', partitions: [0, 1] }]);
    await producer.close();
    await after.close();
    await consumer.close();
    await run;
  }, 60_000);
});
